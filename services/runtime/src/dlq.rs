//! Dead-letter records: the original bytes with the reason and the source in headers.
use rdkafka::Message as _;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};

use crate::engine::Send;

pub const REASON: &str = "dlq.reason";
pub const SOURCE_TOPIC: &str = "dlq.source.topic";
pub const SOURCE_PARTITION: &str = "dlq.source.partition";
pub const SOURCE_OFFSET: &str = "dlq.source.offset";
pub const SERVICE: &str = "dlq.service";

/// Headers for a dead letter of the record at `topic`/`partition`/`offset`.
pub fn headers(
    service: &str,
    reason: &str,
    topic: &str,
    partition: i32,
    offset: i64,
) -> OwnedHeaders {
    let p = partition.to_string();
    let o = offset.to_string();
    OwnedHeaders::new()
        .insert(Header {
            key: REASON,
            value: Some(reason),
        })
        .insert(Header {
            key: SOURCE_TOPIC,
            value: Some(topic),
        })
        .insert(Header {
            key: SOURCE_PARTITION,
            value: Some(&p),
        })
        .insert(Header {
            key: SOURCE_OFFSET,
            value: Some(&o),
        })
        .insert(Header {
            key: SERVICE,
            value: Some(service),
        })
}

/// The dead letter of `msg` for `topic`: its key and bytes unchanged, the reason and source in headers.
pub(crate) fn record(msg: &OwnedMessage, service: &str, topic: &str, reason: &str) -> Send {
    Send {
        topic: topic.to_owned(),
        base: "",
        partition: None,
        key: msg.key().map(<[u8]>::to_vec),
        payload: msg.payload().map(<[u8]>::to_vec),
        headers: Some(headers(
            service,
            reason,
            msg.topic(),
            msg.partition(),
            msg.offset(),
        )),
    }
}
