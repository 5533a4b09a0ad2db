//! simulator: plays the store systems and the warehouse so the rest of shelfguard has
//! something to react to.
//!
//! On start it publishes a seeded catalogue and an opening COUNT per (store, SKU), with a
//! few "troubled" SKUs per store opened nearly empty. Then every store sells Poisson baskets,
//! and the warehouse answers reorder requests: troubled SKUs fail the first few times, the
//! others ship and arrive as RECEIPT movements after a delivery delay.
//!
//! `catalog`, `traffic` and `warehouse` hold the logic (pure); this file wires it to Kafka.
//! `week` (a simulated week in simulated time, with the ground truth) and `score` (episodes
//! and offers against that truth) serve the `week` measurement of the e2e crate.
pub mod catalog;
pub mod score;
pub mod traffic;
pub mod warehouse;
pub mod week;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context as _, Result, anyhow, bail};
use clap::Args;
use prost::Message as _;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord, Producer as _};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::util::Timeout;
use shelfguard_events::catalog::Product;
use shelfguard_events::store::{MovementKind, Sale, SaleLine, StockMovement};
use shelfguard_events::topics;
use shelfguard_events::warehouse::{OutcomeStatus, ReorderRequest};
use shelfguard_runtime::KafkaArgs;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::warehouse::{Record, Scheduled, Warehouse, WarehousePolicy};

/// Client id of the producer and the warehouse consumer.
pub const CLIENT_ID: &str = "simulator";
/// Consumer group of the warehouse.
pub const WAREHOUSE_GROUP: &str = "simulator-warehouse";
/// Opening count of an ordinary SKU (inclusive range).
pub const NORMAL_OPENING: (i32, i32) = (15, 40);
/// Opening count of a troubled SKU (inclusive range).
pub const TROUBLED_OPENING: (i32, i32) = (3, 5);
/// How long the producer's local queue may stay full before a record is dropped.
const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(30);

/// Defaults of the simulator's settings (each written once).
pub const DEFAULT_SEED: u64 = 42;
pub const DEFAULT_STORES: usize = 5;
pub const DEFAULT_TROUBLED_PER_STORE: usize = 3;
pub const DEFAULT_BASKETS_PER_SECOND: f64 = 2.0;
pub const DEFAULT_FAIL_TIMES: u32 = 3;
pub const DEFAULT_DELIVERY_DELAY_SECS: u64 = 15;
pub const DEFAULT_SUMMARY_EVERY_SECS: u64 = 10;
pub const DEFAULT_NEW_TROUBLE_EVERY_SECS: u64 = 20;

/// Settings of the simulator. Every flag is also an environment variable.
#[derive(Debug, Clone, Args)]
pub struct SimConfig {
    /// Seed of the catalogue, the troubled SKUs, the opening counts and basket contents.
    #[arg(long, env = "SIM_SEED", default_value_t = DEFAULT_SEED)]
    pub seed: u64,

    /// Number of stores, with ids `S-001`, `S-002`, ...
    #[arg(long, env = "SIM_STORES", default_value_t = DEFAULT_STORES)]
    pub stores: usize,

    /// Troubled SKUs per store: opened with 3-5 units, popular, and the warehouse fails their
    /// first reorders. Each is the smaller size of a brand line that sells a bigger one.
    #[arg(long, env = "SIM_TROUBLED_PER_STORE", default_value_t = DEFAULT_TROUBLED_PER_STORE)]
    pub troubled_per_store: usize,

    /// Mean POS baskets per second per store (Poisson arrivals); 0 publishes no sales.
    #[arg(long, env = "SIM_BASKETS_PER_SECOND", default_value_t = DEFAULT_BASKETS_PER_SECOND)]
    pub baskets_per_second: f64,

    /// Reorders of each troubled (store, SKU) the warehouse fails before it fulfils one.
    #[arg(long, env = "SIM_FAIL_TIMES", default_value_t = DEFAULT_FAIL_TIMES)]
    pub fail_times: u32,

    /// Seconds from a fulfilled reorder to the RECEIPT of the goods in store.
    #[arg(long, env = "SIM_DELIVERY_DELAY_SECS", default_value_t = DEFAULT_DELIVERY_DELAY_SECS)]
    pub delivery_delay_secs: u64,

    /// Seconds between two summary log lines.
    #[arg(long, env = "SIM_SUMMARY_EVERY_SECS", default_value_t = DEFAULT_SUMMARY_EVERY_SECS)]
    pub summary_every_secs: u64,

    /// Every this many seconds, new trouble in one store (round robin): the shelf of a SKU not
    /// troubled yet is written off (a SHRINK of every unit: "water damage") and the warehouse
    /// fails its next reorders, so stockouts and offers keep coming for as long as it runs.
    /// 0 turns it off (only the troubled SKUs of the start).
    #[arg(long, env = "SIM_NEW_TROUBLE_EVERY_SECS", default_value_t = DEFAULT_NEW_TROUBLE_EVERY_SECS)]
    pub new_trouble_every_secs: u64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: DEFAULT_SEED,
            stores: DEFAULT_STORES,
            troubled_per_store: DEFAULT_TROUBLED_PER_STORE,
            baskets_per_second: DEFAULT_BASKETS_PER_SECOND,
            fail_times: DEFAULT_FAIL_TIMES,
            delivery_delay_secs: DEFAULT_DELIVERY_DELAY_SECS,
            summary_every_secs: DEFAULT_SUMMARY_EVERY_SECS,
            new_trouble_every_secs: DEFAULT_NEW_TROUBLE_EVERY_SECS,
        }
    }
}

impl SimConfig {
    fn check(&self) -> Result<()> {
        if self.stores == 0 || self.stores > 999 {
            bail!("--stores must be 1..=999, got {}", self.stores);
        }
        if !(self.baskets_per_second.is_finite() && self.baskets_per_second >= 0.0) {
            bail!(
                "--baskets-per-second must be >= 0, got {}",
                self.baskets_per_second
            );
        }
        Ok(())
    }
}

/// Derives an independent seed for one use (splitmix64 of `seed` and `salt`).
pub fn mix_seed(seed: u64, salt: u64) -> u64 {
    let mut z = seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The id of the store with index `i` (0-based): `S-001`, ...
pub fn store_id(i: usize) -> String {
    format!("S-{:03}", i + 1)
}

/// One simulated store, as set up at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StorePlan {
    pub id: String,
    /// Catalogue indexes of its troubled SKUs.
    pub troubled: Vec<usize>,
    /// Opening count per catalogue index.
    pub opening: Vec<i32>,
}

/// The stores of a run: troubled SKUs and opening counts, all from the seed.
pub fn plan_stores(catalog: &[Product], cfg: &SimConfig) -> Vec<StorePlan> {
    let index: HashMap<&str, usize> = catalog
        .iter()
        .enumerate()
        .map(|(i, p)| (p.sku.as_str(), i))
        .collect();
    (0..cfg.stores)
        .map(|s| {
            let troubled: Vec<usize> =
                catalog::pick_troubled(catalog, cfg.seed, s, cfg.troubled_per_store)
                    .iter()
                    .filter_map(|sku| index.get(sku.as_str()).copied())
                    .collect();
            let mut rng = StdRng::seed_from_u64(mix_seed(cfg.seed, 0xC0_0000 + s as u64));
            let opening = (0..catalog.len())
                .map(|i| {
                    let (lo, hi) = if troubled.contains(&i) {
                        TROUBLED_OPENING
                    } else {
                        NORMAL_OPENING
                    };
                    rng.random_range(lo..=hi)
                })
                .collect();
            StorePlan {
                id: store_id(s),
                troubled,
                opening,
            }
        })
        .collect()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// Counters for the periodic summary.
#[derive(Debug, Default)]
struct Stats {
    baskets: AtomicU64,
    lines: AtomicU64,
    units: AtomicU64,
    reorders: AtomicU64,
    failed: AtomicU64,
    fulfilled: AtomicU64,
    receipts: AtomicU64,
    publish_errors: AtomicU64,
}

fn bump(c: &AtomicU64, by: u64) {
    c.fetch_add(by, Ordering::Relaxed);
}

/// Shared state of a run.
struct World {
    kafka: KafkaArgs,
    cfg: SimConfig,
    catalog: Vec<Product>,
    sku_index: HashMap<String, usize>,
    store_index: HashMap<String, usize>,
    /// Units on the shelf per store, per catalogue index.
    shelves: Mutex<Vec<Vec<i32>>>,
    producer: FutureProducer,
    stats: Stats,
}

impl World {
    /// Whether an earlier run published stock movements (persistent broker storage).
    async fn earlier_run(&self) -> bool {
        let (kafka, topic) = (
            self.kafka.clone(),
            self.kafka.topic(topics::STORE_STOCK_MOVEMENTS),
        );
        tokio::task::spawn_blocking(move || {
            let Ok(reader) = kafka
                .reader(CLIENT_ID)
                .create::<rdkafka::consumer::BaseConsumer>()
            else {
                return false;
            };
            let Ok(md) = reader.fetch_metadata(Some(&topic), Duration::from_secs(10)) else {
                return false;
            };
            md.topics().iter().flat_map(|t| t.partitions()).any(|p| {
                reader
                    .fetch_watermarks(&topic, p.id(), Duration::from_secs(10))
                    .is_ok_and(|(low, high)| high > low)
            })
        })
        .await
        .unwrap_or(false)
    }

    /// Every store's opening count of every product.
    async fn opening_counts(
        &self,
        stores: &[StorePlan],
        shutdown: &CancellationToken,
    ) -> Result<()> {
        let mut counts = Vec::new();
        for s in stores {
            for (p, &quantity) in self.catalog.iter().zip(&s.opening) {
                let m = StockMovement {
                    event_id: uuid::Uuid::new_v4().to_string(),
                    occurred_at_ms: now_ms(),
                    store_id: s.id.clone(),
                    sku: p.sku.clone(),
                    kind: MovementKind::Count as i32,
                    quantity,
                    note: "opening count".to_owned(),
                };
                counts.push((s.id.clone(), m.encode_to_vec()));
            }
        }
        if !self
            .publish_all(topics::STORE_STOCK_MOVEMENTS, counts, shutdown)
            .await?
        {
            info!("shutdown before the opening counts were published");
        }
        Ok(())
    }

    /// Queues one record in the producer, waiting while its local queue is full.
    async fn enqueue(&self, base_topic: &str, key: &str, payload: &[u8]) -> Result<DeliveryFuture> {
        let topic = self.kafka.topic(base_topic);
        let started = Instant::now();
        loop {
            let rec: FutureRecord<'_, str, [u8]> =
                FutureRecord::to(&topic).key(key).payload(payload);
            match self.producer.send_result(rec) {
                Ok(f) => return Ok(f),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if started.elapsed() < QUEUE_FULL_PATIENCE =>
                {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err((e, _)) => return Err(anyhow!("publishing to {topic}: {e}")),
            }
        }
    }

    /// Publishes without waiting for the broker; a failed delivery is logged and counted.
    async fn publish(self: &Arc<Self>, base_topic: &'static str, key: &str, payload: &[u8]) {
        match self.enqueue(base_topic, key, payload).await {
            Ok(delivery) => {
                let world = Arc::clone(self);
                tokio::spawn(async move {
                    if let Ok(Err((e, _))) = delivery.await {
                        bump(&world.stats.publish_errors, 1);
                        warn!(topic = base_topic, error = %e, "delivery failed");
                    }
                });
            }
            Err(e) => {
                bump(&self.stats.publish_errors, 1);
                warn!(error = %e, "record dropped");
            }
        }
    }

    /// Publishes records in order and waits until the broker acknowledged all of them.
    /// `Ok(false)` when shutdown came first.
    async fn publish_all(
        &self,
        base_topic: &str,
        records: Vec<(String, Vec<u8>)>,
        shutdown: &CancellationToken,
    ) -> Result<bool> {
        let mut deliveries = Vec::with_capacity(records.len());
        for (key, payload) in &records {
            deliveries.push(self.enqueue(base_topic, key, payload).await?);
        }
        tokio::select! {
            _ = shutdown.cancelled() => Ok(false),
            results = futures::future::join_all(deliveries) => {
                for r in results {
                    match r {
                        Ok(Ok(_)) => {}
                        Ok(Err((e, _))) => bail!("publishing to {base_topic}: {e}"),
                        Err(_) => bail!("publishing to {base_topic}: producer gone"),
                    }
                }
                Ok(true)
            }
        }
    }
}

/// Runs the simulation until `shutdown`: catalogue, opening counts, then sales per store,
/// the warehouse and a summary line every few seconds.
pub async fn run(kafka: &KafkaArgs, cfg: SimConfig, shutdown: CancellationToken) -> Result<()> {
    run_with(kafka, cfg, shutdown, None).await
}

/// [`run`], telling `catalogue_published` once the broker acknowledged the whole catalogue
/// (the local runner starts the services then, as the catalogue precedes store events in a store).
pub async fn run_with(
    kafka: &KafkaArgs,
    cfg: SimConfig,
    shutdown: CancellationToken,
    catalogue_published: Option<tokio::sync::oneshot::Sender<()>>,
) -> Result<()> {
    cfg.check()?;
    shelfguard_runtime::preflight::reach(kafka).await?;
    let producer: FutureProducer = kafka
        .producer(CLIENT_ID)
        .create()
        .context("creating producer")?;
    let started_ms = now_ms();
    let catalog = catalog::generate(cfg.seed, started_ms);
    let stores = plan_stores(&catalog, &cfg);
    for s in &stores {
        let skus: Vec<&str> = s
            .troubled
            .iter()
            .map(|&i| catalog[i].sku.as_str())
            .collect();
        info!(store = %s.id, troubled = ?skus, "troubled SKUs");
    }
    let world = Arc::new(World {
        kafka: kafka.clone(),
        sku_index: catalog
            .iter()
            .enumerate()
            .map(|(i, p)| (p.sku.clone(), i))
            .collect(),
        store_index: stores
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect(),
        shelves: Mutex::new(stores.iter().map(|s| s.opening.clone()).collect()),
        catalog,
        cfg,
        producer,
        stats: Stats::default(),
    });

    // 1. The catalogue, keyed by SKU.
    let products: Vec<(String, Vec<u8>)> = world
        .catalog
        .iter()
        .map(|p| (p.sku.clone(), p.encode_to_vec()))
        .collect();
    if !world
        .publish_all(topics::CATALOG_PRODUCTS, products, &shutdown)
        .await?
    {
        info!("shutdown before the catalogue was published");
        return Ok(());
    }
    info!(
        products = world.catalog.len(),
        families = catalog::family_count(),
        "catalogue published"
    );
    if let Some(tx) = catalogue_published {
        let _ = tx.send(());
    }

    // 2. Opening counts, keyed by store id; not again on a restart with persistent storage (the
    // books go on from the earlier run: counting every shelf full again would withdraw the
    // offers staff still see).
    if world.earlier_run().await {
        info!("stock movements of an earlier run found: opening counts not sent again");
    } else {
        world.opening_counts(&stores, &shutdown).await?;
    }
    if shutdown.is_cancelled() {
        return Ok(());
    }
    info!(stores = stores.len(), "opening counts published");

    // 3. Sales, the warehouse and the summary, until shutdown or the first failure.
    let stop = shutdown.child_token();
    let troubled = stores.iter().flat_map(|s| {
        s.troubled
            .iter()
            .map(|&i| (s.id.clone(), world.catalog[i].sku.clone()))
    });
    let policy = WarehousePolicy {
        fail_times: world.cfg.fail_times,
        delivery_delay_ms: i64::try_from(world.cfg.delivery_delay_secs.saturating_mul(1000))
            .unwrap_or(i64::MAX / 2),
    };
    let mut tasks: JoinSet<Result<()>> = JoinSet::new();
    let (trouble_tx, trouble_rx) = tokio::sync::mpsc::unbounded_channel();
    let next_trouble: Vec<Vec<usize>> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            catalog::pick_troubled(&world.catalog, world.cfg.seed, i, world.catalog.len())
                .iter()
                .filter_map(|sku| world.sku_index.get(sku).copied())
                .filter(|sku| !s.troubled.contains(sku))
                .collect()
        })
        .collect();
    tasks.spawn(run_warehouse(
        Arc::clone(&world),
        Warehouse::new(policy, troubled),
        trouble_rx,
        stop.clone(),
    ));
    tasks.spawn(run_trouble(
        Arc::clone(&world),
        next_trouble,
        trouble_tx,
        stop.clone(),
    ));
    tasks.spawn(run_summary(Arc::clone(&world), stop.clone()));
    for (i, s) in stores.into_iter().enumerate() {
        tasks.spawn(run_store(Arc::clone(&world), i, s, stop.clone()));
    }
    let mut result = Ok(());
    while let Some(joined) = tasks.join_next().await {
        let r = joined
            .map_err(|e| anyhow!("simulator task panicked: {e}"))
            .and_then(|r| r);
        if let Err(e) = r {
            stop.cancel();
            if result.is_ok() {
                result = Err(e);
            }
        }
    }
    let producer = world.producer.clone();
    let flushed =
        tokio::task::spawn_blocking(move || producer.flush(Timeout::After(Duration::from_secs(5))))
            .await;
    if let Ok(Err(e)) = flushed {
        warn!(error = %e, "flushing the producer on shutdown");
    }
    log_summary(&world.stats);
    info!("simulator stopped");
    result
}

/// One store's till: Poisson baskets of what is on the shelf, to `store.sales.v1`.
async fn run_store(
    world: Arc<World>,
    index: usize,
    store: StorePlan,
    stop: CancellationToken,
) -> Result<()> {
    let mut rng = StdRng::seed_from_u64(mix_seed(world.cfg.seed, 0x5A1E_0000 + index as u64));
    let popularity = traffic::Popularity::new(
        &mut rng,
        world.catalog.len(),
        &store.troubled,
        traffic::TROUBLED_SHARE,
    );
    let run_tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let mut next = Instant::now();
    let mut seq: u64 = 0;
    loop {
        let Some(gap) = traffic::inter_arrival(&mut rng, world.cfg.baskets_per_second) else {
            stop.cancelled().await;
            return Ok(());
        };
        // After a stall (suspended laptop, slow broker) carry on from now instead of bursting.
        let now = Instant::now();
        next = (next + gap).max(now.checked_sub(Duration::from_secs(1)).unwrap_or(now));
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tokio::time::sleep_until(next) => {}
        }
        let lines = {
            let mut shelves = world.shelves.lock().unwrap_or_else(|p| p.into_inner());
            let shelf = &mut shelves[index];
            let lines = traffic::basket(&mut rng, &popularity, traffic::EXTRA_LINES_MEAN, |i| {
                shelf[i]
            });
            for l in &lines {
                shelf[l.index] -= l.quantity;
            }
            lines
        };
        if lines.is_empty() {
            continue;
        }
        seq += 1;
        let sale = Sale {
            event_id: uuid::Uuid::new_v4().to_string(),
            occurred_at_ms: now_ms(),
            store_id: store.id.clone(),
            basket_id: format!("{}-{run_tag}-{seq}", store.id),
            lines: lines
                .iter()
                .map(|l| {
                    let p = &world.catalog[l.index];
                    SaleLine {
                        sku: p.sku.clone(),
                        quantity: l.quantity,
                        unit_price_cents: p.price_cents,
                    }
                })
                .collect(),
        };
        bump(&world.stats.baskets, 1);
        bump(&world.stats.lines, lines.len() as u64);
        bump(
            &world.stats.units,
            lines.iter().map(|l| l.quantity.max(0) as u64).sum(),
        );
        world
            .publish(topics::STORE_SALES, &store.id, &sale.encode_to_vec())
            .await;
    }
}

/// The warehouse: reorder requests in, outcomes and (later) receipts out.
async fn run_warehouse(
    world: Arc<World>,
    mut warehouse: Warehouse,
    mut new_trouble: tokio::sync::mpsc::UnboundedReceiver<(String, String)>,
    stop: CancellationToken,
) -> Result<()> {
    let consumer: StreamConsumer = world
        .kafka
        .group_consumer(CLIENT_ID, &world.kafka.topic(WAREHOUSE_GROUP))
        .create()
        .context("creating warehouse consumer")?;
    let topic = world.kafka.topic(topics::WAREHOUSE_REORDER_REQUESTS);
    consumer
        .subscribe(&[topic.as_str()])
        .context("subscribing to reorder requests")?;
    let mut rng = StdRng::seed_from_u64(mix_seed(world.cfg.seed, 0x3A2E_4005));
    loop {
        let message = tokio::select! {
            _ = stop.cancelled() => break,
            Some((store, sku)) = new_trouble.recv() => {
                warehouse.add_troubled(store, sku);
                continue;
            }
            m = consumer.recv() => m,
        };
        let m = match message {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "reading reorder requests");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        match ReorderRequest::decode(m.payload().unwrap_or_default()) {
            Ok(req) => {
                bump(&world.stats.reorders, 1);
                for s in warehouse.handle(&req, now_ms(), &mut rng) {
                    tokio::spawn(deliver(Arc::clone(&world), s, stop.clone()));
                }
            }
            Err(e) => warn!(error = %e, offset = m.offset(), "undecodable reorder request skipped"),
        }
        if let Err(e) = consumer.store_offset_from_message(&m) {
            warn!(error = %e, "storing the reorder request offset");
        }
    }
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Async) {
        warn!(error = %e, "committing reorder request offsets on shutdown");
    }
    Ok(())
}

/// New trouble every `new_trouble_every_secs`, one store after the other: the next SKU of the
/// store's list is written off the shelf (counted 0) and the warehouse is told to fail
/// its next reorders. Stops when every store's list is used up.
async fn run_trouble(
    world: Arc<World>,
    mut next: Vec<Vec<usize>>,
    warehouse: tokio::sync::mpsc::UnboundedSender<(String, String)>,
    stop: CancellationToken,
) -> Result<()> {
    if world.cfg.new_trouble_every_secs == 0 {
        return Ok(());
    }
    let every = Duration::from_secs(world.cfg.new_trouble_every_secs);
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let stores: Vec<String> = (0..next.len()).map(store_id).collect();
    let mut turn = 0usize;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => {}
        }
        if next.iter().all(Vec::is_empty) {
            return Ok(());
        }
        let (st, sku) = loop {
            let st = turn % next.len();
            turn += 1;
            if !next[st].is_empty() {
                break (st, next[st].remove(0));
            }
        };
        let written_off = {
            let mut shelves = world.shelves.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut shelves[st][sku])
        };
        let product = &world.catalog[sku];
        let _ = warehouse.send((stores[st].clone(), product.sku.clone()));
        info!(store = %stores[st], sku = %product.sku, written_off, "new trouble: shelf written off, the warehouse will fail its next reorders");
        if written_off > 0 {
            let m = StockMovement {
                event_id: uuid::Uuid::new_v4().to_string(),
                occurred_at_ms: now_ms(),
                store_id: stores[st].clone(),
                sku: product.sku.clone(),
                kind: MovementKind::Shrink as i32,
                quantity: written_off,
                note: "water damage: every unit on the shelf written off".to_owned(),
            };
            world
                .publish(
                    topics::STORE_STOCK_MOVEMENTS,
                    &stores[st],
                    &m.encode_to_vec(),
                )
                .await;
        }
    }
}

/// Publishes one warehouse record when it is due; a receipt also refills the shelf.
/// Records still pending at shutdown are dropped (it is a simulator).
async fn deliver(world: Arc<World>, s: Scheduled, stop: CancellationToken) {
    let wait = u64::try_from(s.at_ms - now_ms()).unwrap_or(0);
    tokio::select! {
        _ = stop.cancelled() => return,
        _ = tokio::time::sleep(Duration::from_millis(wait)) => {}
    }
    let payload = match &s.record {
        Record::Outcome(o) => {
            if o.status == OutcomeStatus::Failed as i32 {
                bump(&world.stats.failed, 1);
                info!(store = %o.store_id, sku = %o.sku, reorder_id = %o.reorder_id, reason = %o.failure_reason, "reorder failed");
            } else {
                bump(&world.stats.fulfilled, 1);
            }
            o.encode_to_vec()
        }
        Record::Receipt(m) => {
            bump(&world.stats.receipts, 1);
            if let (Some(&st), Some(&sku)) = (
                world.store_index.get(&m.store_id),
                world.sku_index.get(&m.sku),
            ) {
                let mut shelves = world.shelves.lock().unwrap_or_else(|p| p.into_inner());
                shelves[st][sku] += m.quantity;
            }
            m.encode_to_vec()
        }
    };
    world
        .publish(s.record.topic(), s.record.store_id(), &payload)
        .await;
}

fn log_summary(stats: &Stats) {
    let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
    info!(
        baskets = get(&stats.baskets),
        lines = get(&stats.lines),
        units = get(&stats.units),
        reorders_seen = get(&stats.reorders),
        failed = get(&stats.failed),
        fulfilled = get(&stats.fulfilled),
        receipts = get(&stats.receipts),
        publish_errors = get(&stats.publish_errors),
        "simulator summary"
    );
}

/// One summary line every `summary_every_secs`.
async fn run_summary(world: Arc<World>, stop: CancellationToken) -> Result<()> {
    let every = Duration::from_secs(world.cfg.summary_every_secs.max(1));
    let mut tick = tokio::time::interval_at(Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = tick.tick() => log_summary(&world.stats),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimConfig,
    }

    #[test]
    fn flags_default_like_default() {
        let d = Cli::parse_from(["simulator"]).sim;
        let e = SimConfig::default();
        assert_eq!(
            (
                d.seed,
                d.stores,
                d.troubled_per_store,
                d.fail_times,
                d.delivery_delay_secs
            ),
            (
                e.seed,
                e.stores,
                e.troubled_per_store,
                e.fail_times,
                e.delivery_delay_secs
            )
        );
        assert_eq!(d.baskets_per_second, 2.0);
        let c = Cli::parse_from([
            "simulator",
            "--stores",
            "2",
            "--seed",
            "7",
            "--baskets-per-second",
            "0.5",
        ])
        .sim;
        assert_eq!((c.stores, c.seed, c.baskets_per_second), (2, 7, 0.5));
        assert!(
            SimConfig {
                stores: 0,
                ..SimConfig::default()
            }
            .check()
            .is_err()
        );
        assert!(
            SimConfig {
                baskets_per_second: -1.0,
                ..SimConfig::default()
            }
            .check()
            .is_err()
        );
    }

    #[test]
    fn stores_open_with_few_troubled_units_and_plenty_of_the_rest() {
        let catalog = catalog::generate(42, 1);
        let cfg = SimConfig::default();
        let stores = plan_stores(&catalog, &cfg);
        assert_eq!(
            stores.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
            ["S-001", "S-002", "S-003", "S-004", "S-005"]
        );
        assert_eq!(stores, plan_stores(&catalog, &cfg), "deterministic");
        for s in &stores {
            assert_eq!(s.troubled.len(), 3);
            assert_eq!(s.opening.len(), catalog.len());
            for (i, &n) in s.opening.iter().enumerate() {
                if s.troubled.contains(&i) {
                    assert!((3..=5).contains(&n));
                    // The bigger same-brand size is stocked normally.
                    for b in catalog::bigger_same_brand(&catalog[i], &catalog) {
                        let j = catalog.iter().position(|p| p.sku == b.sku).unwrap();
                        assert!(s.opening[j] >= 15);
                    }
                } else {
                    assert!((15..=40).contains(&n));
                }
            }
        }
    }

    #[test]
    fn seeds_mix_apart() {
        assert_ne!(mix_seed(42, 1), mix_seed(42, 2));
        assert_ne!(mix_seed(1, 0), mix_seed(2, 0));
        assert_eq!(store_id(0), "S-001");
    }
}
