//! The console page, the JSON API and the stream (see `openapi.yaml`). Every store-scoped route
//! checks that the bearer token is that store's token: wrong or missing → 401.
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures::{Stream, StreamExt};
use prost::Message as _;
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Deserialize;
use serde_json::json;
use shelfguard_events::floor::{Answer, ShelfFinding, StaffResponse};
use tokio::sync::broadcast::error::RecvError;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::auth::{StoreTokens, bearer};
use crate::feed::{Push, Shared};
use crate::metrics::Metrics;
use crate::now_ms;

/// The console: one page, CSS and JS inline, shipped inside the binary.
const CONSOLE: &str = include_str!("console.html");

/// Where the page takes its settings from (an attribute of `<html>`).
const CURRENCY_SLOT: &str = "__FLOOR_CURRENCY__";

/// The console page with its settings filled in (`currency` is an ISO 4217 code, checked at
/// start, so it needs no escaping).
pub fn console_page(currency: &str) -> String {
    CONSOLE.replace(CURRENCY_SLOT, currency)
}

/// Longest free text accepted in an answer.
const MAX_TEXT: usize = 500;

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    /// Live offers and their changes.
    pub shared: Arc<Shared>,
    /// Which token opens which store.
    pub tokens: Arc<StoreTokens>,
    /// Publishes staff answers.
    pub producer: FutureProducer,
    /// `floor.responses.v1` with the prefix.
    pub responses_topic: String,
    /// Counters and gauges.
    pub metrics: Arc<Metrics>,
    /// Ends the streams at shutdown (so the server can drain).
    pub shutdown: CancellationToken,
    /// The console page ([`console_page`]).
    pub console: Arc<str>,
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/stores/{store}", get(console))
        .route("/api/stores/{store}/offers", get(list))
        .route("/api/stores/{store}/offers/stream", get(stream))
        .route("/api/stores/{store}/offers/{offer_id}/answer", post(answer))
        .route("/api/stores/{store}/checks", get(list_checks))
        .route(
            "/api/stores/{store}/checks/{check_id}/answer",
            post(answer_check),
        )
        .with_state(app)
}

/// Serves on `addr` until `shutdown`.
pub async fn serve(addr: String, app: App, shutdown: CancellationToken) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .with_context(|| format!("binding HTTP_ADDR {addr}"))?;
    info!(addr = %listener.local_addr()?, "console and API up");
    axum::serve(listener, router(app))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .context("HTTP server")
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><meta name=viewport content='width=device-width'><title>shelfguard</title>\
         <p>shelfguard floor channel. Open <code>/stores/&lt;store id&gt;</code> on a store device.</p>",
    )
}

async fn console(State(app): State<App>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::HeaderName::from_static("content-security-policy"),
                "default-src 'self'; img-src 'self' data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            ),
        ],
        app.console.to_string(),
    )
        .into_response()
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

/// `Err(401)` unless the bearer token is `store`'s.
fn authorize(app: &App, store: &str, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let presented = bearer(
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok()),
    );
    if app.tokens.allows(store, presented) {
        return Ok(());
    }
    app.metrics.unauthorized.inc();
    let mut r = error(
        StatusCode::UNAUTHORIZED,
        "missing or wrong token for this store (Authorization: Bearer <store token>)",
    );
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"shelfguard\""),
    );
    Err(Box::new(r))
}

async fn list(State(app): State<App>, Path(store): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &store, &headers) {
        return *r;
    }
    let offers = app.shared.view().offers.snapshot(&store, now_ms());
    axum::Json(json!({ "store_id": store, "offers": offers })).into_response()
}

/// The store's live shelf checks (their own list: a check is a question to staff, not an offer).
async fn list_checks(
    State(app): State<App>,
    Path(store): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = authorize(&app, &store, &headers) {
        return *r;
    }
    let checks = app.shared.view().checks.snapshot(&store, now_ms());
    axum::Json(json!({ "store_id": store, "checks": checks })).into_response()
}

/// Body of `POST .../answer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AnswerBody {
    /// `accept`, `decline` or `redeem`.
    answer: String,
    /// Why (required for `decline`).
    #[serde(default)]
    reason: String,
    /// Staff id or device name.
    #[serde(default)]
    by: String,
    /// `console` or `api` (default).
    #[serde(default)]
    channel: Option<String>,
}

/// The `channel` of an answer's body: `api` (the default) or `console`.
fn answer_channel(channel: Option<&str>) -> Result<&str, Box<Response>> {
    let channel = channel.unwrap_or("api");
    if matches!(channel, "api" | "console") {
        Ok(channel)
    } else {
        Err(Box::new(error(
            StatusCode::BAD_REQUEST,
            "channel must be api or console",
        )))
    }
}

/// Validates a staff answer (to an offer or a shelf check) as the contract does and publishes
/// it to `floor.responses.v1`, keyed by its store; the error is the response to give.
async fn publish_response(app: &App, response: &StaffResponse) -> Result<(), Box<Response>> {
    let bytes = response.encode_to_vec();
    if let Err(reason) = shelfguard_events::validate::staff_response(&bytes) {
        return Err(Box::new(error(StatusCode::BAD_REQUEST, &reason)));
    }
    let sent = app
        .producer
        .send(
            FutureRecord::to(&app.responses_topic)
                .key(&response.store_id)
                .payload(&bytes),
            Duration::from_secs(10),
        )
        .await;
    if let Err((e, _)) = sent {
        warn!(
            store = response.store_id,
            offer_id = response.offer_id,
            check_id = response.check_id,
            error = %e,
            "staff answer not published"
        );
        return Err(Box::new(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the answer could not be published; try again",
        )));
    }
    Ok(())
}

async fn answer(
    State(app): State<App>,
    Path((store, offer_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&app, &store, &headers) {
        return *r;
    }
    let body: AnswerBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "body must be {{\"answer\":\"accept|decline|redeem\",\"reason\":\"...\",\"by\":\"...\"}}: {e}"
                ),
            );
        }
    };
    let kind = match body.answer.as_str() {
        "accept" => Answer::Accept,
        "decline" => Answer::Decline,
        "redeem" => Answer::Redeem,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("answer must be accept, decline or redeem, not {other:?}"),
            );
        }
    };
    let channel = match answer_channel(body.channel.as_deref()) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if body.reason.len() > MAX_TEXT || body.by.len() > MAX_TEXT {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("reason and by have at most {MAX_TEXT} bytes"),
        );
    }
    let Some(sku) = app
        .shared
        .view()
        .offers
        .get(&store, &offer_id, now_ms())
        .map(|c| c.sku.clone())
    else {
        return error(
            StatusCode::NOT_FOUND,
            "no live offer with this id in this store",
        );
    };
    let response = StaffResponse {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at_ms: now_ms(),
        store_id: store.clone(),
        offer_id: offer_id.clone(),
        sku,
        answer: kind as i32,
        reason: body.reason.trim().to_owned(),
        by: body.by.trim().to_owned(),
        channel: channel.to_owned(),
        ..Default::default()
    };
    if let Err(r) = publish_response(&app, &response).await {
        return *r;
    }
    app.metrics.answers.inc();
    info!(
        store,
        offer_id,
        answer = body.answer,
        channel,
        event_id = response.event_id,
        "staff answer published"
    );
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "event_id": response.event_id,
            "offer_id": offer_id,
            "answer": body.answer,
        })),
    )
        .into_response()
}

/// Body of `POST .../checks/{check_id}/answer`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckAnswerBody {
    /// `empty` or `stock_is_there`.
    finding: String,
    /// Units counted on the shelf (optional; with `empty` only 0).
    #[serde(default)]
    counted: Option<i64>,
    /// Staff id or device name.
    #[serde(default)]
    by: String,
    /// `console` or `api` (default).
    #[serde(default)]
    channel: Option<String>,
}

/// The largest count accepted (the contract's limit on quantities).
const MAX_COUNT: i64 = 1_000_000;

async fn answer_check(
    State(app): State<App>,
    Path((store, check_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = authorize(&app, &store, &headers) {
        return *r;
    }
    let body: CheckAnswerBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "body must be {{\"finding\":\"empty|stock_is_there\",\"counted\":<units, optional>,\"by\":\"...\"}}: {e}"
                ),
            );
        }
    };
    let Some(finding) = crate::checks::parse_finding(&body.finding) else {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "finding must be empty or stock_is_there, not {:?}",
                body.finding
            ),
        );
    };
    let counted = match body.counted {
        None => None,
        Some(n) if !(0..=MAX_COUNT).contains(&n) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("counted must be a whole number from 0 to {MAX_COUNT}, not {n}"),
            );
        }
        Some(n) if n > 0 && finding == ShelfFinding::Empty => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!(
                    "an empty shelf counts 0, not {n}: send stock_is_there with the count, or leave counted out"
                ),
            );
        }
        Some(n) => i32::try_from(n).ok(),
    };
    let channel = match answer_channel(body.channel.as_deref()) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if body.by.len() > MAX_TEXT {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("by has at most {MAX_TEXT} bytes"),
        );
    }
    let Some(sku) = app
        .shared
        .view()
        .checks
        .get(&store, &check_id, now_ms())
        .map(|c| c.sku.clone())
    else {
        return error(
            StatusCode::NOT_FOUND,
            "no open shelf check with this id in this store (unknown, answered, expired or withdrawn)",
        );
    };
    let response = StaffResponse {
        event_id: uuid::Uuid::now_v7().to_string(),
        occurred_at_ms: now_ms(),
        store_id: store.clone(),
        check_id: check_id.clone(),
        sku,
        finding: finding as i32,
        counted,
        by: body.by.trim().to_owned(),
        channel: channel.to_owned(),
        ..Default::default()
    };
    if let Err(r) = publish_response(&app, &response).await {
        return *r;
    }
    let name = crate::checks::finding_name(finding as i32);
    app.metrics.answers.inc();
    app.metrics.check_answer(name).inc();
    info!(
        store,
        check_id,
        finding = name,
        counted,
        channel,
        event_id = response.event_id,
        "shelf check answer published"
    );
    (
        StatusCode::ACCEPTED,
        axum::Json(json!({
            "event_id": response.event_id,
            "check_id": check_id,
            "finding": name,
            "counted": counted,
        })),
    )
        .into_response()
}

/// Decrements the stream gauge when a stream ends (client gone, lagged or shutdown).
struct StreamGuard(Arc<Metrics>);

impl Drop for StreamGuard {
    fn drop(&mut self) {
        self.0.streams.dec();
    }
}

async fn stream(State(app): State<App>, Path(store): Path<String>, headers: HeaderMap) -> Response {
    if let Err(r) = authorize(&app, &store, &headers) {
        return *r;
    }
    let (snapshot, rx) = app.shared.subscribe(&store);
    app.metrics.streams.inc();
    let guard = StreamGuard(app.metrics.clone());
    let first = Event::default().event("snapshot").data(
        json!({ "store_id": store, "offers": snapshot.offers, "checks": snapshot.checks })
            .to_string(),
    );
    let changes =
        futures::stream::unfold((rx, store, guard), |(mut rx, store, guard)| async move {
            loop {
                match rx.recv().await {
                    Ok(change) if change.0 == store => {
                        // Offer changes keep their `change` events; checks are their own kind.
                        let (kind, data) = match &change.1 {
                            Push::Offer(u) => ("change", serde_json::to_string(u)),
                            Push::Check(u) => ("check", serde_json::to_string(u)),
                        };
                        return Some((
                            Event::default().event(kind).data(data.unwrap_or_default()),
                            (rx, store, guard),
                        ));
                    }
                    Ok(_) => continue,
                    // Fell behind: end the stream; the console reconnects and gets a fresh snapshot.
                    Err(RecvError::Lagged(_)) | Err(RecvError::Closed) => return None,
                }
            }
        });
    let events: std::pin::Pin<Box<dyn Stream<Item = Result<Event, Infallible>> + Send>> = Box::pin(
        futures::stream::once(async move { first })
            .chain(changes)
            .take_until(app.shutdown.clone().cancelled_owned())
            .map(Ok),
    );
    let mut r = Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies (nginx ingress) must pass events on at once.
    r.headers_mut().insert(
        header::HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    r
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_page_gets_the_currency() {
        assert_eq!(super::CONSOLE.matches(super::CURRENCY_SLOT).count(), 1);
        let page = super::console_page("GBP");
        assert!(page.contains("data-currency=\"GBP\""), "the slot moved");
        assert!(!page.contains(super::CURRENCY_SLOT));
    }

    /// Every route of the router is documented in the OpenAPI file.
    #[test]
    fn openapi_documents_every_route() {
        let spec = include_str!("../openapi.yaml");
        let source = include_str!("http.rs");
        // `.route(` then the path literal, on the same line or the next (rustfmt breaks long ones).
        let routes: Vec<&str> = source
            .split(".route(")
            .skip(1)
            .filter_map(|l| l.trim_start().strip_prefix('"'))
            .filter_map(|l| l.split('"').next())
            .filter(|r| r.starts_with('/') && *r != "/")
            .collect();
        assert_eq!(routes.len(), 6, "{routes:?}");
        for r in routes {
            assert!(
                spec.contains(&format!("  {r}:")),
                "{r} is not in openapi.yaml"
            );
        }
    }
}
