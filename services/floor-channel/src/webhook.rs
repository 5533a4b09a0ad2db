//! Webhooks, the pure part: targets from `WEBHOOKS`, the body for an offer event or a shelf-check
//! event (Slack-compatible or plain JSON; the JSON says which with `kind`: `offer` or `check`),
//! its signature, and the retry schedule.
//!
//! Signature: `X-Shelfguard-Timestamp: <unix ms>` and
//! `X-Shelfguard-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`. Receivers
//! recompute it over the raw body, compare in constant time and may refuse old timestamps.
use std::time::Duration;

use hmac::{Hmac, Mac};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::Sha256;
use shelfguard_events::floor::{Gesture, OfferEvent, ShelfCheckEvent, offer_event::Change};

use crate::checks::finding_name;
use crate::live::{Product, gesture_name};

/// An event delivered to webhooks: of an offer (`floor.offers.v1`) or of a shelf check
/// (`floor.checks.v1`).
#[derive(Debug, Clone)]
pub enum FloorEvent {
    Offer(OfferEvent),
    Check(ShelfCheckEvent),
}

impl FloorEvent {
    pub fn event_id(&self) -> &str {
        match self {
            Self::Offer(e) => &e.event_id,
            Self::Check(e) => &e.event_id,
        }
    }

    pub fn store_id(&self) -> &str {
        match self {
            Self::Offer(e) => &e.store_id,
            Self::Check(e) => &e.store_id,
        }
    }

    /// `offer` or `check` (the JSON body's `kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Offer(_) => "offer",
            Self::Check(_) => "check",
        }
    }

    /// The body in `format`, or `None` for events not sent (`NotOffered`).
    pub fn render(&self, format: Format) -> Option<Vec<u8>> {
        match self {
            Self::Offer(e) => render(e, format),
            Self::Check(e) => render_check(e, format),
        }
    }
}

pub const SIGNATURE_HEADER: &str = "x-shelfguard-signature";
pub const TIMESTAMP_HEADER: &str = "x-shelfguard-timestamp";
pub const EVENT_ID_HEADER: &str = "x-shelfguard-event-id";

/// Body format of a webhook.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Slack incoming-webhook JSON: `{"text": "..."}` (also Mattermost, Teams workflows, ...).
    Slack,
    /// The event as JSON for store systems.
    Json,
}

/// One webhook of one store. Debug output hides the URL (Slack URLs are secrets) and the secret.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// The store whose offer events go here.
    pub store: String,
    /// Where to POST.
    pub url: String,
    /// Body format.
    pub format: Format,
    /// HMAC key of the signature header.
    pub secret: String,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("store", &self.store)
            .field("url", &"***")
            .field("format", &self.format)
            .field("secret", &"***")
            .finish()
    }
}

/// The webhooks of every store, from `WEBHOOKS`.
#[derive(Clone, Default, Debug)]
pub struct Targets(pub Vec<Target>);

/// Parses `WEBHOOKS`: a JSON array of `{"store","url","format","secret"}`. Errors never echo
/// URLs or secrets.
pub fn parse(s: &str) -> Result<Targets, String> {
    if s.trim().is_empty() {
        return Ok(Targets::default());
    }
    let targets: Vec<Target> = serde_json::from_str(s).map_err(|e| {
        format!(
            "WEBHOOKS is not a JSON array of {{store, url, format (slack|json), secret}} (line {}, column {})",
            e.line(),
            e.column()
        )
    })?;
    for (i, t) in targets.iter().enumerate() {
        shelfguard_events::validate::id("store", &t.store)
            .map_err(|e| format!("webhook {}: {e}", i + 1))?;
        if !(t.url.starts_with("https://") || t.url.starts_with("http://")) {
            return Err(format!(
                "webhook {} of store {}: url must be http(s)",
                i + 1,
                t.store
            ));
        }
        if t.secret.len() < 16 {
            return Err(format!(
                "webhook {} of store {}: secret must have 16 characters at least",
                i + 1,
                t.store
            ));
        }
    }
    Ok(Targets(targets))
}

impl Targets {
    /// The webhooks of `store`, with their index in the configuration (1-based, for messages).
    pub fn of<'a>(&'a self, store: &'a str) -> impl Iterator<Item = (usize, &'a Target)> + 'a {
        self.0
            .iter()
            .enumerate()
            .filter(move |(_, t)| t.store == store)
            .map(|(i, t)| (i + 1, t))
    }
}

/// The `sha256=` signature header value: hex HMAC-SHA256 of `"<timestamp>.<body>"` under `secret`.
pub fn sign(secret: &str, timestamp_ms: i64, body: &[u8]) -> String {
    #[allow(clippy::expect_used)]
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The delay before attempt `attempt` (2, 3, ...): `initial`, doubling, at most `cap`.
pub fn backoff(initial: Duration, cap: Duration, attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(2).min(20);
    initial.saturating_mul(1 << doublings).min(cap)
}

/// Whether an HTTP status is worth another try (server errors, timeouts, rate limits); other
/// client errors would fail the same way again.
pub fn retryable(status: u16) -> bool {
    status >= 500 || status == 408 || status == 429
}

/// The body for `event` in `format`, or `None` for events not sent (`NotOffered`).
pub fn render(event: &OfferEvent, format: Format) -> Option<Vec<u8>> {
    let change = event.change.as_ref()?;
    if matches!(change, Change::NotOffered(_)) {
        return None;
    }
    let text = text(event);
    let body = match format {
        Format::Slack => json!({ "text": text }),
        Format::Json => {
            let (kind, details) = details(change);
            json!({
                "event_id": event.event_id,
                "kind": "offer",
                "type": kind,
                "occurred_at_ms": event.occurred_at_ms,
                "store_id": event.store_id,
                "offer_id": event.offer_id,
                "stockout_id": event.stockout_id,
                "sku": event.sku,
                "text": text,
                "details": details,
            })
        }
    };
    Some(body.to_string().into_bytes())
}

fn details(change: &Change) -> (&'static str, Value) {
    match change {
        Change::Issued(i) => {
            let o = i.offer.clone().unwrap_or_default();
            let p =
                |p: &Option<shelfguard_events::floor::ProductRef>| p.as_ref().map(Product::from);
            (
                "issued",
                json!({
                    "original": p(&o.original),
                    "substitute": p(&o.substitute),
                    "gesture": gesture_name(o.gesture),
                    "gesture_value_cents": o.gesture_value_cents,
                    "reason": o.reason,
                    "redemption_code": o.redemption_code,
                    "expires_at_ms": o.expires_at_ms,
                    "complements": o.complements.iter().map(Product::from).collect::<Vec<_>>(),
                    "failed_reorders": o.failed_reorders,
                    "suspected": o.suspected,
                }),
            )
        }
        Change::Withdrawn(w) => ("withdrawn", json!({ "reason": w.reason })),
        Change::Accepted(a) => ("accepted", json!({ "by": a.by })),
        Change::Declined(d) => ("declined", json!({ "reason": d.reason, "by": d.by })),
        Change::Redeemed(r) => (
            "redeemed",
            json!({
                "by": r.by,
                "substitute_sku": r.substitute_sku,
                "quantity": r.quantity,
                "gesture_value_cents": r.gesture_value_cents,
            }),
        ),
        Change::Expired(_) => ("expired", json!({})),
        Change::NotOffered(n) => ("not_offered", json!({ "reason": n.reason })),
    }
}

/// The body for a shelf-check event in `format`: every step is sent (`requested`, `answered`,
/// `expired`, `withdrawn`).
pub fn render_check(event: &ShelfCheckEvent, format: Format) -> Option<Vec<u8>> {
    use shelfguard_events::floor::shelf_check_event::Change as C;
    let change = event.change.as_ref()?;
    let text = check_text(event);
    let body = match format {
        Format::Slack => json!({ "text": text }),
        Format::Json => {
            let (kind, details) = match change {
                C::Requested(r) => (
                    "requested",
                    json!({
                        "product": r.product.as_ref().map(Product::from),
                        "question": r.question,
                        "reason": r.reason,
                        "on_hand": r.on_hand,
                        "expires_at_ms": r.expires_at_ms,
                    }),
                ),
                C::Answered(a) => (
                    "answered",
                    json!({
                        "finding": finding_name(a.finding),
                        "by": a.by,
                        "counted": a.counted,
                    }),
                ),
                C::Expired(_) => ("expired", json!({})),
                C::Withdrawn(w) => ("withdrawn", json!({ "reason": w.reason })),
            };
            json!({
                "event_id": event.event_id,
                "kind": "check",
                "type": kind,
                "occurred_at_ms": event.occurred_at_ms,
                "store_id": event.store_id,
                "check_id": event.check_id,
                "stockout_id": event.stockout_id,
                "sku": event.sku,
                "text": text,
                "details": details,
            })
        }
    };
    Some(body.to_string().into_bytes())
}

/// A shelf-check event in plain words, e.g. "S1: Shelf check: Is there any 14 oz Coco Gold
/// Coconut Oil at Aisle 7, shelf 3? No sale for 3 h ... Answer by 16:40 UTC.".
pub fn check_text(event: &ShelfCheckEvent) -> String {
    use shelfguard_events::floor::shelf_check_event::Change as C;
    let (store, sku) = (&event.store_id, &event.sku);
    match event.change.as_ref() {
        Some(C::Requested(r)) => {
            let question = if r.question.trim().is_empty() {
                let p = r.product.clone().unwrap_or_default();
                let what = format!("{} {}", p.size, p.name).trim().to_owned();
                let what = if what.is_empty() { sku.clone() } else { what };
                match p.location.as_str() {
                    "" => format!("Is there any {what} on the shelf?"),
                    at => format!("Is there any {what} at {at}?"),
                }
            } else {
                r.question.trim().to_owned()
            };
            let mut s = format!("{store}: Shelf check: {question}");
            let reason = r.reason.trim();
            if !reason.is_empty() {
                s.push(' ');
                s.push_str(&upper_first(reason));
                if !reason.ends_with(['.', '!', '?']) {
                    s.push('.');
                }
            }
            s.push_str(&format!(" Answer by {}.", clock(r.expires_at_ms)));
            s
        }
        Some(C::Answered(a)) => {
            let found = match finding_name(a.finding) {
                "empty" => "the shelf is empty".to_owned(),
                "stock_is_there" => match a.counted {
                    Some(n) => format!("stock is there ({n} counted)"),
                    None => "stock is there".to_owned(),
                },
                other => other.to_owned(),
            };
            let by = if a.by.is_empty() {
                String::new()
            } else {
                format!(" by {}", a.by)
            };
            format!("{store}: shelf check for {sku} answered{by}: {found}.")
        }
        Some(C::Expired(_)) => format!("{store}: shelf check for {sku} expired unanswered."),
        Some(C::Withdrawn(w)) => {
            format!("{store}: shelf check for {sku} withdrawn: {}.", w.reason)
        }
        None => String::new(),
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The event in plain words for people, e.g. "S1: Give FREE: 28 oz Coco Gold (Aisle 7, shelf 3)
/// instead of 14 oz Coco Gold. Code 7F3K. Expires 16:40 UTC. 14 oz Coco Gold is out, ...".
pub fn text(event: &OfferEvent) -> String {
    let store = &event.store_id;
    match event.change.as_ref() {
        Some(Change::Issued(i)) => {
            let o = i.offer.clone().unwrap_or_default();
            let label = |p: &Option<shelfguard_events::floor::ProductRef>| {
                p.as_ref()
                    .map(|p| format!("{} {}", p.size, p.name).trim().to_owned())
                    .unwrap_or_default()
            };
            let place = o
                .substitute
                .as_ref()
                .map(|p| p.location.as_str())
                .filter(|l| !l.is_empty())
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            let how = match Gesture::try_from(o.gesture) {
                Ok(Gesture::Free) => "Give FREE".to_owned(),
                _ => format!(
                    "Give at the price of the {}",
                    o.original.as_ref().map_or("original", |p| p.size.as_str())
                ),
            };
            let mut s = format!(
                "{store}: {how}: {}{place} instead of {}. Code {}. Expires {}.",
                label(&o.substitute),
                label(&o.original),
                o.redemption_code,
                clock(o.expires_at_ms)
            );
            if !o.reason.is_empty() {
                s.push(' ');
                s.push_str(&o.reason);
            }
            if !o.complements.is_empty() {
                let names: Vec<String> = o
                    .complements
                    .iter()
                    .map(|c| format!("{} {}", c.size, c.name).trim().to_owned())
                    .collect();
                s.push_str(&format!(" Also suggest: {}.", names.join(", ")));
            }
            s
        }
        Some(Change::Withdrawn(w)) => {
            format!("{store}: offer for {} withdrawn: {}.", event.sku, w.reason)
        }
        Some(Change::Accepted(a)) => {
            format!("{store}: offer for {} accepted by {}.", event.sku, a.by)
        }
        Some(Change::Declined(d)) => format!(
            "{store}: offer for {} declined by {}: {}.",
            event.sku, d.by, d.reason
        ),
        Some(Change::Redeemed(r)) => format!(
            "{store}: offer for {} redeemed by {} ({} x {}).",
            event.sku, r.by, r.quantity, r.substitute_sku
        ),
        Some(Change::Expired(_)) => format!("{store}: offer for {} expired.", event.sku),
        Some(Change::NotOffered(n)) => {
            format!("{store}: no offer for {}: {}.", event.sku, n.reason)
        }
        None => String::new(),
    }
}

/// `HH:MM UTC` of a UTC timestamp in milliseconds.
fn clock(ms: i64) -> String {
    let mins = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02} UTC", mins / 60, mins % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::tests::{NOW, event, issued};
    use shelfguard_events::floor::{Declined, NotOffered};

    #[test]
    fn targets_parse_and_hide_urls_and_secrets() {
        let t = parse(
            r#"[{"store":"S1","url":"https://hooks.slack.com/services/T/B/X","format":"slack","secret":"0123456789abcdef"},
                {"store":"S2","url":"http://pos.local/hook","format":"json","secret":"fedcba9876543210"}]"#,
        )
        .unwrap();
        assert_eq!(t.of("S1").map(|(i, _)| i).collect::<Vec<_>>(), [1]);
        assert_eq!(t.of("S2").next().unwrap().1.format, Format::Json);
        assert_eq!(t.of("S3").count(), 0);
        let shown = format!("{t:?}");
        assert!(
            !shown.contains("slack.com") && !shown.contains("0123"),
            "{shown}"
        );
        assert!(parse("").unwrap().0.is_empty());
    }

    #[test]
    fn bad_targets_are_refused_without_echoing_secrets() {
        for bad in [
            r#"{"store":"S1"}"#,
            r#"[{"store":"S1","url":"ftp://x","format":"json","secret":"0123456789abcdef"}]"#,
            r#"[{"store":"S1","url":"https://x","format":"xml","secret":"0123456789abcdef"}]"#,
            r#"[{"store":"S1","url":"https://x","format":"json","secret":"tiny"}]"#,
            r#"[{"store":"S 1","url":"https://x","format":"json","secret":"0123456789abcdef"}]"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(
                !e.contains("0123456789abcdef") && !e.contains("tiny"),
                "{e}"
            );
        }
    }

    #[test]
    fn signature_is_hmac_sha256_of_timestamp_dot_body() {
        // Reference value computed independently:
        // printf '1700000000000.{"text":"hi"}' | openssl dgst -sha256 -hmac 'whsec-0123456789'
        assert_eq!(
            sign("whsec-0123456789", 1_700_000_000_000, br#"{"text":"hi"}"#),
            "sha256=1ec03b93680e1eaec22b3472233b368c329995137cd443413dae9e2930229e8f"
        );
    }

    #[test]
    fn signature_depends_on_secret_timestamp_and_body() {
        let s = sign("secret-one-12345", 1, b"body");
        assert!(s.starts_with("sha256=") && s.len() == 7 + 64);
        assert_ne!(s, sign("secret-two-12345", 1, b"body"));
        assert_ne!(s, sign("secret-one-12345", 2, b"body"));
        assert_ne!(s, sign("secret-one-12345", 1, b"bodY"));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (i, cap) = (Duration::from_millis(500), Duration::from_secs(3));
        let d: Vec<u128> = (2..=7).map(|a| backoff(i, cap, a).as_millis()).collect();
        assert_eq!(d, [500, 1000, 2000, 3000, 3000, 3000]);
        assert!(retryable(500) && retryable(503) && retryable(429) && retryable(408));
        assert!(!retryable(400) && !retryable(404) && !retryable(200));
    }

    #[test]
    fn slack_body_is_text_in_plain_words() {
        let e = issued("S1", "o1", NOW + 3_600_000);
        let body: Value = serde_json::from_slice(&render(&e, Format::Slack).unwrap()).unwrap();
        let text = body["text"].as_str().unwrap();
        assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
        assert!(
            text.starts_with(
                "S1: Give FREE: 28 oz Coco Gold Coconut Oil (Aisle 7, shelf 3) instead of 14 oz Coco Gold Coconut Oil. Code 7F3K. Expires "
            ),
            "{text}"
        );
        assert!(text.contains("warehouse failed 3x"), "{text}");
        assert!(
            text.contains("Also suggest: 1 loaf Coco Gold Coconut Oil."),
            "{text}"
        );
    }

    #[test]
    fn json_body_carries_the_event() {
        let e = issued("S1", "o1", NOW + 3_600_000);
        let body: Value = serde_json::from_slice(&render(&e, Format::Json).unwrap()).unwrap();
        assert_eq!(body["type"], "issued");
        assert_eq!(body["event_id"], "o1:issued");
        assert_eq!(body["store_id"], "S1");
        assert_eq!(body["details"]["redemption_code"], "7F3K");
        assert_eq!(body["details"]["substitute"]["sku"], "GOLD-28");
        assert_eq!(body["details"]["gesture"], "free");
        let d = event(
            "S1",
            "o1",
            "declined",
            Change::Declined(Declined {
                reason: "customer left".into(),
                by: "ana".into(),
            }),
        );
        let body: Value = serde_json::from_slice(&render(&d, Format::Json).unwrap()).unwrap();
        assert_eq!(body["type"], "declined");
        assert_eq!(body["details"]["reason"], "customer left");
        assert!(body["text"].as_str().unwrap().contains("declined by ana"));
        let n = event(
            "S1",
            "o1",
            "no",
            Change::NotOffered(NotOffered {
                cause: 1,
                reason: "x".into(),
            }),
        );
        assert!(render(&n, Format::Slack).is_none());
    }

    #[test]
    fn clock_is_utc_hours_and_minutes() {
        assert_eq!(clock(0), "00:00 UTC");
        assert_eq!(clock((16 * 60 + 40) * 60_000 + 59_999), "16:40 UTC");
    }

    #[test]
    fn check_events_are_their_own_kind_in_json_and_plain_words_in_slack() {
        use crate::checks::tests::{check_event, requested};
        use shelfguard_events::floor::{CheckAnswered, CheckWithdrawn, shelf_check_event};
        let r = FloorEvent::Check(requested("S1", "S1/GOLD-14/S1/check", NOW + 3_600_000));
        assert_eq!((r.kind(), r.store_id()), ("check", "S1"));
        let body: Value = serde_json::from_slice(&r.render(Format::Json).unwrap()).unwrap();
        assert_eq!(body["kind"], "check");
        assert_eq!(body["type"], "requested");
        assert_eq!(body["check_id"], "S1/GOLD-14/S1/check");
        assert_eq!(body["event_id"], "S1/GOLD-14/S1/check:requested");
        assert_eq!(body["details"]["product"]["location"], "Aisle 7, shelf 3");
        assert_eq!(body["details"]["on_hand"], 9);
        assert!(body.get("offer_id").is_none(), "{body}");
        let slack: Value = serde_json::from_slice(&r.render(Format::Slack).unwrap()).unwrap();
        let text = slack["text"].as_str().unwrap();
        assert!(
            text.starts_with(
                "S1: Shelf check: Is there any 14 oz Coco Gold Coconut Oil at Aisle 7, shelf 3? No sale for 3 h 10 min"
            ),
            "{text}"
        );
        assert!(text.contains("books say 9 on hand. Answer by "), "{text}");

        let answered = FloorEvent::Check(check_event(
            "S1",
            "c1",
            "answered",
            shelf_check_event::Change::Answered(CheckAnswered {
                finding: 2,
                by: "ana".into(),
                counted: Some(5),
            }),
        ));
        let body: Value = serde_json::from_slice(&answered.render(Format::Json).unwrap()).unwrap();
        assert_eq!(body["type"], "answered");
        assert_eq!(body["details"]["finding"], "stock_is_there");
        assert_eq!(body["details"]["counted"], 5);
        assert_eq!(
            body["text"],
            "S1: shelf check for GOLD-14 answered by ana: stock is there (5 counted)."
        );
        let w = check_event(
            "S1",
            "c1",
            "withdrawn",
            shelf_check_event::Change::Withdrawn(CheckWithdrawn {
                reason: "a sale of the product".into(),
            }),
        );
        assert_eq!(
            check_text(&w),
            "S1: shelf check for GOLD-14 withdrawn: a sale of the product."
        );
        // Offer bodies say their kind too.
        let o = FloorEvent::Offer(issued("S1", "o1", NOW + 3_600_000));
        let body: Value = serde_json::from_slice(&o.render(Format::Json).unwrap()).unwrap();
        assert_eq!(
            (body["kind"].as_str(), body["type"].as_str()),
            (Some("offer"), Some("issued"))
        );
    }
}
