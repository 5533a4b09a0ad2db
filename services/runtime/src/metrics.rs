//! The process's Prometheus registry, served at `/metrics` by [`crate::health`].
//!
//! Every metric is registered once, here or by a service, under the `shelfguard_` prefix, with
//! HELP text. Services register their own (domain) metrics with [`register`].
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::{Metric, Registry};

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
