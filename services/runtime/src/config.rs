//! Settings every service shares. Each is a flag and an environment variable.
use clap::Args;
use rdkafka::ClientConfig;

/// Connection to the Kafka cluster and the knobs of the consumer loop.
#[derive(Debug, Clone, Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers, comma separated.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = DEFAULT_BOOTSTRAP_SERVERS
    )]
    pub bootstrap_servers: String,

    /// Extra librdkafka settings, comma separated `key=value` pairs, passed unchanged
    /// (e.g. `security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512`). Values are never logged.
    #[arg(long, env = "KAFKA_OPTIONS", default_value = "", value_parser = parse_options, hide_env_values = true)]
    pub kafka_options: KafkaOptions,

    /// Prefix added to every topic name (isolates environments sharing a cluster).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Consumer group id; defaults to the topic prefix followed by the service name.
    #[arg(long, env = "KAFKA_GROUP_ID")]
    pub group_id: Option<String>,

    /// Static group membership (`group.instance.id`), e.g. the StatefulSet pod name: a restarted
    /// instance takes its partitions back at once instead of waiting for the session timeout.
    #[arg(long, env = "KAFKA_GROUP_INSTANCE_ID")]
    pub group_instance_id: Option<String>,

    /// Most records handled in one batch (one produce round trip, one offset store).
    #[arg(long, env = "MAX_BATCH", default_value_t = DEFAULT_MAX_BATCH, value_parser = at_least_one)]
    pub max_batch: usize,

    /// Producer linger in milliseconds: larger batches against a few ms of latency per hop;
    /// 0 to 900000 (librdkafka's range).
    #[arg(long, env = "PRODUCER_LINGER_MS", default_value_t = DEFAULT_LINGER_MS, value_parser = clap::value_parser!(u32).range(0..=900_000))]
    pub linger_ms: u32,

    /// Longest a fetch waits at the broker for new records, in milliseconds. Each hop of the
    /// pipeline can add up to this much latency on brokers that answer a fetch only at its
    /// deadline (tansu 0.6 does); Kafka answers as soon as records arrive. 0 to 300000
    /// (librdkafka's range).
    #[arg(long, env = "FETCH_WAIT_MAX_MS", default_value_t = DEFAULT_FETCH_WAIT_MAX_MS, value_parser = clap::value_parser!(u32).range(0..=300_000))]
    pub fetch_wait_max_ms: u32,

    /// At start, how long to try reaching the cluster before stopping with one line that says
    /// why (a running service that loses the cluster is not ready instead; it does not exit);
    /// 1 to 600 seconds.
    #[arg(long, env = "KAFKA_CONNECT_TIMEOUT_SECS", default_value_t = DEFAULT_CONNECT_TIMEOUT_SECS, value_parser = clap::value_parser!(u64).range(1..=600))]
    pub kafka_connect_timeout_secs: u64,

    /// Address of the health endpoints (`/healthz`, `/readyz`); empty disables them.
    #[arg(long, env = "HEALTH_ADDR", default_value = DEFAULT_HEALTH_ADDR)]
    pub health_addr: String,
}

/// Default of `KAFKA_BOOTSTRAP_SERVERS`.
pub const DEFAULT_BOOTSTRAP_SERVERS: &str = "localhost:9092";
/// Default of `MAX_BATCH`.
pub const DEFAULT_MAX_BATCH: usize = 500;
/// Default of `PRODUCER_LINGER_MS`.
pub const DEFAULT_LINGER_MS: u32 = 2;
/// Default of `FETCH_WAIT_MAX_MS`.
pub const DEFAULT_FETCH_WAIT_MAX_MS: u32 = 10;
/// Default of `KAFKA_CONNECT_TIMEOUT_SECS`.
pub const DEFAULT_CONNECT_TIMEOUT_SECS: u64 = 10;
/// Default of `HEALTH_ADDR` (local runs and tests use none: [`KafkaArgs::local`]).
pub const DEFAULT_HEALTH_ADDR: &str = "0.0.0.0:8080";

/// The consumer group session timeout: a member silent this long is out of the group.
pub const SESSION_TIMEOUT_MS: u64 = 10_000;

/// `key=value` pairs for librdkafka. Debug output hides the values.
#[derive(Clone, Default)]
pub struct KafkaOptions(pub Vec<(String, String)>);

impl std::fmt::Debug for KafkaOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(k, _)| format!("{k}=***")))
            .finish()
    }
}

/// A count that must be at least 1 (refused at start otherwise, never raised silently).
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("{s:?} is not a whole number")),
    }
}

/// A number of at least `min` (and finite), for settings such as half-lives and thresholds:
/// refused at start with the reason, never raised silently.
pub fn number_at_least(min: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |s: &str| {
        let v: f64 = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a number"))?;
        if v.is_finite() && v >= min {
            Ok(v)
        } else {
            Err(format!("must be a number of at least {min}, not {v}"))
        }
    }
}

fn parse_options(s: &str) -> Result<KafkaOptions, String> {
    let mut out = Vec::new();
    for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| format!("`{pair}` is not key=value"))?;
        out.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(KafkaOptions(out))
}

impl KafkaArgs {
    /// Settings for local runs and tests.
    pub fn local(bootstrap: &str, prefix: &str) -> Self {
        Self {
            bootstrap_servers: bootstrap.to_owned(),
            kafka_options: KafkaOptions::default(),
            topic_prefix: prefix.to_owned(),
            group_id: None,
            group_instance_id: None,
            max_batch: DEFAULT_MAX_BATCH,
            linger_ms: DEFAULT_LINGER_MS,
            fetch_wait_max_ms: DEFAULT_FETCH_WAIT_MAX_MS,
            kafka_connect_timeout_secs: DEFAULT_CONNECT_TIMEOUT_SECS,
            health_addr: String::new(),
        }
    }

    /// The group session timeout (librdkafka's `session.timeout.ms` from `KAFKA_OPTIONS` wins).
    pub fn session_timeout(&self) -> std::time::Duration {
        let ms = self
            .kafka_options
            .0
            .iter()
            .rev()
            .find(|(k, _)| k == "session.timeout.ms")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(SESSION_TIMEOUT_MS);
        std::time::Duration::from_millis(ms)
    }

    /// The full name of a catalogue topic.
    pub fn topic(&self, base: &str) -> String {
        format!("{}{}", self.topic_prefix, base)
    }

    /// Base name of a full topic name.
    pub fn base<'a>(&self, full: &'a str) -> &'a str {
        full.strip_prefix(self.topic_prefix.as_str())
            .unwrap_or(full)
    }

    /// Common client settings (bootstrap, security, client id).
    pub fn client(&self, client_id: &str) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", &self.bootstrap_servers)
            .set("client.id", client_id)
            .set("log_level", "4");
        for (k, v) in &self.kafka_options.0 {
            c.set(k, v);
        }
        c
    }

    /// A producer that is idempotent, waits for all replicas and partitions like Java clients.
    pub fn producer(&self, client_id: &str) -> ClientConfig {
        let mut c = self.client(client_id);
        c.set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", self.linger_ms.to_string())
            .set("partitioner", "murmur2_random")
            .set("message.timeout.ms", "30000");
        c
    }

    /// A group consumer that commits only offsets we stored after the work was done.
    pub fn group_consumer(&self, client_id: &str, group: &str) -> ClientConfig {
        let mut c = self.client(client_id);
        c.set("group.id", group)
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "1000")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set(
                "session.timeout.ms",
                self.session_timeout().as_millis().to_string(),
            )
            .set("heartbeat.interval.ms", "1000")
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
            .set("enable.partition.eof", "false");
        if let Some(id) = &self.group_instance_id {
            c.set("group.instance.id", id);
        }
        c
    }

    /// A consumer without a group, for reading whole partitions (state restore, tables).
    pub fn reader(&self, client_id: &str) -> ClientConfig {
        let mut c = self.client(client_id);
        c.set("group.id", format!("{client_id}-reader"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("fetch.wait.max.ms", self.fetch_wait_max_ms.to_string())
            .set("fetch.queue.backoff.ms", FETCH_QUEUE_BACKOFF_MS)
            .set("enable.partition.eof", "false");
        c
    }
}

/// How soon a consumer whose local queue is full fetches again once there is room. librdkafka
/// waits a whole second by default: a reader that fetches faster than it is read (a state
/// restore, a catch-up after downtime) then sits idle most of that second. Measured with
/// `bench`: restoring 1,000,000 keys took 8.1 s with the default, see README's Measuring.
const FETCH_QUEUE_BACKOFF_MS: &str = "10";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn out_of_range_settings_are_refused_not_clamped() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            kafka: KafkaArgs,
        }
        use clap::Parser as _;
        let err = Cli::try_parse_from(["x", "--max-batch", "0"])
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("at least 1"), "{err}");
        assert_eq!(
            Cli::try_parse_from(["x", "--max-batch", "7"])
                .unwrap()
                .kafka
                .max_batch,
            7
        );
    }

    #[test]
    fn latency_settings_outside_librdkafka_ranges_are_refused() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            kafka: KafkaArgs,
        }
        use clap::Parser as _;
        for (flag, bad, good) in [
            ("--linger-ms", "900001", "900000"),
            ("--fetch-wait-max-ms", "300001", "0"),
            ("--kafka-connect-timeout-secs", "0", "600"),
        ] {
            let err = Cli::try_parse_from(["x", flag, bad]).err();
            assert!(
                err.as_ref()
                    .is_some_and(|e| e.to_string().contains("not in")),
                "{flag} {bad}: {err:?}"
            );
            assert!(
                Cli::try_parse_from(["x", flag, good]).is_ok(),
                "{flag} {good}"
            );
        }
        let defaults = Cli::try_parse_from(["x"]).unwrap().kafka;
        let local = KafkaArgs::local("b:1", "p-");
        assert_eq!(
            (
                defaults.max_batch,
                defaults.linger_ms,
                defaults.fetch_wait_max_ms
            ),
            (local.max_batch, local.linger_ms, local.fetch_wait_max_ms)
        );
    }

    #[test]
    fn number_at_least_refuses_below_and_non_finite() {
        let p = number_at_least(0.01);
        assert_eq!(p("0.01"), Ok(0.01));
        assert_eq!(p(" 7 "), Ok(7.0));
        for bad in ["0", "-1", "0.009", "NaN", "inf", "x"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn options_parse_and_hide_values() {
        let o = parse_options("security.protocol=SASL_SSL, sasl.password=s3cret").unwrap();
        assert_eq!(o.0.len(), 2);
        assert_eq!(o.0[1], ("sasl.password".into(), "s3cret".into()));
        assert!(!format!("{o:?}").contains("s3cret"));
        assert!(parse_options("nonsense").is_err());
        assert!(parse_options("").unwrap().0.is_empty());
    }

    #[test]
    fn tls_and_sasl_settings_are_accepted_by_librdkafka() {
        let mut args = KafkaArgs::local("broker:9093", "");
        args.kafka_options = parse_options("security.protocol=SASL_SSL,sasl.mechanism=SCRAM-SHA-512,sasl.username=u,sasl.password=p").unwrap();
        let producer: Result<rdkafka::producer::BaseProducer, _> = args.producer("t").create();
        assert!(
            producer.is_ok(),
            "librdkafka refused TLS/SASL settings: {:?}",
            producer.err()
        );
    }
}
