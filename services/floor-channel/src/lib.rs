//! floor-channel: brings offers and shelf checks to the people on the floor.
//!
//! - `feed`: every replica reads all of `floor.offers.v1` and `floor.checks.v1` from the
//!   beginning into the live view (`live` for offers, `checks` for shelf checks, both pure) and
//!   fans changes out to the consoles of each store.
//! - `http`: the console page (assets inside the binary), the JSON API and the SSE stream;
//!   staff answers (to offers and to checks) are published to `floor.responses.v1`. Tokens per
//!   store (`auth`, pure).
//! - `deliver`: webhooks through a consumer group (one replica delivers each event), bodies and
//!   signatures from `webhook` (pure); retries with back-off, dead letters after the last try.
pub mod auth;
pub mod checks;
pub mod deliver;
pub mod feed;
pub mod http;
pub mod live;
pub mod metrics;
pub mod webhook;

use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Parser};
use rdkafka::producer::FutureProducer;
use shelfguard_runtime::{KafkaArgs, health::Health};
use tokio_util::sync::CancellationToken;
use tracing::info;

pub const SERVICE: &str = "floor-channel";

/// A secret setting: clap keeps the raw text (so a parse error can never echo it), Debug hides it.
#[derive(Clone, Default)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "(empty)" } else { "***" })
    }
}

/// The parser of a secret setting (keeps the raw text; checked where it is used).
pub fn secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_owned()))
}

/// The currency of gift values when `FLOOR_CURRENCY` is not set.
pub const DEFAULT_CURRENCY: &str = "EUR";
/// Default of `HTTP_ADDR`.
pub const DEFAULT_HTTP_ADDR: &str = "0.0.0.0:8081";
/// Default of `WEBHOOK_MAX_ATTEMPTS`.
pub const DEFAULT_WEBHOOK_MAX_ATTEMPTS: u32 = 6;
/// Default of `WEBHOOK_BACKOFF_MS`.
pub const DEFAULT_WEBHOOK_BACKOFF_MS: u64 = 500;
/// Default of `WEBHOOK_BACKOFF_MAX_MS`.
pub const DEFAULT_WEBHOOK_BACKOFF_MAX_MS: u64 = 30_000;
/// Default of `WEBHOOK_TIMEOUT_MS`.
pub const DEFAULT_WEBHOOK_TIMEOUT_MS: u64 = 5_000;

/// An ISO 4217 code: three capital letters (also what keeps the page's markup safe).
pub fn currency(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) {
        Ok(s.to_owned())
    } else {
        Err(format!(
            "expected an ISO 4217 currency code of three capital letters such as EUR, not {s:?}"
        ))
    }
}

/// Settings of the floor channel. Every flag is also an environment variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "floor-channel",
    version,
    about = "The floor staff channel: live console per store, JSON API, webhooks."
)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,

    /// Address of the console, the API and the stream (health and metrics stay on HEALTH_ADDR).
    #[arg(long, env = "HTTP_ADDR", default_value = DEFAULT_HTTP_ADDR)]
    pub http_addr: String,

    /// Secret: the token of each store, `store=token,store=token` (a token opens only its store).
    #[arg(long, env = "STORE_TOKENS", default_value = "", value_parser = secret, hide_env_values = true, hide_default_value = true)]
    pub store_tokens: Secret,

    /// Secret: webhooks, a JSON array of `{"store":"S1","url":"https://...","format":"slack"|"json","secret":"..."}`.
    #[arg(long, env = "WEBHOOKS", default_value = "", value_parser = secret, hide_env_values = true, hide_default_value = true)]
    pub webhooks: Secret,

    /// Currency of the gift values on the console (ISO 4217 code, shown e.g. as €13.99).
    #[arg(long, env = "FLOOR_CURRENCY", default_value = DEFAULT_CURRENCY, value_parser = currency)]
    pub currency: String,

    #[command(flatten)]
    pub delivery: Delivery,
}

/// How webhooks are retried.
#[derive(Debug, Clone, Copy, Args)]
#[group(id = "webhook-delivery")]
pub struct Delivery {
    /// Tries per webhook and event (the first included) before the event is dead-lettered;
    /// at least 1.
    #[arg(long, env = "WEBHOOK_MAX_ATTEMPTS", default_value_t = DEFAULT_WEBHOOK_MAX_ATTEMPTS, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_attempts: u32,
    /// Wait before the second try in milliseconds; doubles for each further try.
    #[arg(long, env = "WEBHOOK_BACKOFF_MS", default_value_t = DEFAULT_WEBHOOK_BACKOFF_MS)]
    pub backoff_ms: u64,
    /// Longest wait between two tries, in milliseconds.
    #[arg(long, env = "WEBHOOK_BACKOFF_MAX_MS", default_value_t = DEFAULT_WEBHOOK_BACKOFF_MAX_MS)]
    pub backoff_max_ms: u64,
    /// Time limit of one try (connect, send, answer), in milliseconds; at least 1.
    #[arg(long, env = "WEBHOOK_TIMEOUT_MS", default_value_t = DEFAULT_WEBHOOK_TIMEOUT_MS, value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout_ms: u64,
}

impl Default for Delivery {
    fn default() -> Self {
        Self {
            max_attempts: DEFAULT_WEBHOOK_MAX_ATTEMPTS,
            backoff_ms: DEFAULT_WEBHOOK_BACKOFF_MS,
            backoff_max_ms: DEFAULT_WEBHOOK_BACKOFF_MAX_MS,
            timeout_ms: DEFAULT_WEBHOOK_TIMEOUT_MS,
        }
    }
}

/// Wall-clock time in UTC milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Composition root: health, the live view (loaded before the HTTP server opens), webhook
/// delivery, then the HTTP server until shutdown.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    let tokens =
        auth::parse(&config.store_tokens.0).map_err(|e| anyhow::anyhow!("STORE_TOKENS: {e}"))?;
    let targets =
        webhook::parse(&config.webhooks.0).map_err(|e| anyhow::anyhow!("WEBHOOKS: {e}"))?;
    if config.delivery.max_attempts == 0 {
        anyhow::bail!("WEBHOOK_MAX_ATTEMPTS must be at least 1");
    }
    currency(&config.currency).map_err(|e| anyhow::anyhow!("FLOOR_CURRENCY: {e}"))?;
    shelfguard_runtime::preflight::reach(&config.kafka).await?;
    info!(stores = ?tokens.stores(), webhooks = targets.0.len(), currency = config.currency, "floor channel starting");
    let metrics = metrics::Metrics::get();
    let health = Health::spawn(&config.kafka.health_addr, &shutdown);
    // `shelfguard_ready{service="floor-channel"}`, like the pipeline services (alerts use it).
    let ready = shelfguard_runtime::metrics::engine()
        .ready
        .get_or_create(&shelfguard_runtime::metrics::service(SERVICE))
        .clone();
    ready.set(0);
    let producer: FutureProducer = config
        .kafka
        .producer(SERVICE)
        .create()
        .context("creating producer")?;

    let shared = Arc::new(feed::Shared::new());
    let connected = feed::start(
        &config.kafka,
        shared.clone(),
        metrics.clone(),
        shutdown.clone(),
    )
    .await?;
    // Ready while the live view's reader reaches a broker (like the pipeline services): the
    // console would otherwise show a stale view and answers could not be published.
    {
        let (health, ready, shutdown) = (health.clone(), ready.clone(), shutdown.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tick.tick() => {
                        let up = connected.load(std::sync::atomic::Ordering::Relaxed);
                        health.set_ready(up);
                        ready.set(i64::from(up));
                    }
                }
            }
        });
    }

    let delivery = tokio::spawn(deliver::run(
        config.kafka.clone(),
        targets,
        config.delivery,
        producer.clone(),
        metrics.clone(),
        shutdown.clone(),
    ));
    let app = http::App {
        shared,
        tokens: Arc::new(tokens),
        producer,
        responses_topic: config
            .kafka
            .topic(shelfguard_events::topics::FLOOR_RESPONSES),
        metrics,
        shutdown: shutdown.clone(),
        console: Arc::from(http::console_page(&config.currency)),
    };
    let mut server = tokio::spawn(http::serve(config.http_addr.clone(), app, shutdown.clone()));
    // Either part failing stops the service (the orchestrator restarts it); shutdown stops both.
    let mut delivery = delivery;
    let (first, other) = tokio::select! {
        r = &mut server => (r, delivery),
        r = &mut delivery => (r, server),
    };
    shutdown.cancel();
    health.set_ready(false);
    ready.set(0);
    let first = first.context("floor-channel task")?;
    let other = other.await.context("floor-channel task")?;
    first.and(other)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, clap::Error> {
        Config::try_parse_from(std::iter::once("floor-channel").chain(args.iter().copied()))
    }

    #[test]
    fn the_currency_defaults_to_eur_and_must_be_an_iso_code() {
        // Not from the environment of whoever runs the tests.
        if std::env::var_os("FLOOR_CURRENCY").is_none() {
            assert_eq!(parse(&[]).unwrap().currency, "EUR");
        }
        assert_eq!(parse(&["--currency", "GBP"]).unwrap().currency, "GBP");
        for bad in ["eur", "EURO", "E", "", "E<R"] {
            let e = parse(&["--currency", bad]).unwrap_err().to_string();
            assert!(e.contains("three capital letters"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn webhook_tries_and_timeout_below_one_are_refused_at_start() {
        for arg in ["--max-attempts=0", "--timeout-ms=0"] {
            let e = parse(&[arg])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("not in 1.."), "{arg}: {e:?}");
        }
        let d = parse(&["--max-attempts=1", "--timeout-ms=1"])
            .unwrap()
            .delivery;
        assert_eq!((d.max_attempts, d.timeout_ms), (1, 1));
        let parsed = parse(&[]).unwrap().delivery;
        assert_eq!(format!("{parsed:?}"), format!("{:?}", Delivery::default()));
    }
}
