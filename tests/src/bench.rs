//! The benchmark (`src/bin/bench.rs`): the services measured against the bare broker, in one run.
//!
//! Raw figures come from bare rdkafka clients on the same embedded broker, configured as the
//! services configure theirs (idempotent producer, `fetch.wait.max.ms`); service figures come
//! from the services run as their own processes (this executable serves them: `bench svc …`).
//! Every figure has a fixed key and label ([`FIGURES`]): the README's Measuring table lists the
//! same labels, and `tests/tests/bench.rs` checks that it does.
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures::future::try_join_all;
use prost::Message as _;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use serde_json::json;
use shelfguard_events::floor::{OfferEvent, offer_event::Change};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::state::{BookEntry, InventoryItem};
use shelfguard_events::store::{Sale, SaleLine};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;
use shelfguard_runtime::KafkaArgs;
use shelfguard_runtime::engine::MARKER_KEY;
use shelfguard_runtime::state::Slot;
use tokio::io::AsyncBufReadExt as _;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use crate::fixtures::*;
use crate::{Env, PARTITIONS};

/// Longest any single wait of the benchmark may take.
const WAIT: Duration = Duration::from_secs(300);

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// State keys in the changelog for the restore and memory figures.
    pub keys: usize,
    /// Latency samples (raw and pipeline), after warm-up runs.
    pub runs: usize,
    /// Sale lines (one per sale) for inventory's throughput.
    pub lines: usize,
    /// Records for each raw echo.
    pub echo: usize,
}

/// Every figure the benchmark prints: (key, label, unit, the raw figure it is compared with).
pub const FIGURES: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "raw_1hop_p50_ms",
        "raw 1 hop: produce → consume, p50",
        "ms",
        None,
    ),
    (
        "raw_1hop_p90_ms",
        "raw 1 hop: produce → consume, p90",
        "ms",
        None,
    ),
    (
        "raw_4hop_p50_ms",
        "raw 4 hops: produce → 3 forwarders → consume, p50",
        "ms",
        None,
    ),
    (
        "raw_4hop_p90_ms",
        "raw 4 hops: produce → 3 forwarders → consume, p90",
        "ms",
        None,
    ),
    (
        "pipeline_p50_ms",
        "pipeline: failed reorder outcome → offer (4 hops), p50",
        "ms",
        Some("raw_4hop_p50_ms"),
    ),
    (
        "pipeline_p90_ms",
        "pipeline: failed reorder outcome → offer (4 hops), p90",
        "ms",
        Some("raw_4hop_p90_ms"),
    ),
    (
        "raw_echo_1_per_s",
        "raw echo: consume → 1 output, acknowledged",
        "inputs/s",
        None,
    ),
    (
        "raw_echo_2_per_s",
        "raw echo: consume → 1 output, acknowledged → 1 changelog record, acknowledged",
        "inputs/s",
        None,
    ),
    (
        "inventory_lines_per_s",
        "inventory throughput (sales of one line; stock level + changelog each)",
        "lines/s",
        Some("raw_echo_2_per_s"),
    ),
    (
        "inventory_rss_per_key",
        "inventory RSS per state key",
        "bytes",
        None,
    ),
    (
        "inventory_changelog_per_key",
        "inventory changelog record (key + value) per state key",
        "bytes",
        None,
    ),
    (
        "raw_read_keys_per_s",
        "raw read of the changelog: one reader, every partition",
        "keys/s",
        None,
    ),
    (
        "inventory_restore_keys_per_s",
        "inventory restore rate",
        "keys/s",
        Some("raw_read_keys_per_s"),
    ),
    (
        "inventory_restore_ms",
        "inventory restore time, every partition",
        "ms",
        None,
    ),
    (
        "inventory_ready_ms_keys",
        "inventory process start → ready, with the changelog of the state keys",
        "ms",
        None,
    ),
    (
        "inventory_ready_ms_empty",
        "inventory process start → ready, empty changelog (cold start)",
        "ms",
        None,
    ),
];

/// The figures of one run, by key.
#[derive(Debug, Default)]
pub struct Report {
    pub values: BTreeMap<&'static str, f64>,
    pub sizes: Option<Sizes>,
    pub machine: String,
    pub command: String,
    /// The machine's 1-minute load average at the start and at the end of the run: other work
    /// on the same cores moves every figure.
    pub load: (f64, f64),
}

impl Report {
    fn set(&mut self, key: &'static str, v: f64) {
        debug_assert!(FIGURES.iter().any(|f| f.0 == key), "unknown figure {key}");
        self.values.insert(key, v);
    }

    fn ratio(&self, key: &str, of: &str) -> Option<f64> {
        let (a, b) = (self.values.get(key)?, self.values.get(of)?);
        (*b > 0.0).then(|| a / b)
    }

    /// The Markdown table (the README's Measuring table is this, pasted).
    pub fn table(&self) -> String {
        let mut s = String::from("| figure | value | unit | vs raw |\n|---|---:|---|---:|\n");
        for (key, label, unit, of) in FIGURES {
            let v = self
                .values
                .get(key)
                .map_or_else(|| "missing".to_owned(), |v| fmt_value(*v));
            let r = of
                .and_then(|of| self.ratio(key, of))
                .map_or_else(String::new, |r| format!("{r:.2}×"));
            s.push_str(&format!("| {label} | {v} | {unit} | {r} |\n"));
        }
        s
    }

    pub fn json(&self) -> serde_json::Value {
        let figures: Vec<_> = FIGURES
            .iter()
            .map(|(key, label, unit, of)| {
                json!({
                    "key": key,
                    "label": label,
                    "unit": unit,
                    "value": self.values.get(key),
                    "vs_raw": of.map(|of| json!({"of": of, "ratio": self.ratio(key, of)})),
                })
            })
            .collect();
        let sizes = self
            .sizes
            .as_ref()
            .map(|s| json!({"keys": s.keys, "runs": s.runs, "lines": s.lines, "echo": s.echo}));
        json!({
            "command": self.command,
            "machine": self.machine,
            "load_average": {"start": self.load.0, "end": self.load.1},
            "profile": if cfg!(debug_assertions) { "dev" } else { "release" },
            "sizes": sizes,
            "figures": figures,
        })
    }
}

fn fmt_value(v: f64) -> String {
    let digits = if v >= 100.0 { 0 } else { 1 };
    let s = format!("{v:.digits$}");
    // Thousands separators on the integer part.
    let (int, frac) = s
        .split_once('.')
        .map_or((s.as_str(), None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

/// This machine, in one line: CPU model and cores.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}

/// The 1-minute load average (Linux; 0 elsewhere).
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Runs every measurement against one embedded broker.
pub async fn run(sizes: Sizes, exe: PathBuf, progress: bool) -> Result<Report> {
    let say = |what: &str| {
        if progress {
            eprintln!("bench: {what}");
        }
    };
    let mut r = Report {
        sizes: Some(sizes.clone()),
        machine: machine(),
        load: (load_average(), 0.0),
        ..Report::default()
    };
    let env = Env::start("bench").await?;
    let svc = Services::new(&env, exe)?;

    say("raw latency, 1 hop and 4 hops");
    let one = raw_latency(&env.kafka, "raw.l1", 1, sizes.runs).await?;
    r.set("raw_1hop_p50_ms", percentile(&one, 50));
    r.set("raw_1hop_p90_ms", percentile(&one, 90));
    let four = raw_latency(&env.kafka, "raw.l4", 4, sizes.runs).await?;
    r.set("raw_4hop_p50_ms", percentile(&four, 50));
    r.set("raw_4hop_p90_ms", percentile(&four, 90));

    say("raw echo throughput, 1 and 2 outputs per input");
    r.set(
        "raw_echo_1_per_s",
        raw_echo(&env.kafka, "raw.e1", 1, sizes.echo).await?,
    );
    r.set(
        "raw_echo_2_per_s",
        raw_echo(&env.kafka, "raw.e2", 2, sizes.echo).await?,
    );

    say("inventory: cold start, then throughput");
    let stores: Vec<String> = (0..10).map(|i| format!("S{i:02}")).collect();
    let skus: Vec<String> = (0..200).map(|i| format!("P{i:03}")).collect();
    let products: Vec<Vec<u8>> = skus
        .iter()
        .map(|sku| product(sku, "family", "Brand", 10.0, 500).encode_to_vec())
        .collect();
    try_join_all(
        skus.iter()
            .zip(&products)
            .map(|(sku, p)| env.publish_raw(CATALOG_PRODUCTS, sku, p)),
    )
    .await?;
    let counts: Vec<(String, String)> = stores
        .iter()
        .flat_map(|st| skus.iter().map(move |sku| (st.clone(), sku.clone())))
        .collect();
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    // Cold start: an empty changelog (the catalogue holds its products, as it always does).
    let spawned = Instant::now();
    let mut a = svc.spawn("inventory", &[])?;
    a.ready(WAIT).await?;
    r.set(
        "inventory_ready_ms_empty",
        spawned.elapsed().as_secs_f64() * 1000.0,
    );
    let movements: Vec<Vec<u8>> = counts
        .iter()
        .map(|(st, sku)| count(st, sku, 1_000_000).encode_to_vec())
        .collect();
    try_join_all(
        counts
            .iter()
            .zip(&movements)
            .map(|((st, _), m)| env.publish_raw(STORE_STOCK_MOVEMENTS, st, m)),
    )
    .await?;
    let mut counted = BTreeSet::new();
    while counted.len() < counts.len() {
        let (l, _) = levels
            .until::<StockLevel>(WAIT, |l| l.cause == Cause::Count as i32)
            .await?;
        counted.insert((l.store_id, l.sku));
    }
    a.stop().await?;
    // Throughput: the sales wait on the broker, then a fresh process applies them.
    let producer: FutureProducer = env.kafka.producer("bench-load").create()?;
    let mut last: BTreeMap<String, String> = BTreeMap::new();
    let topic = env.kafka.topic(STORE_SALES);
    let sales: Vec<(String, Vec<u8>)> = (0..sizes.lines)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let sku = skus[(i * 7) % skus.len()].clone();
            let s = Sale {
                event_id: id(),
                occurred_at_ms: now_ms(),
                store_id: store.clone(),
                basket_id: format!("b{i}"),
                lines: vec![SaleLine {
                    sku: sku.clone(),
                    quantity: 1,
                    unit_price_cents: 500,
                }],
            };
            last.insert(store.clone(), format!("sl:{}:{sku}", s.event_id));
            (store, s.encode_to_vec())
        })
        .collect();
    for chunk in sales.chunks(5_000) {
        send_chunk(
            &producer,
            &topic,
            chunk
                .iter()
                .map(|(k, v)| (None, k.as_bytes(), v.as_slice())),
        )
        .await?;
    }
    let mut b = svc.spawn("inventory", &[])?;
    b.ready(WAIT).await?;
    // Timed from its first stock level of a sale (the start-up is the cold start's figure).
    let mut waiting: BTreeSet<String> = last.into_values().collect();
    let (first, _) = levels
        .until::<StockLevel>(WAIT, |l| l.cause == Cause::Sale as i32)
        .await?;
    let started = Instant::now();
    waiting.remove(&first.event_id);
    while !waiting.is_empty() {
        let (l, _) = levels
            .until::<StockLevel>(WAIT, |l| waiting.contains(&l.event_id))
            .await?;
        waiting.remove(&l.event_id);
    }
    r.set(
        "inventory_lines_per_s",
        (sizes.lines - 1) as f64 / started.elapsed().as_secs_f64(),
    );
    let rss_before = b.rss();

    say("pipeline latency");
    let samples = pipeline_latency(&env, &svc, &levels, sizes.runs).await?;
    r.set("pipeline_p50_ms", percentile(&samples, 50));
    r.set("pipeline_p90_ms", percentile(&samples, 90));
    b.stop().await?;

    say(&format!("restore of {} keys", sizes.keys));
    let (bytes, nonce) = load_changelog(&env.kafka, sizes.keys).await?;
    r.set(
        "inventory_changelog_per_key",
        bytes as f64 / sizes.keys as f64,
    );
    let (read_secs, read) = raw_read(&env.kafka, &env.kafka.topic(INVENTORY_STATE), &nonce).await?;
    r.set("raw_read_keys_per_s", read as f64 / read_secs);
    let spawned = Instant::now();
    let mut d = svc.spawn("inventory", &[])?;
    d.ready(WAIT).await?;
    r.set(
        "inventory_ready_ms_keys",
        spawned.elapsed().as_secs_f64() * 1000.0,
    );
    let (restored_keys, restore_ms) = d.restored();
    if restored_keys < sizes.keys {
        bail!(
            "inventory restored {restored_keys} keys of the {} written",
            sizes.keys
        );
    }
    r.set("inventory_restore_ms", restore_ms);
    r.set(
        "inventory_restore_keys_per_s",
        restored_keys as f64 / (restore_ms / 1000.0),
    );
    let grown = d.rss().saturating_sub(rss_before) as f64;
    r.set("inventory_rss_per_key", grown / sizes.keys as f64);
    d.stop().await?;
    r.load.1 = load_average();
    Ok(r)
}

/// The p-th percentile (nearest rank) of `samples`.
pub fn percentile(samples: &[f64], p: usize) -> f64 {
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    if s.is_empty() {
        return 0.0;
    }
    let rank = (p * s.len()).div_ceil(100).clamp(1, s.len());
    s[rank - 1]
}

/// Creates `topics` (full names) with `partitions` each.
async fn create_topics(kafka: &KafkaArgs, topics: &[String], partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> = kafka.client("bench-admin").create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| NewTopic::new(t, partitions, TopicReplication::Fixed(1)))
        .collect();
    for r in admin.create_topics(&new, &AdminOptions::new()).await? {
        r.map_err(|(t, e)| anyhow::anyhow!("creating {t}: {e}"))?;
    }
    Ok(())
}

/// A reader of every partition of `topic` from the beginning, which knows the partitions'
/// leaders before it is assigned (as the engine's readers do: no back-off before the first fetch).
async fn reader(kafka: &KafkaArgs, name: &str, topic: &str) -> Result<StreamConsumer> {
    let c: StreamConsumer = kafka.reader(name).create()?;
    let t = topic.to_owned();
    let (c, parts) = tokio::task::spawn_blocking(move || -> Result<_> {
        let md = c.fetch_metadata(Some(&t), Duration::from_secs(30))?;
        let parts: Vec<i32> = md
            .topics()
            .iter()
            .flat_map(|x| x.partitions().iter().map(|p| p.id()))
            .collect();
        Ok((c, parts))
    })
    .await??;
    let mut tpl = TopicPartitionList::new();
    for p in parts {
        tpl.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    c.assign(&tpl)?;
    Ok(c)
}

/// An idempotent producer as the services configure theirs, past its first (slow) send.
async fn warm_producer(kafka: &KafkaArgs, name: &str, topic: &str) -> Result<FutureProducer> {
    let p: FutureProducer = kafka.producer(name).create()?;
    p.send(
        FutureRecord::<[u8], [u8]>::to(topic)
            .partition(0)
            .payload(b"warm-up".as_slice()),
        Timeout::After(WAIT),
    )
    .await
    .map_err(|(e, _)| anyhow::anyhow!("warm-up send to {topic}: {e}"))?;
    Ok(p)
}

/// Sends records (partition, key, value) and waits for every acknowledgement.
async fn send_chunk<'a>(
    p: &FutureProducer,
    topic: &str,
    records: impl Iterator<Item = (Option<i32>, &'a [u8], &'a [u8])>,
) -> Result<()> {
    try_join_all(records.map(|(part, k, v)| {
        let mut rec = FutureRecord::to(topic).key(k).payload(v);
        if let Some(part) = part {
            rec = rec.partition(part);
        }
        p.send(rec, Timeout::After(WAIT))
    }))
    .await
    .map_err(|(e, _)| anyhow::anyhow!("publishing to {topic}: {e}"))?;
    Ok(())
}

/// Produce → consume through `hops` topics: one producer, `hops - 1` forwarders (consume, then
/// produce and wait for the acknowledgement, as a service does), one reader. Returns `runs`
/// samples in ms after a few warm-up runs (first fetches and producer ids).
async fn raw_latency(kafka: &KafkaArgs, name: &str, hops: usize, runs: usize) -> Result<Vec<f64>> {
    let topics: Vec<String> = (0..hops)
        .map(|i| kafka.topic(&format!("{name}.{i}")))
        .collect();
    create_topics(kafka, &topics, 1).await?;
    let mut forwarders = Vec::new();
    for i in 0..hops - 1 {
        let from = reader(kafka, &format!("bench-fwd-{i}"), &topics[i]).await?;
        let to = topics[i + 1].clone();
        let out = warm_producer(kafka, &format!("bench-fwd-{i}"), &to).await?;
        forwarders.push(tokio::spawn(async move {
            loop {
                let Ok(m) = from.recv().await else { continue };
                let payload = m.payload().unwrap_or_default().to_vec();
                drop(m);
                if payload == b"warm-up" {
                    continue;
                }
                let _ = out
                    .send(
                        FutureRecord::<[u8], [u8]>::to(&to)
                            .partition(0)
                            .payload(&payload),
                        Timeout::After(WAIT),
                    )
                    .await;
            }
        }));
    }
    let last = reader(kafka, "bench-last", &topics[hops - 1]).await?;
    let source = warm_producer(kafka, "bench-source", &topics[0]).await?;
    let warm_up = 3;
    let mut samples = Vec::new();
    for run in 0..warm_up + runs {
        let payload = format!("run-{run}");
        let t0 = Instant::now();
        source
            .send(
                FutureRecord::<[u8], [u8]>::to(&topics[0])
                    .partition(0)
                    .payload(payload.as_bytes()),
                Timeout::After(WAIT),
            )
            .await
            .map_err(|(e, _)| anyhow::anyhow!("{e}"))?;
        loop {
            let m = tokio::time::timeout(WAIT, last.recv())
                .await
                .context("raw latency: record not seen")??;
            if m.payload() == Some(payload.as_bytes()) {
                break;
            }
        }
        if run >= warm_up {
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    for f in forwarders {
        f.abort();
    }
    Ok(samples)
}

/// Consume → produce throughput of a bare client, the engine's loop without state: take what
/// has arrived (up to 500), publish one output per input and wait for the acknowledgements;
/// with `outputs == 2`, then one changelog-sized record per input and wait again. `records`
/// inputs wait on the broker first; timed from the first input received to the last
/// acknowledgement. Returns inputs/s.
async fn raw_echo(kafka: &KafkaArgs, name: &str, outputs: usize, records: usize) -> Result<f64> {
    let (input, out, cl) = (
        kafka.topic(&format!("{name}.in")),
        kafka.topic(&format!("{name}.out")),
        kafka.topic(&format!("{name}.changelog")),
    );
    create_topics(kafka, &[input.clone(), out.clone(), cl.clone()], PARTITIONS).await?;
    let loader: FutureProducer = kafka.producer("bench-load").create()?;
    let payload = vec![b's'; 100];
    let keys: Vec<String> = (0..records).map(|i| format!("S{:02}", i % 10)).collect();
    for chunk in keys.chunks(5_000) {
        send_chunk(
            &loader,
            &input,
            chunk
                .iter()
                .map(|k| (None, k.as_bytes(), payload.as_slice())),
        )
        .await?;
    }
    let producer = warm_producer(kafka, &format!("{name}-echo"), &out).await?;
    let consumer = reader(kafka, &format!("{name}-echo"), &input).await?;
    let state = vec![b'c'; 220];
    let mut done = 0usize;
    let mut started = None;
    while done < records {
        let first = tokio::time::timeout(WAIT, consumer.recv())
            .await
            .context("echo: inputs stopped")??;
        started.get_or_insert_with(Instant::now);
        let mut batch = vec![first.detach()];
        while batch.len() < 500 {
            use futures::FutureExt as _;
            match consumer.recv().now_or_never() {
                Some(Ok(m)) => batch.push(m.detach()),
                _ => break,
            }
        }
        send_chunk(
            &producer,
            &out,
            batch.iter().map(|m| {
                (
                    None,
                    m.key().unwrap_or_default(),
                    m.payload().unwrap_or_default(),
                )
            }),
        )
        .await?;
        if outputs == 2 {
            send_chunk(
                &producer,
                &cl,
                batch.iter().map(|m| {
                    (
                        Some(m.partition()),
                        m.key().unwrap_or_default(),
                        state.as_slice(),
                    )
                }),
            )
            .await?;
        }
        done += batch.len();
    }
    let secs = started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    Ok(records as f64 / secs)
}

/// A key's state after a few sales, as the engine holds and writes it: two inputs applied with
/// four recent event ids each, three recent movements.
pub fn inventory_slot(k: usize) -> (String, Slot<InventoryItem>) {
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
    for (i, topic) in [STORE_SALES, STORE_STOCK_MOVEMENTS].iter().enumerate() {
        for n in 0..4 {
            let id = format!("{:08x}-{:04x}-4000-8000-{:012x}", k, n, i);
            slot.mark(topic, (k * 8 + n) as i64, &id);
        }
    }
    (key, slot)
}

/// Writes `keys` state keys to inventory's changelog, spread over its partitions, then an end
/// marker per partition; returns the bytes written (keys + values) and the marker's nonce.
async fn load_changelog(kafka: &KafkaArgs, keys: usize) -> Result<(usize, String)> {
    let topic = kafka.topic(INVENTORY_STATE);
    let producer: FutureProducer = kafka
        .client("bench-changelog")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let mut bytes = 0usize;
    let mut k = 0;
    while k < keys {
        let n = (keys - k).min(20_000);
        let records: Vec<(i32, String, Vec<u8>)> = (k..k + n)
            .map(|k| {
                let (key, slot) = inventory_slot(k);
                (k as i32 % PARTITIONS, key, slot.encode())
            })
            .collect();
        bytes += records
            .iter()
            .map(|(_, k, v)| k.len() + v.len())
            .sum::<usize>();
        send_chunk(
            &producer,
            &topic,
            records
                .iter()
                .map(|(p, k, v)| (Some(*p), k.as_bytes(), v.as_slice())),
        )
        .await?;
        k += n;
    }
    let nonce = format!("bench-end-{:016x}", rand::random::<u64>());
    send_chunk(
        &producer,
        &topic,
        (0..PARTITIONS).map(|p| (Some(p), MARKER_KEY.as_bytes(), nonce.as_bytes())),
    )
    .await?;
    Ok((bytes, nonce))
}

/// A plain reader of every partition of `topic`, from its creation until it has seen the end
/// marker `nonce` on each: (seconds, state records read).
async fn raw_read(kafka: &KafkaArgs, topic: &str, nonce: &str) -> Result<(f64, usize)> {
    let started = Instant::now();
    let c = reader(kafka, "bench-raw-read", topic).await?;
    let mut ends = BTreeSet::new();
    let mut read = 0usize;
    while ends.len() < PARTITIONS as usize {
        let m = tokio::time::timeout(WAIT, c.recv())
            .await
            .context("raw read: end marker not seen")??;
        if m.key() == Some(MARKER_KEY.as_bytes()) {
            if m.payload() == Some(nonce.as_bytes()) {
                ends.insert(m.partition());
            }
            continue;
        }
        read += 1;
    }
    Ok((started.elapsed().as_secs_f64(), read))
}

/// Failed reorder outcome published → offer issued, `runs` samples after one warm-up run, with
/// the three deciding services as their own processes (inventory is already running).
async fn pipeline_latency(
    env: &Env,
    svc: &Services,
    levels: &crate::Tail,
    runs: usize,
) -> Result<Vec<f64>> {
    let det = svc.spawn("stockout-detector", &[])?;
    let off = svc.spawn("offer-generator", &[])?;
    let skus = env.publish_families("L", runs + 1).await?;
    let store = "L1";
    let stock: Vec<(String, i32)> = skus
        .iter()
        .flat_map(|s| [(s.replace("-14", "-28"), 10), (s.clone(), 1)])
        .collect();
    let stock_refs: Vec<(&str, i32)> = stock.iter().map(|(s, u)| (s.as_str(), *u)).collect();
    let mut det = det;
    let mut off = off;
    det.ready(WAIT).await?;
    off.ready(WAIT).await?;
    env.count_and_await(levels, store, &stock_refs, WAIT)
        .await?;
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    let offers = env.tail(FLOOR_OFFERS)?;
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
        if i > 0 {
            samples.push(t0.elapsed().as_secs_f64() * 1000.0);
        }
    }
    det.stop().await?;
    off.stop().await?;
    Ok(samples)
}

/// Starts services as processes of this executable (`<exe> svc <service>`), their logs piped
/// back so that readiness and restores are read from what the service says, not polled.
struct Services {
    exe: PathBuf,
    bootstrap: String,
    prefix: String,
    logs: PathBuf,
}

impl Services {
    fn new(env: &Env, exe: PathBuf) -> Result<Self> {
        let logs = crate::target_dir().join("e2e-logs").join("bench");
        std::fs::create_dir_all(&logs)?;
        Ok(Self {
            exe,
            bootstrap: env.broker.bootstrap.clone(),
            prefix: env.kafka.topic_prefix.clone(),
            logs,
        })
    }

    fn spawn(&self, service: &str, env: &[(&str, &str)]) -> Result<Proc> {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("svc")
            .arg(service)
            .env("KAFKA_BOOTSTRAP_SERVERS", &self.bootstrap)
            .env("TOPIC_PREFIX", &self.prefix)
            .env("HEALTH_ADDR", "")
            .env("STORE_DAILY_BUDGET_CENTS", "1000000000")
            .env_remove("RUST_LOG")
            .env_remove("LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {service}"))?;
        let stderr = child.stderr.take().context("no stderr")?;
        let (tx, lines) = mpsc::unbounded_channel();
        let n = std::fs::read_dir(&self.logs)?.count();
        let log_path = self.logs.join(format!("{n:02}-{service}.log"));
        let mut log = std::fs::File::create(&log_path)?;
        tokio::spawn(async move {
            use std::io::Write as _;
            let mut r = tokio::io::BufReader::new(stderr).lines();
            while let Ok(Some(line)) = r.next_line().await {
                let _ = writeln!(log, "{line}");
                let _ = tx.send(line);
            }
        });
        Ok(Proc {
            name: service.to_owned(),
            child,
            lines,
            seen: Vec::new(),
            log: log_path,
        })
    }
}

/// A service process and the lines it logged.
struct Proc {
    name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<String>,
    seen: Vec<String>,
    log: PathBuf,
}

impl Proc {
    /// Waits until the service logs that it is ready.
    async fn ready(&mut self, within: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .ok()
                .flatten()
                .with_context(|| format!("{} not ready; log: {}", self.name, self.log.display()))?;
            let ready = line.contains("readiness changed") && line.contains("ready=true");
            self.seen.push(line);
            if ready {
                return Ok(());
            }
        }
    }

    /// Keys restored and the longest restore in ms, from the "state restored" lines so far.
    fn restored(&mut self) -> (usize, f64) {
        while let Ok(l) = self.lines.try_recv() {
            self.seen.push(l);
        }
        let mut keys = 0;
        let mut ms: f64 = 0.0;
        for l in self.seen.iter().filter(|l| l.contains("state restored")) {
            keys += field(l, "keys").unwrap_or(0) as usize;
            ms = ms.max(field(l, "millis").unwrap_or(0) as f64);
        }
        (keys, ms)
    }

    /// Resident set size in bytes (Linux).
    fn rss(&self) -> u64 {
        let Some(pid) = self.child.id() else { return 0 };
        let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
        statm
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(0)
            * 4096
    }

    /// SIGTERM, then waits for a clean exit.
    async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()?;
        }
        let status = tokio::time::timeout(Duration::from_secs(60), self.child.wait()).await??;
        if !status.success() {
            bail!(
                "{} exited with {status} after SIGTERM; log: {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }
}

/// The number after `name=` in a log line.
fn field(line: &str, name: &str) -> Option<u64> {
    let pat = format!(" {name}=");
    let at = line.find(&pat)? + pat.len();
    let digits: String = line[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let s: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&s, 50), 5.0);
        assert_eq!(percentile(&s, 90), 9.0);
        assert_eq!(percentile(&[3.0], 90), 3.0);
    }

    #[test]
    fn fields_are_read_from_log_lines() {
        let l =
            "INFO state restored service=\"inventory\" records=12 keys=10 millis=345 marker_ms=3";
        assert_eq!(field(l, "keys"), Some(10));
        assert_eq!(field(l, "millis"), Some(345));
        assert_eq!(field(l, "nothing"), None);
    }

    #[test]
    fn values_have_thousands_separators() {
        assert_eq!(fmt_value(1_234_567.4), "1,234,567");
        assert_eq!(fmt_value(12.34), "12.3");
        assert_eq!(fmt_value(850.0), "850");
    }
}
