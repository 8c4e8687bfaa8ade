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
mod directory;
mod groups;
mod mailbox;
mod mls;
mod registry;
mod send;
pub(crate) mod wakeups;

use std::sync::Arc;
use std::time::Instant;

use vmls_protocol::{ClientId, Request, Response, ServiceError, Text};

pub use counters::{
    refusal_reason, request_type, CountersSnapshot, HistogramSnapshot, FAN_OUT_BUCKETS,
    LATENCY_BUCKETS_US, REFUSAL_REASONS, REQUEST_TYPES,
};
pub use wakeups::{Subscription, SubscriptionClosed};

use crate::store::memory::MemoryStore;
use crate::store::postgres::PostgresStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{ClientRow, DatabaseUrl, Store, StoreError, Tx};

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
    wakeups: Arc<wakeups::Wakeups>,
    counters: counters::Counters,
}

/// The storage behind a service.
#[derive(Debug)]
enum Backend {
    Memory(MemoryStore),
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

/// How often a transaction that lost a race in storage (PostgreSQL serialization failure,
/// deadlock, unique violation of a concurrent insert) is run again before the request is
/// answered with [`ServiceError::Unavailable`].
const MAX_ATTEMPTS: usize = 16;

impl Service {
    /// Opens (and migrates) the database of `config`.
    pub async fn open(config: ServiceConfig) -> Result<Service, StoreError> {
        let wakeups = Arc::new(wakeups::Wakeups::default());
        let backend = match &config.database {
            DatabaseUrl::Memory => Backend::Memory(MemoryStore::new()),
            DatabaseUrl::Sqlite(path) => Backend::Sqlite(SqliteStore::open(path)?),
            DatabaseUrl::Postgres { url, schema } => Backend::Postgres(
                PostgresStore::connect(url, schema.as_deref(), wakeups.clone()).await?,
            ),
        };
        Ok(Service {
            inner: Arc::new(Inner {
                limits: config.limits,
                backend,
                wakeups,
                counters: counters::Counters::default(),
            }),
        })
    }

    /// A service on a new in-memory backend (nothing survives it), without `await`: the
    /// in-memory backend needs no I/O to open.
    pub fn in_memory(limits: Limits) -> Service {
        Service {
            inner: Arc::new(Inner {
                limits,
                backend: Backend::Memory(MemoryStore::new()),
                wakeups: Arc::default(),
                counters: counters::Counters::default(),
            }),
        }
    }

    /// Whether the backend is the in-memory one, whose futures complete without waiting on
    /// I/O (what [`crate::InMemoryDeliveryService::handle`] relies on).
    pub(crate) fn is_in_memory(&self) -> bool {
        matches!(self.inner.backend, Backend::Memory(_))
    }

    /// How many unacknowledged items wait in `device`'s mailbox.
    pub async fn mailbox_len(&self, device: &ClientId) -> Result<u64, StoreError> {
        match &self.inner.backend {
            Backend::Memory(s) => s.begin().await?.mailbox_len(device).await,
            Backend::Sqlite(s) => s.begin().await?.mailbox_len(device).await,
            Backend::Postgres(s) => s.begin().await?.mailbox_len(device).await,
        }
    }

    /// The limits the service enforces.
    pub fn limits(&self) -> &Limits {
        &self.inner.limits
    }

    /// Carries out one request of the authenticated `device` at time `now` (seconds since the
    /// Unix epoch: KeyPackage lifetimes). Returns after an accepted request is durable; a
    /// refused request ([`Response::Refused`]) changed nothing. Storage failures are answered
    /// with [`ServiceError::Unavailable`] (nothing changed; retry).
    pub async fn handle(&self, device: &ClientId, request: Request, now: u64) -> Response {
        let inner = &self.inner;
        inner.counters.request(&request);
        let started = Instant::now();
        let result = match &inner.backend {
            Backend::Memory(s) => run_with_retries(s, &inner.limits, device, request, now).await,
            Backend::Sqlite(s) => run_with_retries(s, &inner.limits, device, request, now).await,
            Backend::Postgres(s) => run_with_retries(s, &inner.limits, device, request, now).await,
        };
        inner.counters.storage(started.elapsed());
        match result {
            Ok(outcome) => {
                if let Some(n) = outcome.fan_out {
                    inner.counters.accepted(n);
                }
                for device in &outcome.woken {
                    inner.wakeups.notify(device);
                }
                outcome.response
            }
            Err(e) => {
                inner.counters.refusal(&e);
                Response::Refused(e)
            }
        }
    }

    /// Wake-ups for `device`: "its mailbox may have new items". Fed by this instance's
    /// deliveries and (PostgreSQL) by other instances' through LISTEN/NOTIFY.
    pub fn subscribe(&self, device: &ClientId) -> Subscription {
        self.inner.wakeups.subscribe(device)
    }

    /// The signature scheme and public key `device` registered
    /// ([`Request::RegisterDevice`]), for authenticating its requests; `None` if it is not
    /// registered (or is a virtual client).
    pub async fn device_key(
        &self,
        device: &ClientId,
    ) -> Result<Option<(u16, Vec<u8>)>, StoreError> {
        let row = match &self.inner.backend {
            Backend::Memory(s) => s.begin().await?.client(device).await?,
            Backend::Sqlite(s) => s.begin().await?.client(device).await?,
            Backend::Postgres(s) => s.begin().await?.client(device).await?,
        };
        Ok(match row {
            Some(ClientRow::Device {
                signature_scheme,
                signature_key,
            }) => Some((signature_scheme, signature_key)),
            _ => None,
        })
    }

    /// The counters so far (this instance's).
    pub fn counters(&self) -> CountersSnapshot {
        self.inner.counters.snapshot()
    }

    /// How many items wait in mailboxes (all instances': read from storage).
    pub async fn queue_depths(&self) -> Result<QueueDepths, StoreError> {
        let (mailbox_items, largest_mailbox) = match &self.inner.backend {
            Backend::Memory(s) => s.begin().await?.queue_depths().await?,
            Backend::Sqlite(s) => s.begin().await?.queue_depths().await?,
            Backend::Postgres(s) => s.begin().await?.queue_depths().await?,
        };
        Ok(QueueDepths {
            mailbox_items,
            largest_mailbox,
        })
    }
}

/// Why a request was not carried out.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Refused: the answer.
    Refused(ServiceError),
    /// Storage failed.
    Store(StoreError),
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Self::Refused(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What a carried-out request produced.
struct Outcome {
    response: Response,
    /// Devices whose mailboxes got items.
    woken: Vec<ClientId>,
    /// For an accepted message: how many mailbox items it made.
    fan_out: Option<usize>,
}

impl Outcome {
    fn plain(response: Response) -> Self {
        Self {
            response,
            woken: Vec::new(),
            fan_out: None,
        }
    }
}

/// [`ServiceError::QuotaExceeded`] for an MLS message over the size limit.
pub(crate) fn check_size(bytes: &[u8], max: usize) -> Result<(), ServiceError> {
    if bytes.len() > max {
        return Err(ServiceError::QuotaExceeded {
            quota: Text::new("message_size"),
            limit: max as u64,
        });
    }
    Ok(())
}

/// Runs a request in a transaction of `store`, again when the transaction lost a race.
async fn run_with_retries<S: Store>(
    store: &S,
    limits: &Limits,
    device: &ClientId,
    request: Request,
    now: u64,
) -> Result<Outcome, ServiceError> {
    let mut last = StoreError::Conflict;
    for _ in 0..MAX_ATTEMPTS {
        let mut tx = match store.begin().await {
            Ok(tx) => tx,
            Err(e) => return Err(unavailable(&e)),
        };
        match run(&mut tx, limits, device, request.clone(), now).await {
            Ok(outcome) => match tx.commit(&outcome.woken).await {
                Ok(()) => return Ok(outcome),
                Err(StoreError::Conflict) => last = StoreError::Conflict,
                Err(e) => return Err(unavailable(&e)),
            },
            Err(Failure::Refused(e)) => return Err(e),
            Err(Failure::Store(StoreError::Conflict)) => last = StoreError::Conflict,
            Err(Failure::Store(e)) => return Err(unavailable(&e)),
        }
    }
    Err(unavailable(&last))
}

/// Carries out one request inside `tx` (nothing is written unless every check passed).
async fn run<T: Tx>(
    tx: &mut T,
    limits: &Limits,
    device: &ClientId,
    request: Request,
    now: u64,
) -> Result<Outcome, Failure> {
    let done = |()| Outcome::plain(Response::done());
    Ok(match request {
        Request::RegisterDevice(r) => registry::register_device(tx, device, r).await.map(done)?,
        Request::RegisterVirtualClient(r) => registry::register_virtual_client(tx, device, r)
            .await
            .map(done)?,
        Request::CreateGroup(r) => groups::create_group(tx, device, r, limits.max_message_size)
            .await
            .map(done)?,
        Request::Send(r) => {
            let sent = send::send(tx, device, r, limits, now).await?;
            Outcome {
                response: sent.response,
                woken: sent.woken,
                fan_out: Some(sent.fan_out),
            }
        }
        Request::PublishGroupInfo(r) => {
            groups::publish_group_info(tx, device, r, limits.max_message_size)
                .await
                .map(done)?
        }
        Request::FetchGroupInfo(group_id) => Outcome::plain(Response::GroupInfo(
            groups::fetch_group_info(tx, device, &group_id).await?,
        )),
        Request::PublishKeyPackages(r) => directory::publish(tx, device, r, limits, now)
            .await
            .map(done)?,
        Request::ConsumeKeyPackage(r) => Outcome::plain(Response::KeyPackage(
            directory::consume(tx, device, r, now).await?,
        )),
        Request::RetireKeyPackages(r) => directory::retire(tx, device, r).await.map(done)?,
        Request::Fetch(r) => Outcome::plain(Response::Messages(
            groups::fetch(tx, device, r, limits.max_read_items).await?,
        )),
        Request::ReadMailbox(r) => Outcome::plain(Response::Mailbox(
            mailbox::read(tx, device, r, limits.max_read_items).await?,
        )),
        Request::Ack(r) => mailbox::ack(tx, device, r).await.map(done)?,
        Request::GroupStatus(group_id) => {
            Outcome::plain(Response::Status(groups::group_status(tx, &group_id).await?))
        }
    })
}

/// A refusal for a storage failure: nothing changed, retry.
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

    #[test]
    fn handle_future_is_send() {
        fn check<F: std::future::Future + Send>(_: F) {}
        let service = Service::in_memory(Limits::default());
        let device = ClientId::new("d");
        check(service.handle(
            &device,
            Request::GroupStatus(vmls_protocol::GroupId::new("g")),
            0,
        ));
        check(service.device_key(&device));
    }
}
