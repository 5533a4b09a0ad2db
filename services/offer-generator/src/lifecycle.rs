//! The offer lifecycle: one live offer per stockout episode, from issue to its end.
//!
//! - An opened episode gets an offer when a substitute qualifies and the store's budget allows
//!   a gesture; otherwise a `NotOffered` record says why, and the episode waits: a stock change
//!   of a product of its family tries again.
//! - Staff answers (`floor.responses.v1`) accept, decline or redeem the live offer. A redeemed
//!   offer's gesture stays spent; any other end releases it.
//! - An offer not yet accepted is withdrawn when stock is back on the shelf (the episode closes
//!   with stock on hand, or a later stock level shows units or a sale), when its substitute runs
//!   out (then another substitute is tried) or a newer stockout supersedes it; a closed episode
//!   whose goods are only expected leaves it live. An **accepted** offer is a promise: it ends
//!   only redeemed, declined or expired (after `OFFER_TTL_MINUTES`), whatever happens to its
//!   episode; the offer's events keep its own episode's id (`episode_of`).
//!
//! Time is the events' own: an expiry falls due on the next event of the store (see `due_keys`).
use std::collections::{BTreeSet, HashMap};

use clap::Args;
use shelfguard_events::catalog::Product;
use shelfguard_events::floor::{
    Accepted, Answer, Declined, Expired, Gesture, Issued, NotOffered, Offer, OfferEvent,
    ProductRef, Redeemed, StaffResponse, Withdrawn, not_offered, offer_event,
};
use shelfguard_events::inventory::StockLevel;
use shelfguard_events::limits::{MAX_PRICE_CENTS, MAX_QUANTITY};
use shelfguard_events::state::OfferItem;
use shelfguard_events::stockout::{Evidence, Kind, StockoutEvent, stockout_event::Change};
use shelfguard_events::store::Sale;
use shelfguard_events::topics;
use shelfguard_events::validate::{self, split_key};
use shelfguard_runtime::config::number_at_least;
use shelfguard_runtime::due::DueIndex;
use shelfguard_runtime::hold::HoldArgs;
use shelfguard_runtime::processor::View;
use shelfguard_runtime::table::Table;
use shelfguard_runtime::{Output, Processor, Rejected};
use tracing::info;

use crate::gesture::{self, GesturePolicy};
use crate::{budget, checks, complements, substitute};

pub const SERVICE: &str = "offer-generator";

/// Default of `MIN_SUBSTITUTE_UNITS`.
pub const DEFAULT_MIN_SUBSTITUTE_UNITS: i32 = 2;
/// Default of `FREE_AFTER_FAILURES`.
pub const DEFAULT_FREE_AFTER_FAILURES: i32 = 3;
/// Default of `MAX_GESTURE_CENTS`.
pub const DEFAULT_MAX_GESTURE_CENTS: i64 = 2000;
/// Default of `OFFER_TTL_MINUTES`.
pub const DEFAULT_OFFER_TTL_MINUTES: i64 = 240;
/// Default of `STORE_DAILY_BUDGET_CENTS`.
pub const DEFAULT_STORE_DAILY_BUDGET_CENTS: i64 = 5000;
/// Default of `COMPLEMENT_MIN_SUPPORT`.
pub const DEFAULT_COMPLEMENT_MIN_SUPPORT: f64 = 3.0;
/// Default of `COMPLEMENT_HALF_LIFE_DAYS`.
pub const DEFAULT_COMPLEMENT_HALF_LIFE_DAYS: f64 = 14.0;
/// Shortest `COMPLEMENT_HALF_LIFE_DAYS` (about 15 minutes).
pub const MIN_HALF_LIFE_DAYS: f64 = 0.01;
/// Longest `OFFER_TTL_MINUTES`: 30 days.
pub const MAX_OFFER_TTL_MINUTES: i64 = 30 * 24 * 60;

#[derive(Debug, Clone, Args)]
#[group(id = "offer-generator-policy")]
pub struct Policy {
    /// A substitute needs at least this many units on hand in the store; 0 to 1000000.
    #[arg(long, env = "MIN_SUBSTITUTE_UNITS", default_value_t = DEFAULT_MIN_SUBSTITUTE_UNITS, value_parser = clap::value_parser!(i32).range(0..=i64::from(MAX_QUANTITY)))]
    pub min_substitute_units: i32,
    /// From this many failed reorders in 7 days the substitute is given free; 0 or more.
    #[arg(long, env = "FREE_AFTER_FAILURES", default_value_t = DEFAULT_FREE_AFTER_FAILURES, value_parser = clap::value_parser!(i32).range(0..))]
    pub free_after_failures: i32,
    /// The most one offer may give away, in cents; 0 to 1000000000.
    #[arg(long, env = "MAX_GESTURE_CENTS", default_value_t = DEFAULT_MAX_GESTURE_CENTS, value_parser = clap::value_parser!(i64).range(0..=MAX_PRICE_CENTS))]
    pub max_gesture_cents: i64,
    /// How long an offer stays valid, in minutes; 1 to 43200 (30 days).
    #[arg(long, env = "OFFER_TTL_MINUTES", default_value_t = DEFAULT_OFFER_TTL_MINUTES, value_parser = clap::value_parser!(i64).range(1..=MAX_OFFER_TTL_MINUTES))]
    pub offer_ttl_minutes: i64,
    /// What a store's offers may give away per UTC day, in cents; 0 to 1000000000.
    #[arg(long, env = "STORE_DAILY_BUDGET_CENTS", default_value_t = DEFAULT_STORE_DAILY_BUDGET_CENTS, value_parser = clap::value_parser!(i64).range(0..=MAX_PRICE_CENTS))]
    pub store_daily_budget_cents: i64,
    /// Per-store budgets overriding the default: `S-001=8000,S-002=3000`.
    #[arg(long, env = "STORE_BUDGETS", default_value = "", value_parser = budget::parse_store_budgets)]
    pub store_budgets: budget::StoreBudgets,
    /// A complement needs at least this many (decayed) baskets together with the product;
    /// 0 or more.
    #[arg(long, env = "COMPLEMENT_MIN_SUPPORT", default_value_t = DEFAULT_COMPLEMENT_MIN_SUPPORT, value_parser = number_at_least(0.0))]
    pub complement_min_support: f64,
    /// How long a shelf check (a suspected stockout's question to staff) waits for an
    /// answer, in minutes of event time; then it expires. 1 to 1440 (a day).
    #[arg(long, env = "CHECK_EXPIRY_MINUTES", default_value_t = checks::DEFAULT_CHECK_EXPIRY_MINUTES, value_parser = clap::value_parser!(i64).range(1..=checks::MAX_CHECK_EXPIRY_MINUTES))]
    pub check_expiry_minutes: i64,
    /// Half-life of the basket counts behind complements, in days; 0.01 (about 15 minutes) or
    /// more.
    #[arg(long, env = "COMPLEMENT_HALF_LIFE_DAYS", default_value_t = DEFAULT_COMPLEMENT_HALF_LIFE_DAYS, value_parser = number_at_least(MIN_HALF_LIFE_DAYS))]
    pub complement_half_life_days: f64,
    /// How long a stockout of a SKU not in the catalogue yet is held.
    #[command(flatten)]
    pub hold: HoldArgs,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_substitute_units: DEFAULT_MIN_SUBSTITUTE_UNITS,
            free_after_failures: DEFAULT_FREE_AFTER_FAILURES,
            max_gesture_cents: DEFAULT_MAX_GESTURE_CENTS,
            offer_ttl_minutes: DEFAULT_OFFER_TTL_MINUTES,
            store_daily_budget_cents: DEFAULT_STORE_DAILY_BUDGET_CENTS,
            store_budgets: budget::StoreBudgets::default(),
            complement_min_support: DEFAULT_COMPLEMENT_MIN_SUPPORT,
            check_expiry_minutes: checks::DEFAULT_CHECK_EXPIRY_MINUTES,
            complement_half_life_days: DEFAULT_COMPLEMENT_HALF_LIFE_DAYS,
            hold: HoldArgs::default(),
        }
    }
}

impl Policy {
    fn tau_ms(&self) -> f64 {
        // At least MIN_HALF_LIFE_DAYS by its parser (refused at start otherwise); the floor
        // only guards a Policy built in code.
        self.complement_half_life_days.max(MIN_HALF_LIFE_DAYS) * 24.0 * 3_600_000.0
            / std::f64::consts::LN_2
    }
    pub fn budget_of(&self, store: &str) -> i64 {
        self.store_budgets.of(store, self.store_daily_budget_cents)
    }
}

/// A validated input.
#[derive(Debug)]
pub enum Event {
    Stockout(StockoutEvent),
    Level(StockLevel),
    /// A POS basket, for learning complements (SKUs de-duplicated, unknown ones left out).
    Sale(Sale, Vec<String>),
    Response(StaffResponse),
}

impl Event {
    fn occurred_at_ms(&self) -> i64 {
        match self {
            Event::Stockout(s) => s.occurred_at_ms,
            Event::Level(l) => l.occurred_at_ms,
            Event::Sale(s, _) => s.occurred_at_ms,
            Event::Response(r) => r.occurred_at_ms,
        }
    }
    fn store_id(&self) -> &str {
        match self {
            Event::Stockout(s) => &s.store_id,
            Event::Level(l) => &l.store_id,
            Event::Sale(s, _) => &s.store_id,
            Event::Response(r) => &r.store_id,
        }
    }
}

/// Why an open episode has no offer.
#[derive(Debug, Clone, PartialEq)]
pub struct NoOffer {
    pub cause: not_offered::Cause,
    pub reason: String,
}

/// What the composition needs to know about the store at this moment.
pub struct Shelf<'a> {
    /// On-hand of a SKU in this store.
    pub on_hand: &'a dyn Fn(&str) -> i32,
    /// Budget of the store for the day, and what is committed already.
    pub budget_cents: i64,
    pub committed_cents: i64,
    /// Learned complement candidates (SKU, lift) of a SKU in this store.
    pub complements: &'a dyn Fn(&str) -> Vec<(String, f64)>,
}

pub struct Offers {
    policy: Policy,
    catalog: Table<Product>,
    /// Open episodes still without an offer, by `store/family`: a stock change of a product of
    /// that family in that store is also applied to them (a substitute may now qualify).
    waiting: HashMap<String, BTreeSet<String>>,
    /// Keys with a live offer, by `store/substitute SKU`: a stock change of the substitute is
    /// also applied to them (it may have run out).
    by_substitute: HashMap<String, BTreeSet<String>>,
    /// Timers: a live offer's expiry, or a live shelf check's expiry. Any event of
    /// the store visits the keys that are due.
    timers: DueIndex,
    /// Where each key is indexed, to take it out again.
    indexed: HashMap<String, Indexed>,
}

/// The index entries of one key.
#[derive(Default)]
struct Indexed {
    waiting: Option<String>,
    substitute: Option<String>,
}

fn remove_from(map: &mut HashMap<String, BTreeSet<String>>, at: &str, key: &str) {
    if let Some(set) = map.get_mut(at) {
        set.remove(key);
        if set.is_empty() {
            map.remove(at);
        }
    }
}

impl Offers {
    pub fn new(policy: Policy, catalog: Table<Product>) -> Self {
        Self {
            policy,
            catalog,
            waiting: HashMap::new(),
            by_substitute: HashMap::new(),
            timers: DueIndex::default(),
            indexed: HashMap::new(),
        }
    }

    fn family_key(&self, store: &str, sku: &str) -> Option<String> {
        self.catalog
            .read()
            .get(sku)
            .map(|p| format!("{store}/{}", p.family))
    }

    /// Keeps the indexes in step with one key's state (indexes over the state, rebuilt on
    /// restore; a stale entry costs one look, nothing more).
    fn index(&mut self, key: &str, item: &OfferItem) {
        let (store, sku) = split_key(key);
        if let Some(old) = self.indexed.remove(key) {
            if let Some(fk) = old.waiting {
                remove_from(&mut self.waiting, &fk, key);
            }
            if let Some(sk) = old.substitute {
                remove_from(&mut self.by_substitute, &sk, key);
            }
        }
        let mut now = Indexed::default();
        if item.episode_open
            && !item.suspected
            && item.offer.is_none()
            && !item.episode_answered
            && let Some(fk) = self.family_key(store, sku)
        {
            self.waiting
                .entry(fk.clone())
                .or_default()
                .insert(key.to_owned());
            now.waiting = Some(fk);
        }
        if let Some(offer) = &item.offer {
            let sub = offer.substitute.as_ref().map_or("", |s| s.sku.as_str());
            let sk = validate::key(store, sub);
            self.by_substitute
                .entry(sk.clone())
                .or_default()
                .insert(key.to_owned());
            now.substitute = Some(sk);
        }
        let offer_due = item.offer.as_ref().map(|o| o.expires_at_ms);
        let due = match (offer_due, checks::due(item)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.timers.set(key, due);
        if now.waiting.is_some() || now.substitute.is_some() {
            self.indexed.insert(key.to_owned(), now);
        }
    }

    /// What the store's offers have committed today, this key's state included.
    fn committed(
        &self,
        store: &str,
        key: &str,
        item: &OfferItem,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> i64 {
        let day = budget::day(now);
        let prefix = format!("{store}/");
        others
            .scan(&prefix)
            .filter(|(k, _)| *k != key)
            .map(|(_, o)| budget::committed_on(&o, day))
            .sum::<i64>()
            + budget::committed_on(item, day)
    }

    /// An offer event of `key`, with the store's budget after the change.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &self,
        key: &str,
        item: &OfferItem,
        offer_id: &str,
        step: &str,
        change: offer_event::Change,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Output {
        let (store, sku) = split_key(key);
        let e = OfferEvent {
            event_id: format!("{offer_id}:{step}"),
            occurred_at_ms: now,
            store_id: store.to_owned(),
            offer_id: offer_id.to_owned(),
            // The offer's own episode (an accepted offer can outlive its episode).
            stockout_id: episode_of(offer_id).unwrap_or(&item.stockout_id).to_owned(),
            sku: sku.to_owned(),
            budget_cents: self.policy.budget_of(store),
            budget_committed_cents: self.committed(store, key, item, now, others),
            change: Some(change),
        };
        Output::new(topics::FLOOR_OFFERS, store, &e)
    }

    /// Ends the live offer of `key` (anything but a redemption releases its gesture).
    fn end(
        &self,
        key: &str,
        item: &mut OfferItem,
        step: &str,
        change: offer_event::Change,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Vec<Output> {
        let Some(offer) = item.offer.take() else {
            return Vec::new();
        };
        if !matches!(change, offer_event::Change::Redeemed(_)) {
            budget::release(
                item,
                budget::day(item.issued_at_ms),
                offer.gesture_value_cents,
            );
        }
        item.accepted = false;
        let offer_id = item.offer_id.clone();
        vec![self.record(key, item, &offer_id, step, change, now, others)]
    }

    /// Ends the live offer by an answer or its expiry. The episode it answered gets no other
    /// offer; when it was an accepted offer of an earlier episode (kept as promised), the
    /// current episode may have one now.
    fn answered(
        &self,
        key: &str,
        item: &mut OfferItem,
        step: &str,
        change: offer_event::Change,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Vec<Output> {
        let current = episode_of(&item.offer_id) == Some(item.stockout_id.as_str());
        let mut out = self.end(key, item, step, change, now, others);
        if current {
            item.episode_answered = true;
        } else {
            out.extend(self.try_offer(key, item, now, others));
        }
        out
    }

    /// Withdraws the live offer unless staff accepted it: an accepted offer is a promise to a
    /// customer and stays live until it is redeemed, declined or expires.
    fn withdraw(
        &self,
        key: &str,
        item: &mut OfferItem,
        reason: String,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Vec<Output> {
        if item.accepted {
            return Vec::new();
        }
        let change = offer_event::Change::Withdrawn(Withdrawn { reason });
        self.end(key, item, "withdrawn", change, now, others)
    }

    /// What falls due at `now` for `key` itself: its live offer's expiry, its live shelf
    /// check's expiry.
    fn timers(
        &self,
        key: &str,
        item: &mut OfferItem,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if item.offer.as_ref().is_some_and(|o| now >= o.expires_at_ms) {
            out.extend(self.answered(
                key,
                item,
                "expired",
                offer_event::Change::Expired(Expired {}),
                now,
                others,
            ));
        }
        out.extend(checks::expire_if_due(key, item, now));
        out
    }

    /// Tries to answer the open episode of `key` with an offer at time `now`.
    fn try_offer(
        &self,
        key: &str,
        item: &mut OfferItem,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Vec<Output> {
        // A suspected stockout gets a shelf check, never an offer (see `checks`): staff who
        // find the shelf empty book a count of 0, and the confirmed stockout gets the offer.
        if !item.episode_open || item.suspected || item.offer.is_some() || item.episode_answered {
            return Vec::new();
        }
        let (store, sku) = split_key(key);
        let on_hand = |s: &str| {
            if s == sku {
                item.on_hand
            } else {
                others
                    .get(&validate::key(store, s))
                    .map_or(0, |o| o.on_hand)
            }
        };
        let tau = self.policy.tau_ms();
        let min_support = self.policy.complement_min_support;
        let store_item = others.get(&validate::key(store, "")).unwrap_or_default();
        let item_snapshot = item.clone();
        let learned = |s: &str| {
            let own = if s == sku {
                Some(item_snapshot.clone())
            } else {
                others.get(&validate::key(store, s))
            };
            own.map(|o| {
                complements::lifts(
                    &o,
                    &store_item,
                    |b| {
                        others
                            .get(&validate::key(store, b))
                            .map(|x| (x.baskets, x.learned_at_ms))
                            .or_else(|| {
                                (b == sku)
                                    .then_some((item_snapshot.baskets, item_snapshot.learned_at_ms))
                            })
                    },
                    min_support,
                    now,
                    tau,
                )
            })
            .unwrap_or_default()
        };
        let shelf = Shelf {
            on_hand: &on_hand,
            budget_cents: self.policy.budget_of(store),
            committed_cents: self.committed(store, key, item, now, others),
            complements: &learned,
        };
        let evidence = item.evidence.clone().unwrap_or_default();
        let checked_empty = checks::found_empty_before(item, &item.stockout_id, store, sku);
        let next_id = match item.offer_seq + 1 {
            1 => format!("{}/offer", item.stockout_id),
            n => format!("{}/offer-{n}", item.stockout_id),
        };
        match compose(
            &self.policy,
            &self.catalog.read(),
            sku,
            &item.stockout_id,
            &evidence,
            checked_empty,
            now,
            &shelf,
        ) {
            Ok(offer) => {
                item.offer_seq += 1;
                item.offer_id = next_id.clone();
                budget::commit(item, budget::day(now), offer.gesture_value_cents);
                item.offer = Some(offer.clone());
                item.issued_at_ms = now;
                item.accepted = false;
                item.no_offer_reason.clear();
                let change = offer_event::Change::Issued(Issued { offer: Some(offer) });
                vec![self.record(key, item, &next_id, "issued", change, now, others)]
            }
            Err(why) => {
                if item.no_offer_reason == why.reason {
                    return Vec::new();
                }
                info!(
                    stockout_id = item.stockout_id,
                    why = why.reason,
                    "no offer (yet)"
                );
                item.no_offer_reason = why.reason.clone();
                let step = format!("not-offered-{:08x}", fnv(&why.reason) as u32);
                let change = offer_event::Change::NotOffered(NotOffered {
                    cause: why.cause as i32,
                    reason: why.reason,
                });
                vec![self.record(key, item, &next_id, &step, change, now, others)]
            }
        }
    }
}

/// The episode an offer id belongs to: `<stockout_id>/offer` or `<stockout_id>/offer-<n>`.
fn episode_of(offer_id: &str) -> Option<&str> {
    offer_id.rsplit_once("/offer").map(|(episode, _)| episode)
}

pub(crate) fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn size_text(p: &Product) -> String {
    p.size
        .as_ref()
        .map_or_else(String::new, |s| format!("{} {}", s.value, s.unit))
}

pub(crate) fn product_ref(p: &Product) -> ProductRef {
    ProductRef {
        sku: p.sku.clone(),
        name: p.name.clone(),
        size: size_text(p),
        price_cents: p.price_cents,
        location: p.location.clone(),
    }
}

/// A short code for the till, derived from the episode so a replay yields the same code.
pub fn redemption_code(stockout_id: &str) -> String {
    const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZ";
    let h = fnv(stockout_id);
    (0..4)
        .map(|i| ALPHABET[((h >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// Builds the offer for the open (confirmed) episode `stockout_id` of `sku` at time `now`: the
/// best substitute and the most generous gesture the policy and the store's remaining budget
/// allow, or why there is none. `checked_empty`: staff found the shelf empty on a shelf check
/// (the reason says so).
#[allow(clippy::too_many_arguments)]
pub fn compose(
    policy: &Policy,
    catalog: &HashMap<String, Product>,
    sku: &str,
    stockout_id: &str,
    evidence: &Evidence,
    checked_empty: bool,
    now: i64,
    shelf: &Shelf<'_>,
) -> Result<Offer, NoOffer> {
    let no_sub = |reason: String| NoOffer {
        cause: not_offered::Cause::NoSubstitute,
        reason,
    };
    let original = catalog
        .get(sku)
        .ok_or_else(|| no_sub(format!("unknown SKU {sku}")))?;
    let candidates = substitute::ranked(original, catalog.values(), |s| {
        (shelf.on_hand)(s) >= policy.min_substitute_units
    });
    if candidates.is_empty() {
        return Err(no_sub(format!(
            "no substitute for {} in stock with at least {} units that keeps its hard attributes",
            original.sku, policy.min_substitute_units
        )));
    }
    let gp = GesturePolicy {
        free_after_failures: policy.free_after_failures,
        max_gesture_cents: policy.max_gesture_cents,
    };
    let remaining = shelf.budget_cents - shelf.committed_cents;
    let mut within_cap = false;
    let mut chosen = None;
    'outer: for sub in &candidates {
        for (gesture, value) in gesture::options(
            gp,
            evidence.failed_reorders_7d,
            original.price_cents,
            sub.price_cents,
        ) {
            within_cap = true;
            if value <= remaining {
                chosen = Some((*sub, gesture, value));
                break 'outer;
            }
        }
    }
    let Some((sub, gesture, value)) = chosen else {
        return Err(if within_cap {
            NoOffer {
                cause: not_offered::Cause::BudgetExhausted,
                reason: format!(
                    "gesture budget of the day spent: {} of {} cents committed",
                    shelf.committed_cents, shelf.budget_cents
                ),
            }
        } else {
            no_sub(format!(
                "every substitute's gesture exceeds the cap of {} cents",
                policy.max_gesture_cents
            ))
        });
    };
    let code = redemption_code(stockout_id);
    let give = match gesture {
        Gesture::Free => "at no extra charge".to_owned(),
        _ => format!("for the price of the {}", size_text(original)),
    };
    let why = match (
        checked_empty,
        evidence.failed_reorders_7d,
        evidence.last_failure_reason.as_str(),
    ) {
        (true, 0, _) => "staff found the shelf empty on a shelf check".to_owned(),
        (true, n, _) => {
            format!("staff found the shelf empty on a shelf check, warehouse failed {n}x")
        }
        // Confirmed without a failed reorder: the goods are due beyond the horizon, or a count
        // found a suspected shelf empty.
        (false, 0, _) if evidence.expected_restock_at_ms > 0 => format!(
            "goods expected only {}",
            shelfguard_events::time::utc_words(evidence.expected_restock_at_ms)
        ),
        (false, 0, _) => "a count found the shelf empty".to_owned(),
        (false, n, "") => format!("warehouse failed {n}x"),
        (false, n, r) => format!("warehouse failed {n}x ({r})"),
    };
    let reason = format!(
        "{} {} is out, {why}. Give the customer the {} {} {give}. Code {code} at the till.",
        size_text(original),
        original.name,
        size_text(sub),
        sub.name
    );
    let mut candidates = (shelf.complements)(&original.sku);
    candidates.extend((shelf.complements)(&sub.sku));
    let mut picked = complements::pick(
        candidates,
        &[&original.sku, &sub.sku],
        |s| (shelf.on_hand)(s) > 0 && catalog.contains_key(s),
        3,
    );
    // Nothing learned yet (a new store or product): the catalogue's curated suggestions.
    if picked.is_empty() {
        let curated = original
            .complements
            .iter()
            .chain(&sub.complements)
            .map(|s| (s.clone(), 1.0))
            .collect();
        picked = complements::pick(
            curated,
            &[&original.sku, &sub.sku],
            |s| (shelf.on_hand)(s) > 0 && catalog.contains_key(s),
            3,
        );
    }
    Ok(Offer {
        original: Some(product_ref(original)),
        substitute: Some(product_ref(sub)),
        gesture: gesture as i32,
        gesture_value_cents: value,
        reason,
        redemption_code: code,
        expires_at_ms: now + policy.offer_ttl_minutes * 60_000,
        complements: picked
            .iter()
            .filter_map(|s| catalog.get(s))
            .map(product_ref)
            .collect(),
        failed_reorders: evidence.failed_reorders_7d,
        // Suspected stockouts get a shelf check instead of an offer.
        suspected: false,
    })
}

impl Processor for Offers {
    type Event = Event;
    type State = OfferItem;

    fn name(&self) -> &'static str {
        SERVICE
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![
            topics::STORE_SALES,
            topics::INVENTORY_STOCK_LEVELS,
            topics::STOCKOUTS,
            topics::FLOOR_RESPONSES,
        ]
    }
    fn changelog(&self) -> &'static str {
        topics::OFFERS_STATE
    }
    fn dead_letter(&self) -> &'static str {
        topics::OFFERS_DLQ
    }

    fn decode(&self, topic: &str, payload: &[u8]) -> Result<Event, Rejected> {
        let known = |sku: &str| self.catalog.read().contains_key(sku);
        match topic {
            topics::STOCKOUTS => Ok(Event::Stockout(validate::stockout(payload)?)),
            topics::INVENTORY_STOCK_LEVELS => Ok(Event::Level(validate::stock_level(payload)?)),
            topics::STORE_SALES => {
                let s = validate::sale(payload)?;
                // Unknown SKUs are inventory's to dead-letter; here they are only not learned.
                let skus: BTreeSet<String> = s
                    .lines
                    .iter()
                    .filter(|l| known(&l.sku))
                    .map(|l| l.sku.clone())
                    .collect();
                Ok(Event::Sale(s, skus.into_iter().collect()))
            }
            topics::FLOOR_RESPONSES => {
                let r = validate::staff_response(payload)?;
                if !known(&r.sku) {
                    return Err(Rejected(format!("unknown SKU {}", r.sku)));
                }
                Ok(Event::Response(r))
            }
            other => Err(Rejected(format!(
                "not an input of offer-generator: {other}"
            ))),
        }
    }

    fn event_id<'e>(&self, event: &'e Event) -> &'e str {
        match event {
            Event::Stockout(s) => &s.event_id,
            Event::Level(l) => &l.event_id,
            Event::Sale(s, _) => &s.event_id,
            Event::Response(r) => &r.event_id,
        }
    }

    fn store_id<'e>(&self, event: &'e Event) -> &'e str {
        event.store_id()
    }
    fn occurred_at_ms(&self, event: &Event) -> i64 {
        event.occurred_at_ms()
    }

    /// The event's own keys first, then the keys it changes through an index: waiting
    /// episodes of the product's family and offers whose substitute it is.
    fn keys(&self, event: &Event) -> Vec<String> {
        let store = event.store_id();
        let mut keys: Vec<String> = match event {
            Event::Stockout(s) => vec![validate::key(store, &s.sku)],
            Event::Response(r) => vec![validate::key(store, &r.sku)],
            Event::Sale(_, skus) => std::iter::once(validate::key(store, ""))
                .chain(skus.iter().map(|s| validate::key(store, s)))
                .collect(),
            Event::Level(l) => {
                let own = validate::key(store, &l.sku);
                let waiting = self
                    .family_key(store, &l.sku)
                    .and_then(|fk| self.waiting.get(&fk))
                    .into_iter()
                    .flatten();
                let using = self.by_substitute.get(&own).into_iter().flatten();
                std::iter::once(own.clone())
                    .chain(using.cloned())
                    .chain(waiting.cloned())
                    .collect()
            }
        };
        let mut seen = BTreeSet::new();
        keys.retain(|k| seen.insert(k.clone()));
        keys
    }

    /// Offers and shelf checks of the store that expired, by the event's time.
    fn due_keys(&self, event: &Event) -> Vec<String> {
        self.timers
            .due(event.store_id(), event.occurred_at_ms())
            .map(str::to_owned)
            .collect()
    }

    /// A stockout of a SKU the catalogue does not have yet waits for its product (it needs the
    /// product to pick a substitute).
    fn waiting(&self, _key: &str, event: &Event) -> Option<String> {
        match event {
            Event::Stockout(s) if !self.catalog.read().contains_key(&s.sku) => {
                Some(format!("SKU {} is not in the catalogue yet", s.sku))
            }
            _ => None,
        }
    }
    fn tables_version(&self) -> u64 {
        self.catalog.version()
    }
    fn hold_grace_ms(&self) -> i64 {
        self.policy.hold.grace_ms()
    }

    fn on_due(
        &mut self,
        key: &str,
        item: &mut OfferItem,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let out = self.timers(key, item, now, others);
        self.index(key, item);
        Ok(out)
    }

    fn apply(
        &mut self,
        key: &str,
        item: &mut OfferItem,
        event: &Event,
        others: &dyn View<OfferItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let (_, sku) = split_key(key);
        let now = event.occurred_at_ms();
        // An answer must name the live offer (or the live shelf check) of this key (checked
        // before anything changes).
        if let Event::Response(r) = event
            && !r.check_id.is_empty()
        {
            checks::accepts(key, item, r, now)?;
        } else if let Event::Response(r) = event {
            let live = item
                .offer
                .as_ref()
                .filter(|o| now < o.expires_at_ms && item.offer_id == r.offer_id);
            if live.is_none() {
                return Err(Rejected(format!(
                    "offer {} is not live (live offer of {key}: {})",
                    r.offer_id,
                    if item.offer.is_some() {
                        item.offer_id.as_str()
                    } else {
                        "none"
                    }
                )));
            }
        }
        let mut out = self.timers(key, item, now, others);
        match event {
            Event::Sale(_, skus) => {
                let tau = self.policy.tau_ms();
                if sku.is_empty() {
                    complements::learn(item, [], now, tau);
                } else if skus.iter().any(|s| s == sku) {
                    let rest = skus.iter().map(String::as_str).filter(|s| *s != sku);
                    complements::learn(item, rest, now, tau);
                }
            }
            Event::Level(l) if l.sku == sku => {
                item.on_hand = l.on_hand;
                // The episode closed while the shelf was still empty (goods only expected): the
                // offer stayed; stock on the shelf (or a sale of it) ends it now.
                if !item.episode_open && item.offer.is_some() && (l.on_hand > 0 || l.sold > 0) {
                    let reason = format!("{} back on the shelf (on-hand {})", l.sku, l.on_hand);
                    out.extend(self.withdraw(key, item, reason, now, others));
                }
            }
            Event::Level(l) => {
                let sub_gone = item
                    .offer
                    .as_ref()
                    .and_then(|o| o.substitute.as_ref())
                    .is_some_and(|s| s.sku == l.sku && l.on_hand < 1);
                if sub_gone {
                    let reason = format!("the substitute {} ran out", l.sku);
                    out.extend(self.withdraw(key, item, reason, now, others));
                }
                // A waiting episode (or one whose substitute just ran out) may now get an offer.
                out.extend(self.try_offer(key, item, now, others));
            }
            Event::Stockout(s) if s.sku != sku => {
                return Err(Rejected(format!(
                    "stockout {} of {} reached the key {key}",
                    s.stockout_id, s.sku
                )));
            }
            Event::Stockout(s) => match &s.change {
                // Episodes are numbered: an older one than this key's (a late copy) is refused
                // rather than adopted again, which would re-publish its records with new contents.
                Some(Change::Opened(_))
                    if !item.stockout_id.is_empty()
                        && validate::stockout_seq(&s.stockout_id, &s.store_id, &s.sku)
                            < validate::stockout_seq(&item.stockout_id, &s.store_id, &s.sku) =>
                {
                    return Err(Rejected(format!(
                        "stockout {} is older than {}, this key's episode",
                        s.stockout_id, item.stockout_id
                    )));
                }
                Some(Change::Opened(o)) if item.stockout_id != s.stockout_id => {
                    let reason = format!("superseded by stockout {}", s.stockout_id);
                    out.extend(checks::withdraw(key, item, reason.clone(), now));
                    out.extend(self.withdraw(key, item, reason, now, others));
                    item.stockout_id = s.stockout_id.clone();
                    item.episode_open = true;
                    item.evidence = o.evidence.clone();
                    item.suspected = o.kind == Kind::Suspected as i32;
                    item.episode_opened_at_ms = s.occurred_at_ms;
                    if item.offer.is_none() {
                        item.offer_id.clear();
                    }
                    item.offer_seq = 0;
                    item.episode_answered = false;
                    item.no_offer_reason.clear();
                    if item.suspected {
                        // `waiting` holds the stockout until its product is in the catalogue.
                        if let Some(p) = self.catalog.read().get(sku) {
                            let minutes = self.policy.check_expiry_minutes;
                            out.extend(checks::request(key, item, p, now, minutes));
                        }
                    } else {
                        out.extend(self.try_offer(key, item, now, others));
                    }
                }
                Some(Change::Closed(c))
                    if item.stockout_id == s.stockout_id && item.episode_open =>
                {
                    item.episode_open = false;
                    item.no_offer_reason.clear();
                    // A check nobody answered yet is no longer needed.
                    let reason = format!("stockout over: {}", c.reason);
                    out.extend(checks::withdraw(key, item, reason, now));
                    // Withdrawn only once stock is back on the shelf: an episode that closed
                    // because goods are on their way leaves the customer's shelf empty still.
                    if c.on_hand > 0 {
                        let reason = format!("stockout over: {}", c.reason);
                        out.extend(self.withdraw(key, item, reason, now, others));
                    }
                }
                _ => {}
            },
            Event::Response(r) if !r.check_id.is_empty() => {
                // `checks::accepts` found this key's live check under the answer's check id.
                out.extend(checks::answer(key, item, r, now));
            }
            Event::Response(r) => {
                // `keys` sends an answer only to its SKU's key, and the check above found this
                // key's live offer under the answer's offer id.
                let offer = item.offer.clone().unwrap_or_default();
                match Answer::try_from(r.answer) {
                    Ok(Answer::Accept) if item.accepted => {
                        info!(offer_id = r.offer_id, "offer already accepted");
                    }
                    Ok(Answer::Accept) => {
                        item.accepted = true;
                        let change = offer_event::Change::Accepted(Accepted { by: r.by.clone() });
                        let offer_id = item.offer_id.clone();
                        out.push(
                            self.record(key, item, &offer_id, "accepted", change, now, others),
                        );
                    }
                    Ok(Answer::Decline) => {
                        let change = offer_event::Change::Declined(Declined {
                            reason: r.reason.clone(),
                            by: r.by.clone(),
                        });
                        out.extend(self.answered(key, item, "declined", change, now, others));
                    }
                    Ok(Answer::Redeem) => {
                        let change = offer_event::Change::Redeemed(Redeemed {
                            by: r.by.clone(),
                            substitute_sku: offer.substitute.map(|s| s.sku).unwrap_or_default(),
                            quantity: 1,
                            gesture_value_cents: offer.gesture_value_cents,
                        });
                        out.extend(self.answered(key, item, "redeemed", change, now, others));
                    }
                    Ok(Answer::Unspecified) | Err(_) => {}
                }
            }
        }
        self.index(key, item);
        Ok(out)
    }

    fn restored(&mut self, key: &str, item: &OfferItem) {
        self.index(key, item);
    }
}

#[cfg(test)]
mod tests;
