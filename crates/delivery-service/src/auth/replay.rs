//! The replay window: a signed request is accepted only if its timestamp lies within
//! `window` seconds of the service's clock and its (device, nonce) was not seen within the
//! window. Nonces older than the window are forgotten (their requests are stale anyway).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use vmls_protocol::{Authenticator, ClientId};

use super::AuthError;

/// Seen nonces per device, with their timestamps, for one service instance.
#[derive(Debug)]
pub struct ReplayGuard {
    window: u64,
    seen: Mutex<HashMap<ClientId, Seen>>,
}

#[derive(Debug, Default)]
struct Seen {
    nonces: HashSet<[u8; 16]>,
    by_time: VecDeque<(u64, [u8; 16])>,
}

impl Seen {
    fn forget_before(&mut self, oldest: u64) {
        while let Some(&(t, nonce)) = self.by_time.front() {
            if t >= oldest {
                break;
            }
            self.by_time.pop_front();
            self.nonces.remove(&nonce);
        }
    }
}

impl ReplayGuard {
    /// A guard accepting timestamps within `window` seconds of `now` (both sides).
    pub fn new(window: u64) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `authenticator`'s nonce, or refuses it as stale or replayed. Call it only for
    /// requests whose signature verified.
    pub fn check(&self, authenticator: &Authenticator, now: u64) -> Result<(), AuthError> {
        let timestamp = authenticator.timestamp;
        if timestamp.abs_diff(now) > self.window {
            return Err(AuthError::Stale {
                timestamp,
                now,
                window: self.window,
            });
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let entry = seen.entry(authenticator.device.clone()).or_default();
        entry.forget_before(now.saturating_sub(self.window));
        if !entry.nonces.insert(authenticator.nonce) {
            return Err(AuthError::Replayed);
        }
        // Keep `by_time` sorted so that forgetting stops at the first young entry.
        let at = entry.by_time.partition_point(|&(t, _)| t <= timestamp);
        entry.by_time.insert(at, (timestamp, authenticator.nonce));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(nonce: u8, timestamp: u64) -> Authenticator {
        Authenticator {
            device: ClientId::new("d"),
            timestamp,
            nonce: [nonce; 16],
        }
    }

    #[test]
    fn a_nonce_is_accepted_once_within_the_window() {
        let guard = ReplayGuard::new(60);
        assert_eq!(guard.check(&auth(1, 1000), 1000), Ok(()));
        assert_eq!(guard.check(&auth(1, 1000), 1001), Err(AuthError::Replayed));
        assert_eq!(guard.check(&auth(2, 1000), 1001), Ok(()));
    }

    #[test]
    fn timestamps_outside_the_window_are_stale() {
        let guard = ReplayGuard::new(60);
        assert!(matches!(
            guard.check(&auth(1, 900), 1000),
            Err(AuthError::Stale { .. })
        ));
        assert!(matches!(
            guard.check(&auth(1, 1100), 1000),
            Err(AuthError::Stale { .. })
        ));
    }

    #[test]
    fn old_nonces_are_forgotten_and_stay_refused_as_stale() {
        let guard = ReplayGuard::new(60);
        assert_eq!(guard.check(&auth(1, 1000), 1000), Ok(()));
        assert_eq!(guard.check(&auth(2, 1200), 1200), Ok(()));
        let seen = guard.seen.lock().unwrap();
        assert_eq!(seen[&ClientId::new("d")].nonces.len(), 1);
        drop(seen);
        assert!(matches!(
            guard.check(&auth(1, 1000), 1200),
            Err(AuthError::Stale { .. })
        ));
    }
}
