//! Webhook delivery. A consumer group (`<prefix>floor-channel-webhooks`) on `floor.offers.v1`, so
//! exactly one replica handles each record; its offset is stored (and later committed) only after
//! every webhook of the record's store answered 2xx or was dead-lettered. This task is separate
//! from the console path: a slow webhook never delays a console.
//!
//! Records that do not decode are dead-lettered here, once (every replica's live view skips them).
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Message as _};
use rdkafka::producer::{FutureProducer, FutureRecord};
use shelfguard_events::floor::OfferEvent;
use shelfguard_events::topics;
use shelfguard_runtime::{KafkaArgs, dlq};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::webhook::{self, Target, Targets};
use crate::{Delivery, SERVICE, now_ms};

/// Runs until `shutdown`; an error (a dead letter that cannot be published) stops the service.
pub async fn run(
    kafka: KafkaArgs,
    targets: Targets,
    delivery: Delivery,
    producer: FutureProducer,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<()> {
    let group = format!(
        "{}-webhooks",
        kafka
            .group_id
            .clone()
            .unwrap_or_else(|| kafka.topic(SERVICE))
    );
    let topic = kafka.topic(topics::FLOOR_OFFERS);
    let dead_letters = kafka.topic(topics::FLOOR_CHANNEL_DLQ);
    let consumer: StreamConsumer = kafka
        .group_consumer(&format!("{SERVICE}-webhooks"), &group)
        .create()
        .context("creating the webhook consumer")?;
    consumer.subscribe(&[&topic])?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(delivery.timeout_ms))
        .user_agent(concat!(
            "shelfguard-floor-channel/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .context("creating the HTTP client")?;
    info!(group, "webhook delivery up");
    loop {
        let m = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            m = consumer.recv() => m,
        };
        let m = match m {
            Ok(m) => m,
            Err(e) => {
                warn!(topic, error = %e, "webhook consumer error");
                continue;
            }
        };
        let failures = match m.payload().map(shelfguard_events::validate::offer_event) {
            None => vec!["empty record (no value) on floor.offers.v1".to_owned()],
            Some(Err(reason)) => vec![reason],
            Some(Ok(event)) => {
                let mut failures = Vec::new();
                for (n, target) in targets.of(&event.store_id) {
                    let Some(body) = webhook::render(&event, target.format) else {
                        continue;
                    };
                    match deliver(
                        &client, target, &event, &body, delivery, &metrics, &shutdown,
                    )
                    .await
                    {
                        Outcome::Delivered => {
                            metrics.webhooks_delivered.inc();
                        }
                        Outcome::GaveUp(why) => {
                            metrics.webhooks_dead_lettered.inc();
                            failures.push(format!(
                                "webhook {n} of store {} ({:?}) gave up: {why}",
                                target.store, target.format
                            ))
                        }
                        // Not stored: the next owner of the partition delivers it again.
                        Outcome::ShuttingDown => return Ok(()),
                    }
                }
                failures
            }
        };
        for reason in failures {
            dead_letter(&producer, &dead_letters, &m, &reason).await?;
        }
        if let Err(e) = consumer.store_offset_from_message(&m) {
            warn!(error = %e, "offset not stored (partition revoked?)");
        }
    }
}

enum Outcome {
    Delivered,
    GaveUp(String),
    ShuttingDown,
}

/// POSTs `body` to `target` until it answers 2xx, at most `max_attempts` times.
async fn deliver(
    client: &reqwest::Client,
    target: &Target,
    event: &OfferEvent,
    body: &[u8],
    d: Delivery,
    metrics: &Metrics,
    shutdown: &CancellationToken,
) -> Outcome {
    let mut last = String::new();
    for attempt in 1..=d.max_attempts {
        if attempt > 1 {
            metrics.webhook_retries.inc();
            let wait = webhook::backoff(
                Duration::from_millis(d.backoff_ms),
                Duration::from_millis(d.backoff_max_ms),
                attempt,
            );
            tokio::select! {
                _ = shutdown.cancelled() => return Outcome::ShuttingDown,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        let ts = now_ms();
        let sent = client
            .post(&target.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(webhook::TIMESTAMP_HEADER, ts.to_string())
            .header(
                webhook::SIGNATURE_HEADER,
                webhook::sign(&target.secret, ts, body),
            )
            .header(webhook::EVENT_ID_HEADER, &event.event_id)
            .body(body.to_vec());
        let result = tokio::select! {
            _ = shutdown.cancelled() => return Outcome::ShuttingDown,
            r = sent.send() => r,
        };
        // Errors are logged without the URL (webhook URLs are secrets).
        match result {
            Ok(r) if r.status().is_success() => return Outcome::Delivered,
            Ok(r) => {
                last = format!("HTTP {}", r.status().as_u16());
                if !webhook::retryable(r.status().as_u16()) {
                    return Outcome::GaveUp(format!(
                        "{last} on try {attempt} (not retried: a client error)"
                    ));
                }
            }
            Err(e) => last = e.without_url().to_string(),
        }
        warn!(
            store = target.store,
            event_id = event.event_id,
            attempt,
            max = d.max_attempts,
            error = last,
            "webhook try failed"
        );
    }
    Outcome::GaveUp(format!("{} tries, last: {last}", d.max_attempts))
}

async fn dead_letter(
    producer: &FutureProducer,
    topic: &str,
    m: &BorrowedMessage<'_>,
    reason: &str,
) -> Result<()> {
    warn!(
        partition = m.partition(),
        offset = m.offset(),
        reason,
        "dead letter"
    );
    let headers = dlq::headers(SERVICE, reason, m.topic(), m.partition(), m.offset());
    let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
    if let Some(k) = m.key() {
        record = record.key(k);
    }
    if let Some(p) = m.payload() {
        record = record.payload(p);
    }
    producer
        .send(record, Duration::from_secs(30))
        .await
        .map_err(|(e, _)| anyhow::anyhow!("dead letter to {topic}: {e}"))?;
    Ok(())
}
