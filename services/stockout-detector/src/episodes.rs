//! When is a stockout real, and when is it over: stock levels in, episodes out, no I/O.
//!
//! Two kinds of episode, at most one open per (store, SKU):
//! - **confirmed**: the shelf is empty by the books (on-hand at or below `EMPTY_AT_UNITS`) and
//!   replenishment is blocked: the latest decided reorder failed, or the goods are expected
//!   beyond `RESTOCK_HORIZON_HOURS`. Closes when stock returns or a reorder is fulfilled
//!   within the horizon.
//! - **suspected** (phantom): the books show stock but sales stopped. The sales rate λ of each
//!   (store, SKU) is learned online; when the time t since the last sale reaches
//!   λ·t ≥ ln(1/α) (and at least `PHANTOM_MIN_GAP_MINUTES`), the shelf is probably empty.
//!   Needs `PHANTOM_MIN_SALES` of history and `PHANTOM_MIN_SALES_PER_HOUR`, so slow sellers
//!   never trigger it. Closes when sales
//!   resume or a count corrects the figure.
//!
//! Time is the event's: a due phantom check of a quiet SKU runs on the next stock level of any
//! SKU of the same store (see [`Detector::keys`]).
use clap::Args;
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::state::DetectorItem;
use shelfguard_events::stockout::{
    Attempt, Closed, Evidence, Kind, Opened, StockoutEvent, stockout_event::Change,
};
use shelfguard_events::topics;
use shelfguard_events::validate::{self, split_key};
use shelfguard_events::warehouse::OutcomeStatus;
use shelfguard_runtime::config::number_at_least;
use shelfguard_runtime::due::DueIndex;
use shelfguard_runtime::processor::View;
use shelfguard_runtime::{Output, Processor, Rejected};

pub const SERVICE: &str = "stockout-detector";
const HOUR_MS: f64 = 3_600_000.0;

/// Default of `EMPTY_AT_UNITS`.
pub const DEFAULT_EMPTY_AT_UNITS: i32 = 0;
/// Default of `RESTOCK_HORIZON_HOURS`.
pub const DEFAULT_RESTOCK_HORIZON_HOURS: i64 = 24;
/// Default of `PHANTOM_ALPHA`.
pub const DEFAULT_PHANTOM_ALPHA: f64 = 0.01;
/// Default of `PHANTOM_ALPHA_SCOPE`.
pub const DEFAULT_PHANTOM_ALPHA_SCOPE: &str = "gap";
/// Default of `PHANTOM_MIN_SALES`.
pub const DEFAULT_PHANTOM_MIN_SALES: f64 = 10.0;
/// Default of `PHANTOM_MIN_SALES_PER_HOUR`.
pub const DEFAULT_PHANTOM_MIN_SALES_PER_HOUR: f64 = 1.0;
/// Default of `PHANTOM_MIN_GAP_MINUTES`.
pub const DEFAULT_PHANTOM_MIN_GAP_MINUTES: i64 = 60;
/// Default of `SALES_RATE_HALF_LIFE_DAYS`.
pub const DEFAULT_SALES_RATE_HALF_LIFE_DAYS: f64 = 7.0;
/// Shortest `SALES_RATE_HALF_LIFE_DAYS` (about 15 minutes).
pub const MIN_HALF_LIFE_DAYS: f64 = 0.01;

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
    /// Phantom stockouts: the chance α of a gap this long by bad luck alone (λ·t ≥ ln(1/α));
    /// in (0, 0.5].
    #[arg(long, env = "PHANTOM_ALPHA", default_value_t = DEFAULT_PHANTOM_ALPHA, value_parser = probability)]
    pub phantom_alpha: f64,
    /// What α bounds: `gap` (each gap between two sales reaches the threshold with chance α,
    /// the rule λ·t ≥ ln(1/α)), or `day` (a steady seller raises a false alarm with chance α per
    /// day: λ·t ≥ ln(λ·24 h/α), for many fewer false alarms on busy SKUs).
    #[arg(long, env = "PHANTOM_ALPHA_SCOPE", default_value = DEFAULT_PHANTOM_ALPHA_SCOPE, value_parser = ["gap", "day"])]
    pub phantom_alpha_scope: String,
    /// Phantom stockouts need at least this much sales history (decayed sale events); 0 or more.
    #[arg(long, env = "PHANTOM_MIN_SALES", default_value_t = DEFAULT_PHANTOM_MIN_SALES, value_parser = number_at_least(0.0))]
    pub phantom_min_sales: f64,
    /// Slow sellers never trigger it: the learned rate must be at least this many sales an
    /// hour; 0 or more.
    #[arg(long, env = "PHANTOM_MIN_SALES_PER_HOUR", default_value_t = DEFAULT_PHANTOM_MIN_SALES_PER_HOUR, value_parser = number_at_least(0.0))]
    pub phantom_min_sales_per_hour: f64,
    /// ... and a gap of at least this many minutes, whatever the rate; 0 to 43200 (30 days).
    #[arg(long, env = "PHANTOM_MIN_GAP_MINUTES", default_value_t = DEFAULT_PHANTOM_MIN_GAP_MINUTES, value_parser = clap::value_parser!(i64).range(0..=43_200))]
    pub phantom_min_gap_minutes: i64,
    /// Half-life of the learned sales rate, in days (older sales count half as much); 0.01
    /// (about 15 minutes) or more.
    #[arg(long, env = "SALES_RATE_HALF_LIFE_DAYS", default_value_t = DEFAULT_SALES_RATE_HALF_LIFE_DAYS, value_parser = number_at_least(MIN_HALF_LIFE_DAYS))]
    pub sales_rate_half_life_days: f64,
}

/// A chance in (0, 0.5]: larger would flag most ordinary gaps, 0 would never flag one.
fn probability(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} is not a number"))?;
    if v > 0.0 && v <= 0.5 {
        Ok(v)
    } else {
        Err(format!("{v} is outside (0, 0.5]"))
    }
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            empty_at_units: DEFAULT_EMPTY_AT_UNITS,
            restock_horizon_hours: DEFAULT_RESTOCK_HORIZON_HOURS,
            phantom_alpha: DEFAULT_PHANTOM_ALPHA,
            phantom_alpha_scope: DEFAULT_PHANTOM_ALPHA_SCOPE.into(),
            phantom_min_sales: DEFAULT_PHANTOM_MIN_SALES,
            phantom_min_sales_per_hour: DEFAULT_PHANTOM_MIN_SALES_PER_HOUR,
            phantom_min_gap_minutes: DEFAULT_PHANTOM_MIN_GAP_MINUTES,
            sales_rate_half_life_days: DEFAULT_SALES_RATE_HALF_LIFE_DAYS,
        }
    }
}

impl Policy {
    fn horizon_ms(&self) -> i64 {
        self.restock_horizon_hours * 3_600_000
    }
    /// The expected number of sales a gap must reach at sales rate `per_hour`: ln(1/α), or
    /// ln(n/α) with n the gaps of a day when α is per day.
    fn threshold(&self, per_hour: f64) -> f64 {
        // In (0, 0.5] by its parser: refused at start otherwise, never clamped.
        let alpha = self.phantom_alpha;
        let gaps = if self.phantom_alpha_scope == "day" {
            (per_hour * 24.0).max(1.0)
        } else {
            1.0
        };
        (gaps / alpha).ln()
    }
    fn tau_ms(&self) -> f64 {
        // At least MIN_HALF_LIFE_DAYS by its parser (refused at start otherwise); the floor
        // only guards a Policy built in code.
        self.sales_rate_half_life_days.max(MIN_HALF_LIFE_DAYS) * 24.0 * HOUR_MS
            / std::f64::consts::LN_2
    }
}

/// Sales per millisecond learned so far, when there is enough history to trust it.
fn rate(policy: &Policy, item: &DetectorItem) -> Option<f64> {
    (item.sales_weight >= policy.phantom_min_sales && item.exposure_ms > 0.0)
        .then(|| item.sales_weight / item.exposure_ms)
}

/// When a phantom check of `item` falls due: the last sale plus the gap that makes λ·t reach
/// the threshold (and at least the minimum gap). None when it cannot be suspected.
pub fn phantom_due(policy: &Policy, item: &DetectorItem) -> Option<i64> {
    let level = item.level.as_ref()?;
    if !item.open_stockout_id.is_empty()
        || level.on_hand <= policy.empty_at_units
        || item.last_sale_at_ms == 0
    {
        return None;
    }
    let lambda = rate(policy, item)?;
    if lambda * HOUR_MS < policy.phantom_min_sales_per_hour {
        return None;
    }
    let gap = (policy.threshold(lambda * HOUR_MS) / lambda)
        .max((policy.phantom_min_gap_minutes * 60_000) as f64);
    Some(item.last_sale_at_ms + gap.ceil() as i64)
}

/// Brings the learned rate up to `now`: decays both sums, adds the time on sale (when the
/// books had stock and no episode was open) and this event's sale.
fn learn(policy: &Policy, item: &mut DetectorItem, now: i64, sold: bool) {
    if item.rate_updated_at_ms == 0 {
        item.rate_updated_at_ms = now;
    }
    let dt = (now - item.rate_updated_at_ms).max(0) as f64;
    let tau = policy.tau_ms();
    let d = (-dt / tau).exp();
    let on_sale = item
        .level
        .as_ref()
        .is_some_and(|l| l.on_hand > policy.empty_at_units)
        && item.open_stockout_id.is_empty();
    item.sales_weight *= d;
    item.exposure_ms = item.exposure_ms * d + if on_sale { tau * (1.0 - d) } else { 0.0 };
    item.rate_updated_at_ms = item.rate_updated_at_ms.max(now);
    if sold {
        item.sales_weight += 1.0;
        item.last_sale_at_ms = now;
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

fn open(item: &mut DetectorItem, kind: Kind, opened: Opened) -> (String, Step) {
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

fn close(item: &mut DetectorItem, reason: String, on_hand: i32) -> (String, Step) {
    let id = std::mem::take(&mut item.open_stockout_id);
    item.open_kind = Kind::Unspecified as i32;
    (id, Step::Close(Closed { reason, on_hand }))
}

/// The decisions for one (store, SKU) after its own new stock level.
pub fn on_level(policy: &Policy, item: &mut DetectorItem, level: StockLevel) -> Vec<StockoutEvent> {
    let now = level.occurred_at_ms;
    let sold = level.cause == Cause::Sale as i32 && level.sold > 0;
    // Learn with the state before this level (the time since the last update was spent in it).
    learn(policy, item, now, sold);
    let empty = level.on_hand <= policy.empty_at_units;
    let mut steps = Vec::new();
    let suspected = item.open_kind == Kind::Suspected as i32 && !item.open_stockout_id.is_empty();
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
        && blocked(policy, &level)
        && !fulfilled_soon(policy, &level)
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
    records(&level, steps)
}

/// The phantom check of one (store, SKU) at `now` (another SKU of the store moved).
pub fn on_time(policy: &Policy, item: &mut DetectorItem, now: i64) -> Vec<StockoutEvent> {
    let Some(due) = phantom_due(policy, item) else {
        return Vec::new();
    };
    if now < due {
        return Vec::new();
    }
    let lambda = rate(policy, item).unwrap_or(0.0);
    let gap = now - item.last_sale_at_ms;
    let expected = lambda * gap as f64;
    let Some(level) = item.level.clone() else {
        return Vec::new();
    };
    let mut ev = evidence(&level);
    ev.gap_ms = gap;
    ev.sales_per_hour = lambda * HOUR_MS;
    ev.expected_sales_in_gap = expected;
    let step = open(
        item,
        Kind::Suspected,
        Opened {
            evidence: Some(ev),
            kind: Kind::Suspected as i32,
            severity: if expected >= 2.0 * policy.threshold(lambda * HOUR_MS) {
                2
            } else {
                1
            },
            // Never as sure as an empty shelf by the books.
            confidence: 0.6 * (1.0 - (-expected).exp()),
        },
    );
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

impl Detector {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            due: DueIndex::default(),
        }
    }

    fn index(&mut self, key: &str, item: &DetectorItem) {
        self.due.set(key, phantom_due(&self.policy, item));
    }
}

impl Processor for Detector {
    type Event = StockLevel;
    type State = DetectorItem;

    fn name(&self) -> &'static str {
        SERVICE
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::INVENTORY_STOCK_LEVELS]
    }
    fn changelog(&self) -> &'static str {
        topics::DETECTOR_STATE
    }
    fn dead_letter(&self) -> &'static str {
        topics::DETECTOR_DLQ
    }
    fn decode(&self, _topic: &str, payload: &[u8]) -> Result<StockLevel, Rejected> {
        Ok(validate::stock_level(payload)?)
    }
    fn event_id<'e>(&self, event: &'e StockLevel) -> &'e str {
        &event.event_id
    }
    fn store_id<'e>(&self, event: &'e StockLevel) -> &'e str {
        &event.store_id
    }
    fn occurred_at_ms(&self, event: &StockLevel) -> i64 {
        event.occurred_at_ms
    }
    /// The level's own (store, SKU).
    fn keys(&self, event: &StockLevel) -> Vec<String> {
        vec![validate::key(&event.store_id, &event.sku)]
    }
    /// The store's keys whose phantom check is due by the level's time.
    fn due_keys(&self, event: &StockLevel) -> Vec<String> {
        self.due
            .due(&event.store_id, event.occurred_at_ms)
            .map(str::to_owned)
            .collect()
    }
    fn apply(
        &mut self,
        key: &str,
        item: &mut DetectorItem,
        event: &StockLevel,
        _others: &dyn View<DetectorItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let events = on_level(&self.policy, item, event.clone());
        self.index(key, item);
        Ok(outputs(key, &events))
    }
    /// The phantom check of a quiet SKU fell due (another SKU of the store moved).
    fn on_due(
        &mut self,
        key: &str,
        item: &mut DetectorItem,
        now: i64,
        _others: &dyn View<DetectorItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let events = on_time(&self.policy, item, now);
        self.index(key, item);
        Ok(outputs(key, &events))
    }
    fn restored(&mut self, key: &str, item: &DetectorItem) {
        self.index(key, item);
    }
}

#[cfg(test)]
mod tests;
