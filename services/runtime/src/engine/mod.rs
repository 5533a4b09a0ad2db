//! The consumer loop every service runs.
//!
//! At-least-once in, idempotent effects out:
//! 1. take a batch of records from the group consumer;
//! 2. restore the state of any partition seen for the first time from its changelog;
//! 3. decode each record (failures become dead letters) and apply it to each key it
//!    touches, skipping keys that already hold it (see [`crate::state::Slot::admit`]);
//! 4. publish the outputs and dead letters and wait for the broker's acknowledgement;
//! 5. publish the changed keys to the changelog and wait again;
//! 6. only then store the batch's offsets for the next commit.
//!
//! Every second (and after each batch) it also restores partitions that were assigned but have
//! not delivered a record yet, and recomputes readiness: connected to a broker (librdkafka
//! statistics), a member of the group, and every assigned partition's state restored.
//! Metrics ([`crate::metrics::Engine`]) and the W3C `traceparent` ([`crate::trace`]) of each
//! record are handled here too, so services get them without code of their own.
//!
//! A crash between any two steps replays the batch: keys whose changelog record was
//! written skip it, the others apply it again and, being deterministic, publish records
//! with the same event ids as before, which consumers de-duplicate.
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, anyhow, bail};
use futures::FutureExt as _;
use rdkafka::consumer::{
    BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer,
};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers as _, Message as _, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::statistics::Statistics;
use rdkafka::util::Timeout;
use rdkafka::{ClientContext, Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::KafkaArgs;
use crate::health::Health;
use crate::metrics::{self, Labels};
use crate::observe::{NoObserver, Observer};
use crate::processor::Processor;
use crate::state::{Admission, PartitionState, Partitions, Slot};
use crate::trace::{self, TraceContext};

/// Key of the marker record that ends a state restore.
pub const MARKER_KEY: &str = "\u{0}restore-marker";
/// How long a produce may wait in the local queue before the batch fails.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// How often librdkafka reports statistics (broker connections, lag) and the loop re-checks
/// readiness and restores idle assigned partitions.
const TICK: Duration = Duration::from_secs(1);

/// Consumer context: notes revoked partitions so the loop drops their state, and turns
/// librdkafka's statistics into the connection flag and the lag gauges.
struct Ctx {
    /// Partitions revoked since the loop last looked; their state is dropped.
    revoked: Arc<Mutex<Vec<i32>>>,
    /// A broker connection is up (latest statistics) and not all brokers are down since.
    connected: Arc<AtomicBool>,
    /// The consumer holds an assignment (possibly empty) from the group.
    joined: Arc<AtomicBool>,
    /// Service name, the `service` label of the lag gauge.
    service: &'static str,
    /// Topic prefix, stripped from topic names in metric labels.
    prefix: String,
    /// Full names of the input topics: the lag gauge covers only these.
    inputs: Vec<String>,
}

impl Ctx {
    fn lag_labels(&self, topic: &str, partition: i32) -> Labels {
        vec![
            ("service", self.service.to_owned()),
            (
                "topic",
                topic.strip_prefix(&self.prefix).unwrap_or(topic).to_owned(),
            ),
            ("partition", partition.to_string()),
        ]
    }
}

impl ClientContext for Ctx {
    fn stats(&self, statistics: Statistics) {
        let up = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        self.connected.store(up, Ordering::Relaxed);
        let lag = &metrics::engine().lag;
        for (name, topic) in &statistics.topics {
            if !self.inputs.contains(name) {
                continue;
            }
            for (p, part) in &topic.partitions {
                if *p < 0 {
                    continue;
                }
                let labels = self.lag_labels(name, *p);
                // Handled up to the stored offset; before the first store, the committed one;
                // before any commit, everything the broker holds (we read from the beginning).
                let from = [part.stored_offset, part.committed_offset, part.lo_offset]
                    .into_iter()
                    .find(|o| *o >= 0);
                match (part.desired, from) {
                    (true, Some(from)) if part.hi_offset >= 0 => {
                        lag.get_or_create(&labels)
                            .set((part.hi_offset - from).max(0));
                    }
                    (true, _) => {}
                    (false, _) => {
                        lag.remove(&labels);
                    }
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if error.rdkafka_error_code() == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.connected.store(false, Ordering::Relaxed);
        }
        tracing::error!(error = %error, reason, "librdkafka");
    }
}

impl ConsumerContext for Ctx {
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = rebalance {
            // Everything stored was fully handled (outputs and changelog acknowledged): commit it
            // now so the next owner starts where we stopped.
            if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
                debug!(error = %e, "commit on revoke (nothing stored yet?)");
            }
            self.joined.store(false, Ordering::Relaxed);
            let mut r = self.revoked.lock().unwrap_or_else(|p| p.into_inner());
            r.extend(tpl.elements().iter().map(|e| e.partition()));
            info!(partitions = ?tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect::<Vec<_>>(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.joined.store(true, Ordering::Relaxed);
            info!(partitions = ?tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect::<Vec<_>>(), "partitions assigned");
        }
    }
}

/// One record to publish, already addressed.
pub(crate) struct Send {
    pub(crate) topic: String,
    /// Catalogue base name of `topic`, for metric labels.
    pub(crate) base: &'static str,
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) headers: Option<OwnedHeaders>,
}

/// Publishes records in order and waits until the broker acknowledged all of them.
pub(crate) async fn send_all(producer: &FutureProducer, records: Vec<Send>) -> Result<()> {
    let futures = records.iter().map(|r| {
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(p) = &r.payload {
            rec = rec.payload(p.as_slice());
        }
        if let Some(p) = r.partition {
            rec = rec.partition(p);
        }
        if let Some(h) = &r.headers {
            rec = rec.headers(h.clone());
        }
        producer.send(rec, Timeout::After(SEND_TIMEOUT))
    });
    for (res, r) in futures::future::join_all(futures)
        .await
        .into_iter()
        .zip(&records)
    {
        res.map_err(|(e, _)| anyhow!("publishing to {} failed: {e}", r.topic))?;
    }
    Ok(())
}

/// A fault-injection hook for tests of the delivery guarantees: with
/// `SHELFGUARD_CRASH_POINT=after-outputs:N` (or `after-changelog:N`) the process aborts right
/// after the Nth batch that published outputs had them acknowledged (or its changelog too),
/// before its offsets are stored: the worst moments to die. Unset in production.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CrashPoint {
    AfterOutputs(u64),
    AfterChangelog(u64),
}

impl CrashPoint {
    fn from_env() -> Option<Self> {
        let v = std::env::var("SHELFGUARD_CRASH_POINT").ok()?;
        let (what, n) = v.split_once(':')?;
        let n = n.parse().ok()?;
        match what {
            "after-outputs" => Some(Self::AfterOutputs(n)),
            "after-changelog" => Some(Self::AfterChangelog(n)),
            _ => None,
        }
    }
}

fn crash_if(point: Option<CrashPoint>, now: CrashPoint) {
    if point == Some(now) {
        tracing::error!(?now, "SHELFGUARD_CRASH_POINT reached: aborting");
        std::process::abort();
    }
}

/// Counters of one run, for logs and tests.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub consumed: u64,
    pub produced: u64,
    pub dead_letters: u64,
    pub redelivered: u64,
    pub duplicates: u64,
    pub restores: u64,
}

/// Runs the processor until `shutdown` is cancelled or a fatal error (the broker refused
/// our outputs): then the process should exit and be restarted; nothing is lost, the
/// uncommitted batch is replayed.
pub async fn run<P: Processor>(
    args: &KafkaArgs,
    processor: P,
    health: Health,
    shutdown: CancellationToken,
) -> Result<Stats> {
    run_observed(args, processor, health, shutdown, NoObserver).await
}

/// [`run`], telling `observer` about outputs and state changes (a service's domain metrics).
pub async fn run_observed<P: Processor, O: Observer<P::State>>(
    args: &KafkaArgs,
    mut processor: P,
    health: Health,
    shutdown: CancellationToken,
    mut observer: O,
) -> Result<Stats> {
    let name = processor.name();
    let m = metrics::engine();
    let ready_gauge = m.ready.get_or_create(&metrics::service(name)).clone();
    let set_ready = |v: bool| {
        health.set_ready(v);
        ready_gauge.set(i64::from(v));
    };
    set_ready(false);
    // Series known from the start, at zero: Prometheus sees the first increment as one.
    let _ = m.processing.get_or_create(&metrics::service(name));
    let _ = m
        .produced
        .get_or_create(&metrics::service_topic(name, processor.dead_letter()));
    for t in processor.inputs() {
        let _ = m.consumed.get_or_create(&metrics::service_topic(name, t));
        let _ = m.dead_letters.get_or_create(&vec![
            ("service", name.to_owned()),
            ("source_topic", t.to_owned()),
        ]);
    }
    let group = args.group_id.clone().unwrap_or_else(|| args.topic(name));
    let producer: FutureProducer = args.producer(name).create().context("creating producer")?;
    let revoked = Arc::new(Mutex::new(Vec::new()));
    let connected = Arc::new(AtomicBool::new(false));
    let joined = Arc::new(AtomicBool::new(false));
    let inputs = processor.inputs();
    let topics: Vec<String> = inputs.iter().map(|t| args.topic(t)).collect();
    let consumer: StreamConsumer<Ctx> = args
        .group_consumer(name, &group)
        .set("statistics.interval.ms", TICK.as_millis().to_string())
        .create_with_context(Ctx {
            revoked: revoked.clone(),
            connected: connected.clone(),
            joined: joined.clone(),
            service: name,
            prefix: args.topic_prefix.clone(),
            inputs: topics.clone(),
        })
        .context("creating consumer")?;
    let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topic_refs).context("subscribing")?;
    info!(service = name, group, topics = ?topics, "consuming");

    let changelog = args.topic(processor.changelog());
    let dead_letter = args.topic(processor.dead_letter());
    let dead_letter_base = processor.dead_letter();
    let mut parts: Partitions<P::State> = HashMap::new();
    let mut stats = Stats::default();
    let crash_point = CrashPoint::from_env();
    let mut output_batches = 0u64;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let is_ready = |consumer: &StreamConsumer<Ctx>, parts: &Partitions<P::State>| {
        connected.load(Ordering::Relaxed)
            && joined.load(Ordering::Relaxed)
            && consumer.assignment().is_ok_and(|tpl| {
                tpl.elements()
                    .iter()
                    .all(|e| parts.contains_key(&e.partition()))
            })
    };

    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            m = consumer.recv() => m,
            _ = tick.tick() => {
                // Restore assigned partitions that have not delivered a record yet, so that
                // readiness does not wait for traffic on every partition.
                drop_revoked(&revoked, &mut parts, &mut observer);
                if joined.load(Ordering::Relaxed) {
                    restore_missing(args, name, &producer, &changelog, &consumer, None, &mut parts, &mut processor, &mut observer, &mut stats).await?;
                }
                set_ready(is_ready(&consumer, &parts));
                continue;
            }
        };
        let mut batch: Vec<OwnedMessage> = Vec::new();
        // When each record was received: the start of its processing time.
        let mut received: Vec<Instant> = Vec::new();
        match first {
            Ok(m) => batch.push(m.detach()),
            Err(e) => {
                warn!(error = %e, "consumer error");
                continue;
            }
        }
        received.push(Instant::now());
        while batch.len() < args.max_batch {
            match consumer.recv().now_or_never() {
                Some(Ok(m)) => {
                    batch.push(m.detach());
                    received.push(Instant::now());
                }
                Some(Err(e)) => warn!(error = %e, "consumer error"),
                None => break,
            }
        }
        drop_revoked(&revoked, &mut parts, &mut observer);

        let started = Instant::now();
        let mut out = Vec::new();
        let mut dirty: HashMap<i32, BTreeSet<String>> = HashMap::new();
        let mut positions: HashMap<(String, i32), i64> = HashMap::new();
        for msg in &batch {
            let p = msg.partition();
            let offset = msg.offset();
            stats.consumed += 1;
            positions.insert((msg.topic().to_owned(), p), offset);
            if !parts.contains_key(&p) {
                restore_missing(
                    args,
                    name,
                    &producer,
                    &changelog,
                    &consumer,
                    Some(p),
                    &mut parts,
                    &mut processor,
                    &mut observer,
                    &mut stats,
                )
                .await?;
            }
            let Some(base) = inputs
                .iter()
                .copied()
                .find(|t| *t == args.base(msg.topic()))
            else {
                bail!("record from unexpected topic {}", msg.topic());
            };
            m.consumed
                .get_or_create(&metrics::service_topic(name, base))
                .inc();
            let trace = TraceContext::child_of(
                msg.headers()
                    .and_then(|h| h.iter().find(|h| h.key == trace::HEADER))
                    .and_then(|h| h.value),
            );
            let traceparent = trace.header();
            let span = tracing::info_span!(
                "record",
                service = name,
                topic = base,
                partition = p,
                offset,
                trace_id = %trace.trace_id,
                span_id = %trace.span_id,
                parent_id = trace.parent_id.as_deref().unwrap_or(""),
            );
            let _entered = span.enter();
            let trace_headers = || {
                OwnedHeaders::new().insert(Header {
                    key: trace::HEADER,
                    value: Some(traceparent.as_str()),
                })
            };
            let dead = |reason: &str, out: &mut Vec<Send>, stats: &mut Stats| {
                stats.dead_letters += 1;
                m.dead_letters
                    .get_or_create(&vec![
                        ("service", name.to_owned()),
                        ("source_topic", base.to_owned()),
                    ])
                    .inc();
                let mut rec = crate::dlq::record(msg, name, &dead_letter, reason);
                rec.headers = rec.headers.map(|h| {
                    h.insert(Header {
                        key: trace::HEADER,
                        value: Some(traceparent.as_str()),
                    })
                });
                rec.base = dead_letter_base;
                out.push(rec);
            };
            let event = match msg.payload() {
                None => Err(crate::Rejected("empty record (no value)".into())),
                Some(bytes) => processor.decode(base, bytes),
            };
            let event = match event {
                Ok(e) => e,
                Err(rejected) => {
                    warn!(reason = %rejected.0, "dead letter");
                    dead(&rejected.0, &mut out, &mut stats);
                    continue;
                }
            };
            let event_id = processor.event_id(&event).to_owned();
            let Some(ps) = parts.get_mut(&p) else {
                bail!("partition {p} state missing")
            };
            let mut published = 0usize;
            for key in processor.keys(&event) {
                let mut slot = ps.slots.remove(&key).unwrap_or_default();
                match slot.admit(base, offset, &event_id) {
                    Admission::Apply => {
                        match processor.apply(&key, &mut slot.state, &event, ps) {
                            Ok(outputs) => {
                                published += outputs.len();
                                out.extend(outputs.into_iter().map(|o| {
                                    observer.output(&o);
                                    Send {
                                        topic: args.topic(o.topic),
                                        base: o.topic,
                                        partition: None,
                                        key: Some(o.key.into_bytes()),
                                        payload: Some(o.payload),
                                        headers: Some(trace_headers()),
                                    }
                                }))
                            }
                            Err(rejected) => {
                                warn!(key, reason = %rejected.0, "dead letter");
                                dead(&rejected.0, &mut out, &mut stats);
                            }
                        }
                        slot.mark(base, offset, &event_id);
                        dirty.entry(p).or_default().insert(key.clone());
                    }
                    Admission::Redelivered => stats.redelivered += 1,
                    Admission::Duplicate => {
                        debug!(event_id, key, "duplicate event dropped");
                        stats.duplicates += 1;
                        slot.mark(base, offset, &event_id);
                        dirty.entry(p).or_default().insert(key.clone());
                    }
                }
                ps.slots.insert(key, slot);
            }
            debug!(event_id, outputs = published, "record applied");
        }

        stats.produced += out.len() as u64;
        let had_outputs = !out.is_empty();
        let mut produced: HashMap<&'static str, u64> = HashMap::new();
        for o in &out {
            *produced.entry(o.base).or_default() += 1;
        }
        send_all(&producer, out)
            .await
            .context("publishing outputs")?;
        for (topic, n) in produced {
            m.produced
                .get_or_create(&metrics::service_topic(name, topic))
                .inc_by(n);
        }
        if had_outputs {
            output_batches += 1;
            crash_if(crash_point, CrashPoint::AfterOutputs(output_batches));
        }

        let mut changes = Vec::new();
        for (p, keys) in dirty {
            let Some(ps) = parts.get(&p) else { continue };
            for key in keys {
                if let Some(slot) = ps.slots.get(&key) {
                    observer.state(&key, &slot.state);
                    changes.push(Send {
                        topic: changelog.clone(),
                        base: processor.changelog(),
                        partition: Some(p),
                        key: Some(key.into_bytes()),
                        payload: Some(slot.encode()),
                        headers: None,
                    });
                }
            }
        }
        send_all(&producer, changes)
            .await
            .context("publishing changelog")?;
        if had_outputs {
            crash_if(crash_point, CrashPoint::AfterChangelog(output_batches));
        }

        for ((topic, p), offset) in positions {
            if let Err(e) = consumer.store_offset(&topic, p, offset) {
                // The partition was revoked meanwhile; its next owner replays it idempotently.
                debug!(topic, partition = p, error = %e, "offset not stored");
            }
        }
        let histogram = m.processing.get_or_create(&metrics::service(name));
        for r in &received {
            histogram.observe(r.elapsed().as_secs_f64());
        }
        debug!(
            service = name,
            records = batch.len(),
            micros = started.elapsed().as_micros() as u64,
            "batch done"
        );
        drop_revoked(&revoked, &mut parts, &mut observer);
        set_ready(is_ready(&consumer, &parts));
    }

    info!(
        service = name,
        ?stats,
        "shutting down: committing handled offsets"
    );
    set_ready(false);
    // Synchronous: the offsets of every batch handled so far are on the broker before we exit.
    if let Err(e) = consumer.commit_consumer_state(CommitMode::Sync) {
        debug!(error = %e, "final commit (nothing to commit?)");
    }
    Ok(stats)
}

/// Restores every assigned partition (and `also`, the partition of a record in hand) whose
/// state is not in memory yet, all at once: each restore is a round trip or two, and a start or
/// a rebalance brings many.
#[allow(clippy::too_many_arguments)]
async fn restore_missing<P: Processor, O: Observer<P::State>>(
    args: &KafkaArgs,
    name: &str,
    producer: &FutureProducer,
    changelog: &str,
    consumer: &StreamConsumer<Ctx>,
    also: Option<i32>,
    parts: &mut Partitions<P::State>,
    processor: &mut P,
    observer: &mut O,
    stats: &mut Stats,
) -> Result<()> {
    let mut missing: BTreeSet<i32> = consumer
        .assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default();
    missing.extend(also);
    missing.retain(|q| !parts.contains_key(q));
    if missing.is_empty() {
        return Ok(());
    }
    let restores = missing
        .iter()
        .map(|q| restore::<P::State>(args, name, producer, changelog, *q));
    for (q, restored) in missing
        .iter()
        .zip(futures::future::try_join_all(restores).await?)
    {
        for (key, s) in &restored.slots {
            processor.restored(key, &s.state);
            observer.state(key, &s.state);
        }
        parts.insert(*q, restored);
        stats.restores += 1;
    }
    Ok(())
}

fn drop_revoked<S>(
    revoked: &Mutex<Vec<i32>>,
    parts: &mut Partitions<S>,
    observer: &mut impl Observer<S>,
) {
    let mut r = revoked.lock().unwrap_or_else(|p| p.into_inner());
    for p in r.drain(..) {
        if let Some(ps) = parts.remove(&p) {
            for key in ps.slots.keys() {
                observer.forgotten(key);
            }
        }
    }
}

/// Reads one changelog partition to its end. The end is found by writing a marker with a
/// fresh nonce and reading until it comes back, which does not depend on watermarks.
async fn restore<S: prost::Message + Default>(
    args: &KafkaArgs,
    service: &str,
    producer: &FutureProducer,
    changelog: &str,
    partition: i32,
) -> Result<PartitionState<S>> {
    let started = Instant::now();
    let nonce = format!("{:016x}", rand::random::<u64>());
    send_all(
        producer,
        vec![Send {
            topic: changelog.to_owned(),
            base: "",
            partition: Some(partition),
            key: Some(MARKER_KEY.as_bytes().to_vec()),
            payload: Some(nonce.clone().into_bytes()),
            headers: None,
        }],
    )
    .await
    .context("writing restore marker")?;
    let reader: StreamConsumer = args
        .reader(&format!("{service}-restore"))
        .create()
        .context("creating restore reader")?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(changelog, partition, Offset::Beginning)?;
    reader.assign(&tpl)?;
    let mut state = PartitionState::default();
    let mut records = 0u64;
    loop {
        let m = tokio::time::timeout(Duration::from_secs(120), reader.recv())
            .await
            .with_context(|| {
                format!("restoring {changelog}[{partition}]: marker not seen in 120 s")
            })?
            .context("reading changelog")?;
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        if key == MARKER_KEY {
            if m.payload() == Some(nonce.as_bytes()) {
                break;
            }
            continue;
        }
        records += 1;
        match m.payload() {
            None => {
                state.slots.remove(&key);
            }
            Some(bytes) => match Slot::<S>::decode(bytes) {
                Ok(slot) => {
                    state.slots.insert(key, slot);
                }
                Err(e) => {
                    warn!(changelog, partition, key, error = %e, "unreadable changelog record skipped")
                }
            },
        }
    }
    info!(
        service,
        changelog,
        partition,
        records,
        keys = state.slots.len(),
        millis = started.elapsed().as_millis() as u64,
        "state restored"
    );
    Ok(state)
}
