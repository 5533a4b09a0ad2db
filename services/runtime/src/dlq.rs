//! Dead-letter records: the original bytes with the reason and the source in headers.
use rdkafka::Message as _;
use rdkafka::message::{Header, OwnedHeaders, OwnedMessage};

use crate::produce::Record;

pub const REASON: &str = "dlq.reason";
pub const SOURCE_TOPIC: &str = "dlq.source.topic";
pub const SOURCE_PARTITION: &str = "dlq.source.partition";
pub const SOURCE_OFFSET: &str = "dlq.source.offset";
pub const SERVICE: &str = "dlq.service";
/// Set when the original value was cut to [`MAX_DEAD_LETTER_BYTES`]: its full size in bytes.
pub const TRUNCATED: &str = "dlq.truncated";
/// Most bytes of the original value a dead letter carries, so that a dead letter always fits
/// the broker's message limit (a record refused for its size must not stop the service again).
pub const MAX_DEAD_LETTER_BYTES: usize = 512 * 1024;
/// Longest reason kept in the header.
const MAX_REASON_BYTES: usize = 2048;

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

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
            value: Some(cut(reason, MAX_REASON_BYTES)),
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

/// The dead letter of `msg` for `topic`: its key and bytes unchanged (cut to
/// [`MAX_DEAD_LETTER_BYTES`], see [`TRUNCATED`]), the reason and source in headers.
pub(crate) fn record(msg: &OwnedMessage, service: &str, topic: &str, reason: &str) -> Record {
    let source = Source {
        topic: msg.topic(),
        partition: msg.partition(),
        offset: msg.offset(),
        key: msg.key(),
        payload: msg.payload(),
    };
    of(&source, service, topic, reason)
}

/// Where a dead-lettered record came from, and its bytes.
pub(crate) struct Source<'a> {
    /// Full name of the input topic.
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<&'a [u8]>,
    pub payload: Option<&'a [u8]>,
}

/// The dead letter of a record from `source`, for `topic`.
pub(crate) fn of(source: &Source<'_>, service: &str, topic: &str, reason: &str) -> Record {
    let mut headers = headers(
        service,
        reason,
        source.topic,
        source.partition,
        source.offset,
    );
    let payload = source.payload.map(|p| {
        if p.len() > MAX_DEAD_LETTER_BYTES {
            headers = std::mem::replace(&mut headers, OwnedHeaders::new()).insert(Header {
                key: TRUNCATED,
                value: Some(&p.len().to_string()),
            });
            p[..MAX_DEAD_LETTER_BYTES].to_vec()
        } else {
            p.to_vec()
        }
    });
    let key = source
        .key
        .map(|k| k[..k.len().min(MAX_DEAD_LETTER_BYTES / 4)].to_vec());
    Record {
        topic: topic.to_owned(),
        base: "",
        partition: None,
        key,
        payload,
        headers: Some(headers),
    }
}
