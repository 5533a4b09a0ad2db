//! Measures the time from publishing a failed reorder outcome to the offer on
//! `floor.offers.v1`, over N runs (default 25), on an embedded broker with the three services.
//!
//! `cargo run -p shelfguard-e2e --bin latency -- [runs]`
use std::time::{Duration, Instant};

use anyhow::Result;
use shelfguard_e2e::{Env, fixtures::*};
use shelfguard_events::floor::{OfferEvent, offer_event::Change};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::main]
async fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(25);
    let env = Env::start("latency").await?;
    let skus = env.publish_families("L", runs).await?;
    let shutdown = CancellationToken::new();
    let k = env.kafka.clone();
    let inv = shelfguard_inventory::Config {
        kafka: k.clone(),
        policy: Default::default(),
    };
    let det = shelfguard_stockout_detector::Config {
        kafka: k.clone(),
        policy: Default::default(),
    };
    // One store gets every offer of the measurement: its gesture budget must not run out.
    let off = shelfguard_offer_generator::Config {
        kafka: k.clone(),
        policy: shelfguard_offer_generator::lifecycle::Policy {
            store_daily_budget_cents: 1_000_000_000,
            ..Default::default()
        },
    };
    tokio::spawn(shelfguard_inventory::run(inv, shutdown.clone()));
    tokio::spawn(shelfguard_stockout_detector::run(det, shutdown.clone()));
    tokio::spawn(shelfguard_offer_generator::run(off, shutdown.clone()));

    let store = "S1";
    for sku in &skus {
        env.publish(
            STORE_STOCK_MOVEMENTS,
            store,
            &count(store, &sku.replace("-14", "-28"), 10),
        )
        .await?;
        env.publish(STORE_STOCK_MOVEMENTS, store, &count(store, sku, 1))
            .await?;
    }
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    let offers = env.tail(FLOOR_OFFERS)?;
    // Run 1 is cold (state restores, first connections) and is reported apart from the rest.
    let mut samples = Vec::new();
    for (i, sku) in skus.iter().enumerate() {
        env.publish(STORE_SALES, store, &sale(store, sku, 1))
            .await?;
        let (req, _) = requests
            .until::<ReorderRequest>(WAIT, |r| &r.sku == sku)
            .await?;
        let mut outcome = failed(store, sku, 1, "supplier out of stock");
        outcome.reorder_id = req.reorder_id;
        let t0 = Instant::now();
        env.publish(WAREHOUSE_REORDER_OUTCOMES, store, &outcome)
            .await?;
        offers
            .until::<OfferEvent>(WAIT, |e| {
                e.stockout_id.starts_with(&format!("{store}/{sku}/"))
                    && matches!(e.change, Some(Change::Issued(_)))
            })
            .await?;
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        println!("run {:>2}: {ms:7.1} ms", i + 1);
        samples.push(ms);
    }
    shutdown.cancel();
    let first = samples[0];
    let mut rest = samples[1..].to_vec();
    rest.sort_by(f64::total_cmp);
    let median = rest[rest.len() / 2];
    let p90 = rest[(rest.len() * 9 / 10).min(rest.len() - 1)];
    println!(
        "failed reorder outcome published -> offer on floor.offers.v1 (3 services, 3 hops, embedded tansu, memory storage)"
    );
    println!("first run (cold: state restore, connections): {first:.1} ms");
    println!(
        "next {} runs: median {median:.1} ms, p90 {p90:.1} ms, worst {:.1} ms, best {:.1} ms",
        rest.len(),
        rest[rest.len() - 1],
        rest[0]
    );
    Ok(())
}
