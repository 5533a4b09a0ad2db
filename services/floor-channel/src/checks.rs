//! The live shelf checks of every store, rebuilt from `floor.checks.v1` (pure: events and the
//! clock in, per-store live checks and the changes to push out). The twin of [`crate::live`].
//!
//! A check is live from `Requested` until `Answered`, `Expired` or `Withdrawn`, or until its
//! `expires_at_ms` passes (even before the `Expired` event arrives). Delivery is at least once,
//! so events are de-duplicated on `event_id`; memory is bounded the same way as for offers (event
//! ids are forgotten once their check's expiry passed).
use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use shelfguard_events::floor::{ShelfCheckEvent, ShelfFinding, shelf_check_event::Change};

use crate::live::Product;

/// A live shelf check, as the console shows it and the API returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckCard {
    /// The check answers (`POST .../checks/{check_id}/answer`) refer to.
    pub check_id: String,
    /// Scope of the card; checked against the caller's token.
    pub store_id: String,
    /// The suspected stockout episode behind the check.
    pub stockout_id: String,
    /// The SKU to look for, echoed in the staff response.
    pub sku: String,
    /// The product to look for, with its location.
    pub product: Option<Product>,
    /// One line for staff, e.g. "Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3?".
    pub question: String,
    /// Why we ask, in words.
    pub reason: String,
    /// What inventory's books say is on hand.
    pub on_hand: i32,
    /// Unanswered, the check is gone after this (UTC ms).
    pub expires_at_ms: i64,
    /// When the check was requested.
    pub requested_at_ms: i64,
    /// Always `open`: a check leaves the live view once answered.
    pub status: &'static str,
}

/// Why a check left the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckEnded {
    Answered,
    Expired,
    Withdrawn,
}

/// A change of one store's live checks, pushed to its consoles (`event: check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CheckUpdate {
    /// A new check.
    Upsert { check: Box<CheckCard> },
    /// The check is gone.
    Remove {
        /// Which check.
        check_id: String,
        /// Why.
        ended: CheckEnded,
        /// For `answered`: `empty` or `stock_is_there`.
        #[serde(skip_serializing_if = "Option::is_none")]
        finding: Option<&'static str>,
        /// Who answered, or the withdrawal reason; may be empty.
        detail: String,
    },
}

/// How long an event id is remembered when its check's expiry is unknown.
const FORGET_UNKNOWN_AFTER_MS: i64 = 24 * 3600 * 1000;

/// Live checks per store, and the event ids seen recently.
#[derive(Debug, Default)]
pub struct LiveChecks {
    /// store id → check id → card.
    stores: HashMap<String, BTreeMap<String, CheckCard>>,
    /// event id → when it may be forgotten (its check's expiry).
    seen: HashMap<String, i64>,
    /// check id → expiry of checks that ended, so a late duplicate `Requested` cannot revive them.
    ended: HashMap<String, i64>,
}

impl LiveChecks {
    /// Applies one event at wall-clock `now_ms`; returns the store and the change to push out, if
    /// any (duplicates and events of unknown checks change nothing).
    pub fn apply(&mut self, e: &ShelfCheckEvent, now_ms: i64) -> Option<(String, CheckUpdate)> {
        if self.seen.contains_key(&e.event_id) {
            return None;
        }
        let forget_at = self
            .expiry_of(&e.store_id, &e.check_id)
            .or(match &e.change {
                Some(Change::Requested(r)) => Some(r.expires_at_ms),
                _ => None,
            })
            .unwrap_or(e.occurred_at_ms + FORGET_UNKNOWN_AFTER_MS);
        self.seen.insert(e.event_id.clone(), forget_at);
        let store = e.store_id.clone();
        let update = match e.change.as_ref()? {
            Change::Requested(r) => {
                if r.expires_at_ms <= now_ms || self.ended.contains_key(&e.check_id) {
                    return None;
                }
                let card = CheckCard {
                    check_id: e.check_id.clone(),
                    store_id: e.store_id.clone(),
                    stockout_id: e.stockout_id.clone(),
                    sku: e.sku.clone(),
                    product: r.product.as_ref().map(Product::from),
                    question: r.question.clone(),
                    reason: r.reason.clone(),
                    on_hand: r.on_hand,
                    expires_at_ms: r.expires_at_ms,
                    requested_at_ms: e.occurred_at_ms,
                    status: "open",
                };
                self.stores
                    .entry(store.clone())
                    .or_default()
                    .insert(card.check_id.clone(), card.clone());
                CheckUpdate::Upsert {
                    check: Box::new(card),
                }
            }
            Change::Answered(a) => self.end(
                e,
                CheckEnded::Answered,
                Some(finding_name(a.finding)),
                &a.by,
            )?,
            Change::Expired(_) => self.end(e, CheckEnded::Expired, None, "")?,
            Change::Withdrawn(w) => self.end(e, CheckEnded::Withdrawn, None, &w.reason)?,
        };
        Some((store, update))
    }

    /// Removes the checks whose expiry passed at `now_ms` and forgets old event ids; returns the
    /// removals to push out.
    pub fn expire(&mut self, now_ms: i64) -> Vec<(String, CheckUpdate)> {
        let mut out = Vec::new();
        for (store, checks) in &mut self.stores {
            checks.retain(|id, card| {
                let live = card.expires_at_ms > now_ms;
                if !live {
                    out.push((
                        store.clone(),
                        CheckUpdate::Remove {
                            check_id: id.clone(),
                            ended: CheckEnded::Expired,
                            finding: None,
                            detail: String::new(),
                        },
                    ));
                }
                live
            });
        }
        self.stores.retain(|_, checks| !checks.is_empty());
        self.seen.retain(|_, forget_at| *forget_at > now_ms);
        self.ended.retain(|_, forget_at| *forget_at > now_ms);
        out
    }

    /// The live checks of `store` at `now_ms`, oldest first.
    pub fn snapshot(&self, store: &str, now_ms: i64) -> Vec<CheckCard> {
        let mut cards: Vec<CheckCard> = self
            .stores
            .get(store)
            .map(|c| {
                c.values()
                    .filter(|c| c.expires_at_ms > now_ms)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        cards.sort_by(|a, b| {
            (a.requested_at_ms, &a.check_id).cmp(&(b.requested_at_ms, &b.check_id))
        });
        cards
    }

    /// The live check `check_id` of `store` at `now_ms`.
    pub fn get(&self, store: &str, check_id: &str, now_ms: i64) -> Option<&CheckCard> {
        self.stores
            .get(store)?
            .get(check_id)
            .filter(|c| c.expires_at_ms > now_ms)
    }

    /// Live checks of all stores (a gauge).
    pub fn len(&self) -> usize {
        self.stores.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn expiry_of(&self, store: &str, check_id: &str) -> Option<i64> {
        self.stores
            .get(store)
            .and_then(|c| c.get(check_id))
            .map(|c| c.expires_at_ms)
            .or_else(|| self.ended.get(check_id).copied())
    }

    fn end(
        &mut self,
        e: &ShelfCheckEvent,
        ended: CheckEnded,
        finding: Option<&'static str>,
        detail: &str,
    ) -> Option<CheckUpdate> {
        let card = self
            .stores
            .get_mut(&e.store_id)
            .and_then(|c| c.remove(&e.check_id));
        let forget_at = card
            .as_ref()
            .map_or(e.occurred_at_ms + FORGET_UNKNOWN_AFTER_MS, |c| {
                c.expires_at_ms
            });
        self.ended.insert(e.check_id.clone(), forget_at);
        if self.stores.get(&e.store_id).is_some_and(BTreeMap::is_empty) {
            self.stores.remove(&e.store_id);
        }
        card.map(|_| CheckUpdate::Remove {
            check_id: e.check_id.clone(),
            ended,
            finding,
            detail: detail.to_owned(),
        })
    }
}

/// A finding in the API's words.
pub fn finding_name(f: i32) -> &'static str {
    match ShelfFinding::try_from(f) {
        Ok(ShelfFinding::Empty) => "empty",
        Ok(ShelfFinding::StockIsThere) => "stock_is_there",
        _ => "unspecified",
    }
}

/// A finding from the API's words (the two a member of staff can give).
pub fn parse_finding(s: &str) -> Option<ShelfFinding> {
    match s {
        "empty" => Some(ShelfFinding::Empty),
        "stock_is_there" => Some(ShelfFinding::StockIsThere),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::live::tests::NOW;
    use shelfguard_events::floor::{
        CheckAnswered, CheckExpired, CheckRequested, CheckWithdrawn, ProductRef,
    };

    pub(crate) fn requested(store: &str, check: &str, expires_at_ms: i64) -> ShelfCheckEvent {
        check_event(
            store,
            check,
            "requested",
            Change::Requested(CheckRequested {
                product: Some(ProductRef {
                    sku: "GOLD-14".into(),
                    name: "Coco Gold Coconut Oil".into(),
                    size: "14 oz".into(),
                    price_cents: 799,
                    location: "Aisle 7, shelf 3".into(),
                }),
                question: "Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3?".into(),
                reason: "no sale for 3 h 10 min where about 6 were expected; books say 9 on hand"
                    .into(),
                on_hand: 9,
                expires_at_ms,
            }),
        )
    }

    pub(crate) fn check_event(
        store: &str,
        check: &str,
        step: &str,
        change: Change,
    ) -> ShelfCheckEvent {
        ShelfCheckEvent {
            event_id: format!("{check}:{step}"),
            occurred_at_ms: NOW - 1000,
            store_id: store.into(),
            check_id: check.into(),
            stockout_id: format!("{store}/GOLD-14/S1"),
            sku: "GOLD-14".into(),
            change: Some(change),
        }
    }

    fn ids(v: &LiveChecks, store: &str, now: i64) -> Vec<String> {
        v.snapshot(store, now)
            .into_iter()
            .map(|c| c.check_id)
            .collect()
    }

    #[test]
    fn requested_checks_are_live_per_store() {
        let mut v = LiveChecks::default();
        let (store, u) = v.apply(&requested("S1", "c1", NOW + 60_000), NOW).unwrap();
        assert_eq!(store, "S1");
        let CheckUpdate::Upsert { check } = u else {
            panic!("{u:?}")
        };
        assert_eq!(check.product.as_ref().unwrap().location, "Aisle 7, shelf 3");
        assert_eq!(check.on_hand, 9);
        assert_eq!(check.status, "open");
        assert!(check.question.starts_with("Is there any 14 oz"));
        v.apply(&requested("S2", "c2", NOW + 60_000), NOW).unwrap();
        assert_eq!(ids(&v, "S1", NOW), ["c1"]);
        assert_eq!(ids(&v, "S2", NOW), ["c2"]);
        assert!(
            v.get("S2", "c1", NOW).is_none(),
            "no check of another store"
        );
        assert_eq!(v.len(), 2);
    }

    #[test]
    fn every_ending_removes_the_check_once() {
        let endings = [
            (
                Change::Answered(CheckAnswered {
                    finding: ShelfFinding::Empty as i32,
                    by: "ana".into(),
                    counted: None,
                }),
                CheckEnded::Answered,
                Some("empty"),
                "ana",
            ),
            (
                Change::Expired(CheckExpired {}),
                CheckEnded::Expired,
                None,
                "",
            ),
            (
                Change::Withdrawn(CheckWithdrawn {
                    reason: "a sale of the product".into(),
                }),
                CheckEnded::Withdrawn,
                None,
                "a sale of the product",
            ),
        ];
        for (change, ended, finding, detail) in endings {
            let mut v = LiveChecks::default();
            let r = requested("S1", "c1", NOW + 60_000);
            v.apply(&r, NOW).unwrap();
            let end = check_event("S1", "c1", "end", change);
            let (_, u) = v.apply(&end, NOW).unwrap();
            assert_eq!(
                u,
                CheckUpdate::Remove {
                    check_id: "c1".into(),
                    ended,
                    finding,
                    detail: detail.into()
                }
            );
            assert!(v.is_empty());
            assert!(v.apply(&end, NOW).is_none(), "a duplicate ending");
            assert!(v.apply(&r, NOW).is_none(), "a replayed request stays ended");
            let mut again = r.clone();
            again.event_id = "c1:requested-again".into();
            assert!(
                v.apply(&again, NOW).is_none(),
                "an ended check is not revived"
            );
        }
    }

    #[test]
    fn checks_leave_when_their_expiry_passes_and_old_ones_never_show() {
        let mut v = LiveChecks::default();
        v.apply(&requested("S1", "c1", NOW + 10_000), NOW).unwrap();
        v.apply(&requested("S1", "c2", NOW + 20_000), NOW).unwrap();
        assert!(v.expire(NOW + 9_999).is_empty());
        assert_eq!(ids(&v, "S1", NOW + 10_000), ["c2"], "hidden at once");
        assert!(v.get("S1", "c1", NOW + 10_000).is_none());
        let removed = v.expire(NOW + 10_000);
        assert_eq!(
            removed,
            [(
                "S1".to_string(),
                CheckUpdate::Remove {
                    check_id: "c1".into(),
                    ended: CheckEnded::Expired,
                    finding: None,
                    detail: String::new()
                }
            )]
        );
        let late = check_event("S1", "c1", "expired", Change::Expired(CheckExpired {}));
        assert!(v.apply(&late, NOW + 10_001).is_none());
        assert!(v.apply(&requested("S1", "c3", NOW - 1), NOW).is_none());
        // Event ids are forgotten after their check's expiry (those of checks no longer known,
        // like the late `Expired` above, after a day): memory stays bounded.
        v.expire(NOW + 20_000);
        assert!(v.is_empty());
        assert_eq!(v.seen.len(), 1, "{v:?}");
        v.expire(NOW + FORGET_UNKNOWN_AFTER_MS);
        assert!(v.seen.is_empty() && v.ended.is_empty(), "{v:?}");
    }

    #[test]
    fn the_update_json_names_the_kind_of_change() {
        let u = CheckUpdate::Remove {
            check_id: "c1".into(),
            ended: CheckEnded::Answered,
            finding: Some("empty"),
            detail: "ana".into(),
        };
        assert_eq!(
            serde_json::to_value(&u).unwrap(),
            serde_json::json!({"type":"remove","check_id":"c1","ended":"answered","finding":"empty","detail":"ana"})
        );
        assert_eq!(parse_finding("empty"), Some(ShelfFinding::Empty));
        assert_eq!(
            parse_finding("stock_is_there"),
            Some(ShelfFinding::StockIsThere)
        );
        assert_eq!(parse_finding("EMPTY"), None);
        assert_eq!(
            finding_name(ShelfFinding::StockIsThere as i32),
            "stock_is_there"
        );
    }
}
