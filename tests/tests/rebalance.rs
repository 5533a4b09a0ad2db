//! Two offer-generator instances share the stores; one is stopped (SIGTERM) and the other takes
//! its partitions over, rebuilding their state from the changelog: restock still withdraws
//! every offer, and new stockouts still get exactly one offer each.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use prost::Message;
use rdkafka::message::Message as _;
use shelfguard_e2e::{Env, Tail, fixtures::*};
use shelfguard_events::floor::{OfferEvent, offer_event::Change};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;

const WAIT: Duration = Duration::from_secs(90);
const STORES: [&str; 6] = ["S1", "S2", "S3", "S4", "S5", "S6"];

/// Sells the last unit of `sku` in each store and refuses its open reorder (requested when the
/// count put it below the reorder point).
async fn stockouts(env: &Env, sku: &str) -> anyhow::Result<()> {
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    for store in STORES {
        env.publish(STORE_SALES, store, &sale(store, sku, 1))
            .await?;
    }
    let mut refused = BTreeSet::new();
    while refused.len() < STORES.len() {
        let (r, _) = requests
            .until::<ReorderRequest>(WAIT, |r| r.sku == sku)
            .await?;
        if refused.insert(r.store_id.clone()) {
            let mut o = failed(&r.store_id, sku, 1, "supplier out of stock");
            o.reorder_id = r.reorder_id;
            env.publish(WAREHOUSE_REORDER_OUTCOMES, &r.store_id, &o)
                .await?;
        }
    }
    Ok(())
}

/// Reads offer events until `n` of the kind `issued` (true) or withdrawn (false) are seen.
async fn await_events(
    offers: &Tail,
    n: usize,
    issued: bool,
    all: &mut Vec<OfferEvent>,
) -> anyhow::Result<()> {
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        let m = offers.next(WAIT).await?;
        let e = OfferEvent::decode(m.payload().unwrap_or_default())?;
        if matches!(e.change, Some(Change::Issued(_))) == issued {
            seen.insert(e.event_id.clone());
        }
        all.push(e);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stopped_instance_hands_its_stores_over_with_their_state() -> anyhow::Result<()> {
    let env = Env::start("rebalance").await?;
    for (sku, oz, price) in [
        ("A-14", 14.0, 799),
        ("A-28", 28.0, 1399),
        ("B-14", 14.0, 599),
        ("B-28", 28.0, 999),
    ] {
        let family = if sku.starts_with('A') {
            "coconut-oil"
        } else {
            "olive-oil"
        };
        env.publish(
            CATALOG_PRODUCTS,
            sku,
            &product(sku, family, "Gold", oz, price),
        )
        .await?;
    }
    let _inv = env.spawn("inventory", &[])?;
    let _det = env.spawn("stockout-detector", &[])?;
    let a = env.spawn("offer-generator", &[])?;
    let _b = env.spawn("offer-generator", &[])?;
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    for store in STORES {
        for (sku, units) in [("A-14", 1), ("A-28", 9), ("B-14", 1), ("B-28", 9)] {
            env.publish(STORE_STOCK_MOVEMENTS, store, &count(store, sku, units))
                .await?;
        }
    }
    let mut counted = BTreeSet::new();
    while counted.len() < STORES.len() * 4 {
        let (l, _) = levels
            .until::<shelfguard_events::inventory::StockLevel>(WAIT, |_| true)
            .await?;
        counted.insert((l.store_id, l.sku));
    }
    let offers = env.tail(FLOOR_OFFERS)?;
    let mut all = Vec::new();

    stockouts(&env, "A-14").await?;
    await_events(&offers, STORES.len(), true, &mut all).await?;

    a.stop().await?;

    for store in STORES {
        env.publish(STORE_STOCK_MOVEMENTS, store, &receipt(store, "A-14", 12))
            .await?;
    }
    await_events(&offers, STORES.len(), false, &mut all).await?;
    stockouts(&env, "B-14").await?;
    await_events(&offers, STORES.len(), true, &mut all).await?;

    let mut per_stockout: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut withdrawn = BTreeSet::new();
    for e in &all {
        match &e.change {
            Some(Change::Issued(_)) => {
                per_stockout
                    .entry(e.stockout_id.clone())
                    .or_default()
                    .insert(e.offer_id.clone());
            }
            Some(Change::Withdrawn(_)) => {
                withdrawn.insert(e.offer_id.clone());
            }
            _ => {}
        }
    }
    assert_eq!(per_stockout.len(), 2 * STORES.len(), "{per_stockout:?}");
    assert!(
        per_stockout.values().all(|o| o.len() == 1),
        "one offer per stockout: {per_stockout:?}"
    );
    let a_offers: BTreeSet<String> = STORES
        .iter()
        .map(|s| format!("{s}/A-14/S1/offer"))
        .collect();
    assert_eq!(
        withdrawn, a_offers,
        "every A-14 offer withdrawn, including those of the stopped instance"
    );
    Ok(())
}
