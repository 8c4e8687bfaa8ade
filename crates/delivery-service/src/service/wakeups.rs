//! Wake-ups: "the mailbox of this device may have new items". Fed locally after every
//! committed delivery, and (PostgreSQL) by LISTEN/NOTIFY from other instances.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;
use vmls_protocol::ClientId;

/// A receiver of wake-ups for one device. A wake-up carries no data: on one, read the
/// mailbox ([`vmls_protocol::Request::ReadMailbox`]). Wake-ups coalesce: many deliveries
/// between two reads are one wake-up.
#[derive(Debug)]
pub struct Subscription {
    receiver: watch::Receiver<u64>,
}

/// The [`Subscription`]'s service is gone (it was dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the service was dropped")]
pub struct SubscriptionClosed;

impl Subscription {
    /// Waits for the next wake-up after the last one seen (returns at once if one came since).
    pub async fn changed(&mut self) -> Result<(), SubscriptionClosed> {
        self.receiver
            .changed()
            .await
            .map_err(|_| SubscriptionClosed)
    }

    /// Whether a wake-up came that [`Self::changed`] has not returned yet.
    pub fn has_changed(&self) -> bool {
        self.receiver.has_changed().unwrap_or(false)
    }
}

/// The wake-up senders of every subscribed device.
#[derive(Debug, Default)]
pub(crate) struct Wakeups {
    senders: Mutex<HashMap<ClientId, watch::Sender<u64>>>,
}

impl Wakeups {
    /// A new subscription of `device`.
    pub(crate) fn subscribe(&self, device: &ClientId) -> Subscription {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        let sender = senders
            .entry(device.clone())
            .or_insert_with(|| watch::channel(0).0);
        Subscription {
            receiver: sender.subscribe(),
        }
    }

    /// Wakes every subscription of `device`; forgets the device when nobody listens.
    #[allow(dead_code)] // used by the checking core (next commit)
    pub(crate) fn notify(&self, device: &ClientId) {
        let mut senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = senders.get(device) {
            if sender.receiver_count() == 0 {
                senders.remove(device);
            } else {
                sender.send_modify(|n| *n = n.wrapping_add(1));
            }
        }
    }

    /// Wakes every subscribed device (after a lost LISTEN connection: anything may have come).
    pub(crate) fn notify_all(&self) {
        let senders = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        for sender in senders.values() {
            sender.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}
