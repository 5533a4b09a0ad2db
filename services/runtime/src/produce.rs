//! Publishing: records addressed to a topic (and partition), sent in order, acknowledged together.
use std::time::Duration;

use anyhow::{Result, anyhow};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

/// How long a produce may wait in the local queue before the batch fails.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// One record to publish, already addressed.
pub struct Record {
    pub topic: String,
    /// Catalogue base name of `topic`, for metric labels.
    pub base: &'static str,
    pub partition: Option<i32>,
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Option<OwnedHeaders>,
}

/// Publishes records in order and waits until the broker acknowledged all of them.
pub async fn send_all(producer: &FutureProducer, records: Vec<Record>) -> Result<()> {
    let futures = records.iter().map(|r| {
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&r.topic);
        if let Some(k) = &r.key {
            rec = rec.key(k.as_slice());
        }
        if let Some(p) = &r.payload {
            rec = rec.payload(p.as_slice());
        }
        if let Some(p) = r.partition {
            rec = rec.partition(p);
        }
        if let Some(h) = &r.headers {
            rec = rec.headers(h.clone());
        }
        producer.send(rec, Timeout::After(SEND_TIMEOUT))
    });
    for (res, r) in futures::future::join_all(futures)
        .await
        .into_iter()
        .zip(&records)
    {
        res.map_err(|(e, _)| anyhow!("publishing to {} failed: {e}", r.topic))?;
    }
    Ok(())
}
