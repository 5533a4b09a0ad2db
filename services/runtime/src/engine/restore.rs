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

/// Reads the assigned partitions until each has returned the marker `nonce`: the state of
/// each and the changelog records read.
async fn read_to_markers<S: prost::Message + Default>(
    reader: &StreamConsumer,
    changelog: &str,
    missing: &[i32],
    nonce: &str,
) -> Result<BTreeMap<i32, (PartitionState<S>, u64)>> {
    let mut waiting: BTreeSet<i32> = missing.iter().copied().collect();
    let mut states: BTreeMap<i32, (PartitionState<S>, u64)> = missing
        .iter()
        .map(|p| (*p, (PartitionState::default(), 0)))
        .collect();
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
        let Some((state, records)) = states.get_mut(&partition) else {
            bail!("record of partition {partition} not being restored");
        };
        let key = m.key().unwrap_or_default();
        if key == MARKER_KEY.as_bytes() {
            if m.payload() == Some(nonce.as_bytes()) {
                waiting.remove(&partition);
            }
            continue;
        }
        *records += 1;
        let key = String::from_utf8_lossy(key).into_owned();
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
    Ok(states)
}
