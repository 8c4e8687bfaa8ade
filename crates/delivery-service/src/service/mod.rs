//! The delivery service as the network layer calls it: [`Service`], over one of the storage
//! backends ([`crate::store`]), with wake-ups ([`Subscription`]) and counters
//! ([`CountersSnapshot`]).
//!
//! Every request goes through [`Service::handle`]: it runs the service's checks (issue 14
//! "What the service checks itself") against what storage holds, inside one storage
//! transaction, and returns only after an accepted request is durable. A refused request
//! changes nothing. The HTTP layer authenticates the device first (with [`Service::device_key`])
//! and passes its id; the service trusts that id and nothing else the request claims.

mod counters;
mod wakeups;

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::Mutex;
use vmls_protocol::{ClientId, Request, Response, ServiceError, Text};

pub use counters::{
    refusal_reason, request_type, CountersSnapshot, HistogramSnapshot, FAN_OUT_BUCKETS,
    LATENCY_BUCKETS_US, REFUSAL_REASONS, REQUEST_TYPES,
};
pub use wakeups::{Subscription, SubscriptionClosed};

use crate::store::{DatabaseUrl, StoreError};
use crate::InMemoryDeliveryService;

/// The configured limits (quotas) of the service; each is refused with
/// [`ServiceError::QuotaExceeded`] naming it. Per-second rate limits are the HTTP layer's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The largest MLS message (and Welcome, GroupInfo, KeyPackage) accepted, in octets.
    pub max_message_size: usize,
    /// The most unacknowledged items a device's mailbox holds; a message whose fan-out would
    /// exceed it for some recipient is refused.
    pub max_mailbox_backlog: u64,
    /// The most KeyPackages (ordinary ones) the directory keeps per owner.
    pub max_key_packages_per_owner: u64,
    /// The most items one [`Request::ReadMailbox`] or [`Request::Fetch`] returns.
    pub max_read_items: u32,
}

impl Default for Limits {
    /// 1 MiB messages, 100,000 mailbox items, 1,000 KeyPackages per owner, 1,024 items a read.
    fn default() -> Self {
        Self {
            max_message_size: 1 << 20,
            max_mailbox_backlog: 100_000,
            max_key_packages_per_owner: 1_000,
            max_read_items: 1_024,
        }
    }
}

/// What [`Service::open`] opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// The database (see [`DatabaseUrl::parse`]).
    pub database: DatabaseUrl,
    /// The limits.
    pub limits: Limits,
}

impl ServiceConfig {
    /// The database of `url` with the default [`Limits`].
    pub fn new(url: &str) -> Result<Self, StoreError> {
        Ok(Self {
            database: DatabaseUrl::parse(url)?,
            limits: Limits::default(),
        })
    }

    /// The in-memory backend with the default [`Limits`].
    pub fn memory() -> Self {
        Self {
            database: DatabaseUrl::Memory,
            limits: Limits::default(),
        }
    }
}

/// How many items wait in mailboxes, for the queue-depth metric.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueDepths {
    /// Unacknowledged items in all mailboxes.
    pub mailbox_items: u64,
    /// The largest backlog of one device.
    pub largest_mailbox: u64,
}

/// The delivery service: cheap to clone (an `Arc` inside), `Send + Sync`.
#[derive(Clone, Debug)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    limits: Limits,
    backend: Backend,
    wakeups: wakeups::Wakeups,
    counters: counters::Counters,
}

/// The storage behind a service.
#[derive(Debug)]
enum Backend {
    /// The in-memory service (until the checking core lands on every backend).
    Memory(Mutex<InMemoryDeliveryService>),
}

impl Service {
    /// Opens (and migrates) the database of `config`.
    pub async fn open(config: ServiceConfig) -> Result<Service, StoreError> {
        let backend = match &config.database {
            DatabaseUrl::Memory => Backend::Memory(Mutex::new(InMemoryDeliveryService::new())),
            other => {
                return Err(StoreError::UnsupportedUrl {
                    url: format!("{other:?}"),
                })
            }
        };
        Ok(Service {
            inner: Arc::new(Inner {
                limits: config.limits,
                backend,
                wakeups: wakeups::Wakeups::default(),
                counters: counters::Counters::default(),
            }),
        })
    }

    /// The limits the service enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Carries out one request of the authenticated `device` at time `now` (seconds since the
    /// Unix epoch: KeyPackage lifetimes). Returns after an accepted request is durable; a
    /// refused request ([`Response::Refused`]) changed nothing. Storage failures are answered
    /// with [`ServiceError::Unavailable`] (retry).
    pub async fn handle(&self, device: &ClientId, request: Request, now: u64) -> Response {
        let inner = &self.inner;
        inner.counters.request(&request);
        let started = Instant::now();
        let response = match &inner.backend {
            Backend::Memory(service) => service.lock().await.handle(device, request, now),
        };
        inner.counters.storage(started.elapsed());
        if let Response::Refused(e) = &response {
            inner.counters.refusal(e);
        }
        if matches!(response, Response::Accepted(_)) {
            // The legacy backend does not say which mailboxes got items: wake everyone.
            inner.counters.accepted(0);
            inner.wakeups.notify_all();
        }
        response
    }

    /// Wake-ups for `device`: "its mailbox may have new items". Fed by this instance's
    /// deliveries and (PostgreSQL) by other instances' through LISTEN/NOTIFY.
    pub fn subscribe(&self, device: &ClientId) -> Subscription {
        self.inner.wakeups.subscribe(device)
    }

    /// The signature scheme and public key `device` registered
    /// ([`Request::RegisterDevice`]), for authenticating its requests; `None` if it is not
    /// registered.
    pub async fn device_key(
        &self,
        device: &ClientId,
    ) -> Result<Option<(u16, Vec<u8>)>, StoreError> {
        match &self.inner.backend {
            Backend::Memory(service) => Ok(service.lock().await.device_key(device)),
        }
    }

    /// The counters so far (this instance's).
    pub fn counters(&self) -> CountersSnapshot {
        self.inner.counters.snapshot()
    }

    /// How many items wait in mailboxes (all instances': read from storage).
    pub async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        match &self.inner.backend {
            Backend::Memory(service) => Ok(service.lock().await.queue_depths()),
        }
    }
}

/// A refusal for a storage failure: nothing changed, retry.
#[allow(dead_code)]
pub(crate) fn unavailable(e: &StoreError) -> ServiceError {
    ServiceError::Unavailable {
        reason: Text::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Service>();
    }
}
