//! The librdkafka context of the group consumer: what the client tells the loop.
//!
//! - revoked partitions, so the loop drops their state;
//! - whether a broker connection is up (statistics and errors);
//! - whether the consumer holds an assignment from the group;
//! - the lag gauges, from statistics;
//! - librdkafka's errors, logged without flooding: the first of each kind at once, then at most
//!   one line per kind every [`REPEAT_EVERY`] with how many were left out.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;
use tracing::{debug, info};

use crate::metrics::{self, Labels};

/// How often the same kind of librdkafka error is logged again while it repeats.
pub const REPEAT_EVERY: Duration = Duration::from_secs(30);

/// Flags shared between the context (librdkafka's threads) and the loop.
#[derive(Clone, Default)]
pub struct Flags {
    /// Partitions revoked since the loop last looked; their state is dropped.
    pub revoked: Arc<Mutex<Vec<i32>>>,
    /// A broker connection is up (latest statistics) and not all brokers are down since.
    pub connected: Arc<AtomicBool>,
    /// The consumer holds an assignment (possibly empty) from the group.
    pub joined: Arc<AtomicBool>,
}

impl Flags {
    pub fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Logs a repeating message at most once per [`REPEAT_EVERY`] per kind.
#[derive(Default)]
pub struct Quiet {
    /// Per kind: when it was last logged and how many were left out since.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Quiet {
    /// `Some(left out since the last line)` when this kind should be logged now.
    pub fn admit(&self, kind: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match seen.get_mut(kind) {
            Some((at, skipped)) if now.duration_since(*at) < REPEAT_EVERY => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                *at = now;
                Some(std::mem::take(skipped))
            }
            None => {
                seen.insert(kind.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

/// Consumer context of the engine.
pub struct Ctx {
    pub flags: Flags,
    /// Service name, the `service` label of the lag gauge.
    pub service: &'static str,
    /// Topic prefix, stripped from topic names in metric labels.
    pub prefix: String,
    /// Full names of the input topics: the lag gauge covers only these.
    pub inputs: Vec<String>,
    pub quiet: Quiet,
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
        self.flags.connected.store(up, Ordering::Relaxed);
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
        let code = error.rdkafka_error_code();
        if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.flags.connected.store(false, Ordering::Relaxed);
        }
        let kind = format!("{code:?}");
        if let Some(skipped) = self.quiet.admit(&kind) {
            tracing::error!(error = %error, reason, repeated_since_last_line = skipped, "librdkafka");
        }
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
            self.flags.joined.store(false, Ordering::Relaxed);
            let mut r = self.flags.revoked.lock().unwrap_or_else(|p| p.into_inner());
            r.extend(tpl.elements().iter().map(|e| e.partition()));
            info!(partitions = ?tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect::<Vec<_>>(), "partitions revoked");
        }
    }

    fn post_rebalance(&self, _consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(tpl) = rebalance {
            self.flags.joined.store(true, Ordering::Relaxed);
            info!(partitions = ?tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect::<Vec<_>>(), "partitions assigned");
        }
    }
}
