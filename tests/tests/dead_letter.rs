//! Bad input lands in the dead-letter topic with its reason and source; the next valid event is processed.
use std::time::Duration;

use rdkafka::message::{Headers, Message as _};
use shelfguard_e2e::{Env, fixtures::*};
use shelfguard_events::inventory::{ReorderState, StockLevel};
use shelfguard_events::stockout::StockoutEvent;
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::OutcomeStatus;

const WAIT: Duration = Duration::from_secs(60);

fn header(m: &rdkafka::message::OwnedMessage, key: &str) -> String {
    let h = m.headers().expect("headers");
    h.iter()
        .find(|h| h.key == key)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_and_invalid_events_are_dead_lettered_and_the_next_event_is_processed()
-> anyhow::Result<()> {
    let env = Env::start("dead-letter").await?;
    env.publish(
        CATALOG_PRODUCTS,
        "GOLD-14",
        &product("GOLD-14", "coconut-oil", "Gold", 14.0, 799),
    )
    .await?;
    env.publish_raw(CATALOG_PRODUCTS, "BROKEN", b"\x08\xff\xff not a product")
        .await?;
    let _inv = env.spawn("inventory", &[])?;
    let _det = env.spawn("stockout-detector", &[])?;

    let garbage = b"\xff\xfe\xfd garbage".to_vec();
    env.publish_raw(STORE_SALES, "S1", &garbage).await?;
    // A SKU not in the catalogue is held, not dead-lettered (see catalogue_race.rs).
    env.publish(STORE_SALES, "S1", &sale("S1", "NOPE-1", 1))
        .await?;
    let mut no_id = count("S1", "GOLD-14", 5);
    no_id.event_id.clear();
    env.publish(STORE_STOCK_MOVEMENTS, "S1", &no_id).await?;
    env.publish(STORE_STOCK_MOVEMENTS, "S1", &count("S1", "GOLD-14", 7))
        .await?;
    // An invalid event straight on the detector's input.
    env.publish_raw(INVENTORY_STOCK_LEVELS, "S1", b"\x12\x03abc")
        .await?;
    let empty = StockLevel {
        event_id: id(),
        occurred_at_ms: now_ms(),
        store_id: "S1".into(),
        sku: "GONE-1".into(),
        on_hand: 0,
        last_reorder: Some(ReorderState {
            reorder_id: "S1/GONE-1/R1".into(),
            status: OutcomeStatus::Failed as i32,
            ..Default::default()
        }),
        failed_reorders_7d: 1,
        ..Default::default()
    };
    env.publish(INVENTORY_STOCK_LEVELS, "S1", &empty).await?;

    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    let (level, _) = levels
        .until::<StockLevel>(WAIT, |l| l.sku == "GOLD-14")
        .await?;
    assert_eq!(
        level.on_hand, 7,
        "the valid count after the bad records was applied"
    );

    let dlq = env.tail(INVENTORY_DLQ)?;
    let mut reasons = Vec::new();
    for _ in 0..3 {
        let m = dlq.next(WAIT).await?;
        assert_eq!(header(&m, "dlq.service"), "inventory");
        let source = header(&m, "dlq.source.topic");
        assert!(source.starts_with(&env.kafka.topic_prefix), "{source}");
        let partition: i32 = header(&m, "dlq.source.partition").parse()?;
        let offset: i64 = header(&m, "dlq.source.offset").parse()?;
        assert!(partition >= 0 && offset >= 0);
        if source.ends_with(STORE_SALES) && header(&m, "dlq.reason").contains("undecodable") {
            assert_eq!(
                m.payload(),
                Some(garbage.as_slice()),
                "the original bytes are kept"
            );
        }
        reasons.push((env.kafka.base(&source).to_owned(), header(&m, "dlq.reason")));
    }
    reasons.sort();
    let want = [
        (CATALOG_PRODUCTS, "undecodable catalog.v1.Product"),
        (STORE_SALES, "undecodable store.v1.Sale"),
        (STORE_STOCK_MOVEMENTS, "missing event_id"),
    ];
    assert_eq!(reasons.len(), want.len());
    for ((topic, reason), (want_topic, want_reason)) in reasons.iter().zip(want) {
        assert_eq!(topic, want_topic);
        assert!(
            reason.starts_with(want_reason),
            "{reason:?} should start with {want_reason:?}"
        );
    }

    let det_dlq = env.tail(DETECTOR_DLQ)?;
    let m = det_dlq.next(WAIT).await?;
    assert!(
        header(&m, "dlq.reason").contains("undecodable inventory.v1.StockLevel")
            || header(&m, "dlq.reason").contains("missing"),
        "{}",
        header(&m, "dlq.reason")
    );
    assert_eq!(
        env.kafka.base(&header(&m, "dlq.source.topic")),
        INVENTORY_STOCK_LEVELS
    );
    // The detector went on: a valid level after the bad one (empty shelf, failed reorder) opens a stockout.
    let stockouts = env.tail(STOCKOUTS)?;
    let (opened, _) = stockouts
        .until::<StockoutEvent>(WAIT, |s| s.sku == "GONE-1")
        .await?;
    assert_eq!(opened.stockout_id, "S1/GONE-1/S1");
    Ok(())
}
