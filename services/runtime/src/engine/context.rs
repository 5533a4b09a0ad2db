//! The librdkafka context of the group consumer: what the client tells the loop.
//!
//! - revoked partitions, so the loop drops their state;
//! - whether a broker connection is up ([`crate::connection::Link`]);
//! - whether the consumer holds an assignment from the group;
//! - the lag gauges, from statistics;
//! - librdkafka's errors, logged without flooding ([`crate::connection::Quiet`]).
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::statistics::Statistics;
use tracing::{debug, info};

use crate::connection::Link;
use crate::metrics::{self, Labels};

/// Flags shared between the context (librdkafka's threads) and the loop.
#[derive(Clone, Default)]
pub struct Flags {
    /// Partitions revoked since the loop last looked; their state is dropped.
    pub revoked: Arc<Mutex<Vec<i32>>>,
    /// A broker connection is up (see [`Link`]).
    pub connected: Arc<AtomicBool>,
    /// The consumer holds an assignment (possibly empty) from the group.
    pub joined: Arc<AtomicBool>,
    /// Notified on every assignment, so the loop restores the new partitions at once rather
    /// than on its next tick.
    pub assigned: Arc<tokio::sync::Notify>,
}

impl Flags {
    pub fn take_revoked(&self) -> Vec<i32> {
        std::mem::take(&mut *self.revoked.lock().unwrap_or_else(|p| p.into_inner()))
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
    /// The broker connection (its flag is `flags.connected`).
    pub link: Link,
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
        self.link.on_stats(&statistics);
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
        self.link.on_error(&error, reason);
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
            // The coordinator just answered: connected, without waiting up to a second for the
            // first statistics (an error or the next statistics say otherwise).
            self.flags.connected.store(true, Ordering::Relaxed);
            self.flags.assigned.notify_one();
            info!(partitions = ?tpl.elements().iter().map(|e| (e.topic().to_owned(), e.partition())).collect::<Vec<_>>(), "partitions assigned");
        }
    }
}
