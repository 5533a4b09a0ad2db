//! Every replica reads all partitions of `floor.offers.v1` from the beginning (no consumer
//! group: any replica serves any store) into the live view, and fans changes out.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use shelfguard_events::topics;
use shelfguard_runtime::KafkaArgs;
use shelfguard_runtime::connection::{Link, STATISTICS_EVERY};
use std::sync::atomic::AtomicBool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::live::{LiveView, Update};
use crate::metrics::Metrics;
use crate::now_ms;

/// Changes kept for slow streams; a stream that falls further behind is closed and its console
/// reconnects (and gets a fresh snapshot).
const FANOUT_CAPACITY: usize = 1024;

/// The live view and the fan-out of its changes. A change is applied and sent under the view's
/// lock, so a stream that takes a snapshot and subscribes under the same lock misses nothing
/// and sees nothing twice.
pub struct Shared {
    /// The live offers of every store.
    view: Mutex<LiveView>,
    /// (store id, change) to every open stream; each stream keeps its own store's.
    tx: broadcast::Sender<Arc<(String, Update)>>,
}

impl Default for Shared {
    fn default() -> Self {
        Self::new()
    }
}

impl Shared {
    pub fn new() -> Self {
        Self {
            view: Mutex::default(),
            tx: broadcast::channel(FANOUT_CAPACITY).0,
        }
    }

    pub fn view(&self) -> MutexGuard<'_, LiveView> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live offers of `store` and a receiver of every later change, atomically.
    pub fn subscribe(
        &self,
        store: &str,
    ) -> (
        Vec<crate::live::Card>,
        broadcast::Receiver<Arc<(String, Update)>>,
    ) {
        let view = self.view();
        let rx = self.tx.subscribe();
        (view.snapshot(store, now_ms()), rx)
    }

    /// Applies a decoded event and publishes its change.
    pub fn apply(&self, e: &shelfguard_events::floor::OfferEvent, metrics: &Metrics) {
        let mut view = self.view();
        if let Some(change) = view.apply(e, now_ms()) {
            let _ = self.tx.send(Arc::new(change));
        }
        metrics.live_offers.set(view.len() as i64);
    }

    /// Removes offers whose expiry passed and publishes the removals.
    pub fn expire(&self, metrics: &Metrics) {
        let mut view = self.view();
        for change in view.expire(now_ms()) {
            let _ = self.tx.send(Arc::new(change));
        }
        metrics.live_offers.set(view.len() as i64);
    }
}

/// Loads the topic up to its high watermarks (returns when caught up), then follows it and
/// expires offers by time in the background until `shutdown`.
///
/// Returns the reader's connection flag: whether a broker is reachable (readiness).
pub async fn start(
    kafka: &KafkaArgs,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Arc<AtomicBool>> {
    let topic = kafka.topic(topics::FLOOR_OFFERS);
    let link = Link::default();
    let connected = link.connected();
    let consumer: StreamConsumer<Link> = kafka
        .reader(&format!("{}-live", crate::SERVICE))
        .set(
            "statistics.interval.ms",
            STATISTICS_EVERY.as_millis().to_string(),
        )
        .create_with_context(link)
        .context("creating the reader of floor.offers.v1")?;
    let (tpl, mut ends) = {
        let (c, t) = (&consumer, topic.clone());
        tokio::task::block_in_place(|| -> Result<_> {
            let md = c
                .fetch_metadata(Some(&t), Duration::from_secs(30))
                .with_context(|| format!("metadata of {t}"))?;
            let mut tpl = TopicPartitionList::new();
            let mut ends = HashMap::new();
            for p in md
                .topics()
                .iter()
                .flat_map(|x| x.partitions().iter().map(|p| p.id()))
            {
                tpl.add_partition_offset(&t, p, Offset::Beginning)?;
                let (low, high) = c.fetch_watermarks(&t, p, Duration::from_secs(30))?;
                if high > low {
                    ends.insert(p, high);
                }
            }
            if tpl.count() == 0 {
                anyhow::bail!("topic {t} has no partitions (does it exist?)");
            }
            Ok((tpl, ends))
        })?
    };
    consumer.assign(&tpl)?;
    while !ends.is_empty() {
        let m = tokio::select! {
            _ = shutdown.cancelled() => return Ok(connected),
            m = tokio::time::timeout(Duration::from_secs(120), consumer.recv()) => m
                .with_context(|| format!("loading {topic}: no progress in 120 s"))??,
        };
        handle(&shared, &metrics, &m);
        if ends
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            ends.remove(&m.partition());
        }
    }
    shared.expire(&metrics);
    info!(topic, live = shared.view().len(), "live offers loaded");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => shared.expire(&metrics),
                m = consumer.recv() => match m {
                    Ok(m) => handle(&shared, &metrics, &m),
                    Err(e) => warn!(topic, error = %e, "offer reader error"),
                },
            }
        }
    });
    Ok(connected)
}

/// Applies one record; an undecodable one is skipped here (the webhook path, which reads each
/// record on exactly one replica, dead-letters it).
fn handle(shared: &Shared, metrics: &Metrics, m: &rdkafka::message::BorrowedMessage<'_>) {
    match m.payload().map(shelfguard_events::validate::offer_event) {
        Some(Ok(e)) => {
            shared.apply(&e, metrics);
            metrics.offer_events.inc();
        }
        Some(Err(reason)) => {
            metrics.undecodable.inc();
            warn!(
                partition = m.partition(),
                offset = m.offset(),
                reason,
                "offer record skipped (dead-lettered by the webhook path)"
            );
        }
        None => warn!(
            partition = m.partition(),
            offset = m.offset(),
            "empty offer record skipped"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::tests::issued;
    use shelfguard_events::floor::{Withdrawn, offer_event::Change};

    #[test]
    fn a_stream_gets_the_snapshot_then_every_later_change_once() {
        let (shared, metrics) = (Shared::new(), Metrics::default());
        let far = now_ms() + 3_600_000;
        shared.apply(&issued("S1", "o1", far), &metrics);
        shared.apply(&issued("S2", "o2", far), &metrics);
        let (snapshot, mut rx) = shared.subscribe("S1");
        assert_eq!(
            snapshot
                .iter()
                .map(|c| c.offer_id.as_str())
                .collect::<Vec<_>>(),
            ["o1"]
        );
        assert!(
            rx.try_recv().is_err(),
            "the snapshot's offers are not sent again"
        );
        shared.apply(&issued("S1", "o3", far), &metrics);
        let mut w = crate::live::tests::event(
            "S1",
            "o1",
            "withdrawn",
            Change::Withdrawn(Withdrawn {
                reason: "back".into(),
            }),
        );
        shared.apply(&w, &metrics);
        w.event_id = "o1:withdrawn".into();
        shared.apply(&w, &metrics); // duplicate: nothing
        let got: Vec<(String, &'static str)> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| {
                let kind = match &c.1 {
                    Update::Upsert { .. } => "upsert",
                    Update::Remove { .. } => "remove",
                };
                (c.0.clone(), kind)
            })
            .collect();
        assert_eq!(
            got,
            [("S1".to_string(), "upsert"), ("S1".to_string(), "remove")]
        );
        assert_eq!(metrics.live_offers.get(), 2);
    }
}
