//! Delivery guarantees: every service dies at the worst moment (outputs acknowledged, but
//! changelog or offsets not yet written) and is restarted, as Kubernetes would. Still exactly
//! one offer per stockout, none lost, and state survives (restock after the restart withdraws).
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use prost::Message;
use rdkafka::message::Message as _;
use shelfguard_e2e::{Env, Service, fixtures::*};
use shelfguard_events::floor::{OfferEvent, offer_event::Change};
use shelfguard_events::topics::*;

const WAIT: Duration = Duration::from_secs(90);
const WAVES: usize = 12;

/// Restarts a service that died at its crash point; counts the crashes.
async fn supervise(env: &Env, svc: &mut Service, crashes: &mut u32) -> anyhow::Result<()> {
    if !svc.is_running() {
        assert!(
            svc.wait_exit(Duration::from_secs(5)).await?,
            "{} exited cleanly instead of crashing",
            svc.name
        );
        *crashes += 1;
        *svc = env.spawn_as(&svc.name.clone(), svc.instance.clone().as_deref(), &[])?;
    }
    Ok(())
}

async fn run(point: &str) -> anyhow::Result<()> {
    let env = Env::start(&format!("redelivery-{point}")).await?;
    let skus = env.publish_families("F", WAVES + 1).await?;
    let crash = |n: u32| format!("{point}:{n}");
    // Static membership (as StatefulSet pods): the restarted process takes its partitions back at
    // once. Without it, tansu 0.6 can leave a group with no owner for the partitions of a member
    // that died during a rebalance (seen here; Kafka expires it after the session timeout).
    let mut services = [
        env.spawn_as(
            "inventory",
            Some("inventory-0"),
            &[("SHELFGUARD_CRASH_POINT", &crash(9))],
        )?,
        env.spawn_as(
            "stockout-detector",
            Some("stockout-detector-0"),
            &[("SHELFGUARD_CRASH_POINT", &crash(4))],
        )?,
        env.spawn_as(
            "offer-generator",
            Some("offer-generator-0"),
            &[("SHELFGUARD_CRASH_POINT", &crash(6))],
        )?,
    ];
    let mut crashes = [0u32; 3];
    // Sales and counts travel on different topics: let every count land before selling.
    let bigs: Vec<String> = skus.iter().map(|s| s.replace("-14", "-28")).collect();
    let stock: Vec<(&str, i32)> = skus
        .iter()
        .zip(&bigs)
        .flat_map(|(small, big)| [(big.as_str(), 10), (small.as_str(), 1)])
        .collect();
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    env.count_and_await(&levels, "S1", &stock, WAIT).await?;
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;

    // One stockout per wave, awaited before the next, so batches (and crash points) are deterministic.
    let offers = env.tail(FLOOR_OFFERS)?;
    let mut records: Vec<OfferEvent> = Vec::new();
    for sku in &skus {
        env.publish(STORE_SALES, "S1", &sale("S1", sku, 1)).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        // Play the warehouse: refuse the reorder once it is requested. The same loop restarts
        // any service that died at its crash point, as Kubernetes would.
        let mut answered = false;
        loop {
            if !answered && let Ok(m) = requests.next(Duration::from_millis(100)).await {
                let r = shelfguard_events::warehouse::ReorderRequest::decode(
                    m.payload().unwrap_or_default(),
                )?;
                if &r.sku == sku {
                    env.publish(
                        WAREHOUSE_REORDER_OUTCOMES,
                        "S1",
                        &failed("S1", sku, 1, "truck capacity exceeded"),
                    )
                    .await?;
                    answered = true;
                }
            }
            for (svc, n) in services.iter_mut().zip(crashes.iter_mut()) {
                supervise(&env, svc, n).await?;
            }
            match offers.next(Duration::from_millis(200)).await {
                Ok(m) => {
                    let e = OfferEvent::decode(m.payload().unwrap_or_default())?;
                    let done = e.stockout_id.starts_with(&format!("S1/{sku}/"))
                        && matches!(e.change, Some(Change::Issued(_)));
                    records.push(e);
                    if done {
                        break;
                    }
                }
                Err(_) if tokio::time::Instant::now() < deadline => {}
                Err(e) => {
                    return Err(
                        e.context(format!("offer for {sku}; logs in target/debug/e2e-logs"))
                    );
                }
            }
        }
    }
    assert_eq!(
        crashes,
        [1, 1, 1],
        "each service died once at {point} and was restarted"
    );

    // State survived: restocking the first SKU withdraws the offer issued before the crashes.
    env.publish(STORE_STOCK_MOVEMENTS, "S1", &receipt("S1", &skus[0], 12))
        .await?;
    let (withdrawn, rest) = offers
        .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Withdrawn(_))))
        .await?;
    records.extend(rest);
    assert!(
        withdrawn
            .stockout_id
            .starts_with(&format!("S1/{}/", skus[0]))
    );

    let mut by_stockout: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_event: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut duplicates = 0;
    for e in &records {
        let Some(Change::Issued(_)) = &e.change else {
            continue;
        };
        by_stockout
            .entry(e.stockout_id.clone())
            .or_default()
            .insert(e.offer_id.clone());
        let bytes = e.encode_to_vec();
        if let Some(prev) = by_event.insert(e.event_id.clone(), bytes.clone()) {
            assert_eq!(
                prev, bytes,
                "a redelivered offer is the same offer, byte for byte"
            );
            duplicates += 1;
        }
    }
    assert_eq!(
        by_stockout.len(),
        skus.len(),
        "one stockout (and offer) per SKU, none lost: {by_stockout:?}"
    );
    for (stockout, offers) in &by_stockout {
        assert_eq!(
            offers.len(),
            1,
            "exactly one offer for {stockout}: {offers:?}"
        );
    }
    eprintln!(
        "{point}: {} offer records, {duplicates} redelivered duplicates (same event id)",
        records.len()
    );
    match point {
        "after-changelog" => assert_eq!(
            duplicates, 0,
            "with the changelog written, a replay publishes nothing again"
        ),
        _ => assert!(
            duplicates >= 1,
            "the crash before the changelog must have caused a replay of an issued offer"
        ),
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_outputs_before_changelog_and_commit() -> anyhow::Result<()> {
    run("after-outputs").await
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_after_changelog_before_commit() -> anyhow::Result<()> {
    run("after-changelog").await
}
