//! A promise is a promise, on a real broker: an offer staff accepted survives a fulfilled
//! reorder (the episode closes, goods only expected) and a receipt (stock back), and is then
//! redeemed. A second stockout of the same store, not accepted, is the control: the same
//! events reach it in the same partitions, after the accepted one's; it stays live while goods
//! are only expected and is withdrawn once its stock is back. Anything published for the
//! accepted offer before the control's withdrawal was therefore already decided.
use std::time::Duration;

use anyhow::Result;
use shelfguard_e2e::{Env, fixtures::*};
use shelfguard_events::floor::{Answer, OfferEvent, StaffResponse, offer_event::Change};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::stockout::{StockoutEvent, stockout_event::Change as Episode};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome, ReorderRequest};

const WAIT: Duration = Duration::from_secs(60);

fn answer(offer_id: &str, sku: &str, answer: Answer) -> StaffResponse {
    StaffResponse {
        event_id: id(),
        occurred_at_ms: now_ms(),
        store_id: "S1".into(),
        offer_id: offer_id.into(),
        sku: sku.into(),
        answer: answer as i32,
        by: "ana".into(),
        channel: "till".into(),
        ..Default::default()
    }
}

fn fulfilled(reorder_id: &str, sku: &str) -> ReorderOutcome {
    ReorderOutcome {
        event_id: id(),
        occurred_at_ms: now_ms(),
        store_id: "S1".into(),
        reorder_id: reorder_id.into(),
        sku: sku.into(),
        status: OutcomeStatus::Fulfilled as i32,
        quantity_shipped: 12,
        expected_at_ms: now_ms() + 3_600_000,
        ..Default::default()
    }
}

fn is(e: &OfferEvent, sku: &str, what: fn(&Change) -> bool) -> bool {
    e.sku == sku && e.change.as_ref().is_some_and(what)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_accepted_offer_survives_a_fulfilled_reorder_and_a_receipt_and_is_redeemed() -> Result<()>
{
    let env = Env::start("promise").await?;
    for (family, brand) in [("gold", "Gold"), ("blue", "Blue")] {
        for (oz, price) in [(14.0, 799), (28.0, 1399)] {
            let sku = format!("{}-{oz}", brand.to_uppercase());
            env.publish(
                CATALOG_PRODUCTS,
                &sku,
                &product(&sku, family, brand, oz, price),
            )
            .await?;
        }
    }
    let (gold, blue) = ("GOLD-14", "BLUE-14");
    let _inv = env.spawn("inventory", &[("REORDER_RETRY_AFTER_SECS", "0")])?;
    let _det = env.spawn("stockout-detector", &[])?;
    let _off = env.spawn("offer-generator", &[])?;
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    env.count_and_await(
        &levels,
        "S1",
        &[(gold, 1), ("GOLD-28", 8), (blue, 1), ("BLUE-28", 8)],
        WAIT,
    )
    .await?;
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    let offers = env.tail(FLOOR_OFFERS)?;
    let stockouts = env.tail(STOCKOUTS)?;

    // Both run out; the warehouse fails both reorders; both get an offer.
    let mut basket = sale("S1", gold, 1);
    basket.lines.extend(sale("S1", blue, 1).lines);
    env.publish(STORE_SALES, "S1", &basket).await?;
    for _ in 0..2 {
        let (r, _) = requests.until::<ReorderRequest>(WAIT, |_| true).await?;
        env.publish(
            WAREHOUSE_REORDER_OUTCOMES,
            "S1",
            &failed("S1", &r.sku, 1, "truck full"),
        )
        .await?;
    }
    let mut gold_offer = None;
    let mut seen = Vec::new();
    while gold_offer.is_none()
        || !seen
            .iter()
            .any(|e| is(e, blue, |c| matches!(c, Change::Issued(_))))
    {
        let (e, _) = offers.until::<OfferEvent>(WAIT, |_| true).await?;
        if is(&e, gold, |c| matches!(c, Change::Issued(_))) {
            gold_offer = Some(e.offer_id.clone());
        }
        seen.push(e);
    }
    let gold_offer = gold_offer.unwrap_or_default();
    env.publish(
        FLOOR_RESPONSES,
        "S1",
        &answer(&gold_offer, gold, Answer::Accept),
    )
    .await?;
    offers
        .until::<OfferEvent>(WAIT, |e| is(e, gold, |c| matches!(c, Change::Accepted(_))))
        .await?;

    // The warehouse ships both after all (REORDER_RETRY_AFTER_SECS=0: inventory asked again
    // right after each failure): the episodes close, goods expected within the hour, the
    // shelves still empty.
    let mut retries = std::collections::BTreeMap::new();
    while retries.len() < 2 {
        let (r, _) = requests.until::<ReorderRequest>(WAIT, |_| true).await?;
        retries.insert(r.sku.clone(), r.reorder_id);
    }
    env.publish(
        WAREHOUSE_REORDER_OUTCOMES,
        "S1",
        &fulfilled(&retries[gold], gold),
    )
    .await?;
    // The control's outcome only after the accepted one's is applied (different topics).
    levels
        .until::<StockLevel>(WAIT, |l| {
            l.sku == gold && l.cause == Cause::ReorderOutcome as i32 && l.on_order > 0
        })
        .await?;
    env.publish(
        WAREHOUSE_REORDER_OUTCOMES,
        "S1",
        &fulfilled(&retries[blue], blue),
    )
    .await?;
    let mut closed = Vec::new();
    while closed.len() < 2 {
        let (s, _) = stockouts
            .until::<StockoutEvent>(WAIT, |s| matches!(s.change, Some(Episode::Closed(_))))
            .await?;
        closed.push(s.sku);
    }
    assert_eq!(
        closed,
        [gold, blue],
        "both episodes closed, the accepted one's first"
    );

    // Stock is back: the accepted offer's product first, then the control's.
    env.publish(STORE_STOCK_MOVEMENTS, "S1", &receipt("S1", gold, 12))
        .await?;
    levels
        .until::<StockLevel>(WAIT, |l| l.sku == gold && l.cause == Cause::Receipt as i32)
        .await?;
    env.publish(STORE_STOCK_MOVEMENTS, "S1", &receipt("S1", blue, 12))
        .await?;
    let (control, before) = offers
        .until::<OfferEvent>(WAIT, |e| is(e, blue, |c| matches!(c, Change::Withdrawn(_))))
        .await?;
    let Some(Change::Withdrawn(w)) = &control.change else {
        unreachable!()
    };
    assert!(w.reason.contains("back on the shelf"), "{}", w.reason);
    assert!(
        !before.iter().any(|e| e.sku == gold),
        "nothing ended the accepted offer: {before:?}"
    );

    // The customer gets the promised jar.
    env.publish(
        FLOOR_RESPONSES,
        "S1",
        &answer(&gold_offer, gold, Answer::Redeem),
    )
    .await?;
    let (redeemed, between) = offers
        .until::<OfferEvent>(WAIT, |e| is(e, gold, |c| matches!(c, Change::Redeemed(_))))
        .await?;
    assert!(between.is_empty(), "{between:?}");
    assert_eq!(redeemed.offer_id, gold_offer);
    Ok(())
}
