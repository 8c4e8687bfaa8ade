//! Requests per second per device: one token bucket per authenticated device.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use vmls_protocol::ClientId;

/// Token buckets of `rate` tokens per second holding at most `burst`.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<ClientId, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets untouched this long are full again and can be forgotten.
const FORGET_AFTER_SECS: f64 = 60.0;

impl RateLimiter {
    pub(crate) fn new(rate: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(rate).max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of `device` at `now`; `false` when its bucket is empty.
    pub(crate) fn allow(&self, device: &ClientId, now: Instant) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() > 100_000 {
            buckets.retain(|_, b| now.duration_since(b.at).as_secs_f64() < FORGET_AFTER_SECS);
        }
        let bucket = buckets.entry(device.clone()).or_insert(Bucket {
            tokens: self.burst,
            at: now,
        });
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.rate;
        bucket.tokens = (bucket.tokens + refill).min(self.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_burst_is_allowed_then_the_sustained_rate() {
        let limiter = RateLimiter::new(10, 20);
        let d = ClientId::new("d");
        let t0 = Instant::now();
        assert!((0..20).all(|_| limiter.allow(&d, t0)));
        assert!(!limiter.allow(&d, t0));
        assert!(limiter.allow(&d, t0 + Duration::from_millis(100)));
        assert!(!limiter.allow(&d, t0 + Duration::from_millis(100)));
        assert!(limiter.allow(&ClientId::new("other"), t0));
    }
}
