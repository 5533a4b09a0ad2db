use super::*;
use shelfguard_events::Message;
use shelfguard_events::catalog::{HardAttribute, Size};
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
    assert!(o.apply("S1/GOLD-14", &mut item, &level, &view).unwrap().is_empty());
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
