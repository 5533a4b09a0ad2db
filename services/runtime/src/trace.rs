//! W3C Trace Context (`traceparent`) carried in Kafka record headers, so that one input (e.g. a
//! failed reorder) can be followed through every service's logs by its `trace_id`.
//!
//! The engine reads the header of each input record (or starts a new trace when it is absent or
//! malformed), logs the record's processing in a span with `trace_id` and `span_id`, and writes
//! `00-<trace_id>-<span_id>-<flags>` on every record it publishes for that input: the same trace,
//! with this service's span as the parent.

/// Header name, as in the W3C recommendation and the OpenTelemetry Kafka conventions.
pub const HEADER: &str = "traceparent";

/// One hop of a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits, shared by every hop of the trace.
    pub trace_id: String,
    /// 16 lowercase hex digits: this hop's span, the parent of what it publishes.
    pub span_id: String,
    /// The caller's span (from the input header), absent when this hop started the trace.
    pub parent_id: Option<String>,
    /// Trace flags (2 hex digits; `01` = sampled), propagated unchanged.
    pub flags: String,
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && s.bytes().any(|b| b != b'0')
}

fn random_hex(bytes: usize) -> String {
    // One random number and one formatting per id (this runs for every record).
    loop {
        let s = match bytes {
            8 => format!("{:016x}", rand::random::<u64>()),
            16 => format!("{:032x}", rand::random::<u128>()),
            _ => (0..bytes)
                .map(|_| format!("{:02x}", rand::random::<u8>()))
                .collect(),
        };
        // All-zero ids are invalid in W3C trace context.
        if s.bytes().any(|b| b != b'0') {
            return s;
        }
    }
}

/// Parses a `traceparent` value: `(trace_id, parent span id, flags)`, or `None` when malformed.
pub fn parse(value: &str) -> Option<(String, String, String)> {
    let mut parts = value.trim().split('-');
    let (version, trace, span, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    // Version 00 has exactly four fields; later versions may append more (read the first four).
    if version.len() != 2 || version == "ff" || (version == "00" && parts.next().is_some()) {
        return None;
    }
    if !is_hex(trace, 32) || !is_hex(span, 16) || flags.len() != 2 {
        return None;
    }
    if !flags.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some((
        trace.to_owned(),
        span.to_owned(),
        flags.to_ascii_lowercase(),
    ))
}

impl TraceContext {
    /// This hop's context: a child of `header` when it is a valid `traceparent`, else a new trace.
    pub fn child_of(header: Option<&[u8]>) -> Self {
        let parsed = header
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(parse);
        match parsed {
            Some((trace_id, parent, flags)) => Self {
                trace_id,
                span_id: random_hex(8),
                parent_id: Some(parent),
                flags,
            },
            None => Self {
                trace_id: random_hex(16),
                span_id: random_hex(8),
                parent_id: None,
                flags: "01".into(),
            },
        }
    }

    /// The `traceparent` to put on records this hop publishes.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_header_is_continued_with_a_new_span() {
        let t = TraceContext::child_of(Some(EXAMPLE.as_bytes()));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        let out = t.header();
        let (trace, span, flags) = parse(&out).expect("own header parses");
        assert_eq!(
            (trace.as_str(), flags.as_str()),
            (t.trace_id.as_str(), "01")
        );
        assert_eq!(span, t.span_id);
    }

    #[test]
    fn absent_or_malformed_headers_start_a_new_trace() {
        for bad in [
            None,
            Some("garbage".as_bytes()),
            Some(b"00-00000000000000000000000000000000-00f067aa0ba902b7-01".as_slice()),
            Some(b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01".as_slice()),
            Some(b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra".as_slice()),
            Some(b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".as_slice()),
        ] {
            let t = TraceContext::child_of(bad);
            assert!(t.parent_id.is_none(), "{bad:?}");
            assert!(parse(&t.header()).is_some(), "{bad:?}");
            assert_ne!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        }
    }
}
