//! Shelf checks: a suspected stockout becomes a question to the floor staff, never an offer.
//!
//! - A **suspected** episode (the books show stock, sales stopped) gets one check, `Requested`
//!   on `floor.checks.v1`: "Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3?",
//!   with the evidence as its reason. No offer is made for a suspicion.
//! - Staff answer on `floor.responses.v1` (`StaffResponse.check_id`, `finding`, optional
//!   `counted`): `Answered` is published, and **EMPTY** also publishes a `COUNT` of 0 to
//!   `store.stock-movements.v1` (note "shelf check <check_id>"): inventory books it, orders,
//!   and the detector turns the suspicion into a confirmed stockout, which gets its offer as any
//!   confirmed stockout does. **STOCK_IS_THERE** with a count publishes a `COUNT` of it; the
//!   detector closes the episode as a false alarm (it reads the `Answered` event).
//! - Unanswered, a check `Expired` after `CHECK_EXPIRY_MINUTES` of event time (a timer of the
//!   key); it is `Withdrawn` when its episode ends first (a sale, a receipt, a count) or a newer
//!   episode of the SKU supersedes it.
//! - An answer for a check that is not live (unknown, answered, expired, withdrawn) is refused
//!   (dead letter with the reason).
//!
//! Every id is derived from the episode: the check is `<stockout_id>/check`, its steps
//! `<check_id>:requested` etc., the count's event id `<check_id>:count` (a hash of it when that
//! is longer than an input event id may be), so a replay publishes the same records.
use shelfguard_events::catalog::Product;
use shelfguard_events::floor::{
    CheckAnswered, CheckExpired, CheckRequested, CheckWithdrawn, ShelfCheckEvent, ShelfFinding,
    StaffResponse, shelf_check_event::Change,
};
use shelfguard_events::limits::MAX_EVENT_ID_BYTES;
use shelfguard_events::state::OfferItem;
use shelfguard_events::stockout::Evidence;
use shelfguard_events::store::{MovementKind, StockMovement};
use shelfguard_events::topics;
use shelfguard_events::validate::split_key;
use shelfguard_runtime::{Output, Rejected};

use crate::lifecycle::product_ref;

/// Default of `CHECK_EXPIRY_MINUTES`.
pub const DEFAULT_CHECK_EXPIRY_MINUTES: i64 = 45;
/// Longest `CHECK_EXPIRY_MINUTES`: a day.
pub const MAX_CHECK_EXPIRY_MINUTES: i64 = 24 * 60;

/// The check of the episode `stockout_id`.
pub fn check_id(stockout_id: &str) -> String {
    format!("{stockout_id}/check")
}

/// The episode a check id belongs to.
pub fn episode_of(check_id: &str) -> Option<&str> {
    check_id.strip_suffix("/check")
}

/// Whether `item` has a live check (asked, not answered, expired or withdrawn).
pub fn is_live(item: &OfferItem) -> bool {
    !item.check_id.is_empty() && item.check_expires_at_ms > 0
}

/// When the live check of `item` expires (its timer), if it has one.
pub fn due(item: &OfferItem) -> Option<i64> {
    is_live(item).then_some(item.check_expires_at_ms)
}

/// The question staff see.
pub fn question(p: &Product) -> String {
    let what = match &p.size {
        Some(s) => format!("{} {} {}", s.value, s.unit, p.name),
        None => p.name.clone(),
    };
    if p.location.is_empty() {
        format!("Is there any {what} on the shelf?")
    } else {
        format!("Is there any {what} at {}?", p.location)
    }
}

/// "3 h 10 min", "25 min".
fn duration_words(ms: i64) -> String {
    let minutes = (ms.max(0) + 30_000) / 60_000;
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// Why staff are asked: the silence, what it should have sold, what the books say.
pub fn reason(ev: &Evidence) -> String {
    format!(
        "no sale for {} where about {:.0} were expected; the books say {} on hand",
        duration_words(ev.gap_ms),
        ev.expected_sales_in_gap,
        ev.on_hand
    )
}

fn event(key: &str, item: &OfferItem, step: &str, now: i64, change: Change) -> Output {
    let (store, sku) = split_key(key);
    let e = ShelfCheckEvent {
        event_id: format!("{}:{step}", item.check_id),
        occurred_at_ms: now,
        store_id: store.to_owned(),
        check_id: item.check_id.clone(),
        stockout_id: episode_of(&item.check_id).unwrap_or_default().to_owned(),
        sku: sku.to_owned(),
        change: Some(change),
    };
    Output::new(topics::FLOOR_CHECKS, store, &e)
}

/// Asks staff to look at the shelf of the open suspected episode of `key` (`item.stockout_id`).
pub fn request(
    key: &str,
    item: &mut OfferItem,
    product: &Product,
    now: i64,
    expiry_minutes: i64,
) -> Vec<Output> {
    let evidence = item.evidence.clone().unwrap_or_default();
    item.check_id = check_id(&item.stockout_id);
    item.check_expires_at_ms = now.saturating_add(expiry_minutes.saturating_mul(60_000));
    item.check_finding = ShelfFinding::Unspecified as i32;
    let change = Change::Requested(CheckRequested {
        product: Some(product_ref(product)),
        question: question(product),
        reason: reason(&evidence),
        on_hand: evidence.on_hand,
        expires_at_ms: item.check_expires_at_ms,
    });
    vec![event(key, item, "requested", now, change)]
}

/// Refuses an answer that does not name the live check of `key` (before anything changes).
pub fn accepts(key: &str, item: &OfferItem, r: &StaffResponse, now: i64) -> Result<(), Rejected> {
    if is_live(item) && item.check_id == r.check_id && now < item.check_expires_at_ms {
        return Ok(());
    }
    let live = if is_live(item) {
        item.check_id.as_str()
    } else {
        "none"
    };
    let why = if item.check_id == r.check_id && is_live(item) {
        format!(
            "it expired at {}",
            shelfguard_events::time::utc_words(item.check_expires_at_ms)
        )
    } else if item.check_id == r.check_id {
        "it was answered, expired or withdrawn already".to_owned()
    } else {
        "unknown or ended".to_owned()
    };
    Err(Rejected(format!(
        "check {} is not live: {why} (live check of {key}: {live})",
        r.check_id
    )))
}

/// The event id of the count a check answer books: `<check_id>:count`, or a hash of the check
/// id when that is longer than an input event id may be.
pub fn count_event_id(check_id: &str) -> String {
    let id = format!("{check_id}:count");
    if id.len() <= MAX_EVENT_ID_BYTES {
        id
    } else {
        format!("shelf-check-{:016x}:count", crate::lifecycle::fnv(check_id))
    }
}

/// The COUNT movement a check answer books.
pub fn count(key: &str, check_id: &str, units: i32, now: i64) -> StockMovement {
    let (store, sku) = split_key(key);
    StockMovement {
        event_id: count_event_id(check_id),
        occurred_at_ms: now,
        store_id: store.to_owned(),
        sku: sku.to_owned(),
        kind: MovementKind::Count as i32,
        quantity: units,
        note: format!("shelf check {check_id}"),
    }
}

/// Applies a staff answer to the live check of `key` (checked by [`accepts`]): `Answered`,
/// and the count it books (EMPTY: 0; STOCK_IS_THERE: the units counted, when given).
pub fn answer(key: &str, item: &mut OfferItem, r: &StaffResponse, now: i64) -> Vec<Output> {
    let finding = ShelfFinding::try_from(r.finding).unwrap_or(ShelfFinding::Unspecified);
    let counted = match finding {
        ShelfFinding::Empty => Some(0),
        _ => r.counted,
    };
    item.check_expires_at_ms = 0;
    item.check_finding = finding as i32;
    let change = Change::Answered(CheckAnswered {
        finding: finding as i32,
        by: r.by.clone(),
        counted,
    });
    let mut out = vec![event(key, item, "answered", now, change)];
    if let Some(units) = counted {
        let (store, _) = split_key(key);
        out.push(Output::new(
            topics::STORE_STOCK_MOVEMENTS,
            store,
            &count(key, &item.check_id, units, now),
        ));
    }
    out
}

/// The live check of `key` expires when its time has come.
pub fn expire_if_due(key: &str, item: &mut OfferItem, now: i64) -> Vec<Output> {
    if due(item).is_none_or(|at| at > now) {
        return Vec::new();
    }
    item.check_expires_at_ms = 0;
    vec![event(
        key,
        item,
        "expired",
        now,
        Change::Expired(CheckExpired {}),
    )]
}

/// Withdraws the live check of `key` (its episode ended or was superseded).
pub fn withdraw(key: &str, item: &mut OfferItem, reason: String, now: i64) -> Vec<Output> {
    if !is_live(item) {
        return Vec::new();
    }
    item.check_expires_at_ms = 0;
    vec![event(
        key,
        item,
        "withdrawn",
        now,
        Change::Withdrawn(CheckWithdrawn { reason }),
    )]
}

/// Whether the episode `stockout_id` follows right after a check that staff answered EMPTY
/// (the detector confirms the stockout on the count that answer booked).
pub fn found_empty_before(item: &OfferItem, stockout_id: &str, store: &str, sku: &str) -> bool {
    use shelfguard_events::validate::stockout_seq;
    item.check_finding == ShelfFinding::Empty as i32
        && episode_of(&item.check_id).is_some_and(|checked| {
            match (
                stockout_seq(checked, store, sku),
                stockout_seq(stockout_id, store, sku),
            ) {
                (Some(a), Some(b)) => b == a + 1,
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelfguard_events::Message;
    use shelfguard_events::catalog::Size;

    fn coconut() -> Product {
        Product {
            sku: "COCO-14".into(),
            name: "Coco Gold Coconut Oil".into(),
            size: Some(Size {
                value: 14.0,
                unit: "oz".into(),
            }),
            location: "Aisle 7, shelf 3".into(),
            ..Default::default()
        }
    }

    fn suspected() -> OfferItem {
        OfferItem {
            stockout_id: "S1/COCO-14/S1".into(),
            episode_open: true,
            suspected: true,
            evidence: Some(Evidence {
                on_hand: 9,
                gap_ms: 3 * 3_600_000 + 10 * 60_000,
                expected_sales_in_gap: 6.2,
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn check(out: &Output) -> ShelfCheckEvent {
        assert_eq!((out.topic, out.key.as_str()), (topics::FLOOR_CHECKS, "S1"));
        ShelfCheckEvent::decode(out.payload.as_slice()).unwrap()
    }

    fn staff(finding: ShelfFinding, counted: Option<i32>) -> StaffResponse {
        StaffResponse {
            event_id: "r1".into(),
            store_id: "S1".into(),
            sku: "COCO-14".into(),
            check_id: "S1/COCO-14/S1/check".into(),
            finding: finding as i32,
            counted,
            by: "ana".into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_suspicion_asks_the_question_with_the_evidence_and_an_expiry() {
        let mut item = suspected();
        let out = request("S1/COCO-14", &mut item, &coconut(), 1_000, 45);
        assert_eq!(out.len(), 1);
        let e = check(&out[0]);
        assert_eq!(e.event_id, "S1/COCO-14/S1/check:requested");
        assert_eq!(e.check_id, "S1/COCO-14/S1/check");
        assert_eq!(e.stockout_id, "S1/COCO-14/S1");
        let Some(Change::Requested(r)) = e.change else {
            panic!("{e:?}")
        };
        assert_eq!(
            r.question,
            "Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3?"
        );
        assert_eq!(
            r.reason,
            "no sale for 3 h 10 min where about 6 were expected; the books say 9 on hand"
        );
        assert_eq!((r.on_hand, r.expires_at_ms), (9, 1_000 + 45 * 60_000));
        assert_eq!(due(&item), Some(1_000 + 45 * 60_000));
    }

    #[test]
    fn empty_books_a_count_of_zero_and_ends_the_check() {
        let mut item = suspected();
        request("S1/COCO-14", &mut item, &coconut(), 1_000, 45);
        let r = staff(ShelfFinding::Empty, None);
        accepts("S1/COCO-14", &item, &r, 2_000).unwrap();
        let out = answer("S1/COCO-14", &mut item, &r, 2_000);
        assert_eq!(out.len(), 2);
        let Some(Change::Answered(a)) = check(&out[0]).change else {
            panic!()
        };
        assert_eq!(
            (a.finding, a.counted, a.by.as_str()),
            (ShelfFinding::Empty as i32, Some(0), "ana")
        );
        assert_eq!(
            (out[1].topic, out[1].key.as_str()),
            (topics::STORE_STOCK_MOVEMENTS, "S1")
        );
        let m = StockMovement::decode(out[1].payload.as_slice()).unwrap();
        assert_eq!(m.event_id, "S1/COCO-14/S1/check:count");
        assert_eq!(
            (m.kind, m.quantity, m.sku.as_str(), m.occurred_at_ms),
            (MovementKind::Count as i32, 0, "COCO-14", 2_000)
        );
        assert_eq!(m.note, "shelf check S1/COCO-14/S1/check");
        assert_eq!(due(&item), None);
        // The same answer again is refused: the check has ended.
        let again = accepts("S1/COCO-14", &item, &r, 2_500).unwrap_err();
        assert!(
            again.0.contains("answered, expired or withdrawn"),
            "{again:?}"
        );
        assert!(found_empty_before(&item, "S1/COCO-14/S2", "S1", "COCO-14"));
        assert!(!found_empty_before(&item, "S1/COCO-14/S3", "S1", "COCO-14"));
    }

    #[test]
    fn stock_is_there_books_a_count_only_when_staff_counted() {
        for (counted, movements) in [(None, 0), (Some(7), 1)] {
            let mut item = suspected();
            request("S1/COCO-14", &mut item, &coconut(), 1_000, 45);
            let out = answer(
                "S1/COCO-14",
                &mut item,
                &staff(ShelfFinding::StockIsThere, counted),
                2_000,
            );
            assert_eq!(out.len(), 1 + movements);
            if let Some(m) = out.get(1) {
                let m = StockMovement::decode(m.payload.as_slice()).unwrap();
                assert_eq!(m.quantity, 7);
            }
            assert!(!found_empty_before(&item, "S1/COCO-14/S2", "S1", "COCO-14"));
        }
    }

    #[test]
    fn an_answer_for_another_or_an_expired_check_is_refused() {
        let mut item = suspected();
        let r = staff(ShelfFinding::Empty, None);
        let none = accepts("S1/COCO-14", &item, &r, 2_000).unwrap_err();
        assert!(
            none.0.contains("live check of S1/COCO-14: none"),
            "{none:?}"
        );
        request("S1/COCO-14", &mut item, &coconut(), 1_000, 45);
        let other = StaffResponse {
            check_id: "S1/COCO-14/S9/check".into(),
            ..r.clone()
        };
        let e = accepts("S1/COCO-14", &item, &other, 2_000).unwrap_err();
        assert!(e.0.contains("unknown or ended"), "{e:?}");
        let late = 1_000 + 45 * 60_000;
        let e = accepts("S1/COCO-14", &item, &r, late).unwrap_err();
        assert!(e.0.contains("expired at"), "{e:?}");
    }

    #[test]
    fn a_check_expires_at_its_time_and_is_withdrawn_only_while_live() {
        let mut item = suspected();
        request("S1/COCO-14", &mut item, &coconut(), 1_000, 45);
        let at = 1_000 + 45 * 60_000;
        assert!(expire_if_due("S1/COCO-14", &mut item, at - 1).is_empty());
        let out = expire_if_due("S1/COCO-14", &mut item, at);
        let e = check(&out[0]);
        assert_eq!(e.event_id, "S1/COCO-14/S1/check:expired");
        assert!(matches!(e.change, Some(Change::Expired(_))));
        assert!(expire_if_due("S1/COCO-14", &mut item, at + 1).is_empty());
        assert!(withdraw("S1/COCO-14", &mut item, "sales resumed".into(), at + 2).is_empty());

        let mut item = suspected();
        request("S1/COCO-14", &mut item, &coconut(), 1_000, 45);
        let out = withdraw("S1/COCO-14", &mut item, "sales resumed".into(), 5_000);
        let e = check(&out[0]);
        assert_eq!(e.event_id, "S1/COCO-14/S1/check:withdrawn");
        let Some(Change::Withdrawn(w)) = e.change else {
            panic!()
        };
        assert_eq!(w.reason, "sales resumed");
        assert_eq!(due(&item), None);
    }

    #[test]
    fn a_long_check_id_gets_a_count_event_id_within_the_input_limit() {
        let long = format!("{}/{}/S12/check", "S".repeat(64), "K".repeat(64));
        let id = count_event_id(&long);
        assert!(id.len() <= MAX_EVENT_ID_BYTES, "{id}");
        assert_eq!(id, count_event_id(&long), "deterministic");
        assert_ne!(id, count_event_id(&long.replace("S12", "S13")));
        assert_eq!(count_event_id("S1/A/S1/check"), "S1/A/S1/check:count");
    }

    #[test]
    fn the_question_without_a_size_or_location_still_reads() {
        let p = Product {
            name: "Oat Milk".into(),
            ..Default::default()
        };
        assert_eq!(question(&p), "Is there any Oat Milk on the shelf?");
        assert_eq!(duration_words(25 * 60_000), "25 min");
        assert_eq!(duration_words(2 * 3_600_000), "2 h");
    }
}
