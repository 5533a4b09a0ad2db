//! Kafka plumbing of the kit, as any integrator would write it: a producer keyed by store id
//! (murmur2, like Java clients) and readers that start at the end of each topic as it was when
//! the run began, so only this run's records (and other stores' new ones) are seen.
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use tokio::time::Instant;

/// `k=v,k=v` librdkafka settings (TLS, SASL). Values are secrets: never printed.
#[derive(Clone, Default)]
pub struct KafkaOptions(pub Vec<(String, String)>);

impl std::fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| format!("{k}=***")))
            .finish()
    }
}

/// Parses `KAFKA_OPTIONS`; an error names the entry's position, never its value.
pub fn parse_options(s: &str) -> Result<KafkaOptions, String> {
    let mut out = Vec::new();
    for (i, pair) in s
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .enumerate()
    {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("entry {} of KAFKA_OPTIONS is not key=value", i + 1))?;
        out.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(KafkaOptions(out))
}

/// Where the deployment's topics are.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub bootstrap_servers: String,
    pub options: KafkaOptions,
    pub topic_prefix: String,
}

impl Cluster {
    pub fn topic(&self, base: &str) -> String {
        format!("{}{base}", self.topic_prefix)
    }

    fn client(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id);
        for (k, v) in &self.options.0 {
            c.set(k, v);
        }
        c
    }

    pub fn producer(&self) -> Result<Producer> {
        let p: FutureProducer = self
            .client("shelfguard-conformance")
            .set("acks", "all")
            .set("enable.idempotence", "true")
            // Keyed by store id with the Kafka default partitioner (docs/topics.md).
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "2")
            .set("message.timeout.ms", "30000")
            .create()
            .context("creating the Kafka producer")?;
        Ok(Producer {
            producer: p,
            cluster: self.clone(),
        })
    }

    /// A reader of every partition of `base` from its current end: only records published
    /// from now on are read. No consumer group, nothing committed.
    pub fn reader(&self, base: &str, within: Duration) -> Result<Reader> {
        let topic = self.topic(base);
        let meta: BaseConsumer = self
            .client("shelfguard-conformance-meta")
            .create()
            .context("creating a Kafka client")?;
        let md = meta
            .fetch_metadata(Some(&topic), within)
            .with_context(|| format!("metadata of {topic} from {}", self.bootstrap_servers))?;
        let parts: Vec<i32> = md
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if parts.is_empty() {
            bail!(
                "topic {topic} does not exist (or has no partitions): is the topic prefix right?"
            );
        }
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            let (_, high) = meta
                .fetch_watermarks(&topic, p, within)
                .with_context(|| format!("end offset of {topic}/{p}"))?;
            // An absolute offset, never a logical "end" (resolved later, it could skip records
            // published in between).
            tpl.add_partition_offset(&topic, p, Offset::Offset(high.max(0)))?;
        }
        let consumer: StreamConsumer = self
            .client("shelfguard-conformance-reader")
            .set("group.id", "shelfguard-conformance-reader")
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("enable.partition.eof", "false")
            .set("fetch.wait.max.ms", "50")
            .create()
            .context("creating a Kafka reader")?;
        consumer.assign(&tpl)?;
        Ok(Reader {
            consumer,
            topic,
            kept: Mutex::new(VecDeque::new()),
        })
    }
}

pub struct Producer {
    producer: FutureProducer,
    cluster: Cluster,
}

impl Producer {
    pub async fn publish(&self, base: &str, key: &str, msg: &impl prost::Message) -> Result<()> {
        self.publish_raw(base, key, Some(&msg.encode_to_vec()))
            .await
    }

    /// Publishes `value` (None: a tombstone) and waits for the broker's acknowledgement.
    pub async fn publish_raw(&self, base: &str, key: &str, value: Option<&[u8]>) -> Result<()> {
        let topic = self.cluster.topic(base);
        let mut rec =
            FutureRecord::<str, [u8]>::to(&topic)
                .key(key)
                .headers(OwnedHeaders::new().insert(Header {
                    key: "shelfguard.conformance",
                    value: Some("1"),
                }));
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        self.producer
            .send(rec, Duration::from_secs(30))
            .await
            .map(|_| ())
            .map_err(|(e, _)| anyhow!("publish to {topic}: {e}"))
    }
}

/// Reads one topic. Records a wait passes over that concern the test store are kept, so a later
/// wait finds them: checks never lose a record to another wait.
pub struct Reader {
    consumer: StreamConsumer,
    pub topic: String,
    kept: Mutex<VecDeque<OwnedMessage>>,
}

impl Reader {
    /// The first record (kept or new) for which `pick` returns something, within the deadline.
    /// `mine` says which records are worth keeping for later waits (the test store's).
    pub async fn find<T>(
        &self,
        deadline: Instant,
        mine: impl Fn(&OwnedMessage) -> bool,
        mut pick: impl FnMut(&OwnedMessage) -> Option<T>,
    ) -> Result<T> {
        {
            let mut kept = self.kept.lock().map_err(|_| anyhow!("reader poisoned"))?;
            if let Some(t) = kept
                .iter()
                .position(|m| pick(m).is_some())
                .and_then(|i| kept.remove(i))
                .and_then(|m| pick(&m))
            {
                return Ok(t);
            }
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let m = tokio::time::timeout(left, self.consumer.recv())
                .await
                .map_err(|_| anyhow!("timed out on {}", self.topic))?
                .with_context(|| format!("reading {}", self.topic))?
                .detach();
            if let Some(t) = pick(&m) {
                return Ok(t);
            }
            if mine(&m) {
                let mut kept = self.kept.lock().map_err(|_| anyhow!("reader poisoned"))?;
                kept.push_back(m);
            }
        }
    }

    /// Like [`find`](Self::find) for protobuf values of `M` whose store is the test store.
    pub async fn find_msg<M: prost::Message + Default>(
        &self,
        deadline: Instant,
        store_of: impl Fn(&M) -> &str + Copy,
        store: &str,
        pred: impl Fn(&M) -> bool,
    ) -> Result<M> {
        let decode = |m: &OwnedMessage| M::decode(m.payload().unwrap_or_default()).ok();
        self.find(
            deadline,
            |m| decode(m).is_some_and(|v| store_of(&v) == store),
            |m| decode(m).filter(|v| store_of(v) == store && pred(v)),
        )
        .await
    }
}

/// A header's value as text ("" when absent).
pub fn header(m: &OwnedMessage, key: &str) -> String {
    m.headers()
        .and_then(|h| h.iter().find(|h| h.key == key))
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .unwrap_or_default()
}
