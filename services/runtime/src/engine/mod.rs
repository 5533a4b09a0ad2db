//! The consumer loop every service runs.
//!
//! At-least-once in, idempotent effects out. For each batch ([`Loop::batch`]):
//! 1. take a batch of records from the group consumer;
//! 2. restore the state of any partition seen for the first time from its changelog
//!    ([`restore`]);
//! 3. hand each record to [`crate::step::handle`] (pure): decode, check the key, apply the event
//!    to the keys it is about, visit the keys whose timer fell due; a record that fails in any
//!    way becomes a dead letter and leaves state as it was;
//! 4. publish the outputs and dead letters and wait for the broker's acknowledgement
//!    ([`crate::produce`]);
//! 5. publish the changed keys to the changelog and wait again;
//! 6. only then store the batch's offsets for the next commit.
//!
//! On every assignment and every second ([`Loop::tick`]) it also restores partitions that were
//! assigned but have not delivered a record yet, and recomputes readiness: connected to a broker, a member of the
//! group, every assigned partition's state restored. The librdkafka side is in [`context`].
//! Metrics ([`crate::metrics::Engine`]) and the W3C `traceparent` ([`crate::trace`]) of each
//! record are handled here too, so services get them without code of their own.
//!
//! A crash between any two steps replays the batch: keys whose changelog record was
//! written skip it, the others apply it again and, being deterministic, publish records
//! with the same event ids as before, which consumers de-duplicate.
pub mod context;
pub mod membership;
pub mod restore;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use futures::FutureExt as _;
use rdkafka::Message as _;
use rdkafka::consumer::{CommitMode, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers as _, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, Producer as _};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use self::context::{Ctx, Flags};
use self::membership::{Verdict, Watch};
pub use self::restore::MARKER_KEY;
use self::restore::Restorer;
use crate::config::KafkaArgs;
use crate::connection::{Link, STATISTICS_EVERY};
use crate::health::Health;
use crate::metrics::{self, Labels};
use crate::observe::{NoObserver, Observer};
use crate::processor::Processor;
use crate::produce::{Record, send_all};
use crate::state::Partitions;
use crate::step;
use crate::trace::{self, TraceContext};
use shelfguard_events::state::Held;

/// How often librdkafka reports statistics (broker connections, lag) and the loop re-checks
/// readiness and restores idle assigned partitions.
const TICK: Duration = Duration::from_secs(1);

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
    processor: P,
    health: Health,
    shutdown: CancellationToken,
    observer: O,
) -> Result<Stats> {
    let mut lp = Loop::new(args, processor, health, observer)?;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            m = lp.consumer.recv() => m.map(|m| m.detach()),
            // A new assignment: restore its partitions now, not on the next tick.
            _ = lp.flags.assigned.notified() => {
                lp.tick().await?;
                continue;
            }
            // The producer got past its start: ready now if all else is, not on the next tick.
            _ = lp.warmed.notified() => {
                lp.tick().await?;
                continue;
            }
            _ = tick.tick() => {
                lp.tick().await?;
                continue;
            }
        };
        match first {
            Ok(m) => lp.batch(m).await?,
            Err(e) => warn!(error = %e, "consumer error"),
        }
    }
    Ok(lp.finish())
}

/// One batch's records, received and not yet handled.
struct Batch {
    records: Vec<OwnedMessage>,
    /// When each record was received: the start of its processing time.
    received: Vec<Instant>,
}

/// What a batch will publish, and what it changed.
#[derive(Default)]
struct Pending {
    /// Outputs and dead letters, in order.
    out: Vec<Record>,
    /// Changed keys, per partition, for the changelog.
    dirty: HashMap<i32, BTreeSet<String>>,
    /// The last offset of each (topic, partition), stored once all of the above is acknowledged.
    positions: HashMap<(String, i32), i64>,
}

/// The consumer loop of one service: its clients, the state of its partitions, its counters.
struct Loop<'a, P: Processor, O> {
    args: &'a KafkaArgs,
    processor: P,
    observer: O,
    health: Health,
    name: &'static str,
    /// Catalogue base names of the inputs.
    inputs: Vec<&'static str>,
    producer: FutureProducer,
    /// The producer has asked for its producer id (see [`warm_up`]).
    producer_warm: Arc<AtomicBool>,
    /// Notified when `producer_warm` is set.
    warmed: Arc<tokio::sync::Notify>,
    /// Restores partitions from the changelog, with its own clients made once.
    restorer: Restorer,
    consumer: StreamConsumer<Ctx>,
    flags: Flags,
    /// Full names of the changelog and the dead-letter topic.
    changelog: String,
    dead_letter: String,
    parts: Partitions<P::State>,
    stats: Stats,
    crash_point: Option<CrashPoint>,
    /// Batches that published outputs (the crash points count these).
    output_batches: u64,
    /// Full names of the input topics (to subscribe again).
    topics: Vec<String>,
    /// Partitions of the group nobody consumes (see [`membership`]).
    watch: Watch,
    /// The latest verdict of the watch: stuck means not ready.
    stuck: bool,
    /// [`Processor::tables_version`] when held records were last retried.
    tables_version: u64,
}

impl<'a, P: Processor, O: Observer<P::State>> Loop<'a, P, O> {
    fn new(args: &'a KafkaArgs, processor: P, health: Health, observer: O) -> Result<Self> {
        let name = processor.name();
        let m = metrics::engine();
        // Series known from the start, at zero: Prometheus sees the first increment as one.
        let _ = m.processing.get_or_create(&metrics::service(name));
        let _ = m
            .produced
            .get_or_create(&metrics::service_topic(name, processor.dead_letter()));
        let inputs = processor.inputs();
        for t in &inputs {
            let _ = m.consumed.get_or_create(&metrics::service_topic(name, t));
            let _ = m.dead_letters.get_or_create(&dead_letter_labels(name, t));
        }
        let group = args.group_id.clone().unwrap_or_else(|| args.topic(name));
        let producer: FutureProducer = args.producer(name).create().context("creating producer")?;
        let warmed = Arc::new(tokio::sync::Notify::new());
        let producer_warm = warm_up(&producer, args.topic(processor.changelog()), warmed.clone());
        let restorer = Restorer::new(args, name, args.topic(processor.changelog()))?;
        let link = Link::default();
        let flags = Flags {
            connected: link.connected(),
            ..Flags::default()
        };
        let topics: Vec<String> = inputs.iter().map(|t| args.topic(t)).collect();
        let consumer: StreamConsumer<Ctx> = args
            .group_consumer(name, &group)
            .set(
                "statistics.interval.ms",
                STATISTICS_EVERY.as_millis().to_string(),
            )
            .create_with_context(Ctx {
                flags: flags.clone(),
                service: name,
                prefix: args.topic_prefix.clone(),
                inputs: topics.clone(),
                link,
            })
            .context("creating consumer")?;
        let topic_refs: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer.subscribe(&topic_refs).context("subscribing")?;
        info!(service = name, group, topics = ?topics, "consuming");
        let watch =
            Watch::new(args, name, &group, topics.clone()).context("creating group watch")?;
        let _ = m.unowned.get_or_create(&metrics::service(name));
        let _ = m.rejoins.get_or_create(&metrics::service(name));
        let _ = m.held.get_or_create(&metrics::service(name));
        let _ = m.given_up.get_or_create(&metrics::service(name));
        let lp = Self {
            topics,
            watch,
            stuck: false,
            tables_version: 0,
            args,
            name,
            inputs,
            producer,
            producer_warm,
            warmed,
            restorer,
            consumer,
            flags,
            changelog: args.topic(processor.changelog()),
            dead_letter: args.topic(processor.dead_letter()),
            processor,
            observer,
            health,
            parts: HashMap::new(),
            stats: Stats::default(),
            crash_point: CrashPoint::from_env(),
            output_batches: 0,
        };
        lp.set_ready(false);
        Ok(lp)
    }

    fn set_ready(&self, v: bool) {
        if v != self.health.is_ready() {
            info!(
                service = self.name,
                ready = v,
                since_start_ms = crate::telemetry::since_start().as_millis() as u64,
                "readiness changed"
            );
        }
        self.health.set_ready(v);
        metrics::engine()
            .ready
            .get_or_create(&metrics::service(self.name))
            .set(i64::from(v));
    }

    /// Connected, a member of the group that holds its share, every assigned partition
    /// restored, and the producer past its start.
    fn is_ready(&self) -> bool {
        !self.stuck
            && self.producer_warm.load(Ordering::Relaxed)
            && self.flags.connected.load(Ordering::Relaxed)
            && self.flags.joined.load(Ordering::Relaxed)
            && self.consumer.assignment().is_ok_and(|tpl| {
                tpl.elements()
                    .iter()
                    .all(|e| self.parts.contains_key(&e.partition()))
            })
    }

    /// Once a second: drop revoked partitions, restore assigned ones that have not delivered a
    /// record yet (so readiness does not wait for traffic on every partition), readiness.
    async fn tick(&mut self) -> Result<()> {
        self.drop_revoked();
        if self.flags.joined.load(Ordering::Relaxed) {
            self.restore_missing(None).await?;
        }
        self.release_held().await?;
        self.watch_group();
        self.set_ready(self.is_ready());
        Ok(())
    }

    /// Acts on what the group watch found: not ready while stuck, and rejoin.
    fn watch_group(&mut self) {
        let mine: BTreeSet<(String, i32)> = self
            .consumer
            .assignment()
            .map(|tpl| {
                tpl.elements()
                    .iter()
                    .map(|e| (e.topic().to_owned(), e.partition()))
                    .collect()
            })
            .unwrap_or_default();
        let Some(verdict) = self.watch.poll(Instant::now(), &mine) else {
            return;
        };
        let unowned = self.watch.unowned.map_or(-1, |n| n as i64);
        let m = metrics::engine();
        m.unowned
            .get_or_create(&metrics::service(self.name))
            .set(unowned);
        self.stuck = matches!(verdict, Verdict::Stuck { .. });
        if let Verdict::Stuck { rejoin } = verdict {
            warn!(
                service = self.name,
                unowned,
                held = mine.len(),
                rejoin,
                "input partitions with records waiting and no consumer for longer than the session timeout: not ready"
            );
            if rejoin {
                m.rejoins.get_or_create(&metrics::service(self.name)).inc();
                self.rejoin();
            }
        }
    }

    /// Leaves the group and joins it again (a fresh member id and a new assignment).
    fn rejoin(&mut self) {
        self.consumer.unsubscribe();
        let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        if let Err(e) = self.consumer.subscribe(&topics) {
            tracing::error!(error = %e, "subscribing again after leaving the group");
        }
    }

    /// Restores every assigned partition (and `also`, the partition of a record in hand) whose
    /// state is not in memory yet.
    async fn restore_missing(&mut self, also: Option<i32>) -> Result<()> {
        let mut missing: BTreeSet<i32> = self
            .consumer
            .assignment()
            .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
            .unwrap_or_default();
        missing.extend(also);
        missing.retain(|q| !self.parts.contains_key(q));
        if missing.is_empty() {
            return Ok(());
        }
        let missing: Vec<i32> = missing.into_iter().collect();
        let started = Instant::now();
        let mut keys = 0;
        for (q, restored) in self.restorer.restore_all::<P::State>(&missing).await? {
            keys += restored.slots.len();
            for (key, s) in restored.slots.states() {
                self.processor.restored(key, &s);
                self.observer.state(key, &s);
            }
            // Restored held records are retried once the partition is in.
            if !restored.held.is_empty() {
                self.tables_version = self.tables_version.wrapping_sub(1);
            }
            self.parts.insert(q, restored);
            self.stats.restores += 1;
        }
        info!(
            service = self.name,
            partitions = ?missing,
            keys,
            millis = started.elapsed().as_millis() as u64,
            "state restored"
        );
        Ok(())
    }

    fn drop_revoked(&mut self) {
        for p in self.flags.take_revoked() {
            if let Some(ps) = self.parts.remove(&p) {
                for key in ps.slots.keys() {
                    self.observer.forgotten(key);
                }
            }
        }
    }

    /// Takes `first` and whatever else is already waiting, up to `MAX_BATCH` records.
    fn gather(&mut self, first: OwnedMessage) -> Batch {
        let mut batch = Batch {
            records: vec![first],
            received: vec![Instant::now()],
        };
        while batch.records.len() < self.args.max_batch {
            match self.consumer.recv().now_or_never() {
                Some(Ok(m)) => {
                    batch.records.push(m.detach());
                    batch.received.push(Instant::now());
                }
                Some(Err(e)) => warn!(error = %e, "consumer error"),
                None => break,
            }
        }
        batch
    }

    /// Handles one batch: apply, publish and wait, changelog and wait, store offsets.
    async fn batch(&mut self, first: OwnedMessage) -> Result<()> {
        let batch = self.gather(first);
        self.drop_revoked();
        let started = Instant::now();
        let mut pending = Pending::default();
        for msg in &batch.records {
            self.record(msg, &mut pending).await?;
        }
        self.publish(pending).await?;
        self.release_held().await?;
        self.count_held();
        let histogram = metrics::engine()
            .processing
            .get_or_create(&metrics::service(self.name));
        for r in &batch.received {
            histogram.observe(r.elapsed().as_secs_f64());
        }
        debug!(
            service = self.name,
            records = batch.records.len(),
            micros = started.elapsed().as_micros() as u64,
            "batch done"
        );
        self.drop_revoked();
        self.watch_group();
        self.set_ready(self.is_ready());
        Ok(())
    }

    /// Handles one record of a batch: its effect on state, its outputs and dead letters.
    async fn record(&mut self, msg: &OwnedMessage, pending: &mut Pending) -> Result<()> {
        let (p, offset) = (msg.partition(), msg.offset());
        self.stats.consumed += 1;
        pending
            .positions
            .insert((msg.topic().to_owned(), p), offset);
        if !self.parts.contains_key(&p) {
            self.restore_missing(Some(p)).await?;
        }
        let Some(base) = self
            .inputs
            .iter()
            .copied()
            .find(|t| *t == self.args.base(msg.topic()))
        else {
            bail!("record from unexpected topic {}", msg.topic());
        };
        let m = metrics::engine();
        m.consumed
            .get_or_create(&metrics::service_topic(self.name, base))
            .inc();
        let trace = TraceContext::child_of(
            msg.headers()
                .and_then(|h| h.iter().find(|h| h.key == trace::HEADER))
                .and_then(|h| h.value),
        );
        let traceparent = trace.header();
        let span = tracing::info_span!(
            "record",
            service = self.name,
            topic = base,
            partition = p,
            offset,
            trace_id = %trace.trace_id,
            span_id = %trace.span_id,
            parent_id = trace.parent_id.as_deref().unwrap_or(""),
        );
        let _entered = span.enter();
        let Some(ps) = self.parts.get_mut(&p) else {
            bail!("partition {p} state missing")
        };
        let effect = step::handle(
            &mut self.processor,
            ps,
            step::Record {
                topic: base,
                offset,
                key: msg.key(),
                payload: msg.payload(),
            },
        );
        self.stats.redelivered += effect.redelivered;
        self.stats.duplicates += effect.duplicates;
        if effect.duplicates > 0 {
            debug!(event_id = effect.event_id, "duplicate event dropped");
        }
        let published = effect.outputs.len();
        self.queue_outputs(effect.outputs, &traceparent, pending);
        for reason in &effect.refusals {
            warn!(reason = %reason, "dead letter");
            self.stats.dead_letters += 1;
            m.dead_letters
                .get_or_create(&dead_letter_labels(self.name, base))
                .inc();
            let mut rec = crate::dlq::record(msg, self.name, &self.dead_letter, reason);
            rec.headers = rec.headers.map(|h| {
                h.insert(Header {
                    key: trace::HEADER,
                    value: Some(traceparent.as_str()),
                })
            });
            rec.base = self.processor.dead_letter();
            pending.out.push(rec);
        }
        for waiting in &effect.held {
            info!(event_id = effect.event_id, waiting = %waiting, "held_events: event held until what it waits for arrives");
        }
        self.given_up(p, effect.given_up, pending);
        pending.dirty.entry(p).or_default().extend(effect.changed);
        debug!(
            event_id = effect.event_id,
            outputs = published,
            "record applied"
        );
        Ok(())
    }

    /// Queues a visit's outputs for publishing, each with the `traceparent` of what caused them.
    fn queue_outputs(
        &mut self,
        outputs: Vec<(String, crate::Output)>,
        traceparent: &str,
        pending: &mut Pending,
    ) {
        for (_, o) in outputs {
            self.observer.output(&o);
            pending.out.push(Record {
                topic: self.args.topic(o.topic),
                base: o.topic,
                partition: None,
                key: Some(o.key.into_bytes()),
                payload: Some(o.payload),
                headers: Some(OwnedHeaders::new().insert(Header {
                    key: trace::HEADER,
                    value: Some(traceparent),
                })),
            });
        }
    }

    /// Dead letters of held records, with their own bytes and source.
    fn given_up(&mut self, p: i32, given_up: Vec<(Held, String)>, pending: &mut Pending) {
        let m = metrics::engine();
        for (h, reason) in given_up {
            warn!(reason = %reason, topic = h.topic, partition = p, offset = h.offset, "held event dead-lettered");
            self.stats.dead_letters += 1;
            m.given_up.get_or_create(&metrics::service(self.name)).inc();
            m.dead_letters
                .get_or_create(&dead_letter_labels(self.name, &h.topic))
                .inc();
            let source = crate::dlq::Source {
                topic: &self.args.topic(&h.topic),
                partition: p,
                offset: h.offset,
                key: Some(&h.key),
                payload: Some(&h.payload),
            };
            let mut rec = crate::dlq::of(&source, self.name, &self.dead_letter, &reason);
            rec.base = self.processor.dead_letter();
            pending.out.push(rec);
        }
    }

    /// Applies held records that no longer wait, when what they wait for may have arrived
    /// (the processor's tables changed): outputs, then changelog, as for a batch.
    async fn release_held(&mut self) -> Result<()> {
        let version = self.processor.tables_version();
        if version == self.tables_version {
            return Ok(());
        }
        self.tables_version = version;
        if self.parts.values().all(|ps| ps.held.is_empty()) {
            return Ok(());
        }
        let mut pending = Pending::default();
        let parts: Vec<i32> = self.parts.keys().copied().collect();
        let mut released = 0;
        for p in parts {
            let Some(ps) = self.parts.get_mut(&p) else {
                continue;
            };
            if ps.held.is_empty() {
                continue;
            }
            let effect = step::release_all(&mut self.processor, ps);
            released += effect.released;
            let trace = TraceContext::child_of(None);
            let traceparent = trace.header();
            self.queue_outputs(effect.outputs, &traceparent, &mut pending);
            self.given_up(p, effect.given_up, &mut pending);
            pending.dirty.entry(p).or_default().extend(effect.changed);
        }
        if released > 0 {
            info!(
                service = self.name,
                released, "held events applied: what they waited for arrived"
            );
        }
        self.publish(pending).await?;
        self.count_held();
        Ok(())
    }

    /// The held-events gauge.
    fn count_held(&self) {
        let n: usize = self.parts.values().map(|ps| ps.held_records()).sum();
        metrics::engine()
            .held
            .get_or_create(&metrics::service(self.name))
            .set(n as i64);
    }

    /// Publishes a batch's outputs, then its changelog, each acknowledged before the next
    /// step; only then stores the batch's offsets.
    async fn publish(&mut self, pending: Pending) -> Result<()> {
        let m = metrics::engine();
        self.stats.produced += pending.out.len() as u64;
        let had_outputs = !pending.out.is_empty();
        let mut produced: HashMap<&'static str, u64> = HashMap::new();
        for o in &pending.out {
            *produced.entry(o.base).or_default() += 1;
        }
        send_all(&self.producer, pending.out)
            .await
            .context("publishing outputs")?;
        for (topic, n) in produced {
            m.produced
                .get_or_create(&metrics::service_topic(self.name, topic))
                .inc_by(n);
        }
        if had_outputs {
            self.output_batches += 1;
            crash_if(
                self.crash_point,
                CrashPoint::AfterOutputs(self.output_batches),
            );
        }

        let mut changes = Vec::new();
        for (p, keys) in pending.dirty {
            let Some(ps) = self.parts.get(&p) else {
                continue;
            };
            for key in keys {
                if let Some(slot) = ps.slots.get(&key) {
                    self.observer.state(&key, &slot.state);
                    changes.push(Record {
                        topic: self.changelog.clone(),
                        base: self.processor.changelog(),
                        partition: Some(p),
                        key: Some(key.into_bytes()),
                        payload: Some(slot.encode()),
                        headers: None,
                    });
                }
            }
        }
        send_all(&self.producer, changes)
            .await
            .context("publishing changelog")?;
        if had_outputs {
            crash_if(
                self.crash_point,
                CrashPoint::AfterChangelog(self.output_batches),
            );
        }

        for ((topic, p), offset) in pending.positions {
            if let Err(e) = self.consumer.store_offset(&topic, p, offset) {
                // The partition was revoked meanwhile; its next owner replays it idempotently.
                debug!(topic, partition = p, error = %e, "offset not stored");
            }
        }
        Ok(())
    }

    /// Commits what was handled, synchronously, before the process exits.
    fn finish(self) -> Stats {
        info!(
            service = self.name,
            stats = ?self.stats,
            "shutting down: committing handled offsets"
        );
        self.set_ready(false);
        if let Err(e) = self.consumer.commit_consumer_state(CommitMode::Sync) {
            debug!(error = %e, "final commit (nothing to commit?)");
        }
        self.stats
    }
}

/// Gets the idempotent producer its producer id now rather than at its first send: librdkafka
/// asks for it on a metadata answer, but the first answer comes from the bootstrap connection,
/// before a broker connection it would ask on is up, and the next attempt is 500 ms later. A
/// second metadata request, once a broker is known, asks at once (first send 505 ms → about 55
/// ms after creation, against tansu). Returns a flag set when done (or failed: a failure only
/// costs the first send the 500 ms again), and notifies `warmed`.
fn warm_up(
    producer: &FutureProducer,
    topic: String,
    warmed: Arc<tokio::sync::Notify>,
) -> Arc<AtomicBool> {
    let done = Arc::new(AtomicBool::new(false));
    let (p, flag) = (producer.clone(), done.clone());
    tokio::task::spawn_blocking(move || {
        for _ in 0..2 {
            if let Err(e) = p
                .client()
                .fetch_metadata(Some(&topic), Duration::from_secs(10))
            {
                debug!(error = %e, "producer warm-up: metadata");
            }
        }
        flag.store(true, Ordering::Relaxed);
        warmed.notify_one();
    });
    done
}

fn dead_letter_labels(service: &str, source_topic: &str) -> Labels {
    vec![
        ("service", service.to_owned()),
        ("source_topic", source_topic.to_owned()),
    ]
}
