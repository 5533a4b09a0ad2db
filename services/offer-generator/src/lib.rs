//! offer-generator: answers an opened stockout with an offer for the floor staff
//! (a better product the store has, and a gesture), follows it to its end (accepted, declined,
//! redeemed, expired, withdrawn), within the store's daily gesture budget.
//!
//! Business rules, each in its own module (pure): `substitute` (which product to give),
//! `gesture` (what the customer pays), `budget` (what a store may give away per day),
//! `complements` (what sells together, learned from baskets), `lifecycle` (one live offer per
//! episode, from issue to its end), `checks` (a suspected stockout becomes a shelf check for the
//! staff, not an offer).
pub mod budget;
pub mod checks;
pub mod complements;
pub mod gesture;
pub mod lifecycle;
pub mod metrics;
pub mod substitute;

use anyhow::Result;
use clap::Parser;
use shelfguard_events::topics;
use shelfguard_runtime::{KafkaArgs, engine, health::Health, table};
use tokio_util::sync::CancellationToken;

/// Settings of the offer generator. Every flag is also an environment variable.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "offer-generator",
    version,
    about = "Offers for the floor staff when a stockout opens."
)]
pub struct Config {
    #[command(flatten)]
    pub kafka: KafkaArgs,
    #[command(flatten)]
    pub policy: lifecycle::Policy,
}

/// Composition root: catalogue table, health endpoints, then the consumer loop until shutdown.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<()> {
    shelfguard_runtime::preflight::reach(&config.kafka).await?;
    let health = Health::spawn(&config.kafka.health_addr, &shutdown);
    let catalog = table::catalog(
        &config.kafka,
        lifecycle::SERVICE,
        topics::OFFERS_DLQ,
        shutdown.clone(),
    )
    .await?;
    health.set_catalogue(catalog.positions_handle());
    engine::run_observed(
        &config.kafka,
        lifecycle::Offers::new(config.policy, catalog),
        health,
        shutdown,
        metrics::Funnel::default(),
    )
    .await?;
    Ok(())
}
