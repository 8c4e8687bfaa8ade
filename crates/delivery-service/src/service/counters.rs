//! Counters of what the service did, for the Prometheus exporter of the HTTP layer: requests
//! by type, refusals by reason, fan-out sizes, storage latency. Cheap atomics, no locks on the
//! request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use vmls_protocol::{Request, ServiceError};

/// The request types, in [`Request`]'s wire order; names as in docs/protocol.md.
pub const REQUEST_TYPES: [&str; 13] = [
    "register_device",
    "register_virtual_client",
    "create_group",
    "send",
    "publish_group_info",
    "fetch_group_info",
    "publish_key_packages",
    "consume_key_package",
    "retire_key_packages",
    "fetch",
    "read_mailbox",
    "ack",
    "group_status",
];

/// The refusal reasons, in [`ServiceError`]'s wire order (code - 1).
pub const REFUSAL_REASONS: [&str; 22] = [
    "unknown_client",
    "client_exists",
    "not_a_device",
    "not_a_virtual_client",
    "not_an_emulator",
    "unknown_group",
    "group_exists",
    "not_a_member",
    "stale_epoch",
    "future_epoch",
    "virtual_client_sequence_mismatch",
    "emulation_group_behind",
    "not_a_commit",
    "no_group_info",
    "truncated",
    "no_key_package",
    "invalid_message",
    "claim_mismatch",
    "unauthorized",
    "quota_exceeded",
    "bad_request",
    "unavailable",
];

/// The upper bounds of the histogram buckets of fan-out sizes (mailboxes per accepted message).
pub const FAN_OUT_BUCKETS: [u64; 8] = [1, 2, 5, 10, 20, 50, 100, 1000];

/// The upper bounds, in microseconds, of the buckets of storage latency (one transaction).
pub const LATENCY_BUCKETS_US: [u64; 10] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 100_000, 1_000_000,
];

/// The index of a request's type in [`REQUEST_TYPES`].
pub fn request_type(request: &Request) -> usize {
    match request {
        Request::RegisterDevice(_) => 0,
        Request::RegisterVirtualClient(_) => 1,
        Request::CreateGroup(_) => 2,
        Request::Send(_) => 3,
        Request::PublishGroupInfo(_) => 4,
        Request::FetchGroupInfo(_) => 5,
        Request::PublishKeyPackages(_) => 6,
        Request::ConsumeKeyPackage(_) => 7,
        Request::RetireKeyPackages(_) => 8,
        Request::Fetch(_) => 9,
        Request::ReadMailbox(_) => 10,
        Request::Ack(_) => 11,
        Request::GroupStatus(_) => 12,
    }
}

/// The name of a refusal's reason (an entry of [`REFUSAL_REASONS`]).
pub fn refusal_reason(error: &ServiceError) -> &'static str {
    REFUSAL_REASONS[refusal_index(error)]
}

fn refusal_index(error: &ServiceError) -> usize {
    use ServiceError as E;
    match error {
        E::UnknownClient { .. } => 0,
        E::ClientExists { .. } => 1,
        E::NotADevice { .. } => 2,
        E::NotAVirtualClient { .. } => 3,
        E::NotAnEmulator { .. } => 4,
        E::UnknownGroup { .. } => 5,
        E::GroupExists { .. } => 6,
        E::NotAMember { .. } => 7,
        E::StaleEpoch { .. } => 8,
        E::FutureEpoch { .. } => 9,
        E::VirtualClientSequenceMismatch { .. } => 10,
        E::EmulationGroupBehind { .. } => 11,
        E::NotACommit {} => 12,
        E::NoGroupInfo { .. } => 13,
        E::Truncated { .. } => 14,
        E::NoKeyPackage { .. } => 15,
        E::InvalidMessage { .. } => 16,
        E::ClaimMismatch { .. } => 17,
        E::Unauthorized { .. } => 18,
        E::QuotaExceeded { .. } => 19,
        E::BadRequest { .. } => 20,
        E::Unavailable { .. } => 21,
    }
}

/// A histogram: counts per bucket (the last counts values above every bound), sum and count.
#[derive(Debug)]
struct Histogram<const N: usize> {
    bounds: [u64; N],
    buckets: [AtomicU64; N],
    above: AtomicU64,
    sum: AtomicU64,
    count: AtomicU64,
}

impl<const N: usize> Histogram<N> {
    fn new(bounds: [u64; N]) -> Self {
        Self {
            bounds,
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            above: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    fn observe(&self, value: u64) {
        match self.bounds.iter().position(|b| value <= *b) {
            Some(i) => self.buckets[i].fetch_add(1, Ordering::Relaxed),
            None => self.above.fetch_add(1, Ordering::Relaxed),
        };
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            bounds: self.bounds.to_vec(),
            counts: self
                .buckets
                .iter()
                .map(|b| b.load(Ordering::Relaxed))
                .collect(),
            above: self.above.load(Ordering::Relaxed),
            sum: self.sum.load(Ordering::Relaxed),
            count: self.count.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's values at one moment (not cumulative per bucket: `counts[i]` counts the
/// observations in `(bounds[i-1], bounds[i]]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistogramSnapshot {
    /// The upper bounds of the buckets.
    pub bounds: Vec<u64>,
    /// Observations per bucket.
    pub counts: Vec<u64>,
    /// Observations above the last bound.
    pub above: u64,
    /// The sum of all observations.
    pub sum: u64,
    /// How many observations.
    pub count: u64,
}

/// The service's counters (one set per [`super::Service`], shared by its clones).
#[derive(Debug)]
pub(crate) struct Counters {
    requests: [AtomicU64; REQUEST_TYPES.len()],
    refusals: [AtomicU64; REFUSAL_REASONS.len()],
    fan_out: Histogram<{ FAN_OUT_BUCKETS.len() }>,
    storage_latency_us: Histogram<{ LATENCY_BUCKETS_US.len() }>,
    messages_accepted: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Self {
            requests: std::array::from_fn(|_| AtomicU64::new(0)),
            refusals: std::array::from_fn(|_| AtomicU64::new(0)),
            fan_out: Histogram::new(FAN_OUT_BUCKETS),
            storage_latency_us: Histogram::new(LATENCY_BUCKETS_US),
            messages_accepted: AtomicU64::new(0),
        }
    }
}

impl Counters {
    pub(crate) fn request(&self, request: &Request) {
        self.requests[request_type(request)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn refusal(&self, error: &ServiceError) {
        self.refusals[refusal_index(error)].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn accepted(&self, fan_out: usize) {
        self.messages_accepted.fetch_add(1, Ordering::Relaxed);
        self.fan_out
            .observe(u64::try_from(fan_out).unwrap_or(u64::MAX));
    }

    pub(crate) fn storage(&self, elapsed: Duration) {
        self.storage_latency_us
            .observe(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    pub(crate) fn snapshot(&self) -> CountersSnapshot {
        CountersSnapshot {
            requests: REQUEST_TYPES
                .iter()
                .zip(&self.requests)
                .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
                .collect(),
            refusals: REFUSAL_REASONS
                .iter()
                .zip(&self.refusals)
                .map(|(n, c)| (*n, c.load(Ordering::Relaxed)))
                .collect(),
            messages_accepted: self.messages_accepted.load(Ordering::Relaxed),
            fan_out: self.fan_out.snapshot(),
            storage_latency_us: self.storage_latency_us.snapshot(),
        }
    }
}

/// The counters at one moment, for `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountersSnapshot {
    /// Requests handled, by type ([`REQUEST_TYPES`]).
    pub requests: Vec<(&'static str, u64)>,
    /// Requests refused, by reason ([`REFUSAL_REASONS`]).
    pub refusals: Vec<(&'static str, u64)>,
    /// Group messages accepted.
    pub messages_accepted: u64,
    /// Mailboxes each accepted message (and its Welcome) went to.
    pub fan_out: HistogramSnapshot,
    /// Duration of each storage transaction, in microseconds.
    pub storage_latency_us: HistogramSnapshot,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_names_follow_wire_codes() {
        let e = ServiceError::NotACommit {};
        let code = u16::from_be_bytes(vmls_protocol::encode(&e).unwrap()[..2].try_into().unwrap());
        assert_eq!(usize::from(code) - 1, refusal_index(&e));
        assert_eq!(refusal_reason(&e), "not_a_commit");
    }

    #[test]
    fn histogram_buckets() {
        let h = Histogram::new([1, 10]);
        for v in [0, 1, 5, 10, 11] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!((s.counts, s.above, s.sum, s.count), (vec![2, 2], 1, 27, 5));
    }
}
