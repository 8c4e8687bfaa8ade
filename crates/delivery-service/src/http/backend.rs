//! What the HTTP layer needs of the service, as one small trait, so that the service behind
//! it is chosen in one place ([`super::open_backend`]).

use std::future::Future;

use vmls_protocol::{ClientId, Request, Response};

use crate::auth::DeviceKey;
use crate::metrics::{render_histogram, render_labelled, render_single};
use crate::service::{Service, Subscription};

/// The service as the HTTP layer calls it.
pub(crate) trait Backend: Clone + Send + Sync + 'static {
    /// A receiver of "this device's mailbox may have new items".
    type Subscription: Send + 'static;

    /// Carries out one authenticated request; the answer is durable when it returns.
    fn handle(
        &self,
        device: &ClientId,
        request: Request,
        now: u64,
    ) -> impl Future<Output = Response> + Send;

    /// The registered signature key of `device`; `Err` when storage failed.
    fn device_key(
        &self,
        device: &ClientId,
    ) -> impl Future<Output = Result<Option<DeviceKey>, String>> + Send;

    /// Subscribes to wake-ups of `device`'s mailbox.
    fn subscribe(&self, device: &ClientId) -> Self::Subscription;

    /// Waits for the next wake-up; `false` when the service is gone.
    fn changed(subscription: &mut Self::Subscription) -> impl Future<Output = bool> + Send;

    /// Appends the service's own metrics (Prometheus text).
    fn render_metrics(&self, out: &mut String) -> impl Future<Output = ()> + Send;
}

impl Backend for Service {
    type Subscription = Subscription;

    async fn handle(&self, device: &ClientId, request: Request, now: u64) -> Response {
        Service::handle(self, device, request, now).await
    }

    async fn device_key(&self, device: &ClientId) -> Result<Option<DeviceKey>, String> {
        Service::device_key(self, device)
            .await
            .map_err(|e| e.to_string())
    }

    fn subscribe(&self, device: &ClientId) -> Subscription {
        Service::subscribe(self, device)
    }

    async fn changed(subscription: &mut Subscription) -> bool {
        subscription.changed().await.is_ok()
    }

    async fn render_metrics(&self, out: &mut String) {
        let counters = self.counters();
        render_labelled(
            out,
            "vmls_service_requests_total",
            "counter",
            "Requests the service handled, by type.",
            "type",
            &counters.requests,
        );
        render_labelled(
            out,
            "vmls_service_refusals_total",
            "counter",
            "Requests the service refused, by reason.",
            "reason",
            &counters.refusals,
        );
        render_single(
            out,
            "vmls_messages_accepted_total",
            "counter",
            "Group messages accepted.",
            i64::try_from(counters.messages_accepted).unwrap_or(i64::MAX),
        );
        for (name, help, h) in [
            (
                "vmls_fan_out",
                "Mailboxes each accepted message went to.",
                &counters.fan_out,
            ),
            (
                "vmls_storage_latency_us",
                "Duration of each storage transaction, in microseconds.",
                &counters.storage_latency_us,
            ),
        ] {
            render_histogram(out, name, help, &h.bounds, &h.counts, h.sum, h.count);
        }
        if let Ok(depths) = self.queue_depths().await {
            render_single(
                out,
                "vmls_mailbox_items",
                "gauge",
                "Unacknowledged items in all mailboxes.",
                i64::try_from(depths.mailbox_items).unwrap_or(i64::MAX),
            );
            render_single(
                out,
                "vmls_mailbox_largest",
                "gauge",
                "The largest backlog of one device's mailbox.",
                i64::try_from(depths.largest_mailbox).unwrap_or(i64::MAX),
            );
        }
    }
}
