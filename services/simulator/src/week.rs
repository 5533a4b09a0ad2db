//! A simulated week with ground truth: the stores, their shoppers and the warehouse in
//! *simulated* time, and the truth the services never see: what is really on each shelf.
//!
//! Pure: no I/O, no clock. The driver (the `week` command of the e2e crate) asks for the
//! records of each time step, publishes them, feeds back the reorder requests inventory
//! publishes ([`Week::on_request`]), and at the end takes the truth intervals ([`Week::finish`]).
//!
//! Per (store, SKU) the model keeps the TRUE shelf stock and a mirror of the books (what
//! inventory's figure must be, from the records published). They differ only by a phantom
//! stockout: the goods leave the shelf without any record (misplaced, unrecorded theft).
//! Shoppers cannot buy what is not on the shelf: a basket line for an empty shelf is dropped.
//!
//! Shelf checks: the driver hands over each check offer-generator asks
//! ([`Week::on_check_requested`]); the staff answer it a few simulated minutes later from the
//! truth at that moment (shelf truly empty: EMPTY, else STOCK_IS_THERE), wrong with a small
//! chance ([`WeekConfig::check_error_rate`]). Once the driver saw an EMPTY answer booked
//! ([`Week::on_check_booked`]), the books are 0 as inventory's are: a phantom's goods are
//! written off as a count would, and the phantom ends.
//!
//! Time is quantised: everything but baskets (warehouse outcomes, receipts, counts, phantom
//! starts and ends) happens at the start of a step; the baskets of a step come after it. The
//! driver publishes the step-start records and waits until inventory applied them before it
//! publishes the baskets, so the order inventory applies them in is the order modelled here.
use std::collections::{BTreeMap, HashMap, HashSet};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use shelfguard_events::catalog::Product;
use shelfguard_events::floor::{ShelfCheckEvent, ShelfFinding, StaffResponse, shelf_check_event};
use shelfguard_events::store::{MovementKind, Sale, SaleLine, StockMovement};
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome, ReorderRequest};

use crate::traffic::{self, Popularity};
use crate::warehouse::FAILURE_REASONS;
use crate::{catalog, mix_seed, store_id};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;
/// Mean units per basket line (1 or 2, uniform).
const UNITS_PER_LINE: f64 = 1.5;

/// How the simulated week behaves. Every range is inclusive and drawn uniformly.
#[derive(Debug, Clone, PartialEq)]
pub struct WeekConfig {
    /// Seed of everything: catalogue, popularity, baskets, causes, warehouse delays.
    pub seed: u64,
    /// Number of stores (`S-001`, ...).
    pub stores: usize,
    /// Simulated days.
    pub days: u32,
    /// Start of the simulated time, UTC ms (a midnight keeps "per day" figures on UTC days).
    pub start_ms: i64,
    /// Length of one step in simulated ms: the grain of warehouse, count and phantom times.
    pub step_ms: i64,
    /// Mean baskets per hour of a store; each store gets 0.7-1.3 times this.
    pub baskets_per_hour: f64,
    /// Reorder point of a SKU = its mean demand over this many hours (at least 2 units),
    /// so that an ordinary delivery usually arrives before the shelf is empty.
    pub reorder_cover_hours: f64,
    /// Order-up-to = reorder point + the mean demand over this many hours (at least 6 units).
    pub order_cycle_hours: f64,
    /// Real stockouts: troubled (store, SKU)s per store per simulated day. From a random
    /// moment on, the warehouse fails every reorder of one for `trouble_hours`.
    pub troubled_per_store_day: f64,
    /// How long the warehouse keeps failing a troubled (store, SKU), in hours, counted from
    /// the first reorder it fails.
    pub trouble_hours: (f64, f64),
    /// Phantom stockouts per store per simulated day: the shelf empties without a record.
    pub phantoms_per_store_day: f64,
    /// Share of phantoms that end when staff find the goods (the shelf refills silently);
    /// the others end with a scheduled COUNT that publishes the true (empty) figure.
    pub phantom_found_share: f64,
    /// Hours from the loss to the staff finding the goods.
    pub phantom_found_after_hours: (f64, f64),
    /// Hours from the loss to the COUNT that corrects the books.
    pub phantom_count_after_hours: (f64, f64),
    /// Minutes from a request to its FAILED outcome.
    pub fail_after_minutes: (i64, i64),
    /// Minutes from a request to its FULFILLED outcome.
    pub fulfil_after_minutes: (i64, i64),
    /// Hours from a FULFILLED outcome to the goods received in store (the receipt).
    pub delivery_hours: (f64, f64),
    /// Every this many hours each store counts the SKUs its books show empty (a gap scan):
    /// the count confirms the empty shelf and gives inventory an event to retry a failed reorder on.
    pub gap_scan_every_hours: i64,
    /// Opening hours of every store, UTC hours of the day `[open, close)`: no basket outside
    /// them. `(0, 24)`: open around the clock.
    pub open_hours: (u32, u32),
    /// Overdispersed demand: each (store, SKU, day) draws a factor m ~ Gamma(k, 1/k) (mean 1)
    /// and its basket lines are kept with chance min(1, m): some days a product sells much
    /// less than its mean. `None`: Poisson demand.
    pub dispersion: Option<f64>,
    /// Shelf checks: the chance that staff give the wrong answer (EMPTY for a stocked shelf,
    /// STOCK_IS_THERE for an empty one).
    pub check_error_rate: f64,
    /// Minutes from a check's request to the staff's answer (given at the first step start
    /// after that, dated when they answered, or after the item's last book change).
    pub check_answer_after_minutes: (i64, i64),
    /// The services' `CHECK_EXPIRY_MINUTES`: an answer that would be dated at or after the
    /// expiry is not given (the check expires unanswered).
    pub check_expiry_minutes: i64,
    /// Share of stores open around the clock (drawn per store, from its own seed); the others
    /// keep [`WeekConfig::open_hours`]. 0: every store keeps `open_hours`.
    pub all_day_share: f64,
    /// Hour-of-week demand: a store's baskets per hour follow a store-wide hour-of-week curve
    /// ([`traffic_curve`]: quiet mornings, evening peak, busier weekends; its mean over the
    /// store's open hours is 1), and each basket line is drawn from popularity weighted by its
    /// category's hour-of-week profile ([`category_profile`]: breakfast items peak mornings,
    /// dinner items evenings, household and personal care on weekends).
    pub hour_of_week: bool,
    /// Store-wide traffic swings: each (store, day) multiplies its baskets per hour by a
    /// factor ~ Gamma(k, 1/k) (mean 1). `None`: no swings.
    pub traffic_shape: Option<f64>,
    /// Phantom onsets as a share of the (store, SKU)s per week: overrides
    /// [`WeekConfig::phantoms_per_store_day`] with `share * SKUs / 7` when set.
    pub phantom_sku_share_per_week: Option<f64>,
    /// Phantoms persist until staff notice them by chance: a constant chance per open hour of
    /// the store, with this median (in open hours). The noticed phantom ends as before (goods
    /// found with [`WeekConfig::phantom_found_share`], else a COUNT), unless a shelf check's
    /// count ended it first. Replaces `phantom_found_after_hours` / `phantom_count_after_hours`.
    /// `None`: those fixed ranges.
    pub phantom_notice_median_open_hours: Option<f64>,
    /// New SKUs without history: this many catalogue SKUs are launched during the week, in
    /// every store at the same moment (a uniform time between the end of the first day and
    /// two days before the end): before it no stock, no count, no sale; at it a COUNT puts
    /// the first stock on the shelf and the books.
    pub new_skus: usize,
}

impl Default for WeekConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            stores: 20,
            days: 7,
            start_ms: 1_735_689_600_000, // 2025-01-01T00:00Z
            step_ms: 15 * MINUTE_MS,
            baskets_per_hour: 40.0,
            reorder_cover_hours: 10.0,
            order_cycle_hours: 48.0,
            troubled_per_store_day: 0.5,
            trouble_hours: (24.0, 72.0),
            phantoms_per_store_day: 0.5,
            phantom_found_share: 0.4,
            phantom_found_after_hours: (2.0, 36.0),
            phantom_count_after_hours: (12.0, 48.0),
            fail_after_minutes: (10, 90),
            fulfil_after_minutes: (5, 30),
            delivery_hours: (2.0, 12.0),
            gap_scan_every_hours: 4,
            open_hours: (0, 24),
            dispersion: None,
            check_error_rate: 0.02,
            check_answer_after_minutes: (5, 20),
            check_expiry_minutes: 45,
            all_day_share: 0.0,
            hour_of_week: false,
            traffic_shape: None,
            phantom_sku_share_per_week: None,
            phantom_notice_median_open_hours: None,
            new_skus: 0,
        }
    }
}

/// Category of a product family, for the hour-of-week demand profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// Coffee, tea, cereal, bread, milk, juice, spreads: bought for the morning.
    Breakfast,
    /// Pasta, sauces, oils, rice, snacks, canned fish, drinks: bought for dinner.
    Dinner,
    /// Personal care, baby, household, apparel: the weekend shopping trip.
    Household,
}

/// The category of a catalogue family (see `catalog.rs`).
pub fn category_of(family: &str) -> Category {
    const BREAKFAST: &[&str] = &[
        "coffee-beans",
        "coffee-filters",
        "tea",
        "honey",
        "cereal",
        "peanut-butter",
        "jam",
        "bread",
        "milk",
        "oat-milk",
        "yogurt",
        "orange-juice",
    ];
    const DINNER: &[&str] = &[
        "coconut-oil",
        "olive-oil",
        "balsamic-vinegar",
        "soy-sauce",
        "pasta",
        "tomato-sauce",
        "rice",
        "flour",
        "sugar",
        "tortilla-chips",
        "salsa",
        "canned-tuna",
        "sparkling-water",
    ];
    if BREAKFAST.contains(&family) {
        Category::Breakfast
    } else if DINNER.contains(&family) {
        Category::Dinner
    } else {
        Category::Household
    }
}

/// Hour of the week of `t` (UTC ms): 0 is Monday 00:00-01:00, 167 Sunday 23:00-24:00.
pub fn hour_of_week(t: i64) -> usize {
    let day = t.div_euclid(24 * HOUR_MS);
    let dow = (day + 3).rem_euclid(7); // 1970-01-01 was a Thursday
    (dow * 24 + t.rem_euclid(24 * HOUR_MS) / HOUR_MS) as usize
}

fn is_weekend(how: usize) -> bool {
    how >= 5 * 24
}

/// Store-wide traffic by hour of week (relative; normalised per store over its open hours):
/// quiet nights and early mornings, a lunch bump, the evening peak, weekends busier.
pub fn traffic_curve(how: usize) -> f64 {
    const BY_HOUR: [f64; 24] = [
        0.15, 0.1, 0.1, 0.1, 0.1, 0.15, 0.3, 0.5, 0.7, 0.8, 0.9, 1.0, 1.2, 1.1, 1.0, 1.0, 1.2, 1.6,
        1.7, 1.4, 1.0, 0.7, 0.4, 0.25,
    ];
    let base = BY_HOUR[how % 24];
    if is_weekend(how) { base * 1.3 } else { base }
}

/// A category's demand by hour of week (relative, multiplies each SKU's share of basket lines).
pub fn category_profile(c: Category, how: usize) -> f64 {
    let h = how % 24;
    let weekend = is_weekend(how);
    match c {
        Category::Breakfast => {
            let peak = if weekend { 8..12 } else { 6..10 };
            if peak.contains(&h) {
                2.0
            } else if (16..20).contains(&h) {
                0.9
            } else {
                0.6
            }
        }
        Category::Dinner => {
            if (16..21).contains(&h) {
                1.8
            } else if (11..14).contains(&h) {
                1.1
            } else if h < 11 {
                0.5
            } else {
                0.8
            }
        }
        Category::Household => {
            if weekend {
                1.6
            } else {
                0.9
            }
        }
    }
}

impl WeekConfig {
    /// "A week that looks like a real store": 85 % of stores open 07-22 and 15 % around the
    /// clock, hour-of-week demand by category and a store-wide traffic curve, daily traffic
    /// swings per store (Gamma k = 20), overdispersed daily demand per SKU (k = 10), phantom
    /// onsets at 1.5 % of the (store, SKU)s a week that persist until staff notice them (median
    /// 45 open hours, about three days of a 07-22 store) or a check or count finds them, and
    /// 3 new SKUs launched mid-week. Everything else as [`WeekConfig::default`].
    pub fn realistic() -> Self {
        Self {
            open_hours: (7, 22),
            all_day_share: 0.15,
            hour_of_week: true,
            traffic_shape: Some(20.0),
            dispersion: Some(10.0),
            phantom_sku_share_per_week: Some(0.015),
            phantom_notice_median_open_hours: Some(45.0),
            phantom_found_share: 0.5,
            new_skus: 3,
            ..Self::default()
        }
    }

    /// End of the simulated time (exclusive), UTC ms.
    pub fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.days) * 24 * HOUR_MS
    }

    /// Number of steps in the week.
    pub fn steps(&self) -> i64 {
        (self.end_ms() - self.start_ms + self.step_ms - 1) / self.step_ms.max(1)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.stores == 0 || self.stores > 999 {
            return Err(format!("stores must be 1..=999, got {}", self.stores));
        }
        if self.days == 0 {
            return Err("days must be > 0".into());
        }
        if self.step_ms < MINUTE_MS || (24 * HOUR_MS) % self.step_ms != 0 {
            return Err(format!(
                "the step must be at least a minute and divide a day, got {} ms",
                self.step_ms
            ));
        }
        if !(self.baskets_per_hour.is_finite() && self.baskets_per_hour > 0.0) {
            return Err("baskets per hour must be > 0".into());
        }
        let (open, close) = self.open_hours;
        if open >= close || close > 24 {
            return Err(format!(
                "opening hours must be 0 <= open < close <= 24, got {open}-{close}"
            ));
        }
        if let Some(k) = self.dispersion
            && !(k.is_finite() && k >= 1.0)
        {
            return Err(format!("the dispersion shape must be >= 1, got {k}"));
        }
        if let Some(k) = self.traffic_shape
            && !(k.is_finite() && k >= 1.0)
        {
            return Err(format!("the traffic swing shape must be >= 1, got {k}"));
        }
        if !(0.0..=1.0).contains(&self.all_day_share) {
            return Err(format!(
                "the share of 24 h stores must be in [0, 1], got {}",
                self.all_day_share
            ));
        }
        if let Some(x) = self.phantom_sku_share_per_week
            && !(0.0..=1.0).contains(&x)
        {
            return Err(format!("the phantom share must be in [0, 1], got {x}"));
        }
        if let Some(m) = self.phantom_notice_median_open_hours
            && !(m.is_finite() && m > 0.0)
        {
            return Err(format!("the phantom notice median must be > 0, got {m}"));
        }
        if !(0.0..=1.0).contains(&self.check_error_rate) {
            return Err(format!(
                "the check error rate must be in [0, 1], got {}",
                self.check_error_rate
            ));
        }
        let (lo, hi) = self.check_answer_after_minutes;
        if lo < 0 || hi < lo || self.check_expiry_minutes < 1 {
            return Err(format!(
                "check answers after {lo}-{hi} minutes within an expiry of {} minutes",
                self.check_expiry_minutes
            ));
        }
        Ok(())
    }
}

/// What kind of stockout a truth interval is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TruthKind {
    /// The shelf is truly empty and replenishment is blocked (the latest reorder failed).
    Real,
    /// The books say there is stock, but the shelf is truly empty.
    Phantom,
}

/// One ground-truth interval of one (store, SKU).
#[derive(Debug, Clone, PartialEq)]
pub struct Truth {
    pub store: String,
    pub sku: String,
    pub kind: TruthKind,
    /// When it began (simulated UTC ms): the moment both of its conditions held.
    pub start_ms: i64,
    /// When it ended, or the end of the run if it was still on.
    pub end_ms: i64,
    /// Expected sale lines per hour of this (store, SKU) when the shelf is stocked: phantom
    /// detection depends on it, so the report can tell fast sellers from slow ones.
    pub sales_per_hour: f64,
}

/// The records of one step, in publication order per topic.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Counts and receipts (store.stock-movements.v1).
    pub movements: Vec<StockMovement>,
    /// Reorder outcomes (warehouse.reorder-outcomes.v1).
    pub outcomes: Vec<ReorderOutcome>,
    /// Baskets (store.sales.v1).
    pub sales: Vec<Sale>,
    /// Staff answers to shelf checks (floor.responses.v1), published after the movements.
    pub responses: Vec<StaffResponse>,
    /// What inventory's on-hand must be after each record, per SKU: `(event_id, sku, on_hand)`;
    /// lets the driver check that the books it models are inventory's books.
    pub expected: Vec<(String, String, i32)>,
}

impl Batch {
    /// A COUNT of `units` of `sku` in `store` at `at_ms`, and the on-hand inventory must then
    /// show.
    fn count(
        &mut self,
        event_id: String,
        at_ms: i64,
        store: &str,
        sku: &str,
        units: i32,
        note: &str,
    ) {
        self.expected
            .push((event_id.clone(), sku.to_owned(), units));
        self.movements.push(movement(
            event_id,
            at_ms,
            store,
            sku,
            MovementKind::Count,
            units,
            note,
        ));
    }
}

/// Counters of what the week did, for the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WeekStats {
    /// Baskets published (baskets whose every line met an empty shelf are not).
    pub baskets: u64,
    /// Sale lines published.
    pub lines: u64,
    /// Basket lines dropped because the shelf was truly empty (lost sales).
    pub lines_lost: u64,
    /// Reorder requests answered.
    pub requests: u64,
    /// FAILED outcomes published.
    pub failed: u64,
    /// FULFILLED outcomes published (including those that only confirm a delivery on its way).
    pub fulfilled: u64,
    /// Receipts published.
    pub receipts: u64,
    /// Gap-scan counts published (SKUs the books show empty).
    pub gap_scans: u64,
    /// Phantom losses injected.
    pub phantoms: u64,
    /// Phantoms ended by staff finding the goods / by a COUNT.
    pub phantoms_found: u64,
    pub phantoms_counted: u64,
    /// Troubled (store, SKU)s scheduled, and how many had a reorder failed.
    pub troubled: u64,
    pub troubled_started: u64,
    /// Shelf checks the services asked, answers given (EMPTY, STOCK_IS_THERE), of them wrong
    /// on purpose (the error rate), and checks left unanswered (the answer would have come too
    /// close to the expiry).
    pub checks_asked: u64,
    pub answers_empty: u64,
    pub answers_stock_there: u64,
    pub answers_wrong: u64,
    pub checks_unanswered: u64,
    /// EMPTY answers booked (the count reached inventory), and phantoms they ended.
    pub checks_booked_empty: u64,
    pub phantoms_checked: u64,
    /// Checks handed over more than a step after they were asked (the driver saw them late),
    /// and the longest such lag in simulated minutes.
    pub checks_handed_late: u64,
    pub check_lag_max_minutes: i64,
}

/// A troubled (store, SKU): the warehouse fails its reorders for a while.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Trouble {
    /// From when a request is failed (UTC ms).
    armed_at_ms: i64,
    /// How long failures go on once the first one happened.
    lasts_ms: i64,
    /// When the first request was failed.
    started_at_ms: Option<i64>,
}

impl Trouble {
    fn fails(&mut self, at_ms: i64) -> bool {
        if at_ms < self.armed_at_ms {
            return false;
        }
        let started = *self.started_at_ms.get_or_insert(at_ms);
        at_ms < started + self.lasts_ms
    }
}

/// One (store, SKU) as it truly is.
#[derive(Debug, Clone, Default)]
struct Item {
    /// Units truly on the shelf (shoppers can only buy these).
    shelf: i32,
    /// Units the books say (inventory's on-hand, modelled from the records published).
    books: i32,
    /// Units lost by a phantom, still somewhere in the store (found again, or written off by a count).
    hidden: i32,
    /// The latest reorder outcome was FAILED: replenishment is blocked.
    blocked: bool,
    /// A shipment is on its way: further requests wait for it (answered once it arrives),
    /// as inventory would otherwise order the same goods again on every fulfilled outcome.
    in_transit: bool,
    /// Requests waiting for the shipment on its way.
    held: Vec<ReorderRequest>,
    trouble: Option<Trouble>,
    /// A phantom loss is under way (its end is scheduled).
    phantom: bool,
    /// When the books last changed (a sale, a receipt, a count; UTC ms): a shelf check's count
    /// is dated after it, so inventory has no later movement to re-apply on top of it.
    books_at_ms: i64,
    /// Numbers the phantoms of this item: a scheduled end of an earlier one (ended by a shelf
    /// check's count since) is ignored.
    phantom_gen: u32,
    /// Open truth intervals: since when.
    real_since: Option<i64>,
    phantom_since: Option<i64>,
    /// A new SKU: launched at this time (UTC ms); before it, nothing (0 for the others).
    launch_ms: i64,
}

/// Things that happen at a step start, in time order.
#[derive(Debug, Clone, PartialEq)]
enum Action {
    Outcome(ReorderOutcome),
    Receipt(StockMovement),
    /// A phantom loss in the store: an eligible SKU is picked when it happens.
    PhantomStart {
        store: usize,
    },
    PhantomFound {
        store: usize,
        sku: usize,
        generation: u32,
    },
    PhantomCount {
        store: usize,
        sku: usize,
        generation: u32,
    },
    /// A new SKU is launched in every store: its first stock is counted onto the shelf.
    Launch {
        sku: usize,
    },
    /// Staff answer a shelf check (from the truth when they answer).
    CheckAnswer {
        store: usize,
        sku: usize,
        check_id: String,
        requested_at_ms: i64,
        /// When the staff answer (the request's time plus their delay).
        answer_at_ms: i64,
    },
}

/// One store's shoppers.
#[derive(Debug, Clone)]
struct Store {
    id: String,
    /// Baskets per hour (the mean times 0.7-1.3).
    baskets_per_hour: f64,
    /// Opening hours, UTC `[open, close)`.
    open: (u32, u32),
    /// Mean of [`traffic_curve`] over the store's open hours of a week (1 without it).
    curve_norm: f64,
    /// When the next basket comes (UTC ms).
    next_basket_ms: i64,
    /// Baskets so far (basket ids).
    seq: u64,
    rng: StdRng,
}

/// The simulated stores, the warehouse and the truth.
#[derive(Debug)]
pub struct Week {
    cfg: WeekConfig,
    /// The catalogue, with reorder points and order-up-to levels set from the demand.
    catalog: Vec<Product>,
    /// Chain-wide popularity (one best-seller list for every store).
    popularity: Popularity,
    /// With [`WeekConfig::hour_of_week`]: the popularity of each hour of the week (the
    /// chain-wide weights times the category profiles); empty otherwise.
    hour_pop: Vec<Popularity>,
    /// Expected sale lines per open hour of each (store, SKU) on the shelf.
    rates: Vec<Vec<f64>>,
    stores: Vec<Store>,
    /// `items[store][sku index]`.
    items: Vec<Vec<Item>>,
    /// Due actions by (time, sequence).
    agenda: BTreeMap<(i64, u64), Action>,
    agenda_seq: u64,
    /// Reorder ids already answered (inventory may redeliver a request).
    answered: HashSet<String>,
    /// Shelf checks already handed over (a check is answered once).
    checks_seen: HashSet<String>,
    store_index: HashMap<String, usize>,
    sku_index: HashMap<String, usize>,
    /// Random draws of causes and the warehouse.
    rng: StdRng,
    /// Random draws of the staff answering shelf checks (their own stream, so that when the
    /// services ask does not shift the causes and the warehouse's draws).
    staff_rng: StdRng,
    truth: Vec<Truth>,
    /// Time of the latest step start applied.
    now_ms: i64,
    pub stats: WeekStats,
}

fn uniform_ms(rng: &mut impl Rng, (lo, hi): (f64, f64)) -> i64 {
    let h = if hi > lo {
        rng.random_range(lo..=hi)
    } else {
        lo
    };
    (h * HOUR_MS as f64) as i64
}

impl Week {
    pub fn new(cfg: WeekConfig) -> Result<Self, String> {
        cfg.check()?;
        let mut catalog = catalog::generate(cfg.seed, cfg.start_ms);
        let mut rng = StdRng::seed_from_u64(mix_seed(cfg.seed, 0x3EE4_0001));
        let popularity = Popularity::new(&mut rng, catalog.len(), &[], 0.0);
        let lines_per_hour = cfg.baskets_per_hour * (1.0 + traffic::EXTRA_LINES_MEAN);
        for (i, p) in catalog.iter_mut().enumerate() {
            let units_per_hour = lines_per_hour * popularity.share(i) * UNITS_PER_LINE;
            let rp = ((units_per_hour * cfg.reorder_cover_hours).ceil() as i32).max(2);
            let cycle = ((units_per_hour * cfg.order_cycle_hours).ceil() as i32).max(6);
            p.reorder_point = rp;
            p.order_up_to = rp + cycle;
        }
        let (start, end) = (cfg.start_ms, cfg.end_ms());
        let hour_pop: Vec<Popularity> = if cfg.hour_of_week {
            let cats: Vec<Category> = catalog.iter().map(|p| category_of(&p.family)).collect();
            (0..168)
                .map(|how| {
                    let w: Vec<f64> = (0..catalog.len())
                        .map(|i| popularity.share(i) * category_profile(cats[i], how))
                        .collect();
                    Popularity::from_weights(&w)
                })
                .collect()
        } else {
            Vec::new()
        };
        let mut stores = Vec::new();
        let mut items = Vec::new();
        for s in 0..cfg.stores {
            let mut srng = StdRng::seed_from_u64(mix_seed(cfg.seed, 0x3EE4_5000 + s as u64));
            let rate = cfg.baskets_per_hour * srng.random_range(0.7..=1.3);
            // Its own stream, so that the default week's draws are unchanged.
            let all_day = cfg.all_day_share > 0.0
                && StdRng::seed_from_u64(mix_seed(cfg.seed, 0x3EE4_24B0 + s as u64))
                    .random_bool(cfg.all_day_share);
            let open = if all_day { (0, 24) } else { cfg.open_hours };
            let open_how: Vec<usize> = (0..168)
                .filter(|how| (open.0..open.1).contains(&((how % 24) as u32)))
                .collect();
            let curve_norm = if cfg.hour_of_week {
                open_how.iter().map(|&h| traffic_curve(h)).sum::<f64>() / open_how.len() as f64
            } else {
                1.0
            };
            let first = start + 1 + next_gap_ms(&mut srng, rate);
            items.push(
                catalog
                    .iter()
                    .map(|p| {
                        let n = srng.random_range(p.reorder_point + 1..=p.order_up_to);
                        Item {
                            shelf: n,
                            books: n,
                            ..Item::default()
                        }
                    })
                    .collect(),
            );
            stores.push(Store {
                id: store_id(s),
                baskets_per_hour: rate,
                open,
                curve_norm,
                next_basket_ms: first,
                seq: 0,
                rng: srng,
            });
        }
        let lines_per_basket = 1.0 + traffic::EXTRA_LINES_MEAN;
        let rates: Vec<Vec<f64>> = stores
            .iter()
            .map(|st| {
                (0..catalog.len())
                    .map(|i| {
                        if hour_pop.is_empty() {
                            st.baskets_per_hour * lines_per_basket * popularity.share(i)
                        } else {
                            // The mean over the store's open hours of the week.
                            let open: Vec<usize> = (0..168)
                                .filter(|h| (st.open.0..st.open.1).contains(&((h % 24) as u32)))
                                .collect();
                            open.iter()
                                .map(|&h| {
                                    st.baskets_per_hour * traffic_curve(h) / st.curve_norm
                                        * lines_per_basket
                                        * hour_pop[h].share(i)
                                })
                                .sum::<f64>()
                                / open.len() as f64
                        }
                    })
                    .collect()
            })
            .collect();
        let mut week = Self {
            hour_pop,
            rates,
            store_index: stores
                .iter()
                .enumerate()
                .map(|(i, s)| (s.id.clone(), i))
                .collect(),
            sku_index: catalog
                .iter()
                .enumerate()
                .map(|(i, p)| (p.sku.clone(), i))
                .collect(),
            catalog,
            popularity,
            stores,
            items,
            agenda: BTreeMap::new(),
            agenda_seq: 0,
            answered: HashSet::new(),
            checks_seen: HashSet::new(),
            rng,
            staff_rng: StdRng::seed_from_u64(mix_seed(cfg.seed, 0x3EE4_C4EC)),
            truth: Vec::new(),
            now_ms: start,
            stats: WeekStats::default(),
            cfg,
        };
        // The causes: troubled (store, SKU)s and phantom losses, at random times.
        let per_store = |rate: f64, days: u32| (rate * f64::from(days)).round() as usize;
        let span = |rng: &mut StdRng, lo: i64, hi: i64| {
            if hi > lo {
                rng.random_range(lo..hi)
            } else {
                lo
            }
        };
        for s in 0..week.cfg.stores {
            for _ in 0..per_store(week.cfg.troubled_per_store_day, week.cfg.days) {
                let at = span(&mut week.rng, start, end - 24 * HOUR_MS);
                let lasts = uniform_ms(&mut week.rng, week.cfg.trouble_hours);
                // A SKU by popularity (what sells is what runs out), not troubled already.
                for _ in 0..50 {
                    let Some(i) = week.popularity.sample(&mut week.rng) else {
                        break;
                    };
                    if week.items[s][i].trouble.is_none() {
                        week.items[s][i].trouble = Some(Trouble {
                            armed_at_ms: at,
                            lasts_ms: lasts,
                            started_at_ms: None,
                        });
                        week.stats.troubled += 1;
                        break;
                    }
                }
            }
            let phantoms_per_store_day = match week.cfg.phantom_sku_share_per_week {
                Some(x) => x * week.catalog.len() as f64 / 7.0,
                None => week.cfg.phantoms_per_store_day,
            };
            for _ in 0..per_store(phantoms_per_store_day, week.cfg.days) {
                let at = span(&mut week.rng, start + 6 * HOUR_MS, end - 2 * HOUR_MS);
                week.schedule(at, Action::PhantomStart { store: s });
            }
        }
        // New SKUs: no stock, no books until their launch.
        let mut nrng = StdRng::seed_from_u64(mix_seed(week.cfg.seed, 0x3EE4_0E05));
        let n = week.catalog.len();
        let mut launched = HashSet::new();
        while launched.len() < week.cfg.new_skus.min(n) {
            let i = nrng.random_range(0..n);
            if !launched.insert(i) {
                continue;
            }
            let at = span(&mut nrng, start + 24 * HOUR_MS, end - 48 * HOUR_MS);
            // At a step start (where the launch's count is published).
            let step = week.cfg.step_ms;
            let at = start + (at - start + step - 1) / step * step;
            for s in 0..week.cfg.stores {
                week.items[s][i] = Item {
                    launch_ms: at,
                    ..Item::default()
                };
            }
            week.schedule(at, Action::Launch { sku: i });
        }
        Ok(week)
    }

    pub fn config(&self) -> &WeekConfig {
        &self.cfg
    }

    /// The catalogue to publish (reorder points and order-up-to levels fitted to the demand).
    pub fn catalog(&self) -> &[Product] {
        &self.catalog
    }

    pub fn store_ids(&self) -> Vec<String> {
        self.stores.iter().map(|s| s.id.clone()).collect()
    }

    /// The opening COUNT of every (store, SKU), at the start of the week.
    pub fn opening_counts(&self) -> Batch {
        let mut b = Batch::default();
        for (s, store) in self.stores.iter().enumerate() {
            for (i, p) in self.catalog.iter().enumerate() {
                if self.items[s][i].launch_ms > self.cfg.start_ms {
                    continue; // a new SKU: counted at its launch
                }
                let n = self.items[s][i].books;
                b.count(
                    format!("wk-open-{}-{i}", store.id),
                    self.cfg.start_ms,
                    &store.id,
                    &p.sku,
                    n,
                    "opening count",
                );
            }
        }
        b
    }

    /// Whether store `s` is open at `t` (UTC ms).
    pub fn is_open(&self, s: usize, t: i64) -> bool {
        let h = (t.rem_euclid(24 * HOUR_MS) / HOUR_MS) as u32;
        let (open, close) = self.stores[s].open;
        h >= open && h < close
    }

    /// The opening hours of every store, UTC `[open, close)`, for the score.
    pub fn store_hours(&self) -> HashMap<String, (u32, u32)> {
        self.stores.iter().map(|s| (s.id.clone(), s.open)).collect()
    }

    /// The launch time of each new SKU (see [`WeekConfig::new_skus`]).
    pub fn new_skus(&self) -> Vec<(String, i64)> {
        let Some(first) = self.items.first() else {
            return Vec::new();
        };
        first
            .iter()
            .enumerate()
            .filter(|(_, it)| it.launch_ms > self.cfg.start_ms)
            .map(|(i, it)| (self.catalog[i].sku.clone(), it.launch_ms))
            .collect()
    }

    /// The next opening of store `s` at or after `t` (`t` itself when open).
    fn next_open(&self, s: usize, t: i64) -> i64 {
        if self.is_open(s, t) {
            return t;
        }
        let day = t.div_euclid(24 * HOUR_MS) * 24 * HOUR_MS;
        let open = day + i64::from(self.stores[s].open.0) * HOUR_MS;
        if open > t { open } else { open + 24 * HOUR_MS }
    }

    /// The store-wide traffic factor of store `s` on the day of `t` (see
    /// [`WeekConfig::traffic_shape`]), drawn from its own seed.
    pub fn traffic_factor(&self, s: usize, t: i64) -> f64 {
        let Some(k) = self.cfg.traffic_shape else {
            return 1.0;
        };
        let day = t.div_euclid(24 * HOUR_MS) as u64;
        let salt = ((s as u64) << 40) ^ day;
        let mut rng = StdRng::seed_from_u64(mix_seed(self.cfg.seed, 0x7AFF_0000 ^ salt));
        gamma_mean1(&mut rng, k)
    }

    /// Baskets per hour of store `s` at `t`: 0 when closed; the hour-of-week curve and the
    /// day's traffic factor when on.
    pub fn basket_rate(&self, s: usize, t: i64) -> f64 {
        if !self.is_open(s, t) {
            return 0.0;
        }
        let st = &self.stores[s];
        let mut r = st.baskets_per_hour * self.traffic_factor(s, t);
        if self.cfg.hour_of_week {
            r *= traffic_curve(hour_of_week(t)) / st.curve_norm;
        }
        r
    }

    /// The next basket of store `s` after `t` for a rate that is constant within each hour
    /// (exponential gaps redrawn at each hour boundary: the process is memoryless).
    fn next_arrival(&mut self, s: usize, t: i64) -> i64 {
        let mut cur = t;
        let limit = self.cfg.end_ms() + 48 * HOUR_MS;
        let mut factor = (i64::MIN, 1.0);
        while cur < limit {
            let hour_end = (cur.div_euclid(HOUR_MS) + 1) * HOUR_MS;
            let day = cur.div_euclid(24 * HOUR_MS);
            if factor.0 != day {
                factor = (day, self.traffic_factor(s, cur));
            }
            let rate = if self.is_open(s, cur) {
                let st = &self.stores[s];
                let mut r = st.baskets_per_hour * factor.1;
                if self.cfg.hour_of_week {
                    r *= traffic_curve(hour_of_week(cur)) / st.curve_norm;
                }
                r
            } else {
                0.0
            };
            if rate > 0.0 {
                let gap = next_gap_ms(&mut self.stores[s].rng, rate).max(1);
                if cur + gap < hour_end {
                    return cur + gap;
                }
            }
            cur = hour_end;
        }
        i64::MAX / 4
    }

    /// The time after `t` when store `s` has been open `hours` hours.
    fn after_open_hours(&self, s: usize, t: i64, hours: f64) -> i64 {
        let mut left = (hours * HOUR_MS as f64) as i64;
        let mut cur = t;
        let limit = self.cfg.end_ms() + 24 * HOUR_MS;
        while cur < limit {
            let hour_end = (cur.div_euclid(HOUR_MS) + 1) * HOUR_MS;
            if self.is_open(s, cur) {
                if left < hour_end - cur {
                    return cur + left;
                }
                left -= hour_end - cur;
            }
            cur = hour_end;
        }
        limit + left
    }

    /// The day's demand factor of (s, i) (see [`WeekConfig::dispersion`]), drawn from its own
    /// seed so the order of draws does not matter.
    fn day_factor(&self, s: usize, i: usize, t: i64) -> f64 {
        let Some(k) = self.cfg.dispersion else {
            return 1.0;
        };
        let day = t.div_euclid(24 * HOUR_MS) as u64;
        let salt = ((s as u64) << 40) ^ ((i as u64) << 20) ^ day;
        let mut rng = StdRng::seed_from_u64(mix_seed(self.cfg.seed, 0xD15E_0000 ^ salt));
        gamma_mean1(&mut rng, k)
    }

    /// Expected sale lines per hour of every (store, SKU) while on the shelf, for the score.
    pub fn rates(&self) -> HashMap<(String, String), f64> {
        let mut out = HashMap::new();
        for s in 0..self.stores.len() {
            for i in 0..self.catalog.len() {
                out.insert(
                    (self.stores[s].id.clone(), self.catalog[i].sku.clone()),
                    self.sales_per_hour(s, i),
                );
            }
        }
        out
    }

    /// Expected sale lines per hour of `sku` in store `s` while it is on the shelf.
    fn sales_per_hour(&self, s: usize, i: usize) -> f64 {
        self.rates[s][i]
    }

    fn schedule(&mut self, at_ms: i64, action: Action) {
        self.agenda_seq += 1;
        self.agenda.insert((at_ms, self.agenda_seq), action);
    }

    /// A reorder request inventory published: the warehouse decides now and schedules its
    /// outcome (and receipt). Requests already answered and unknown keys are ignored.
    pub fn on_request(&mut self, req: &ReorderRequest) {
        let (Some(&s), Some(&i)) = (
            self.store_index.get(&req.store_id),
            self.sku_index.get(&req.sku),
        ) else {
            return;
        };
        if !self.answered.insert(req.reorder_id.clone()) {
            return;
        }
        self.stats.requests += 1;
        let t = req.occurred_at_ms;
        let item = &mut self.items[s][i];
        if item.in_transit {
            item.held.push(req.clone());
            return;
        }
        let was_started = item.trouble.is_some_and(|tr| tr.started_at_ms.is_some());
        let fails = item.trouble.as_mut().is_some_and(|tr| tr.fails(t));
        if fails && !was_started {
            self.stats.troubled_started += 1;
        }
        let base = ReorderOutcome {
            event_id: format!("ro:{}", req.reorder_id),
            occurred_at_ms: 0,
            store_id: req.store_id.clone(),
            reorder_id: req.reorder_id.clone(),
            sku: req.sku.clone(),
            status: OutcomeStatus::Failed as i32,
            quantity_shipped: 0,
            failure_reason: String::new(),
            expected_at_ms: 0,
        };
        if fails {
            let (lo, hi) = self.cfg.fail_after_minutes;
            let at = t + self.rng.random_range(lo..=hi.max(lo)) * MINUTE_MS;
            let reason = FAILURE_REASONS
                .choose(&mut self.rng)
                .copied()
                .unwrap_or(FAILURE_REASONS[0]);
            let o = ReorderOutcome {
                failure_reason: reason.to_owned(),
                ..base
            };
            self.schedule(at, Action::Outcome(o));
            return;
        }
        let (lo, hi) = self.cfg.fulfil_after_minutes;
        let at = t + self.rng.random_range(lo..=hi.max(lo)) * MINUTE_MS;
        let arrives = at + uniform_ms(&mut self.rng, self.cfg.delivery_hours);
        let shipped = req.quantity.max(0);
        let o = ReorderOutcome {
            status: OutcomeStatus::Fulfilled as i32,
            quantity_shipped: shipped,
            expected_at_ms: arrives,
            ..base
        };
        self.schedule(at, Action::Outcome(o));
        if shipped > 0 {
            self.items[s][i].in_transit = true;
            let m = movement(
                format!("rcpt:{}", req.reorder_id),
                arrives,
                &req.store_id,
                &req.sku,
                MovementKind::Receipt,
                shipped,
                &format!("warehouse delivery for reorder {}", req.reorder_id),
            );
            self.schedule(arrives, Action::Receipt(m));
        }
    }

    /// Opens or closes the truth intervals of (s, i) after a change at `t`.
    fn observe(&mut self, s: usize, i: usize, t: i64) {
        let rate = self.sales_per_hour(s, i);
        let item = &mut self.items[s][i];
        let real = item.shelf <= 0 && item.blocked;
        let phantom = item.shelf <= 0 && item.books > 0;
        let mut ended = Vec::new();
        match (item.real_since, real) {
            (None, true) => item.real_since = Some(t),
            (Some(since), false) => {
                item.real_since = None;
                ended.push((TruthKind::Real, since));
            }
            _ => {}
        }
        match (item.phantom_since, phantom) {
            (None, true) => item.phantom_since = Some(t),
            (Some(since), false) => {
                item.phantom_since = None;
                ended.push((TruthKind::Phantom, since));
            }
            _ => {}
        }
        for (kind, start_ms) in ended {
            self.truth.push(Truth {
                store: self.stores[s].id.clone(),
                sku: self.catalog[i].sku.clone(),
                kind,
                start_ms,
                end_ms: t,
                sales_per_hour: rate,
            });
        }
    }

    /// The step starting at `t`: applies every action due up to `t` (stamped `t`), and the
    /// gap scans when one is due. Call with increasing `t`, before [`Week::baskets`] of the step.
    pub fn step_start(&mut self, t: i64) -> Batch {
        self.now_ms = t;
        let mut b = Batch::default();
        while let Some(entry) = self.agenda.first_entry() {
            if entry.key().0 > t {
                break;
            }
            let action = entry.remove();
            self.apply(action, t, &mut b);
        }
        let scan_ms = self.cfg.gap_scan_every_hours.max(1) * HOUR_MS;
        if (t - self.cfg.start_ms) % scan_ms == 0 && t > self.cfg.start_ms {
            for s in 0..self.stores.len() {
                for i in 0..self.catalog.len() {
                    let item = &self.items[s][i];
                    if item.books > 0 || item.launch_ms > t {
                        continue;
                    }
                    let n = item.shelf.max(0);
                    self.items[s][i].books = n;
                    self.items[s][i].books_at_ms = t;
                    b.count(
                        format!("wk-scan-{}-{i}-{t}", self.stores[s].id),
                        t,
                        &self.stores[s].id,
                        &self.catalog[i].sku,
                        n,
                        "gap scan: shelf found empty",
                    );
                    self.stats.gap_scans += 1;
                    self.observe(s, i, t);
                }
            }
        }
        b
    }

    fn apply(&mut self, action: Action, t: i64, b: &mut Batch) {
        match action {
            Action::Outcome(mut o) => {
                let (Some(&s), Some(&i)) = (
                    self.store_index.get(&o.store_id),
                    self.sku_index.get(&o.sku),
                ) else {
                    return;
                };
                o.occurred_at_ms = t;
                let failed = o.status == OutcomeStatus::Failed as i32;
                if failed {
                    self.stats.failed += 1;
                } else {
                    self.stats.fulfilled += 1;
                }
                self.items[s][i].blocked = failed;
                b.expected
                    .push((o.event_id.clone(), o.sku.clone(), self.items[s][i].books));
                b.outcomes.push(o);
                self.observe(s, i, t);
            }
            Action::Receipt(mut m) => {
                let (Some(&s), Some(&i)) = (
                    self.store_index.get(&m.store_id),
                    self.sku_index.get(&m.sku),
                ) else {
                    return;
                };
                m.occurred_at_ms = t;
                self.stats.receipts += 1;
                let item = &mut self.items[s][i];
                item.shelf += m.quantity;
                item.books += m.quantity;
                item.books_at_ms = t;
                item.in_transit = false;
                // Requests made while it was on its way: answered now, nothing more to ship.
                let held = std::mem::take(&mut item.held);
                b.expected
                    .push((m.event_id.clone(), m.sku.clone(), item.books));
                b.movements.push(m);
                self.observe(s, i, t);
                for req in held {
                    let o = ReorderOutcome {
                        event_id: format!("ro:{}", req.reorder_id),
                        occurred_at_ms: 0,
                        store_id: req.store_id.clone(),
                        reorder_id: req.reorder_id.clone(),
                        sku: req.sku.clone(),
                        status: OutcomeStatus::Fulfilled as i32,
                        quantity_shipped: 0,
                        failure_reason: String::new(),
                        expected_at_ms: t,
                    };
                    // Next step: after inventory has applied the receipt.
                    self.schedule(t + 1, Action::Outcome(o));
                }
            }
            Action::PhantomStart { store: s } => {
                for _ in 0..50 {
                    let Some(i) = self.popularity.sample(&mut self.rng) else {
                        return;
                    };
                    let item = &self.items[s][i];
                    if item.phantom || item.shelf <= 0 || item.books <= 0 {
                        continue;
                    }
                    self.stats.phantoms += 1;
                    let item = &mut self.items[s][i];
                    item.phantom = true;
                    item.phantom_gen += 1;
                    let generation = item.phantom_gen;
                    item.hidden = item.shelf;
                    item.shelf = 0;
                    self.observe(s, i, t);
                    let found = self
                        .rng
                        .random_bool(self.cfg.phantom_found_share.clamp(0.0, 1.0));
                    if let Some(median) = self.cfg.phantom_notice_median_open_hours {
                        // A chance per open hour: exponential in open hours.
                        let u: f64 = self.rng.random();
                        let hours = -(1.0 - u).ln() * median / std::f64::consts::LN_2;
                        let at = self.after_open_hours(s, t, hours);
                        let action = if found {
                            Action::PhantomFound {
                                store: s,
                                sku: i,
                                generation,
                            }
                        } else {
                            Action::PhantomCount {
                                store: s,
                                sku: i,
                                generation,
                            }
                        };
                        self.schedule(at, action);
                    } else if found {
                        let at = t + uniform_ms(&mut self.rng, self.cfg.phantom_found_after_hours);
                        self.schedule(
                            at,
                            Action::PhantomFound {
                                store: s,
                                sku: i,
                                generation,
                            },
                        );
                    } else {
                        let at = t + uniform_ms(&mut self.rng, self.cfg.phantom_count_after_hours);
                        self.schedule(
                            at,
                            Action::PhantomCount {
                                store: s,
                                sku: i,
                                generation,
                            },
                        );
                    }
                    return;
                }
            }
            Action::PhantomFound {
                store: s,
                sku: i,
                generation,
            } => {
                if !self.items[s][i].phantom || self.items[s][i].phantom_gen != generation {
                    return; // ended by a shelf check's count already
                }
                self.stats.phantoms_found += 1;
                let item = &mut self.items[s][i];
                item.phantom = false;
                item.shelf += std::mem::take(&mut item.hidden);
                self.observe(s, i, t);
            }
            Action::PhantomCount {
                store: s,
                sku: i,
                generation,
            } => {
                if !self.items[s][i].phantom || self.items[s][i].phantom_gen != generation {
                    return; // ended by a shelf check's count already
                }
                self.stats.phantoms_counted += 1;
                let item = &mut self.items[s][i];
                item.phantom = false;
                item.hidden = 0;
                item.books = item.shelf;
                item.books_at_ms = t;
                let n = item.books;
                b.count(
                    format!("wk-count-{}-{i}-{t}", self.stores[s].id),
                    t,
                    &self.stores[s].id,
                    &self.catalog[i].sku,
                    n,
                    "cycle count",
                );
                self.observe(s, i, t);
            }
            Action::Launch { sku: i } => {
                let p = &self.catalog[i];
                let (rp, out) = (p.reorder_point, p.order_up_to);
                for s in 0..self.stores.len() {
                    let n = self.rng.random_range(rp + 1..=out.max(rp + 1));
                    let item = &mut self.items[s][i];
                    item.shelf = n;
                    item.books = n;
                    item.books_at_ms = t;
                    b.count(
                        format!("wk-launch-{}-{i}", self.stores[s].id),
                        t,
                        &self.stores[s].id,
                        &self.catalog[i].sku,
                        n,
                        "new product: first stock counted",
                    );
                    self.observe(s, i, t);
                }
            }
            Action::CheckAnswer {
                store: s,
                sku: i,
                check_id,
                requested_at_ms,
                answer_at_ms,
            } => {
                // Staff answer when they planned to (the services may have shown the check to
                // the driver late), but after the last change of the books, so that the count
                // it books is the latest movement of the item. Not before the expiry: left
                // unanswered, it expires.
                let at = answer_at_ms
                    .max(self.items[s][i].books_at_ms + 1)
                    .min(t + 1);
                if at >= requested_at_ms + self.cfg.check_expiry_minutes * MINUTE_MS {
                    self.stats.checks_unanswered += 1;
                    return;
                }
                let truly_empty = self.items[s][i].shelf <= 0;
                let wrong = self
                    .staff_rng
                    .random_bool(self.cfg.check_error_rate.clamp(0.0, 1.0));
                let empty = truly_empty != wrong;
                if wrong {
                    self.stats.answers_wrong += 1;
                }
                let finding = if empty {
                    self.stats.answers_empty += 1;
                    ShelfFinding::Empty
                } else {
                    self.stats.answers_stock_there += 1;
                    ShelfFinding::StockIsThere
                };
                let store = &self.stores[s].id;
                b.responses.push(StaffResponse {
                    event_id: format!("wk-answer:{check_id}"),
                    occurred_at_ms: at,
                    store_id: store.clone(),
                    sku: self.catalog[i].sku.clone(),
                    check_id,
                    finding: finding as i32,
                    by: format!("staff-{store}"),
                    channel: "console".into(),
                    ..Default::default()
                });
            }
        }
    }

    /// A shelf check the services asked (a `Requested` event of `floor.checks.v1`): the staff
    /// answer it after [`WeekConfig::check_answer_after_minutes`], at a step start. Other steps,
    /// unknown stores or SKUs and checks handed over before are ignored.
    pub fn on_check_requested(&mut self, c: &ShelfCheckEvent) {
        if !matches!(c.change, Some(shelf_check_event::Change::Requested(_))) {
            return;
        }
        let (Some(&s), Some(&i)) = (
            self.store_index.get(&c.store_id),
            self.sku_index.get(&c.sku),
        ) else {
            return;
        };
        if !self.checks_seen.insert(c.check_id.clone()) {
            return;
        }
        self.stats.checks_asked += 1;
        let lag = self.now_ms - c.occurred_at_ms;
        if lag > self.cfg.step_ms {
            self.stats.checks_handed_late += 1;
        }
        self.stats.check_lag_max_minutes = self.stats.check_lag_max_minutes.max(lag / MINUTE_MS);
        let (lo, hi) = self.cfg.check_answer_after_minutes;
        let after = self.staff_rng.random_range(lo..=hi.max(lo)) * MINUTE_MS;
        self.schedule(
            c.occurred_at_ms + after,
            Action::CheckAnswer {
                store: s,
                sku: i,
                check_id: c.check_id.clone(),
                requested_at_ms: c.occurred_at_ms,
                answer_at_ms: c.occurred_at_ms + after,
            },
        );
    }

    /// An EMPTY answer was booked at `at` (offer-generator published its COUNT of 0 and
    /// inventory applied it): the books are 0; a phantom's goods are written off (as a count
    /// would) and the phantom ends. Returns the on-hand inventory must now show (0).
    pub fn on_check_booked(&mut self, store: &str, sku: &str, at: i64) -> Option<i32> {
        let (Some(&s), Some(&i)) = (self.store_index.get(store), self.sku_index.get(sku)) else {
            return None;
        };
        self.stats.checks_booked_empty += 1;
        let item = &mut self.items[s][i];
        item.books = 0;
        item.books_at_ms = item.books_at_ms.max(at);
        if item.phantom {
            item.phantom = false;
            item.hidden = 0;
            self.stats.phantoms_checked += 1;
        }
        self.observe(s, i, at);
        Some(0)
    }

    /// The baskets of every store in `(from, to)`, in time order per store. Lines for a truly
    /// empty shelf are dropped (and counted as lost); quantities never exceed the shelf.
    pub fn baskets(&mut self, from: i64, to: i64) -> Batch {
        let mut b = Batch::default();
        for s in 0..self.stores.len() {
            loop {
                let at = self.stores[s].next_basket_ms.max(from + 1);
                if at >= to {
                    break;
                }
                let varying = self.cfg.hour_of_week || self.cfg.traffic_shape.is_some();
                if varying {
                    // A rate that changes by the hour (0 while closed).
                    if !self.is_open(s, at) {
                        let next = self.next_arrival(s, at);
                        self.stores[s].next_basket_ms = next;
                        continue;
                    }
                    let next = self.next_arrival(s, at);
                    self.stores[s].next_basket_ms = next;
                } else {
                    if !self.is_open(s, at) {
                        let open = self.next_open(s, at);
                        let store = &mut self.stores[s];
                        store.next_basket_ms =
                            open + next_gap_ms(&mut store.rng, store.baskets_per_hour).max(1);
                        continue;
                    }
                    let store = &mut self.stores[s];
                    let gap = next_gap_ms(&mut store.rng, store.baskets_per_hour);
                    store.next_basket_ms = at + gap.max(1);
                }
                let popularity = if self.hour_pop.is_empty() {
                    &self.popularity
                } else {
                    &self.hour_pop[hour_of_week(at)]
                };
                let store = &mut self.stores[s];
                let wanted =
                    traffic::basket(&mut store.rng, popularity, traffic::EXTRA_LINES_MEAN, |_| 2);
                let mut lines = Vec::new();
                for l in wanted {
                    if self.items[s][l.index].launch_ms > at {
                        continue; // not on sale yet
                    }
                    if self.cfg.dispersion.is_some() {
                        let m = self.day_factor(s, l.index, at);
                        if m < 1.0 && !self.stores[s].rng.random_bool(m.max(0.0)) {
                            continue;
                        }
                    }
                    let item = &mut self.items[s][l.index];
                    if item.shelf <= 0 {
                        self.stats.lines_lost += 1;
                        continue;
                    }
                    let q = l.quantity.min(item.shelf);
                    item.shelf -= q;
                    item.books = (item.books - q).max(0);
                    item.books_at_ms = at;
                    lines.push((l.index, q));
                }
                if lines.is_empty() {
                    continue;
                }
                let store = &mut self.stores[s];
                store.seq += 1;
                let id = format!("wk-{}-b{}", store.id, store.seq);
                let mut sale = Sale {
                    event_id: id.clone(),
                    occurred_at_ms: at,
                    store_id: store.id.clone(),
                    basket_id: id,
                    lines: Vec::with_capacity(lines.len()),
                };
                for (i, q) in lines {
                    let p = &self.catalog[i];
                    sale.lines.push(SaleLine {
                        sku: p.sku.clone(),
                        quantity: q,
                        unit_price_cents: p.price_cents,
                    });
                    b.expected
                        .push((sale.event_id.clone(), p.sku.clone(), self.items[s][i].books));
                    self.observe(s, i, at);
                }
                self.stats.baskets += 1;
                self.stats.lines += sale.lines.len() as u64;
                b.sales.push(sale);
            }
        }
        b
    }

    /// Ends the run at `end_ms`: closes the open truth intervals there and returns them all,
    /// sorted by start.
    pub fn finish(&mut self, end_ms: i64) -> Vec<Truth> {
        for s in 0..self.stores.len() {
            for i in 0..self.catalog.len() {
                let rate = self.sales_per_hour(s, i);
                let item = &mut self.items[s][i];
                for (since, kind) in [
                    (item.real_since.take(), TruthKind::Real),
                    (item.phantom_since.take(), TruthKind::Phantom),
                ] {
                    if let Some(start_ms) = since {
                        self.truth.push(Truth {
                            store: self.stores[s].id.clone(),
                            sku: self.catalog[i].sku.clone(),
                            kind,
                            start_ms,
                            end_ms,
                            sales_per_hour: rate,
                        });
                    }
                }
            }
        }
        let mut out = std::mem::take(&mut self.truth);
        out.sort_by(|a, b| {
            (a.start_ms, &a.store, &a.sku, a.kind).cmp(&(b.start_ms, &b.store, &b.sku, b.kind))
        });
        out
    }

    /// The true shelf and the books of (store, SKU), for tests and the report.
    pub fn shelf_and_books(&self, store: &str, sku: &str) -> Option<(i32, i32)> {
        let s = *self.store_index.get(store)?;
        let i = *self.sku_index.get(sku)?;
        let item = &self.items[s][i];
        Some((item.shelf, item.books))
    }
}

/// Gamma(k, 1/k), mean 1, k >= 1 (Marsaglia–Tsang, normal by Box–Muller).
fn gamma_mean1(rng: &mut impl Rng, k: f64) -> f64 {
    let d = k - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let u1: f64 = rng.random_range(f64::EPSILON..1.0);
        let u2: f64 = rng.random();
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        let v = (1.0 + c * z).powi(3);
        let u: f64 = rng.random_range(f64::EPSILON..1.0);
        if v > 0.0 && u.ln() < 0.5 * z * z + d - d * v + d * v.ln() {
            return d * v / k;
        }
    }
}

/// Exponential gap between baskets of a store selling `per_hour` baskets an hour, in ms.
fn next_gap_ms(rng: &mut impl Rng, per_hour: f64) -> i64 {
    traffic::inter_arrival(rng, per_hour / 3600.0).map_or(i64::MAX / 4, |d| d.as_millis() as i64)
}

fn movement(
    event_id: String,
    at_ms: i64,
    store: &str,
    sku: &str,
    kind: MovementKind,
    quantity: i32,
    note: &str,
) -> StockMovement {
    StockMovement {
        event_id,
        occurred_at_ms: at_ms,
        store_id: store.to_owned(),
        sku: sku.to_owned(),
        kind: kind as i32,
        quantity,
        note: note.to_owned(),
    }
}

#[cfg(test)]
mod tests;
