//! Rebuilding a partition's state from the service's compacted changelog.
//!
//! The end of a changelog partition is found by writing a marker with a fresh nonce and
//! reading until it comes back, which does not depend on watermarks (tansu's can fall short).
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tracing::{info, warn};

use crate::config::KafkaArgs;
use crate::produce::{Record, send_all};
use crate::state::{PartitionState, Slot};

/// Key of the marker record that ends a state restore.
pub const MARKER_KEY: &str = "\u{0}restore-marker";
/// Longest a restore waits for its marker to come back.
const MARKER_TIMEOUT: Duration = Duration::from_secs(120);

/// Restores partitions of one service's changelog.
pub struct Restorer<'a> {
    pub args: &'a KafkaArgs,
    pub service: &'static str,
    pub producer: &'a FutureProducer,
    /// Full name of the changelog topic.
    pub changelog: &'a str,
}

impl Restorer<'_> {
    /// Reads changelog partition `partition` to its end.
    pub async fn restore<S: prost::Message + Default>(
        &self,
        partition: i32,
    ) -> Result<PartitionState<S>> {
        let (changelog, service) = (self.changelog, self.service);
        let started = Instant::now();
        let nonce = format!("{:016x}", rand::random::<u64>());
        send_all(
            self.producer,
            vec![Record {
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
        let marker_ms = started.elapsed().as_millis() as u64;
        let reader: StreamConsumer = self
            .args
            .reader(&format!("{service}-restore"))
            .create()
            .context("creating restore reader")?;
        // Learn the partition's leader before assigning: a reader assigned first waits for its
        // metadata and backs off (about 0.5 s) before its first fetch.
        let reader = {
            let topic = changelog.to_owned();
            tokio::task::spawn_blocking(move || {
                reader
                    .fetch_metadata(Some(&topic), Duration::from_secs(10))
                    .map(|_| reader)
            })
            .await
            .context("restore reader")?
            .context("changelog metadata")?
        };
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(changelog, partition, Offset::Beginning)?;
        reader.assign(&tpl)?;
        let mut state = PartitionState::default();
        let mut records = 0u64;
        loop {
            let m = tokio::time::timeout(MARKER_TIMEOUT, reader.recv())
                .await
                .with_context(|| {
                    format!(
                        "restoring {changelog}[{partition}]: marker not seen in {} s",
                        MARKER_TIMEOUT.as_secs()
                    )
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
        state.reindex();
        info!(
            service,
            changelog,
            partition,
            records,
            held = state.held_records(),
            keys = state.slots.len(),
            millis = started.elapsed().as_millis() as u64,
            marker_ms,
            "state restored"
        );
        Ok(state)
    }

    /// Restores every partition of `missing`, all at once: each restore is a round trip or
    /// two, and a start or a rebalance brings many.
    pub async fn restore_all<S: prost::Message + Default>(
        &self,
        missing: &[i32],
    ) -> Result<Vec<(i32, PartitionState<S>)>> {
        let restored =
            futures::future::try_join_all(missing.iter().map(|p| self.restore::<S>(*p))).await?;
        Ok(missing.iter().copied().zip(restored).collect())
    }
}
