//! The whole path on a real broker: a failed reorder becomes an offer; restock withdraws it.
use std::time::Duration;

use shelfguard_e2e::{Env, fixtures::*};
use shelfguard_events::floor::{Gesture, OfferEvent, offer_event::Change};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_reorder_becomes_an_offer_and_restock_withdraws_it() -> anyhow::Result<()> {
    let env = Env::start("pipeline").await?;
    for p in [
        product("GOLD-14", "coconut-oil", "Gold", 14.0, 799),
        product("GOLD-28", "coconut-oil", "Gold", 28.0, 1399),
        product("PRIME-14", "coconut-oil", "Prime", 14.0, 1099),
        product("VALUE-28", "coconut-oil", "Value", 28.0, 699),
    ] {
        env.publish(CATALOG_PRODUCTS, &p.sku.clone(), &p).await?;
    }
    let _inv = env.spawn("inventory", &[])?;
    let _det = env.spawn("stockout-detector", &[])?;
    let _off = env.spawn("offer-generator", &[])?;

    // Counts and sales travel on different topics (no order between them): let the counts land.
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    env.count_and_await(
        &levels,
        "S1",
        &[
            ("GOLD-14", 3),
            ("GOLD-28", 8),
            ("PRIME-14", 8),
            ("VALUE-28", 8),
        ],
        WAIT,
    )
    .await?;
    env.publish(STORE_SALES, "S1", &sale("S1", "GOLD-14", 3))
        .await?;
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    let (req, _) = requests
        .until::<ReorderRequest>(WAIT, |r| r.sku == "GOLD-14")
        .await?;
    assert_eq!(
        (req.store_id.as_str(), req.on_hand, req.quantity),
        ("S1", 0, 12)
    );

    let mut outcome = failed("S1", "GOLD-14", 1, "supplier out of stock");
    outcome.reorder_id = req.reorder_id.clone();
    env.publish(WAREHOUSE_REORDER_OUTCOMES, "S1", &outcome)
        .await?;

    let offers = env.tail(FLOOR_OFFERS)?;
    let (issued, before) = offers
        .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Issued(_))))
        .await?;
    assert!(before.is_empty());
    let Some(Change::Issued(i)) = &issued.change else {
        unreachable!()
    };
    let offer = i.offer.as_ref().expect("offer");
    assert_eq!(issued.store_id, "S1");
    assert_eq!(
        offer.original.as_ref().map(|p| p.sku.as_str()),
        Some("GOLD-14")
    );
    assert_eq!(
        offer.substitute.as_ref().map(|p| p.sku.as_str()),
        Some("GOLD-28"),
        "bigger jar of the same brand first"
    );
    assert_eq!(
        offer.gesture,
        Gesture::AtOriginalPrice as i32,
        "one failure: pay the small jar's price"
    );
    assert_eq!(offer.gesture_value_cents, 1399 - 799);
    assert!(
        offer.reason.contains("failed 1x (supplier out of stock)"),
        "{}",
        offer.reason
    );
    assert_eq!(offer.redemption_code.len(), 4);
    assert!(offer.expires_at_ms > outcome.occurred_at_ms);

    env.publish(STORE_STOCK_MOVEMENTS, "S1", &receipt("S1", "GOLD-14", 12))
        .await?;
    let (withdrawn, between) = offers
        .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Withdrawn(_))))
        .await?;
    assert!(
        between.is_empty(),
        "nothing else was published: {between:?}"
    );
    assert_eq!(withdrawn.offer_id, issued.offer_id);
    assert_eq!(withdrawn.stockout_id, issued.stockout_id);
    Ok(())
}
