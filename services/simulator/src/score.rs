//! Scores what the services published (stockout episodes, shelf checks, offers) against the
//! ground truth of a simulated week. Pure: records in, a [`Report`] out; it measures, it never
//! judges.
//!
//! A confirmed episode that opened the moment a suspected one of the same (store, SKU) closed
//! was confirmed by a shelf check (staff found the shelf empty, the count of 0 confirmed it):
//! it is scored against the phantom it was about, not against the real (warehouse) stockouts.
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;

use shelfguard_events::floor::{
    OfferEvent, ShelfCheckEvent, ShelfFinding, not_offered, offer_event::Change as OfferChange,
    shelf_check_event::Change as CheckChange,
};
use shelfguard_events::stockout::{Kind, StockoutEvent, stockout_event::Change};

use crate::week::{Truth, TruthKind};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 86_400_000;

/// One stockout episode as published on `stockouts.v1`.
#[derive(Debug, Clone, PartialEq)]
pub struct Episode {
    pub stockout_id: String,
    pub store: String,
    pub sku: String,
    /// `KIND_CONFIRMED`, `KIND_SUSPECTED` (or unspecified from an older detector).
    pub kind: Kind,
    pub opened_ms: i64,
    /// `None` while still open at the end of the run.
    pub closed_ms: Option<i64>,
    /// A confirmed episode that a count confirmed after a suspicion (a shelf check's EMPTY, or
    /// a cycle count that found the shelf empty): it opened when a suspected episode of the
    /// same (store, SKU) closed.
    pub from_check: bool,
}

/// The episodes in `events` (duplicates by `event_id` ignored; a close without its open is dropped).
pub fn episodes(events: &[StockoutEvent]) -> Vec<Episode> {
    let mut seen = HashSet::new();
    let mut by_id: BTreeMap<String, Episode> = BTreeMap::new();
    for e in events {
        if !seen.insert(e.event_id.as_str()) {
            continue;
        }
        match &e.change {
            Some(Change::Opened(o)) => {
                by_id.entry(e.stockout_id.clone()).or_insert(Episode {
                    stockout_id: e.stockout_id.clone(),
                    store: e.store_id.clone(),
                    sku: e.sku.clone(),
                    kind: Kind::try_from(o.kind).unwrap_or(Kind::Unspecified),
                    opened_ms: e.occurred_at_ms,
                    closed_ms: None,
                    from_check: false,
                });
            }
            Some(Change::Closed(_)) => {
                if let Some(ep) = by_id.get_mut(&e.stockout_id) {
                    ep.closed_ms.get_or_insert(e.occurred_at_ms);
                }
            }
            None => {}
        }
    }
    let suspected_closes: HashSet<(String, String, i64)> = by_id
        .values()
        .filter(|e| e.kind == Kind::Suspected)
        .filter_map(|e| Some((e.store.clone(), e.sku.clone(), e.closed_ms?)))
        .collect();
    for e in by_id.values_mut() {
        e.from_check = e.kind == Kind::Confirmed
            && suspected_closes.contains(&(e.store.clone(), e.sku.clone(), e.opened_ms));
    }
    let mut out: Vec<Episode> = by_id.into_values().collect();
    out.sort_by(|a, b| (a.opened_ms, &a.stockout_id).cmp(&(b.opened_ms, &b.stockout_id)));
    out
}

/// What the score needs to know about the run.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Simulated start and end of the week, UTC ms.
    pub start_ms: i64,
    pub end_ms: i64,
    pub stores: usize,
    /// An episode still counts as matching a truth interval this close to it (time grains:
    /// the simulator's step, the detector's timers).
    pub grace_ms: i64,
    /// Truth intervals shorter than this are not expected to be found (not counted for recall).
    pub min_truth_ms: i64,
    /// Sale lines per hour from which a SKU counts as a fast seller (phantom recall is split).
    pub fast_seller_per_hour: f64,
    /// Expected sale lines per open hour of each (store, SKU), to put false alarms in a
    /// velocity band too (missing: slow).
    pub rates: HashMap<(String, String), f64>,
    /// The stores' opening hours (UTC hours `[open, close)`): delays count open hours only.
    pub open_hours: (u32, u32),
    /// Stores with hours of their own (missing: [`Params::open_hours`]).
    pub store_hours: HashMap<String, (u32, u32)>,
}

impl Params {
    /// The opening hours of `store`.
    pub fn hours_of(&self, store: &str) -> (u32, u32) {
        self.store_hours
            .get(store)
            .copied()
            .unwrap_or(self.open_hours)
    }
}

/// Open hours between `a` and `b` (UTC ms) for stores open `[open, close)` every day.
pub fn open_hours_between(a: i64, b: i64, (open, close): (u32, u32)) -> f64 {
    if b <= a {
        return 0.0;
    }
    let (day, hour) = (DAY_MS, 3_600_000);
    let mut total = 0i64;
    let mut d = a.div_euclid(day) * day;
    while d < b {
        let (o, c) = (d + i64::from(open) * hour, d + i64::from(close) * hour);
        total += (c.min(b) - o.max(a)).max(0);
        d += day;
    }
    total as f64 / hour as f64
}

/// Velocity bands: fast (at least 1 sale per open hour), medium (0.1 to 1), slow.
pub const BANDS: [&str; 3] = ["fast", "medium", "slow"];

fn band_of(per_hour: f64) -> usize {
    if per_hour >= 1.0 {
        0
    } else if per_hour >= 0.1 {
        1
    } else {
        2
    }
}

/// One velocity band of one kind.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BandScore {
    pub tp_episodes: usize,
    pub fp_episodes: usize,
    pub found: usize,
    pub of: usize,
    /// Cause to episode, in open hours.
    pub delays_h: Vec<f64>,
}

/// Median, 90th percentile and maximum of a sample, in simulated minutes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub n: usize,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Spread {
    /// `None` for an empty sample. Nearest-rank percentiles.
    pub fn of(mut minutes: Vec<f64>) -> Option<Spread> {
        if minutes.is_empty() {
            return None;
        }
        minutes.sort_by(f64::total_cmp);
        let rank = |q: f64| {
            let r = (q * minutes.len() as f64).ceil() as usize;
            minutes[r.clamp(1, minutes.len()) - 1]
        };
        Some(Spread {
            n: minutes.len(),
            median: rank(0.5),
            p90: rank(0.9),
            max: minutes[minutes.len() - 1],
        })
    }
}

/// Detection quality for one kind (confirmed vs real, suspected vs phantom).
#[derive(Debug, Clone, PartialEq)]
pub struct KindScore {
    /// Episodes of the kind that overlap a truth interval of the kind (same store and SKU).
    pub tp_episodes: usize,
    /// Episodes of the kind that do not.
    pub fp_episodes: usize,
    /// Truth intervals (at least the minimum length) that got an episode of the kind.
    pub found: usize,
    /// Truth intervals (at least the minimum length) that did not.
    pub missed: usize,
    /// Truth intervals too short to count.
    pub too_short: usize,
    /// For phantoms: recall among fast sellers `(found, of)` and slow sellers.
    pub fast: (usize, usize),
    pub slow: (usize, usize),
    /// From the truth interval's start to the episode's opening, and to the offer issued for it.
    pub to_episode: Option<Spread>,
    pub to_offer: Option<Spread>,
    /// Per velocity band ([`BANDS`]).
    pub bands: [BandScore; 3],
}

impl KindScore {
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp_episodes, self.tp_episodes + self.fp_episodes)
    }
    pub fn recall(&self) -> Option<f64> {
        ratio(self.found, self.found + self.missed)
    }
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The offers side of the week.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OfferScore {
    /// Issued offers (distinct offer ids), and how many of them were for suspected stockouts.
    pub issued: usize,
    pub issued_suspected: usize,
    /// Issued offers (distinct offer ids) answering an episode that matched the truth (a real
    /// or phantom stockout).
    pub issued_for_true_stockouts: usize,
    /// NotOffered per cause (distinct per stockout and cause).
    pub not_offered: BTreeMap<String, usize>,
    /// Other lifecycle events by name (accepted, redeemed, expired, withdrawn, ...).
    pub lifecycle: BTreeMap<String, usize>,
    /// Budget use per (store, UTC day): the largest committed / budget seen that day, over
    /// store-days whose events carried a budget. `None` when no event carried one.
    pub budget_mean: Option<f64>,
    pub budget_max: Option<f64>,
    pub budget_store_days: usize,
}

/// The shelf checks of the week (`floor.checks.v1`), counted by distinct check id.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CheckScore {
    /// Checks requested, per (store, UTC day index from the start).
    pub per_store_day: BTreeMap<(String, i64), usize>,
    pub requested: usize,
    /// How they ended: answered EMPTY, answered STOCK_IS_THERE, expired, withdrawn; still open
    /// at the end of the run.
    pub empty: usize,
    pub stock_there: usize,
    pub expired: usize,
    pub withdrawn: usize,
    pub open_at_end: usize,
    /// Answers that matched the truth at their time: EMPTY on a shelf truly empty (a phantom
    /// or real stockout interval), STOCK_IS_THERE on one that was not.
    pub answers_right: usize,
    /// Checks asked while the shelf was truly empty (the suspicion was right).
    pub on_true_stockouts: usize,
    /// Confirmed episodes that a count confirmed after a suspicion (a check's EMPTY or a cycle
    /// count), and of them those on a truly empty shelf (a phantom, or a real stockout).
    pub confirmed_by_check: usize,
    pub confirmed_by_check_true: usize,
    /// From the truth interval's start to the offer of the episode a count confirmed (minutes).
    pub phantom_to_offer: Option<Spread>,
}

impl CheckScore {
    pub fn answered(&self) -> usize {
        self.empty + self.stock_there
    }
}

/// Everything measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub params: Params,
    /// Confirmed episodes (those a shelf check confirmed are in `checks`) vs real stockouts.
    pub confirmed: KindScore,
    pub suspected: KindScore,
    pub checks: CheckScore,
    /// Episodes of any other kind (unspecified).
    pub other_episodes: usize,
    pub offers: OfferScore,
    /// 95 % intervals of the headline figures, by bootstrapping stores.
    pub intervals: Intervals,
}

impl Report {
    /// Simulated days in the run.
    pub fn days(&self) -> f64 {
        (self.params.end_ms - self.params.start_ms) as f64 / DAY_MS as f64
    }
    /// Suspected episodes that match no phantom, per store per day.
    pub fn false_alarms_per_store_day(&self) -> f64 {
        self.suspected.fp_episodes as f64 / (self.days() * self.params.stores as f64).max(1e-9)
    }
    /// Shelf checks requested per store per day.
    pub fn checks_per_store_day(&self) -> f64 {
        self.checks.requested as f64 / (self.days() * self.params.stores as f64).max(1e-9)
    }
    /// Share of issued offers that answered a true stockout.
    pub fn offers_true_share(&self) -> Option<f64> {
        ratio(self.offers.issued_for_true_stockouts, self.offers.issued)
    }
    /// Suspected precision and recall over fast and medium sellers together.
    pub fn suspected_fast_medium(&self) -> (Option<f64>, Option<f64>) {
        let b = &self.suspected.bands;
        (
            ratio(
                b[0].tp_episodes + b[1].tp_episodes,
                b[0].tp_episodes + b[1].tp_episodes + b[0].fp_episodes + b[1].fp_episodes,
            ),
            ratio(b[0].found + b[1].found, b[0].of + b[1].of),
        )
    }
    /// One line of figures for averaging over seeds (`--seeds`): name=value pairs, NaN when n/a.
    pub fn summary(&self) -> String {
        let f = |x: Option<f64>| x.map_or(f64::NAN, |v| v * 100.0);
        let (fm_p, fm_r) = self.suspected_fast_medium();
        let mut out = format!(
            "confirmed_precision={:.1} confirmed_recall={:.1} suspected_precision={:.1} suspected_recall={:.1} fast_medium_precision={:.1} fast_medium_recall={:.1} false_alarms_per_store_day={:.3} offers={} offers_true_pct={:.1} checks_per_store_day={:.3} checks_empty={} checks_stock_there={} checks_expired={} checks_withdrawn={} confirmed_by_check={}",
            f(self.confirmed.precision()),
            f(self.confirmed.recall()),
            f(self.suspected.precision()),
            f(self.suspected.recall()),
            f(fm_p),
            f(fm_r),
            self.false_alarms_per_store_day(),
            self.offers.issued,
            f(self.offers_true_share()),
            self.checks_per_store_day(),
            self.checks.empty,
            self.checks.stock_there,
            self.checks.expired,
            self.checks.withdrawn,
            self.checks.confirmed_by_check,
        );
        for (name, k) in [
            ("suspected", &self.suspected),
            ("confirmed", &self.confirmed),
        ] {
            for (i, b) in k.bands.iter().enumerate() {
                let d = Spread::of(b.delays_h.clone());
                out.push_str(&format!(
                    " {name}_{band}_precision={:.1} {name}_{band}_recall={:.1} {name}_{band}_delay_median_h={:.2} {name}_{band}_delay_p90_h={:.2}",
                    f(ratio(b.tp_episodes, b.tp_episodes + b.fp_episodes)),
                    f(ratio(b.found, b.of)),
                    d.map_or(f64::NAN, |s| s.median),
                    d.map_or(f64::NAN, |s| s.p90),
                    band = BANDS[i]
                ));
            }
        }
        out
    }
    /// Issued offers per store per day.
    pub fn offers_per_store_day(&self) -> Option<f64> {
        let d = self.days() * self.params.stores as f64;
        (d > 0.0).then(|| self.offers.issued as f64 / d)
    }
}

fn overlaps(ep: &Episode, t: &Truth, end_ms: i64, grace_ms: i64) -> bool {
    ep.store == t.store
        && ep.sku == t.sku
        && ep.opened_ms <= t.end_ms + grace_ms
        && ep.closed_ms.unwrap_or(end_ms) + grace_ms >= t.start_ms
}

fn score_kind(
    p: &Params,
    kind: Kind,
    truth_kind: TruthKind,
    episodes: &[Episode],
    truth: &[Truth],
    first_issued: &HashMap<&str, i64>,
) -> KindScore {
    // Precision: the kind's own episodes (one a count confirmed after a suspicion is scored
    // with the checks); recall: any episode of the kind that was open during the interval.
    let eps: Vec<&Episode> = episodes
        .iter()
        .filter(|e| e.kind == kind && !e.from_check)
        .collect();
    let all: Vec<&Episode> = episodes.iter().filter(|e| e.kind == kind).collect();
    let tr: Vec<&Truth> = truth.iter().filter(|t| t.kind == truth_kind).collect();
    let mut by_key: HashMap<(&str, &str), Vec<&Truth>> = HashMap::new();
    for t in &tr {
        by_key
            .entry((t.store.as_str(), t.sku.as_str()))
            .or_default()
            .push(t);
    }
    let mut bands: [BandScore; 3] = Default::default();
    let tp_episodes = eps
        .iter()
        .filter(|e| {
            let tp = by_key
                .get(&(e.store.as_str(), e.sku.as_str()))
                .is_some_and(|ts| ts.iter().any(|t| overlaps(e, t, p.end_ms, p.grace_ms)));
            let rate = p
                .rates
                .get(&(e.store.clone(), e.sku.clone()))
                .copied()
                .unwrap_or(0.0);
            let b = &mut bands[band_of(rate)];
            if tp {
                b.tp_episodes += 1;
            } else {
                b.fp_episodes += 1;
            }
            tp
        })
        .count();
    let mut eps_by_key: HashMap<(&str, &str), Vec<&Episode>> = HashMap::new();
    for e in &all {
        eps_by_key
            .entry((e.store.as_str(), e.sku.as_str()))
            .or_default()
            .push(e);
    }
    let (mut found, mut missed, mut too_short) = (0, 0, 0);
    let (mut fast, mut slow) = ((0, 0), (0, 0));
    let (mut to_episode, mut to_offer) = (Vec::new(), Vec::new());
    for t in &tr {
        if t.end_ms - t.start_ms < p.min_truth_ms {
            too_short += 1;
            continue;
        }
        // Detected: an episode open at some moment of the interval (it may have opened a
        // little before, within the grace). The one that answers it is the first to open.
        let hit = eps_by_key
            .get(&(t.store.as_str(), t.sku.as_str()))
            .into_iter()
            .flatten()
            .filter(|e| e.opened_ms <= t.end_ms && e.closed_ms.unwrap_or(p.end_ms) >= t.start_ms)
            .min_by_key(|e| e.opened_ms);
        let bucket = if t.sales_per_hour >= p.fast_seller_per_hour {
            &mut fast
        } else {
            &mut slow
        };
        bucket.1 += 1;
        let band = &mut bands[band_of(t.sales_per_hour)];
        band.of += 1;
        let Some(e) = hit else {
            missed += 1;
            continue;
        };
        found += 1;
        bucket.0 += 1;
        band.found += 1;
        band.delays_h.push(open_hours_between(
            t.start_ms,
            e.opened_ms,
            p.hours_of(&t.store),
        ));
        to_episode.push((e.opened_ms - t.start_ms) as f64 / MINUTE_MS as f64);
        if let Some(&at) = first_issued.get(e.stockout_id.as_str()) {
            to_offer.push((at - t.start_ms) as f64 / MINUTE_MS as f64);
        }
    }
    KindScore {
        tp_episodes,
        fp_episodes: eps.len() - tp_episodes,
        found,
        missed,
        too_short,
        fast,
        slow,
        to_episode: Spread::of(to_episode),
        to_offer: Spread::of(to_offer),
        bands,
    }
}

fn change_name(c: &OfferChange) -> &'static str {
    match c {
        OfferChange::Issued(_) => "issued",
        OfferChange::Withdrawn(_) => "withdrawn",
        OfferChange::Accepted(_) => "accepted",
        OfferChange::Declined(_) => "declined",
        OfferChange::Redeemed(_) => "redeemed",
        OfferChange::Expired(_) => "expired",
        OfferChange::NotOffered(_) => "not offered",
    }
}

/// Whether the shelf of (store, sku) was truly empty at `at` (a truth interval of either kind
/// covers it, within the grace after its end).
fn truly_empty(truth: &[Truth], store: &str, sku: &str, at: i64, grace_ms: i64) -> bool {
    truth
        .iter()
        .any(|t| t.store == store && t.sku == sku && t.start_ms <= at && at <= t.end_ms + grace_ms)
}

/// The shelf checks: how many, where and when, how they ended, how right the answers were.
fn score_checks(
    p: &Params,
    truth: &[Truth],
    episodes: &[Episode],
    checks: &[ShelfCheckEvent],
    first_issued: &HashMap<&str, i64>,
) -> CheckScore {
    let mut cs = CheckScore::default();
    let mut seen = HashSet::new();
    let mut ended = HashSet::new();
    for c in checks {
        if !seen.insert(c.event_id.as_str()) {
            continue;
        }
        match &c.change {
            Some(CheckChange::Requested(_)) => {
                cs.requested += 1;
                let day = (c.occurred_at_ms - p.start_ms).div_euclid(DAY_MS);
                *cs.per_store_day
                    .entry((c.store_id.clone(), day))
                    .or_default() += 1;
                if truly_empty(truth, &c.store_id, &c.sku, c.occurred_at_ms, 0) {
                    cs.on_true_stockouts += 1;
                }
            }
            Some(CheckChange::Answered(a)) => {
                ended.insert(c.check_id.as_str());
                let empty = a.finding == ShelfFinding::Empty as i32;
                if empty {
                    cs.empty += 1;
                } else {
                    cs.stock_there += 1;
                }
                // The answer's count ends a phantom at the answer's time (inclusive).
                if truly_empty(truth, &c.store_id, &c.sku, c.occurred_at_ms, 0) == empty {
                    cs.answers_right += 1;
                }
            }
            Some(CheckChange::Expired(_)) => {
                ended.insert(c.check_id.as_str());
                cs.expired += 1;
            }
            Some(CheckChange::Withdrawn(_)) => {
                ended.insert(c.check_id.as_str());
                cs.withdrawn += 1;
            }
            None => {}
        }
    }
    cs.open_at_end = cs.requested.saturating_sub(ended.len());
    let mut to_offer = Vec::new();
    for e in episodes.iter().filter(|e| e.from_check) {
        cs.confirmed_by_check += 1;
        let phantom = truth
            .iter()
            .filter(|t| overlaps(e, t, p.end_ms, p.grace_ms))
            .min_by_key(|t| t.start_ms);
        if let Some(t) = phantom {
            cs.confirmed_by_check_true += 1;
            if let Some(&at) = first_issued.get(e.stockout_id.as_str()) {
                to_offer.push((at - t.start_ms) as f64 / MINUTE_MS as f64);
            }
        }
    }
    cs.phantom_to_offer = Spread::of(to_offer);
    cs
}

/// Scores the run: `episodes` from [`episodes`], every `OfferEvent` read from `floor.offers.v1`
/// and every `ShelfCheckEvent` from `floor.checks.v1`.
pub fn score(
    p: Params,
    truth: &[Truth],
    episodes: &[Episode],
    offers: &[OfferEvent],
    checks: &[ShelfCheckEvent],
) -> Report {
    let mut seen = HashSet::new();
    let offers: Vec<&OfferEvent> = offers
        .iter()
        .filter(|o| seen.insert(o.event_id.as_str()))
        .collect();
    let mut first_issued: HashMap<&str, i64> = HashMap::new();
    // Offer id -> the stockout it answers (an episode may get a new offer after one expired).
    let mut issued_ids: HashMap<&str, &str> = HashMap::new();
    let mut os = OfferScore::default();
    let mut not_offered = HashSet::new();
    let mut budget: BTreeMap<(&str, i64), f64> = BTreeMap::new();
    for o in &offers {
        if o.budget_cents > 0 {
            let r = o.budget_committed_cents as f64 / o.budget_cents as f64;
            let day = o.occurred_at_ms.div_euclid(DAY_MS);
            let e = budget.entry((o.store_id.as_str(), day)).or_insert(r);
            *e = e.max(r);
        }
        let Some(c) = &o.change else { continue };
        match c {
            OfferChange::Issued(i) => {
                let at = first_issued
                    .entry(o.stockout_id.as_str())
                    .or_insert(o.occurred_at_ms);
                *at = (*at).min(o.occurred_at_ms);
                if issued_ids
                    .insert(o.offer_id.as_str(), o.stockout_id.as_str())
                    .is_none()
                {
                    os.issued += 1;
                    if i.offer.as_ref().is_some_and(|x| x.suspected) {
                        os.issued_suspected += 1;
                    }
                }
            }
            OfferChange::NotOffered(n) => {
                let cause =
                    not_offered::Cause::try_from(n.cause).map_or("unknown", |c| c.as_str_name());
                if not_offered.insert((o.stockout_id.as_str(), cause)) {
                    *os.not_offered.entry(cause.to_owned()).or_default() += 1;
                }
            }
            other => {
                *os.lifecycle
                    .entry(change_name(other).to_owned())
                    .or_default() += 1
            }
        }
    }
    if !budget.is_empty() {
        os.budget_store_days = budget.len();
        os.budget_mean = Some(budget.values().sum::<f64>() / budget.len() as f64);
        os.budget_max = budget.values().copied().reduce(f64::max);
    }
    let confirmed = score_kind(
        &p,
        Kind::Confirmed,
        TruthKind::Real,
        episodes,
        truth,
        &first_issued,
    );
    let suspected = score_kind(
        &p,
        Kind::Suspected,
        TruthKind::Phantom,
        episodes,
        truth,
        &first_issued,
    );
    // Which episodes matched the truth (of their own kind), for "offers for true stockouts".
    let true_ids: HashSet<&str> = episodes
        .iter()
        .filter(|e| {
            let want = match e.kind {
                // Confirmed by a count after a suspicion: a truly empty shelf of either kind.
                Kind::Confirmed if e.from_check => {
                    return truth.iter().any(|t| overlaps(e, t, p.end_ms, p.grace_ms));
                }
                Kind::Confirmed => TruthKind::Real,
                Kind::Suspected => TruthKind::Phantom,
                Kind::Unspecified => return false,
            };
            truth
                .iter()
                .any(|t| t.kind == want && overlaps(e, t, p.end_ms, p.grace_ms))
        })
        .map(|e| e.stockout_id.as_str())
        .collect();
    // Counted in offers, as `issued` is.
    os.issued_for_true_stockouts = issued_ids
        .values()
        .filter(|id| true_ids.contains(*id))
        .count();
    let checks = score_checks(&p, truth, episodes, checks, &first_issued);
    let days = (p.end_ms - p.start_ms) as f64 / DAY_MS as f64;
    let intervals = bootstrap(
        &store_tallies(&p, truth, episodes, &first_issued, &issued_ids, &true_ids),
        days,
    );
    Report {
        checks,
        intervals,
        other_episodes: episodes
            .iter()
            .filter(|e| e.kind == Kind::Unspecified)
            .count(),
        params: p,
        confirmed,
        suspected,
        offers: os,
    }
}

/// What one store contributed to the headline figures (the unit the bootstrap resamples:
/// stores are independent, the (store, SKU)s of one store are not).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct StoreTally {
    /// Suspected episodes on fast and medium sellers: true, false; phantoms on them: found, all.
    fm_tp: usize,
    fm_fp: usize,
    fm_found: usize,
    fm_of: usize,
    /// Suspected episodes matching no phantom (any band): the false alarms.
    false_alarms: usize,
    /// Confirmed episodes: true, false; real stockouts: found, all.
    c_tp: usize,
    c_fp: usize,
    c_found: usize,
    c_of: usize,
    /// Offers issued, and of them those answering a truly empty shelf.
    offered: usize,
    offered_true: usize,
}

impl std::ops::AddAssign for StoreTally {
    fn add_assign(&mut self, o: Self) {
        self.fm_tp += o.fm_tp;
        self.fm_fp += o.fm_fp;
        self.fm_found += o.fm_found;
        self.fm_of += o.fm_of;
        self.false_alarms += o.false_alarms;
        self.c_tp += o.c_tp;
        self.c_fp += o.c_fp;
        self.c_found += o.c_found;
        self.c_of += o.c_of;
        self.offered += o.offered;
        self.offered_true += o.offered_true;
    }
}

/// Resamples drawn for the intervals.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// 95 % percentile-bootstrap intervals over stores (`None`: no resample had the figure).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Intervals {
    pub fast_medium_precision: Option<(f64, f64)>,
    pub fast_medium_recall: Option<(f64, f64)>,
    pub false_alarms_per_store_day: Option<(f64, f64)>,
    pub confirmed_precision: Option<(f64, f64)>,
    pub confirmed_recall: Option<(f64, f64)>,
    pub offers_true_share: Option<(f64, f64)>,
}

/// Each store's tally, scored with the same rules as the whole week.
fn store_tallies(
    p: &Params,
    truth: &[Truth],
    episodes: &[Episode],
    first_issued: &HashMap<&str, i64>,
    issued: &HashMap<&str, &str>,
    true_ids: &HashSet<&str>,
) -> Vec<StoreTally> {
    (0..p.stores)
        .map(|i| {
            let store = crate::store_id(i);
            let truth: Vec<Truth> = truth.iter().filter(|t| t.store == store).cloned().collect();
            let eps: Vec<Episode> = episodes
                .iter()
                .filter(|e| e.store == store)
                .cloned()
                .collect();
            let sus = score_kind(
                p,
                Kind::Suspected,
                TruthKind::Phantom,
                &eps,
                &truth,
                first_issued,
            );
            let con = score_kind(
                p,
                Kind::Confirmed,
                TruthKind::Real,
                &eps,
                &truth,
                first_issued,
            );
            // The store's offers (by offer id) and the stockouts they answer.
            let offered: Vec<&str> = issued
                .iter()
                .filter(|(offer, _)| offer.starts_with(&format!("{store}/")))
                .map(|(_, stockout)| *stockout)
                .collect();
            let b = &sus.bands;
            StoreTally {
                fm_tp: b[0].tp_episodes + b[1].tp_episodes,
                fm_fp: b[0].fp_episodes + b[1].fp_episodes,
                fm_found: b[0].found + b[1].found,
                fm_of: b[0].of + b[1].of,
                false_alarms: sus.fp_episodes,
                c_tp: con.tp_episodes,
                c_fp: con.fp_episodes,
                c_found: con.found,
                c_of: con.found + con.missed,
                offered: offered.len(),
                offered_true: offered.iter().filter(|id| true_ids.contains(*id)).count(),
            }
        })
        .collect()
}

/// Percentile bootstrap over stores: [`BOOTSTRAP_RESAMPLES`] resamples of as many stores, drawn
/// with replacement by a fixed seed (the same records give the same intervals).
fn bootstrap(stores: &[StoreTally], days: f64) -> Intervals {
    use rand::{Rng, SeedableRng};
    if stores.is_empty() {
        return Intervals::default();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EED_B007);
    let mut draws: [Vec<f64>; 6] = Default::default();
    for _ in 0..BOOTSTRAP_RESAMPLES {
        let mut t = StoreTally::default();
        for _ in 0..stores.len() {
            t += stores[rng.random_range(0..stores.len())];
        }
        let figures = [
            ratio(t.fm_tp, t.fm_tp + t.fm_fp),
            ratio(t.fm_found, t.fm_of),
            (days > 0.0).then(|| t.false_alarms as f64 / (days * stores.len() as f64)),
            ratio(t.c_tp, t.c_tp + t.c_fp),
            ratio(t.c_found, t.c_of),
            ratio(t.offered_true, t.offered),
        ];
        for (d, f) in draws.iter_mut().zip(figures) {
            d.extend(f);
        }
    }
    let [a, b, c, d, e, f] = draws.map(|mut v| {
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let at = |q: f64| v[((q * v.len() as f64) as usize).min(v.len() - 1)];
        Some((at(0.025), at(0.975)))
    });
    Intervals {
        fast_medium_precision: a,
        fast_medium_recall: b,
        false_alarms_per_store_day: c,
        confirmed_precision: d,
        confirmed_recall: e,
        offers_true_share: f,
    }
}

fn interval_pct(x: Option<(f64, f64)>) -> String {
    x.map_or_else(
        || "n/a".to_owned(),
        |(lo, hi)| format!("[{:.1}, {:.1}] %", lo * 100.0, hi * 100.0),
    )
}

fn pct(x: Option<f64>) -> String {
    x.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1} %", v * 100.0))
}

fn spread(s: &Option<Spread>) -> String {
    s.map_or_else(
        || "n/a".to_owned(),
        |s| {
            format!(
                "median {:.0} min, p90 {:.0} min, max {:.0} min (n={})",
                s.median, s.p90, s.max, s.n
            )
        },
    )
}

fn share(found: usize, of: usize) -> String {
    match ratio(found, of) {
        Some(r) => format!("{found}/{of} ({:.0} %)", r * 100.0),
        None => "n/a (none)".to_owned(),
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = &self.params;
        writeln!(
            f,
            "detection (grace {} min; truth intervals shorter than {} min are not counted for recall)",
            p.grace_ms / MINUTE_MS,
            p.min_truth_ms / MINUTE_MS
        )?;
        for (name, truth, k) in [
            ("confirmed", "real stockouts", &self.confirmed),
            ("suspected", "phantom stockouts", &self.suspected),
        ] {
            writeln!(f, "  {name} episodes vs {truth}:")?;
            writeln!(
                f,
                "    precision {}  (TP {}, FP {})",
                pct(k.precision()),
                k.tp_episodes,
                k.fp_episodes
            )?;
            writeln!(
                f,
                "    recall    {}  (TP {}, FN {}; {} shorter intervals not counted)",
                pct(k.recall()),
                k.found,
                k.missed,
                k.too_short
            )?;
            if truth.starts_with("phantom") {
                writeln!(
                    f,
                    "    recall by seller: fast (>= {} sales/h) {}, slow {}",
                    p.fast_seller_per_hour,
                    share(k.fast.0, k.fast.1),
                    share(k.slow.0, k.slow.1)
                )?;
            }
            for (i, b) in k.bands.iter().enumerate() {
                let d = Spread::of(b.delays_h.clone());
                writeln!(
                    f,
                    "    {:<6} precision {} (TP {}, FP {}), recall {}, delay median {} h, p90 {} h",
                    BANDS[i],
                    pct(ratio(b.tp_episodes, b.tp_episodes + b.fp_episodes)),
                    b.tp_episodes,
                    b.fp_episodes,
                    share(b.found, b.of),
                    d.map_or_else(|| "n/a".into(), |s| format!("{:.1}", s.median)),
                    d.map_or_else(|| "n/a".into(), |s| format!("{:.1}", s.p90)),
                )?;
            }
            writeln!(f, "    cause -> episode opened: {}", spread(&k.to_episode))?;
            writeln!(f, "    cause -> offer issued:   {}", spread(&k.to_offer))?;
        }
        if self.other_episodes > 0 {
            writeln!(f, "  episodes of unspecified kind: {}", self.other_episodes)?;
        }
        let o = &self.offers;
        let (fm_p, fm_r) = self.suspected_fast_medium();
        writeln!(
            f,
            "  suspected over fast+medium sellers: precision {}, recall {}; false alarms {:.3} per store per day",
            pct(fm_p),
            pct(fm_r),
            self.false_alarms_per_store_day()
        )?;
        let c = &self.checks;
        writeln!(f, "shelf checks")?;
        writeln!(
            f,
            "  requested {} ({:.2} per store per day), {} of them while the shelf was truly empty ({})",
            c.requested,
            self.checks_per_store_day(),
            c.on_true_stockouts,
            pct(ratio(c.on_true_stockouts, c.requested))
        )?;
        writeln!(
            f,
            "  answers: empty {}, stock is there {}, expired {}, withdrawn {}, open at the end {}; answers matching the truth {}",
            c.empty,
            c.stock_there,
            c.expired,
            c.withdrawn,
            c.open_at_end,
            share(c.answers_right, c.answered())
        )?;
        writeln!(
            f,
            "  confirmed by a count after a suspicion (EMPTY, or a cycle count): {} episodes, {} on a truly empty shelf; cause -> offer issued: {}",
            c.confirmed_by_check,
            c.confirmed_by_check_true,
            spread(&c.phantom_to_offer)
        )?;
        // Every store of the run (`S-001`, ...), also those without a check.
        let stores: BTreeSet<String> = c
            .per_store_day
            .keys()
            .map(|(s, _)| s.clone())
            .chain((0..p.stores).map(crate::store_id))
            .collect();
        let days = self.days().ceil() as i64;
        if c.requested > 0 {
            let head: Vec<String> = (0..days).map(|d| format!("d{}", d + 1)).collect();
            writeln!(f, "  checks per store per day: store {}", head.join(" "))?;
            for s in stores {
                let row: Vec<String> = (0..days)
                    .map(|d| {
                        let n = c.per_store_day.get(&(s.clone(), d)).copied().unwrap_or(0);
                        format!("{n:>w$}", w = format!("d{}", d + 1).len())
                    })
                    .collect();
                writeln!(f, "    {s:<10} {}", row.join(" "))?;
            }
        }
        writeln!(f, "offers")?;
        writeln!(
            f,
            "  issued {} ({} suspected), {} per store per day; {} answer a true stockout ({})",
            o.issued,
            o.issued_suspected,
            self.offers_per_store_day()
                .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}")),
            o.issued_for_true_stockouts,
            pct(self.offers_true_share())
        )?;
        let causes = if o.not_offered.is_empty() {
            "none".to_owned()
        } else {
            o.not_offered
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(f, "  not offered: {causes}")?;
        if !o.lifecycle.is_empty() {
            let l = o
                .lifecycle
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            writeln!(f, "  later events: {l}")?;
        }
        match (o.budget_mean, o.budget_max) {
            (Some(mean), Some(max)) => writeln!(
                f,
                "  budget use per store-day (max committed / budget): mean {:.1} %, max {:.1} % over {} store-days",
                mean * 100.0,
                max * 100.0,
                o.budget_store_days
            ),
            _ => writeln!(f, "  budget use: n/a (no event carried a budget)"),
        }?;
        let i = &self.intervals;
        writeln!(
            f,
            "95 % intervals (bootstrap over the {} stores, {BOOTSTRAP_RESAMPLES} resamples)",
            p.stores
        )?;
        writeln!(
            f,
            "  suspected, fast and medium sellers: precision {}, recall {}",
            interval_pct(i.fast_medium_precision),
            interval_pct(i.fast_medium_recall)
        )?;
        writeln!(
            f,
            "  false alarms per store per day: {}",
            i.false_alarms_per_store_day.map_or_else(
                || "n/a".to_owned(),
                |(lo, hi)| format!("[{lo:.3}, {hi:.3}]")
            )
        )?;
        writeln!(
            f,
            "  confirmed: precision {}, recall {}",
            interval_pct(i.confirmed_precision),
            interval_pct(i.confirmed_recall)
        )?;
        writeln!(
            f,
            "  offers answering a real stockout: {}",
            interval_pct(i.offers_true_share)
        )
    }
}

#[cfg(test)]
mod tests;
