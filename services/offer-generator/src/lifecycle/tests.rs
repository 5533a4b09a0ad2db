use super::*;
use shelfguard_events::Message;
use shelfguard_events::catalog::{HardAttribute, Size};
use shelfguard_events::floor::ShelfFinding;
use shelfguard_events::stockout::{Closed, Evidence, Opened};
use shelfguard_runtime::state::{PartitionState, Slot};

fn product(sku: &str, brand: &str, oz: f64, price: i64) -> Product {
    Product {
        sku: sku.into(),
        name: format!("{brand} Coconut Oil"),
        brand: brand.into(),
        family: "coconut-oil".into(),
        size: Some(Size {
            value: oz,
            unit: "oz".into(),
        }),
        price_cents: price,
        complements: vec!["SPATULA".into()],
        ..Default::default()
    }
}

fn offers() -> Offers {
    let catalog = Table::default();
    for p in [
        product("GOLD-14", "Gold", 14.0, 799),
        product("GOLD-28", "Gold", 28.0, 1399),
        product("PRIME-14", "Prime", 14.0, 1099),
    ] {
        catalog.insert(p.sku.clone(), p);
    }
    catalog.insert(
        "SPATULA".into(),
        Product {
            sku: "SPATULA".into(),
            name: "Spatula".into(),
            family: "utensils".into(),
            price_cents: 300,
            ..Default::default()
        },
    );
    Offers::new(Policy::default(), catalog)
}

fn stock(view: &mut PartitionState<OfferItem>, sku: &str, on_hand: i32) {
    view.slots.insert(
        format!("S1/{sku}"),
        Slot {
            state: OfferItem {
                on_hand,
                ..Default::default()
            },
            ..Default::default()
        },
    );
}

fn opened(failed: i32) -> Event {
    Event::Stockout(StockoutEvent {
        event_id: "so:S1/GOLD-14/S1:opened".into(),
        occurred_at_ms: 1_700_000_000_000,
        store_id: "S1".into(),
        stockout_id: "S1/GOLD-14/S1".into(),
        sku: "GOLD-14".into(),
        change: Some(Change::Opened(Opened {
            evidence: Some(Evidence {
                failed_reorders_7d: failed,
                last_failure_reason: "supplier out of stock".into(),
                ..Default::default()
            }),
            ..Default::default()
        })),
    })
}

fn closed() -> Event {
    Event::Stockout(StockoutEvent {
        event_id: "so:S1/GOLD-14/S1:closed".into(),
        occurred_at_ms: 1_700_000_100_000,
        store_id: "S1".into(),
        stockout_id: "S1/GOLD-14/S1".into(),
        sku: "GOLD-14".into(),
        change: Some(Change::Closed(Closed {
            reason: "stock returned (on-hand 12)".into(),
            on_hand: 12,
        })),
    })
}

fn level_of(sku: &str, on_hand: i32, at: i64) -> Event {
    Event::Level(shelfguard_events::inventory::StockLevel {
        event_id: format!("l-{sku}-{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        sku: sku.into(),
        on_hand,
        ..Default::default()
    })
}

fn decode(out: &[Output]) -> Vec<OfferEvent> {
    out.iter()
        .map(|o| {
            assert_eq!((o.topic, o.key.as_str()), (topics::FLOOR_OFFERS, "S1"));
            OfferEvent::decode(o.payload.as_slice()).unwrap()
        })
        .collect()
}

#[test]
fn coconut_oil_gets_the_bigger_jar_free_after_three_failures() {
    let mut o = offers();
    let mut view = PartitionState::default();
    stock(&mut view, "GOLD-28", 6);
    stock(&mut view, "PRIME-14", 6);
    stock(&mut view, "SPATULA", 9);
    let mut item = OfferItem::default();
    let events = decode(&o.apply("S1/GOLD-14", &mut item, &opened(3), &view).unwrap());
    assert_eq!(events.len(), 1);
    let Some(offer_event::Change::Issued(Issued { offer: Some(offer) })) = &events[0].change else {
        panic!("{events:?}")
    };
    assert_eq!(offer.substitute.as_ref().unwrap().sku, "GOLD-28");
    assert_eq!(offer.gesture, Gesture::Free as i32);
    assert!(offer.reason.contains("failed 3x"), "{}", offer.reason);
    assert!(offer.reason.contains(&offer.redemption_code));
    assert_eq!(offer.redemption_code, redemption_code("S1/GOLD-14/S1"));
    assert_eq!(
        offer
            .complements
            .iter()
            .map(|c| c.sku.as_str())
            .collect::<Vec<_>>(),
        vec!["SPATULA"]
    );
    assert_eq!(events[0].event_id, "S1/GOLD-14/S1/offer:issued");
}

#[test]
fn one_offer_per_episode_and_restock_withdraws_it_once() {
    let mut o = offers();
    let mut view = PartitionState::default();
    stock(&mut view, "GOLD-28", 6);
    let mut item = OfferItem::default();
    assert_eq!(
        decode(&o.apply("S1/GOLD-14", &mut item, &opened(1), &view).unwrap()).len(),
        1
    );
    assert!(
        o.apply("S1/GOLD-14", &mut item, &opened(1), &view)
            .unwrap()
            .is_empty(),
        "the same episode again"
    );
    let w = decode(&o.apply("S1/GOLD-14", &mut item, &closed(), &view).unwrap());
    assert!(matches!(
        w[0].change,
        Some(offer_event::Change::Withdrawn(_))
    ));
    assert_eq!(w[0].offer_id, "S1/GOLD-14/S1/offer");
    assert!(
        o.apply("S1/GOLD-14", &mut item, &closed(), &view)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn no_offer_without_a_substitute_in_stock_and_the_reason_is_kept() {
    let mut o = offers();
    let mut view = PartitionState::default();
    stock(&mut view, "GOLD-28", 1);
    let mut item = OfferItem::default();
    let events = decode(&o.apply("S1/GOLD-14", &mut item, &opened(3), &view).unwrap());
    let Some(offer_event::Change::NotOffered(n)) = &events[0].change else {
        panic!("{events:?}")
    };
    assert_eq!(n.cause, not_offered::Cause::NoSubstitute as i32);
    assert!(n.reason.contains("no substitute"), "{}", n.reason);
    assert_eq!(item.no_offer_reason, n.reason);
    // The same reason is recorded once per episode.
    let level = level_of("GOLD-28", 1, 1_700_000_050_000);
    assert!(
        o.apply("S1/GOLD-14", &mut item, &level, &view)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn organic_original_never_gets_a_non_organic_substitute() {
    let mut o = offers();
    let mut organic = product("GOLD-14", "Gold", 14.0, 799);
    organic.hard_attributes = vec![HardAttribute::Organic as i32];
    o.catalog.insert("GOLD-14".into(), organic);
    let mut view = PartitionState::default();
    stock(&mut view, "GOLD-28", 6);
    stock(&mut view, "PRIME-14", 6);
    let mut item = OfferItem::default();
    let events = decode(&o.apply("S1/GOLD-14", &mut item, &opened(3), &view).unwrap());
    assert!(
        matches!(events[0].change, Some(offer_event::Change::NotOffered(_))),
        "{events:?}"
    );
    assert!(item.offer.is_none());
}

#[test]
fn a_waiting_episode_gets_its_offer_when_a_substitute_comes_into_stock() {
    let mut o = offers();
    let mut view = PartitionState::default();
    stock(&mut view, "GOLD-28", 0);
    let mut item = OfferItem::default();
    o.apply("S1/GOLD-14", &mut item, &opened(3), &view).unwrap();
    assert!(item.offer.is_none());
    let level = level_of("GOLD-28", 6, 1_700_000_050_000);
    assert_eq!(
        o.keys(&level),
        vec!["S1/GOLD-28", "S1/GOLD-14"],
        "the waiting episode is touched too"
    );
    stock(&mut view, "GOLD-28", 6);
    let events = decode(&o.apply("S1/GOLD-14", &mut item, &level, &view).unwrap());
    let Some(offer_event::Change::Issued(Issued { offer: Some(offer) })) = &events[0].change else {
        panic!("{events:?}")
    };
    assert_eq!(offer.substitute.as_ref().unwrap().sku, "GOLD-28");
    assert_eq!(events[0].occurred_at_ms, 1_700_000_050_000);
    assert_eq!(
        o.keys(&level),
        vec!["S1/GOLD-28", "S1/GOLD-14"],
        "answered: no longer waiting, but its substitute's stock is watched"
    );
    assert!(
        o.apply("S1/GOLD-14", &mut item, &level, &view)
            .unwrap()
            .is_empty(),
        "one offer per episode"
    );
}

const T0: i64 = 1_700_000_000_000;
const MIN: i64 = 60_000;

fn response(answer: Answer, offer_id: &str, at: i64) -> Event {
    Event::Response(StaffResponse {
        event_id: format!("r-{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        offer_id: offer_id.into(),
        sku: "GOLD-14".into(),
        answer: answer as i32,
        reason: "customer left".into(),
        by: "ana".into(),
        channel: "console".into(),
        ..Default::default()
    })
}

fn change_names(events: &[OfferEvent]) -> Vec<&'static str> {
    events
        .iter()
        .map(|e| match e.change {
            Some(offer_event::Change::Issued(_)) => "issued",
            Some(offer_event::Change::Withdrawn(_)) => "withdrawn",
            Some(offer_event::Change::Accepted(_)) => "accepted",
            Some(offer_event::Change::Declined(_)) => "declined",
            Some(offer_event::Change::Redeemed(_)) => "redeemed",
            Some(offer_event::Change::Expired(_)) => "expired",
            Some(offer_event::Change::NotOffered(_)) => "not-offered",
            None => "-",
        })
        .collect()
}

/// An offer for GOLD-14 (3 failures: GOLD-28 free, 1399 cents).
fn issued(o: &mut Offers, view: &mut PartitionState<OfferItem>) -> OfferItem {
    stock(view, "GOLD-28", 6);
    let mut item = OfferItem::default();
    let e = decode(&o.apply("S1/GOLD-14", &mut item, &opened(3), view).unwrap());
    assert_eq!(change_names(&e), ["issued"]);
    item
}

#[test]
fn staff_answers_follow_the_offer_to_its_end() {
    let mut o = offers();
    let mut view = PartitionState::default();
    let mut item = issued(&mut o, &mut view);
    let id = "S1/GOLD-14/S1/offer";
    let e = decode(
        &o.apply(
            "S1/GOLD-14",
            &mut item,
            &response(Answer::Accept, id, T0 + MIN),
            &view,
        )
        .unwrap(),
    );
    assert_eq!(change_names(&e), ["accepted"]);
    assert_eq!(e[0].event_id, format!("{id}:accepted"));
    assert!(
        o.apply(
            "S1/GOLD-14",
            &mut item,
            &response(Answer::Accept, id, T0 + 2 * MIN),
            &view
        )
        .unwrap()
        .is_empty(),
        "a second accept changes nothing"
    );
    let e = decode(
        &o.apply(
            "S1/GOLD-14",
            &mut item,
            &response(Answer::Redeem, id, T0 + 3 * MIN),
            &view,
        )
        .unwrap(),
    );
    let Some(offer_event::Change::Redeemed(r)) = &e[0].change else {
        panic!("{e:?}")
    };
    assert_eq!(
        (r.substitute_sku.as_str(), r.quantity, r.gesture_value_cents),
        ("GOLD-28", 1, 1399)
    );
    assert_eq!(
        e[0].budget_committed_cents, 1399,
        "a redeemed gesture stays spent"
    );
    // The offer is over: any further answer is refused with the reason, state unchanged.
    let before = item.clone();
    let err = o
        .apply(
            "S1/GOLD-14",
            &mut item,
            &response(Answer::Decline, id, T0 + 4 * MIN),
            &view,
        )
        .unwrap_err();
    assert!(err.0.contains("not live"), "{}", err.0);
    assert_eq!(item, before);
    // No new offer for an answered episode, even when stock moves.
    assert!(
        o.apply(
            "S1/GOLD-14",
            &mut item,
            &level_of("GOLD-28", 7, T0 + 5 * MIN),
            &view
        )
        .unwrap()
        .is_empty()
    );
}

#[test]
fn a_declined_offer_releases_its_gesture() {
    let mut o = offers();
    let mut view = PartitionState::default();
    let mut item = issued(&mut o, &mut view);
    assert_eq!(budget::committed_on(&item, budget::day(T0)), 1399);
    let e = decode(
        &o.apply(
            "S1/GOLD-14",
            &mut item,
            &response(Answer::Decline, "S1/GOLD-14/S1/offer", T0 + MIN),
            &view,
        )
        .unwrap(),
    );
    let Some(offer_event::Change::Declined(d)) = &e[0].change else {
        panic!("{e:?}")
    };
    assert_eq!(d.reason, "customer left");
    assert_eq!(e[0].budget_committed_cents, 0);
    let err = o
        .apply(
            "S1/GOLD-14",
            &mut item,
            &response(Answer::Accept, "S1/OTHER/S9/offer", T0 + MIN),
            &view,
        )
        .unwrap_err();
    assert!(err.0.contains("S1/OTHER/S9/offer"));
}

#[test]
fn an_offer_expires_on_the_next_event_of_the_store_after_its_time() {
    let mut o = offers();
    let mut view = PartitionState::default();
    let mut item = issued(&mut o, &mut view);
    o.restored("S1/GOLD-14", &item);
    let expiry = item.offer.as_ref().unwrap().expires_at_ms;
    assert_eq!(expiry, 1_700_000_000_000 + 240 * MIN);
    let early = level_of("SPATULA", 3, expiry - 1);
    assert_eq!(o.keys(&early), ["S1/SPATULA"]);
    assert!(o.due_keys(&early).is_empty());
    let late = level_of("SPATULA", 3, expiry);
    assert_eq!(
        o.keys(&late),
        ["S1/SPATULA"],
        "the level is about the spatula only"
    );
    assert_eq!(o.due_keys(&late), ["S1/GOLD-14"]);
    let e = decode(&o.on_due("S1/GOLD-14", &mut item, expiry, &view).unwrap());
    assert_eq!(change_names(&e), ["expired"]);
    assert_eq!(e[0].sku, "GOLD-14");
    assert_eq!(e[0].budget_committed_cents, 0);
    assert!(o.due_keys(&late).is_empty());
    let err = o
        .apply(
            "S1/GOLD-14",
            &mut item,
            &response(Answer::Redeem, "S1/GOLD-14/S1/offer", expiry + 1),
            &view,
        )
        .unwrap_err();
    assert!(err.0.contains("not live"));
}

#[test]
fn when_the_substitute_runs_out_the_offer_is_withdrawn_and_the_next_one_offered() {
    let mut o = offers();
    let mut view = PartitionState::default();
    stock(&mut view, "PRIME-14", 5);
    let mut item = issued(&mut o, &mut view);
    o.restored("S1/GOLD-14", &item);
    let gone = level_of("GOLD-28", 0, T0 + MIN);
    assert_eq!(o.keys(&gone), ["S1/GOLD-28", "S1/GOLD-14"]);
    stock(&mut view, "GOLD-28", 0);
    let e = decode(&o.apply("S1/GOLD-14", &mut item, &gone, &view).unwrap());
    assert_eq!(change_names(&e), ["withdrawn", "issued"]);
    let Some(offer_event::Change::Issued(Issued { offer: Some(next) })) = &e[1].change else {
        panic!()
    };
    assert_eq!(next.substitute.as_ref().unwrap().sku, "PRIME-14");
    assert_eq!(e[1].offer_id, "S1/GOLD-14/S1/offer-2");
    assert_eq!(
        e[1].budget_committed_cents, 1099,
        "the first gesture was released"
    );
}

#[test]
fn the_daily_budget_limits_the_gesture_then_the_offer() {
    let mut o = offers();
    o.policy.store_budgets = crate::budget::parse_store_budgets("S1=1800").unwrap();
    let mut view = PartitionState::default();
    stock(&mut view, "GOLD-28", 6);
    // Another product's offer committed 1000 today already.
    view.slots.insert(
        "S1/OTHER".into(),
        Slot {
            state: OfferItem {
                committed_day: budget::day(T0),
                committed_cents: 1000,
                ..Default::default()
            },
            ..Default::default()
        },
    );
    let mut item = OfferItem::default();
    let e = decode(&o.apply("S1/GOLD-14", &mut item, &opened(3), &view).unwrap());
    let Some(offer_event::Change::Issued(Issued { offer: Some(offer) })) = &e[0].change else {
        panic!("{e:?}")
    };
    assert_eq!(
        (offer.gesture, offer.gesture_value_cents),
        (Gesture::AtOriginalPrice as i32, 600),
        "free (1399) no longer fits in the 800 left: the smaller gesture does"
    );
    assert_eq!(
        (e[0].budget_cents, e[0].budget_committed_cents),
        (1800, 1600)
    );
    // The next stockout of the day (PRIME-14: GOLD-28 at its price costs 300) finds 200 left.
    view.slots.insert(
        "S1/GOLD-14".into(),
        Slot {
            state: item.clone(),
            ..Default::default()
        },
    );
    let mut op = opened(3);
    if let Event::Stockout(s) = &mut op {
        s.stockout_id = "S1/PRIME-14/S1".into();
        s.sku = "PRIME-14".into();
    }
    let mut prime = OfferItem::default();
    let e = decode(&o.apply("S1/PRIME-14", &mut prime, &op, &view).unwrap());
    let Some(offer_event::Change::NotOffered(n)) = &e[0].change else {
        panic!("{e:?}")
    };
    assert!(n.reason.contains("1600 of 1800"), "{}", n.reason);
    assert_eq!(
        n.cause,
        not_offered::Cause::BudgetExhausted as i32,
        "{}",
        n.reason
    );
}

/// A suspected stockout of GOLD-14 (S1/GOLD-14/S<seq>) at `at`: 3 h without a sale where 12
/// were expected, 12 on hand by the books.
fn suspected(seq: u32, at: i64) -> Event {
    Event::Stockout(StockoutEvent {
        event_id: format!("so:S1/GOLD-14/S{seq}:opened"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        stockout_id: format!("S1/GOLD-14/S{seq}"),
        sku: "GOLD-14".into(),
        change: Some(Change::Opened(Opened {
            kind: Kind::Suspected as i32,
            evidence: Some(Evidence {
                on_hand: 12,
                gap_ms: 3 * 3_600_000,
                sales_per_hour: 4.0,
                expected_sales_in_gap: 12.0,
                ..Default::default()
            }),
            ..Default::default()
        })),
    })
}

/// The shelf-check events and offer events among `out`, and the count movements.
fn split(
    out: &[Output],
) -> (
    Vec<shelfguard_events::floor::ShelfCheckEvent>,
    Vec<OfferEvent>,
    Vec<shelfguard_events::store::StockMovement>,
) {
    let (mut checks, mut offers, mut moves) = (Vec::new(), Vec::new(), Vec::new());
    for o in out {
        assert_eq!(o.key, "S1");
        match o.topic {
            topics::FLOOR_CHECKS => checks.push(
                shelfguard_events::floor::ShelfCheckEvent::decode(o.payload.as_slice()).unwrap(),
            ),
            topics::FLOOR_OFFERS => offers.push(OfferEvent::decode(o.payload.as_slice()).unwrap()),
            topics::STORE_STOCK_MOVEMENTS => moves.push(
                shelfguard_events::store::StockMovement::decode(o.payload.as_slice()).unwrap(),
            ),
            other => panic!("unexpected output topic {other}"),
        }
    }
    (checks, offers, moves)
}

fn check_answer(finding: ShelfFinding, check_id: &str, at: i64) -> Event {
    Event::Response(StaffResponse {
        event_id: format!("check-answer-{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        sku: "GOLD-14".into(),
        check_id: check_id.into(),
        finding: finding as i32,
        by: "ana".into(),
        channel: "console".into(),
        ..Default::default()
    })
}

/// Runs one event through the engine's own path and returns its outputs and refusals.
fn run(
    o: &mut Offers,
    part: &mut PartitionState<OfferItem>,
    n: i64,
    e: &Event,
) -> (Vec<Output>, Vec<String>) {
    let effect = shelfguard_runtime::step::apply_event(o, part, "t", n, e);
    (
        effect.outputs.into_iter().map(|(_, o)| o).collect(),
        effect
            .refusals
            .into_iter()
            .map(|r| format!("{r:?}"))
            .collect(),
    )
}

#[test]
fn a_suspected_stockout_gets_a_shelf_check_and_no_offer() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    let (out, refused) = run(&mut o, &mut part, 1, &suspected(1, T0));
    assert!(refused.is_empty(), "{refused:?}");
    let (checks, offers, moves) = split(&out);
    assert!(offers.is_empty(), "no offer for a suspicion: {offers:?}");
    assert!(moves.is_empty());
    assert_eq!(checks.len(), 1);
    let c = &checks[0];
    assert_eq!(
        (
            c.event_id.as_str(),
            c.check_id.as_str(),
            c.stockout_id.as_str()
        ),
        (
            "S1/GOLD-14/S1/check:requested",
            "S1/GOLD-14/S1/check",
            "S1/GOLD-14/S1"
        )
    );
    let Some(shelfguard_events::floor::shelf_check_event::Change::Requested(r)) = &c.change else {
        panic!("{c:?}")
    };
    assert_eq!(
        r.question,
        "Is there any 14 oz Gold Coconut Oil on the shelf?"
    );
    assert!(r.reason.contains("no sale for 3 h"), "{}", r.reason);
    assert_eq!(r.expires_at_ms, T0 + 45 * MIN);
    // A substitute coming into stock does not make an offer for the suspicion either.
    let (out, _) = run(&mut o, &mut part, 2, &level_of("PRIME-14", 9, T0 + MIN));
    assert!(split(&out).1.is_empty(), "{out:?}");
}

#[test]
fn empty_books_a_count_then_the_confirmed_stockout_gets_an_offer_that_says_so() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    run(&mut o, &mut part, 1, &suspected(1, T0));
    let answer = check_answer(ShelfFinding::Empty, "S1/GOLD-14/S1/check", T0 + 10 * MIN);
    let (out, refused) = run(&mut o, &mut part, 2, &answer);
    assert!(refused.is_empty(), "{refused:?}");
    let (checks, offers, moves) = split(&out);
    assert!(offers.is_empty());
    assert_eq!(checks[0].event_id, "S1/GOLD-14/S1/check:answered");
    assert_eq!(moves.len(), 1);
    assert_eq!(
        (moves[0].quantity, moves[0].note.as_str()),
        (0, "shelf check S1/GOLD-14/S1/check")
    );
    // The same answer from another device: the check has ended (dead letter).
    let again = check_answer(ShelfFinding::Empty, "S1/GOLD-14/S1/check", T0 + 11 * MIN);
    let (out, refused) = run(&mut o, &mut part, 3, &again);
    assert!(out.is_empty());
    assert!(refused[0].contains("is not live"), "{refused:?}");
    // The detector closes the suspicion on the count and opens a confirmed stockout.
    let (out, _) = run(&mut o, &mut part, 4, &closed_with(0, T0 + 12 * MIN));
    assert!(
        out.is_empty(),
        "the answered check is not withdrawn: {out:?}"
    );
    let confirmed = Event::Stockout(StockoutEvent {
        event_id: "so:S1/GOLD-14/S2:opened".into(),
        occurred_at_ms: T0 + 12 * MIN,
        store_id: "S1".into(),
        stockout_id: "S1/GOLD-14/S2".into(),
        sku: "GOLD-14".into(),
        change: Some(Change::Opened(Opened {
            kind: Kind::Confirmed as i32,
            evidence: Some(Evidence::default()),
            ..Default::default()
        })),
    });
    let (out, _) = run(&mut o, &mut part, 5, &confirmed);
    let (checks, offers, _) = split(&out);
    assert!(checks.is_empty());
    let Some(offer_event::Change::Issued(Issued { offer: Some(offer) })) = &offers[0].change else {
        panic!("{offers:?}")
    };
    assert_eq!(offers[0].offer_id, "S1/GOLD-14/S2/offer");
    assert!(!offer.suspected);
    assert_eq!(offer.gesture, Gesture::AtOriginalPrice as i32);
    assert!(
        offer
            .reason
            .contains("staff found the shelf empty on a shelf check"),
        "{}",
        offer.reason
    );
}

#[test]
fn stock_is_there_ends_the_check_without_a_count_or_an_offer() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    run(&mut o, &mut part, 1, &suspected(1, T0));
    let answer = check_answer(
        ShelfFinding::StockIsThere,
        "S1/GOLD-14/S1/check",
        T0 + 10 * MIN,
    );
    let (out, _) = run(&mut o, &mut part, 2, &answer);
    let (checks, offers, moves) = split(&out);
    assert_eq!(checks.len(), 1);
    assert!(offers.is_empty() && moves.is_empty(), "{out:?}");
    // The detector closes the episode as a false alarm: nothing more to publish.
    let (out, _) = run(&mut o, &mut part, 3, &closed_with(12, T0 + 10 * MIN));
    assert!(out.is_empty(), "{out:?}");
    assert!(part.slots.get("S1/GOLD-14").unwrap().state.offer.is_none());
}

#[test]
fn an_unanswered_check_expires_on_the_next_event_of_the_store_after_its_time() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    run(&mut o, &mut part, 1, &suspected(1, T0));
    let expiry = T0 + 45 * MIN;
    let early = level_of("SPATULA", 3, expiry - 1);
    assert!(o.due_keys(&early).is_empty());
    let on_time = level_of("SPATULA", 3, expiry);
    assert_eq!(o.due_keys(&on_time), ["S1/GOLD-14"]);
    let (out, _) = run(&mut o, &mut part, 2, &on_time);
    let (checks, offers, _) = split(&out);
    assert!(offers.is_empty());
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].event_id, "S1/GOLD-14/S1/check:expired");
    assert_eq!(checks[0].sku, "GOLD-14");
    // An answer after the expiry is a dead letter.
    let late = check_answer(ShelfFinding::Empty, "S1/GOLD-14/S1/check", expiry + MIN);
    let (out, refused) = run(&mut o, &mut part, 3, &late);
    assert!(out.is_empty());
    assert!(refused[0].contains("is not live"), "{refused:?}");
}

#[test]
fn a_check_is_withdrawn_when_its_episode_ends_first_and_answers_for_unknown_checks_are_refused() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    let unknown = check_answer(ShelfFinding::Empty, "S1/GOLD-14/S7/check", T0);
    let (_, refused) = run(&mut o, &mut part, 1, &unknown);
    assert!(
        refused[0].contains("live check of S1/GOLD-14: none"),
        "{refused:?}"
    );
    run(&mut o, &mut part, 2, &suspected(1, T0));
    let mut sale_resumed = closed_with(12, T0 + 5 * MIN);
    if let Event::Stockout(s) = &mut sale_resumed
        && let Some(Change::Closed(c)) = &mut s.change
    {
        c.reason = "sales resumed".into();
    }
    let (out, _) = run(&mut o, &mut part, 3, &sale_resumed);
    let (checks, offers, _) = split(&out);
    assert!(offers.is_empty());
    let Some(shelfguard_events::floor::shelf_check_event::Change::Withdrawn(w)) = &checks[0].change
    else {
        panic!("{checks:?}")
    };
    assert_eq!(w.reason, "stockout over: sales resumed");
    assert!(
        o.due_keys(&level_of("SPATULA", 3, T0 + 50 * MIN))
            .is_empty()
    );
}

#[test]
fn belt_and_socks_complements_are_learned_from_baskets() {
    let mut o = offers();
    for (sku, family, price) in [
        ("BELT-M", "belts", 2500),
        ("BELT-L", "belts", 2900),
        ("SOCKS", "socks", 600),
        ("MILK", "milk", 150),
    ] {
        o.catalog.insert(
            sku.into(),
            Product {
                sku: sku.into(),
                name: sku.into(),
                brand: "Acme".into(),
                family: family.into(),
                price_cents: price,
                size: Some(Size {
                    value: if sku == "BELT-L" { 2.0 } else { 1.0 },
                    unit: "each".into(),
                }),
                ..Default::default()
            },
        );
    }
    let mut view: PartitionState<OfferItem> = PartitionState::default();
    // 60 baskets: belt + socks in 10 of them, milk in most.
    for i in 0..60i64 {
        let mut skus = vec!["MILK".to_owned()];
        if i < 10 {
            skus.push("BELT-M".into());
            skus.push("SOCKS".into());
        } else if i < 14 {
            skus.push("SOCKS".into());
        }
        let sale = Event::Sale(
            shelfguard_events::store::Sale {
                event_id: format!("b{i}"),
                occurred_at_ms: T0 + i * MIN,
                store_id: "S1".into(),
                ..Default::default()
            },
            skus.clone(),
        );
        for key in o.keys(&sale) {
            let mut slot = view.slots.remove(&key).unwrap_or_default();
            o.apply(&key, &mut slot.state, &sale, &view).unwrap();
            view.slots.insert(key, slot);
        }
    }
    for (sku, n) in [("BELT-L", 5), ("SOCKS", 9), ("MILK", 30)] {
        let key = format!("S1/{sku}");
        let mut slot = view.slots.remove(&key).unwrap_or_default();
        slot.state.on_hand = n;
        view.slots.insert(key, slot);
    }
    let mut item = view.slots.remove("S1/BELT-M").unwrap().state;
    let mut e = opened(1);
    if let Event::Stockout(s) = &mut e {
        s.sku = "BELT-M".into();
        s.stockout_id = "S1/BELT-M/S1".into();
        s.occurred_at_ms = T0 + 61 * MIN;
    }
    let events = decode(&o.apply("S1/BELT-M", &mut item, &e, &view).unwrap());
    let Some(offer_event::Change::Issued(Issued { offer: Some(offer) })) = &events[0].change else {
        panic!("{events:?}")
    };
    assert_eq!(offer.substitute.as_ref().unwrap().sku, "BELT-L");
    let c: Vec<&str> = offer.complements.iter().map(|c| c.sku.as_str()).collect();
    assert_eq!(
        c,
        ["SOCKS"],
        "socks go with belts; milk is in every basket, no complement"
    );
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    const ATTRS: [HardAttribute; 3] = [
        HardAttribute::Organic,
        HardAttribute::GlutenFree,
        HardAttribute::Vegan,
    ];

    fn arb_product(i: usize) -> impl Strategy<Value = Product> {
        (
            0..2usize,
            prop::sample::subsequence(ATTRS.to_vec(), 0..=2),
            1..5u32,
            200..3000i64,
        )
            .prop_map(move |(brand, attrs, size, price)| Product {
                sku: format!("P{i}"),
                name: format!("P{i}"),
                brand: ["Gold", "Prime"][brand].into(),
                family: "f".into(),
                size: Some(Size {
                    value: f64::from(size * 7),
                    unit: "oz".into(),
                }),
                price_cents: price,
                hard_attributes: attrs.into_iter().map(|a| a as i32).collect(),
                ..Default::default()
            })
    }

    fn arb_catalog() -> impl Strategy<Value = Vec<Product>> {
        (0..6usize)
            .prop_flat_map(|_| {
                (
                    arb_product(0),
                    arb_product(1),
                    arb_product(2),
                    arb_product(3),
                    arb_product(4),
                    arb_product(5),
                )
            })
            .prop_map(|(a, b, c, d, e, f)| vec![a, b, c, d, e, f])
    }

    #[derive(Debug, Clone)]
    enum Step {
        Open(usize, i32),
        Close(usize),
        Stock(usize, i32),
        Answer(usize, u8),
        Wait(i64),
    }

    fn arb_step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0..6usize, 0..5i32).prop_map(|(p, f)| Step::Open(p, f)),
            (0..6usize).prop_map(Step::Close),
            (0..6usize, 0..8i32).prop_map(|(p, n)| Step::Stock(p, n)),
            (0..6usize, 0..3u8).prop_map(|(p, a)| Step::Answer(p, a)),
            (1..400i64).prop_map(Step::Wait),
        ]
    }

    proptest! {
        /// Whatever happens: every issued offer keeps the original's hard attributes, the store
        /// never commits more than its budget, and each (store, SKU) has at most one live offer.
        #[test]
        fn offers_keep_attributes_budget_and_one_live_offer_per_key(
            catalog in arb_catalog(),
            budget in 0..6000i64,
            steps in proptest::collection::vec(arb_step(), 1..60),
        ) {
            let table = Table::default();
            for p in &catalog {
                table.insert(p.sku.clone(), p.clone());
            }
            let policy = Policy { store_daily_budget_cents: budget, ..Policy::default() };
            let mut o = Offers::new(policy, table);
            let mut view: PartitionState<OfferItem> = PartitionState::default();
            let mut now = T0;
            let mut seq = 0;
            let mut live: HashMap<String, String> = HashMap::new();
            for step in steps {
                seq += 1;
                now += MIN;
                let event = match step {
                    Step::Wait(m) => { now += m * MIN; level_of("P0", view.slots.get("S1/P0").map_or(0, |s| s.state.on_hand), now) }
                    Step::Stock(p, n) => level_of(&format!("P{p}"), n, now),
                    Step::Open(p, failed) => Event::Stockout(StockoutEvent {
                        event_id: format!("so{seq}"),
                        occurred_at_ms: now,
                        store_id: "S1".into(),
                        stockout_id: format!("S1/P{p}/S{seq}"),
                        sku: format!("P{p}"),
                        change: Some(Change::Opened(Opened {
                            evidence: Some(Evidence { failed_reorders_7d: failed, ..Default::default() }),
                            ..Default::default()
                        })),
                    }),
                    Step::Close(p) => {
                        let id = view.slots.get(&format!("S1/P{p}")).map(|s| s.state.stockout_id.clone()).unwrap_or_default();
                        Event::Stockout(StockoutEvent {
                            event_id: format!("sc{seq}"),
                            occurred_at_ms: now,
                            store_id: "S1".into(),
                            stockout_id: id,
                            sku: format!("P{p}"),
                            change: Some(Change::Closed(Closed::default())),
                        })
                    }
                    Step::Answer(p, a) => {
                        let id = view.slots.get(&format!("S1/P{p}")).map(|s| s.state.offer_id.clone()).unwrap_or_default();
                        Event::Response(StaffResponse {
                            event_id: format!("r{seq}"),
                            occurred_at_ms: now,
                            store_id: "S1".into(),
                            offer_id: id,
                            sku: format!("P{p}"),
                            answer: [Answer::Accept, Answer::Decline, Answer::Redeem][a as usize] as i32,
                            reason: "no".into(),
                            ..Default::default()
                        })
                    }
                };
                let effect = shelfguard_runtime::step::apply_event(&mut o, &mut view, "t", i64::from(seq), &event);
                for (key, out) in &effect.outputs {
                    for e in decode(std::slice::from_ref(out)) {
                        prop_assert_eq!(format!("S1/{}", e.sku), key.clone(), "an output carries its key's SKU");
                        prop_assert!(e.offer_id.starts_with(&format!("{key}/")), "{} is not an offer of {}", e.offer_id, key);
                        match &e.change {
                            Some(offer_event::Change::Issued(Issued { offer: Some(offer) })) => {
                                prop_assert!(live.insert(e.sku.clone(), e.offer_id.clone()).is_none(), "two live offers for {}", e.sku);
                                let orig = &catalog[e.sku[1..].parse::<usize>().unwrap()];
                                let sub = catalog.iter().find(|p| p.sku == offer.substitute.as_ref().unwrap().sku).unwrap();
                                prop_assert!(crate::substitute::keeps_hard_attributes(orig, sub));
                            }
                            Some(offer_event::Change::NotOffered(_)) | Some(offer_event::Change::Accepted(_)) => {}
                            _ => { prop_assert_eq!(live.remove(&e.sku), Some(e.offer_id.clone())); }
                        }
                        prop_assert!(e.budget_committed_cents <= budget, "{} > {}", e.budget_committed_cents, budget);
                    }
                }
                let committed: i64 = view.slots.values().map(|s| budget::committed_on(&s.state, budget::day(now))).sum();
                prop_assert!(committed <= budget);
            }
        }
    }
}

/// Issue 9's mixed-up offer: a stockout of one SKU arrived while another SKU's offer was due to
/// expire. The engine used to hand the stockout to the due key too, which adopted the other
/// SKU's stockout id and published offers whose `sku` and `offer_id` disagreed.
#[test]
fn a_stockout_of_one_sku_never_reaches_another_skus_due_timer() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    stock(&mut part, "PRIME-14", 6);
    let e = shelfguard_runtime::step::apply_event(&mut o, &mut part, "stockouts", 1, &opened(3));
    assert!(e.refusals.is_empty(), "{:?}", e.refusals);
    let expiry = part
        .slots
        .get("S1/GOLD-14")
        .unwrap()
        .state
        .offer
        .as_ref()
        .map(|x| x.expires_at_ms)
        .unwrap();
    // Another SKU of the store runs out after GOLD-14's offer expired.
    let other = Event::Stockout(StockoutEvent {
        event_id: "so:S1/GOLD-28/S1:opened".into(),
        occurred_at_ms: expiry + MIN,
        store_id: "S1".into(),
        stockout_id: "S1/GOLD-28/S1".into(),
        sku: "GOLD-28".into(),
        change: Some(Change::Opened(Opened::default())),
    });
    assert_eq!(o.keys(&other), ["S1/GOLD-28"]);
    let e = shelfguard_runtime::step::apply_event(&mut o, &mut part, "stockouts", 2, &other);
    assert!(e.refusals.is_empty(), "{:?}", e.refusals);
    let mut ids = std::collections::BTreeSet::new();
    for (key, out) in &e.outputs {
        let ev = OfferEvent::decode(out.payload.as_slice()).unwrap();
        assert_eq!(format!("S1/{}", ev.sku), *key, "{ev:?}");
        assert!(ev.offer_id.starts_with(&format!("{key}/")), "{ev:?}");
        assert!(ev.stockout_id.starts_with(&format!("{key}/")), "{ev:?}");
        assert!(
            ids.insert(ev.event_id.clone()),
            "event id twice: {}",
            ev.event_id
        );
    }
    let steps: Vec<(String, String)> = e
        .outputs
        .iter()
        .map(|(k, out)| {
            let ev = OfferEvent::decode(out.payload.as_slice()).unwrap();
            (k.clone(), change_names(&[ev]).remove(0).to_owned())
        })
        .collect();
    assert!(
        steps.contains(&("S1/GOLD-14".into(), "expired".into())),
        "{steps:?}"
    );
    assert_eq!(
        part.slots.get("S1/GOLD-14").unwrap().state.stockout_id,
        "S1/GOLD-14/S1"
    );
    assert_eq!(
        part.slots.get("S1/GOLD-28").unwrap().state.stockout_id,
        "S1/GOLD-28/S1"
    );
}

fn closed_with(on_hand: i32, at: i64) -> Event {
    Event::Stockout(StockoutEvent {
        event_id: format!("so:S1/GOLD-14/S1:closed-{at}"),
        occurred_at_ms: at,
        store_id: "S1".into(),
        stockout_id: "S1/GOLD-14/S1".into(),
        sku: "GOLD-14".into(),
        change: Some(Change::Closed(Closed {
            reason: "reorder fulfilled, goods expected soon".into(),
            on_hand,
        })),
    })
}

/// Runs one event through the engine's own path (own keys, then due timers).
fn step(
    o: &mut Offers,
    part: &mut PartitionState<OfferItem>,
    n: i64,
    e: &Event,
) -> Vec<OfferEvent> {
    let effect = shelfguard_runtime::step::apply_event(o, part, "t", n, e);
    assert!(effect.refusals.is_empty(), "{:?}", effect.refusals);
    decode(
        &effect
            .outputs
            .into_iter()
            .map(|(_, o)| o)
            .collect::<Vec<_>>(),
    )
}

#[test]
fn an_accepted_offer_survives_a_fulfilled_reorder_a_receipt_and_its_substitute_running_out() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    assert_eq!(
        change_names(&step(&mut o, &mut part, 1, &opened(3))),
        ["issued"]
    );
    let id = "S1/GOLD-14/S1/offer";
    let e = step(
        &mut o,
        &mut part,
        2,
        &response(Answer::Accept, id, T0 + MIN),
    );
    assert_eq!(change_names(&e), ["accepted"]);
    assert!(
        step(&mut o, &mut part, 3, &closed_with(0, T0 + 2 * MIN)).is_empty(),
        "goods only expected"
    );
    assert!(
        step(&mut o, &mut part, 4, &level_of("GOLD-14", 12, T0 + 3 * MIN)).is_empty(),
        "restocked"
    );
    assert!(
        step(&mut o, &mut part, 5, &level_of("GOLD-28", 0, T0 + 4 * MIN)).is_empty(),
        "substitute gone"
    );
    let e = step(
        &mut o,
        &mut part,
        6,
        &response(Answer::Redeem, id, T0 + 5 * MIN),
    );
    assert_eq!(change_names(&e), ["redeemed"]);
    assert_eq!(e[0].stockout_id, "S1/GOLD-14/S1");
}

#[test]
fn an_unaccepted_offer_stays_while_goods_are_only_expected_and_goes_when_stock_is_back() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    step(&mut o, &mut part, 1, &opened(3));
    assert!(
        step(&mut o, &mut part, 2, &closed_with(0, T0 + MIN)).is_empty(),
        "shelf still empty"
    );
    assert!(part.slots.get("S1/GOLD-14").unwrap().state.offer.is_some());
    let e = step(&mut o, &mut part, 3, &level_of("GOLD-14", 12, T0 + 2 * MIN));
    assert_eq!(change_names(&e), ["withdrawn"]);
    let Some(offer_event::Change::Withdrawn(w)) = &e[0].change else {
        panic!()
    };
    assert!(w.reason.contains("back on the shelf"), "{}", w.reason);
    // A receipt that closes the episode with stock withdraws at once.
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    step(&mut o, &mut part, 1, &opened(3));
    assert_eq!(
        change_names(&step(&mut o, &mut part, 2, &closed_with(12, T0 + MIN))),
        ["withdrawn"]
    );
}

#[test]
fn an_accepted_offer_outlives_its_episode_and_the_next_episode_gets_its_own_offer_after_it() {
    let mut o = offers();
    let mut part = PartitionState::default();
    stock(&mut part, "GOLD-28", 6);
    step(&mut o, &mut part, 1, &opened(3));
    let first = "S1/GOLD-14/S1/offer";
    step(
        &mut o,
        &mut part,
        2,
        &response(Answer::Accept, first, T0 + MIN),
    );
    step(&mut o, &mut part, 3, &closed_with(12, T0 + 2 * MIN));
    let next = Event::Stockout(StockoutEvent {
        event_id: "so:S1/GOLD-14/S2:opened".into(),
        occurred_at_ms: T0 + 3 * MIN,
        store_id: "S1".into(),
        stockout_id: "S1/GOLD-14/S2".into(),
        sku: "GOLD-14".into(),
        change: Some(Change::Opened(Opened {
            evidence: Some(Evidence {
                failed_reorders_7d: 1,
                ..Default::default()
            }),
            ..Default::default()
        })),
    });
    assert!(
        step(&mut o, &mut part, 4, &next).is_empty(),
        "the promise holds; no second offer"
    );
    let e = step(
        &mut o,
        &mut part,
        5,
        &response(Answer::Redeem, first, T0 + 4 * MIN),
    );
    assert_eq!(change_names(&e), ["redeemed", "issued"]);
    assert_eq!(
        (e[0].offer_id.as_str(), e[0].stockout_id.as_str()),
        (first, "S1/GOLD-14/S1")
    );
    assert_eq!(
        (e[1].offer_id.as_str(), e[1].stockout_id.as_str()),
        ("S1/GOLD-14/S2/offer", "S1/GOLD-14/S2")
    );
}

#[test]
fn a_malformed_store_budgets_setting_is_refused_at_start() {
    use clap::Parser as _;
    let err = crate::Config::try_parse_from(["offer-generator", "--store-budgets", "S-001=lots"])
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not a whole number"), "{err}");
    let ok = crate::Config::try_parse_from(["offer-generator", "--store-budgets", "S-001=8000"])
        .unwrap();
    assert_eq!(ok.policy.budget_of("S-001"), 8000);
}

#[test]
fn a_stockout_before_its_product_is_held_and_offered_once_the_product_arrives() {
    let catalog = Table::default();
    let mut o = Offers::new(Policy::default(), catalog.clone());
    let mut part: PartitionState<OfferItem> = PartitionState::default();
    stock(&mut part, "NEW-28", 5);
    let Event::Stockout(mut s) = opened(3) else {
        unreachable!()
    };
    s.sku = "NEW-14".into();
    s.stockout_id = "S1/NEW-14/S1".into();
    s.event_id = "so:S1/NEW-14/S1:opened".into();
    let bytes = s.encode_to_vec();
    let rec = shelfguard_runtime::step::Record {
        topic: topics::STOCKOUTS,
        offset: 1,
        key: Some(b"S1"),
        payload: Some(&bytes),
    };
    let e = shelfguard_runtime::step::handle(&mut o, &mut part, rec);
    assert_eq!((e.held.len(), e.outputs.len()), (1, 0), "{:?}", e.refusals);
    assert_eq!(
        part.slots.get("S1/NEW-14").unwrap().held[0].waiting_for,
        "SKU NEW-14 is not in the catalogue yet"
    );
    let before = o.tables_version();
    for p in [
        product("NEW-14", "Gold", 14.0, 799),
        product("NEW-28", "Gold", 28.0, 1399),
    ] {
        catalog.insert(p.sku.clone(), p);
    }
    assert_ne!(
        o.tables_version(),
        before,
        "the engine retries on a catalogue change"
    );
    let e = shelfguard_runtime::step::release_all(&mut o, &mut part);
    assert_eq!(e.released, 1);
    let issued: Vec<OfferEvent> = e
        .outputs
        .iter()
        .filter(|(_, out)| out.topic == topics::FLOOR_OFFERS)
        .map(|(_, out)| OfferEvent::decode(out.payload.as_slice()).unwrap())
        .collect();
    assert!(
        issued.iter().any(|ev| ev.sku == "NEW-14"
            && matches!(&ev.change, Some(offer_event::Change::Issued(i)) if i.offer.as_ref().and_then(|x| x.substitute.as_ref()).is_some_and(|p| p.sku == "NEW-28"))),
        "{issued:?}"
    );
}

#[test]
fn policy_settings_out_of_range_are_refused_at_start() {
    use clap::Parser as _;
    for (arg, why) in [
        ("--offer-ttl-minutes=-5", "not in 1..=43200"),
        ("--offer-ttl-minutes=0", "not in 1..=43200"),
        ("--min-substitute-units=-1", "not in 0..=1000000"),
        ("--free-after-failures=-1", "not in 0.."),
        ("--max-gesture-cents=-1", "not in 0..=1000000000"),
        ("--store-daily-budget-cents=-100", "not in 0..=1000000000"),
        ("--complement-min-support=-1", "at least 0"),
        ("--check-expiry-minutes=0", "not in 1..=1440"),
        ("--check-expiry-minutes=1441", "not in 1..=1440"),
        ("--complement-half-life-days=0", "at least 0.01"),
    ] {
        let err = crate::Config::try_parse_from(["offer-generator", arg])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains(why), "{arg}: {err:?}");
    }
    let parsed = crate::Config::try_parse_from(["offer-generator"])
        .unwrap()
        .policy;
    assert_eq!(format!("{parsed:?}"), format!("{:?}", Policy::default()));
    let short =
        crate::Config::try_parse_from(["offer-generator", "--check-expiry-minutes=5"]).unwrap();
    assert_eq!(short.policy.check_expiry_minutes, 5);
}

#[test]
fn a_confirmed_stockout_without_a_failed_reorder_says_why_it_is_out() {
    for (evidence, want) in [
        (
            Evidence::default(),
            "is out, a count found the shelf empty.",
        ),
        (
            Evidence {
                expected_restock_at_ms: 1_795_463_647_142,
                ..Default::default()
            },
            "is out, goods expected only 2026-11-23 19:54 UTC.",
        ),
    ] {
        let mut o = offers();
        let mut view = PartitionState::default();
        stock(&mut view, "GOLD-28", 6);
        let mut e = opened(0);
        if let Event::Stockout(s) = &mut e
            && let Some(Change::Opened(op)) = &mut s.change
        {
            op.evidence = Some(evidence);
        }
        let mut item = OfferItem::default();
        let events = decode(&o.apply("S1/GOLD-14", &mut item, &e, &view).unwrap());
        let Some(offer_event::Change::Issued(Issued { offer: Some(offer) })) = &events[0].change
        else {
            panic!("{events:?}")
        };
        assert!(offer.reason.contains(want), "{}", offer.reason);
    }
}
