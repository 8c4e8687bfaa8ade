//! `/metrics`: the HTTP layer's counters in the Prometheus text exposition format (version
//! 0.0.4), beside the service's own counters (requests, refusals by reason, fan-out sizes,
//! queue depths, storage latency). Names and labels only; never contents or keys.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use std::collections::BTreeMap;

use vmls_protocol::{Request, ServiceError};

/// The upper bounds (µs) of the request-latency histogram.
pub const LATENCY_BOUNDS_US: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

/// A histogram with fixed upper bounds.
#[derive(Debug)]
pub struct Histogram {
    bounds: &'static [u64],
    counts: Vec<AtomicU64>,
    sum: AtomicU64,
    count: AtomicU64,
}

impl Histogram {
    /// A histogram over `bounds` (ascending).
    pub fn new(bounds: &'static [u64]) -> Self {
        Self {
            bounds,
            counts: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }

    /// Records one observation.
    pub fn observe(&self, value: u64) {
        if let Some(i) = self.bounds.iter().position(|b| value <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.sum.fetch_add(value, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the histogram as `name_bucket`, `name_sum`, `name_count` (cumulative buckets).
    fn render(&self, out: &mut String, name: &str, help: &str) {
        let counts: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
        render_histogram(
            out,
            name,
            help,
            self.bounds,
            &counts,
            self.sum.load(Ordering::Relaxed),
            self.count.load(Ordering::Relaxed),
        );
    }
}

/// Writes a histogram from per-bucket counts (`counts[i]` in `(bounds[i-1], bounds[i]]`).
pub fn render_histogram(
    out: &mut String,
    name: &str,
    help: &str,
    bounds: &[u64],
    counts: &[u64],
    sum: u64,
    count: u64,
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
    let mut cumulative = 0u64;
    for (bound, c) in bounds.iter().zip(counts) {
        cumulative += c;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
}

/// Writes a counter family with one label.
pub fn render_labelled(
    out: &mut String,
    name: &str,
    kind: &str,
    help: &str,
    label: &str,
    values: &[(&str, u64)],
) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (value, n) in values {
        let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {n}");
    }
}

/// Writes one unlabelled sample.
pub fn render_single(out: &mut String, name: &str, kind: &str, help: &str, value: i64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

/// The name of a request's type, as in docs/protocol.md.
pub fn request_name(request: &Request) -> &'static str {
    match request {
        Request::RegisterDevice(_) => "register_device",
        Request::RegisterVirtualClient(_) => "register_virtual_client",
        Request::CreateGroup(_) => "create_group",
        Request::Send(_) => "send",
        Request::PublishGroupInfo(_) => "publish_group_info",
        Request::FetchGroupInfo(_) => "fetch_group_info",
        Request::PublishKeyPackages(_) => "publish_key_packages",
        Request::ConsumeKeyPackage(_) => "consume_key_package",
        Request::RetireKeyPackages(_) => "retire_key_packages",
        Request::Fetch(_) => "fetch",
        Request::ReadMailbox(_) => "read_mailbox",
        Request::Ack(_) => "ack",
        Request::GroupStatus(_) => "group_status",
    }
}

/// The name of a refusal, as in docs/protocol.md (the variant in snake case; a quota adds its
/// name: `quota_exceeded:body_size`).
pub fn refusal_name(error: &ServiceError) -> String {
    let base = match error {
        ServiceError::UnknownClient { .. } => "unknown_client",
        ServiceError::ClientExists { .. } => "client_exists",
        ServiceError::NotADevice { .. } => "not_a_device",
        ServiceError::NotAVirtualClient { .. } => "not_a_virtual_client",
        ServiceError::NotAnEmulator { .. } => "not_an_emulator",
        ServiceError::UnknownGroup { .. } => "unknown_group",
        ServiceError::GroupExists { .. } => "group_exists",
        ServiceError::NotAMember { .. } => "not_a_member",
        ServiceError::StaleEpoch { .. } => "stale_epoch",
        ServiceError::FutureEpoch { .. } => "future_epoch",
        ServiceError::VirtualClientSequenceMismatch { .. } => "virtual_client_sequence_mismatch",
        ServiceError::EmulationGroupBehind { .. } => "emulation_group_behind",
        ServiceError::NotACommit {} => "not_a_commit",
        ServiceError::NoGroupInfo { .. } => "no_group_info",
        ServiceError::Truncated { .. } => "truncated",
        ServiceError::NoKeyPackage { .. } => "no_key_package",
        ServiceError::InvalidMessage { .. } => "invalid_message",
        ServiceError::ClaimMismatch { .. } => "claim_mismatch",
        ServiceError::Unauthorized { .. } => "unauthorized",
        ServiceError::QuotaExceeded { quota, .. } => {
            return format!("quota_exceeded:{}", sanitize(&quota.0))
        }
        ServiceError::BadRequest { .. } => "bad_request",
        ServiceError::Unavailable { .. } => "unavailable",
    };
    base.to_string()
}

/// Keeps a label value to `[a-z0-9_]` (quota names are ours, but never trust text).
fn sanitize(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect()
}

/// The HTTP layer's counters (one set per server).
#[derive(Debug)]
pub struct HttpMetrics {
    requests: Mutex<BTreeMap<&'static str, u64>>,
    refusals: Mutex<BTreeMap<String, u64>>,
    latency_us: Histogram,
    push_connections: AtomicI64,
    push_wakeups: AtomicU64,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            requests: Mutex::new(BTreeMap::new()),
            refusals: Mutex::new(BTreeMap::new()),
            latency_us: Histogram::new(&LATENCY_BOUNDS_US),
            push_connections: AtomicI64::new(0),
            push_wakeups: AtomicU64::new(0),
        }
    }
}

impl HttpMetrics {
    /// Counts one authenticated request of `name` answered after `elapsed`.
    pub fn request(&self, name: &'static str, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default() += 1;
        self.latency_us
            .observe(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Counts one refusal (by the HTTP layer or the service).
    pub fn refusal(&self, error: &ServiceError) {
        *self
            .refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(refusal_name(error))
            .or_default() += 1;
    }

    /// A push socket opened (`+1`) or closed (`-1`).
    pub fn push_connection(&self, delta: i64) {
        self.push_connections.fetch_add(delta, Ordering::Relaxed);
    }

    /// A wake-up was pushed.
    pub fn push_wakeup(&self) {
        self.push_wakeups.fetch_add(1, Ordering::Relaxed);
    }

    /// Writes the HTTP layer's families.
    pub fn render(&self, out: &mut String) {
        let requests: Vec<(&str, u64)> = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect();
        render_labelled(
            out,
            "vmls_http_requests_total",
            "counter",
            "Authenticated requests answered, by request type.",
            "type",
            &requests,
        );
        let refusals = self.refusals.lock().unwrap_or_else(|e| e.into_inner());
        let refusals: Vec<(&str, u64)> = refusals.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        render_labelled(
            out,
            "vmls_http_refusals_total",
            "counter",
            "Requests refused (by the HTTP layer or the service), by reason.",
            "reason",
            &refusals,
        );
        self.latency_us.render(
            out,
            "vmls_http_request_duration_us",
            "Time from a complete request body to the answer, in microseconds.",
        );
        render_single(
            out,
            "vmls_push_connections",
            "gauge",
            "Open push WebSockets.",
            self.push_connections.load(Ordering::Relaxed),
        );
        render_single(
            out,
            "vmls_push_wakeups_total",
            "counter",
            "Wake-ups pushed to devices.",
            i64::try_from(self.push_wakeups.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vmls_protocol::Text;

    #[test]
    fn renders_prometheus_text() {
        let m = HttpMetrics::default();
        m.request("send", Duration::from_micros(300));
        m.refusal(&ServiceError::QuotaExceeded {
            quota: Text::new("body_size"),
            limit: 10,
        });
        let mut out = String::new();
        m.render(&mut out);
        assert!(out.contains("vmls_http_requests_total{type=\"send\"} 1"));
        assert!(out.contains("vmls_http_refusals_total{reason=\"quota_exceeded:body_size\"} 1"));
        assert!(out.contains("vmls_http_request_duration_us_bucket{le=\"250\"} 0"));
        assert!(out.contains("vmls_http_request_duration_us_bucket{le=\"500\"} 1"));
        assert!(out.contains("vmls_http_request_duration_us_count 1"));
    }
}
