//! One offer per stockout episode: issue it when the episode opens, withdraw it when it closes.
use std::collections::{BTreeSet, HashMap};

use clap::Args;
use shelfguard_events::catalog::Product;
use shelfguard_events::floor::{
    Gesture, Issued, Offer, OfferEvent, ProductRef, Withdrawn, offer_event,
};
use shelfguard_events::state::OfferItem;
use shelfguard_events::stockout::{Evidence, StockoutEvent, stockout_event::Change};
use shelfguard_events::topics;
use shelfguard_events::validate::{self, split_key};
use shelfguard_runtime::processor::View;
use shelfguard_runtime::table::Table;
use shelfguard_runtime::{Output, Processor, Rejected};
use tracing::info;

use crate::gesture::{self, GesturePolicy};
use crate::substitute;

pub const SERVICE: &str = "offer-generator";

#[derive(Debug, Clone, Args)]
pub struct Policy {
    /// A substitute needs at least this many units on hand in the store.
    #[arg(long, env = "MIN_SUBSTITUTE_UNITS", default_value_t = 2)]
    pub min_substitute_units: i32,
    /// From this many failed reorders in 7 days the substitute is given free.
    #[arg(long, env = "FREE_AFTER_FAILURES", default_value_t = 3)]
    pub free_after_failures: i32,
    /// The most one offer may give away, in cents.
    #[arg(long, env = "MAX_GESTURE_CENTS", default_value_t = 2000)]
    pub max_gesture_cents: i64,
    /// How long an offer stays valid, in minutes.
    #[arg(long, env = "OFFER_TTL_MINUTES", default_value_t = 240)]
    pub offer_ttl_minutes: i64,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            min_substitute_units: 2,
            free_after_failures: 3,
            max_gesture_cents: 2000,
            offer_ttl_minutes: 240,
        }
    }
}

/// A validated input.
#[derive(Debug)]
pub enum Event {
    Stockout(StockoutEvent),
    Level(shelfguard_events::inventory::StockLevel),
}

pub struct Offers {
    policy: Policy,
    catalog: Table<Product>,
    /// Open episodes still without an offer, by `store/family`: a stock change of a product of
    /// that family in that store is also applied to them (a substitute may now qualify). An index
    /// over the state, rebuilt on restore; a stale entry costs one look, nothing more.
    waiting: HashMap<String, BTreeSet<String>>,
}

impl Offers {
    pub fn new(policy: Policy, catalog: Table<Product>) -> Self {
        Self {
            policy,
            catalog,
            waiting: HashMap::new(),
        }
    }

    fn family_key(&self, store: &str, sku: &str) -> Option<String> {
        self.catalog
            .read()
            .get(sku)
            .map(|p| format!("{store}/{}", p.family))
    }

    /// Keeps `waiting` in step with one key's state.
    fn index(&mut self, key: &str, item: &OfferItem) {
        let (store, sku) = split_key(key);
        let Some(fk) = self.family_key(store, sku) else {
            return;
        };
        if item.episode_open && item.offer.is_none() {
            self.waiting.entry(fk).or_default().insert(key.to_owned());
        } else if let Some(set) = self.waiting.get_mut(&fk) {
            set.remove(key);
            if set.is_empty() {
                self.waiting.remove(&fk);
            }
        }
    }

    /// Tries to answer the open episode of `key` with an offer at time `now`.
    fn try_offer(
        &self,
        key: &str,
        item: &mut OfferItem,
        now: i64,
        others: &dyn View<OfferItem>,
    ) -> Vec<Output> {
        let (store, sku) = split_key(key);
        let on_hand = |s: &str| {
            others
                .get(&validate::key(store, s))
                .map_or(0, |o| o.on_hand)
        };
        let evidence = item.evidence.clone().unwrap_or_default();
        match compose(
            &self.policy,
            &self.catalog.read(),
            sku,
            &item.stockout_id,
            &evidence,
            now,
            on_hand,
        ) {
            Ok(offer) => {
                let offer_id = format!("{}/offer", item.stockout_id);
                item.offer_id = offer_id.clone();
                item.offer = Some(offer.clone());
                item.issued_at_ms = now;
                item.no_offer_reason.clear();
                let e = OfferEvent {
                    event_id: format!("{offer_id}:issued"),
                    occurred_at_ms: now,
                    store_id: store.to_owned(),
                    offer_id,
                    stockout_id: item.stockout_id.clone(),
                    sku: sku.to_owned(),
                    budget_cents: 0,
                    budget_committed_cents: 0,
                    change: Some(offer_event::Change::Issued(Issued { offer: Some(offer) })),
                };
                vec![Output::new(topics::FLOOR_OFFERS, store, &e)]
            }
            Err(why) => {
                if item.no_offer_reason != why {
                    info!(stockout_id = item.stockout_id, why, "no offer (yet)");
                }
                item.no_offer_reason = why;
                Vec::new()
            }
        }
    }
}

fn size_text(p: &Product) -> String {
    p.size
        .as_ref()
        .map_or_else(String::new, |s| format!("{} {}", s.value, s.unit))
}

fn product_ref(p: &Product) -> ProductRef {
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
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in stockout_id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    (0..4)
        .map(|i| ALPHABET[((h >> (i * 5)) & 31) as usize] as char)
        .collect()
}

/// Builds the offer for the open episode `stockout_id` of `sku` at time `now`, or says why
/// there is none.
pub fn compose(
    policy: &Policy,
    catalog: &std::collections::HashMap<String, Product>,
    sku: &str,
    stockout_id: &str,
    evidence: &Evidence,
    now: i64,
    on_hand: impl Fn(&str) -> i32,
) -> Result<Offer, String> {
    let original = catalog
        .get(sku)
        .ok_or_else(|| format!("unknown SKU {sku}"))?;
    let sub = substitute::best(original, catalog.values(), |sku| {
        on_hand(sku) >= policy.min_substitute_units
    })
    .ok_or_else(|| {
        format!(
            "no substitute for {} in stock with at least {} units",
            original.sku, policy.min_substitute_units
        )
    })?;
    let gp = GesturePolicy {
        free_after_failures: policy.free_after_failures,
        max_gesture_cents: policy.max_gesture_cents,
    };
    let (gesture, value) = gesture::choose(
        gp,
        evidence.failed_reorders_7d,
        original.price_cents,
        sub.price_cents,
    )?;
    let code = redemption_code(stockout_id);
    let why = match (
        evidence.failed_reorders_7d,
        evidence.last_failure_reason.as_str(),
    ) {
        (n, "") => format!("warehouse failed {n}x"),
        (n, r) => format!("warehouse failed {n}x: {r}"),
    };
    let give = match gesture {
        Gesture::Free => "free of charge".to_owned(),
        _ => format!("at the {} price", size_text(original)),
    };
    let reason = format!(
        "{} {} is out, {why}. Give the customer the {} {} {give}. Code {code} at the till.",
        size_text(original),
        original.name,
        size_text(sub),
        sub.name
    );
    let mut complements: Vec<ProductRef> = Vec::new();
    for sku in original.complements.iter().chain(&sub.complements) {
        if complements.len() == 3 {
            break;
        }
        if sku == &original.sku
            || sku == &sub.sku
            || complements.iter().any(|c| &c.sku == sku)
            || on_hand(sku) <= 0
        {
            continue;
        }
        if let Some(p) = catalog.get(sku) {
            complements.push(product_ref(p));
        }
    }
    Ok(Offer {
        original: Some(product_ref(original)),
        substitute: Some(product_ref(sub)),
        gesture: gesture as i32,
        gesture_value_cents: value,
        reason,
        redemption_code: code,
        expires_at_ms: now + policy.offer_ttl_minutes * 60_000,
        complements,
        failed_reorders: evidence.failed_reorders_7d,
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
        vec![topics::INVENTORY_STOCK_LEVELS, topics::STOCKOUTS]
    }
    fn changelog(&self) -> &'static str {
        topics::OFFERS_STATE
    }
    fn dead_letter(&self) -> &'static str {
        topics::OFFERS_DLQ
    }

    fn decode(&self, topic: &str, payload: &[u8]) -> Result<Event, Rejected> {
        match topic {
            topics::STOCKOUTS => {
                let s = validate::stockout(payload)?;
                if !self.catalog.read().contains_key(&s.sku) {
                    return Err(Rejected(format!("unknown SKU {}", s.sku)));
                }
                Ok(Event::Stockout(s))
            }
            topics::INVENTORY_STOCK_LEVELS => Ok(Event::Level(validate::stock_level(payload)?)),
            other => Err(Rejected(format!(
                "not an input of offer-generator: {other}"
            ))),
        }
    }

    fn event_id<'e>(&self, event: &'e Event) -> &'e str {
        match event {
            Event::Stockout(s) => &s.event_id,
            Event::Level(l) => &l.event_id,
        }
    }

    fn keys(&self, event: &Event) -> Vec<String> {
        match event {
            Event::Stockout(s) => vec![validate::key(&s.store_id, &s.sku)],
            Event::Level(l) => {
                let own = validate::key(&l.store_id, &l.sku);
                let waiting = self
                    .family_key(&l.store_id, &l.sku)
                    .and_then(|fk| self.waiting.get(&fk));
                // The product's own key first, so the waiting episodes see its new stock.
                std::iter::once(own.clone())
                    .chain(
                        waiting
                            .into_iter()
                            .flatten()
                            .filter(|k| **k != own)
                            .cloned(),
                    )
                    .collect()
            }
        }
    }

    fn apply(
        &mut self,
        key: &str,
        item: &mut OfferItem,
        event: &Event,
        others: &dyn View<OfferItem>,
    ) -> Result<Vec<Output>, Rejected> {
        let (store, sku) = split_key(key);
        let out = match event {
            Event::Level(l) if l.sku == sku => {
                item.on_hand = l.on_hand;
                Vec::new()
            }
            // Another product of the family changed stock: a waiting episode may now get its offer.
            Event::Level(l) if item.episode_open && item.offer.is_none() => {
                self.try_offer(key, item, l.occurred_at_ms, others)
            }
            Event::Level(_) => Vec::new(),
            Event::Stockout(s) => match &s.change {
                Some(Change::Opened(o)) if item.stockout_id != s.stockout_id => {
                    item.stockout_id = s.stockout_id.clone();
                    item.episode_open = true;
                    item.evidence = o.evidence.clone();
                    item.offer = None;
                    item.offer_id.clear();
                    self.try_offer(key, item, s.occurred_at_ms, others)
                }
                Some(Change::Closed(c))
                    if item.stockout_id == s.stockout_id && item.episode_open =>
                {
                    item.episode_open = false;
                    item.no_offer_reason.clear();
                    match item.offer.take() {
                        Some(_) => {
                            let e = OfferEvent {
                                event_id: format!("{}:withdrawn", item.offer_id),
                                occurred_at_ms: s.occurred_at_ms,
                                store_id: store.to_owned(),
                                offer_id: item.offer_id.clone(),
                                stockout_id: s.stockout_id.clone(),
                                sku: s.sku.clone(),
                                budget_cents: 0,
                                budget_committed_cents: 0,
                                change: Some(offer_event::Change::Withdrawn(Withdrawn {
                                    reason: format!("stockout over: {}", c.reason),
                                })),
                            };
                            vec![Output::new(topics::FLOOR_OFFERS, store, &e)]
                        }
                        None => Vec::new(),
                    }
                }
                _ => Vec::new(),
            },
        };
        self.index(key, item);
        Ok(out)
    }

    fn restored(&mut self, key: &str, item: &OfferItem) {
        self.index(key, item);
    }
}

#[cfg(test)]
mod tests;
