//! stockout-detector: opens a stockout episode when the shelf is empty and replenishment
//! is blocked (confirmed), or when the books show stock but sales stopped far longer than the
//! learned sales rate explains (suspected, a phantom stockout); closes it when it is over.
//!
//! `episodes` holds every business rule (pure); this file only wires it to Kafka.
pub mod episodes;
pub mod metrics;

use anyhow::Result;
use clap::Parser;
use shelfguard_runtime::{KafkaArgs, engine, health::Health};
use tokio_util::sync::CancellationToken;

/// Settings of the stockout detector. Every flag is also an environment variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "stockout-detector",
    version,
    about = "Opens and closes stockout episodes per (store, SKU)."
)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub policy: episodes::Policy,
}

/// Composition root: health endpoints, then the consumer loop until shutdown.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    shelfguard_runtime::preflight::reach(&config.kafka).await?;
    let health = Health::spawn(&config.kafka.health_addr, &shutdown);
    engine::run_observed(
        &config.kafka,
        episodes::Detector::new(config.policy),
        health,
        shutdown,
        metrics::Stockouts::default(),
    )
    .await?;
    Ok(())
}
