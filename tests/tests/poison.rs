//! Poison pills on a real broker (issue 9's reproductions): records with extreme quantities,
//! huge or malformed ids, or a key that is not their store. Each is dead-lettered with a
//! reason that names the limit, inventory stays up (`/healthz` 200, ready), the store's stock is
//! untouched, the next valid record is applied, and a restart does not stumble on them again.
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::message::{Headers, Message as _, OwnedMessage};
use shelfguard_e2e::{Env, fixtures::*, free_port, wait_http};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::store::{MovementKind, Sale, SaleLine, StockMovement};
use shelfguard_events::topics::*;

const WAIT: Duration = Duration::from_secs(60);

fn header(m: &OwnedMessage, key: &str) -> String {
    m.headers()
        .and_then(|h| h.iter().find(|h| h.key == key).and_then(|h| h.value))
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}

fn movement(sku: &str, kind: MovementKind, quantity: i32) -> StockMovement {
    StockMovement {
        event_id: id(),
        occurred_at_ms: now_ms(),
        store_id: "S-D".into(),
        sku: sku.into(),
        kind: kind as i32,
        quantity,
        note: String::new(),
    }
}

fn basket(event_id: String, sku: &str, quantities: &[i32]) -> Sale {
    Sale {
        event_id,
        occurred_at_ms: now_ms(),
        store_id: "S-D".into(),
        basket_id: String::new(),
        lines: quantities
            .iter()
            .map(|q| SaleLine {
                sku: sku.into(),
                quantity: *q,
                unit_price_cents: 100,
            })
            .collect(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn poison_pills_are_dead_lettered_and_inventory_goes_on() -> Result<()> {
    let env = Env::start("poison").await?;
    let sku = "OIL-14";
    env.publish(
        CATALOG_PRODUCTS,
        sku,
        &product(sku, "oil", "Gold", 14.0, 799),
    )
    .await?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let inv = env.spawn("inventory", &[("HEALTH_ADDR", &addr)])?;
    wait_http(&format!("http://{addr}/readyz"), WAIT).await?;
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    env.count_and_await(&levels, "S-D", &[(sku, 10)], WAIT)
        .await?;

    use MovementKind::*;
    let pills: Vec<(&str, &str, Vec<u8>, &str)> = vec![
        (
            STORE_STOCK_MOVEMENTS,
            "S-D",
            enc(&movement(sku, Receipt, i32::MAX)),
            "limit: quantities",
        ),
        (
            STORE_STOCK_MOVEMENTS,
            "S-D",
            enc(&movement(sku, Adjustment, i32::MAX)),
            "limit: quantities",
        ),
        (
            STORE_STOCK_MOVEMENTS,
            "S-D",
            enc(&movement(sku, Adjustment, i32::MIN)),
            "limit: quantities",
        ),
        (
            STORE_STOCK_MOVEMENTS,
            "S-D",
            enc(&movement(sku, Shrink, i32::MAX)),
            "limit: quantities",
        ),
        (
            STORE_SALES,
            "S-D",
            enc(&basket(id(), sku, &[i32::MAX - 1])),
            "limit: quantities",
        ),
        (
            STORE_SALES,
            "S-D",
            enc(&basket(id(), sku, &[i32::MAX, i32::MAX])),
            "limit: quantities",
        ),
        (
            STORE_SALES,
            "S-D",
            enc(&basket("x".repeat(700_000), sku, &[1])),
            "limit: record size",
        ),
        (
            STORE_SALES,
            "S-D",
            enc(&basket("y".repeat(129), sku, &[1])),
            "limit: ids",
        ),
        (
            STORE_SALES,
            "S-D",
            enc(&basket(id(), &"Z".repeat(65), &[1])),
            "limit: ids",
        ),
        (
            STORE_SALES,
            "S-D",
            enc(&basket("a b/c".into(), sku, &[1])),
            "limit: ids",
        ),
        (
            STORE_SALES,
            "S-ELSEWHERE",
            enc(&basket(id(), sku, &[1])),
            "does not match store_id",
        ),
    ];
    for (topic, key, bytes, _) in &pills {
        env.publish_raw(topic, key, bytes).await?;
    }
    // The valid record after them.
    env.publish(STORE_SALES, "S-D", &sale("S-D", sku, 1))
        .await?;
    let (level, _) = levels
        .until::<StockLevel>(WAIT, |l| {
            l.store_id == "S-D" && l.cause == Cause::Sale as i32
        })
        .await?;
    assert_eq!(
        (level.on_hand, level.unaccounted),
        (9, 0),
        "the books: 10 counted, 1 sold"
    );

    let dlq = env.tail(INVENTORY_DLQ)?;
    let mut reasons = Vec::new();
    for _ in &pills {
        let m = dlq.next(WAIT).await.context("a dead letter per pill")?;
        reasons.push(header(&m, "dlq.reason"));
        assert_eq!(header(&m, "dlq.service"), "inventory");
        if let Some(full) = m
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == "dlq.truncated"))
        {
            let full: usize = String::from_utf8_lossy(full.value.unwrap_or_default()).parse()?;
            assert!(full > m.payload().map_or(0, <[u8]>::len));
        }
    }
    for (_, _, _, says) in &pills {
        let n_want = pills.iter().filter(|p| p.3 == *says).count();
        let n_got = reasons.iter().filter(|r| r.contains(says)).count();
        assert_eq!(n_got, n_want, "{says}: {reasons:#?}");
    }
    assert!(
        reqwest::get(format!("http://{addr}/healthz"))
            .await?
            .status()
            .is_success(),
        "inventory is alive"
    );

    // A restart does not stumble on the pills again: it comes back ready and applies the next.
    inv.stop().await?;
    let _inv = env.spawn("inventory", &[("HEALTH_ADDR", &addr)])?;
    wait_http(&format!("http://{addr}/readyz"), WAIT).await?;
    env.publish(STORE_SALES, "S-D", &sale("S-D", sku, 2))
        .await?;
    let (level, _) = levels
        .until::<StockLevel>(WAIT, |l| l.store_id == "S-D" && l.on_hand == 7)
        .await?;
    assert_eq!(level.unaccounted, 0);
    Ok(())
}

fn enc(m: &impl prost::Message) -> Vec<u8> {
    m.encode_to_vec()
}
