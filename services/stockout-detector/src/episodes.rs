//! When is a stockout real, and when is it over: stock levels in, episodes out, no I/O.
//!
//! Two kinds of episode, at most one open per (store, SKU):
//! - **confirmed**: the shelf is empty by the books (on-hand at or below `EMPTY_AT_UNITS`) and
//!   replenishment is blocked: the latest decided reorder failed, or the goods are expected
//!   beyond `RESTOCK_HORIZON_HOURS`. Closes when stock returns or a reorder is fulfilled
//!   within the horizon.
//! - **suspected** (phantom): the books show stock but sales stopped. Time is measured in
//!   **exposure**: the store's own sale lines since the SKU's silence began (the store key
//!   `"<store>/"` counts them, in the same partition), so closed hours and quiet periods add
//!   nothing. The SKU's share of those lines has a Gamma posterior (decayed sales, decayed
//!   lines while on sale; shape capped at `PHANTOM_MAX_SHAPE` for day-to-day swings), so the
//!   chance of the silence is negative binomial. The Shiryaev–Roberts statistic R(x) =
//!   ∫₀ˣ P(silence u) du / P(silence x) (an onset anywhere in the silence) raises the alarm at
//!   R ≥ 1/f, with f = `PHANTOM_FALSE_ALARMS_PER_STORE_DAY` / (SKUs of the store × its lines a
//!   day): without phantoms a store then gets about that many false alarms a day, whatever
//!   its SKUs sell. A SKU with little history needs a far longer silence; one never sold is
//!   never suspected; nothing before `PHANTOM_WARMUP_HOURS` of store history. Closes when
//!   sales resume or a count corrects the figure.
//!
//! Shelf checks (`floor.checks.v1`; offer-generator asks staff about each suspected episode):
//! - **Empty**: offer-generator books a COUNT of 0; a count that finds the shelf empty while a
//!   suspected episode is open closes it and opens a **confirmed** one at once (a verified empty
//!   shelf, whether or not a reorder has failed yet), which gets an offer.
//! - **Stock is there**: the suspected episode closes as a false alarm, and the silence starts
//!   again from the answer.
//! - Every answer feeds the store's **calibration** (store key): decayed counts of checks that
//!   found stock and checks that found the shelf empty. Their odds (a prior of
//!   `CALIBRATION_PRIOR_CHECKS` each way), bounded to [1, `MAX_CALIBRATION`], multiply the alarm
//!   threshold: a store whose checks keep finding stock needs stronger evidence.
//!
//! Time is the event's: a due phantom check of a quiet SKU runs on the next stock level of any
//! SKU of the same store (see [`Detector::keys`]).
use clap::Args;
use shelfguard_events::floor::{ShelfCheckEvent, ShelfFinding, shelf_check_event};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::stockout::{
    Attempt, Closed, Evidence, Kind, Opened, StockoutEvent, stockout_event::Change,
};
use shelfguard_events::topics;
use shelfguard_events::validate::{self, split_key};
use shelfguard_events::warehouse::OutcomeStatus;
use shelfguard_runtime::due::DueIndex;
use shelfguard_runtime::processor::View;
use shelfguard_runtime::{Output, Processor, Rejected};

pub const SERVICE: &str = "stockout-detector";
const HOUR_MS: f64 = 3_600_000.0;

/// Default of `PHANTOM_FALSE_ALARMS_PER_STORE_DAY`.
pub const DEFAULT_FALSE_ALARMS_PER_STORE_DAY: f64 = 0.05;
/// Default of `PHANTOM_MAX_SHAPE`.
pub const DEFAULT_MAX_SHAPE: f64 = 30.0;
/// Default of `PHANTOM_WARMUP_HOURS`.
pub const DEFAULT_WARMUP_HOURS: f64 = 24.0;
/// Default of `SALES_RATE_HALF_LIFE_DAYS`.
pub const DEFAULT_HALF_LIFE_DAYS: f64 = 7.0;
/// Default of `EMPTY_AT_UNITS`.
pub const DEFAULT_EMPTY_AT_UNITS: i32 = 0;
/// Default of `RESTOCK_HORIZON_HOURS`.
pub const DEFAULT_RESTOCK_HORIZON_HOURS: i64 = 24;
/// Calibration: checks of each answer the store is assumed to have had before its first one
/// (so one false alarm does not double the threshold).
pub const CALIBRATION_PRIOR_CHECKS: f64 = 2.0;
/// Calibration: the most a store's checks can multiply its alarm threshold (odds) by.
pub const MAX_CALIBRATION: f64 = 8.0;

/// Prior sales of the Gamma posterior on a SKU's share (a SKU with no sales yet is never
/// suspected: with shape 1/2 the silence it would need is beyond any week).
const PRIOR_SALES: f64 = 0.5;

#[derive(Debug, Clone, Args)]
#[group(id = "stockout-detector-policy")]
pub struct Policy {
    /// The shelf counts as empty at or below this many units; 0 to 1000000.
    #[arg(long, env = "EMPTY_AT_UNITS", default_value_t = DEFAULT_EMPTY_AT_UNITS, value_parser = clap::value_parser!(i32).range(0..=i64::from(shelfguard_events::limits::MAX_QUANTITY)))]
    pub empty_at_units: i32,
    /// Goods expected later than this many hours from now leave the shelf blocked; 0 to 8760
    /// (a year).
    #[arg(long, env = "RESTOCK_HORIZON_HOURS", default_value_t = DEFAULT_RESTOCK_HORIZON_HOURS, value_parser = clap::value_parser!(i64).range(0..=8760))]
    pub restock_horizon_hours: i64,
    /// Phantom stockouts: the false alarms a store may get per day on SKUs that are not
    /// empty. Every SKU of the store gets the same share of it per unit of store traffic,
    /// which sets the posterior odds a silence must reach. In (0, 10].
    #[arg(long, env = "PHANTOM_FALSE_ALARMS_PER_STORE_DAY",
          default_value_t = DEFAULT_FALSE_ALARMS_PER_STORE_DAY, value_parser = alarms_per_day)]
    pub phantom_false_alarms_per_store_day: f64,
    /// Overdispersion: the Gamma shape of a SKU's share is capped at this (day-to-day swings
    /// of demand mean even a long history never pins the share down). In [1, 10000].
    #[arg(long, env = "PHANTOM_MAX_SHAPE", default_value_t = DEFAULT_MAX_SHAPE, value_parser = max_shape)]
    pub phantom_max_shape: f64,
    /// No phantom alarm before the store has this much history (its traffic per day is
    /// learned). In [1, 720].
    #[arg(long, env = "PHANTOM_WARMUP_HOURS", default_value_t = DEFAULT_WARMUP_HOURS, value_parser = warmup_hours)]
    pub phantom_warmup_hours: f64,
    /// Half-life of the learned share of each SKU, in days (older sales count half as much).
    /// In [0.5, 365].
    #[arg(long, env = "SALES_RATE_HALF_LIFE_DAYS", default_value_t = DEFAULT_HALF_LIFE_DAYS, value_parser = half_life)]
    pub sales_rate_half_life_days: f64,
}

fn number_in(s: &str, lo: f64, hi: f64, lo_open: bool) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    let above = if lo_open { v > lo } else { v >= lo };
    if v.is_finite() && above && v <= hi {
        Ok(v)
    } else {
        let open = if lo_open { '(' } else { '[' };
        Err(format!("{v} is outside {open}{lo}, {hi}]"))
    }
}
fn alarms_per_day(s: &str) -> Result<f64, String> {
    number_in(s, 0.0, 10.0, true)
}
fn max_shape(s: &str) -> Result<f64, String> {
    number_in(s, 1.0, 10_000.0, false)
}
fn warmup_hours(s: &str) -> Result<f64, String> {
    number_in(s, 1.0, 720.0, false)
}
fn half_life(s: &str) -> Result<f64, String> {
    number_in(s, 0.5, 365.0, false)
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            empty_at_units: DEFAULT_EMPTY_AT_UNITS,
            restock_horizon_hours: DEFAULT_RESTOCK_HORIZON_HOURS,
            phantom_false_alarms_per_store_day: DEFAULT_FALSE_ALARMS_PER_STORE_DAY,
            phantom_max_shape: DEFAULT_MAX_SHAPE,
            phantom_warmup_hours: DEFAULT_WARMUP_HOURS,
            sales_rate_half_life_days: DEFAULT_HALF_LIFE_DAYS,
        }
    }
}

impl Policy {
    fn horizon_ms(&self) -> i64 {
        self.restock_horizon_hours * 3_600_000
    }
    fn tau_ms(&self) -> f64 {
        self.sales_rate_half_life_days * 24.0 * HOUR_MS / std::f64::consts::LN_2
    }
}

/// The state of one key. Two kinds of key share it:
/// - `<store>/<sku>`: the episode (fields 1-4), the latest stock level, and the phantom
///   detector's statistics (fields 8-13, 44 bytes on the wire once warm);
/// - `<store>/` (the store key): the store's traffic (fields 14-16) and its shelf-check
///   calibration (fields 17-19).
///
/// Fields 1-4 and 8 are those of `shelfguard.state.v1.DetectorItem`, so a changelog written
/// by an older detector restores (its clock-time rate, fields 5-7, is dropped and the share
/// is learned again).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Item {
    /// Latest stock level seen.
    #[prost(message, optional, tag = "1")]
    pub level: Option<StockLevel>,
    /// The open episode, empty when none.
    #[prost(string, tag = "2")]
    pub open_stockout_id: String,
    #[prost(uint32, tag = "3")]
    pub episode_seq: u32,
    /// Kind of the open episode (shelfguard.stockout.v1.Kind).
    #[prost(int32, tag = "4")]
    pub open_kind: i32,
    /// When the current silence began: the latest sale, or when the shelf was last seen
    /// stocked (a receipt, a count, the books back above empty).
    #[prost(int64, tag = "8")]
    pub last_sale_at_ms: i64,
    /// Gamma posterior on the SKU's share of the store's sale lines: decayed sales (shape,
    /// less the prior) and decayed store lines while the SKU was on sale (rate).
    #[prost(double, tag = "9")]
    pub share_sales: f64,
    #[prost(double, tag = "10")]
    pub share_exposure: f64,
    /// The store's line counter when this key last learned, and when the silence began.
    #[prost(double, tag = "11")]
    pub store_lines_seen: f64,
    #[prost(double, tag = "12")]
    pub silence_from_lines: f64,
    /// When the phantom check should next run (0: none), for the due index.
    #[prost(int64, tag = "13")]
    pub check_at_ms: i64,
    /// Store key only: sale lines of the store so far, SKUs seen, since when.
    #[prost(double, tag = "14")]
    pub store_lines: f64,
    #[prost(uint32, tag = "15")]
    pub store_skus: u32,
    #[prost(int64, tag = "16")]
    pub store_since_ms: i64,
    /// Store key only: shelf checks answered "stock is there" (false alarms) and "empty"
    /// (phantoms found), decayed with `SALES_RATE_HALF_LIFE_DAYS` to `checks_at_ms`: their odds
    /// raise the store's alarm threshold (see [`calibration`]).
    #[prost(double, tag = "17")]
    pub checks_stock_there: f64,
    #[prost(double, tag = "18")]
    pub checks_empty: f64,
    /// When the two above were last brought up to date (the latest answer's time).
    #[prost(int64, tag = "19")]
    pub checks_at_ms: i64,
}

/// What a SKU key needs to know about its store's traffic (read from the store key).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Traffic {
    /// Sale lines of the store so far (the exposure clock).
    pub lines: f64,
    /// SKUs of the store seen so far.
    pub skus: u32,
    /// The store's first stock level (UTC ms).
    pub since_ms: i64,
    /// What the store's shelf checks multiply its alarm threshold by (see [`calibration`]);
    /// 0 (unknown) counts as 1.
    pub calibration: f64,
}

impl Traffic {
    pub fn of(store: &Item) -> Self {
        Self {
            lines: store.store_lines,
            skus: store.store_skus,
            since_ms: store.store_since_ms,
            calibration: calibration(store),
        }
    }
    /// Sale lines per ms so far, averaged over open and closed hours.
    fn per_ms(&self, now: i64) -> f64 {
        let dt = (now - self.since_ms) as f64;
        if dt > 0.0 { self.lines / dt } else { 0.0 }
    }
}

/// The factor a store's shelf checks put on its alarm threshold (odds): the odds that a check
/// finds stock there, `(stock there + prior) / (empty + prior)`, bounded to
/// [1, `MAX_CALIBRATION`]. Checks that find the shelf empty never lower it below the budget's
/// own threshold (the false-alarm budget stays the promise).
pub fn calibration(store: &Item) -> f64 {
    let odds = (store.checks_stock_there.max(0.0) + CALIBRATION_PRIOR_CHECKS)
        / (store.checks_empty.max(0.0) + CALIBRATION_PRIOR_CHECKS);
    odds.clamp(1.0, MAX_CALIBRATION)
}

/// The store key's part of a shelf-check answer: one more check of its finding, the older
/// ones decayed to its time.
pub fn on_store_check(policy: &Policy, store: &mut Item, check: &ShelfCheckEvent) {
    let Some(shelf_check_event::Change::Answered(a)) = &check.change else {
        return;
    };
    let now = check.occurred_at_ms;
    let dt = (now - store.checks_at_ms).max(0) as f64;
    let d = if store.checks_at_ms == 0 {
        1.0
    } else {
        (-dt / policy.tau_ms()).exp()
    };
    store.checks_stock_there *= d;
    store.checks_empty *= d;
    store.checks_at_ms = store.checks_at_ms.max(now);
    match ShelfFinding::try_from(a.finding) {
        Ok(ShelfFinding::StockIsThere) => store.checks_stock_there += 1.0,
        Ok(ShelfFinding::Empty) => store.checks_empty += 1.0,
        _ => {}
    }
}

/// The (store, SKU) key's part of a shelf-check answer: "stock is there" closes the open
/// suspected episode it asked about as a false alarm; the silence starts again from the answer.
pub fn on_check(
    policy: &Policy,
    item: &mut Item,
    check: &ShelfCheckEvent,
    traffic: &Traffic,
) -> Vec<StockoutEvent> {
    let Some(shelf_check_event::Change::Answered(a)) = &check.change else {
        return Vec::new();
    };
    let suspected = item.open_kind == Kind::Suspected as i32
        && !item.open_stockout_id.is_empty()
        && item.open_stockout_id == check.stockout_id;
    if !suspected || a.finding != ShelfFinding::StockIsThere as i32 {
        return Vec::new();
    }
    let now = check.occurred_at_ms;
    let Some(level) = item.level.clone() else {
        return Vec::new();
    };
    let step = close(item, "shelf check: stock is there".into(), level.on_hand);
    item.last_sale_at_ms = now;
    item.silence_from_lines = traffic.lines;
    item.check_at_ms = next_check(policy, item, traffic, now);
    let at = StockLevel {
        occurred_at_ms: now,
        ..level
    };
    records(&at, vec![step])
}

/// The store key's part of a stock level: one more line if it is a sale, one more SKU if the
/// SKU is new (`known` says whether the SKU key already had a level).
pub fn on_store_level(store: &mut Item, level: &StockLevel, known: bool) {
    if store.store_since_ms == 0 {
        store.store_since_ms = level.occurred_at_ms;
    }
    if level.cause == Cause::Sale as i32 && level.sold > 0 {
        store.store_lines += 1.0;
    }
    if !known {
        store.store_skus += 1;
    }
}

/// The phantom test of one silence, from the Gamma(α, β) posterior on the SKU's share:
/// with `x` store lines of silence, P(no sale) = (β/(β+x))^α (negative binomial), and the
/// Shiryaev–Roberts statistic (onset uniform over the silence, per line) is
/// R(x) = ∫₀ˣ P(no sale in u) du / P(no sale in x). Alarm when R(x) ≥ 1/f: under no phantom,
/// a SKU then raises false alarms at about f per store line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Silence {
    pub alpha: f64,
    pub beta: f64,
}

impl Silence {
    /// The posterior of `item`, shape capped at `max_shape` (mean kept), or None without
    /// exposure yet.
    pub fn of(policy: &Policy, item: &Item) -> Option<Self> {
        if item.share_exposure < 1.0 || item.share_sales <= 0.0 {
            return None;
        }
        let alpha = item.share_sales + PRIOR_SALES;
        let beta = item.share_exposure;
        let capped = alpha.min(policy.phantom_max_shape);
        Some(Self {
            alpha: capped,
            beta: beta * capped / alpha,
        })
    }
    /// ln R(x).
    pub fn ln_r(&self, x: f64) -> f64 {
        if x <= 0.0 {
            return f64::NEG_INFINITY;
        }
        let (a, b) = (self.alpha, self.beta);
        let l = (x / b).ln_1p(); // ln(1 + x/β) = -ln P0 / α
        let ln_int = if (a - 1.0).abs() < 1e-9 {
            b.ln() + l.ln()
        } else {
            // β/(α-1)·(1 - e^{-(α-1)l}), positive for either sign of α-1.
            let e = -(-(a - 1.0) * l).exp_m1();
            b.ln() + (e / (a - 1.0)).ln()
        };
        ln_int + a * l
    }
    /// The silence (store lines) at which ln R reaches `ln_threshold`.
    pub fn lines_to_alarm(&self, ln_threshold: f64) -> f64 {
        let (mut lo, mut hi) = (0.0_f64, self.beta.max(1.0));
        let mut n = 0;
        while self.ln_r(hi) < ln_threshold && n < 200 {
            lo = hi;
            hi *= 2.0;
            n += 1;
        }
        for _ in 0..60 {
            let mid = 0.5 * (lo + hi);
            if self.ln_r(mid) < ln_threshold {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        hi
    }
    /// Expected sales in `x` lines of silence (posterior mean share × x).
    pub fn expected(&self, x: f64) -> f64 {
        self.alpha / self.beta * x
    }
}

/// ln(1/f): f = budget / (SKUs × store lines a day) false alarms per SKU per store line.
/// None before the store's warm-up is over.
fn ln_threshold(policy: &Policy, traffic: &Traffic, now: i64) -> Option<f64> {
    let hours = (now - traffic.since_ms) as f64 / HOUR_MS;
    if traffic.since_ms == 0 || hours < policy.phantom_warmup_hours || traffic.lines < 1.0 {
        return None;
    }
    let lines_per_day = traffic.lines / hours * 24.0;
    let per_line = policy.phantom_false_alarms_per_store_day
        / (f64::from(traffic.skus.max(1)) * lines_per_day);
    Some(-per_line.ln() + traffic.calibration.max(1.0).ln())
}

/// Whether `item` can be suspected now: books show stock, no open episode, a silence going.
fn watchable(policy: &Policy, item: &Item) -> bool {
    item.level
        .as_ref()
        .is_some_and(|l| l.on_hand > policy.empty_at_units)
        && item.open_stockout_id.is_empty()
        && item.last_sale_at_ms > 0
}

/// The phantom test of `item` at `now`: Some(silence lines, posterior) when the alarm is due.
fn phantom_alarm(
    policy: &Policy,
    item: &Item,
    traffic: &Traffic,
    now: i64,
) -> Option<(f64, Silence)> {
    if !watchable(policy, item) {
        return None;
    }
    let s = Silence::of(policy, item)?;
    let th = ln_threshold(policy, traffic, now)?;
    let x = traffic.lines - item.silence_from_lines;
    (s.ln_r(x) >= th).then_some((x, s))
}

/// When to look again (0: not watched): the store lines still needed at four times the
/// store's mean traffic (busy hours are busier than the mean), at least a minute on.
fn next_check(policy: &Policy, item: &Item, traffic: &Traffic, now: i64) -> i64 {
    if !watchable(policy, item) {
        return 0;
    }
    let Some(s) = Silence::of(policy, item) else {
        return 0;
    };
    let warm_at = traffic.since_ms + (policy.phantom_warmup_hours * HOUR_MS).ceil() as i64;
    let Some(th) = ln_threshold(policy, traffic, now) else {
        return warm_at.max(now + 60_000);
    };
    let need = s.lines_to_alarm(th) - (traffic.lines - item.silence_from_lines);
    let per_ms = traffic.per_ms(now) * 4.0;
    let wait = if per_ms > 0.0 {
        need.max(0.0) / per_ms
    } else {
        HOUR_MS
    };
    now + (wait.min(24.0 * HOUR_MS) as i64).max(60_000)
}

/// Brings the share posterior up to `now` (the state before this level was in force since the
/// previous one): decays both sums, adds the store lines while the SKU was on sale and no
/// episode was open, and this level's sale. A sale, a receipt or a count (someone saw the
/// shelf), or the books coming back above empty, start a new silence.
fn learn(policy: &Policy, item: &mut Item, level: &StockLevel, traffic: &Traffic, sold: bool) {
    let now = level.occurred_at_ms;
    let prev_at = item.level.as_ref().map_or(now, |l| l.occurred_at_ms);
    let d = (-((now - prev_at).max(0) as f64) / policy.tau_ms()).exp();
    let on_sale = item
        .level
        .as_ref()
        .is_some_and(|l| l.on_hand > policy.empty_at_units)
        && item.open_stockout_id.is_empty();
    let seen = if item.level.is_some() {
        (traffic.lines - item.store_lines_seen).max(0.0)
    } else {
        0.0
    };
    item.share_sales *= d;
    item.share_exposure = item.share_exposure * d + if on_sale { seen } else { 0.0 };
    item.store_lines_seen = traffic.lines;
    let stocked = level.on_hand > policy.empty_at_units;
    let seen_stocked = level.cause == Cause::Receipt as i32 || level.cause == Cause::Count as i32;
    if sold {
        item.share_sales += 1.0;
    }
    if sold || (stocked && (seen_stocked || !on_sale)) {
        item.last_sale_at_ms = now;
        item.silence_from_lines = traffic.lines;
    }
}

/// Replenishment is blocked when the latest decided reorder failed (an open retry does not
/// unblock it: the warehouse already let the store down), or when the goods are expected
/// beyond the horizon.
fn blocked(policy: &Policy, level: &StockLevel) -> bool {
    level.last_reorder.as_ref().is_some_and(|r| {
        r.status == OutcomeStatus::Failed as i32
            || (r.expected_at_ms > 0
                && r.expected_at_ms > level.occurred_at_ms + policy.horizon_ms())
    })
}

/// A reorder fulfilled with the goods due within the horizon.
fn fulfilled_soon(policy: &Policy, level: &StockLevel) -> bool {
    level.last_reorder.as_ref().is_some_and(|r| {
        r.status != OutcomeStatus::Failed as i32
            && r.decided_at_ms == level.occurred_at_ms
            && r.expected_at_ms > 0
            && r.expected_at_ms <= level.occurred_at_ms + policy.horizon_ms()
    })
}

/// 1 (mild) to 5 (severe): one step per failed attempt (up to three), one more when nobody
/// knows when stock returns or it is days away.
pub fn severity(policy: &Policy, level: &StockLevel) -> i32 {
    let failed = level.failed_reorders_7d.clamp(0, 3);
    let expected = level.last_reorder.as_ref().map_or(0, |r| r.expected_at_ms);
    let far = expected == 0 || expected > level.occurred_at_ms + 3 * policy.horizon_ms();
    (1 + failed + i32::from(far && failed > 0)).clamp(1, 5)
}

fn evidence(level: &StockLevel) -> Evidence {
    let last = level.last_reorder.clone().unwrap_or_default();
    Evidence {
        on_hand: level.on_hand,
        failed_reorders_7d: level.failed_reorders_7d,
        last_failure_reason: last.failure_reason,
        last_reorder_id: last.reorder_id,
        expected_restock_at_ms: last.expected_at_ms,
        attempts: level
            .recent_failures
            .iter()
            .map(|f| Attempt {
                reorder_id: f.reorder_id.clone(),
                reason: f.failure_reason.clone(),
                at_ms: f.decided_at_ms,
            })
            .collect(),
        ..Default::default()
    }
}

/// One change of an episode, before it becomes a record.
enum Step {
    Open(Opened),
    Close(Closed),
}

fn open(item: &mut Item, kind: Kind, opened: Opened) -> (String, Step) {
    item.episode_seq += 1;
    item.open_stockout_id = format!(
        "{}/S{}",
        item.level
            .as_ref()
            .map_or_else(String::new, |l| validate::key(&l.store_id, &l.sku)),
        item.episode_seq
    );
    item.open_kind = kind as i32;
    (item.open_stockout_id.clone(), Step::Open(opened))
}

fn close(item: &mut Item, reason: String, on_hand: i32) -> (String, Step) {
    let id = std::mem::take(&mut item.open_stockout_id);
    item.open_kind = Kind::Unspecified as i32;
    (id, Step::Close(Closed { reason, on_hand }))
}

/// The decisions for one (store, SKU) after its own new stock level.
pub fn on_level(
    policy: &Policy,
    item: &mut Item,
    level: StockLevel,
    traffic: &Traffic,
) -> Vec<StockoutEvent> {
    let sold = level.cause == Cause::Sale as i32 && level.sold > 0;
    // Learn with the state before this level (the time since the last update was spent in it).
    learn(policy, item, &level, traffic, sold);
    let empty = level.on_hand <= policy.empty_at_units;
    let mut steps = Vec::new();
    let suspected = item.open_kind == Kind::Suspected as i32 && !item.open_stockout_id.is_empty();
    // Someone counted the shelf of a suspected stockout and found it empty (a shelf check's
    // EMPTY answer books exactly this): the stockout is confirmed, blocked or not.
    let verified_empty = suspected && empty && level.cause == Cause::Count as i32;
    if suspected {
        if sold {
            steps.push(close(item, "sales resumed".into(), level.on_hand));
        } else if level.cause == Cause::Count as i32 {
            steps.push(close(
                item,
                format!(
                    "count corrected the stock figure to {} ({:+})",
                    level.on_hand, level.count_discrepancy
                ),
                level.on_hand,
            ));
        } else if empty {
            steps.push(close(
                item,
                format!(
                    "the books now show the shelf empty (on-hand {})",
                    level.on_hand
                ),
                level.on_hand,
            ));
        }
    } else if !item.open_stockout_id.is_empty() {
        if !empty {
            steps.push(close(
                item,
                format!("stock returned (on-hand {})", level.on_hand),
                level.on_hand,
            ));
        } else if fulfilled_soon(policy, &level) {
            let at = level.last_reorder.as_ref().map_or(0, |r| r.expected_at_ms);
            steps.push(close(
                item,
                format!(
                    "reorder fulfilled, goods expected {}",
                    shelfguard_events::time::utc_words(at)
                ),
                level.on_hand,
            ));
        }
    }
    let severity = severity(policy, &level);
    item.level = Some(level);
    let level = item
        .level
        .as_ref()
        .map_or_else(StockLevel::default, Clone::clone);
    if item.open_stockout_id.is_empty()
        && empty
        && (verified_empty || (blocked(policy, &level) && !fulfilled_soon(policy, &level)))
    {
        steps.push(open(
            item,
            Kind::Confirmed,
            Opened {
                evidence: Some(evidence(&level)),
                kind: Kind::Confirmed as i32,
                severity,
                confidence: 0.95,
            },
        ));
    }
    item.check_at_ms = next_check(policy, item, traffic, level.occurred_at_ms);
    records(&level, steps)
}

/// The phantom check of one (store, SKU) at `now` (another SKU of the store moved).
pub fn on_time(
    policy: &Policy,
    item: &mut Item,
    now: i64,
    traffic: &Traffic,
) -> Vec<StockoutEvent> {
    let Some((x, s)) = phantom_alarm(policy, item, traffic, now) else {
        item.check_at_ms = next_check(policy, item, traffic, now);
        return Vec::new();
    };
    let Some(level) = item.level.clone() else {
        return Vec::new();
    };
    let gap = now - item.last_sale_at_ms;
    let expected = s.expected(x);
    let mut ev = evidence(&level);
    ev.gap_ms = gap;
    // The mean rate over the silence (store traffic, not clock time, drives it).
    ev.sales_per_hour = if gap > 0 {
        expected / (gap as f64 / HOUR_MS)
    } else {
        0.0
    };
    ev.expected_sales_in_gap = expected;
    let step = open(
        item,
        Kind::Suspected,
        Opened {
            evidence: Some(ev),
            kind: Kind::Suspected as i32,
            severity: if expected >= 20.0 { 2 } else { 1 },
            // Never as sure as an empty shelf by the books.
            confidence: 0.6 * (1.0 - (-expected).exp()),
        },
    );
    item.check_at_ms = 0;
    let at = StockLevel {
        occurred_at_ms: now,
        ..level
    };
    records(&at, vec![step])
}

fn records(level: &StockLevel, steps: Vec<(String, Step)>) -> Vec<StockoutEvent> {
    steps
        .into_iter()
        .map(|(stockout_id, step)| {
            let (what, change) = match step {
                Step::Open(o) => ("opened", Change::Opened(o)),
                Step::Close(c) => ("closed", Change::Closed(c)),
            };
            StockoutEvent {
                event_id: format!("so:{stockout_id}:{what}"),
                occurred_at_ms: level.occurred_at_ms,
                store_id: level.store_id.clone(),
                stockout_id,
                sku: level.sku.clone(),
                change: Some(change),
            }
        })
        .collect()
}

fn outputs(key: &str, events: &[StockoutEvent]) -> Vec<Output> {
    let (store, _) = split_key(key);
    events
        .iter()
        .map(|e| Output::new(topics::STOCKOUTS, store, e))
        .collect()
}

pub struct Detector {
    policy: Policy,
    /// Phantom checks: a stock level of any SKU of the store also visits the keys due by its time.
    due: DueIndex,
}

/// The store key of `store` (`"<store>/"`): its traffic, in the same partition as its SKUs.
pub fn store_key(store: &str) -> String {
    validate::key(store, "")
}

fn is_store_key(key: &str) -> bool {
    key.ends_with('/')
}

fn traffic(key: &str, others: &dyn View<Item>) -> Traffic {
    let (store, _) = split_key(key);
    others
        .get(&store_key(store))
        .map(|s| Traffic::of(&s))
        .unwrap_or_default()
}

impl Detector {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            due: DueIndex::default(),
        }
    }

    fn index(&mut self, key: &str, item: &Item) {
        let at = (!is_store_key(key) && item.check_at_ms > 0).then_some(item.check_at_ms);
        self.due.set(key, at);
    }
}

/// A validated input of the detector.
#[derive(Debug, Clone)]
pub enum Event {
    /// A stock level from inventory.
    Level(StockLevel),
    /// A step of a shelf check from offer-generator (answers matter).
    Check(ShelfCheckEvent),
}

impl Event {
    fn store_id(&self) -> &str {
        match self {
            Event::Level(l) => &l.store_id,
            Event::Check(c) => &c.store_id,
        }
    }
    fn occurred_at_ms(&self) -> i64 {
        match self {
            Event::Level(l) => l.occurred_at_ms,
            Event::Check(c) => c.occurred_at_ms,
        }
    }
}

impl Processor for Detector {
    type Event = Event;
    type State = Item;

    fn name(&self) -> &'static str {
        SERVICE
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::INVENTORY_STOCK_LEVELS, topics::FLOOR_CHECKS]
    }
    fn changelog(&self) -> &'static str {
        topics::DETECTOR_STATE
    }
    fn dead_letter(&self) -> &'static str {
        topics::DETECTOR_DLQ
    }
    fn decode(&self, topic: &str, payload: &[u8]) -> Result<Event, Rejected> {
        match topic {
            topics::INVENTORY_STOCK_LEVELS => Ok(Event::Level(validate::stock_level(payload)?)),
            topics::FLOOR_CHECKS => Ok(Event::Check(validate::check_event(payload)?)),
            other => Err(Rejected(format!(
                "not an input of stockout-detector: {other}"
            ))),
        }
    }
    fn event_id<'e>(&self, event: &'e Event) -> &'e str {
        match event {
            Event::Level(l) => &l.event_id,
            Event::Check(c) => &c.event_id,
        }
    }
    fn store_id<'e>(&self, event: &'e Event) -> &'e str {
        event.store_id()
    }
    fn occurred_at_ms(&self, event: &Event) -> i64 {
        event.occurred_at_ms()
    }
    /// The store key (its traffic: the exposure clock; its checks: the calibration), then the
    /// event's own (store, SKU). Only answers of shelf checks change anything.
    fn keys(&self, event: &Event) -> Vec<String> {
        let (store, sku) = match event {
            Event::Level(l) => (&l.store_id, &l.sku),
            Event::Check(c) if matches!(c.change, Some(shelf_check_event::Change::Answered(_))) => {
                (&c.store_id, &c.sku)
            }
            Event::Check(_) => return Vec::new(),
        };
        vec![store_key(store), validate::key(store, sku)]
    }
    /// The store's keys whose phantom check is due by the event's time.
    fn due_keys(&self, event: &Event) -> Vec<String> {
        self.due
            .due(event.store_id(), event.occurred_at_ms())
            .map(str::to_owned)
            .collect()
    }
    fn apply(
        &mut self,
        key: &str,
        item: &mut Item,
        event: &Event,
        others: &dyn View<Item>,
    ) -> Result<Vec<Output>, Rejected> {
        if is_store_key(key) {
            match event {
                Event::Level(l) => {
                    let own = validate::key(&l.store_id, &l.sku);
                    let known = others.get(&own).is_some_and(|i| i.level.is_some());
                    on_store_level(item, l, known);
                }
                Event::Check(c) => on_store_check(&self.policy, item, c),
            }
            return Ok(Vec::new());
        }
        let traffic = traffic(key, others);
        let events = match event {
            Event::Level(l) => on_level(&self.policy, item, l.clone(), &traffic),
            Event::Check(c) => on_check(&self.policy, item, c, &traffic),
        };
        self.index(key, item);
        Ok(outputs(key, &events))
    }
    /// The phantom check of a quiet SKU fell due (another SKU of the store moved).
    fn on_due(
        &mut self,
        key: &str,
        item: &mut Item,
        now: i64,
        others: &dyn View<Item>,
    ) -> Result<Vec<Output>, Rejected> {
        if is_store_key(key) {
            return Ok(Vec::new());
        }
        let traffic = traffic(key, others);
        let events = on_time(&self.policy, item, now, &traffic);
        self.index(key, item);
        Ok(outputs(key, &events))
    }
    fn restored(&mut self, key: &str, item: &Item) {
        self.index(key, item);
    }
}

#[cfg(test)]
mod tests;
