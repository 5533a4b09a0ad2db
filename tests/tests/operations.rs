//! Operations on a real broker: `/readyz`, `/metrics` and the W3C `traceparent`.
//!
//! The three services run as processes with their health endpoints on free local ports; a failed
//! reorder goes through the whole pipeline (so the domain metrics have samples), then:
//! - every `shelfguard_*` metric name used by the Grafana dashboard, the alert rules or any other
//!   YAML/JSON file under `deploy/` (e.g. KEDA's lag query) must be exported by a running service;
//! - the trace id of the reorder outcome must come out on the offer, and be in each service's logs.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use prost::Message as _;
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use shelfguard_e2e::{Env, Service, fixtures::*};
use shelfguard_events::floor::{OfferEvent, offer_event::Change};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const WAIT: Duration = Duration::from_secs(60);
const SERVICES: [&str; 3] = ["inventory", "stockout-detector", "offer-generator"];

/// A local port nobody listens on (bound, then released for the service to take).
fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// `GET path` over HTTP/1.1: (status code, body).
async fn get(port: u16, path: &str) -> Result<(u16, String)> {
    let mut sock = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    sock.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut buf = Vec::new();
    sock.read_to_end(&mut buf).await?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no HTTP status in {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Polls `/readyz` until it answers 200 (the service is connected and its state restored).
async fn await_ready(svc: &Service, port: u16) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut last = String::from("no answer");
    while tokio::time::Instant::now() < deadline {
        match get(port, "/readyz").await {
            Ok((200, _)) => return Ok(()),
            Ok((code, body)) => last = format!("{code} {body}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{} not ready within {WAIT:?} (last: {last}); log: {}",
        svc.name,
        svc.log.display()
    )
}

/// The three services, with health endpoints on free ports and JSON logs that include each
/// record's span (the engine logs every applied record at debug).
struct Running {
    services: Vec<(Service, u16)>,
}

async fn start(env: &Env) -> Result<Running> {
    for p in [
        product("GOLD-14", "coconut-oil", "Gold", 14.0, 799),
        product("GOLD-28", "coconut-oil", "Gold", 28.0, 1399),
    ] {
        env.publish(CATALOG_PRODUCTS, &p.sku.clone(), &p).await?;
    }
    let mut services = Vec::new();
    for name in SERVICES {
        let port = free_port()?;
        let addr = format!("127.0.0.1:{port}");
        let svc = env.spawn(
            name,
            &[
                ("HEALTH_ADDR", addr.as_str()),
                ("LOG_FORMAT", "json"),
                ("RUST_LOG", "info,shelfguard_runtime::engine=debug"),
            ],
        )?;
        services.push((svc, port));
    }
    for (svc, port) in &services {
        await_ready(svc, *port).await?;
    }
    Ok(Running { services })
}

/// Publishes `msg` with a `traceparent` header.
async fn publish_traced(
    env: &Env,
    topic: &str,
    key: &str,
    msg: &impl prost::Message,
    traceparent: &str,
) -> Result<()> {
    let producer: FutureProducer = env.kafka.producer("e2e-traced").create()?;
    let t = env.kafka.topic(topic);
    let bytes = msg.encode_to_vec();
    producer
        .send(
            FutureRecord::to(&t)
                .key(key)
                .payload(&bytes)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "traceparent",
                    value: Some(traceparent),
                })),
            Timeout::After(Duration::from_secs(30)),
        )
        .await
        .map_err(|(e, _)| anyhow::anyhow!("publish to {t}: {e}"))?;
    Ok(())
}

fn traceparent_of(m: &OwnedMessage) -> Option<String> {
    m.headers()?
        .iter()
        .find(|h| h.key == "traceparent")
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Empties GOLD-14 in S1, fails its reorder (the outcome carries `traceparent` when given) and
/// returns the `Issued` offer record from `floor.offers.v1`.
async fn fail_a_reorder(env: &Env, traceparent: Option<&str>) -> Result<OwnedMessage> {
    // Topics are not ordered with each other: let the counts land before the sale.
    let levels = env.tail(INVENTORY_STOCK_LEVELS)?;
    env.count_and_await(&levels, "S1", &[("GOLD-28", 8), ("GOLD-14", 3)], WAIT)
        .await?;
    env.publish(STORE_SALES, "S1", &sale("S1", "GOLD-14", 3))
        .await?;
    let (req, _) = env
        .tail(WAREHOUSE_REORDER_REQUESTS)?
        .until::<ReorderRequest>(WAIT, |r| r.sku == "GOLD-14")
        .await?;
    let mut outcome = failed("S1", "GOLD-14", 1, "supplier out of stock");
    outcome.reorder_id = req.reorder_id;
    match traceparent {
        Some(tp) => publish_traced(env, WAREHOUSE_REORDER_OUTCOMES, "S1", &outcome, tp).await?,
        None => {
            env.publish(WAREHOUSE_REORDER_OUTCOMES, "S1", &outcome)
                .await?
        }
    }
    let offers = env.tail(FLOOR_OFFERS)?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = offers
            .next(left)
            .await
            .context("waiting for the issued offer")?;
        let issued = OfferEvent::decode(m.payload().unwrap_or_default())
            .is_ok_and(|e| matches!(e.change, Some(Change::Issued(_))));
        if issued {
            return Ok(m);
        }
    }
}

/// Metric names in Prometheus text: sample names, and for each `# TYPE` the names its samples
/// take (a family with no sample yet is still declared).
fn exported_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (Some(name), Some(kind)) = (it.next(), it.next()) else {
                continue;
            };
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                "summary" => &["", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        } else if !line.starts_with('#') && !line.is_empty() {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            names.insert(line[..end].to_owned());
        }
    }
    names
}

/// Every `shelfguard_*` identifier in the manifests, rules and dashboards under `dir` (YAML and
/// JSON files; prose such as README.md is not a query).
fn used_names(dir: &Path, found: &mut BTreeSet<(String, PathBuf)>) -> Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            used_names(&path, found)?;
            continue;
        }
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or_default();
        if !["yaml", "yml", "json"].contains(&ext) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        let mut rest = text.as_str();
        while let Some(i) = rest.find("shelfguard_") {
            let word: String = rest[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let before = rest[..i].chars().next_back();
            if !before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                found.insert((word.clone(), path.clone()));
            }
            rest = &rest[i + word.len()..];
        }
    }
    Ok(())
}

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_metric_the_dashboard_and_alerts_use_is_exported() -> Result<()> {
    let env = Env::start("metrics").await?;
    let running = start(&env).await?;
    // The floor channel too: the dashboard and the alerts watch it.
    let (health_port, http_port) = (free_port()?, free_port()?);
    let (health_addr, http_addr) = (
        format!("127.0.0.1:{health_port}"),
        format!("127.0.0.1:{http_port}"),
    );
    let channel = env.spawn(
        "floor-channel",
        &[
            ("HEALTH_ADDR", health_addr.as_str()),
            ("HTTP_ADDR", http_addr.as_str()),
            ("STORE_TOKENS", "S1=metrics-test-token"),
        ],
    )?;
    await_ready(&channel, health_port).await?;
    fail_a_reorder(&env, None).await?;

    let mut exported = BTreeSet::new();
    let mut texts = Vec::new();
    for (svc, port) in running
        .services
        .iter()
        .chain([(channel, health_port)].iter())
    {
        let (code, text) = get(*port, "/metrics").await?;
        assert_eq!(code, 200, "{} /metrics", svc.name);
        let ready = format!("shelfguard_ready{{service=\"{}\"}} 1", svc.name);
        assert!(
            text.contains(&ready),
            "{} /metrics lacks {ready}:\n{text}",
            svc.name
        );
        exported.extend(exported_names(&text));
        texts.push((svc.name.clone(), text));
    }
    // The domain metrics count what happened: one stockout open in S1, one offer issued.
    // The pipeline is asynchronous past the offer record: poll until the metrics show it.
    let (_, off_port) = running.services[2];
    let (_, det_port) = running.services[1];
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, off) = get(off_port, "/metrics").await?;
        let (_, det) = get(det_port, "/metrics").await?;
        let want_off = "shelfguard_offer_events_total{store=\"S1\",event=\"issued\"} 1";
        let want_det = "shelfguard_stockouts_open{store=\"S1\"} 1";
        if off.contains(want_off) && det.contains(want_det) {
            assert!(
                off.contains("shelfguard_gesture_budget_cents{store=\"S1\"}"),
                "{off}"
            );
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "expected {want_off:?} and {want_det:?};\noffer-generator:\n{off}\nstockout-detector:\n{det}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let inv = &texts[0].1;
    assert!(
        inv.contains("shelfguard_events_consumed_total{service=\"inventory\",topic=\"warehouse.reorder-outcomes.v1\"} 1"),
        "{inv}"
    );

    let mut used = BTreeSet::new();
    used_names(&deploy_dir(), &mut used)?;
    assert!(
        used.len() >= 8,
        "too few metric names found under deploy/: {used:?}"
    );
    let missing: Vec<String> = used
        .iter()
        .filter(|(name, _)| !exported.contains(name))
        .map(|(name, path)| format!("{name} (in {})", path.display()))
        .collect();
    assert!(
        missing.is_empty(),
        "metrics used under deploy/ that no service exports:\n  {}\nexported: {exported:?}",
        missing.join("\n  ")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_reorder_is_traced_through_every_service_to_its_offer() -> Result<()> {
    let env = Env::start("trace").await?;
    let running = start(&env).await?;
    let trace_id = format!("{:032x}", rand::random::<u128>() | 1);
    let traceparent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let offer = fail_a_reorder(&env, Some(&traceparent)).await?;

    let out = traceparent_of(&offer).context("the offer record has no traceparent header")?;
    let parts: Vec<&str> = out.split('-').collect();
    assert_eq!(parts.len(), 4, "{out}");
    assert_eq!(
        parts[1], trace_id,
        "the offer continues the outcome's trace: {out}"
    );
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "each hop has its own span: {out}"
    );

    // Every service logged its part of the trace (JSON lines with the record's span).
    for (svc, _) in &running.services {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let log = std::fs::read_to_string(&svc.log).unwrap_or_default();
            if log.contains(&format!("\"trace_id\":\"{trace_id}\"")) {
                break;
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "trace {trace_id} not in the log of {}: {}",
                    svc.name,
                    svc.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(())
}

/// Lines of a log that say something went wrong.
fn complaints(log: &str) -> Vec<&str> {
    log.lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN") || l.starts_with("Error"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_broker_a_service_stops_at_start_with_one_line_and_a_running_one_is_not_ready()
-> Result<()> {
    let mut env = Env::start("unreachable").await?;
    // At start, all four alike: stopped within seconds, one line naming the address and setting.
    let nowhere = format!("127.0.0.1:{}", free_port()?);
    for service in [
        "inventory",
        "stockout-detector",
        "offer-generator",
        "floor-channel",
    ] {
        let mut svc = env.spawn(
            service,
            &[
                ("KAFKA_BOOTSTRAP_SERVERS", nowhere.as_str()),
                ("KAFKA_CONNECT_TIMEOUT_SECS", "2"),
                ("STORE_TOKENS", "S1=unreachable-token"),
            ],
        )?;
        assert!(
            svc.wait_exit(Duration::from_secs(15)).await?,
            "{service} exited with success"
        );
        let log = std::fs::read_to_string(&svc.log)?;
        let said = complaints(&log);
        assert_eq!(said.len(), 1, "{service}: one line, got:\n{log}");
        assert!(said[0].contains(&nowhere), "{service}: {log}");
        assert!(
            said[0].contains("KAFKA_BOOTSTRAP_SERVERS"),
            "{service}: {log}"
        );
    }

    // Running, then the broker goes away: not ready, and still running.
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let mut svc = env.spawn(
        "stockout-detector",
        &[("HEALTH_ADDR", addr.as_str()), ("LOG_FORMAT", "json")],
    )?;
    await_ready(&svc, port).await?;
    env.broker.stop();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        if let Ok((503, body)) = get(port, "/readyz").await {
            assert_eq!(body, r#"{"ready":false}"#);
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("still ready without a broker; log: {}", svc.log.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, metrics) = get(port, "/metrics").await?;
    assert!(
        metrics.contains("shelfguard_ready{service=\"stockout-detector\"} 0"),
        "{metrics}"
    );
    assert!(
        svc.is_running(),
        "a running service does not exit for a lost broker"
    );
    Ok(())
}
