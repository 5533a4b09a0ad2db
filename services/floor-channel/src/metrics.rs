//! The channel's metrics, registered once per process in the runtime's registry (`/metrics`).
use std::sync::{Arc, OnceLock};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use shelfguard_runtime::metrics::Labels;

/// The findings a check answer can carry (the `finding` label of `check_answers`).
pub const FINDINGS: [&str; 2] = ["empty", "stock_is_there"];

/// Counters and gauges; clones share the values.
#[derive(Clone, Default)]
pub struct Metrics {
    /// Offer events applied to the live view (progress of the feed).
    pub offer_events: Counter,
    /// Records of floor.offers.v1 and floor.checks.v1 the feed could not decode (dead-lettered by
    /// the webhook path).
    pub undecodable: Counter,
    /// Live offers over all stores: what the floor is being asked to do.
    pub live_offers: Gauge,
    /// Shelf-check events applied to the live view (progress of the feed).
    pub check_events: Counter,
    /// Live shelf checks over all stores: what the floor is being asked to look at.
    pub live_checks: Gauge,
    /// Staff answers to shelf checks published, by `finding` (`empty`, `stock_is_there`).
    pub check_answers: Family<Labels, Counter>,
    /// Consoles and API clients following a stream right now.
    pub streams: Gauge,
    /// Staff answers (to offers and to shelf checks) published to floor.responses.v1.
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
                    "Undecodable records on floor.offers.v1 and floor.checks.v1",
                    m.undecodable.clone(),
                );
                register(
                    "floor_channel_check_events",
                    "Shelf-check events applied to the live view",
                    m.check_events.clone(),
                );
                register(
                    "floor_channel_live_checks",
                    "Live shelf checks over all stores",
                    m.live_checks.clone(),
                );
                // Both findings exist at 0 from the start (a family without series is not shown).
                for finding in FINDINGS {
                    m.check_answer(finding);
                }
                register(
                    "floor_channel_check_answers",
                    "Staff answers to shelf checks published, by finding",
                    m.check_answers.clone(),
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
                    "Staff answers published (offers and shelf checks)",
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

    /// The counter of check answers with `finding` (`empty` or `stock_is_there`).
    pub fn check_answer(&self, finding: &str) -> Counter {
        self.check_answers
            .get_or_create(&vec![("finding", finding.to_owned())])
            .clone()
    }
}
