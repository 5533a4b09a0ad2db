//! Attacks on offer-generator through the engine's record path (`step::handle`): stockouts,
//! stock levels, staff answers and baskets with extreme and adversarial values, any order,
//! duplicates, wrong keys, shelf-check answers. Nothing panics, every offer event and shelf-check
//! event is about the key that made it (its `sku`, `offer_id` or `check_id` and `stockout_id`
//! agree), every count a check books is of that key's SKU, and every key's state stays within
//! bound.
use proptest::prelude::*;
use shelfguard_events::catalog::{Product, Size};
use shelfguard_events::floor::{Answer, OfferEvent, ShelfCheckEvent, StaffResponse};
use shelfguard_events::inventory::StockLevel;
use shelfguard_events::limits::MAX_STATE_BYTES;
use shelfguard_events::stockout::{Evidence, Kind, Opened, StockoutEvent, stockout_event::Change};
use shelfguard_events::store::{Sale, SaleLine, StockMovement};
use shelfguard_events::{Message, topics};
use shelfguard_offer_generator::lifecycle::{Offers, Policy};
use shelfguard_runtime::state::PartitionState;
use shelfguard_runtime::step::{self, Record};
use shelfguard_runtime::table::Table;

const T0: i64 = 1_700_000_000_000;
const SKUS: [&str; 4] = ["A-14", "A-28", "B-14", "B-28"];

fn offers() -> Offers {
    let catalog = Table::default();
    for (i, sku) in SKUS.iter().enumerate() {
        catalog.insert(
            (*sku).to_owned(),
            Product {
                sku: (*sku).into(),
                name: format!("product {sku}"),
                brand: "Gold".into(),
                family: if i < 2 { "a" } else { "b" }.into(),
                price_cents: 100 * (i as i64 + 1),
                size: Some(Size {
                    value: if i % 2 == 0 { 14.0 } else { 28.0 },
                    unit: "oz".into(),
                }),
                ..Default::default()
            },
        );
    }
    Offers::new(Policy::default(), catalog)
}

fn at() -> impl Strategy<Value = i64> {
    prop_oneof![
        8 => (0..2_000i64).prop_map(|m| T0 + m * 60_000),
        1 => Just(i64::MAX),
        1 => Just(0i64),
    ]
}

fn record() -> impl Strategy<Value = (&'static str, String, Vec<u8>)> {
    let sku = prop::sample::select(SKUS.to_vec());
    let key = prop_oneof![9 => Just("S1"), 1 => Just("S2")];
    let stockout = (
        sku.clone(),
        at(),
        1..4u32,
        any::<bool>(),
        any::<bool>(),
        prop_oneof![Just(i32::MAX), Just(i32::MIN), 0..5i32],
        prop_oneof![
            Just(f64::NAN),
            Just(f64::INFINITY),
            Just(-1.0),
            0.0..10.0f64
        ],
    )
        .prop_map(|(sku, at, n, open, suspected, failed, rate)| {
            let id = format!("S1/{sku}/S{n}");
            let change = if open {
                Change::Opened(Opened {
                    kind: if suspected {
                        Kind::Suspected
                    } else {
                        Kind::Confirmed
                    } as i32,
                    evidence: Some(Evidence {
                        failed_reorders_7d: failed,
                        sales_per_hour: rate,
                        gap_ms: i64::from(failed).saturating_mul(60_000),
                        ..Default::default()
                    }),
                    ..Default::default()
                })
            } else {
                Change::Closed(Default::default())
            };
            let e = StockoutEvent {
                event_id: format!("so:{id}:{open}"),
                occurred_at_ms: at,
                store_id: "S1".into(),
                stockout_id: id,
                sku: sku.into(),
                change: Some(change),
            };
            (topics::STOCKOUTS, e.encode_to_vec())
        });
    let level = (
        sku.clone(),
        at(),
        prop_oneof![Just(i32::MAX), Just(i32::MIN), 0..9i32],
    )
        .prop_map(|(sku, at, on_hand)| {
            let l = StockLevel {
                event_id: format!("l:{sku}:{at}:{on_hand}"),
                occurred_at_ms: at,
                store_id: "S1".into(),
                sku: sku.into(),
                on_hand,
                ..Default::default()
            };
            (topics::INVENTORY_STOCK_LEVELS, l.encode_to_vec())
        });
    let answer = (sku.clone(), sku.clone(), at(), 1..3u32, 0..5i32).prop_map(
        |(sku, other, at, n, answer)| {
            let r = StaffResponse {
                event_id: format!("r:{sku}:{at}:{answer}"),
                occurred_at_ms: at,
                store_id: "S1".into(),
                offer_id: format!("S1/{other}/S{n}/offer"),
                sku: sku.into(),
                answer,
                reason: "no".into(),
                ..Default::default()
            };
            (topics::FLOOR_RESPONSES, r.encode_to_vec())
        },
    );
    let check_answer = (
        sku.clone(),
        sku.clone(),
        at(),
        1..3u32,
        0..4i32,
        prop::option::of(-1..3i32),
    )
        .prop_map(|(sku, other, at, n, finding, counted)| {
            let r = StaffResponse {
                event_id: format!("c:{sku}:{at}:{finding}:{counted:?}"),
                occurred_at_ms: at,
                store_id: "S1".into(),
                check_id: format!("S1/{other}/S{n}/check"),
                sku: sku.into(),
                finding,
                counted,
                by: "ana".into(),
                ..Default::default()
            };
            (topics::FLOOR_RESPONSES, r.encode_to_vec())
        });
    let sale = (prop::collection::vec(sku, 1..4), at()).prop_map(|(skus, at)| {
        let s = Sale {
            event_id: format!("b:{at}:{}", skus.join("+")),
            occurred_at_ms: at,
            store_id: "S1".into(),
            basket_id: String::new(),
            lines: skus
                .into_iter()
                .map(|s| SaleLine {
                    sku: s.into(),
                    quantity: 1,
                    unit_price_cents: 1,
                })
                .collect(),
        };
        (topics::STORE_SALES, s.encode_to_vec())
    });
    (
        key,
        prop_oneof![3 => stockout, 4 => level, 2 => answer, 2 => check_answer, 2 => sale],
    )
        .prop_map(|(key, (topic, bytes))| (topic, key.to_owned(), bytes))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn no_record_panics_mixes_keys_or_outgrows_its_key(
        records in prop::collection::vec(record(), 1..60),
    ) {
        let mut o = offers();
        let mut part = PartitionState::default();
        let mut ids = std::collections::HashMap::<String, Vec<u8>>::new();
        let mut log = Vec::new();
        for (offset, (topic, key, bytes)) in records.iter().enumerate() {
            log.push(match *topic {
                topics::STOCKOUTS => format!("{:?}", StockoutEvent::decode(bytes.as_slice())),
                topics::INVENTORY_STOCK_LEVELS => format!("{:?}", StockLevel::decode(bytes.as_slice()).map(|l| (l.sku, l.on_hand, l.occurred_at_ms))),
                topics::FLOOR_RESPONSES => format!("{:?}", StaffResponse::decode(bytes.as_slice())),
                _ => format!("sale {:?}", Sale::decode(bytes.as_slice()).map(|s| (s.occurred_at_ms, s.lines.len()))),
            });
            let effect = step::handle(
                &mut o,
                &mut part,
                Record { topic, offset: offset as i64, key: Some(key.as_bytes()), payload: Some(bytes) },
            );
            for r in &effect.refusals {
                prop_assert!(!r.contains("panicked"), "{r}");
            }
            for (k, out) in &effect.outputs {
                let (event_id, at) = match out.topic {
                    topics::FLOOR_OFFERS => {
                        let e = OfferEvent::decode(out.payload.as_slice()).unwrap();
                        prop_assert_eq!(format!("{}/{}", e.store_id, e.sku), k.clone());
                        prop_assert!(e.offer_id.starts_with(&format!("{k}/")), "{e:?}");
                        prop_assert!(e.stockout_id.starts_with(&format!("{k}/")), "{e:?}");
                        (e.event_id, e.occurred_at_ms)
                    }
                    topics::FLOOR_CHECKS => {
                        let e = ShelfCheckEvent::decode(out.payload.as_slice()).unwrap();
                        prop_assert_eq!(format!("{}/{}", e.store_id, e.sku), k.clone());
                        prop_assert!(e.check_id.starts_with(&format!("{k}/")), "{e:?}");
                        prop_assert!(e.stockout_id.starts_with(&format!("{k}/")), "{e:?}");
                        (e.event_id, e.occurred_at_ms)
                    }
                    topics::STORE_STOCK_MOVEMENTS => {
                        let m = StockMovement::decode(out.payload.as_slice()).unwrap();
                        prop_assert_eq!(format!("{}/{}", m.store_id, m.sku), k.clone());
                        prop_assert!(m.quantity >= 0, "{m:?}");
                        (m.event_id, m.occurred_at_ms)
                    }
                    other => {
                        prop_assert!(false, "unexpected output topic {other}");
                        unreachable!()
                    }
                };
                // An event id never stands for two different records.
                log.push(format!("  -> {event_id} {at:?}"));
                if let Some(before) = ids.insert(event_id.clone(), out.payload.clone()) {
                    prop_assert!(before == out.payload, "event id {} reused:\n{}", event_id, log.join("\n"));
                }
            }
            for (k, slot) in &part.slots {
                prop_assert!(slot.encoded_len() <= MAX_STATE_BYTES, "{k}: {} bytes", slot.encoded_len());
            }
        }
        let _ = Answer::Accept;
    }
}
