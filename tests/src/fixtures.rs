//! Builders for input events with fresh ids and the current time.
use std::time::{SystemTime, UNIX_EPOCH};

use shelfguard_events::catalog::{Product, Size};
use shelfguard_events::store::{MovementKind, Sale, SaleLine, StockMovement};
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub fn id() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// A product of `family` by `brand` in `oz` ounces.
pub fn product(sku: &str, family: &str, brand: &str, oz: f64, price_cents: i64) -> Product {
    Product {
        event_id: id(),
        occurred_at_ms: now_ms(),
        sku: sku.into(),
        name: format!("{brand} {family}"),
        brand: brand.into(),
        family: family.into(),
        size: Some(Size {
            value: oz,
            unit: "oz".into(),
        }),
        price_cents,
        reorder_point: 2,
        order_up_to: 12,
        location: "Aisle 7, shelf 3".into(),
        ..Default::default()
    }
}

pub fn count(store: &str, sku: &str, units: i32) -> StockMovement {
    movement(store, sku, MovementKind::Count, units)
}

pub fn receipt(store: &str, sku: &str, units: i32) -> StockMovement {
    movement(store, sku, MovementKind::Receipt, units)
}

fn movement(store: &str, sku: &str, kind: MovementKind, quantity: i32) -> StockMovement {
    StockMovement {
        event_id: id(),
        occurred_at_ms: now_ms(),
        store_id: store.into(),
        sku: sku.into(),
        kind: kind as i32,
        quantity,
        note: String::new(),
    }
}

pub fn sale(store: &str, sku: &str, units: i32) -> Sale {
    Sale {
        event_id: id(),
        occurred_at_ms: now_ms(),
        store_id: store.into(),
        basket_id: id(),
        lines: vec![SaleLine {
            sku: sku.into(),
            quantity: units,
            unit_price_cents: 799,
        }],
    }
}

/// The warehouse's refusal of reorder `seq` of (store, sku); inventory numbers reorders
/// `<store>/<sku>/R<seq>`.
pub fn failed(store: &str, sku: &str, seq: u32, reason: &str) -> ReorderOutcome {
    ReorderOutcome {
        event_id: id(),
        occurred_at_ms: now_ms(),
        store_id: store.into(),
        reorder_id: format!("{store}/{sku}/R{seq}"),
        sku: sku.into(),
        status: OutcomeStatus::Failed as i32,
        failure_reason: reason.into(),
        ..Default::default()
    }
}

/// An issued offer of `store` for GOLD-14 → GOLD-28 (free), as offer-generator publishes it.
pub fn offer_issued(
    store: &str,
    offer_id: &str,
    expires_at_ms: i64,
) -> shelfguard_events::floor::OfferEvent {
    use shelfguard_events::floor::{Gesture, Issued, Offer, ProductRef, offer_event::Change};
    let p = |sku: &str, size: &str, price_cents| ProductRef {
        sku: sku.into(),
        name: "Coco Gold Coconut Oil".into(),
        size: size.into(),
        price_cents,
        location: "Aisle 7, shelf 3".into(),
    };
    offer_event(
        store,
        offer_id,
        "issued",
        Change::Issued(Issued {
            offer: Some(Offer {
                original: Some(p("GOLD-14", "14 oz", 799)),
                substitute: Some(p("GOLD-28", "28 oz", 1399)),
                gesture: Gesture::Free as i32,
                gesture_value_cents: 1399,
                reason: "14 oz Coco Gold Coconut Oil is out, warehouse failed 3x: supplier out of stock."
                    .into(),
                redemption_code: "7F3K".into(),
                expires_at_ms,
                complements: vec![],
                failed_reorders: 3,
                suspected: false,
            }),
        }),
    )
}

/// One lifecycle step `step` of `offer_id` (event id `<offer_id>:<step>`).
pub fn offer_event(
    store: &str,
    offer_id: &str,
    step: &str,
    change: shelfguard_events::floor::offer_event::Change,
) -> shelfguard_events::floor::OfferEvent {
    shelfguard_events::floor::OfferEvent {
        event_id: format!("{offer_id}:{step}"),
        occurred_at_ms: now_ms(),
        store_id: store.into(),
        offer_id: offer_id.into(),
        stockout_id: format!("{store}/GOLD-14/S1"),
        sku: "GOLD-14".into(),
        budget_cents: 10_000,
        budget_committed_cents: 1399,
        change: Some(change),
    }
}

/// One step `step` of the shelf check `check_id` of `sku` in `store` (event id
/// `<check_id>:<step>`), as offer-generator publishes it.
pub fn check_step(
    store: &str,
    check_id: &str,
    sku: &str,
    step: &str,
    change: shelfguard_events::floor::shelf_check_event::Change,
) -> shelfguard_events::floor::ShelfCheckEvent {
    shelfguard_events::floor::ShelfCheckEvent {
        event_id: format!("{check_id}:{step}"),
        occurred_at_ms: now_ms(),
        store_id: store.into(),
        check_id: check_id.into(),
        stockout_id: format!("{store}/{sku}/S1"),
        sku: sku.into(),
        change: Some(change),
    }
}

/// A shelf check of the 14 oz `name` (`sku`) at Aisle 7, shelf 3, requested in `store`.
pub fn check_requested(
    store: &str,
    check_id: &str,
    sku: &str,
    name: &str,
    expires_at_ms: i64,
) -> shelfguard_events::floor::ShelfCheckEvent {
    use shelfguard_events::floor::{CheckRequested, ProductRef, shelf_check_event::Change};
    check_step(
        store,
        check_id,
        sku,
        "requested",
        Change::Requested(CheckRequested {
            product: Some(ProductRef {
                sku: sku.into(),
                name: name.into(),
                size: "14 oz".into(),
                price_cents: 799,
                location: "Aisle 7, shelf 3".into(),
            }),
            question: format!("Is there any 14 oz {name} at Aisle 7, shelf 3?"),
            reason: "no sale for 3 h 10 min where about 6 were expected; books say 9 on hand"
                .into(),
            on_hand: 9,
            expires_at_ms,
        }),
    )
}
