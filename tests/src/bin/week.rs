//! A simulated week for many stores, scored against the ground truth the services never see.
//!
//! `cargo run -p shelfguard-e2e --bin week -- [--stores 20] [--days 7] [--seed 42]`
//!
//! An embedded broker, the three services as processes (this executable, run as
//! `week svc <service>`, so they are always the build being measured), and the simulated
//! stores and warehouse of `shelfguard_simulator::week` in *simulated* time. Each step (15
//! simulated minutes by default): the reorder requests inventory published are answered, the
//! step's warehouse outcomes, receipts and counts are published and applied, then the staff's
//! answers to the shelf checks offer-generator asked (from the simulated truth, see
//! `Week::on_check_requested`), each awaited until its check ended on `floor.checks.v1` and an
//! EMPTY answer's count was booked by inventory, then the step's baskets. Every wait is for a
//! condition (inventory's stock level for the last record of each store, a check's end),
//! never for a time. At the end one sentinel stockout per store marks the end of
//! each partition on `stockouts.v1` and `floor.offers.v1` (and `floor.checks.v1` is read to
//! its end); then the episodes, checks and offers are scored (`shelfguard_simulator::score`) and the report printed. It measures; it asserts nothing.
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use clap::Parser;
use futures::future::try_join_all;
use prost::Message as _;
use rdkafka::Message as _;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::OwnedMessage;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use shelfguard_e2e::{Env, PARTITIONS, Service, Tail, fixtures};
use shelfguard_events::catalog::{Product, Size};
use shelfguard_events::floor::{
    OfferEvent, ShelfCheckEvent, ShelfFinding, StaffResponse, offer_event::Change as OfferChange,
    shelf_check_event::Change as CheckChange,
};
use shelfguard_events::inventory::StockLevel;
use shelfguard_events::stockout::{StockoutEvent, stockout_event::Change};
use shelfguard_events::store::{MovementKind, StockMovement};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome, ReorderRequest};
use shelfguard_simulator::score::{self, Params};
use shelfguard_simulator::week::{Batch, Truth, TruthKind, Week, WeekConfig};

const DAY_MS: i64 = 86_400_000;
/// Longest wait for one condition before the run notes a stall and goes on.
const PATIENCE: Duration = Duration::from_secs(60);
/// Longest wait for the sentinels at the end.
const END_PATIENCE: Duration = Duration::from_secs(180);
/// The sentinel products: a small size that goes out of stock at the end, and its substitute.
const SENTINEL_SMALL: &str = "ZZ-SENTINEL-14OZ";
const SENTINEL_BIG: &str = "ZZ-SENTINEL-28OZ";

#[derive(Debug, Parser)]
#[command(
    name = "week",
    about = "A simulated week, scored against the ground truth."
)]
struct Cli {
    /// Stores (`S-001`, ...).
    #[arg(long, default_value_t = 20)]
    stores: usize,
    /// Simulated days.
    #[arg(long, default_value_t = 7)]
    days: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Runs this many seeds (`--seed`, `--seed`+1, ...), one process each, and prints each
    /// run's figures and their mean.
    #[arg(long, default_value_t = 1)]
    seeds: u64,
    /// Simulated minutes per step.
    #[arg(long, default_value_t = 15)]
    step_minutes: i64,
    /// Mean baskets per hour of a store.
    #[arg(long, default_value_t = 40.0)]
    baskets_per_hour: f64,
    /// Troubled (store, SKU)s per store per day: the warehouse fails their reorders for 1-3 days.
    #[arg(long, default_value_t = 0.5)]
    troubled_per_store_day: f64,
    /// Phantom stockouts per store per day.
    #[arg(long, default_value_t = 0.5)]
    phantoms_per_store_day: f64,
    /// Opening hours of the stores, UTC `OPEN-CLOSE` (e.g. `7-22`); `0-24` around the clock.
    #[arg(long, default_value = "0-24", value_parser = hours)]
    open_hours: (u32, u32),
    /// Overdispersed demand: Gamma shape k of each (store, SKU, day)'s demand factor (mean 1);
    /// none for Poisson demand.
    #[arg(long)]
    dispersion: Option<f64>,
    /// "A week that looks like a real store" (`WeekConfig::realistic`): 85 % of the stores open
    /// 07-22 and 15 % around the clock, hour-of-week demand by category, daily traffic swings,
    /// overdispersed demand (k = 10; `--dispersion` overrides it), phantom onsets at 1.5 % of
    /// the (store, SKU)s a week that persist until noticed, 3 new SKUs launched mid-week.
    /// `--open-hours` and `--phantoms-per-store-day` are then the preset's.
    #[arg(long)]
    realistic: bool,
}

fn hours(s: &str) -> Result<(u32, u32), String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?} is not OPEN-CLOSE"))?;
    let p = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("{x:?} is not an hour"))
    };
    Ok((p(a)?, p(b)?))
}

#[tokio::main]
async fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "svc") {
        shelfguard_runtime::telemetry::init();
        return shelfguard_e2e::run_service(args[2..].to_vec()).await;
    }
    let cli = Cli::parse();
    if cli.seeds > 1 {
        return many_seeds(&cli, &args);
    }
    // Whole UTC days ending today at midnight: every event time lies in the past.
    let today = fixtures::now_ms().div_euclid(DAY_MS) * DAY_MS;
    let cfg = if cli.realistic {
        let preset = WeekConfig::realistic();
        WeekConfig {
            seed: cli.seed,
            stores: cli.stores,
            days: cli.days,
            start_ms: today - i64::from(cli.days) * DAY_MS,
            step_ms: cli.step_minutes * 60_000,
            baskets_per_hour: cli.baskets_per_hour,
            troubled_per_store_day: cli.troubled_per_store_day,
            dispersion: cli.dispersion.or(preset.dispersion),
            ..preset
        }
    } else {
        WeekConfig {
            seed: cli.seed,
            stores: cli.stores,
            days: cli.days,
            start_ms: today - i64::from(cli.days) * DAY_MS,
            step_ms: cli.step_minutes * 60_000,
            baskets_per_hour: cli.baskets_per_hour,
            troubled_per_store_day: cli.troubled_per_store_day,
            phantoms_per_store_day: cli.phantoms_per_store_day,
            open_hours: cli.open_hours,
            dispersion: cli.dispersion,
            ..WeekConfig::default()
        }
    };
    let week = Week::new(cfg).map_err(anyhow::Error::msg)?;
    run(week).await
}

/// `--seeds N`: this command once per seed (a fresh broker each), then the mean of the
/// figures each run printed on its `summary:` line.
fn many_seeds(cli: &Cli, args: &[String]) -> Result<()> {
    let exe = std::env::current_exe().context("locating this executable")?;
    // The same flags, but one seed at a time.
    let mut rest = Vec::new();
    let mut skip = false;
    for a in &args[1..] {
        if skip {
            skip = false;
            continue;
        }
        if a == "--seeds" || a == "--seed" {
            skip = true;
            continue;
        }
        if a.starts_with("--seeds=") || a.starts_with("--seed=") {
            continue;
        }
        rest.push(a.clone());
    }
    let mut sums: Vec<(String, f64, usize)> = Vec::new();
    for seed in cli.seed..cli.seed + cli.seeds {
        let out = std::process::Command::new(&exe)
            .args(&rest)
            .args(["--seed", &seed.to_string()])
            .stderr(std::process::Stdio::inherit())
            .output()
            .context("running one seed")?;
        let text = String::from_utf8_lossy(&out.stdout);
        print!("{text}");
        if !out.status.success() {
            bail!("seed {seed} failed");
        }
        let Some(line) = text.lines().find_map(|l| l.strip_prefix("summary: ")) else {
            bail!("seed {seed} printed no summary");
        };
        for (i, kv) in line.split_whitespace().enumerate() {
            let Some((k, v)) = kv.split_once('=') else {
                continue;
            };
            let v: f64 = v.parse().unwrap_or(f64::NAN);
            if sums.len() <= i {
                sums.push((k.to_owned(), 0.0, 0));
            }
            if v.is_finite() {
                sums[i].1 += v;
                sums[i].2 += 1;
            }
        }
    }
    println!();
    println!(
        "== mean over seeds {}..={} (n/a runs left out; percentages, delays in open hours) ==",
        cli.seed,
        cli.seed + cli.seeds - 1
    );
    for (k, sum, n) in sums {
        if n > 0 {
            println!("  {k:<42} {:>9.3}  (of {n} runs)", sum / n as f64);
        } else {
            println!("  {k:<42} {:>9}", "n/a");
        }
    }
    Ok(())
}

/// Counters of the driver.
#[derive(Debug, Default)]
struct Counts {
    /// Records published per topic.
    sales: u64,
    movements: u64,
    outcomes: u64,
    products: u64,
    /// Staff answers to shelf checks.
    responses: u64,
    /// Stock levels compared with the simulator's books, and those that differed.
    checked: u64,
    differed: u64,
    /// Waits that ran out of patience (the run went on).
    stalls: u64,
}

struct Driver {
    env: Env,
    producer: FutureProducer,
    levels: Tail,
    requests: Tail,
    checks: Tail,
    /// Every shelf-check event read (for the score), the ended checks by id (their end event),
    /// and the next offset to read per partition (to read the topic to its end at the finish).
    check_events: Vec<ShelfCheckEvent>,
    check_ends: HashMap<String, ShelfCheckEvent>,
    check_next: HashMap<i32, i64>,
    /// What inventory's on-hand must be after an input: (input event id, sku) -> units.
    expected: HashMap<(String, String), i32>,
    /// Sentinel reorder requests seen (store -> request).
    sentinel_requests: HashMap<String, ReorderRequest>,
    counts: Counts,
}

impl Driver {
    async fn publish(&self, topic: &str, records: Vec<(String, Vec<u8>)>) -> Result<()> {
        let t = self.env.kafka.topic(topic);
        try_join_all(records.iter().map(|(k, v)| {
            self.producer.send(
                FutureRecord::to(&t).key(k).payload(v),
                Timeout::After(Duration::from_secs(60)),
            )
        }))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("publishing to {t}: {e}"))?;
        Ok(())
    }

    /// Takes the reorder requests that have arrived, without waiting.
    fn take_requests(&mut self, week: &mut Week) -> Result<()> {
        while let Some(m) = self.requests.try_next() {
            let m = m?;
            let Ok(req) = ReorderRequest::decode(m.payload().unwrap_or_default()) else {
                continue;
            };
            if req.sku == SENTINEL_SMALL {
                self.sentinel_requests.insert(req.store_id.clone(), req);
            } else if req.sku != SENTINEL_BIG {
                week.on_request(&req);
            }
        }
        Ok(())
    }

    /// Notes one record of `floor.checks.v1`: hands a request to the simulated staff, keeps the
    /// event for the score and an end by its check id.
    fn note_check(&mut self, week: &mut Week, m: &OwnedMessage) {
        let next = self.check_next.entry(m.partition()).or_default();
        *next = (*next).max(m.offset() + 1);
        let Ok(c) = ShelfCheckEvent::decode(m.payload().unwrap_or_default()) else {
            return;
        };
        week.on_check_requested(&c);
        if matches!(
            c.change,
            Some(CheckChange::Answered(_) | CheckChange::Expired(_) | CheckChange::Withdrawn(_))
        ) {
            self.check_ends.insert(c.check_id.clone(), c.clone());
        }
        self.check_events.push(c);
    }

    /// Takes the shelf-check events that have arrived, without waiting.
    fn take_checks(&mut self, week: &mut Week) -> Result<()> {
        while let Some(m) = self.checks.try_next() {
            let m = m?;
            self.note_check(week, &m);
        }
        Ok(())
    }

    /// Publishes the staff's answers, waits until each check ended (answered, or expired or
    /// withdrawn before the answer came), and books every EMPTY answer in the simulated books
    /// once inventory applied its count.
    async fn answer_checks(&mut self, week: &mut Week, answers: Vec<StaffResponse>) -> Result<()> {
        if answers.is_empty() {
            return Ok(());
        }
        self.counts.responses += answers.len() as u64;
        self.publish(
            FLOOR_RESPONSES,
            answers
                .iter()
                .map(|r| (r.store_id.clone(), r.encode_to_vec()))
                .collect(),
        )
        .await?;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while let Some(open) = answers
            .iter()
            .find(|r| !self.check_ends.contains_key(&r.check_id))
        {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let Ok(m) = self.checks.next(left).await else {
                self.counts.stalls += 1;
                eprintln!(
                    "warning: check {} did not end within {PATIENCE:?}; going on",
                    open.check_id
                );
                break;
            };
            self.note_check(week, &m);
        }
        let mut awaited = Vec::new();
        for r in &answers {
            let Some(end) = self.check_ends.get(&r.check_id) else {
                continue;
            };
            let booked_empty = matches!(&end.change, Some(CheckChange::Answered(a)) if a.finding == ShelfFinding::Empty as i32);
            if !booked_empty {
                continue;
            }
            if let Some(n) = week.on_check_booked(&r.store_id, &r.sku, end.occurred_at_ms) {
                let count = shelfguard_offer_generator::checks::count_event_id(&r.check_id);
                self.expected.insert((count.clone(), r.sku.clone()), n);
                awaited.push((count, r.sku.clone()));
            }
        }
        self.await_levels(awaited).await
    }

    /// Reads `floor.checks.v1` to its end (its high watermarks now): at the finish, after the
    /// sentinels showed that offer-generator has handled everything.
    async fn drain_checks(&mut self, week: &mut Week) -> Result<()> {
        let topic = self.env.kafka.topic(FLOOR_CHECKS);
        let wm: BaseConsumer = self.env.kafka.reader("week-watermarks").create()?;
        let mut high = HashMap::new();
        for p in 0..PARTITIONS {
            let (_, h) = wm.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
            high.insert(p, h);
        }
        let deadline = tokio::time::Instant::now() + END_PATIENCE;
        while high
            .iter()
            .any(|(p, h)| self.check_next.get(p).copied().unwrap_or(0) < *h)
        {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self
                .checks
                .next(left)
                .await
                .context("reading floor.checks.v1 to its end")?;
            self.note_check(week, &m);
        }
        Ok(())
    }

    /// Publishes a batch's movements and outcomes (then waits until inventory applied the last
    /// of each store), or its sales (same).
    async fn publish_batch(&mut self, b: Batch) -> Result<()> {
        for (id, sku, n) in b.expected {
            self.expected.insert((id, sku), n);
        }
        let mut awaited: HashMap<String, (String, String)> = HashMap::new();
        let movements: Vec<(String, Vec<u8>)> = b
            .movements
            .iter()
            .map(|m| {
                awaited.insert(
                    format!("m{}", m.store_id),
                    (m.event_id.clone(), m.sku.clone()),
                );
                (m.store_id.clone(), m.encode_to_vec())
            })
            .collect();
        let outcomes: Vec<(String, Vec<u8>)> = b
            .outcomes
            .iter()
            .map(|o| {
                awaited.insert(
                    format!("o{}", o.store_id),
                    (o.event_id.clone(), o.sku.clone()),
                );
                (o.store_id.clone(), o.encode_to_vec())
            })
            .collect();
        let sales: Vec<(String, Vec<u8>)> = b
            .sales
            .iter()
            .map(|s| {
                let sku = s.lines.first().map(|l| l.sku.clone()).unwrap_or_default();
                awaited.insert(format!("s{}", s.store_id), (s.event_id.clone(), sku));
                (s.store_id.clone(), s.encode_to_vec())
            })
            .collect();
        self.counts.movements += movements.len() as u64;
        self.counts.outcomes += outcomes.len() as u64;
        self.counts.sales += sales.len() as u64;
        let (m, o, s) = tokio::join!(
            self.publish(STORE_STOCK_MOVEMENTS, movements),
            self.publish(WAREHOUSE_REORDER_OUTCOMES, outcomes),
            self.publish(STORE_SALES, sales),
        );
        m?;
        o?;
        s?;
        self.await_levels(awaited.into_values().collect()).await
    }

    /// Reads stock levels until inventory has published one for each awaited (input event id,
    /// SKU), checking every level read against the simulator's books on the way.
    async fn await_levels(&mut self, awaited: Vec<(String, String)>) -> Result<()> {
        let mut waiting: HashSet<(String, String)> = awaited.into_iter().collect();
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while !waiting.is_empty() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = match self.levels.next(left).await {
                Ok(m) => m,
                Err(_) => {
                    self.counts.stalls += 1;
                    eprintln!(
                        "warning: no stock level for {} awaited records within {PATIENCE:?} (e.g. {:?}); going on",
                        waiting.len(),
                        waiting.iter().next()
                    );
                    return Ok(());
                }
            };
            let Ok(l) = StockLevel::decode(m.payload().unwrap_or_default()) else {
                continue;
            };
            // Inventory names a level `sl:<input event id>:<sku>`.
            let input = l
                .event_id
                .strip_prefix("sl:")
                .and_then(|r| r.strip_suffix(&format!(":{}", l.sku)))
                .unwrap_or(&l.event_id)
                .to_owned();
            let key = (input, l.sku.clone());
            if let Some(n) = self.expected.remove(&key) {
                self.counts.checked += 1;
                if n != l.on_hand {
                    self.counts.differed += 1;
                    if self.counts.differed <= 5 {
                        eprintln!(
                            "note: inventory's on-hand {} differs from the simulated books {n} after {} ({})",
                            l.on_hand, key.0, key.1
                        );
                    }
                }
            }
            waiting.remove(&key);
        }
        Ok(())
    }
}

fn sentinel_product(sku: &str, oz: f64, price_cents: i64, at_ms: i64) -> Product {
    Product {
        event_id: format!("wk-product-{sku}"),
        occurred_at_ms: at_ms,
        sku: sku.into(),
        name: "Sentinel Gold End Marker".into(),
        brand: "Sentinel Gold".into(),
        family: "zz-sentinel".into(),
        size: Some(Size {
            value: oz,
            unit: "oz".into(),
        }),
        price_cents,
        reorder_point: 2,
        order_up_to: 12,
        location: "Back office".into(),
        ..Default::default()
    }
}

fn sentinel_count(store: &str, sku: &str, n: i32, at_ms: i64) -> StockMovement {
    StockMovement {
        event_id: format!("wk-sentinel-{store}-{sku}"),
        occurred_at_ms: at_ms,
        store_id: store.into(),
        sku: sku.into(),
        kind: MovementKind::Count as i32,
        quantity: n,
        note: "end of the simulated run".into(),
    }
}

fn is_sentinel(sku: &str) -> bool {
    sku.starts_with("ZZ-SENTINEL-")
}

/// Reads `tail` until `done` holds for every store, returning every `M` read; `Ok(false)`
/// inside when patience ran out first.
async fn read_until_all<M: prost::Message + Default>(
    tail: &Tail,
    stores: &[String],
    is_marker: impl Fn(&M) -> Option<String>,
) -> (Vec<M>, bool) {
    let mut left: HashSet<&str> = stores.iter().map(String::as_str).collect();
    let mut all = Vec::new();
    let deadline = tokio::time::Instant::now() + END_PATIENCE;
    while !left.is_empty() {
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        let Ok(m) = tail.next(within).await else {
            return (all, false);
        };
        let Ok(v) = M::decode(m.payload().unwrap_or_default()) else {
            continue;
        };
        if let Some(store) = is_marker(&v) {
            left.remove(store.as_str());
        }
        all.push(v);
    }
    (all, true)
}

async fn run(mut week: Week) -> Result<()> {
    let wall = Instant::now();
    let cfg = week.config().clone();
    let rates = week.rates();
    let stores = week.store_ids();
    let mut env = Env::start("week").await?;
    let exe = std::env::current_exe().context("locating this executable")?;
    env.use_service_binary(exe, vec!["svc".into()]);
    let producer: FutureProducer = env.kafka.producer("week").create()?;
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    let checks = env.tail(FLOOR_CHECKS)?;
    let stockouts = env.tail(STOCKOUTS)?;
    let offers = env.tail(FLOOR_OFFERS)?;
    let mut d = Driver {
        env,
        producer,
        levels,
        requests,
        checks,
        check_events: Vec::new(),
        check_ends: HashMap::new(),
        check_next: HashMap::new(),
        expected: HashMap::new(),
        sentinel_requests: HashMap::new(),
        counts: Counts::default(),
    };

    // The catalogue first (the services read it whole when they start), then the services.
    let mut products: Vec<Product> = week.catalog().to_vec();
    products.push(sentinel_product(SENTINEL_SMALL, 14.0, 799, cfg.start_ms));
    products.push(sentinel_product(SENTINEL_BIG, 28.0, 1399, cfg.start_ms));
    d.counts.products = products.len() as u64;
    d.publish(
        CATALOG_PRODUCTS,
        products
            .iter()
            .map(|p| (p.sku.clone(), p.encode_to_vec()))
            .collect(),
    )
    .await?;
    let mut services: Vec<Service> = Vec::new();
    // The test harness lifts the gesture budget out of the way; a measurement uses the real one
    // (the services' default, or STORE_DAILY_BUDGET_CENTS from this command's environment).
    let budget = std::env::var("STORE_DAILY_BUDGET_CENTS").unwrap_or_else(|_| "5000".into());
    for s in ["inventory", "stockout-detector", "offer-generator"] {
        services.push(d.env.spawn(s, &[("STORE_DAILY_BUDGET_CENTS", &budget)])?);
    }
    println!(
        "simulated week: {} stores, {} days from {} (UTC ms), {}-minute steps, seed {}; {} products; service logs in {}",
        cfg.stores,
        cfg.days,
        cfg.start_ms,
        cfg.step_ms / 60_000,
        cfg.seed,
        products.len(),
        services
            .first()
            .and_then(|s| s.log.parent())
            .map_or_else(String::new, |p| p.display().to_string())
    );

    // Opening counts, then the steps.
    d.publish_batch(week.opening_counts()).await?;
    let ready = wall.elapsed();
    let end = cfg.end_ms();
    let steps = cfg.steps();
    let mut t = cfg.start_ms;
    let mut step = 0;
    while t < end {
        d.take_requests(&mut week)?;
        d.take_checks(&mut week)?;
        let mut a = week.step_start(t);
        let answers = std::mem::take(&mut a.responses);
        d.publish_batch(a).await?;
        d.answer_checks(&mut week, answers).await?;
        let b = week.baskets(t, (t + cfg.step_ms).min(end));
        d.publish_batch(b).await?;
        t += cfg.step_ms;
        step += 1;
        if step % (steps / 10).max(1) == 0 {
            eprintln!(
                "  {:>3.0} % of the simulated time after {:.0} s",
                100.0 * step as f64 / steps as f64,
                wall.elapsed().as_secs_f64()
            );
        }
    }
    let simulated = wall.elapsed();
    d.take_requests(&mut week)?;
    let truth = week.finish(end);

    // Sentinels: one confirmed stockout per store at the end (substitute in stock, the
    // reorder failed). Its offer (or refusal) is the last record of the store's partition.
    let mut counts = Vec::new();
    for s in &stores {
        counts.push((
            s.clone(),
            sentinel_count(s, SENTINEL_BIG, 10, end).encode_to_vec(),
        ));
        counts.push((
            s.clone(),
            sentinel_count(s, SENTINEL_SMALL, 0, end).encode_to_vec(),
        ));
    }
    d.publish(STORE_STOCK_MOVEMENTS, counts).await?;
    let deadline = tokio::time::Instant::now() + END_PATIENCE;
    while d.sentinel_requests.len() < stores.len() {
        let within = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = d
            .requests
            .next(within)
            .await
            .context("waiting for the sentinel reorder requests")?;
        if let Ok(req) = ReorderRequest::decode(m.payload().unwrap_or_default())
            && req.sku == SENTINEL_SMALL
        {
            d.sentinel_requests.insert(req.store_id.clone(), req);
        }
    }
    let failed: Vec<(String, Vec<u8>)> = d
        .sentinel_requests
        .values()
        .map(|r| {
            let o = ReorderOutcome {
                event_id: format!("ro:{}", r.reorder_id),
                occurred_at_ms: end + 1,
                store_id: r.store_id.clone(),
                reorder_id: r.reorder_id.clone(),
                sku: r.sku.clone(),
                status: OutcomeStatus::Failed as i32,
                failure_reason: "end of the simulated run".into(),
                ..Default::default()
            };
            (r.store_id.clone(), o.encode_to_vec())
        })
        .collect();
    d.publish(WAREHOUSE_REORDER_OUTCOMES, failed).await?;
    let (stockout_events, so_complete) =
        read_until_all::<StockoutEvent>(&stockouts, &stores, |e| {
            (is_sentinel(&e.sku) && matches!(e.change, Some(Change::Opened(_))))
                .then(|| e.store_id.clone())
        })
        .await;
    let (offer_events, off_complete) = read_until_all::<OfferEvent>(&offers, &stores, |e| {
        (is_sentinel(&e.sku)
            && matches!(
                e.change,
                Some(OfferChange::Issued(_)) | Some(OfferChange::NotOffered(_))
            ))
        .then(|| e.store_id.clone())
    })
    .await;
    if so_complete && off_complete {
        d.drain_checks(&mut week).await?;
    }
    let drained = wall.elapsed();
    for s in services {
        if let Err(e) = s.stop().await {
            eprintln!("warning: {e}");
        }
    }
    if !so_complete || !off_complete {
        eprintln!(
            "warning: not every store's end marker arrived within {END_PATIENCE:?} (stockouts {so_complete}, offers {off_complete}): the figures miss the tail"
        );
    }

    let stockout_events: Vec<StockoutEvent> = stockout_events
        .into_iter()
        .filter(|e| !is_sentinel(&e.sku))
        .collect();
    let offer_events: Vec<OfferEvent> = offer_events
        .into_iter()
        .filter(|e| !is_sentinel(&e.sku))
        .collect();
    let episodes = score::episodes(&stockout_events);
    let report = score::score(
        Params {
            start_ms: cfg.start_ms,
            end_ms: end,
            stores: cfg.stores,
            grace_ms: 2 * cfg.step_ms,
            min_truth_ms: 3_600_000,
            fast_seller_per_hour: 1.0,
            rates,
            open_hours: cfg.open_hours,
            store_hours: week.store_hours(),
        },
        &truth,
        &episodes,
        &offer_events,
        &d.check_events,
    );

    let st = &week.stats;
    let c = &d.counts;
    let truth_line = |k: TruthKind| {
        let v: Vec<&Truth> = truth.iter().filter(|t| t.kind == k).collect();
        let hours: f64 = v
            .iter()
            .map(|t| (t.end_ms - t.start_ms) as f64 / 3.6e6)
            .sum();
        format!("{} intervals, {hours:.0} shelf-hours", v.len())
    };
    println!();
    println!("== simulated week: report ==");
    println!(
        "run: {} stores x {} days, seed {}, {}-minute steps; wall time {:.1} s (set-up {:.1} s, simulation {:.1} s, end drain {:.1} s)",
        cfg.stores,
        cfg.days,
        cfg.seed,
        cfg.step_ms / 60_000,
        drained.as_secs_f64(),
        ready.as_secs_f64(),
        (simulated - ready).as_secs_f64(),
        (drained - simulated).as_secs_f64()
    );
    let hours = week.store_hours();
    let all_day = hours.values().filter(|&&h| h == (0, 24)).count();
    println!(
        "model: {}; {all_day} of {} stores open around the clock, the others {}-{}; hour-of-week demand {}; daily traffic swings {}; daily demand dispersion {}; phantoms {}; new SKUs {}",
        if cfg.hour_of_week {
            "realistic preset"
        } else {
            "default week"
        },
        hours.len(),
        cfg.open_hours.0,
        cfg.open_hours.1,
        if cfg.hour_of_week { "on" } else { "off" },
        cfg.traffic_shape
            .map_or_else(|| "off".into(), |k| format!("Gamma k = {k}")),
        cfg.dispersion
            .map_or_else(|| "off (Poisson)".into(), |k| format!("Gamma k = {k}")),
        match (
            cfg.phantom_sku_share_per_week,
            cfg.phantom_notice_median_open_hours
        ) {
            (Some(x), Some(m)) => format!(
                "{:.1} % of (store, SKU)s a week, noticed after a median {m} open hours",
                x * 100.0
            ),
            _ => format!("{} per store-day", cfg.phantoms_per_store_day),
        },
        {
            let n = week.new_skus();
            if n.is_empty() {
                "none".to_owned()
            } else {
                n.iter()
                    .map(|(sku, at)| {
                        format!(
                            "{sku} from day {:.2}",
                            (at - cfg.start_ms) as f64 / DAY_MS as f64
                        )
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        }
    );
    let published = c.sales + c.movements + c.outcomes + c.products + c.responses;
    println!(
        "published: {published} records ({} baskets with {} lines, {} movements, {} reorder outcomes, {} products, {} shelf-check answers); {:.0} simulated hours per wall second",
        c.sales,
        st.lines,
        c.movements,
        c.outcomes,
        c.products,
        c.responses,
        f64::from(cfg.days) * 24.0 / (simulated - ready).as_secs_f64().max(1e-9)
    );
    println!(
        "simulated: {} reorders answered ({} failed, {} fulfilled), {} receipts, {} gap-scan counts; {} basket lines lost at empty shelves",
        st.requests, st.failed, st.fulfilled, st.receipts, st.gap_scans, st.lines_lost
    );
    println!(
        "causes: {} troubled (store, SKU)s, {} of them had a reorder failed; {} phantom losses ({} found by staff, {} corrected by a count, {} found empty by a shelf check, the rest still on at the end)",
        st.troubled,
        st.troubled_started,
        st.phantoms,
        st.phantoms_found,
        st.phantoms_counted,
        st.phantoms_checked
    );
    println!(
        "staff: {} shelf checks handed over, answered {} empty and {} stock is there ({} wrong on purpose, error rate {:.0} %), {} left to expire; {} EMPTY counts booked, ending {} phantoms",
        st.checks_asked,
        st.answers_empty,
        st.answers_stock_there,
        st.answers_wrong,
        cfg.check_error_rate * 100.0,
        st.checks_unanswered,
        st.checks_booked_empty,
        st.phantoms_checked
    );
    println!(
        "check hand-over: {} checks reached the staff more than a step after they were asked, the longest {} simulated minutes late",
        st.checks_handed_late, st.check_lag_max_minutes
    );
    println!(
        "ground truth: real stockouts {}; phantom stockouts {}",
        truth_line(TruthKind::Real),
        truth_line(TruthKind::Phantom)
    );
    println!(
        "books check: {} stock levels compared with the simulated books, {} differed; {} waits ran out of patience",
        c.checked, c.differed, c.stalls
    );
    println!(
        "services published: {} stockout events ({} episodes), {} offer events",
        stockout_events.len(),
        episodes.len(),
        offer_events.len()
    );
    print!("{report}");
    // Checks that expired: when they were asked (UTC) and the store's hours, to tell a check
    // asked in a closed store from one the staff were too slow for.
    let asked: HashMap<&str, i64> = d
        .check_events
        .iter()
        .filter(|c| matches!(c.change, Some(CheckChange::Requested(_))))
        .map(|c| (c.check_id.as_str(), c.occurred_at_ms))
        .collect();
    let hhmm = |t: i64| {
        let m = t.rem_euclid(DAY_MS) / 60_000;
        format!("{:02}:{:02}", m / 60, m % 60)
    };
    let expired: Vec<String> = d
        .check_events
        .iter()
        .filter(|c| matches!(c.change, Some(CheckChange::Expired(_))))
        .map(|c| {
            let (o, cl) = hours.get(&c.store_id).copied().unwrap_or(cfg.open_hours);
            let at = asked.get(c.check_id.as_str()).copied();
            format!(
                "{} asked {} expired {} (open {o}-{cl})",
                c.store_id,
                at.map_or_else(|| "?".into(), hhmm),
                hhmm(c.occurred_at_ms)
            )
        })
        .collect();
    if !expired.is_empty() {
        println!("expired checks: {}", expired.join("; "));
    }
    println!("summary: {}", report.summary());
    if c.stalls > 0 && !so_complete {
        bail!("the run stalled; see the warnings above");
    }
    Ok(())
}
