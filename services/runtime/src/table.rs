//! A global table: every partition of a compacted topic, kept in memory and up to date
//! (e.g. the product catalogue, which every store needs in full).
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::time::Duration;

use anyhow::{Context, Result};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::producer::FutureProducer;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::config::KafkaArgs;

/// Turns one record value into (key, row); an `Err` is a dead letter with that reason.
pub type Decoder<V> = fn(&[u8]) -> Result<(String, V), String>;

/// The latest row per key.
pub struct Table<V> {
    rows: Arc<RwLock<HashMap<String, V>>>,
    /// Changes on every insert or removal: events held for a missing row are retried then.
    version: Arc<AtomicU64>,
    /// Next offset to read per partition of the topic: every record before it is applied.
    positions: Arc<RwLock<BTreeMap<i32, i64>>>,
}

impl<V> Clone for Table<V> {
    fn clone(&self) -> Self {
        Self {
            rows: self.rows.clone(),
            version: self.version.clone(),
            positions: self.positions.clone(),
        }
    }
}

impl<V> Default for Table<V> {
    fn default() -> Self {
        Self {
            rows: Arc::default(),
            version: Arc::default(),
            positions: Arc::default(),
        }
    }
}

impl<V> Table<V> {
    /// Changes whenever a row is inserted or removed.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }
    /// The next offset to read per partition: every record before it is applied.
    pub fn positions(&self) -> BTreeMap<i32, i64> {
        self.positions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
    /// A shared view of [`Table::positions`] (for the readiness answer).
    pub fn positions_handle(&self) -> Arc<RwLock<BTreeMap<i32, i64>>> {
        self.positions.clone()
    }
    fn applied(&self, partition: i32, offset: i64) {
        self.positions
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(partition, offset + 1);
    }
}

impl<V: Clone> Table<V> {
    pub fn read(&self) -> RwLockReadGuard<'_, HashMap<String, V>> {
        self.rows.read().unwrap_or_else(|p| p.into_inner())
    }
    pub fn get(&self, key: &str) -> Option<V> {
        self.read().get(key).cloned()
    }
    pub fn insert(&self, key: String, v: V) {
        self.rows
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key, v);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
    pub fn remove(&self, key: &str) {
        self.rows
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(key);
        self.version.fetch_add(1, Ordering::AcqRel);
    }
    pub fn len(&self) -> usize {
        self.read().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Loads `topic` from the beginning up to its high watermarks, then keeps following it in
/// the background until `shutdown`. Bad records go to `dead_letter`.
pub async fn follow<V: Clone + Send + Sync + 'static>(
    args: &KafkaArgs,
    service: &'static str,
    topic_base: &str,
    decode: Decoder<V>,
    dead_letter: &str,
    shutdown: CancellationToken,
) -> Result<Table<V>> {
    let topic = args.topic(topic_base);
    let base = topic_base.to_owned();
    let _ = crate::metrics::engine().dead_letters.get_or_create(&vec![
        ("service", service.to_owned()),
        ("source_topic", base.clone()),
    ]);
    let dlq = args.topic(dead_letter);
    let consumer: StreamConsumer = args
        .reader(&format!("{service}-table"))
        .create()
        .context("creating table reader")?;
    let producer: FutureProducer = args
        .producer(&format!("{service}-table"))
        .create()
        .context("creating producer")?;
    let (tpl, mut ends) = {
        let c = &consumer;
        let t = topic.clone();
        tokio::task::block_in_place(|| -> Result<_> {
            let md = c
                .fetch_metadata(Some(&t), Duration::from_secs(30))
                .with_context(|| format!("metadata of {t}"))?;
            let parts: Vec<i32> = md
                .topics()
                .iter()
                .flat_map(|x| x.partitions().iter().map(|p| p.id()))
                .collect();
            let mut tpl = TopicPartitionList::new();
            let mut ends = HashMap::new();
            for p in parts {
                tpl.add_partition_offset(&t, p, Offset::Beginning)?;
                let (_, high) = c.fetch_watermarks(&t, p, Duration::from_secs(30))?;
                if high > 0 {
                    ends.insert(p, high);
                }
            }
            Ok((tpl, ends))
        })?
    };
    consumer.assign(&tpl)?;
    let table = Table::default();
    for e in tpl.elements() {
        table.applied(e.partition(), -1);
        crate::metrics::engine()
            .catalogue
            .get_or_create(&vec![
                ("service", service.to_owned()),
                ("partition", e.partition().to_string()),
            ])
            .set(0);
    }
    while !ends.is_empty() {
        let m = tokio::time::timeout(Duration::from_secs(120), consumer.recv())
            .await
            .with_context(|| format!("loading {topic}: no progress in 120 s"))??
            .detach();
        if let Some(reason) = apply(decode, &m, &table) {
            dead(service, &producer, &dlq, &m, &reason, &base).await?;
        }
        position(service, &table, &m);
        if ends
            .get(&m.partition())
            .is_some_and(|end| m.offset() + 1 >= *end)
        {
            ends.remove(&m.partition());
        }
    }
    info!(service, topic, rows = table.len(), "table loaded");
    let t = table.clone();
    tokio::spawn(async move {
        loop {
            let m = tokio::select! {
                _ = shutdown.cancelled() => return,
                m = consumer.recv() => m,
            };
            match m {
                Ok(m) => {
                    let m = m.detach();
                    if let Some(reason) = apply(decode, &m, &t)
                        && let Err(e) = dead(service, &producer, &dlq, &m, &reason, &base).await
                    {
                        warn!(error = %e, "dead letter not published");
                    }
                    position(service, &t, &m);
                }
                Err(e) => warn!(topic, error = %e, "table reader error"),
            }
        }
    });
    Ok(table)
}

/// Records that every record of `m`'s partition up to `m` is applied (metric and table).
fn position<V>(service: &str, table: &Table<V>, m: &OwnedMessage) {
    table.applied(m.partition(), m.offset());
    crate::metrics::engine()
        .catalogue
        .get_or_create(&vec![
            ("service", service.to_owned()),
            ("partition", m.partition().to_string()),
        ])
        .set(m.offset() + 1);
}

/// Applies one record (a tombstone removes its key); returns the reason when it is refused.
/// The record key must be the row's key; a panicking decoder refuses the record too.
fn apply<V: Clone>(decode: Decoder<V>, m: &OwnedMessage, table: &Table<V>) -> Option<String> {
    let decoded = m.payload().map(|p| {
        std::panic::catch_unwind(|| decode(p))
            .unwrap_or_else(|_| Err("decoding panicked".to_owned()))
    });
    match (decoded, m.key()) {
        (Some(Ok((k, _))), Some(key)) if key != k.as_bytes() => Some(format!(
            "record key {:?} does not match {k:?}: a row must be keyed by its own key",
            String::from_utf8_lossy(key)
        )),
        (Some(Ok((k, v))), _) => {
            table.insert(k, v);
            None
        }
        (Some(Err(reason)), _) => Some(reason),
        (None, Some(key)) => {
            table.remove(&String::from_utf8_lossy(key));
            None
        }
        (None, None) => Some("tombstone without a key".into()),
    }
}

async fn dead(
    service: &str,
    producer: &FutureProducer,
    dlq: &str,
    m: &OwnedMessage,
    reason: &str,
    source_base: &str,
) -> Result<()> {
    crate::metrics::engine()
        .dead_letters
        .get_or_create(&vec![
            ("service", service.to_owned()),
            ("source_topic", source_base.to_owned()),
        ])
        .inc();
    warn!(
        service,
        topic = m.topic(),
        partition = m.partition(),
        offset = m.offset(),
        reason,
        "dead letter"
    );
    crate::produce::send_all(producer, vec![crate::dlq::record(m, service, dlq, reason)])
        .await
        .with_context(|| format!("dead letter to {dlq}"))?;
    Ok(())
}

/// The product catalogue (`catalog.products.v1`, by SKU), loaded and followed; refused
/// products go to the service's `dead_letter` topic.
pub async fn catalog(
    args: &KafkaArgs,
    service: &'static str,
    dead_letter: &str,
    shutdown: CancellationToken,
) -> Result<Table<shelfguard_events::catalog::Product>> {
    follow(
        args,
        service,
        shelfguard_events::topics::CATALOG_PRODUCTS,
        |b| shelfguard_events::validate::product(b).map(|p| (p.sku.clone(), p)),
        dead_letter,
        shutdown,
    )
    .await
}
