//! The live offers of every store, rebuilt from `floor.offers.v1` (pure: events and the clock in,
//! per-store live offers and the changes to push out).
//!
//! An offer is live from `Issued` until `Withdrawn`, `Expired`, `Redeemed` or `Declined`, or until
//! its `expires_at_ms` passes (even before the `Expired` event arrives). `Accepted` keeps it live,
//! marked accepted. `NotOffered` is not an offer and is ignored. Delivery is at least once, so
//! events are de-duplicated on `event_id`.
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use shelfguard_events::floor::{Gesture, OfferEvent, ProductRef, offer_event::Change};

/// A product as staff see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Product {
    /// Typed at the till and matched by store systems.
    pub sku: String,
    /// What is on the label.
    pub name: String,
    /// e.g. "14 oz": the difference between original and substitute is often only the size.
    pub size: String,
    /// Shelf price, to explain the gesture.
    pub price_cents: i64,
    /// Where staff find it ("Aisle 7, shelf 3").
    pub location: String,
}

impl From<&ProductRef> for Product {
    fn from(p: &ProductRef) -> Self {
        Self {
            sku: p.sku.clone(),
            name: p.name.clone(),
            size: p.size.clone(),
            price_cents: p.price_cents,
            location: p.location.clone(),
        }
    }
}

/// A live offer, as the console shows it and the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Card {
    /// The offer answers (`POST .../offers/{offer_id}/answer`) refer to.
    pub offer_id: String,
    /// Scope of the card; checked against the caller's token.
    pub store_id: String,
    /// The stockout episode behind the offer, for store systems.
    pub stockout_id: String,
    /// The original's SKU, echoed in the staff response.
    pub sku: String,
    /// The product the shopper asked for (out of stock).
    pub original: Option<Product>,
    /// The product to give instead, and where it is.
    pub substitute: Option<Product>,
    /// `free` or `at_original_price`.
    pub gesture: &'static str,
    /// What the store gives away, in cents.
    pub gesture_value_cents: i64,
    /// One line in plain words from offer-generator.
    pub reason: String,
    /// Typed at the till.
    pub redemption_code: String,
    /// After this the offer is gone.
    pub expires_at_ms: i64,
    /// Items worth suggesting alongside.
    pub complements: Vec<Product>,
    /// Failed reorders of the original in the last 7 days.
    pub failed_reorders: i32,
    /// The stockout is suspected, not confirmed: staff may check the shelf first.
    pub suspected: bool,
    /// When the offer was issued.
    pub issued_at_ms: i64,
    /// `open`, or `accepted` once a member of staff took it to a shopper.
    pub status: &'static str,
    /// Who accepted it (empty while open).
    pub accepted_by: String,
}

/// Why an offer left the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    Withdrawn,
    Expired,
    Redeemed,
    Declined,
}

/// A change of one store's live offers, pushed to its consoles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Update {
    /// A new or changed card (issued, accepted).
    Upsert { card: Box<Card> },
    /// The card is gone.
    Remove {
        /// Which card.
        offer_id: String,
        /// Why, for the console's message.
        ended: Ended,
        /// Details in words (withdrawal or decline reason), may be empty.
        detail: String,
    },
}

/// How long an event id is remembered when its offer's expiry is unknown.
const FORGET_UNKNOWN_AFTER_MS: i64 = 24 * 3600 * 1000;

/// Live offers per store, and the event ids seen recently.
#[derive(Debug, Default)]
pub struct LiveView {
    /// store id → offer id → card; BTreeMap so snapshots come in a stable order.
    stores: HashMap<String, BTreeMap<String, Card>>,
    /// event id → when it may be forgotten (its offer's expiry: after that a duplicate changes
    /// nothing, since the offer is gone by time). Bounds memory to live and recent offers.
    seen: HashMap<String, i64>,
    /// offer id → expiry of offers that ended, so a late duplicate `Issued` cannot revive them.
    ended: HashMap<String, i64>,
}

impl LiveView {
    /// Applies one event at wall-clock `now_ms`; returns the store and the change to push out,
    /// if any (duplicates, `NotOffered` and events of unknown offers change nothing).
    pub fn apply(&mut self, e: &OfferEvent, now_ms: i64) -> Option<(String, Update)> {
        if self.seen.contains_key(&e.event_id) {
            return None;
        }
        let forget_at = self
            .expiry_of(&e.store_id, &e.offer_id)
            .or_else(|| issued_expiry(e))
            .unwrap_or(e.occurred_at_ms + FORGET_UNKNOWN_AFTER_MS);
        self.seen.insert(e.event_id.clone(), forget_at);
        let store = e.store_id.clone();
        let update = match e.change.as_ref()? {
            Change::Issued(i) => {
                let offer = i.offer.as_ref()?;
                if offer.expires_at_ms <= now_ms || self.ended.contains_key(&e.offer_id) {
                    return None;
                }
                let card = Card {
                    offer_id: e.offer_id.clone(),
                    store_id: e.store_id.clone(),
                    stockout_id: e.stockout_id.clone(),
                    sku: e.sku.clone(),
                    original: offer.original.as_ref().map(Product::from),
                    substitute: offer.substitute.as_ref().map(Product::from),
                    gesture: gesture_name(offer.gesture),
                    gesture_value_cents: offer.gesture_value_cents,
                    reason: offer.reason.clone(),
                    redemption_code: offer.redemption_code.clone(),
                    expires_at_ms: offer.expires_at_ms,
                    complements: offer.complements.iter().map(Product::from).collect(),
                    failed_reorders: offer.failed_reorders,
                    suspected: offer.suspected,
                    issued_at_ms: e.occurred_at_ms,
                    status: "open",
                    accepted_by: String::new(),
                };
                self.stores
                    .entry(store.clone())
                    .or_default()
                    .insert(card.offer_id.clone(), card.clone());
                Update::Upsert {
                    card: Box::new(card),
                }
            }
            Change::Accepted(a) => {
                let card = self.stores.get_mut(&store)?.get_mut(&e.offer_id)?;
                card.status = "accepted";
                card.accepted_by = a.by.clone();
                Update::Upsert {
                    card: Box::new(card.clone()),
                }
            }
            Change::Withdrawn(w) => self.end(e, Ended::Withdrawn, &w.reason)?,
            Change::Expired(_) => self.end(e, Ended::Expired, "")?,
            Change::Redeemed(r) => self.end(e, Ended::Redeemed, &r.by)?,
            Change::Declined(d) => self.end(e, Ended::Declined, &d.reason)?,
            Change::NotOffered(_) => return None,
        };
        Some((store, update))
    }

    /// Removes the offers whose expiry passed at `now_ms` and forgets old event ids; returns the
    /// removals to push out.
    pub fn expire(&mut self, now_ms: i64) -> Vec<(String, Update)> {
        let mut out = Vec::new();
        for (store, offers) in &mut self.stores {
            offers.retain(|id, card| {
                let live = card.expires_at_ms > now_ms;
                if !live {
                    out.push((
                        store.clone(),
                        Update::Remove {
                            offer_id: id.clone(),
                            ended: Ended::Expired,
                            detail: String::new(),
                        },
                    ));
                }
                live
            });
        }
        self.stores.retain(|_, offers| !offers.is_empty());
        self.seen.retain(|_, forget_at| *forget_at > now_ms);
        self.ended.retain(|_, forget_at| *forget_at > now_ms);
        out
    }

    /// The live offers of `store` at `now_ms`, oldest first.
    pub fn snapshot(&self, store: &str, now_ms: i64) -> Vec<Card> {
        let mut cards: Vec<Card> = self
            .stores
            .get(store)
            .map(|o| {
                o.values()
                    .filter(|c| c.expires_at_ms > now_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        cards.sort_by(|a, b| (a.issued_at_ms, &a.offer_id).cmp(&(b.issued_at_ms, &b.offer_id)));
        cards
    }

    /// The live offer `offer_id` of `store` at `now_ms`.
    pub fn get(&self, store: &str, offer_id: &str, now_ms: i64) -> Option<&Card> {
        self.stores
            .get(store)?
            .get(offer_id)
            .filter(|c| c.expires_at_ms > now_ms)
    }

    /// Live offers of all stores (a gauge).
    pub fn len(&self) -> usize {
        self.stores.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expiry_of(&self, store: &str, offer_id: &str) -> Option<i64> {
        self.stores
            .get(store)
            .and_then(|o| o.get(offer_id))
            .map(|c| c.expires_at_ms)
            .or_else(|| self.ended.get(offer_id).copied())
    }

    fn end(&mut self, e: &OfferEvent, ended: Ended, detail: &str) -> Option<Update> {
        let offers = self.stores.get_mut(&e.store_id);
        let card = offers.and_then(|o| o.remove(&e.offer_id));
        let forget_at = card
            .as_ref()
            .map_or(e.occurred_at_ms + FORGET_UNKNOWN_AFTER_MS, |c| {
                c.expires_at_ms
            });
        self.ended.insert(e.offer_id.clone(), forget_at);
        if self.stores.get(&e.store_id).is_some_and(BTreeMap::is_empty) {
            self.stores.remove(&e.store_id);
        }
        card.map(|_| Update::Remove {
            offer_id: e.offer_id.clone(),
            ended,
            detail: detail.to_owned(),
        })
    }
}

fn issued_expiry(e: &OfferEvent) -> Option<i64> {
    match e.change.as_ref()? {
        Change::Issued(i) => i.offer.as_ref().map(|o| o.expires_at_ms),
        _ => None,
    }
}

/// The gesture in the API's words.
pub fn gesture_name(g: i32) -> &'static str {
    match Gesture::try_from(g) {
        Ok(Gesture::Free) => "free",
        Ok(Gesture::AtOriginalPrice) => "at_original_price",
        _ => "unspecified",
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use shelfguard_events::floor::{
        Accepted, Declined, Expired, Issued, NotOffered, Offer, Redeemed, Withdrawn,
    };

    pub(crate) const NOW: i64 = 1_700_000_000_000;

    pub(crate) fn issued(store: &str, offer: &str, expires_at_ms: i64) -> OfferEvent {
        let p = |sku: &str, size: &str, price| ProductRef {
            sku: sku.into(),
            name: "Coco Gold Coconut Oil".into(),
            size: size.into(),
            price_cents: price,
            location: "Aisle 7, shelf 3".into(),
        };
        event(
            store,
            offer,
            "issued",
            Change::Issued(Issued {
                offer: Some(Offer {
                    original: Some(p("GOLD-14", "14 oz", 799)),
                    substitute: Some(p("GOLD-28", "28 oz", 1399)),
                    gesture: Gesture::Free as i32,
                    gesture_value_cents: 1399,
                    reason: "14 oz Coco Gold Coconut Oil is out, warehouse failed 3x.".into(),
                    redemption_code: "7F3K".into(),
                    expires_at_ms,
                    complements: vec![p("BREAD-1", "1 loaf", 299)],
                    failed_reorders: 3,
                    suspected: false,
                }),
            }),
        )
    }

    pub(crate) fn event(store: &str, offer: &str, step: &str, change: Change) -> OfferEvent {
        OfferEvent {
            event_id: format!("{offer}:{step}"),
            occurred_at_ms: NOW - 1000,
            store_id: store.into(),
            offer_id: offer.into(),
            stockout_id: format!("{store}/GOLD-14/S1"),
            sku: "GOLD-14".into(),
            budget_cents: 10_000,
            budget_committed_cents: 1399,
            change: Some(change),
        }
    }

    fn ids(v: &LiveView, store: &str, now: i64) -> Vec<String> {
        v.snapshot(store, now)
            .into_iter()
            .map(|c| c.offer_id)
            .collect()
    }

    #[test]
    fn issued_offers_are_live_per_store() {
        let mut v = LiveView::default();
        let (store, u) = v.apply(&issued("S1", "o1", NOW + 60_000), NOW).unwrap();
        assert_eq!(store, "S1");
        let Update::Upsert { card } = u else {
            panic!("{u:?}")
        };
        assert_eq!(card.redemption_code, "7F3K");
        assert_eq!(card.gesture, "free");
        assert_eq!(card.substitute.unwrap().size, "28 oz");
        assert_eq!(card.complements.len(), 1);
        assert_eq!(card.status, "open");
        v.apply(&issued("S2", "o2", NOW + 60_000), NOW).unwrap();
        assert_eq!(ids(&v, "S1", NOW), ["o1"]);
        assert_eq!(ids(&v, "S2", NOW), ["o2"]);
        assert!(ids(&v, "S3", NOW).is_empty());
        assert!(
            v.get("S2", "o1", NOW).is_none(),
            "no offer of another store"
        );
    }

    #[test]
    fn every_ending_removes_the_card_and_accepted_stays() {
        let endings = [
            (
                Change::Withdrawn(Withdrawn {
                    reason: "stock returned".into(),
                }),
                Ended::Withdrawn,
                "stock returned",
            ),
            (Change::Expired(Expired {}), Ended::Expired, ""),
            (
                Change::Declined(Declined {
                    reason: "customer left".into(),
                    by: "ana".into(),
                }),
                Ended::Declined,
                "customer left",
            ),
            (
                Change::Redeemed(Redeemed {
                    by: "till-3".into(),
                    substitute_sku: "GOLD-28".into(),
                    quantity: 1,
                    gesture_value_cents: 1399,
                }),
                Ended::Redeemed,
                "till-3",
            ),
        ];
        for (change, ended, detail) in endings {
            let mut v = LiveView::default();
            v.apply(&issued("S1", "o1", NOW + 60_000), NOW).unwrap();
            let (_, u) = v
                .apply(
                    &event(
                        "S1",
                        "o1",
                        "accepted",
                        Change::Accepted(Accepted { by: "ana".into() }),
                    ),
                    NOW,
                )
                .unwrap();
            let Update::Upsert { card } = u else {
                panic!("{u:?}")
            };
            assert_eq!(
                (card.status, card.accepted_by.as_str()),
                ("accepted", "ana")
            );
            assert_eq!(ids(&v, "S1", NOW), ["o1"], "accepted stays live");
            let (_, u) = v.apply(&event("S1", "o1", "end", change), NOW).unwrap();
            assert_eq!(
                u,
                Update::Remove {
                    offer_id: "o1".into(),
                    ended,
                    detail: detail.into()
                }
            );
            assert!(ids(&v, "S1", NOW).is_empty());
            assert!(v.is_empty());
        }
    }

    #[test]
    fn duplicates_change_nothing_and_cannot_revive_an_ended_offer() {
        let mut v = LiveView::default();
        let i = issued("S1", "o1", NOW + 60_000);
        assert!(v.apply(&i, NOW).is_some());
        assert!(v.apply(&i, NOW).is_none(), "same event_id twice");
        let acc = event(
            "S1",
            "o1",
            "accepted",
            Change::Accepted(Accepted { by: "ana".into() }),
        );
        assert!(v.apply(&acc, NOW).is_some());
        assert!(v.apply(&acc, NOW).is_none());
        let w = event(
            "S1",
            "o1",
            "withdrawn",
            Change::Withdrawn(Withdrawn { reason: "x".into() }),
        );
        assert!(v.apply(&w, NOW).is_some());
        assert!(v.apply(&i, NOW).is_none(), "a replayed issue stays ended");
        // Even once the event ids are forgotten, a duplicate issue has expired by then.
        v.expire(NOW + 60_001);
        assert!(v.apply(&i, NOW + 60_001).is_none());
        assert!(ids(&v, "S1", NOW + 60_001).is_empty());
    }

    #[test]
    fn offers_leave_when_their_expiry_passes_before_the_expired_event() {
        let mut v = LiveView::default();
        v.apply(&issued("S1", "o1", NOW + 10_000), NOW).unwrap();
        v.apply(&issued("S1", "o2", NOW + 20_000), NOW).unwrap();
        assert!(v.expire(NOW + 9_999).is_empty());
        assert_eq!(
            ids(&v, "S1", NOW + 10_000),
            ["o2"],
            "snapshot hides it at once"
        );
        assert!(v.get("S1", "o1", NOW + 10_000).is_none());
        let removed = v.expire(NOW + 10_000);
        assert_eq!(
            removed,
            [(
                "S1".to_string(),
                Update::Remove {
                    offer_id: "o1".into(),
                    ended: Ended::Expired,
                    detail: String::new()
                }
            )]
        );
        // The Expired event arriving later changes nothing.
        assert!(
            v.apply(
                &event("S1", "o1", "expired", Change::Expired(Expired {})),
                NOW + 10_001
            )
            .is_none()
        );
        // An offer replayed after its expiry never shows.
        assert!(v.apply(&issued("S1", "o3", NOW - 1), NOW).is_none());
    }

    #[test]
    fn not_offered_and_events_of_unknown_offers_are_ignored() {
        let mut v = LiveView::default();
        let n = event(
            "S1",
            "o9",
            "not-offered",
            Change::NotOffered(NotOffered {
                cause: 1,
                reason: "no substitute".into(),
            }),
        );
        assert!(v.apply(&n, NOW).is_none());
        let acc = event(
            "S1",
            "o9",
            "accepted",
            Change::Accepted(Accepted { by: "ana".into() }),
        );
        assert!(v.apply(&acc, NOW).is_none());
        assert!(v.is_empty());
    }
}
