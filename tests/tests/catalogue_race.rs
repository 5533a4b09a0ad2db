//! The catalogue race on a real broker: a new product's first count and sale reach inventory
//! before its catalogue record. They are held (not dead-lettered), applied in order once the
//! product arrives, and the service's readiness answer shows the catalogue offset it applied.
//! Held events whose product never comes are dead-lettered after the grace period, with their
//! own bytes.
use std::time::Duration;

use anyhow::{Context, Result, bail};
use rdkafka::message::{Headers, Message as _};
use shelfguard_e2e::{Env, Service, fixtures::*, free_port, wait_http};
use shelfguard_events::Message;
use shelfguard_events::inventory::StockLevel;
use shelfguard_events::topics::*;

const WAIT: Duration = Duration::from_secs(60);
const HOUR: i64 = 3_600_000;

async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await?;
    Ok((r.status().as_u16(), r.text().await?))
}

/// Polls `/metrics` until the line starting with `series` ends with ` value`.
async fn await_metric(port: u16, series: &str, value: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::new();
    loop {
        if let Ok((200, text)) = http_get(port, "/metrics").await {
            last = text
                .lines()
                .find(|l| l.starts_with(series))
                .unwrap_or("")
                .to_owned();
            if last.ends_with(&format!(" {value}")) {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{series} never reached {value} (last: {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// An environment whose catalogue has one product, and inventory (with `env`) ready, its health
/// endpoints on the returned port.
async fn ready_inventory(test: &str, env: &[(&str, &str)]) -> Result<(Env, Service, u16)> {
    let e = Env::start(test).await?;
    e.publish(
        CATALOG_PRODUCTS,
        "OLD-14",
        &product("OLD-14", "old", "Gold", 14.0, 799),
    )
    .await?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut vars = vec![("HEALTH_ADDR", addr.as_str())];
    vars.extend_from_slice(env);
    let inv = e.spawn("inventory", &vars)?;
    wait_http(&format!("http://{addr}/readyz"), WAIT).await?;
    Ok((e, inv, port))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_count_and_a_sale_before_their_product_are_applied_once_it_arrives() -> Result<()> {
    let (env, inv, port) = ready_inventory("catalogue-race", &[]).await?;

    // The store system counts the new product and sells two, before the catalogue has it.
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    env.publish(STORE_STOCK_MOVEMENTS, "S1", &count("S1", "NEW-14", 12))
        .await?;
    env.publish(STORE_SALES, "S1", &sale("S1", "NEW-14", 2))
        .await?;
    await_metric(port, "shelfguard_held_events{service=\"inventory\"}", "2")
        .await
        .with_context(|| format!("log: {}", inv.log.display()))?;

    // The product arrives: both are applied, in order, and the books are right.
    let (partition, offset) = env
        .publish_at(
            CATALOG_PRODUCTS,
            "NEW-14",
            &product("NEW-14", "new", "Gold", 14.0, 799),
        )
        .await?;
    let (level, _) = levels
        .until::<StockLevel>(WAIT, |l| l.sku == "NEW-14" && l.on_hand == 10)
        .await
        .with_context(|| format!("log: {}", inv.log.display()))?;
    assert_eq!(level.unaccounted, 0, "{level:?}");
    await_metric(port, "shelfguard_held_events{service=\"inventory\"}", "0").await?;

    // The readiness answer says the product's catalogue record is applied.
    let (code, body) = http_get(port, "/readyz").await?;
    assert_eq!(code, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(&body)?;
    assert_eq!(ready["catalogue"]["topic"], CATALOG_PRODUCTS, "{body}");
    let next = ready["catalogue"]["next_offsets"][partition.to_string()]
        .as_i64()
        .with_context(|| format!("no offset of partition {partition} in {body}"))?;
    assert!(
        next > offset,
        "applied up to {next}, published at {offset}: {body}"
    );
    let (_, metrics) = http_get(port, "/metrics").await?;
    let series = format!(
        "shelfguard_catalogue_offset{{service=\"inventory\",partition=\"{partition}\"}} {next}"
    );
    assert!(metrics.contains(&series), "{series} missing:\n{metrics}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn held_events_whose_product_never_comes_are_dead_lettered_after_the_grace_period()
-> Result<()> {
    let (env, inv, port) =
        ready_inventory("catalogue-grace", &[("UNKNOWN_SKU_GRACE_HOURS", "1")]).await?;

    let mut lost = sale("S1", "NEVER-14", 1);
    lost.occurred_at_ms = now_ms() - 3 * HOUR;
    env.publish(STORE_SALES, "S1", &lost).await?;
    await_metric(port, "shelfguard_held_events{service=\"inventory\"}", "1").await?;
    // The store's next event, three hours of event time later, passes the grace period.
    env.publish(STORE_SALES, "S1", &sale("S1", "OLD-14", 1))
        .await?;
    let dlq = env.tail(INVENTORY_DLQ)?;
    let m = dlq
        .next(WAIT)
        .await
        .with_context(|| format!("log: {}", inv.log.display()))?;
    let header = |k: &str| {
        m.headers()
            .and_then(|h| h.iter().find(|h| h.key == k))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    assert_eq!(
        m.payload(),
        Some(lost.encode_to_vec().as_slice()),
        "its own bytes"
    );
    assert_eq!(m.key(), Some(&b"S1"[..]));
    assert_eq!(env.kafka.base(&header("dlq.source.topic")), STORE_SALES);
    let reason = header("dlq.reason");
    assert!(reason.contains("UNKNOWN_SKU_GRACE_HOURS"), "{reason}");
    assert!(
        reason.contains("SKU NEVER-14 is not in the catalogue yet"),
        "{reason}"
    );
    await_metric(
        port,
        "shelfguard_held_events_given_up_total{service=\"inventory\"}",
        "1",
    )
    .await?;
    await_metric(port, "shelfguard_held_events{service=\"inventory\"}", "0").await?;
    Ok(())
}
