//! Memory per state key: builds N inventory keys as the engine holds them after a few sales
//! (a partition's `PartitionState`, with each key's applied offsets and recent event ids) and
//! prints the process's resident memory growth per key, next to the key's changelog record size.
//!
//! `cargo run -p shelfguard-e2e --bin state_bytes -- [keys]` (default 1,000,000)
use shelfguard_events::state::{BookEntry, InventoryItem};
use shelfguard_runtime::state::{PartitionState, Slot};

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let keys: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let before = rss();
    let mut part: PartitionState<InventoryItem> = PartitionState::default();
    let mut record_bytes = 0usize;
    for k in 0..keys {
        let key = format!("S-{:04}/SKU-{:08}-STD-500G", k % 5000, k / 5000);
        let mut slot = Slot {
            state: InventoryItem {
                on_hand: 17,
                counted_at_ms: 1_795_000_000_000,
                reorder_seq: 2,
                recent_moves: (0..3)
                    .map(|i| BookEntry {
                        at_ms: 1_795_000_000_000 + i,
                        delta: -1,
                    })
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        };
        for (i, topic) in ["store.sales.v1", "store.stock-movements.v1"]
            .iter()
            .enumerate()
        {
            for n in 0..4 {
                let id = format!("{:08x}-{:04x}-4000-8000-{:012x}", k, n, i);
                slot.mark(topic, (k * 8 + n) as i64, &id);
            }
        }
        record_bytes += slot.encoded_len() + key.len();
        part.put(&key, slot);
    }
    let grown = rss().saturating_sub(before);
    let per_key = grown as f64 / keys as f64;
    println!("| keys | RSS growth | per key | changelog record (value + key) per key |");
    println!("|---|---|---|---|");
    println!(
        "| {keys} | {:.1} MB | {per_key:.0} bytes | {:.0} bytes |",
        grown as f64 / 1e6,
        record_bytes as f64 / keys as f64
    );
    println!(
        "(inline: a Slot<InventoryItem> is {} bytes, the InventoryItem {} of them)",
        std::mem::size_of::<Slot<InventoryItem>>(),
        std::mem::size_of::<InventoryItem>()
    );
    std::hint::black_box(&part);
}
