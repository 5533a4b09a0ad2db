//! Rebuilding partitions' state from the service's compacted changelog.
//!
//! The end of a changelog partition is found by writing a marker with a fresh nonce and
//! reading until it comes back, which does not depend on watermarks (tansu's can fall short).
//!
//! The clients are made once per process ([`Restorer::new`]) and reused for every restore: a
//! new librdkafka reader waits for metadata and backs off before its first fetch (about 0.5 s
//! against tansu), so the reader learns the changelog's leaders while the consumer joins its
//! group, and every partition of an assignment is read by that one reader at once.
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::config::KafkaArgs;
use crate::produce::{Record, send_all};
use crate::state::{PartitionState, Slot};

/// Key of the marker record that ends a state restore.
pub const MARKER_KEY: &str = "\u{0}restore-marker";
/// Longest a restore waits for its markers to come back.
const MARKER_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest the reader's first metadata request may take.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Restores partitions of one service's changelog, with clients made once.
pub struct Restorer {
    service: &'static str,
    /// Full name of the changelog topic.
    changelog: String,
    /// Writes restore markers only: not idempotent (a duplicate marker is harmless), so it is
    /// ready at once, while an idempotent producer still waits for its producer id.
    producer: FutureProducer,
    /// The one reader of the changelog; assigned only while a restore runs.
    reader: Option<StreamConsumer>,
    /// The reader while it learns the changelog's leaders (started at [`Restorer::new`]).
    learning: Option<JoinHandle<Result<StreamConsumer>>>,
}

impl Restorer {
    /// Makes the clients and starts learning the changelog's metadata in the background.
    pub fn new(args: &KafkaArgs, service: &'static str, changelog: String) -> Result<Self> {
        let producer: FutureProducer = args
            .client(&format!("{service}-restore-marker"))
            .set("acks", "all")
            .set("linger.ms", "0")
            .create()
            .context("creating restore marker producer")?;
        let reader: StreamConsumer = args
            .reader(&format!("{service}-restore"))
            .create()
            .context("creating restore reader")?;
        // Learn the partitions' leader before the first assignment: a reader assigned first
        // waits for its metadata and backs off (about 0.5 s) before its first fetch.
        let topic = changelog.clone();
        let learning = tokio::task::spawn_blocking(move || {
            reader
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
                .map(|_| reader)
                .context("changelog metadata")
        });
        Ok(Self {
            service,
            changelog,
            producer,
            reader: None,
            learning: Some(learning),
        })
    }

    /// The reader, once it knows the changelog's leaders.
    async fn reader(&mut self) -> Result<&StreamConsumer> {
        if let Some(learning) = self.learning.take() {
            self.reader = Some(learning.await.context("restore reader")??);
        }
        self.reader.as_ref().context("restore reader missing")
    }

    /// Reads changelog partitions `missing` to their ends, all at once with the one reader.
    pub async fn restore_all<S: prost::Message + Default>(
        &mut self,
        missing: &[i32],
    ) -> Result<Vec<(i32, PartitionState<S>)>> {
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        let started = Instant::now();
        let (changelog, service) = (self.changelog.clone(), self.service);
        let nonce = format!("{:016x}", rand::random::<u64>());
        let markers = missing
            .iter()
            .map(|p| Record {
                topic: changelog.clone(),
                base: "",
                partition: Some(*p),
                key: Some(MARKER_KEY.as_bytes().to_vec()),
                payload: Some(nonce.clone().into_bytes()),
                headers: None,
            })
            .collect();
        send_all(&self.producer, markers)
            .await
            .context("writing restore markers")?;
        let marker_ms = started.elapsed().as_millis() as u64;
        let reader = self.reader().await?;
        let mut tpl = TopicPartitionList::new();
        for p in missing {
            tpl.add_partition_offset(&changelog, *p, Offset::Beginning)?;
        }
        reader.assign(&tpl)?;
        let read = read_to_markers::<S>(reader, &changelog, missing, &nonce).await;
        // Stop fetching until the next restore, whatever happened.
        if let Err(e) = reader.unassign() {
            warn!(changelog, error = %e, "restore reader not unassigned");
        }
        let mut states = read?;
        let millis = started.elapsed().as_millis() as u64;
        let mut out = Vec::new();
        for p in missing {
            let (mut state, records) = states.remove(p).unwrap_or_default();
            state.reindex();
            info!(
                service,
                changelog,
                partition = *p,
                records,
                held = state.held_records(),
                keys = state.slots.len(),
                millis,
                marker_ms,
                "changelog partition read"
            );
            out.push((*p, state));
        }
        Ok(out)
    }
}

/// A partition's changelog records in order: key and value (`None`: a tombstone).
type Log<S> = Vec<(String, Option<Slot<S>>)>;

/// Reads the assigned partitions until each has returned the marker `nonce`: the state of
/// each and the changelog records read.
async fn read_to_markers<S: prost::Message + Default>(
    reader: &StreamConsumer,
    changelog: &str,
    missing: &[i32],
    nonce: &str,
) -> Result<BTreeMap<i32, (PartitionState<S>, u64)>> {
    let mut waiting: BTreeSet<i32> = missing.iter().copied().collect();
    // Each partition's records in changelog order (a tombstone as `None`), folded at the end.
    let mut logs: BTreeMap<i32, Log<S>> = missing.iter().map(|p| (*p, Vec::new())).collect();
    while !waiting.is_empty() {
        let m = tokio::time::timeout(MARKER_TIMEOUT, reader.recv())
            .await
            .with_context(|| {
                format!(
                    "restoring {changelog}{waiting:?}: markers not seen in {} s",
                    MARKER_TIMEOUT.as_secs()
                )
            })?
            .context("reading changelog")?;
        let partition = m.partition();
        if !waiting.contains(&partition) {
            // Not being restored (a stale fetch of an earlier assignment), or already done.
            continue;
        }
        let Some(log) = logs.get_mut(&partition) else {
            bail!("record of partition {partition} not being restored");
        };
        let key = m.key().unwrap_or_default();
        if key == MARKER_KEY.as_bytes() {
            if m.payload() == Some(nonce.as_bytes()) {
                waiting.remove(&partition);
            }
            continue;
        }
        let key = String::from_utf8_lossy(key).into_owned();
        match m.payload() {
            None => log.push((key, None)),
            Some(bytes) => match Slot::<S>::decode(bytes) {
                Ok(slot) => log.push((key, Some(slot))),
                Err(e) => {
                    warn!(changelog, partition, key, error = %e, "unreadable changelog record skipped")
                }
            },
        }
    }
    Ok(logs
        .into_iter()
        .map(|(p, log)| {
            let records = log.len() as u64;
            let state = PartitionState {
                slots: latest(log).into_iter().collect(),
                ..PartitionState::default()
            };
            (p, (state, records))
        })
        .collect())
}

/// The latest value of each key of a changelog log (in changelog order); a key whose latest
/// record is a tombstone is gone. Sorted once and built in bulk: inserting a million keys one
/// by one into the map took most of a restore's time.
fn latest<S>(mut log: Log<S>) -> Vec<(String, Slot<S>)> {
    // Stable: the records of one key stay in changelog order.
    log.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = Vec::with_capacity(log.len());
    let mut records = log.into_iter().peekable();
    while let Some((key, value)) = records.next() {
        if records.peek().is_some_and(|(next, _)| *next == key) {
            // A later record of the key wins.
            continue;
        }
        if let Some(v) = value {
            out.push((key, v));
        }
    }
    // Sorted and unique: the map is built without a search per key.
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use shelfguard_events::state::InventoryItem;

    fn slot(on_hand: i32) -> Option<Slot<InventoryItem>> {
        Some(Slot {
            state: InventoryItem {
                on_hand,
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn the_latest_record_of_a_key_wins_and_a_tombstone_removes_it() {
        let log = vec![
            ("b".to_owned(), slot(1)),
            ("a".to_owned(), slot(1)),
            ("b".to_owned(), slot(2)),
            ("c".to_owned(), slot(1)),
            ("a".to_owned(), None),
            ("d".to_owned(), None),
            ("d".to_owned(), slot(4)),
            ("b".to_owned(), slot(3)),
        ];
        let state: Vec<(String, i32)> = latest(log)
            .into_iter()
            .map(|(k, s)| (k, s.state.on_hand))
            .collect();
        assert_eq!(
            state,
            vec![("b".into(), 3), ("c".into(), 1), ("d".into(), 4)]
        );
    }
}
