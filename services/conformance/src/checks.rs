//! The checks. Each plays store system (catalogue, counts, sales) and warehouse (answers to
//! reorder requests) for the test store, with SKUs of its own, and waits for what the
//! deployment publishes, polling with a deadline (never fixed sleeps as synchronisation).
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::message::Message as _;
use serde_json::{Value, json};
use shelfguard_events::catalog::{Product, Size};
use shelfguard_events::floor::{Answer, Gesture, OfferEvent, StaffResponse, offer_event::Change};
use shelfguard_events::inventory::{Cause, StockLevel};
use shelfguard_events::store::{MovementKind, Sale, SaleLine, StockMovement};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::{OutcomeStatus, ReorderOutcome, ReorderRequest};
use tokio::time::Instant;

use crate::kafka::{Cluster, Producer, Reader, header};
use crate::{Config, Verdict};

/// Every check: its letter and what it shows.
pub const CHECKS: &[(&str, &str)] = &[
    (
        "a",
        "coconut oil: the 14 oz sells out after 3 failed reorders -> the 28 oz free, on floor.offers.v1 and the API, accepted via the API",
    ),
    (
        "b",
        "dietary substitute: a peanut-free original gets a peanut-free substitute, not the nearer size without the claim",
    ),
    (
        "c",
        "duplicates and late copies: a sale published again with the same event_id moves stock once",
    ),
    (
        "d",
        "catalogue race: a count and a sale published before their product are booked once it arrives",
    ),
    (
        "e",
        "bad record: garbage on store.sales.v1 is dead-lettered and the next sale is applied",
    ),
];

/// The floor channel's API, with the test store's token.
pub struct Floor {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Floor {
    pub fn new(base: &str, token: &str) -> Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
        })
    }

    async fn offers(&self, store: &str) -> Result<Vec<Value>> {
        let url = format!("{}/api/stores/{}/offers", self.base, segment(store));
        let r = self
            .client
            .get(&url)
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        let status = r.status();
        let body: Value = r.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET /api/stores/{store}/offers answered {status}: {body}");
        }
        Ok(body["offers"].as_array().cloned().unwrap_or_default())
    }

    /// Polls the store's live offers until `offer_id` is there and `pred` holds for it.
    async fn await_offer(
        &self,
        store: &str,
        offer_id: &str,
        deadline: Instant,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let mut last = Vec::new();
        loop {
            match self.offers(store).await {
                Ok(list) => {
                    if let Some(o) = list.iter().find(|o| o["offer_id"] == offer_id && pred(o)) {
                        return Ok(o.clone());
                    }
                    last = list;
                }
                Err(e) if Instant::now() >= deadline => return Err(e),
                Err(_) => {}
            }
            if Instant::now() >= deadline {
                bail!(
                    "the API never showed offer {offer_id} as expected; last answer: {}",
                    Value::Array(last)
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn answer(&self, store: &str, offer_id: &str, body: Value) -> Result<(u16, Value)> {
        // Offer ids contain `/`: one path segment, percent-encoded.
        let url = format!(
            "{}/api/stores/{}/offers/{}/answer",
            self.base,
            segment(store),
            segment(offer_id)
        );
        let r = self
            .client
            .post(&url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        Ok((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }
}

pub struct Ctx {
    producer: Producer,
    store: String,
    run: String,
    retry_after_ms: i64,
    floor: Option<Floor>,
    requests: Reader,
    levels: Reader,
    offers: Reader,
    dlq: Reader,
    /// Offers issued for this run (offer id, original SKU): declined at the end.
    made: Mutex<Vec<(String, String)>>,
    /// SKUs this run published: retired at the end.
    products: Mutex<Vec<String>>,
}

/// Percent-encodes one URL path segment (everything but the unreserved characters).
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        format!("{}...", s.chars().take(n).collect::<String>())
    }
}

fn gesture_name(g: i32) -> &'static str {
    match Gesture::try_from(g) {
        Ok(Gesture::Free) => "free",
        Ok(Gesture::AtOriginalPrice) => "at the original's price",
        _ => "unspecified",
    }
}

fn describe(e: &OfferEvent) -> String {
    match &e.change {
        Some(Change::Issued(i)) => {
            let o = i.offer.clone().unwrap_or_default();
            format!(
                "Issued {}: give {} {} (gesture {} cents), code {}",
                e.offer_id,
                o.substitute.map(|s| s.sku).unwrap_or_default(),
                gesture_name(o.gesture),
                o.gesture_value_cents,
                o.redemption_code
            )
        }
        Some(Change::NotOffered(n)) => format!("NotOffered: {}", n.reason),
        Some(other) => format!("{other:?} for {}", e.offer_id),
        None => "an event with no change set".into(),
    }
}

impl Ctx {
    pub async fn start(
        cluster: &Cluster,
        store: &str,
        run: &str,
        config: &Config,
        floor: Option<Floor>,
        limit: Duration,
    ) -> Result<Self> {
        Ok(Self {
            producer: cluster.producer()?,
            store: store.to_owned(),
            run: run.to_owned(),
            retry_after_ms: config.reorder_retry_after_secs.max(0).saturating_mul(1000),
            floor,
            requests: cluster.reader(WAREHOUSE_REORDER_REQUESTS, limit)?,
            levels: cluster.reader(INVENTORY_STOCK_LEVELS, limit)?,
            offers: cluster.reader(FLOOR_OFFERS, limit)?,
            dlq: cluster.reader(INVENTORY_DLQ, limit)?,
            made: Mutex::new(Vec::new()),
            products: Mutex::new(Vec::new()),
        })
    }

    /// Runs check `id` until `deadline`: the verdict and what it saw.
    pub async fn run(&self, id: &str, deadline: Instant) -> (Verdict, Vec<String>) {
        let mut log = Vec::new();
        let r = match id {
            "a" => self.coconut_oil(deadline, &mut log).await,
            "b" => self.dietary(deadline, &mut log).await,
            "c" => self.duplicates(deadline, &mut log).await,
            "d" => self.catalogue_race(deadline, &mut log).await,
            "e" => self.bad_record(deadline, &mut log).await,
            other => Err(anyhow!("no check {other:?}")),
        };
        match r {
            Ok(v) => (v, log),
            Err(e) => {
                log.push(format!("failed: {e:#}"));
                (Verdict::Fail, log)
            }
        }
    }

    fn sku(&self, name: &str) -> String {
        format!("CK{}-{name}", self.run)
    }

    fn event_id(&self) -> String {
        format!("ck-{}-{:016x}", self.run, rand::random::<u64>())
    }

    #[allow(clippy::too_many_arguments)]
    async fn product(
        &self,
        sku: &str,
        family: &str,
        brand: &str,
        oz: f64,
        price_cents: i64,
        allergen_free: &[&str],
    ) -> Result<()> {
        let p = Product {
            event_id: self.event_id(),
            occurred_at_ms: now_ms(),
            sku: sku.into(),
            name: format!("{brand} {}", family.replace('-', " ")),
            brand: brand.into(),
            family: format!("{family}-{}", self.run),
            size: Some(Size {
                value: oz,
                unit: "oz".into(),
            }),
            price_cents,
            allergen_free: allergen_free.iter().map(|s| (*s).to_owned()).collect(),
            reorder_point: 2,
            order_up_to: 12,
            location: "Aisle 7, shelf 3".into(),
            ..Default::default()
        };
        self.products
            .lock()
            .map_err(|_| anyhow!("poisoned"))?
            .push(sku.to_owned());
        self.producer.publish(CATALOG_PRODUCTS, sku, &p).await
    }

    async fn movement(&self, sku: &str, kind: MovementKind, units: i32, at: i64) -> Result<()> {
        let m = StockMovement {
            event_id: self.event_id(),
            occurred_at_ms: at,
            store_id: self.store.clone(),
            sku: sku.into(),
            kind: kind as i32,
            quantity: units,
            note: "shelfguard conformance kit".into(),
        };
        self.producer
            .publish(STORE_STOCK_MOVEMENTS, &self.store, &m)
            .await
    }

    fn sale(&self, sku: &str, units: i32, at: i64) -> Sale {
        Sale {
            event_id: self.event_id(),
            occurred_at_ms: at,
            store_id: self.store.clone(),
            basket_id: self.event_id(),
            lines: vec![SaleLine {
                sku: sku.into(),
                quantity: units,
                unit_price_cents: 100,
            }],
        }
    }

    async fn publish_sale(&self, s: &Sale) -> Result<()> {
        self.producer.publish(STORE_SALES, &self.store, s).await
    }

    async fn level(
        &self,
        deadline: Instant,
        what: &str,
        pred: impl Fn(&StockLevel) -> bool,
    ) -> Result<StockLevel> {
        self.levels
            .find_msg(deadline, |l: &StockLevel| &l.store_id, &self.store, pred)
            .await
            .with_context(|| format!("no stock level {what}"))
    }

    /// Counts each (SKU, units) and waits until inventory has applied every count (counts and
    /// sales travel on different topics: without this a sale could come first).
    async fn count_all(&self, deadline: Instant, stock: &[(&str, i32)], at: i64) -> Result<()> {
        for (sku, units) in stock {
            self.movement(sku, MovementKind::Count, *units, at).await?;
        }
        for (sku, units) in stock {
            let l = self
                .level(deadline, &format!("after the count of {sku}"), |l| {
                    l.sku == *sku && l.cause == Cause::Count as i32
                })
                .await?;
            if l.on_hand != *units {
                bail!(
                    "{sku} counted at {units}, stock level says on_hand {}",
                    l.on_hand
                );
            }
        }
        Ok(())
    }

    async fn request(&self, deadline: Instant, sku: &str) -> Result<ReorderRequest> {
        self.requests
            .find_msg(
                deadline,
                |r: &ReorderRequest| &r.store_id,
                &self.store,
                |r| r.sku == sku,
            )
            .await
            .with_context(|| format!("no reorder request for {sku}"))
    }

    async fn fail(&self, req: &ReorderRequest, at: i64) -> Result<()> {
        let o = ReorderOutcome {
            event_id: self.event_id(),
            occurred_at_ms: at,
            store_id: self.store.clone(),
            reorder_id: req.reorder_id.clone(),
            sku: req.sku.clone(),
            status: OutcomeStatus::Failed as i32,
            failure_reason: "supplier out of stock".into(),
            ..Default::default()
        };
        self.producer
            .publish(WAREHOUSE_REORDER_OUTCOMES, &self.store, &o)
            .await
    }

    /// The first offer event of the store for original `sku`.
    async fn offer_for(&self, deadline: Instant, sku: &str) -> Result<OfferEvent> {
        let e = self
            .offers
            .find_msg(
                deadline,
                |e: &OfferEvent| &e.store_id,
                &self.store,
                |e| e.sku == sku,
            )
            .await
            .with_context(|| format!("no offer event for {sku} on {FLOOR_OFFERS}"))?;
        if matches!(e.change, Some(Change::Issued(_))) {
            self.made
                .lock()
                .map_err(|_| anyhow!("poisoned"))?
                .push((e.offer_id.clone(), sku.to_owned()));
        }
        Ok(e)
    }

    /// a. The coconut-oil story, with the reorder back-off run on the store's event time: the
    /// store's events are dated so that each failure's retry falls due at the next one.
    async fn coconut_oil(&self, deadline: Instant, log: &mut Vec<String>) -> Result<Verdict> {
        let (small, big) = (self.sku("COCO-14"), self.sku("COCO-28"));
        self.product(&small, "coconut-oil", "Coco Gold", 14.0, 799, &[])
            .await?;
        self.product(&big, "coconut-oil", "Coco Gold", 28.0, 1399, &[])
            .await?;
        let step = self.retry_after_ms + 1000;
        let mut t = now_ms() - 2 * step - 30_000;
        self.count_all(deadline, &[(&small, 1), (&big, 8)], t)
            .await?;
        log.push(format!(
            "published {small} (14 oz, 7.99) and {big} (28 oz, 13.99), counted 1 and 8"
        ));
        let mut ids = Vec::new();
        let mut booked = None;
        for n in 1..=3 {
            let req = self
                .request(deadline, &small)
                .await
                .with_context(|| format!("reorder request {n} of 3"))?;
            t += 1;
            self.fail(&req, t).await?;
            ids.push(req.reorder_id.clone());
            // The failure and the recount travel on different topics, so inventory may read
            // them in either order: recount only once it has booked the failure (else the
            // recount would find the reorder still open and nothing would fall due).
            let l = self
                .level(
                    deadline,
                    &format!("of {small} with {n} failed reorders"),
                    |l| l.sku == small && l.failed_reorders_7d == n,
                )
                .await?;
            booked = Some(l);
            if n < 3 {
                // Timers fall due on the store's next event: a recount, one back-off later.
                t += step;
                self.movement(&big, MovementKind::Count, 8, t).await?;
            }
        }
        log.push(format!(
            "warehouse: reorder requests {} answered FAILED (supplier out of stock), each retry after {} s of event time",
            ids.join(", "),
            self.retry_after_ms / 1000
        ));
        let l = booked.context("three failures were booked")?;
        log.push(format!(
            "{INVENTORY_STOCK_LEVELS}: {small} on_hand {} failed_reorders_7d {}",
            l.on_hand, l.failed_reorders_7d
        ));
        t += 1000;
        self.publish_sale(&self.sale(&small, 1, t)).await?;
        log.push(format!("sold the last {small}"));
        let e = self.offer_for(deadline, &small).await?;
        log.push(format!("{FLOOR_OFFERS}: {}", describe(&e)));
        let Some(Change::Issued(i)) = &e.change else {
            bail!("expected an Issued offer for {small}");
        };
        let o = i.offer.clone().unwrap_or_default();
        let sub = o.substitute.clone().map(|s| s.sku).unwrap_or_default();
        if sub != big || o.gesture != Gesture::Free as i32 || o.gesture_value_cents != 1399 {
            bail!("expected {big} free (1399 cents)");
        }
        log.push(format!("reason: {}", o.reason));
        let Some(floor) = &self.floor else {
            log.push("floor-channel API not checked: --floor-url not given".into());
            return Ok(Verdict::Skip);
        };
        let card = floor
            .await_offer(&self.store, &e.offer_id, deadline, |_| true)
            .await?;
        if card["substitute"]["sku"] != sub.as_str() || card["gesture"] != "free" {
            bail!("the API shows the offer differently: {card}");
        }
        log.push(format!(
            "API GET /api/stores/{}/offers: {} status {} gesture {}",
            self.store, card["offer_id"], card["status"], card["gesture"]
        ));
        let (status, body) = floor
            .answer(
                &self.store,
                &e.offer_id,
                json!({"answer": "accept", "by": "conformance-kit"}),
            )
            .await?;
        if status != 202 {
            bail!("POST .../answer accept answered {status}: {body}");
        }
        log.push(format!(
            "API POST .../offers/{}/answer accept: {status}",
            e.offer_id
        ));
        let acc = self
            .offers
            .find_msg(
                deadline,
                |e: &OfferEvent| &e.store_id,
                &self.store,
                |x| x.offer_id == e.offer_id && matches!(x.change, Some(Change::Accepted(_))),
            )
            .await
            .context("no Accepted event")?;
        let by = match &acc.change {
            Some(Change::Accepted(a)) => a.by.clone(),
            _ => String::new(),
        };
        log.push(format!("{FLOOR_OFFERS}: Accepted by {by}"));
        let card = floor
            .await_offer(&self.store, &e.offer_id, deadline, |c| {
                c["status"] == "accepted"
            })
            .await?;
        log.push(format!(
            "API: status {} accepted_by {}",
            card["status"], card["accepted_by"]
        ));
        Ok(Verdict::Pass)
    }

    /// b. The original claims "peanut" free: the substitute must claim it too, even though a
    /// nearer size of the same brand without the claim would otherwise come first.
    async fn dietary(&self, deadline: Instant, log: &mut Vec<String>) -> Result<Verdict> {
        let (orig, near, good) = (
            self.sku("PB-14-PF"),
            self.sku("PB-20"),
            self.sku("PB-28-PF"),
        );
        self.product(&orig, "peanut-free-spread", "Sunny", 14.0, 599, &["peanut"])
            .await?;
        self.product(&near, "peanut-free-spread", "Sunny", 20.0, 799, &[])
            .await?;
        self.product(&good, "peanut-free-spread", "Sunny", 28.0, 999, &["peanut"])
            .await?;
        log.push(format!(
            "published {orig} (14 oz, allergen_free [peanut]), {near} (20 oz, no claim), {good} (28 oz, allergen_free [peanut]), counted 1, 8, 8"
        ));
        let t = now_ms();
        self.count_all(deadline, &[(&orig, 1), (&near, 8), (&good, 8)], t)
            .await?;
        let req = self.request(deadline, &orig).await?;
        self.fail(&req, t + 1).await?;
        self.level(deadline, &format!("of {orig} with the failure"), |l| {
            l.sku == orig && l.failed_reorders_7d >= 1
        })
        .await?;
        self.publish_sale(&self.sale(&orig, 1, t + 2)).await?;
        log.push(format!(
            "warehouse: {} answered FAILED; sold the last {orig}",
            req.reorder_id
        ));
        let e = self.offer_for(deadline, &orig).await?;
        log.push(format!("{FLOOR_OFFERS}: {}", describe(&e)));
        let Some(Change::Issued(i)) = &e.change else {
            bail!("expected an Issued offer with {good}");
        };
        let sub = i
            .offer
            .as_ref()
            .and_then(|o| o.substitute.as_ref())
            .map(|s| s.sku.clone())
            .unwrap_or_default();
        if sub == near {
            bail!("the substitute {near} breaks the original's peanut-free claim");
        }
        if sub != good {
            bail!("expected {good}, got {sub}");
        }
        Ok(Verdict::Pass)
    }

    /// c. A sale, its duplicate at once and a late copy after another sale: stock moves once.
    async fn duplicates(&self, deadline: Instant, log: &mut Vec<String>) -> Result<Verdict> {
        let sku = self.sku("DUP");
        self.product(&sku, "rice", "Grain", 32.0, 299, &[]).await?;
        let t = now_ms();
        self.count_all(deadline, &[(&sku, 10)], t).await?;
        let a = self.sale(&sku, 2, t + 1);
        let b = self.sale(&sku, 1, t + 2);
        let c = self.sale(&sku, 3, t + 3);
        for s in [&a, &a, &b, &a, &c] {
            self.publish_sale(s).await?;
        }
        log.push(format!(
            "counted {sku} at 10; published sales A (2), A again (same event_id), B (1), A again (late copy), C (3)"
        ));
        let mut seen = Vec::new();
        loop {
            let l = self
                .level(deadline, &format!("of {sku} after sale C (sold 3)"), |l| {
                    l.sku == sku && l.cause == Cause::Sale as i32
                })
                .await
                .with_context(|| format!("sale levels so far (sold, on_hand): {seen:?}"))?;
            seen.push((l.sold, l.on_hand));
            if l.sold == 3 {
                break;
            }
        }
        log.push(format!(
            "{INVENTORY_STOCK_LEVELS}: sale levels (sold, on_hand) {seen:?}"
        ));
        if seen != [(2, 8), (1, 7), (3, 4)] {
            bail!("expected [(2, 8), (1, 7), (3, 4)]: each sale once");
        }
        Ok(Verdict::Pass)
    }

    /// d. A new product's count and sale come before its catalogue record: held, then booked.
    async fn catalogue_race(&self, deadline: Instant, log: &mut Vec<String>) -> Result<Verdict> {
        let (anchor, new) = (self.sku("ANCHOR"), self.sku("NEW"));
        self.product(&anchor, "tea", "Leaf", 10.0, 450, &[]).await?;
        let t = now_ms();
        self.count_all(deadline, &[(&anchor, 20)], t).await?;
        self.movement(&new, MovementKind::Count, 12, t + 1).await?;
        self.publish_sale(&self.sale(&new, 2, t + 2)).await?;
        log.push(format!(
            "counted {new} at 12 and sold 2 before publishing its product"
        ));
        // Markers behind them on the same topics and partition: once inventory has applied
        // these, it has seen the two events for the unknown SKU.
        self.movement(&anchor, MovementKind::Count, 20, t + 3)
            .await?;
        let marker = self.sale(&anchor, 1, t + 4);
        self.publish_sale(&marker).await?;
        self.level(deadline, "of the marker sale", |l| {
            l.sku == anchor && l.cause == Cause::Sale as i32
        })
        .await?;
        if let Ok(l) = self.level(Instant::now(), "", |l| l.sku == new).await {
            bail!("{new} was booked before its product existed: {l:?}");
        }
        log.push(format!(
            "no stock level of {new} while it was not in the catalogue (held)"
        ));
        self.product(&new, "tea", "Leaf", 20.0, 799, &[]).await?;
        let l = self
            .level(deadline, &format!("of {new} with on_hand 10"), |l| {
                l.sku == new && l.on_hand == 10
            })
            .await?;
        log.push(format!(
            "published its product; {INVENTORY_STOCK_LEVELS}: {new} on_hand {} unaccounted {}",
            l.on_hand, l.unaccounted
        ));
        if l.unaccounted != 0 {
            bail!("expected unaccounted 0");
        }
        Ok(Verdict::Pass)
    }

    /// e. Undecodable bytes keyed by the test store: a dead letter, and the store goes on.
    async fn bad_record(&self, deadline: Instant, log: &mut Vec<String>) -> Result<Verdict> {
        let sku = self.sku("OK");
        self.product(&sku, "flour", "Mill", 16.0, 199, &[]).await?;
        self.count_all(deadline, &[(&sku, 5)], now_ms()).await?;
        let mut garbage = b"\xff\xfe\xfd not a Sale, conformance run ".to_vec();
        garbage.extend_from_slice(self.run.as_bytes());
        self.producer
            .publish_raw(STORE_SALES, &self.store, Some(&garbage))
            .await?;
        self.publish_sale(&self.sale(&sku, 1, now_ms())).await?;
        log.push(format!(
            "published {} garbage bytes to {STORE_SALES} (key {}), then a sale of 1 {sku}",
            garbage.len(),
            self.store
        ));
        let store = self.store.as_bytes();
        let m = self
            .dlq
            .find(
                deadline,
                |m| m.key() == Some(store),
                |m| {
                    (m.key() == Some(store) && m.payload() == Some(&garbage[..])).then(|| m.clone())
                },
            )
            .await
            .with_context(|| format!("no dead letter of the garbage on {INVENTORY_DLQ}"))?;
        let reason = header(&m, "dlq.reason");
        let source = header(&m, "dlq.source.topic");
        log.push(format!(
            "{INVENTORY_DLQ}: same key and bytes, dlq.reason {:?}, dlq.source.topic {source}",
            short(&reason, 60)
        ));
        if reason.is_empty() || !source.ends_with(STORE_SALES) {
            bail!("expected dlq.reason and dlq.source.topic {STORE_SALES}");
        }
        let l = self
            .level(deadline, &format!("of {sku} after the sale"), |l| {
                l.sku == sku && l.cause == Cause::Sale as i32
            })
            .await?;
        log.push(format!(
            "{INVENTORY_STOCK_LEVELS}: {sku} sold {} on_hand {}",
            l.sold, l.on_hand
        ));
        if l.on_hand != 4 {
            bail!("expected on_hand 4");
        }
        Ok(Verdict::Pass)
    }

    /// Declines the run's offers (giving the store's gesture budget back) and retires its
    /// products with tombstones. Returns one line saying what was done.
    pub async fn cleanup(&self, deadline: Instant) -> String {
        let made = self.made.lock().map(|m| m.clone()).unwrap_or_default();
        let products = self.products.lock().map(|p| p.clone()).unwrap_or_default();
        let mut problems = Vec::new();
        for (offer_id, sku) in &made {
            let r = StaffResponse {
                event_id: self.event_id(),
                occurred_at_ms: now_ms(),
                store_id: self.store.clone(),
                offer_id: offer_id.clone(),
                sku: sku.clone(),
                answer: Answer::Decline as i32,
                reason: "conformance kit test offer".into(),
                by: "conformance-kit".into(),
                channel: "till".into(),
                ..Default::default()
            };
            if let Err(e) = self
                .producer
                .publish(FLOOR_RESPONSES, &self.store, &r)
                .await
            {
                problems.push(format!("{e:#}"));
            }
        }
        for (offer_id, _) in &made {
            let ended = self
                .offers
                .find_msg(
                    deadline,
                    |e: &OfferEvent| &e.store_id,
                    &self.store,
                    |e| e.offer_id == *offer_id && matches!(e.change, Some(Change::Declined(_))),
                )
                .await;
            if ended.is_err() {
                problems.push(format!("no Declined event for {offer_id}"));
            }
        }
        for sku in &products {
            if let Err(e) = self.producer.publish_raw(CATALOG_PRODUCTS, sku, None).await {
                problems.push(format!("{e:#}"));
            }
        }
        let mut line = format!(
            "cleanup: declined {} offers, retired {} products (tombstones)",
            made.len(),
            products.len()
        );
        if !problems.is_empty() {
            line.push_str(&format!(" (not all done: {})", problems.join("; ")));
        }
        line
    }
}
