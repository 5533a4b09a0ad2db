//! Webhook delivery. A consumer group (`<prefix>floor-channel-webhooks`) on `floor.offers.v1` and
//! `floor.checks.v1`, so exactly one replica handles each record; its offset is stored (and later committed) only after
//! every webhook of the record's store answered 2xx or was dead-lettered. This task is separate
//! from the console path: a slow webhook never delays a console.
//!
//! Each store with webhooks has its own worker, which delivers that store's events in order; a
//! failing webhook of one store (retrying for up to the whole back-off schedule) does not hold
//! up the others. Offsets advance per partition only over records that are all done
//! ([`Pending`]).
//!
//! Records of either topic that do not decode are dead-lettered here, once (every replica's live
//! view skips them).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use shelfguard_events::topics;
use shelfguard_runtime::{KafkaArgs, dlq};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::metrics::Metrics;
use crate::webhook::{self, FloorEvent, Target, Targets};
use crate::{Delivery, SERVICE, now_ms};

/// Records read but not yet done; reading pauses beyond this (back-pressure).
const MAX_IN_FLIGHT: usize = 10_000;

/// A partition of one of the topics read: (topic, partition).
pub type Part = (String, i32);

/// Offsets read and not yet done, per topic partition: the offset to store is the one after the
/// longest done prefix.
#[derive(Debug, Default)]
pub struct Pending {
    /// (topic, partition) → offset → done.
    parts: HashMap<Part, BTreeMap<i64, bool>>,
}

impl Pending {
    pub fn start(&mut self, partition: Part, offset: i64) {
        self.parts
            .entry(partition)
            .or_default()
            .entry(offset)
            .or_insert(false);
    }

    /// Marks a record done; returns the next offset to store when the done prefix grew.
    pub fn finish(&mut self, partition: &Part, offset: i64) -> Option<i64> {
        let offsets = self.parts.get_mut(partition)?;
        *offsets.get_mut(&offset)? = true;
        let mut next = None;
        while let Some(entry) = offsets.first_entry() {
            if !*entry.get() {
                break;
            }
            next = Some(*entry.key() + 1);
            entry.remove();
        }
        next
    }

    pub fn len(&self) -> usize {
        self.parts.values().map(BTreeMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What a store's worker reports.
enum Done {
    Record(Part, i64),
    Failed(anyhow::Error),
}

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
    let checks = kafka.topic(topics::FLOOR_CHECKS);
    let dead_letters = kafka.topic(topics::FLOOR_CHANNEL_DLQ);
    let consumer: StreamConsumer = kafka
        .group_consumer(&format!("{SERVICE}-webhooks"), &group)
        .create()
        .context("creating the webhook consumer")?;
    consumer.subscribe(&[&topic, &checks])?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(delivery.timeout_ms))
        .user_agent(concat!(
            "shelfguard-floor-channel/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
        .context("creating the HTTP client")?;
    let ctx = Arc::new(Worker {
        client,
        delivery,
        producer,
        dead_letters,
        metrics,
        shutdown: shutdown.clone(),
    });
    let targets = Arc::new(targets);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Done>();
    let mut workers: HashMap<String, mpsc::UnboundedSender<(OwnedMessage, FloorEvent)>> =
        HashMap::new();
    let mut pending = Pending::default();
    info!(group, "webhook delivery up");
    loop {
        let m = tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(done) = done_rx.recv() => {
                match done {
                    Done::Record(p, o) => {
                        if let Some(next) = pending.finish(&p, o) {
                            store_offset(&consumer, &p, next);
                        }
                    }
                    Done::Failed(e) => return Err(e),
                }
                continue;
            }
            m = consumer.recv(), if pending.len() < MAX_IN_FLIGHT => m,
        };
        let m = match m {
            Ok(m) => m.detach(),
            Err(e) => {
                warn!(error = %e, "webhook consumer error");
                continue;
            }
        };
        let (p, o) = ((m.topic().to_owned(), m.partition()), m.offset());
        pending.start(p.clone(), o);
        let is_check = m.topic() == checks;
        let event = match m.payload() {
            None if is_check => Err("empty record (no value) on floor.checks.v1".to_owned()),
            None => Err("empty record (no value) on floor.offers.v1".to_owned()),
            Some(b) if is_check => {
                shelfguard_events::validate::check_event(b).map(FloorEvent::Check)
            }
            Some(b) => shelfguard_events::validate::offer_event(b).map(FloorEvent::Offer),
        };
        match event {
            Err(reason) => ctx.dead_letter(&m, &reason).await?,
            Ok(event) if targets.of(event.store_id()).next().is_some() => {
                let store = event.store_id().to_owned();
                let worker = workers.entry(store.clone()).or_insert_with(|| {
                    let (tx, rx) = mpsc::unbounded_channel();
                    tokio::spawn(
                        ctx.clone()
                            .work(targets.clone(), store, rx, done_tx.clone()),
                    );
                    tx
                });
                if worker.send((m, event)).is_err() {
                    break; // The worker stopped: shutting down.
                }
                continue;
            }
            Ok(_) => {}
        }
        if let Some(next) = pending.finish(&p, o) {
            store_offset(&consumer, &p, next);
        }
    }
    // Commit what is done; the rest is delivered again by the next owner (at least once).
    let _ = consumer.commit_consumer_state(CommitMode::Sync);
    Ok(())
}

fn store_offset(consumer: &StreamConsumer, (topic, partition): &Part, next: i64) {
    let mut tpl = TopicPartitionList::new();
    let stored = tpl
        .add_partition_offset(topic, *partition, Offset::Offset(next))
        .and_then(|()| consumer.store_offsets(&tpl));
    if let Err(e) = stored {
        warn!(partition, error = %e, "offset not stored (partition revoked?)");
    }
}

/// What every store's worker shares.
struct Worker {
    /// One HTTP client (connection pools) for all webhooks.
    client: reqwest::Client,
    /// Retry settings.
    delivery: Delivery,
    /// Publishes dead letters.
    producer: FutureProducer,
    /// `floor-channel.dead-letter.v1` with the prefix.
    dead_letters: String,
    /// Delivery counters.
    metrics: Arc<Metrics>,
    /// Stops retries at once.
    shutdown: CancellationToken,
}

impl Worker {
    /// Delivers one store's events in order to each of its webhooks.
    async fn work(
        self: Arc<Self>,
        targets: Arc<Targets>,
        store: String,
        mut rx: mpsc::UnboundedReceiver<(OwnedMessage, FloorEvent)>,
        done: mpsc::UnboundedSender<Done>,
    ) {
        while let Some((m, event)) = rx.recv().await {
            for (n, target) in targets.of(&store) {
                let Some(body) = event.render(target.format) else {
                    continue;
                };
                match deliver(
                    &self.client,
                    target,
                    &event,
                    &body,
                    self.delivery,
                    &self.metrics,
                    &self.shutdown,
                )
                .await
                {
                    Outcome::Delivered => {
                        self.metrics.webhooks_delivered.inc();
                    }
                    Outcome::GaveUp(why) => {
                        self.metrics.webhooks_dead_lettered.inc();
                        let reason = format!(
                            "webhook {n} of store {} ({:?}, {} event) gave up: {why}",
                            target.store,
                            target.format,
                            event.kind()
                        );
                        if let Err(e) = self.dead_letter(&m, &reason).await {
                            let _ = done.send(Done::Failed(e));
                            return;
                        }
                    }
                    // Not reported done: the next owner of the partition delivers it again.
                    Outcome::ShuttingDown => return,
                }
            }
            let _ = done.send(Done::Record(
                (m.topic().to_owned(), m.partition()),
                m.offset(),
            ));
        }
    }

    async fn dead_letter(&self, m: &OwnedMessage, reason: &str) -> Result<()> {
        warn!(
            partition = m.partition(),
            offset = m.offset(),
            reason,
            "dead letter"
        );
        let topic = &self.dead_letters;
        let headers = dlq::headers(SERVICE, reason, m.topic(), m.partition(), m.offset());
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic).headers(headers);
        if let Some(k) = m.key() {
            record = record.key(k);
        }
        if let Some(p) = m.payload() {
            record = record.payload(p);
        }
        self.producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| anyhow::anyhow!("dead letter to {topic}: {e}"))?;
        Ok(())
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
    event: &FloorEvent,
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
            .header(webhook::EVENT_ID_HEADER, event.event_id())
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
            event_id = event.event_id(),
            attempt,
            max = d.max_attempts,
            error = last,
            "webhook try failed"
        );
    }
    Outcome::GaveUp(format!("{} tries, last: {last}", d.max_attempts))
}

#[cfg(test)]
mod tests {
    use super::{Part, Pending};

    fn part(p: i32) -> Part {
        ("floor.offers.v1".to_owned(), p)
    }

    #[test]
    fn offsets_advance_only_over_a_done_prefix() {
        let mut p = Pending::default();
        for o in [10, 11, 12] {
            p.start(part(0), o);
        }
        p.start(part(1), 5);
        assert_eq!(p.finish(&part(0), 11), None, "10 is still in flight");
        assert_eq!(p.finish(&part(1), 5), Some(6), "partitions are independent");
        assert_eq!(p.finish(&part(0), 10), Some(12), "10 and 11 are done");
        assert_eq!(p.len(), 1);
        assert_eq!(p.finish(&part(0), 12), Some(13));
        assert!(p.is_empty());
        assert_eq!(
            p.finish(&part(0), 12),
            None,
            "a second report changes nothing"
        );
        assert_eq!(p.finish(&part(7), 1), None, "unknown partition");
        // The same partition number of the other topic is another partition.
        p.start(("floor.checks.v1".to_owned(), 0), 12);
        assert_eq!(p.finish(&part(0), 12), None, "offers 0 is not checks 0");
        assert_eq!(p.finish(&("floor.checks.v1".to_owned(), 0), 12), Some(13));
    }
}
