//! The floor channel as a process on a real broker: the API and the stream show a store only its
//! own offers and only with its token; answers reach `floor.responses.v1`; webhooks are signed,
//! retried and dead-lettered after the last try.
use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use hmac::{Hmac, Mac};
use http_body_util::BodyExt;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use rdkafka::message::{Headers as _, Message as _};
use serde_json::Value;
use sha2::Sha256;
use shelfguard_e2e::{Env, fixtures::*, free_port, wait_http};
use shelfguard_events::floor::{Answer, StaffResponse, Withdrawn, offer_event::Change};
use shelfguard_events::topics::*;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(60);
const TOKEN_1: &str = "token-of-store-one";
const TOKEN_2: &str = "token-of-store-two";

struct Channel {
    _svc: shelfguard_e2e::Service,
    base: String,
}

async fn start_channel(env: &Env, extra: &[(&str, &str)]) -> Result<Channel> {
    let port = free_port()?;
    let addr = format!("127.0.0.1:{port}");
    let tokens = format!("S1={TOKEN_1},S2={TOKEN_2}");
    let mut vars = vec![
        ("HTTP_ADDR", addr.as_str()),
        ("STORE_TOKENS", tokens.as_str()),
    ];
    vars.extend_from_slice(extra);
    let svc = env.spawn("floor-channel", &vars)?;
    let base = format!("http://{addr}");
    wait_http(&format!("{base}/stores/S1"), WAIT)
        .await
        .with_context(|| format!("floor-channel log: {}", svc.log.display()))?;
    Ok(Channel { _svc: svc, base })
}

fn far() -> i64 {
    now_ms() + 3_600_000
}

/// Reads an SSE response until `pred` holds for the text read so far.
async fn read_stream_until(
    r: &mut reqwest::Response,
    seen: &mut String,
    pred: impl Fn(&str) -> bool,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !pred(seen) {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let chunk = tokio::time::timeout(left, r.chunk())
            .await
            .with_context(|| format!("stream did not show it within {WAIT:?}; got:\n{seen}"))??
            .with_context(|| format!("stream ended; got:\n{seen}"))?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn each_store_sees_only_its_offers_with_its_token_and_answers_are_published()
-> anyhow::Result<()> {
    let env = Env::start("floor_channel_api").await?;
    env.publish(
        FLOOR_OFFERS,
        "S1",
        &offer_issued("S1", "S1/GOLD-14/S1/offer", far()),
    )
    .await?;
    env.publish(
        FLOOR_OFFERS,
        "S2",
        &offer_issued("S2", "S2/GOLD-14/S1/offer", far()),
    )
    .await?;
    let ch = start_channel(&env, &[]).await?;
    let http = reqwest::Client::new();
    let list = format!("{}/api/stores/S1/offers", ch.base);
    let stream = format!("{}/api/stores/S1/offers/stream", ch.base);
    let answer = format!(
        "{}/api/stores/S1/offers/S1%2FGOLD-14%2FS1%2Foffer/answer",
        ch.base
    );

    // The store's own token: its offer, and nothing of S2.
    let body: Value = http
        .get(&list)
        .bearer_auth(TOKEN_1)
        .send()
        .await?
        .json()
        .await?;
    let offers = body["offers"].as_array().context("offers")?;
    assert_eq!(offers.len(), 1, "{body}");
    assert_eq!(offers[0]["offer_id"], "S1/GOLD-14/S1/offer");
    assert_eq!(offers[0]["store_id"], "S1");
    assert_eq!(offers[0]["redemption_code"], "7F3K");
    assert_eq!(offers[0]["substitute"]["location"], "Aisle 7, shelf 3");

    // Missing token, wrong token, and store 2's token on store 1's routes: 401, no data.
    let accept = serde_json::json!({"answer": "accept", "by": "ana"});
    for (what, token) in [
        ("missing", None),
        ("wrong", Some("not-a-token")),
        ("store 2's", Some(TOKEN_2)),
    ] {
        let auth = |rb: reqwest::RequestBuilder| match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        for (route, r) in [
            ("list", auth(http.get(&list)).send().await?),
            ("stream", auth(http.get(&stream)).send().await?),
            (
                "answer",
                auth(http.post(&answer).json(&accept)).send().await?,
            ),
        ] {
            assert_eq!(r.status(), 401, "{what} token on {route}");
            assert!(r.headers().contains_key("www-authenticate"));
            let text = r.text().await?;
            assert!(
                !text.contains("7F3K") && !text.contains("offer_id"),
                "{text}"
            );
        }
    }
    // Store 2's token opens store 2 only.
    let body: Value = http
        .get(format!("{}/api/stores/S2/offers", ch.base))
        .bearer_auth(TOKEN_2)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(body["offers"][0]["store_id"], "S2", "{body}");
    assert_eq!(body["offers"].as_array().map(Vec::len), Some(1), "{body}");

    // The stream: first the snapshot of live offers, then changes.
    let mut s = http.get(&stream).bearer_auth(TOKEN_1).send().await?;
    assert_eq!(s.status(), 200);
    let mut seen = String::new();
    read_stream_until(&mut s, &mut seen, |t| {
        t.contains("event: snapshot") && t.contains("\n\n")
    })
    .await?;
    assert!(seen.contains("S1/GOLD-14/S1/offer"), "{seen}");
    assert!(
        !seen.contains("S2/"),
        "another store's offer in the stream: {seen}"
    );

    // Bad answers.
    let r = http
        .post(&answer)
        .bearer_auth(TOKEN_1)
        .json(&serde_json::json!({"answer": "decline"}))
        .send()
        .await?;
    assert_eq!(r.status(), 400, "decline without a reason");
    assert!(r.text().await?.contains("reason"));
    let r = http
        .post(&answer)
        .bearer_auth(TOKEN_1)
        .body("not json")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    let r = http
        .post(format!("{}/api/stores/S1/offers/nope/answer", ch.base))
        .bearer_auth(TOKEN_1)
        .json(&accept)
        .send()
        .await?;
    assert_eq!(r.status(), 404);
    let r = http
        .post(format!(
            "{}/api/stores/S1/offers/S2%2FGOLD-14%2FS1%2Foffer/answer",
            ch.base
        ))
        .bearer_auth(TOKEN_1)
        .json(&accept)
        .send()
        .await?;
    assert_eq!(
        r.status(),
        404,
        "another store's offer through this store's route"
    );

    // A good answer is published.
    let responses = env.tail(FLOOR_RESPONSES)?;
    let r = http
        .post(&answer)
        .bearer_auth(TOKEN_1)
        .json(&serde_json::json!({"answer": "decline", "reason": "customer left", "by": "ana"}))
        .send()
        .await?;
    assert_eq!(r.status(), 202);
    let body: Value = r.json().await?;
    let event_id = body["event_id"].as_str().context("event_id")?.to_owned();
    let (resp, _) = responses
        .until::<StaffResponse>(WAIT, |r| r.event_id == event_id)
        .await?;
    assert_eq!(
        (
            resp.store_id.as_str(),
            resp.offer_id.as_str(),
            resp.sku.as_str()
        ),
        ("S1", "S1/GOLD-14/S1/offer", "GOLD-14")
    );
    assert_eq!(resp.answer, Answer::Decline as i32);
    assert_eq!(
        (
            resp.reason.as_str(),
            resp.by.as_str(),
            resp.channel.as_str()
        ),
        ("customer left", "ana", "api")
    );
    shelfguard_events::validate::staff_response(&prost::Message::encode_to_vec(&resp))
        .map_err(anyhow::Error::msg)?;

    // A withdrawal upstream removes the card from the open stream and from the list.
    let w = offer_event(
        "S1",
        "S1/GOLD-14/S1/offer",
        "withdrawn",
        Change::Withdrawn(Withdrawn {
            reason: "stock of the original returned".into(),
        }),
    );
    env.publish(FLOOR_OFFERS, "S1", &w).await?;
    read_stream_until(&mut s, &mut seen, |t| t.contains("\"type\":\"remove\"")).await?;
    assert!(seen.contains("\"ended\":\"withdrawn\""), "{seen}");
    let body: Value = http
        .get(&list)
        .bearer_auth(TOKEN_1)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(body["offers"].as_array().map(Vec::len), Some(0), "{body}");
    Ok(())
}

/// What the webhook receiver saw.
#[derive(Debug)]
struct Delivery {
    path: String,
    event_id: String,
    signature_ok: bool,
    body: Value,
    answered: u16,
}

const SECRET_1: &str = "whsec-store-one-0123456789";
const SECRET_2: &str = "whsec-store-two-0123456789";

/// A webhook receiver: checks the signature, `/flaky` answers 500 once then 200, `/down` always
/// 500, `/switch` 500 until `healthy` is set, then 200.
async fn receiver() -> Result<(
    String,
    mpsc::UnboundedReceiver<Delivery>,
    Arc<std::sync::atomic::AtomicBool>,
)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = mpsc::unbounded_channel();
    let flaky_calls = Arc::new(AtomicUsize::new(0));
    let healthy = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let switch = healthy.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let (tx, flaky_calls, switch) = (tx.clone(), flaky_calls.clone(), switch.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (tx, flaky_calls, switch) =
                        (tx.clone(), flaky_calls.clone(), switch.clone());
                    async move {
                        let path = req.uri().path().to_owned();
                        let header = |n: &str| {
                            req.headers()
                                .get(n)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or_default()
                                .to_owned()
                        };
                        let (ts, sig, event_id) = (
                            header("x-shelfguard-timestamp"),
                            header("x-shelfguard-signature"),
                            header("x-shelfguard-event-id"),
                        );
                        let body = req
                            .into_body()
                            .collect()
                            .await
                            .map(|b| b.to_bytes())
                            .unwrap_or_default();
                        let secret = if path == "/flaky" { SECRET_1 } else { SECRET_2 };
                        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
                            .expect("any key length");
                        mac.update(format!("{ts}.").as_bytes());
                        mac.update(&body);
                        let signature_ok = sig
                            .strip_prefix("sha256=")
                            .and_then(|h| hex::decode(h).ok())
                            .is_some_and(|raw| mac.verify_slice(&raw).is_ok());
                        let status = match path.as_str() {
                            "/flaky" if flaky_calls.fetch_add(1, Ordering::SeqCst) == 0 => 500,
                            "/flaky" => 200,
                            "/switch" if switch.load(Ordering::SeqCst) => 200,
                            _ => 500,
                        };
                        let _ = tx.send(Delivery {
                            path,
                            event_id,
                            signature_ok,
                            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                            answered: status,
                        });
                        let mut r = Response::new(http_body_util::Full::new(
                            hyper::body::Bytes::from_static(b"ok"),
                        ));
                        *r.status_mut() = StatusCode::from_u16(status).expect("status");
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    Ok((format!("http://{addr}"), rx, healthy))
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_are_signed_retried_and_dead_lettered_after_the_last_try() -> anyhow::Result<()> {
    let env = Env::start("floor_channel_webhooks").await?;
    let (url, mut seen, _) = receiver().await?;
    let hooks = serde_json::json!([
        {"store": "S1", "url": format!("{url}/flaky"), "format": "json", "secret": SECRET_1},
        {"store": "S2", "url": format!("{url}/down"), "format": "slack", "secret": SECRET_2},
    ])
    .to_string();
    let _ch = start_channel(
        &env,
        &[
            ("WEBHOOKS", &hooks),
            ("WEBHOOK_MAX_ATTEMPTS", "3"),
            ("WEBHOOK_BACKOFF_MS", "50"),
            ("WEBHOOK_BACKOFF_MAX_MS", "200"),
            ("WEBHOOK_TIMEOUT_MS", "5000"),
        ],
    )
    .await?;
    env.publish(
        FLOOR_OFFERS,
        "S1",
        &offer_issued("S1", "S1/GOLD-14/S1/offer", far()),
    )
    .await?;
    env.publish(
        FLOOR_OFFERS,
        "S2",
        &offer_issued("S2", "S2/GOLD-14/S1/offer", far()),
    )
    .await?;
    env.publish_raw(FLOOR_OFFERS, "S3", &[0xff, 0xff, 0xff])
        .await?;

    // S1: 500 once, then the retry arrives, signed, with the same event and body.
    let mut flaky = Vec::new();
    let mut down = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while flaky.len() < 2 || down.len() < 3 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let d = tokio::time::timeout(left, seen.recv())
            .await
            .with_context(|| format!("deliveries so far: flaky {flaky:?}, down {down:?}"))?
            .context("receiver gone")?;
        if d.path == "/flaky" {
            flaky.push(d)
        } else {
            down.push(d)
        }
    }
    assert_eq!(
        flaky.iter().map(|d| d.answered).collect::<Vec<_>>(),
        [500, 200]
    );
    for d in &flaky {
        assert!(d.signature_ok, "bad signature: {d:?}");
        assert_eq!(d.event_id, "S1/GOLD-14/S1/offer:issued");
        assert_eq!(d.body["type"], "issued");
        assert_eq!(d.body["store_id"], "S1");
        assert_eq!(d.body["details"]["redemption_code"], "7F3K");
    }
    assert_eq!(flaky[0].body, flaky[1].body);
    for d in &down {
        assert!(d.signature_ok, "bad signature: {d:?}");
        let text = d.body["text"].as_str().unwrap_or_default();
        assert!(
            text.starts_with("S2: Give FREE: 28 oz Coco Gold Coconut Oil"),
            "{text}"
        );
    }

    // S2 after its 3 tries, and the undecodable record: dead letters with reasons.
    let dlq = env.tail(FLOOR_CHANNEL_DLQ)?;
    let mut reasons = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while reasons.len() < 2 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let m = dlq
            .next(left)
            .await
            .with_context(|| format!("dead letters so far: {reasons:?}"))?;
        let headers = m.headers().context("dead letter without headers")?;
        let reason = headers
            .iter()
            .find(|h| h.key == "dlq.reason")
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .context("no dlq.reason")?;
        reasons.push((
            m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            reason,
        ));
    }
    reasons.sort();
    let (s2, s3) = (&reasons[0], &reasons[1]);
    assert_eq!(s2.0.as_deref(), Some("S2"));
    assert!(
        s2.1.contains("webhook 2 of store S2") && s2.1.contains("3 tries, last: HTTP 500"),
        "{s2:?}"
    );
    assert!(
        !s2.1.contains(&url),
        "the reason must not show the webhook URL: {s2:?}"
    );
    assert_eq!(s3.0.as_deref(), Some("S3"));
    assert!(s3.1.contains("undecodable"), "{s3:?}");
    if let Ok(extra) = seen.try_recv() {
        bail!("no delivery after the last try or the success: {extra:?}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_event_still_being_retried_at_shutdown_is_delivered_by_the_next_instance()
-> anyhow::Result<()> {
    let env = Env::start("floor_channel_webhook_handover").await?;
    let (url, mut seen, healthy) = receiver().await?;
    let hooks = serde_json::json!([
        {"store": "S2", "url": format!("{url}/switch"), "format": "json", "secret": SECRET_2},
    ])
    .to_string();
    let settings = [
        ("WEBHOOKS", hooks.as_str()),
        ("WEBHOOK_MAX_ATTEMPTS", "1000"),
        ("WEBHOOK_BACKOFF_MS", "50"),
        ("WEBHOOK_BACKOFF_MAX_MS", "100"),
    ];
    let first = start_channel(&env, &settings).await?;
    env.publish(
        FLOOR_OFFERS,
        "S2",
        &offer_issued("S2", "S2/GOLD-14/S1/offer", far()),
    )
    .await?;
    // The receiver is down: the first instance keeps retrying...
    for _ in 0..2 {
        let d = tokio::time::timeout(WAIT, seen.recv())
            .await?
            .context("receiver gone")?;
        assert_eq!(
            (d.answered, d.event_id.as_str()),
            (500, "S2/GOLD-14/S1/offer:issued")
        );
    }
    // ...and stops before it got through: the offset must not have been committed.
    first._svc.stop().await?;
    healthy.store(true, Ordering::SeqCst);
    while seen.try_recv().is_ok() {}
    let _second = start_channel(&env, &settings).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let d = tokio::time::timeout(left, seen.recv())
            .await
            .context("the next instance never delivered the event")?
            .context("receiver gone")?;
        assert_eq!(d.event_id, "S2/GOLD-14/S1/offer:issued");
        assert!(d.signature_ok, "{d:?}");
        if d.answered == 200 {
            break;
        }
    }
    Ok(())
}

/// Like the pipeline services, the channel is ready only while it reaches a broker.
#[tokio::test(flavor = "multi_thread")]
async fn not_ready_while_the_broker_is_down() -> Result<()> {
    let mut env = Env::start("floor-channel-readiness").await?;
    let health = format!("127.0.0.1:{}", free_port()?);
    let ch = start_channel(&env, &[("HEALTH_ADDR", health.as_str())]).await?;
    let ready = format!("http://{health}/readyz");
    wait_http(&ready, WAIT).await?;
    env.broker.stop();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let code = reqwest::get(&ready).await?.status().as_u16();
        let metrics = reqwest::get(format!("http://{health}/metrics"))
            .await?
            .text()
            .await?;
        if code == 503 && metrics.contains("shelfguard_ready{service=\"floor-channel\"} 0") {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!(
                "still ready (HTTP {code}) with the broker down; log: {}",
                ch._svc.log.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Alive all the same: the console's page is still served.
    assert!(
        reqwest::get(format!("http://{health}/healthz"))
            .await?
            .status()
            .is_success()
    );
    Ok(())
}

/// A shelf check of GOLD-14 requested in `store`, as offer-generator publishes it.
fn check_requested(
    store: &str,
    check_id: &str,
    expires_at_ms: i64,
) -> shelfguard_events::floor::ShelfCheckEvent {
    shelfguard_e2e::fixtures::check_requested(
        store,
        check_id,
        "GOLD-14",
        "Coco Gold Coconut Oil",
        expires_at_ms,
    )
}

/// One step `step` of the shelf check `check_id` of GOLD-14.
fn check_step(
    store: &str,
    check_id: &str,
    step: &str,
    change: shelfguard_events::floor::shelf_check_event::Change,
) -> shelfguard_events::floor::ShelfCheckEvent {
    shelfguard_e2e::fixtures::check_step(store, check_id, "GOLD-14", step, change)
}

/// Shelf checks: loaded before the channel opens, listed per store with its token, answered
/// through the API (the answer on `floor.responses.v1` names the check and the finding), pushed
/// on the stream as `check` events, gone once answered or withdrawn upstream; a bad record on
/// `floor.checks.v1` is dead-lettered with the reason; answers are counted by finding.
#[tokio::test(flavor = "multi_thread")]
async fn shelf_checks_are_listed_streamed_and_answered_per_store() -> Result<()> {
    use shelfguard_events::floor::{
        CheckAnswered, CheckWithdrawn, ShelfFinding, shelf_check_event::Change as C,
    };
    let env = Env::start("floor_channel_checks").await?;
    let (c1, c2, s2c) = (
        "S1/GOLD-14/S1/check",
        "S1/GOLD-14/S2/check",
        "S2/GOLD-14/S1/check",
    );
    env.publish(FLOOR_CHECKS, "S1", &check_requested("S1", c1, far()))
        .await?;
    env.publish(FLOOR_CHECKS, "S2", &check_requested("S2", s2c, far()))
        .await?;
    // Expired before the channel starts: never shown.
    env.publish(
        FLOOR_CHECKS,
        "S1",
        &check_requested("S1", "S1/OLD/S1/check", now_ms() - 1),
    )
    .await?;
    env.publish_raw(FLOOR_CHECKS, "S3", &[0xff, 0xff, 0xff])
        .await?;
    let health = format!("127.0.0.1:{}", free_port()?);
    let ch = start_channel(&env, &[("HEALTH_ADDR", health.as_str())]).await?;
    let http = reqwest::Client::new();
    let list = format!("{}/api/stores/S1/checks", ch.base);
    let answer = |id: &str| {
        format!(
            "{}/api/stores/S1/checks/{}/answer",
            ch.base,
            id.replace('/', "%2F")
        )
    };

    // Loaded before the HTTP server opened: the list holds the store's live check at once.
    let body: Value = http
        .get(&list)
        .bearer_auth(TOKEN_1)
        .send()
        .await?
        .json()
        .await?;
    let checks = body["checks"].as_array().context("checks")?;
    assert_eq!(checks.len(), 1, "{body}");
    let c = &checks[0];
    assert_eq!(c["check_id"], c1);
    assert_eq!(c["store_id"], "S1");
    assert_eq!(c["sku"], "GOLD-14");
    assert_eq!(c["stockout_id"], "S1/GOLD-14/S1");
    assert_eq!(
        c["question"],
        "Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3?"
    );
    assert_eq!(c["product"]["location"], "Aisle 7, shelf 3");
    assert_eq!(c["product"]["size"], "14 oz");
    assert_eq!(c["on_hand"], 9);
    assert_eq!(c["status"], "open");
    assert!(c["reason"].as_str().unwrap_or_default().contains("no sale"));
    assert!(c["expires_at_ms"].as_i64().unwrap_or_default() > now_ms());
    // The offers list is another list: no check in it.
    let offers: Value = http
        .get(format!("{}/api/stores/S1/offers", ch.base))
        .bearer_auth(TOKEN_1)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        offers["offers"].as_array().map(Vec::len),
        Some(0),
        "{offers}"
    );

    // Tokens: none, a wrong one, or store 2's: 401 and nothing of the check.
    let empty = serde_json::json!({"finding": "empty", "by": "ana"});
    for token in [None, Some("not-a-token"), Some(TOKEN_2)] {
        let auth = |rb: reqwest::RequestBuilder| match token {
            Some(t) => rb.bearer_auth(t),
            None => rb,
        };
        for r in [
            auth(http.get(&list)).send().await?,
            auth(http.post(answer(c1)).json(&empty)).send().await?,
        ] {
            assert_eq!(r.status(), 401, "{token:?}");
            assert!(!r.text().await?.contains("GOLD-14"));
        }
    }

    // The stream: the snapshot carries the check, changes of checks come as `check` events.
    let mut s = http
        .get(format!("{}/api/stores/S1/offers/stream", ch.base))
        .bearer_auth(TOKEN_1)
        .send()
        .await?;
    assert_eq!(s.status(), 200);
    let mut seen = String::new();
    read_stream_until(&mut s, &mut seen, |t| {
        t.contains("event: snapshot") && t.contains("\n\n")
    })
    .await?;
    assert!(
        seen.contains("\"checks\":[{") && seen.contains(c1),
        "{seen}"
    );
    assert!(!seen.contains("S2/") && !seen.contains("S1/OLD"), "{seen}");
    env.publish(FLOOR_CHECKS, "S1", &check_requested("S1", c2, far()))
        .await?;
    read_stream_until(&mut s, &mut seen, |t| t.contains(c2)).await?;
    assert!(
        seen.contains("event: check\ndata: {\"type\":\"upsert\",\"check\":{\"check_id\":\"S1/GOLD-14/S2/check\""),
        "{seen}"
    );

    // Bad answers: 400 with a message that says what is wrong; unknown or another store's: 404.
    for (body, says) in [
        (
            serde_json::json!({"finding": "maybe"}),
            "finding must be empty or stock_is_there",
        ),
        (serde_json::json!({"by": "ana"}), "missing field `finding`"),
        (
            serde_json::json!({"finding": "empty", "counted": 3}),
            "an empty shelf counts 0",
        ),
        (
            serde_json::json!({"finding": "stock_is_there", "counted": -1}),
            "counted must be a whole number from 0 to 1000000",
        ),
        (
            serde_json::json!({"finding": "empty", "answer": "accept"}),
            "unknown field `answer`",
        ),
    ] {
        let r = http
            .post(answer(c1))
            .bearer_auth(TOKEN_1)
            .json(&body)
            .send()
            .await?;
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().await?;
        assert!(text.contains(says), "{body}: {text}");
    }
    let r = http
        .post(answer(c1))
        .bearer_auth(TOKEN_1)
        .body("not json")
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    for id in ["S1/NOPE/S1/check", s2c, "S1/OLD/S1/check"] {
        let r = http
            .post(answer(id))
            .bearer_auth(TOKEN_1)
            .json(&empty)
            .send()
            .await?;
        assert_eq!(r.status(), 404, "{id}");
        assert!(r.text().await?.contains("no open shelf check"));
    }

    // Good answers reach floor.responses.v1, naming the check and the finding.
    let responses = env.tail(FLOOR_RESPONSES)?;
    let mut published = Vec::new();
    for (id, body) in [
        (c1, serde_json::json!({"finding": "empty", "by": "ana"})),
        (
            c2,
            serde_json::json!({"finding": "stock_is_there", "counted": 6, "by": "ben"}),
        ),
    ] {
        let r = http
            .post(answer(id))
            .bearer_auth(TOKEN_1)
            .json(&body)
            .send()
            .await?;
        assert_eq!(r.status(), 202, "{body}");
        let got: Value = r.json().await?;
        assert_eq!(got["check_id"], id);
        assert_eq!(got["finding"], body["finding"]);
        published.push(got["event_id"].as_str().context("event_id")?.to_owned());
    }
    for (event_id, (id, finding, counted, by)) in published.iter().zip([
        (c1, ShelfFinding::Empty, None, "ana"),
        (c2, ShelfFinding::StockIsThere, Some(6), "ben"),
    ]) {
        let (resp, _) = responses
            .until::<StaffResponse>(WAIT, |r| &r.event_id == event_id)
            .await?;
        assert_eq!(
            (
                resp.store_id.as_str(),
                resp.check_id.as_str(),
                resp.sku.as_str()
            ),
            ("S1", id, "GOLD-14")
        );
        assert_eq!(resp.finding, finding as i32);
        assert_eq!(resp.counted, counted);
        assert_eq!((resp.by.as_str(), resp.channel.as_str()), (by, "api"));
        assert!(resp.offer_id.is_empty() && resp.answer == 0, "{resp:?}");
        shelfguard_events::validate::staff_response(&prost::Message::encode_to_vec(&resp))
            .map_err(anyhow::Error::msg)?;
    }

    // Upstream ends them: answered, withdrawn. The stream shows the removals, the list empties,
    // and a late answer is refused.
    env.publish(
        FLOOR_CHECKS,
        "S1",
        &check_step(
            "S1",
            c1,
            "answered",
            C::Answered(CheckAnswered {
                finding: ShelfFinding::Empty as i32,
                by: "ana".into(),
                counted: None,
            }),
        ),
    )
    .await?;
    env.publish(
        FLOOR_CHECKS,
        "S1",
        &check_step(
            "S1",
            c2,
            "withdrawn",
            C::Withdrawn(CheckWithdrawn {
                reason: "a sale of the product".into(),
            }),
        ),
    )
    .await?;
    read_stream_until(&mut s, &mut seen, |t| t.contains("\"ended\":\"withdrawn\"")).await?;
    assert!(
        seen.contains("event: check\ndata: {\"type\":\"remove\",\"check_id\":\"S1/GOLD-14/S1/check\",\"ended\":\"answered\",\"finding\":\"empty\""),
        "{seen}"
    );
    let body: Value = http
        .get(&list)
        .bearer_auth(TOKEN_1)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(body["checks"].as_array().map(Vec::len), Some(0), "{body}");
    let r = http
        .post(answer(c1))
        .bearer_auth(TOKEN_1)
        .json(&empty)
        .send()
        .await?;
    assert_eq!(r.status(), 404, "an answered check takes no more answers");

    // Unanswered, a check expires by the clock (before any Expired event): the stream says so.
    let soon = "S1/GOLD-14/S3/check";
    env.publish(
        FLOOR_CHECKS,
        "S1",
        &check_requested("S1", soon, now_ms() + 3_000),
    )
    .await?;
    read_stream_until(&mut s, &mut seen, |t| {
        t.contains(
            "{\"type\":\"remove\",\"check_id\":\"S1/GOLD-14/S3/check\",\"ended\":\"expired\"",
        )
    })
    .await?;
    assert!(
        seen.contains("\"check_id\":\"S1/GOLD-14/S3/check\",\"store_id\""),
        "never shown: {seen}"
    );
    let r = http
        .post(answer(soon))
        .bearer_auth(TOKEN_1)
        .json(&empty)
        .send()
        .await?;
    assert_eq!(r.status(), 404, "an expired check takes no answer");

    // The garbage record: dead-lettered once, with the reason and its source topic.
    let dlq = env.tail(FLOOR_CHANNEL_DLQ)?;
    let m = dlq.next(WAIT).await?;
    let header = |k: &str| {
        m.headers()
            .and_then(|h| h.iter().find(|h| h.key == k))
            .and_then(|h| h.value)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    };
    assert_eq!(m.key(), Some(&b"S3"[..]));
    assert!(
        header("dlq.reason").contains("undecodable"),
        "{}",
        header("dlq.reason")
    );
    assert!(
        header("dlq.source.topic").ends_with("floor.checks.v1"),
        "{}",
        header("dlq.source.topic")
    );

    // Check answers are counted by finding.
    let metrics = reqwest::get(format!("http://{health}/metrics"))
        .await?
        .text()
        .await?;
    for line in [
        "shelfguard_floor_channel_check_answers_total{finding=\"empty\"} 1",
        "shelfguard_floor_channel_check_answers_total{finding=\"stock_is_there\"} 1",
        "shelfguard_floor_channel_live_checks 1",
    ] {
        assert!(metrics.contains(line), "no {line:?} in\n{metrics}");
    }
    Ok(())
}

/// Shelf-check events go to the store's webhooks as their own kind, signed like offer events:
/// JSON with `kind: check` and the step, Slack with the question in words.
#[tokio::test(flavor = "multi_thread")]
async fn shelf_check_events_reach_webhooks_as_their_own_kind() -> Result<()> {
    use shelfguard_events::floor::{CheckAnswered, ShelfFinding, shelf_check_event::Change as C};
    let env = Env::start("floor_channel_check_webhooks").await?;
    let (url, mut seen, healthy) = receiver().await?;
    healthy.store(true, Ordering::SeqCst);
    let hooks = serde_json::json!([
        {"store": "S2", "url": format!("{url}/switch"), "format": "json", "secret": SECRET_2},
        {"store": "S2", "url": format!("{url}/switch?slack"), "format": "slack", "secret": SECRET_2},
    ])
    .to_string();
    let _ch = start_channel(&env, &[("WEBHOOKS", &hooks)]).await?;
    let check = "S2/GOLD-14/S1/check";
    env.publish(FLOOR_CHECKS, "S2", &check_requested("S2", check, far()))
        .await?;
    env.publish(
        FLOOR_CHECKS,
        "S2",
        &check_step(
            "S2",
            check,
            "answered",
            C::Answered(CheckAnswered {
                finding: ShelfFinding::StockIsThere as i32,
                by: "ana".into(),
                counted: Some(4),
            }),
        ),
    )
    .await?;
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 4 {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let d = tokio::time::timeout(left, seen.recv())
            .await
            .with_context(|| format!("deliveries so far: {got:?}"))?
            .context("receiver gone")?;
        got.push(d);
    }
    assert!(
        got.iter().all(|d| d.signature_ok && d.answered == 200),
        "{got:?}"
    );
    let json: Vec<&Delivery> = got
        .iter()
        .filter(|d| d.body.get("kind").is_some())
        .collect();
    let slack: Vec<&Delivery> = got
        .iter()
        .filter(|d| d.body.get("kind").is_none())
        .collect();
    assert_eq!((json.len(), slack.len()), (2, 2), "{got:?}");
    // Each webhook gets the store's events in order.
    assert_eq!(json[0].event_id, format!("{check}:requested"));
    assert_eq!(json[1].event_id, format!("{check}:answered"));
    for d in &json {
        assert_eq!(d.body["kind"], "check");
        assert_eq!(d.body["check_id"], check);
        assert_eq!(d.body["sku"], "GOLD-14");
    }
    assert_eq!(json[0].body["type"], "requested");
    assert_eq!(
        json[0].body["details"]["question"],
        "Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3?"
    );
    assert_eq!(json[1].body["type"], "answered");
    assert_eq!(json[1].body["details"]["finding"], "stock_is_there");
    assert_eq!(json[1].body["details"]["counted"], 4);
    let texts: Vec<&str> = slack
        .iter()
        .map(|d| d.body["text"].as_str().unwrap_or_default())
        .collect();
    assert!(
        texts[0].starts_with(
            "S2: Shelf check: Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3?"
        ),
        "{texts:?}"
    );
    assert_eq!(
        texts[1],
        "S2: shelf check for GOLD-14 answered by ana: stock is there (4 counted)."
    );
    Ok(())
}
