//! Inventory throughput: N baskets are published first, then inventory is started and timed
//! until it has applied the last basket of every store. The broker (embedded tansu, memory
//! storage) runs on the same 2 cores, so this is a floor, not a ceiling.
//!
//! `cargo run -p shelfguard-e2e --bin throughput -- [baskets]`
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use futures::future::try_join_all;
use prost::Message as _;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use shelfguard_e2e::{Env, fixtures::*};
use shelfguard_events::inventory::StockLevel;
use shelfguard_events::store::{Sale, SaleLine};
use shelfguard_events::topics::*;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> Result<()> {
    let baskets: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let stores: Vec<String> = (1..=10).map(|i| format!("S{i:02}")).collect();
    let skus: Vec<String> = (0..200).map(|i| format!("P{i:03}")).collect();
    let env = Env::start("throughput").await?;
    for sku in &skus {
        env.publish(
            CATALOG_PRODUCTS,
            sku,
            &product(sku, "family", "Brand", 10.0, 500),
        )
        .await?;
    }
    // Plenty of stock, so that the measurement is sales, levels and a few reorders.
    for store in &stores {
        for sku in &skus {
            env.publish(STORE_STOCK_MOVEMENTS, store, &count(store, sku, 1_000_000))
                .await?;
        }
    }
    let producer: rdkafka::producer::FutureProducer = env.kafka.producer("throughput").create()?;
    let topic = env.kafka.topic(STORE_SALES);
    let mut last: BTreeMap<String, Sale> = BTreeMap::new();
    let mut lines = 0usize;
    let started = Instant::now();
    for chunk in (0..baskets).collect::<Vec<_>>().chunks(2_000) {
        let batch: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .map(|i| {
                let store = stores[i % stores.len()].clone();
                let n = 1 + i % 3;
                let s = Sale {
                    event_id: id(),
                    occurred_at_ms: now_ms(),
                    store_id: store.clone(),
                    basket_id: format!("b{i}"),
                    lines: (0..n)
                        .map(|k| SaleLine {
                            sku: skus[(i * 7 + k * 13) % skus.len()].clone(),
                            quantity: 1,
                            unit_price_cents: 500,
                        })
                        .collect(),
                };
                lines += n;
                let bytes = s.encode_to_vec();
                last.insert(store.clone(), s);
                (store, bytes)
            })
            .collect();
        try_join_all(batch.iter().map(|(k, v)| {
            producer.send(
                FutureRecord::to(&topic).key(k).payload(v),
                Timeout::After(Duration::from_secs(60)),
            )
        }))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
    }
    println!(
        "published {baskets} baskets ({lines} lines) in {:.2} s",
        started.elapsed().as_secs_f64()
    );

    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    let shutdown = CancellationToken::new();
    let config = shelfguard_inventory::Config {
        kafka: env.kafka.clone(),
        policy: Default::default(),
    };
    let started = Instant::now();
    tokio::spawn(shelfguard_inventory::run(config, shutdown.clone()));
    let mut waiting: BTreeMap<String, String> = last
        .iter()
        .map(|(store, s)| {
            (
                format!("sl:{}:{}", s.event_id, s.lines[0].sku),
                store.clone(),
            )
        })
        .collect();
    let mut seen = 0usize;
    while !waiting.is_empty() {
        let (l, skipped) = levels
            .until::<StockLevel>(Duration::from_secs(300), |l| {
                waiting.contains_key(&l.event_id)
            })
            .await?;
        seen += skipped.len() + 1;
        waiting.remove(&l.event_id);
    }
    let secs = started.elapsed().as_secs_f64();
    shutdown.cancel();
    println!(
        "inventory (from start, incl. catalogue load, group join and state restore) applied {baskets} baskets / {lines} lines in {secs:.2} s"
    );
    println!(
        "= {:.0} baskets/s, {:.0} sale lines/s ({} stock-level records read back)",
        baskets as f64 / secs,
        lines as f64 / secs,
        seen
    );
    Ok(())
}
