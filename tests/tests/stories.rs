//! The decisions as stories, on a real broker with the three services as processes.
//!
//! - The coconut oil story: 14 oz is out, the warehouse failed three times this week, the 28 oz
//!   jar of the same brand is in stock: a free 28 oz offer whose reason cites three failures.
//!   Staff redeem it, and inventory books the jar as a give-away.
//! - The belt and socks story: complements learned from the store's baskets.
//! - Budget exhausted: the second stockout of the day finds the store's gesture budget spent.
//! - Organic: an organic original with only a non-organic bigger jar gets no such substitute.
//!
//! (Restock withdrawing the offer is the story of `pipeline.rs`.)
use std::time::Duration;

use shelfguard_e2e::{Env, Service, Tail, fixtures::*};
use shelfguard_events::catalog::{HardAttribute, Product};
use shelfguard_events::floor::{
    Answer, Gesture, OfferEvent, StaffResponse, not_offered, offer_event::Change,
};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::store::{Sale, SaleLine};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;

const WAIT: Duration = Duration::from_secs(60);

/// One story's world: its own broker and topics, the catalogue, the three services (retries
/// right after a failure, so a story needs no waiting) and tails of what they publish.
struct Story {
    env: Env,
    _services: Vec<Service>,
    levels: Tail,
    requests: Tail,
    offers: Tail,
}

impl Story {
    async fn start(
        name: &str,
        products: &[Product],
        offer_env: &[(&str, &str)],
    ) -> anyhow::Result<Story> {
        let env = Env::start(name).await?;
        for p in products {
            env.publish(CATALOG_PRODUCTS, &p.sku.clone(), p).await?;
        }
        let _services = vec![
            env.spawn("inventory", &[("REORDER_RETRY_AFTER_SECS", "0")])?,
            env.spawn("stockout-detector", &[])?,
            env.spawn("offer-generator", offer_env)?,
        ];
        Ok(Story {
            levels: env.tail(INVENTORY_STOCK_LEVELS)?,
            requests: env.tail(WAREHOUSE_REORDER_REQUESTS)?,
            offers: env.tail(FLOOR_OFFERS)?,
            env,
            _services,
        })
    }
}

/// Plays the warehouse failing the reorders of `sku` `failures` times, then sells the last unit:
/// the shelf is empty and replenishment blocked. `sku` must have been counted at 1 unit.
async fn stockout(
    env: &Env,
    levels: &Tail,
    requests: &Tail,
    sku: &str,
    failures: u32,
) -> anyhow::Result<()> {
    for n in 1..=failures {
        let id = format!("S1/{sku}/R{n}");
        requests
            .until::<ReorderRequest>(WAIT, |r| r.reorder_id == id)
            .await?;
        env.publish(
            WAREHOUSE_REORDER_OUTCOMES,
            "S1",
            &failed("S1", sku, n, "supplier out of stock"),
        )
        .await?;
    }
    // Outcomes and sales travel on different topics: let the last failure land before selling.
    levels
        .until::<StockLevel>(WAIT, |l| {
            l.sku == sku && l.failed_reorders_7d == failures as i32
        })
        .await?;
    env.publish(STORE_SALES, "S1", &sale("S1", sku, 1)).await?;
    Ok(())
}

fn basket(skus: &[&str]) -> Sale {
    Sale {
        lines: skus
            .iter()
            .map(|s| SaleLine {
                sku: (*s).into(),
                quantity: 1,
                unit_price_cents: 100,
            })
            .collect(),
        ..sale("S1", "x", 1)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn coconut_oil_three_failures_give_the_28_oz_jar_free_and_redemption_books_a_give_away()
-> anyhow::Result<()> {
    let Story {
        env,
        levels,
        requests,
        offers,
        _services,
    } = Story::start(
        "story-coconut-oil",
        &[
            product("GOLD-14", "coconut-oil", "Gold", 14.0, 799),
            product("GOLD-28", "coconut-oil", "Gold", 28.0, 1399),
            product("PRIME-14", "coconut-oil", "Prime", 14.0, 1099),
        ],
        &[],
    )
    .await?;
    env.count_and_await(
        &levels,
        "S1",
        &[("GOLD-14", 1), ("GOLD-28", 8), ("PRIME-14", 8)],
        WAIT,
    )
    .await?;
    stockout(&env, &levels, &requests, "GOLD-14", 3).await?;

    let (issued, before) = offers
        .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Issued(_))))
        .await?;
    assert!(before.is_empty(), "{before:?}");
    let Some(Change::Issued(i)) = &issued.change else {
        unreachable!()
    };
    let offer = i.offer.clone().unwrap_or_default();
    assert_eq!(
        offer.substitute.as_ref().map(|s| s.sku.as_str()),
        Some("GOLD-28")
    );
    assert_eq!(offer.gesture, Gesture::Free as i32, "three failures: free");
    assert_eq!(offer.gesture_value_cents, 1399);
    assert_eq!(offer.failed_reorders, 3);
    assert!(offer.reason.contains("failed 3x"), "{}", offer.reason);
    assert!(offer.reason.contains("28 oz"), "{}", offer.reason);
    assert_eq!(issued.sku, "GOLD-14");

    // Staff give the jar at the till.
    env.publish(
        FLOOR_RESPONSES,
        "S1",
        &StaffResponse {
            event_id: id(),
            occurred_at_ms: now_ms(),
            store_id: "S1".into(),
            offer_id: issued.offer_id.clone(),
            sku: "GOLD-14".into(),
            answer: Answer::Redeem as i32,
            by: "till-3".into(),
            channel: "till".into(),
            ..Default::default()
        },
    )
    .await?;
    let (redeemed, _) = offers
        .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Redeemed(_))))
        .await?;
    assert_eq!(redeemed.offer_id, issued.offer_id);
    assert_eq!(
        redeemed.budget_committed_cents, 1399,
        "a redeemed gesture is spent"
    );
    let (jar, _) = levels
        .until::<StockLevel>(WAIT, |l| {
            l.sku == "GOLD-28" && l.cause == Cause::Giveaway as i32
        })
        .await?;
    assert_eq!(jar.on_hand, 7, "the jar left the books as a give-away");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn belt_and_socks_complements_are_learned_from_baskets() -> anyhow::Result<()> {
    let Story {
        env,
        levels,
        requests,
        offers,
        _services,
    } = Story::start(
        "story-belt-and-socks",
        &[
            product("BELT-32", "belts", "Acme", 32.0, 2500),
            product("BELT-36", "belts", "Acme", 36.0, 2700),
            product("SOCKS", "socks", "Acme", 1.0, 600),
            product("MILK", "milk", "Farm", 32.0, 150),
            product("BREAD", "bread", "Farm", 16.0, 300),
        ],
        &[],
    )
    .await?;
    env.count_and_await(
        &levels,
        "S1",
        &[
            ("BELT-32", 100),
            ("BELT-36", 50),
            ("SOCKS", 100),
            ("MILK", 200),
            ("BREAD", 200),
        ],
        WAIT,
    )
    .await?;
    // Shoppers: belts come with socks; milk and bread are in most baskets, with or without.
    let mut baskets = Vec::new();
    for i in 0..60 {
        let mut b = vec!["MILK"];
        if i % 2 == 0 {
            b.push("BREAD");
        }
        if i < 12 {
            b.extend(["BELT-32", "SOCKS"]);
        } else if i < 16 {
            b.push("SOCKS");
        }
        baskets.push(basket(&b));
    }
    for b in &baskets {
        env.publish(STORE_SALES, "S1", b).await?;
    }
    // The belt runs out: a count finds one left, and the warehouse fails.
    let last = baskets
        .last()
        .map(|b| b.event_id.clone())
        .unwrap_or_default();
    levels
        .until::<StockLevel>(WAIT, |l| l.event_id.contains(&last))
        .await?;
    env.count_and_await(&levels, "S1", &[("BELT-32", 1)], WAIT)
        .await?;
    stockout(&env, &levels, &requests, "BELT-32", 1).await?;

    let (issued, _) = offers
        .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Issued(_))))
        .await?;
    let Some(Change::Issued(i)) = &issued.change else {
        unreachable!()
    };
    let offer = i.offer.clone().unwrap_or_default();
    assert_eq!(
        offer.substitute.as_ref().map(|s| s.sku.as_str()),
        Some("BELT-36")
    );
    let complements: Vec<&str> = offer.complements.iter().map(|c| c.sku.as_str()).collect();
    assert_eq!(
        complements,
        ["SOCKS"],
        "socks sell with belts; milk and bread are everywhere, no complement"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn budget_exhausted_the_second_stockout_of_the_day_gets_no_offer() -> anyhow::Result<()> {
    // 1000 cents a day: one gesture of 600 (the bigger jar at the small jar's price) fits.
    let Story {
        env,
        levels,
        requests,
        offers,
        _services,
    } = Story::start(
        "story-budget",
        &[
            product("GOLD-14", "coconut-oil", "Gold", 14.0, 799),
            product("GOLD-28", "coconut-oil", "Gold", 28.0, 1399),
            product("OLIVE-14", "olive-oil", "Sol", 14.0, 799),
            product("OLIVE-28", "olive-oil", "Sol", 28.0, 1399),
        ],
        &[("STORE_DAILY_BUDGET_CENTS", "1000")],
    )
    .await?;
    env.count_and_await(
        &levels,
        "S1",
        &[
            ("GOLD-14", 1),
            ("GOLD-28", 8),
            ("OLIVE-14", 1),
            ("OLIVE-28", 8),
        ],
        WAIT,
    )
    .await?;
    stockout(&env, &levels, &requests, "GOLD-14", 1).await?;
    let (first, _) = offers
        .until::<OfferEvent>(WAIT, |e| e.sku == "GOLD-14")
        .await?;
    assert!(matches!(first.change, Some(Change::Issued(_))), "{first:?}");
    assert_eq!(
        (first.budget_cents, first.budget_committed_cents),
        (1000, 600)
    );

    stockout(&env, &levels, &requests, "OLIVE-14", 1).await?;
    let (second, _) = offers
        .until::<OfferEvent>(WAIT, |e| e.sku == "OLIVE-14")
        .await?;
    let Some(Change::NotOffered(n)) = &second.change else {
        panic!("expected a budget-exhausted record, got {second:?}")
    };
    assert_eq!(n.cause, not_offered::Cause::BudgetExhausted as i32);
    assert!(n.reason.contains("600 of 1000"), "{}", n.reason);
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn organic_original_with_only_a_non_organic_bigger_jar_gets_no_such_substitute()
-> anyhow::Result<()> {
    let mut organic = product("GOLD-14-ORG", "coconut-oil", "Gold", 14.0, 999);
    organic.hard_attributes = vec![HardAttribute::Organic as i32];
    let Story {
        env,
        levels,
        requests,
        offers,
        _services,
    } = Story::start(
        "story-organic",
        &[
            organic,
            product("GOLD-28", "coconut-oil", "Gold", 28.0, 1399),
        ],
        &[],
    )
    .await?;
    env.count_and_await(&levels, "S1", &[("GOLD-14-ORG", 1), ("GOLD-28", 8)], WAIT)
        .await?;
    stockout(&env, &levels, &requests, "GOLD-14-ORG", 3).await?;
    let (e, _) = offers.until::<OfferEvent>(WAIT, |_| true).await?;
    let Some(Change::NotOffered(n)) = &e.change else {
        panic!("expected no offer, got {e:?}")
    };
    assert_eq!(n.cause, not_offered::Cause::NoSubstitute as i32);
    assert!(n.reason.contains("hard attributes"), "{}", n.reason);
    Ok(())
}
