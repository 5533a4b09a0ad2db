//! inventory: keeps on-hand per (store, SKU) from sales and stock movements, asks the
//! warehouse for a reorder when stock crosses the reorder point, and records outcomes.
//!
//! `ledger` holds every business rule (pure); this file only wires it to Kafka.
pub mod ledger;

use anyhow::Result;
use clap::Parser;
use shelfguard_events::topics;
use shelfguard_runtime::{KafkaArgs, engine, health::Health, table};
use tokio_util::sync::CancellationToken;

/// Settings of the inventory service. Every flag is also an environment variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "inventory",
    version,
    about = "Stock ledger per (store, SKU) and warehouse reorders."
)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub policy: ledger::Policy,
}

/// Composition root: catalogue table, health endpoints, then the consumer loop until shutdown.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    shelfguard_runtime::preflight::reach(&config.kafka).await?;
    let health = Health::spawn(&config.kafka.health_addr, &shutdown);
    let catalog = table::catalog(
        &config.kafka,
        ledger::SERVICE,
        topics::INVENTORY_DLQ,
        shutdown.clone(),
    )
    .await?;
    health.set_catalogue(catalog.positions_handle());
    let ledger = ledger::Ledger::new(config.policy, catalog);
    engine::run(&config.kafka, ledger, health, shutdown).await?;
    Ok(())
}
