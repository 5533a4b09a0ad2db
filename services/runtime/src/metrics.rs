//! The process's Prometheus registry, served at `/metrics` by [`crate::health`].
//!
//! Every metric is registered once, here or by a service, under the `shelfguard_` prefix, with
//! HELP text. Services register their own (domain) metrics with [`register`]. The engine's
//! metrics ([`Engine`]) carry a `service` label, so several services in one process (the local
//! run) share them.
//!
//! Counters are rendered OpenMetrics style: `# TYPE shelfguard_x counter` and samples named
//! `shelfguard_x_total`; register counters without the `_total` suffix, and HELP text without a
//! final full stop (the encoder adds one). A family without any label set is not rendered at
//! all (not even HELP): create the label sets you know of at start (counters at 0).
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Metric, Registry};

/// Label set of every metric here: (name, value) pairs, in a fixed order per metric.
pub type Labels = Vec<(&'static str, String)>;

fn registry() -> &'static Mutex<Registry> {
    static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(Registry::with_prefix("shelfguard")))
}

/// Registers `metric` as `shelfguard_<name>` with `help`. Register each name once per process.
pub fn register(name: &str, help: &str, metric: impl Metric) {
    let mut r = registry().lock().unwrap_or_else(|p| p.into_inner());
    r.register(name, help, metric);
}

/// The registry in Prometheus text format.
pub fn render() -> String {
    let r = registry().lock().unwrap_or_else(|p| p.into_inner());
    let mut out = String::new();
    if let Err(e) = encode(&mut out, &r) {
        tracing::error!(error = %e, "encoding metrics");
    }
    out
}

/// Constructor of the processing-time histograms: 1 ms to ~33 s, doubling.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The metrics of the consumer loop ([`crate::engine`]), one set per process, labelled by service.
pub struct Engine {
    /// Records taken from each input topic (base name), dead letters included.
    pub consumed: Family<Labels, Counter>,
    /// Records published to each topic (base name): outputs and dead letters, not the changelog.
    pub produced: Family<Labels, Counter>,
    /// Seconds from a record's receipt by the service to its batch being done (outputs and
    /// changelog acknowledged by the broker, offset stored).
    pub processing: Family<Labels, Histogram, fn() -> Histogram>,
    /// Records not yet handled per assigned partition: high watermark minus stored offset.
    pub lag: Family<Labels, Gauge>,
    /// Records sent to the dead-letter topic, by the topic they came from (base name).
    pub dead_letters: Family<Labels, Counter>,
    /// 1 when `/readyz` answers 200 (connected, every assigned partition restored), else 0.
    pub ready: Family<Labels, Gauge>,
    /// Input partitions nobody consumes (records waiting, the group's offset still for longer
    /// than the session timeout, not held by this instance), by service; -1 while unknown.
    pub unowned: Family<Labels, Gauge>,
    /// Times the service left and rejoined its group because partitions stayed unowned.
    pub rejoins: Family<Labels, Counter>,
    /// Events held because their product is not in the catalogue yet, by service.
    pub held: Family<Labels, Gauge>,
    /// Held events dead-lettered (past the grace period, or refused once released), by service.
    pub given_up: Family<Labels, Counter>,
    /// The next offset of each catalogue partition this process will read: every record before
    /// it is applied, by service and partition.
    pub catalogue: Family<Labels, Gauge>,
}

/// The engine's metrics, registered on first use.
pub fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let e = Engine {
            consumed: Family::default(),
            produced: Family::default(),
            processing: Family::new_with_constructor(latency_histogram),
            lag: Family::default(),
            dead_letters: Family::default(),
            ready: Family::default(),
            unowned: Family::default(),
            rejoins: Family::default(),
            held: Family::default(),
            given_up: Family::default(),
            catalogue: Family::default(),
        };
        register(
            "events_consumed",
            "Records consumed, by service and input topic (base name, without TOPIC_PREFIX)",
            e.consumed.clone(),
        );
        register(
            "events_produced",
            "Records published (outputs and dead letters, not the state changelog), by service and topic (base name)",
            e.produced.clone(),
        );
        register(
            "processing_seconds",
            "Seconds from a record's receipt by the service until its outputs and state changes are acknowledged by the broker and its offset is stored",
            e.processing.clone(),
        );
        register(
            "consumer_lag",
            "Records not yet handled per assigned input partition: high watermark minus stored offset (librdkafka statistics, refreshed every second)",
            e.lag.clone(),
        );
        register(
            "dead_letters",
            "Records refused and sent to the service's dead-letter topic, by source topic (base name)",
            e.dead_letters.clone(),
        );
        register(
            "ready",
            "1 when the service is ready (connected to the broker, every assigned partition's state restored), else 0",
            e.ready.clone(),
        );
        register(
            "unowned_partitions",
            "Input partitions nobody consumes: not held by this instance, records waiting, and the group's committed offset unchanged for longer than the session timeout (looked at every 3 s; -1 while unknown)",
            e.unowned.clone(),
        );
        register(
            "group_rejoins",
            "Times the service left and rejoined its consumer group because input partitions stayed unowned longer than the session timeout",
            e.rejoins.clone(),
        );
        register(
            "held_events",
            "Events held because their product is not in the catalogue yet (applied in order when it arrives, dead-lettered after UNKNOWN_SKU_GRACE_HOURS)",
            e.held.clone(),
        );
        register(
            "held_events_given_up",
            "Held events dead-lettered: their product never arrived within the grace period, or they were refused once applied",
            e.given_up.clone(),
        );
        register(
            "catalogue_offset",
            "Next offset of each catalogue partition the service will read: every catalogue record before it is applied",
            e.catalogue.clone(),
        );
        e
    });
    ENGINE
        .get()
        .unwrap_or_else(|| unreachable!("initialised above"))
}

/// Labels `{service}`.
pub fn service(service: &str) -> Labels {
    vec![("service", service.to_owned())]
}

/// Labels `{service, topic}`.
pub fn service_topic(service: &str, topic: &str) -> Labels {
    vec![("service", service.to_owned()), ("topic", topic.to_owned())]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_metrics_render_with_help_and_openmetrics_counter_names() {
        let e = engine();
        e.consumed
            .get_or_create(&service_topic("svc", "a.v1"))
            .inc();
        e.processing.get_or_create(&service("svc")).observe(0.004);
        e.lag
            .get_or_create(&vec![
                ("service", "svc".into()),
                ("topic", "a.v1".into()),
                ("partition", "0".into()),
            ])
            .set(3);
        let text = render();
        for line in [
            "# HELP shelfguard_events_consumed Records consumed",
            "# TYPE shelfguard_events_consumed counter",
            "shelfguard_events_consumed_total{service=\"svc\",topic=\"a.v1\"} 1",
            "# TYPE shelfguard_processing_seconds histogram",
            "shelfguard_processing_seconds_bucket{le=\"0.004\",service=\"svc\"} 1",
            "# HELP shelfguard_consumer_lag Records not yet handled",
            "shelfguard_consumer_lag{service=\"svc\",topic=\"a.v1\",partition=\"0\"} 3",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
