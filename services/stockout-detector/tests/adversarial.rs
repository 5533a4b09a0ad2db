//! Attacks on the stockout detector through the engine's record path (`step::handle`):
//! stock levels and shelf-check answers with extreme and adversarial values, any order,
//! duplicates, redeliveries, wrong keys. Nothing panics, every stockout event is about the key that made it, at most one
//! episode is open per key, and every key's state stays within its bound.
use proptest::prelude::*;
use shelfguard_events::floor::{CheckAnswered, ShelfCheckEvent, shelf_check_event};
use shelfguard_events::inventory::{Cause, ReorderState, StockLevel};
use shelfguard_events::limits::MAX_STATE_BYTES;
use shelfguard_events::stockout::{StockoutEvent, stockout_event::Change};
use shelfguard_events::{Message, topics};
use shelfguard_runtime::state::PartitionState;
use shelfguard_runtime::step::{self, Record};
use shelfguard_stockout_detector::episodes::{Detector, Policy};

const T0: i64 = 1_700_000_000_000;

fn level() -> impl Strategy<Value = (String, Vec<u8>)> {
    let on_hand = prop_oneof![Just(i32::MAX), Just(i32::MIN), Just(0), Just(-1), 0..30i32];
    let at = prop_oneof![
        8 => (0..20_000_000i64).prop_map(|d| T0 + d * 100),
        1 => Just(0i64),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
    ];
    let sku = prop_oneof![Just("A"), Just("B"), Just("C")];
    let key = prop_oneof![8 => Just("S1"), 1 => Just("S2")];
    (
        key,
        sku,
        on_hand,
        at,
        0..8u8,
        prop_oneof![Just(i32::MAX), Just(-5), 0..5i32],
        prop_oneof![
            Just(i64::MAX),
            Just(i64::MIN),
            Just(0i64),
            (0..100i64).prop_map(|h| T0 + h * 3_600_000)
        ],
        0..4i32,
        (0..12u8).prop_map(|i| format!("e{i}")),
    )
        .prop_map(
            |(key, sku, on_hand, at, cause, failed, expected, status, id)| {
                let l = StockLevel {
                    event_id: id,
                    occurred_at_ms: at,
                    store_id: "S1".into(),
                    sku: sku.into(),
                    on_hand,
                    cause: i32::from(cause),
                    sold: if i32::from(cause) == Cause::Sale as i32 {
                        1
                    } else {
                        0
                    },
                    failed_reorders_7d: failed,
                    last_reorder: Some(ReorderState {
                        reorder_id: format!("S1/{sku}/R1"),
                        status,
                        expected_at_ms: expected,
                        decided_at_ms: at,
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                (key.to_owned(), l.encode_to_vec())
            },
        )
}

/// A shelf-check answer (any finding, any episode of a SKU, sometimes a request instead).
fn check() -> impl Strategy<Value = (String, Vec<u8>)> {
    (
        prop_oneof![Just("A"), Just("B"), Just("C")],
        1..4u32,
        0..4i32,
        prop_oneof![8 => (0..20_000_000i64).prop_map(|d| T0 + d * 100), 1 => Just(i64::MAX)],
        any::<bool>(),
    )
        .prop_map(|(sku, n, finding, at, answered)| {
            let stockout_id = format!("S1/{sku}/S{n}");
            let c = ShelfCheckEvent {
                event_id: format!("{stockout_id}/check:{answered}:{finding}"),
                occurred_at_ms: at,
                store_id: "S1".into(),
                check_id: format!("{stockout_id}/check"),
                stockout_id,
                sku: sku.into(),
                change: Some(if answered {
                    shelf_check_event::Change::Answered(CheckAnswered {
                        finding,
                        by: "ana".into(),
                        counted: None,
                    })
                } else {
                    shelf_check_event::Change::Requested(Default::default())
                }),
            };
            ("S1".to_owned(), c.encode_to_vec())
        })
}

/// A record of either input topic.
fn record() -> impl Strategy<Value = (&'static str, (String, Vec<u8>))> {
    prop_oneof![
        4 => level().prop_map(|r| (topics::INVENTORY_STOCK_LEVELS, r)),
        1 => check().prop_map(|r| (topics::FLOOR_CHECKS, r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn no_level_panics_mixes_keys_or_outgrows_its_key(
        records in prop::collection::vec((record(), any::<bool>()), 1..80),
    ) {
        let mut d = Detector::new(Policy::default());
        let mut part = PartitionState::default();
        let mut offset = 0i64;
        let mut open = std::collections::BTreeMap::<String, String>::new();
        for ((topic, (key, bytes)), redeliver) in &records {
            if !*redeliver {
                offset += 1;
            }
            let effect = step::handle(
                &mut d,
                &mut part,
                Record { topic, offset, key: Some(key.as_bytes()), payload: Some(bytes) },
            );
            for r in &effect.refusals {
                prop_assert!(!r.contains("panicked"), "{r}");
            }
            for (k, out) in &effect.outputs {
                let e = StockoutEvent::decode(out.payload.as_slice()).unwrap();
                prop_assert_eq!(format!("{}/{}", e.store_id, e.sku), k.clone());
                prop_assert!(e.stockout_id.starts_with(&format!("{k}/")), "{e:?}");
                match e.change {
                    Some(Change::Opened(_)) => prop_assert!(open.insert(k.clone(), e.stockout_id.clone()).is_none(), "two open episodes for {k}"),
                    Some(Change::Closed(_)) => prop_assert_eq!(open.remove(k), Some(e.stockout_id.clone())),
                    None => prop_assert!(false, "no change"),
                }
            }
            for (k, slot) in &part.slots {
                prop_assert!(slot.encoded_len() <= MAX_STATE_BYTES, "{k}: {} bytes", slot.encoded_len());
            }
        }
    }
}
