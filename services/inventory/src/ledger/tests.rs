use super::*;
use shelfguard_events::Message;
use shelfguard_events::catalog::Size;
use shelfguard_events::store::SaleLine;
use shelfguard_runtime::state::PartitionState;

const MIN: i64 = 60_000;
const T0: i64 = 1_700_000_000_000;

fn ledger() -> Ledger {
    let catalog = Table::default();
    catalog.insert(
        "OIL-14".into(),
        Product {
            sku: "OIL-14".into(),
            family: "coconut-oil".into(),
            price_cents: 799,
            size: Some(Size {
                value: 14.0,
                unit: "oz".into(),
            }),
            reorder_point: 3,
            order_up_to: 12,
            ..Default::default()
        },
    );
    catalog.insert(
        "SOCKS".into(),
        Product {
            sku: "SOCKS".into(),
            family: "socks".into(),
            price_cents: 500,
            size: Some(Size {
                value: 1.0,
                unit: "each".into(),
            }),
            ..Default::default()
        },
    );
    Ledger::new(
        Policy {
            default_reorder_point: 4,
            default_order_up_to: 24,
            reorder_retry_after_secs: 600,
            ..Policy::default()
        },
        catalog,
    )
}

fn sale(id: &str, at: i64, sku: &str, q: i32) -> Event {
    let sale = Sale {
        event_id: id.into(),
        occurred_at_ms: at,
        store_id: "S1".into(),
        basket_id: "b".into(),
        lines: vec![SaleLine {
            sku: sku.into(),
            quantity: q,
            unit_price_cents: 1,
        }],
    };
    let l = ledger();
    l.decode(topics::STORE_SALES, &sale.encode_to_vec())
        .unwrap()
}

fn movement(kind: MovementKind, q: i32, at: i64) -> Event {
    Event::Movement(StockMovement {
        event_id: format!("m{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        sku: "OIL-14".into(),
        kind: kind as i32,
        quantity: q,
        note: String::new(),
    })
}

fn outcome(reorder_id: &str, status: OutcomeStatus, at: i64) -> Event {
    Event::Outcome(ReorderOutcome {
        event_id: format!("o{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        reorder_id: reorder_id.into(),
        sku: "OIL-14".into(),
        status: status as i32,
        failure_reason: "supplier out of stock".into(),
        ..Default::default()
    })
}

fn run(l: &mut Ledger, item: &mut InventoryItem, e: &Event) -> (Vec<ReorderRequest>, StockLevel) {
    let view = PartitionState::<InventoryItem>::default();
    let out = l.apply("S1/OIL-14", item, e, &view).unwrap();
    let reqs = out
        .iter()
        .filter(|o| o.topic == topics::WAREHOUSE_REORDER_REQUESTS)
        .map(|o| ReorderRequest::decode(o.payload.as_slice()).unwrap())
        .collect();
    let level = out
        .iter()
        .find(|o| o.topic == topics::INVENTORY_STOCK_LEVELS)
        .map(|o| StockLevel::decode(o.payload.as_slice()).unwrap())
        .unwrap();
    assert!(
        out.iter().all(|o| o.key == "S1"),
        "every output is keyed by store"
    );
    (reqs, level)
}

#[test]
fn on_hand_follows_movements_and_never_goes_negative() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    let cases: &[(Event, i32, i32)] = &[
        (movement(MovementKind::Count, 10, T0), 10, 0),
        (sale("s1", T0 + 1, "OIL-14", 4), 6, 0),
        (movement(MovementKind::Adjustment, -2, T0 + 2), 4, 0),
        (movement(MovementKind::Receipt, 5, T0 + 3), 9, 0),
        (sale("s2", T0 + 4, "OIL-14", 12), 0, 3),
        (movement(MovementKind::Count, 7, T0 + 5), 7, 0),
    ];
    for (e, on_hand, unaccounted) in cases {
        let (_, level) = run(&mut l, &mut item, e);
        assert_eq!(
            (level.on_hand, level.unaccounted),
            (*on_hand, *unaccounted),
            "after {e:?}"
        );
    }
}

#[test]
fn crossing_the_reorder_point_asks_once_up_to_the_target() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 5, T0));
    let (reqs, level) = run(&mut l, &mut item, &sale("s1", T0 + 1, "OIL-14", 2));
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].reorder_id, "S1/OIL-14/R1");
    assert_eq!(reqs[0].quantity, 12 - 3);
    assert_eq!(level.open_reorder_id, "S1/OIL-14/R1");
    let (reqs, _) = run(&mut l, &mut item, &sale("s2", T0 + 2, "OIL-14", 1));
    assert!(reqs.is_empty(), "one open reorder at most");
}

#[test]
fn a_failed_reorder_is_counted_and_retried_after_the_back_off() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 3, T0));
    assert_eq!(item.open_reorder_id, "S1/OIL-14/R1");
    let (reqs, level) = run(
        &mut l,
        &mut item,
        &outcome("S1/OIL-14/R1", OutcomeStatus::Failed, T0 + MIN),
    );
    assert!(reqs.is_empty(), "no retry inside the back-off");
    assert_eq!(level.failed_reorders_7d, 1);
    assert_eq!(
        level.last_reorder.as_ref().unwrap().failure_reason,
        "supplier out of stock"
    );
    assert!(level.open_reorder_id.is_empty());
    let (reqs, _) = run(&mut l, &mut item, &sale("s1", T0 + 5 * MIN, "OIL-14", 1));
    assert!(reqs.is_empty());
    let (reqs, _) = run(&mut l, &mut item, &sale("s2", T0 + 12 * MIN, "OIL-14", 1));
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].reorder_id, "S1/OIL-14/R2");
}

#[test]
fn failures_older_than_a_week_fall_out_of_the_count() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 3, T0));
    run(
        &mut l,
        &mut item,
        &outcome("S1/OIL-14/R1", OutcomeStatus::Failed, T0 + MIN),
    );
    let (_, level) = run(
        &mut l,
        &mut item,
        &movement(MovementKind::Count, 3, T0 + WEEK_MS + 2 * MIN),
    );
    assert_eq!(level.failed_reorders_7d, 0);
}

#[test]
fn skus_not_in_the_catalogue_wait_and_bad_bytes_are_refused() {
    let l = ledger();
    let bad = Sale {
        event_id: "e".into(),
        occurred_at_ms: T0,
        store_id: "S1".into(),
        basket_id: "b".into(),
        lines: vec![SaleLine {
            sku: "NOPE".into(),
            quantity: 1,
            unit_price_cents: 1,
        }],
    };
    // A SKU not in the catalogue yet decodes, and waits for its product (the engine holds it).
    let e = l.decode(topics::STORE_SALES, &bad.encode_to_vec()).unwrap();
    assert_eq!(
        l.waiting("S1/NOPE", &e).as_deref(),
        Some("SKU NOPE is not in the catalogue yet")
    );
    assert_eq!(l.waiting("S1/OIL-14", &e), None);
    assert!(
        l.decode(topics::STORE_SALES, b"\xff\xfe garbage")
            .unwrap_err()
            .0
            .contains("undecodable")
    );
}

#[test]
fn a_basket_touches_each_sku_once_with_summed_units() {
    let l = ledger();
    let s = Sale {
        event_id: "e".into(),
        occurred_at_ms: T0,
        store_id: "S1".into(),
        basket_id: "b".into(),
        lines: vec![
            SaleLine {
                sku: "OIL-14".into(),
                quantity: 1,
                unit_price_cents: 1,
            },
            SaleLine {
                sku: "SOCKS".into(),
                quantity: 2,
                unit_price_cents: 1,
            },
            SaleLine {
                sku: "OIL-14".into(),
                quantity: 2,
                unit_price_cents: 1,
            },
        ],
    };
    let e = l.decode(topics::STORE_SALES, &s.encode_to_vec()).unwrap();
    assert_eq!(l.keys(&e), vec!["S1/OIL-14", "S1/SOCKS"]);
    let Event::Sale { units, .. } = e else {
        panic!()
    };
    assert_eq!(units["OIL-14"], 3);
}

#[test]
fn an_outcome_for_a_reorder_that_is_not_open_is_refused_and_changes_nothing() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    let view = PartitionState::<InventoryItem>::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 3, T0));
    assert_eq!(item.open_reorder_id, "S1/OIL-14/R1");
    let before = item.clone();
    let other = l.apply(
        "S1/OIL-14",
        &mut item,
        &outcome("S1/OIL-14/R7", OutcomeStatus::Failed, T0),
        &view,
    );
    assert_eq!(
        other.unwrap_err().0,
        "outcome for reorder S1/OIL-14/R7 which is not open (open: S1/OIL-14/R1)"
    );
    assert_eq!(item, before);
    run(
        &mut l,
        &mut item,
        &outcome("S1/OIL-14/R1", OutcomeStatus::Failed, T0 + MIN),
    );
    let again = l.apply(
        "S1/OIL-14",
        &mut item,
        &outcome("S1/OIL-14/R1", OutcomeStatus::Failed, T0 + 2 * MIN),
        &view,
    );
    assert!(
        again.unwrap_err().0.contains("not open"),
        "a repeated outcome does not count twice"
    );
    assert_eq!(item.failures_ms.len(), 1);
}

/// A crash after the reorder request was published but before this state was written: the
/// warehouse's answer (another topic) is read before the replayed sale requests R1 again.
#[test]
fn an_answer_read_before_its_replayed_request_is_booked_when_the_request_is_made() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 5, T0));
    let (reqs, level) = run(
        &mut l,
        &mut item,
        &outcome("S1/OIL-14/R1", OutcomeStatus::Failed, T0 + 2 * MIN),
    );
    assert!(reqs.is_empty());
    assert_eq!(level.failed_reorders_7d, 0, "not booked before its request");
    let (reqs, level) = run(&mut l, &mut item, &sale("s1", T0 + MIN, "OIL-14", 2));
    assert_eq!(reqs.len(), 1, "the request is published again (same id)");
    assert_eq!(reqs[0].reorder_id, "S1/OIL-14/R1");
    assert_eq!(level.failed_reorders_7d, 1);
    assert!(level.open_reorder_id.is_empty(), "answered: nothing open");
    assert_eq!(item.early_outcome, None);
}

#[test]
fn an_early_answer_older_than_its_request_answers_nothing() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 5, T0));
    run(
        &mut l,
        &mut item,
        &outcome("S1/OIL-14/R1", OutcomeStatus::Failed, T0),
    );
    // Requested two hours after that answer was dated: it answered something else.
    let (reqs, level) = run(&mut l, &mut item, &sale("s1", T0 + 120 * MIN, "OIL-14", 2));
    assert_eq!(reqs.len(), 1);
    assert_eq!(level.open_reorder_id, "S1/OIL-14/R1");
    assert_eq!(level.failed_reorders_7d, 0);
    assert_eq!(item.early_outcome, None);
}

fn redeemed(at: i64, sub: &str, q: i32) -> Event {
    let e = OfferEvent {
        event_id: format!("S1/OIL-14/S1/offer:redeemed{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        offer_id: "S1/OIL-14/S1/offer".into(),
        sku: "OIL-14".into(),
        change: Some(offer_event::Change::Redeemed(
            shelfguard_events::floor::Redeemed {
                substitute_sku: sub.into(),
                quantity: q,
                ..Default::default()
            },
        )),
        ..Default::default()
    };
    ledger()
        .decode(topics::FLOOR_OFFERS, &e.encode_to_vec())
        .unwrap()
}

#[test]
fn shrink_and_counts_are_ledger_entries_with_their_cause() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    let (_, level) = run(&mut l, &mut item, &movement(MovementKind::Count, 10, T0));
    assert_eq!(level.cause, Cause::Count as i32);
    assert_eq!(level.count_discrepancy, 10, "first count: the books held 0");
    let (_, level) = run(
        &mut l,
        &mut item,
        &movement(MovementKind::Shrink, 3, T0 + 1),
    );
    assert_eq!((level.on_hand, level.cause), (7, Cause::Shrink as i32));
    let (_, level) = run(&mut l, &mut item, &sale("s1", T0 + 2, "OIL-14", 9));
    assert_eq!((level.on_hand, level.unaccounted), (0, 2));
    assert_eq!((level.cause, level.sold), (Cause::Sale as i32, 9));
    // The books say -2; a count of 1 finds 3 more than that.
    let (_, level) = run(&mut l, &mut item, &movement(MovementKind::Count, 1, T0 + 3));
    assert_eq!((level.on_hand, level.unaccounted), (1, 0));
    assert_eq!(level.count_discrepancy, 3);
    let (_, level) = run(&mut l, &mut item, &movement(MovementKind::Count, 0, T0 + 4));
    assert_eq!(
        level.count_discrepancy, -1,
        "a missing unit is a negative discrepancy"
    );
}

#[test]
fn a_redeemed_offer_takes_the_substitute_out_as_a_give_away() {
    let mut l = ledger();
    let e = redeemed(T0, "OIL-14", 1);
    assert_eq!(l.keys(&e), vec!["S1/OIL-14".to_owned()]);
    let mut item = InventoryItem {
        on_hand: 9,
        ..Default::default()
    };
    let (_, level) = run(&mut l, &mut item, &e);
    assert_eq!((level.on_hand, level.cause), (8, Cause::Giveaway as i32));
    // Every other lifecycle step is read and ignored: no key, no dead letter.
    let accepted = OfferEvent {
        event_id: "x:accepted".into(),
        occurred_at_ms: T0,
        store_id: "S1".into(),
        offer_id: "x".into(),
        change: Some(offer_event::Change::Accepted(Default::default())),
        ..Default::default()
    };
    let e = l
        .decode(topics::FLOOR_OFFERS, &accepted.encode_to_vec())
        .unwrap();
    assert!(l.keys(&e).is_empty());
    // A redemption of a product not in the catalogue yet waits for it.
    let bad = OfferEvent {
        change: Some(offer_event::Change::Redeemed(
            shelfguard_events::floor::Redeemed {
                substitute_sku: "NOPE".into(),
                quantity: 1,
                ..Default::default()
            },
        )),
        ..accepted
    };
    let e = l
        .decode(topics::FLOOR_OFFERS, &bad.encode_to_vec())
        .unwrap();
    assert_eq!(l.keys(&e), vec!["S1/NOPE"]);
    assert!(l.waiting("S1/NOPE", &e).is_some());
}

#[test]
fn a_due_retry_goes_out_on_any_later_event_of_the_store() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 0, T0));
    run(
        &mut l,
        &mut item,
        &outcome("S1/OIL-14/R1", OutcomeStatus::Failed, T0 + MIN),
    );
    let socks = sale("s1", T0 + 2 * MIN, "SOCKS", 1);
    assert_eq!(l.keys(&socks), vec!["S1/SOCKS".to_owned()]);
    assert!(l.due_keys(&socks).is_empty(), "not due yet");
    let socks = sale("s2", T0 + 11 * MIN, "SOCKS", 1);
    assert_eq!(
        l.keys(&socks),
        vec!["S1/SOCKS".to_owned()],
        "the sale is about socks only"
    );
    assert_eq!(
        l.due_keys(&socks),
        vec!["S1/OIL-14".to_owned()],
        "the back-off ran out: the oil key is due"
    );
    let view = PartitionState::<InventoryItem>::default();
    let out = l
        .on_due("S1/OIL-14", &mut item, T0 + 11 * MIN, &view)
        .unwrap();
    let req = ReorderRequest::decode(out[0].payload.as_slice()).unwrap();
    let level = StockLevel::decode(out[1].payload.as_slice()).unwrap();
    assert_eq!(req.reorder_id, "S1/OIL-14/R2");
    assert_eq!(
        (level.store_id.as_str(), level.sku.as_str()),
        ("S1", "OIL-14")
    );
    assert_eq!(level.cause, Cause::ReorderRequested as i32);
    assert_eq!(level.recent_failures.len(), 1);
    assert_eq!(level.recent_failures[0].reorder_id, "S1/OIL-14/R1");
    let later = sale("s3", T0 + 30 * MIN, "SOCKS", 1);
    assert!(l.due_keys(&later).is_empty(), "retry sent: no longer due");
}

/// Issue 13: a count is stock as of its event time, whatever the arrival order across topics.
#[test]
fn a_count_is_stock_as_of_its_event_time() {
    let mut l = ledger();
    // A later sale delivered before an earlier count: the count re-applies it.
    let mut item = InventoryItem::default();
    let (_, level) = run(&mut l, &mut item, &sale("s", T0 + MIN, "OIL-14", 2));
    assert_eq!((level.on_hand, level.unaccounted), (0, 2));
    let (_, level) = run(&mut l, &mut item, &movement(MovementKind::Count, 12, T0));
    assert_eq!(
        (level.on_hand, level.unaccounted),
        (10, 0),
        "12 counted, 2 sold after"
    );
    assert_eq!(
        level.count_discrepancy, 12,
        "the books had nothing before the count"
    );
    // An earlier sale delivered after the count is already in it.
    let (_, level) = run(&mut l, &mut item, &sale("early", T0 - MIN, "OIL-14", 3));
    assert_eq!(level.on_hand, 10);
    assert_eq!(level.sold, 3, "still a sale for the sales rate");
    // A count older than the one applied is superseded.
    let (_, level) = run(
        &mut l,
        &mut item,
        &movement(MovementKind::Count, 50, T0 - 2 * MIN),
    );
    assert_eq!(level.on_hand, 10);
    // A newer count wins, with the movements after it on top.
    run(
        &mut l,
        &mut item,
        &movement(MovementKind::Receipt, 5, T0 + 3 * MIN),
    );
    let (_, level) = run(
        &mut l,
        &mut item,
        &movement(MovementKind::Count, 4, T0 + 2 * MIN),
    );
    assert_eq!(level.on_hand, 9, "4 counted, 5 received after");
    assert_eq!(
        level.count_discrepancy,
        4 - 10,
        "the books said 10 at that time"
    );
}

#[test]
fn the_window_a_count_re_applies_is_bounded() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 0, T0));
    for i in 0..100 {
        run(
            &mut l,
            &mut item,
            &movement(MovementKind::Receipt, 1, T0 + 1 + i),
        );
    }
    assert_eq!(item.recent_moves.len(), super::MAX_RECENT_MOVES);
    run(
        &mut l,
        &mut item,
        &movement(
            MovementKind::Receipt,
            1,
            T0 + 2 * super::RECENT_MOVES_WINDOW_MS,
        ),
    );
    assert_eq!(
        item.recent_moves.len(),
        1,
        "older than the window of the newest"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Step {
        Sale(i32),
        Receipt(i32),
        Adjust(i32),
        Shrink(i32),
        Count(i32),
        GiveAway(i32),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (1..6i32).prop_map(Step::Sale),
            (1..30i32).prop_map(Step::Receipt),
            (-8..8i32).prop_map(Step::Adjust),
            (1..5i32).prop_map(Step::Shrink),
            (0..40i32).prop_map(Step::Count),
            (1..3i32).prop_map(Step::GiveAway),
        ]
    }

    proptest! {
        /// On-hand minus unaccounted is the last count plus every movement since; what is
        /// published never goes below zero.
        #[test]
        fn on_hand_is_the_sum_of_movements_since_the_last_count(
            steps in proptest::collection::vec(step(), 1..60)
        ) {
            let mut l = ledger();
            let mut item = InventoryItem::default();
            let mut expected = 0i32;
            for (i, s) in steps.iter().enumerate() {
                let at = T0 + i as i64 * MIN;
                let e = match *s {
                    Step::Sale(q) => { expected -= q; sale(&format!("s{i}"), at, "OIL-14", q) }
                    Step::Receipt(q) => { expected += q; movement(MovementKind::Receipt, q, at) }
                    Step::Adjust(q) => { expected += q; movement(MovementKind::Adjustment, q, at) }
                    Step::Shrink(q) => { expected -= q; movement(MovementKind::Shrink, q, at) }
                    Step::Count(q) => { expected = q; movement(MovementKind::Count, q, at) }
                    Step::GiveAway(q) => { expected -= q; redeemed(at, "OIL-14", q) }
                };
                let (_, level) = run(&mut l, &mut item, &e);
                prop_assert!(level.on_hand >= 0 && level.unaccounted >= 0);
                prop_assert_eq!(level.on_hand - level.unaccounted, expected);
            }
        }
    }
}

#[test]
fn goods_on_their_way_are_not_ordered_twice() {
    let mut l = ledger();
    let mut item = InventoryItem::default();
    run(&mut l, &mut item, &movement(MovementKind::Count, 2, T0));
    assert_eq!(item.open_reorder_id, "S1/OIL-14/R1");
    let mut o = outcome("S1/OIL-14/R1", OutcomeStatus::Fulfilled, T0 + MIN);
    if let Event::Outcome(x) = &mut o {
        x.quantity_shipped = 10;
    }
    let (reqs, level) = run(&mut l, &mut item, &o);
    assert!(
        reqs.is_empty(),
        "10 on order: position 12 is above the reorder point"
    );
    assert_eq!(level.on_order, 10);
    let (reqs, _) = run(&mut l, &mut item, &sale("s1", T0 + 2 * MIN, "OIL-14", 1));
    assert!(reqs.is_empty());
    let (_, level) = run(
        &mut l,
        &mut item,
        &movement(MovementKind::Receipt, 10, T0 + 3 * MIN),
    );
    assert_eq!((level.on_hand, level.on_order), (11, 0));
}

#[test]
fn policy_settings_out_of_range_are_refused_and_defaults_agree() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        policy: Policy,
    }
    use clap::Parser as _;
    for arg in [
        "--reorder-retry-after-secs=-1",
        "--reorder-retry-after-secs=2592001",
        "--default-reorder-point=-1",
        "--default-order-up-to=1000001",
        "--unknown-sku-grace-hours=0",
    ] {
        let err = Cli::try_parse_from(["x", arg])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("invalid value") && (err.contains("not in") || err.contains("outside")),
            "{arg}: {err:?}"
        );
    }
    let edge = Cli::try_parse_from(["x", "--reorder-retry-after-secs", "0"]).unwrap();
    assert_eq!(edge.policy.reorder_retry_after_secs, 0);
    let parsed = Cli::try_parse_from(["x"]).unwrap().policy;
    let default = Policy::default();
    assert_eq!(
        (
            parsed.default_reorder_point,
            parsed.default_order_up_to,
            parsed.reorder_retry_after_secs,
            parsed.hold.unknown_sku_grace_hours
        ),
        (
            default.default_reorder_point,
            default.default_order_up_to,
            default.reorder_retry_after_secs,
            default.hold.unknown_sku_grace_hours
        )
    );
}
