//! Memory per state key, in one process and without a broker: `--keys` changelog records of a
//! service's typical key are decoded and put in partitions as a restore does, then the
//! process's RSS growth is divided by the keys.
//!
//! `cargo run -p shelfguard-e2e --bin state_rss -- --service inventory --keys 1000000`
//!
//! The keys' states (a key after a few events, each input with a few event ids):
//! - inventory: the benchmark's key ([`shelfguard_e2e::bench::inventory_slot`]): 8 id hashes,
//!   3 recent movements;
//! - stockout-detector: a (store, SKU) with its last stock level and sales rate, 8 id hashes;
//! - offer-generator: a (store, SKU) with its level and learned baskets, no open episode,
//!   8 id hashes.
use std::collections::HashMap;
use std::time::Instant;

use anyhow::{Result, bail};
use clap::Parser;
use shelfguard_events::state::{DetectorItem, OfferItem, Partner};
use shelfguard_events::topics::{INVENTORY_STOCK_LEVELS, STORE_SALES};
use shelfguard_runtime::state::{PartitionState, Slot};

#[derive(Parser)]
struct Cli {
    /// inventory, stockout-detector or offer-generator.
    #[arg(long, default_value = "inventory")]
    service: String,
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// Partitions the keys are spread over.
    #[arg(long, default_value_t = 3)]
    partitions: usize,
}

fn rss() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn key(k: usize) -> String {
    format!("S-{:04}/SKU-{:08}-STD-500G", k % 5000, k / 5000)
}

fn marked<S: prost::Message + Default>(state: S, k: usize, topics: &[&str]) -> Slot<S> {
    let mut slot = Slot {
        state,
        ..Default::default()
    };
    for (i, topic) in topics.iter().enumerate() {
        for n in 0..8 / topics.len() {
            let id = format!("{:08x}-{:04x}-4000-8000-{:012x}", k, n, i);
            slot.mark(topic, (k * 8 + n) as i64, &id);
        }
    }
    slot
}

fn detector(k: usize) -> (String, Vec<u8>) {
    use shelfguard_events::inventory::StockLevel;
    let key = key(k);
    let (store, sku) = key.split_once('/').unwrap_or_default();
    let state = DetectorItem {
        level: Some(StockLevel {
            event_id: format!("sl:{:08x}-0001-4000-8000-{:012x}:{sku}", k, k),
            occurred_at_ms: 1_795_000_000_000,
            store_id: store.into(),
            sku: sku.into(),
            on_hand: 17,
            cause: 1,
            sold: 1,
            reorder_point: 6,
            ..Default::default()
        }),
        episode_seq: 1,
        sales_weight: 3.25,
        exposure_ms: 86_400_000.0,
        rate_updated_at_ms: 1_795_000_000_000,
        last_sale_at_ms: 1_795_000_000_000,
        ..Default::default()
    };
    (key, marked(state, k, &[INVENTORY_STOCK_LEVELS]).encode())
}

fn offers(k: usize) -> (String, Vec<u8>) {
    let state = OfferItem {
        on_hand: 17,
        committed_day: 20_775,
        baskets: 41.5,
        learned_at_ms: 1_795_000_000_000,
        partners: (0..2)
            .map(|i| Partner {
                sku: format!("SKU-{:08}-STD-500G", k / 5000 + i + 1),
                baskets: 3.5,
            })
            .collect(),
        ..Default::default()
    };
    (
        key(k),
        marked(state, k, &[STORE_SALES, INVENTORY_STOCK_LEVELS]).encode(),
    )
}

fn inventory(k: usize) -> (String, Vec<u8>) {
    let (key, slot) = shelfguard_e2e::bench::inventory_slot(k);
    (key, slot.encode())
}

fn measure<S: prost::Message + Default>(cli: &Cli, make: fn(usize) -> (String, Vec<u8>)) {
    let before = rss();
    let started = Instant::now();
    let mut parts: HashMap<usize, PartitionState<S>> = HashMap::new();
    let mut changelog = 0usize;
    for k in 0..cli.keys {
        let (key, bytes) = make(k);
        changelog += key.len() + bytes.len();
        let slot = Slot::<S>::decode(&bytes).expect("a record decodes");
        parts
            .entry(k % cli.partitions)
            .or_default()
            .slots
            .insert(key, slot);
    }
    for p in parts.values_mut() {
        p.reindex();
    }
    let secs = started.elapsed().as_secs_f64();
    let grown = rss().saturating_sub(before) as f64;
    let packed: usize = parts.values().map(|p| p.slots.packed_bytes()).sum();
    let n = cli.keys as f64;
    println!(
        "{}: {} keys: RSS {:.0} B/key, packed (key + slot) {:.1} B/key, changelog record (key + value) {:.1} B/key, {:.0} keys/s restored (decode + pack)",
        cli.service,
        cli.keys,
        grown / n,
        packed as f64 / n,
        changelog as f64 / n,
        n / secs
    );
    // Unpack cost: every key's state once, as a visit does.
    let started = Instant::now();
    let mut sum = 0usize;
    for p in parts.values() {
        for (k, s) in p.slots.iter().take(200_000) {
            sum += k.len() + s.recent.len();
        }
    }
    let visited = parts
        .values()
        .map(|p| p.slots.len().min(200_000))
        .sum::<usize>();
    println!(
        "unpack: {:.0} ns per key ({visited} keys, {sum})",
        started.elapsed().as_secs_f64() * 1e9 / visited as f64
    );
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.service.as_str() {
        "inventory" => measure::<shelfguard_events::state::InventoryItem>(&cli, inventory),
        "stockout-detector" => measure::<DetectorItem>(&cli, detector),
        "offer-generator" => measure::<OfferItem>(&cli, offers),
        s => bail!("unknown service {s}"),
    }
    Ok(())
}
