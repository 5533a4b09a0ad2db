//! The channel's metrics, registered once per process in the runtime's registry (`/metrics`).
use std::sync::{Arc, OnceLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

/// Counters and gauges; clones share the values.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Offer events applied to the live view (progress of the feed).
    pub offer_events: Counter,
    /// Records of floor.offers.v1 the feed could not decode (dead-lettered by the webhook path).
    pub undecodable: Counter,
    /// Live offers over all stores: what the floor is being asked to do.
    pub live_offers: Gauge,
    /// Consoles and API clients following a stream right now.
    pub streams: Gauge,
    /// Staff answers published to floor.responses.v1.
    pub answers: Counter,
    /// Requests refused for a wrong or missing token (a spike means a misconfigured device or a probe).
    pub unauthorized: Counter,
    /// Webhook deliveries acknowledged by the receiver.
    pub webhooks_delivered: Counter,
    /// Webhook tries that failed and were retried.
    pub webhook_retries: Counter,
    /// Webhook deliveries given up and dead-lettered.
    pub webhooks_dead_lettered: Counter,
}

impl Metrics {
    /// The process's metrics, registered on first use.
    pub fn get() -> Arc<Metrics> {
        static METRICS: OnceLock<Arc<Metrics>> = OnceLock::new();
        METRICS
            .get_or_init(|| {
                let m = Metrics::default();
                use shelfguard_runtime::metrics::register;
                register(
                    "floor_channel_offer_events",
                    "Offer events applied to the live view",
                    m.offer_events.clone(),
                );
                register(
                    "floor_channel_undecodable",
                    "Undecodable records on floor.offers.v1",
                    m.undecodable.clone(),
                );
                register(
                    "floor_channel_live_offers",
                    "Live offers over all stores",
                    m.live_offers.clone(),
                );
                register(
                    "floor_channel_streams",
                    "Open console/API streams",
                    m.streams.clone(),
                );
                register(
                    "floor_channel_answers",
                    "Staff answers published",
                    m.answers.clone(),
                );
                register(
                    "floor_channel_unauthorized",
                    "Requests refused for a wrong or missing token",
                    m.unauthorized.clone(),
                );
                register(
                    "floor_channel_webhooks_delivered",
                    "Webhook deliveries acknowledged",
                    m.webhooks_delivered.clone(),
                );
                register(
                    "floor_channel_webhook_retries",
                    "Webhook tries failed and retried",
                    m.webhook_retries.clone(),
                );
                register(
                    "floor_channel_webhooks_dead_lettered",
                    "Webhook deliveries given up (dead-lettered)",
                    m.webhooks_dead_lettered.clone(),
                );
                Arc::new(m)
            })
            .clone()
    }
}
