//! Whether a client is connected to the cluster, as librdkafka tells it, for readiness.
//!
//! Shared by the engine's consumer context and by any other long-lived client (floor-channel's
//! readers): a broker connection is up when the latest statistics show a broker `UP`, and down
//! from an `AllBrokersDown` error until statistics show one up again. librdkafka's errors are
//! logged without flooding: the first of each kind at once, then at most one line per kind every
//! [`REPEAT_EVERY`] with how many were left out.
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::statistics::Statistics;

/// How often the same kind of librdkafka error is logged again while it repeats.
pub const REPEAT_EVERY: Duration = Duration::from_secs(30);
/// The statistics interval the connection flag needs (`statistics.interval.ms`).
pub const STATISTICS_EVERY: Duration = Duration::from_secs(1);

/// Logs a repeating message at most once per [`REPEAT_EVERY`] per kind.
#[derive(Default)]
pub struct Quiet {
    /// Per kind: when it was last logged and how many were left out since.
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Quiet {
    /// `Some(left out since the last line)` when this kind should be logged now.
    pub fn admit(&self, kind: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        match seen.get_mut(kind) {
            Some((at, skipped)) if now.duration_since(*at) < REPEAT_EVERY => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                *at = now;
                Some(std::mem::take(skipped))
            }
            None => {
                seen.insert(kind.to_owned(), (now, 0));
                Some(0)
            }
        }
    }
}

/// The connection state of one client; clone the flag with [`Link::connected`].
#[derive(Default)]
pub struct Link {
    connected: Arc<AtomicBool>,
    quiet: Quiet,
}

impl Link {
    /// The flag, to read from elsewhere.
    pub fn connected(&self) -> Arc<AtomicBool> {
        self.connected.clone()
    }

    pub fn on_stats(&self, statistics: &Statistics) {
        let up = statistics
            .brokers
            .values()
            .any(|b| b.nodeid >= 0 && b.state == "UP");
        self.connected.store(up, Ordering::Relaxed);
    }

    pub fn on_error(&self, error: &KafkaError, reason: &str) {
        let code = error.rdkafka_error_code();
        if code == Some(RDKafkaErrorCode::AllBrokersDown) {
            self.connected.store(false, Ordering::Relaxed);
        }
        if let Some(skipped) = self.quiet.admit(&format!("{code:?}")) {
            tracing::error!(error = %error, reason, repeated_since_last_line = skipped, "librdkafka");
        }
    }
}

impl ClientContext for Link {
    fn stats(&self, statistics: Statistics) {
        self.on_stats(&statistics);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.on_error(&error, reason);
    }
}

impl ConsumerContext for Link {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeating_error_is_logged_once_per_interval_with_a_count() {
        let q = Quiet::default();
        assert_eq!(q.admit("AllBrokersDown"), Some(0));
        assert_eq!(q.admit("AllBrokersDown"), None);
        assert_eq!(q.admit("AllBrokersDown"), None);
        assert_eq!(q.admit("Other"), Some(0), "kinds are counted apart");
        {
            let mut seen = q.seen.lock().unwrap();
            let e = seen.get_mut("AllBrokersDown").unwrap();
            e.0 -= REPEAT_EVERY;
        }
        assert_eq!(q.admit("AllBrokersDown"), Some(2), "two left out since");
    }
}
