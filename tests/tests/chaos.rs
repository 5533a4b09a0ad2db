//! Chaos without static membership (as `deploy/` runs the services): random services are
//! killed with SIGKILL and started again within a second, while stores run out of stock and
//! the warehouse fails their reorders. Afterwards every service holds its partitions again
//! (ready, no unowned partitions), every stockout has exactly one offer id, and a redelivered
//! offer is the same record byte for byte.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use prost::Message;
use rand::Rng as _;
use rdkafka::message::Message as _;
use shelfguard_e2e::{Env, Service, fixtures::*, free_port};
use shelfguard_events::floor::{OfferEvent, offer_event::Change};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);
const STORES: usize = 9;
const KILLS: usize = 8;
const SERVICES: [&str; 3] = ["inventory", "stockout-detector", "offer-generator"];

fn store(i: usize) -> String {
    format!("S-{i:02}")
}

/// A service with its health port, so it can be started again on the same one.
struct Running {
    svc: Service,
    port: u16,
}

fn start(env: &Env, name: &str, port: u16) -> Result<Running> {
    let addr = format!("127.0.0.1:{port}");
    Ok(Running {
        svc: env.spawn(name, &[("HEALTH_ADDR", &addr)])?,
        port,
    })
}

async fn http_get(port: u16, path: &str) -> Result<(u16, String)> {
    let r = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await?;
    Ok((r.status().as_u16(), r.text().await?))
}

/// Waits until the service is ready and its group watch found no unowned partition.
async fn await_owned(r: &Running, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    let mut last = String::new();
    loop {
        if let Ok((200, _)) = http_get(r.port, "/readyz").await
            && let Ok((_, metrics)) = http_get(r.port, "/metrics").await
        {
            let line = metrics
                .lines()
                .find(|l| l.starts_with("shelfguard_unowned_partitions{"))
                .unwrap_or("")
                .to_owned();
            if line.ends_with(" 0") {
                return Ok(());
            }
            last = line;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{} not ready with all partitions owned within {within:?} ({last}); log: {}",
                r.svc.name,
                r.svc.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Plays the warehouse: every reorder request is answered with a failure.
async fn warehouse(env: Arc<Env>, stop: CancellationToken) -> Result<()> {
    let requests = env.tail(WAREHOUSE_REORDER_REQUESTS)?;
    let mut answered = BTreeSet::new();
    loop {
        let m = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            m = requests.next(Duration::from_secs(3600)) => m?,
        };
        let r = ReorderRequest::decode(m.payload().unwrap_or_default())?;
        if answered.insert(r.reorder_id.clone()) {
            let seq = r
                .reorder_id
                .rsplit('R')
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(1);
            env.publish(
                WAREHOUSE_REORDER_OUTCOMES,
                &r.store_id,
                &failed(&r.store_id, &r.sku, seq, "supplier out of stock"),
            )
            .await?;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_and_restart_within_a_second_without_static_membership() -> Result<()> {
    let env = Arc::new(Env::start("chaos").await?);
    let skus = env.publish_families("K", 1).await?;
    let (small, big) = (skus[0].clone(), skus[0].replace("-14", "-28"));
    let mut running = Vec::new();
    for name in SERVICES {
        running.push(start(&env, name, free_port()?)?);
    }
    for r in &running {
        await_owned(r, WAIT).await?;
    }
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    for i in 0..STORES {
        env.count_and_await(&levels, &store(i), &[(&big, 10), (&small, 1)], WAIT)
            .await?;
    }
    let stop = CancellationToken::new();
    let wh = tokio::spawn(warehouse(env.clone(), stop.clone()));
    let offers = env.tail(FLOOR_OFFERS)?;

    // The chaos: between kills, one store after another sells its last unit.
    let mut rng = rand::rng();
    let mut kills = 0;
    let mut last_restart = Instant::now();
    for i in 0..STORES.max(KILLS) {
        if i < STORES {
            env.publish(STORE_SALES, &store(i), &sale(&store(i), &small, 1))
                .await?;
        }
        if i < KILLS {
            let victim = running.swap_remove(rng.random_range(0..running.len()));
            let (name, port) = (victim.svc.name.clone(), victim.port);
            victim.svc.kill().await?;
            // The scenario's own timing (a pod replaced within a second), not a wait for a
            // condition.
            tokio::time::sleep(Duration::from_millis(rng.random_range(100..900))).await;
            running.push(start(&env, &name, port)?);
            last_restart = Instant::now();
            kills += 1;
            tokio::time::sleep(Duration::from_millis(rng.random_range(500..2500))).await;
        }
    }
    // Every service holds its partitions again, by itself.
    for r in &running {
        await_owned(r, WAIT).await?;
    }
    let recovered = last_restart.elapsed();

    let mut issued: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut by_event: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while issued.len() < STORES {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = offers.next(left).await.with_context(|| {
            format!(
                "offers for {STORES} stores, got {}: {issued:?}",
                issued.len()
            )
        })?;
        let bytes = m.payload().unwrap_or_default().to_vec();
        let e = OfferEvent::decode(bytes.as_slice())?;
        if let Some(prev) = by_event.insert(e.event_id.clone(), bytes.clone()) {
            assert_eq!(
                prev, bytes,
                "{} published twice with different contents",
                e.event_id
            );
        }
        if let Some(Change::Issued(_)) = e.change {
            issued
                .entry(e.stockout_id.clone())
                .or_default()
                .insert(e.offer_id.clone());
        }
    }
    // State survived the kills: a receipt in every store withdraws its offer.
    for i in 0..STORES {
        env.publish(
            STORE_STOCK_MOVEMENTS,
            &store(i),
            &receipt(&store(i), &small, 12),
        )
        .await?;
    }
    let mut withdrawn = BTreeSet::new();
    while withdrawn.len() < STORES {
        let (e, rest) = offers
            .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Withdrawn(_))))
            .await?;
        for r in rest {
            if let Some(Change::Issued(_)) = r.change {
                issued
                    .entry(r.stockout_id.clone())
                    .or_default()
                    .insert(r.offer_id);
            }
        }
        withdrawn.insert(e.store_id);
    }
    stop.cancel();
    wh.await??;
    assert_eq!(issued.len(), STORES, "one stockout per store: {issued:?}");
    for (stockout, ids) in &issued {
        assert_eq!(ids.len(), 1, "exactly one offer id for {stockout}: {ids:?}");
    }
    eprintln!(
        "chaos: {kills} kill -9 survived; all partitions owned again {:.1} s after the last restart",
        recovered.as_secs_f64()
    );
    Ok(())
}
