//! Every replica reads all partitions of `floor.offers.v1` and `floor.checks.v1` from the
//! beginning (no consumer group: any replica serves any store) into the live view, and fans
//! changes out.
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::{Offset, TopicPartitionList};
use shelfguard_events::floor::{OfferEvent, ShelfCheckEvent};
use shelfguard_events::topics;
use shelfguard_runtime::KafkaArgs;
use shelfguard_runtime::connection::{Link, STATISTICS_EVERY};
use std::sync::atomic::AtomicBool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::checks::{CheckCard, CheckUpdate, LiveChecks};
use crate::live::{Card, LiveView, Update};
use crate::metrics::Metrics;
use crate::now_ms;

/// Changes kept for slow streams; a stream that falls further behind is closed and its console
/// reconnects (and gets a fresh snapshot).
const FANOUT_CAPACITY: usize = 1024;

/// The live offers and the live shelf checks of every store.
#[derive(Debug, Default)]
pub struct Live {
    pub offers: LiveView,
    pub checks: LiveChecks,
}

/// A change pushed to the streams of one store: of an offer (`event: change`) or of a shelf
/// check (`event: check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Push {
    Offer(Update),
    Check(CheckUpdate),
}

/// What a stream starts with: the store's live offers and live checks.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub offers: Vec<Card>,
    pub checks: Vec<CheckCard>,
}

/// The live view and the fan-out of its changes. A change is applied and sent under the view's
/// lock, so a stream that takes a snapshot and subscribes under the same lock misses nothing
/// and sees nothing twice.
pub struct Shared {
    /// The live offers and checks of every store.
    view: Mutex<Live>,
    /// (store id, change) to every open stream; each stream keeps its own store's.
    tx: broadcast::Sender<Arc<(String, Push)>>,
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

    pub fn view(&self) -> MutexGuard<'_, Live> {
        self.view.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The live offers and checks of `store` and a receiver of every later change, atomically.
    pub fn subscribe(&self, store: &str) -> (Snapshot, broadcast::Receiver<Arc<(String, Push)>>) {
        let view = self.view();
        let rx = self.tx.subscribe();
        let now = now_ms();
        let snapshot = Snapshot {
            offers: view.offers.snapshot(store, now),
            checks: view.checks.snapshot(store, now),
        };
        (snapshot, rx)
    }

    /// Applies a decoded offer event and publishes its change.
    pub fn apply(&self, e: &OfferEvent, metrics: &Metrics) {
        let mut view = self.view();
        if let Some((store, change)) = view.offers.apply(e, now_ms()) {
            let _ = self.tx.send(Arc::new((store, Push::Offer(change))));
        }
        metrics.live_offers.set(view.offers.len() as i64);
    }

    /// Applies a decoded shelf-check event and publishes its change.
    pub fn apply_check(&self, e: &ShelfCheckEvent, metrics: &Metrics) {
        let mut view = self.view();
        if let Some((store, change)) = view.checks.apply(e, now_ms()) {
            let _ = self.tx.send(Arc::new((store, Push::Check(change))));
        }
        metrics.live_checks.set(view.checks.len() as i64);
    }

    /// Removes offers and checks whose expiry passed and publishes the removals.
    pub fn expire(&self, metrics: &Metrics) {
        let mut view = self.view();
        let now = now_ms();
        for (store, change) in view.offers.expire(now) {
            let _ = self.tx.send(Arc::new((store, Push::Offer(change))));
        }
        for (store, change) in view.checks.expire(now) {
            let _ = self.tx.send(Arc::new((store, Push::Check(change))));
        }
        metrics.live_offers.set(view.offers.len() as i64);
        metrics.live_checks.set(view.checks.len() as i64);
    }
}

/// Loads both topics up to their high watermarks (returns when caught up), then follows them
/// and expires offers and checks by time in the background until `shutdown`.
///
/// Returns the reader's connection flag: whether a broker is reachable (readiness).
pub async fn start(
    kafka: &KafkaArgs,
    shared: Arc<Shared>,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> Result<Arc<AtomicBool>> {
    let offers = kafka.topic(topics::FLOOR_OFFERS);
    let checks = kafka.topic(topics::FLOOR_CHECKS);
    let link = Link::default();
    let connected = link.connected();
    let consumer: StreamConsumer<Link> = kafka
        .reader(&format!("{}-live", crate::SERVICE))
        .set(
            "statistics.interval.ms",
            STATISTICS_EVERY.as_millis().to_string(),
        )
        .create_with_context(link)
        .context("creating the reader of floor.offers.v1 and floor.checks.v1")?;
    let (tpl, mut ends) = {
        let (c, topics) = (&consumer, [offers.clone(), checks.clone()]);
        tokio::task::block_in_place(|| -> Result<_> {
            let mut tpl = TopicPartitionList::new();
            let mut ends = HashMap::new();
            for t in &topics {
                let md = c
                    .fetch_metadata(Some(t), Duration::from_secs(30))
                    .with_context(|| format!("metadata of {t}"))?;
                let before = tpl.count();
                for p in md
                    .topics()
                    .iter()
                    .flat_map(|x| x.partitions().iter().map(|p| p.id()))
                {
                    tpl.add_partition_offset(t, p, Offset::Beginning)?;
                    let (low, high) = c.fetch_watermarks(t, p, Duration::from_secs(30))?;
                    if high > low {
                        ends.insert((t.clone(), p), high);
                    }
                }
                if tpl.count() == before {
                    anyhow::bail!("topic {t} has no partitions (does it exist?)");
                }
            }
            Ok((tpl, ends))
        })?
    };
    consumer.assign(&tpl)?;
    let kinds = Kinds { offers, checks };
    while !ends.is_empty() {
        let m = tokio::select! {
            _ = shutdown.cancelled() => return Ok(connected),
            m = tokio::time::timeout(Duration::from_secs(120), consumer.recv()) => m
                .with_context(|| format!("loading {} and {}: no progress in 120 s", kinds.offers, kinds.checks))??,
        };
        handle(&shared, &metrics, &kinds, &m);
        let key = (m.topic().to_owned(), m.partition());
        if ends.get(&key).is_some_and(|end| m.offset() + 1 >= *end) {
            ends.remove(&key);
        }
    }
    shared.expire(&metrics);
    {
        let view = shared.view();
        info!(
            offers = view.offers.len(),
            checks = view.checks.len(),
            "live offers and shelf checks loaded"
        );
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tick.tick() => shared.expire(&metrics),
                m = consumer.recv() => match m {
                    Ok(m) => handle(&shared, &metrics, &kinds, &m),
                    Err(e) => warn!(error = %e, "offer and check reader error"),
                },
            }
        }
    });
    Ok(connected)
}

/// The two topics read, with their prefix.
struct Kinds {
    offers: String,
    checks: String,
}

/// Applies one record; an undecodable one is skipped here (the webhook path, which reads each
/// record on exactly one replica, dead-letters it).
fn handle(
    shared: &Shared,
    metrics: &Metrics,
    kinds: &Kinds,
    m: &rdkafka::message::BorrowedMessage<'_>,
) {
    let decoded = match m.payload() {
        None => Err("empty record".to_owned()),
        Some(p) if m.topic() == kinds.checks => {
            shelfguard_events::validate::check_event(p).map(|e| {
                shared.apply_check(&e, metrics);
                metrics.check_events.inc();
            })
        }
        Some(p) => shelfguard_events::validate::offer_event(p).map(|e| {
            shared.apply(&e, metrics);
            metrics.offer_events.inc();
        }),
    };
    if let Err(reason) = decoded {
        metrics.undecodable.inc();
        warn!(
            topic = m.topic(),
            partition = m.partition(),
            offset = m.offset(),
            reason,
            "record skipped (dead-lettered by the webhook path)"
        );
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
                .offers
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
                    Push::Offer(Update::Upsert { .. }) => "upsert",
                    Push::Offer(Update::Remove { .. }) => "remove",
                    Push::Check(_) => "check",
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

    #[test]
    fn checks_are_in_the_snapshot_and_their_changes_are_pushed_as_their_own_kind() {
        use crate::checks::tests::{check_event, requested};
        use shelfguard_events::floor::{CheckAnswered, shelf_check_event};
        let (shared, metrics) = (Shared::new(), Metrics::default());
        let far = now_ms() + 3_600_000;
        shared.apply(&issued("S1", "o1", far), &metrics);
        shared.apply_check(&requested("S1", "c1", far), &metrics);
        shared.apply_check(&requested("S2", "c2", far), &metrics);
        let (snapshot, mut rx) = shared.subscribe("S1");
        assert_eq!(snapshot.offers.len(), 1);
        let ids: Vec<&str> = snapshot
            .checks
            .iter()
            .map(|c| c.check_id.as_str())
            .collect();
        assert_eq!(ids, ["c1"], "only the store's own checks");
        assert_eq!(metrics.live_checks.get(), 2);
        let answered = check_event(
            "S1",
            "c1",
            "answered",
            shelf_check_event::Change::Answered(CheckAnswered {
                finding: 1,
                by: "ana".into(),
                counted: None,
            }),
        );
        shared.apply_check(&answered, &metrics);
        let c = rx.try_recv().expect("the removal is pushed");
        assert_eq!(c.0, "S1");
        assert!(
            matches!(&c.1, Push::Check(CheckUpdate::Remove { check_id, .. }) if check_id == "c1"),
            "{c:?}"
        );
        assert!(rx.try_recv().is_err());
        assert_eq!(metrics.live_checks.get(), 1);
        assert_eq!(metrics.live_offers.get(), 1, "offers are untouched");
    }
}
