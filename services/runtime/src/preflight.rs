//! Before a service (or command 1) starts its clients: can the cluster be reached at all? If not,
//! it stops within [`crate::KafkaArgs::kafka_connect_timeout_secs`] with one line that names the
//! address tried, the setting and what to check, instead of retrying forever (or for minutes) in
//! librdkafka's log lines. Once running, losing the cluster makes a service not ready; it never
//! exits for it.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Result, anyhow};
use rdkafka::ClientContext;
use rdkafka::client::Client;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;

use crate::KafkaArgs;

/// Keeps librdkafka's last error and log line instead of printing them: the one line says it.
#[derive(Default, Clone)]
struct Silent {
    last: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Silent {
    fn log(&self, _level: RDKafkaLogLevel, _fac: &str, log_message: &str) {
        self.keep(log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        self.keep(&format!("{error}: {reason}"));
    }
}

impl Silent {
    fn keep(&self, what: &str) {
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some(what.to_owned());
    }
}

/// Asks the cluster for its metadata; an error says, in one line, what was tried and what to do.
pub async fn reach(args: &KafkaArgs) -> Result<()> {
    let timeout = Duration::from_secs(args.kafka_connect_timeout_secs);
    let ctx = Silent::default();
    let last = ctx.last.clone();
    let config = args.client("preflight");
    let servers = args.bootstrap_servers.clone();
    let outcome = tokio::task::spawn_blocking(move || -> Result<(), String> {
        let native = config
            .create_native_config()
            .map_err(|e| format!("the Kafka client settings are refused: {e}"))?;
        let client = Client::new(
            &config,
            native,
            rdkafka::types::RDKafkaType::RD_KAFKA_PRODUCER,
            ctx,
        )
        .map_err(|e| format!("the Kafka client settings are refused: {e}"))?;
        client
            .fetch_metadata(None, timeout)
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| anyhow!("preflight task: {e}"))?;
    outcome.map_err(|error| {
        let seen = last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .map(|l| format!("; librdkafka said: {l}"))
            .unwrap_or_default();
        anyhow!(
            "cannot reach the Kafka cluster at {servers} (KAFKA_BOOTSTRAP_SERVERS) within {} s \
             (KAFKA_CONNECT_TIMEOUT_SECS): {error}{seen}. Check the address and port, that the \
             cluster is up, and KAFKA_OPTIONS for TLS/SASL",
            timeout.as_secs()
        )
    })
}
