//! Attacks on inventory through the engine's own record path (`step::handle`: decode, key
//! check, apply, timers), without a broker: extreme and adversarial field values, any order,
//! duplicates, redeliveries, records keyed by the wrong store. Whatever arrives, nothing
//! panics, stock never goes negative or wraps, every output is about the key that made it,
//! and every key's state stays within its bound.
use proptest::prelude::*;
use shelfguard_events::catalog::{Product, Size};
use shelfguard_events::floor::{OfferEvent, Redeemed, offer_event};
use shelfguard_events::inventory::StockLevel;
use shelfguard_events::limits::MAX_STATE_BYTES;
use shelfguard_events::store::{Sale, SaleLine, StockMovement};
use shelfguard_events::warehouse::{ReorderOutcome, ReorderRequest};
use shelfguard_events::{Message, topics};
use shelfguard_inventory::ledger::{Ledger, Policy};
use shelfguard_runtime::state::PartitionState;
use shelfguard_runtime::step::{self, Record};
use shelfguard_runtime::table::Table;

const T0: i64 = 1_700_000_000_000;

fn ledger() -> Ledger {
    let catalog = Table::default();
    for sku in ["A", "B"] {
        catalog.insert(
            sku.to_owned(),
            Product {
                sku: sku.into(),
                family: "f".into(),
                price_cents: 100,
                size: Some(Size {
                    value: 1.0,
                    unit: "each".into(),
                }),
                ..Default::default()
            },
        );
    }
    Ledger::new(
        Policy {
            reorder_retry_after_secs: 60,
            ..Policy::default()
        },
        catalog,
    )
}

fn quantity() -> impl Strategy<Value = i32> {
    prop_oneof![
        Just(i32::MAX),
        Just(i32::MIN),
        Just(i32::MAX / 2 + 1),
        Just(0),
        Just(1_000_000),
        Just(1_000_001),
        Just(-1_000_000),
        -5..60i32,
        any::<i32>(),
    ]
}

fn event_id() -> impl Strategy<Value = String> {
    prop_oneof![
        (0..6u8).prop_map(|i| format!("dup{i}")),
        "[a-z0-9]{1,12}",
        Just("x".repeat(65)),
        Just("a b/c".to_owned()),
        Just("x".repeat(70_000)),
        Just(String::new()),
    ]
}

fn sku() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just("A".to_owned()),
        3 => Just("B".to_owned()),
        1 => Just("UNKNOWN".to_owned()),
        1 => Just("x".repeat(65)),
    ]
}

fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => (0..10_000_000i64).prop_map(|d| T0 + d),
        1 => Just(0i64),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        1 => Just(T0 / 1000),
    ]
}

/// One input record: (topic, record key, value).
fn record() -> impl Strategy<Value = (&'static str, String, Vec<u8>)> {
    let store = prop_oneof![8 => Just("S1".to_owned()), 1 => Just("S-ELSEWHERE".to_owned())];
    let sale = (
        event_id(),
        time(),
        prop::collection::vec((sku(), quantity()), 0..4),
    )
        .prop_map(|(id, at, lines)| {
            let s = Sale {
                event_id: id,
                occurred_at_ms: at,
                store_id: "S1".into(),
                basket_id: "b".into(),
                lines: lines
                    .into_iter()
                    .map(|(sku, quantity)| SaleLine {
                        sku,
                        quantity,
                        unit_price_cents: 100,
                    })
                    .collect(),
            };
            (topics::STORE_SALES, s.encode_to_vec())
        });
    let movement = (event_id(), time(), sku(), 0..6i32, quantity()).prop_map(
        |(id, at, sku, kind, quantity)| {
            let m = StockMovement {
                event_id: id,
                occurred_at_ms: at,
                store_id: "S1".into(),
                sku,
                kind,
                quantity,
                note: String::new(),
            };
            (topics::STORE_STOCK_MOVEMENTS, m.encode_to_vec())
        },
    );
    let outcome = (event_id(), time(), sku(), 1..4u32, 0..4i32, quantity()).prop_map(
        |(id, at, sku, n, status, shipped)| {
            let o = ReorderOutcome {
                event_id: id,
                occurred_at_ms: at,
                store_id: "S1".into(),
                reorder_id: format!("S1/{sku}/R{n}"),
                sku,
                status,
                quantity_shipped: shipped,
                ..Default::default()
            };
            (topics::WAREHOUSE_REORDER_OUTCOMES, o.encode_to_vec())
        },
    );
    let redeemed = (event_id(), time(), sku(), quantity()).prop_map(|(id, at, sku, quantity)| {
        let e = OfferEvent {
            event_id: id,
            occurred_at_ms: at,
            store_id: "S1".into(),
            offer_id: "S1/X/S1/offer".into(),
            change: Some(offer_event::Change::Redeemed(Redeemed {
                substitute_sku: sku,
                quantity,
                ..Default::default()
            })),
            ..Default::default()
        };
        (topics::FLOOR_OFFERS, e.encode_to_vec())
    });
    let garbage =
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| (topics::STORE_STOCK_MOVEMENTS, b));
    (
        store,
        prop_oneof![3 => sale, 4 => movement, 2 => outcome, 1 => redeemed, 1 => garbage],
    )
        .prop_map(|(key, (topic, bytes))| (topic, key, bytes))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_record_panics_wraps_stock_or_outgrows_its_key(
        records in prop::collection::vec((record(), any::<bool>()), 1..40),
    ) {
        let mut l = ledger();
        let mut part = PartitionState::default();
        let mut offset = 0i64;
        for ((topic, key, bytes), redeliver) in &records {
            // Now and then the same record again at the same offset (a redelivery).
            if !*redeliver {
                offset += 1;
            }
            let effect = step::handle(
                &mut l,
                &mut part,
                Record { topic, offset, key: Some(key.as_bytes()), payload: Some(bytes) },
            );
            for r in &effect.refusals {
                prop_assert!(!r.contains("panicked"), "{r}");
            }
            if key != "S1" {
                prop_assert!(effect.outputs.is_empty() && effect.changed.is_empty(), "wrong key applied");
                prop_assert!(effect.refusals.iter().any(|r| r.contains("does not match store_id")) || effect.refusals.len() == 1);
            }
            for (k, out) in &effect.outputs {
                prop_assert!(k.starts_with("S1/"));
                let sku = &k[3..];
                match out.topic {
                    topics::INVENTORY_STOCK_LEVELS => {
                        let l = StockLevel::decode(out.payload.as_slice()).unwrap();
                        prop_assert_eq!((l.store_id.as_str(), l.sku.as_str()), ("S1", sku));
                        prop_assert!(l.on_hand >= 0 && l.unaccounted >= 0 && l.on_order >= 0, "{l:?}");
                    }
                    topics::WAREHOUSE_REORDER_REQUESTS => {
                        let r = ReorderRequest::decode(out.payload.as_slice()).unwrap();
                        prop_assert_eq!((r.store_id.as_str(), r.sku.as_str()), ("S1", sku));
                        prop_assert!(r.quantity > 0, "{r:?}");
                    }
                    other => prop_assert!(false, "unexpected output topic {other}"),
                }
            }
            for (k, slot) in &part.slots {
                let s = &slot.state;
                prop_assert!(s.on_hand >= 0 && s.unaccounted >= 0 && s.on_order >= 0, "{k}: {s:?}");
                prop_assert!(slot.encoded_len() <= MAX_STATE_BYTES, "{k}: {} bytes", slot.encoded_len());
                prop_assert!(slot.recent.len() <= shelfguard_runtime::state::RECENT_IDS);
            }
        }
    }
}

/// The reproductions of issue 9, one by one: each is refused with a reason that says why, the
/// key keeps its stock, and the next valid record is applied.
#[test]
fn the_poison_pills_of_issue_9_are_refused_and_the_next_record_applies() {
    let mut l = ledger();
    let mut part = PartitionState::default();
    let mut offset = 0;
    let mut feed =
        |l: &mut Ledger, part: &mut PartitionState<_>, topic, key: &str, bytes: Vec<u8>| {
            offset += 1;
            step::handle(
                l,
                part,
                Record {
                    topic,
                    offset,
                    key: Some(key.as_bytes()),
                    payload: Some(&bytes),
                },
            )
        };
    let movement = |id: &str, kind: shelfguard_events::store::MovementKind, q: i32| {
        StockMovement {
            event_id: id.into(),
            occurred_at_ms: T0,
            store_id: "S1".into(),
            sku: "A".into(),
            kind: kind as i32,
            quantity: q,
            note: String::new(),
        }
        .encode_to_vec()
    };
    use shelfguard_events::store::MovementKind::*;
    let e = feed(
        &mut l,
        &mut part,
        topics::STORE_STOCK_MOVEMENTS,
        "S1",
        movement("c", Count, 10),
    );
    assert!(e.refusals.is_empty());
    for (id, kind, q) in [
        ("r", Receipt, i32::MAX),
        ("a+", Adjustment, i32::MAX),
        ("a-", Adjustment, i32::MIN),
        ("s", Shrink, i32::MAX),
    ] {
        let e = feed(
            &mut l,
            &mut part,
            topics::STORE_STOCK_MOVEMENTS,
            "S1",
            movement(id, kind, q),
        );
        assert_eq!(e.refusals.len(), 1, "{id}");
        assert!(
            e.refusals[0].contains("limit: quantities"),
            "{:?}",
            e.refusals
        );
        assert_eq!(part.slots.get("S1/A").unwrap().state.on_hand, 10);
    }
    let sale = |id: &str, lines: Vec<i32>| {
        Sale {
            event_id: id.into(),
            occurred_at_ms: T0,
            store_id: "S1".into(),
            basket_id: String::new(),
            lines: lines
                .into_iter()
                .map(|quantity| SaleLine {
                    sku: "A".into(),
                    quantity,
                    unit_price_cents: 1,
                })
                .collect(),
        }
        .encode_to_vec()
    };
    let e = feed(
        &mut l,
        &mut part,
        topics::STORE_SALES,
        "S1",
        sale("big", vec![i32::MAX, i32::MAX]),
    );
    assert!(
        e.refusals[0].contains("limit: quantities"),
        "{:?}",
        e.refusals
    );
    let e = feed(
        &mut l,
        &mut part,
        topics::STORE_SALES,
        "S1",
        sale(&"x".repeat(700_000), vec![1]),
    );
    assert!(
        e.refusals[0].contains("limit: record size"),
        "{:?}",
        e.refusals
    );
    let e = feed(
        &mut l,
        &mut part,
        topics::STORE_SALES,
        "S1",
        sale(&"x".repeat(129), vec![1]),
    );
    assert!(e.refusals[0].contains("limit: ids"), "{:?}", e.refusals);
    let e = feed(
        &mut l,
        &mut part,
        topics::STORE_SALES,
        "S-ELSEWHERE",
        sale("elsewhere", vec![1]),
    );
    assert!(
        e.refusals[0].contains("does not match store_id"),
        "{:?}",
        e.refusals
    );
    assert_eq!(part.slots.get("S1/A").unwrap().state.on_hand, 10);
    // Many receipts at the limit: the arithmetic is checked, the last ones refused.
    let mut refused = 0;
    for i in 0..2200 {
        let e = feed(
            &mut l,
            &mut part,
            topics::STORE_STOCK_MOVEMENTS,
            "S1",
            movement(&format!("r{i}"), Receipt, 1_000_000),
        );
        refused += e.refusals.len();
        if let Some(r) = e.refusals.first() {
            assert!(r.contains("overflows the stock arithmetic"), "{r}");
        }
    }
    assert!(refused > 0);
    assert!(part.slots.get("S1/A").unwrap().state.on_hand > 2_000_000_000);
    // And the next valid record still applies (a count taken after all those receipts).
    let mut recount = StockMovement::decode(movement("c2", Count, 7).as_slice()).unwrap();
    recount.occurred_at_ms = T0 + 1;
    let e = feed(
        &mut l,
        &mut part,
        topics::STORE_STOCK_MOVEMENTS,
        "S1",
        recount.encode_to_vec(),
    );
    assert!(e.refusals.is_empty());
    assert_eq!(part.slots.get("S1/A").unwrap().state.on_hand, 7);
}
