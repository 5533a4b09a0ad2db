//! Test harness: a real broker per test (embedded tansu on a random port), topics under a
//! random prefix, the services as real processes, and readers that await conditions.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use prost::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::{Message as _, OwnedMessage};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use shelfguard_local::broker::EmbeddedBroker;
use shelfguard_runtime::{KafkaArgs, admin};
use tokio::process::{Child, Command};

pub mod bench;
pub mod fixtures;

/// Partitions of every store-keyed topic in tests.
pub const PARTITIONS: i32 = 3;

/// One isolated environment: its own broker and topic prefix.
pub struct Env {
    pub broker: EmbeddedBroker,
    pub kafka: KafkaArgs,
    producer: FutureProducer,
    logs: PathBuf,
    /// The executable `spawn` runs services with (`shelfguard-svc` unless changed).
    service_binary: PathBuf,
    /// Arguments before the service name (for a binary that is not only a service runner).
    service_args: Vec<String>,
}

impl Env {
    pub async fn start(test: &str) -> Result<Self> {
        let broker = EmbeddedBroker::start("memory://tansu/")?;
        let prefix = format!("t{:08x}.", rand::random::<u32>());
        let kafka = KafkaArgs::local(&broker.bootstrap, &prefix);
        admin::ensure_topics(&kafka, PARTITIONS, 1).await?;
        let producer = kafka.producer("e2e").create()?;
        let logs = target_dir().join("e2e-logs").join(test);
        std::fs::create_dir_all(&logs)?;
        Ok(Self {
            broker,
            kafka,
            producer,
            logs,
            service_binary: svc_binary(),
            service_args: Vec::new(),
        })
    }

    /// Runs services with `binary` instead of `shelfguard-svc`: it must accept the same
    /// arguments (a measurement that serves [`run_service`] itself is then never stale).
    pub fn use_service_binary(&mut self, binary: PathBuf, first_args: Vec<String>) {
        self.service_binary = binary;
        self.service_args = first_args;
    }

    pub async fn publish(&self, topic: &str, key: &str, msg: &impl Message) -> Result<()> {
        self.publish_raw(topic, key, &msg.encode_to_vec()).await
    }

    pub async fn publish_raw(&self, topic: &str, key: &str, bytes: &[u8]) -> Result<()> {
        self.publish_raw_at(topic, key, bytes).await.map(|_| ())
    }

    /// Publishes and returns where the broker put the record: (partition, offset).
    pub async fn publish_at(
        &self,
        topic: &str,
        key: &str,
        msg: &impl Message,
    ) -> Result<(i32, i64)> {
        self.publish_raw_at(topic, key, &msg.encode_to_vec()).await
    }

    async fn publish_raw_at(&self, topic: &str, key: &str, bytes: &[u8]) -> Result<(i32, i64)> {
        let t = self.kafka.topic(topic);
        self.producer
            .send(
                FutureRecord::to(&t).key(key).payload(bytes),
                Timeout::After(Duration::from_secs(30)),
            )
            .await
            .map(|d| (d.partition, d.offset))
            .map_err(|(e, _)| anyhow::anyhow!("publish to {t}: {e}"))
    }

    /// Counts every (SKU, units) of `store` and waits, on `levels` (a tail of
    /// `inventory.stock-levels.v1`), until inventory has applied all of them: counts and sales
    /// travel on different topics, and without this a sale could be applied before its count.
    pub async fn count_and_await(
        &self,
        levels: &Tail,
        store: &str,
        stock: &[(&str, i32)],
        within: Duration,
    ) -> Result<()> {
        use shelfguard_events::inventory::{Cause, StockLevel};
        for (sku, units) in stock {
            self.publish(
                shelfguard_events::topics::STORE_STOCK_MOVEMENTS,
                store,
                &fixtures::count(store, sku, *units),
            )
            .await?;
        }
        let mut seen = std::collections::BTreeSet::new();
        while seen.len() < stock.len() {
            let (l, _) = levels
                .until::<StockLevel>(within, |l| {
                    l.store_id == store && l.cause == Cause::Count as i32
                })
                .await?;
            seen.insert(l.sku);
        }
        Ok(())
    }

    /// Publishes `n` product families, each a 14 oz `<prefix><i>-14` and a 28 oz `<prefix><i>-28`
    /// of the same brand (the bigger one is the substitute); returns the small SKUs.
    pub async fn publish_families(&self, prefix: &str, n: usize) -> Result<Vec<String>> {
        let mut small = Vec::new();
        for i in 0..n {
            let family = format!("family-{i}");
            let (s, b) = (format!("{prefix}{i}-14"), format!("{prefix}{i}-28"));
            self.publish(
                shelfguard_events::topics::CATALOG_PRODUCTS,
                &s,
                &fixtures::product(&s, &family, "Gold", 14.0, 799),
            )
            .await?;
            self.publish(
                shelfguard_events::topics::CATALOG_PRODUCTS,
                &b,
                &fixtures::product(&b, &family, "Gold", 28.0, 1399),
            )
            .await?;
            small.push(s);
        }
        Ok(small)
    }

    /// Starts a service as its own process (see `shelfguard-svc`) with dynamic group
    /// membership (the default in production); `env` adds variables.
    pub fn spawn(&self, service: &str, env: &[(&str, &str)]) -> Result<Service> {
        self.spawn_as(service, None, env)
    }

    /// Starts one instance of a service; with `Some(instance)` it has static group membership
    /// (`group.instance.id`, as a StatefulSet pod would).
    pub fn spawn_as(
        &self,
        service: &str,
        instance: Option<&str>,
        env: &[(&str, &str)],
    ) -> Result<Service> {
        let n = std::fs::read_dir(&self.logs)?.count();
        let log_path = self
            .logs
            .join(format!("{n:02}-{}.log", instance.unwrap_or(service)));
        let log = std::fs::File::create(&log_path)?;
        let mut cmd = Command::new(&self.service_binary);
        cmd.args(&self.service_args)
            .arg(service)
            .env("KAFKA_BOOTSTRAP_SERVERS", &self.broker.bootstrap)
            .env("TOPIC_PREFIX", &self.kafka.topic_prefix)
            .env("HEALTH_ADDR", "")
            // Tests that are not about the gesture budget must not run into it (they issue many
            // offers in one store and day); the budget stories set their own.
            .env("STORE_DAILY_BUDGET_CENTS", "1000000000")
            .env(
                "RUST_LOG",
                std::env::var("E2E_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        if let Some(id) = instance {
            cmd.env("KAFKA_GROUP_INSTANCE_ID", id);
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().with_context(|| format!("starting {service}"))?;
        Ok(Service {
            name: service.to_owned(),
            instance: instance.map(str::to_owned),
            child,
            log: log_path,
        })
    }

    /// A reader of every partition of `topic`, from the beginning.
    pub fn tail(&self, topic: &str) -> Result<Tail> {
        let consumer: StreamConsumer = self.kafka.reader("e2e-tail").create()?;
        let t = self.kafka.topic(topic);
        let mut tpl = TopicPartitionList::new();
        let parts = if shelfguard_events::topics::spec(topic).is_some_and(|s| s.store_partitioned) {
            PARTITIONS
        } else {
            1
        };
        for p in 0..parts {
            tpl.add_partition_offset(&t, p, Offset::Beginning)?;
        }
        consumer.assign(&tpl)?;
        Ok(Tail { consumer, topic: t })
    }
}

/// A running service process.
pub struct Service {
    pub name: String,
    pub instance: Option<String>,
    child: Child,
    pub log: PathBuf,
}

impl Service {
    /// Waits for the process to end by itself (e.g. at a crash point) and returns whether it failed.
    pub async fn wait_exit(&mut self, within: Duration) -> Result<bool> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .with_context(|| {
                format!(
                    "{} still running after {within:?}; log: {}",
                    self.name,
                    self.log.display()
                )
            })??;
        Ok(!status.success())
    }

    /// SIGTERM, then waits for a clean exit.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()?;
        }
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await??;
        if !status.success() {
            bail!(
                "{} exited with {status} after SIGTERM; log: {}",
                self.name,
                self.log.display()
            );
        }
        Ok(())
    }

    /// SIGKILL: no shutdown work at all.
    pub async fn kill(mut self) -> Result<()> {
        self.child.kill().await?;
        Ok(())
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// Reads a topic and waits for conditions, never for fixed times.
pub struct Tail {
    consumer: StreamConsumer,
    pub topic: String,
}

impl Tail {
    /// The next record if one has already arrived, without waiting.
    pub fn try_next(&self) -> Option<Result<OwnedMessage>> {
        use futures::FutureExt as _;
        self.consumer
            .recv()
            .now_or_never()
            .map(|r| r.map(|m| m.detach()).map_err(Into::into))
    }

    pub async fn next(&self, within: Duration) -> Result<OwnedMessage> {
        let m = tokio::time::timeout(within, self.consumer.recv())
            .await
            .with_context(|| format!("nothing on {} within {within:?}", self.topic))??;
        Ok(m.detach())
    }

    /// Reads records until one decodes as `M` and matches; returns it and all `M`s read on the
    /// way (records that do not decode as `M`, such as a test's own garbage, are passed over).
    pub async fn until<M: Message + Default>(
        &self,
        within: Duration,
        pred: impl Fn(&M) -> bool,
    ) -> Result<(M, Vec<M>)> {
        let deadline = tokio::time::Instant::now() + within;
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.next(left).await.with_context(|| {
                format!(
                    "waiting for a match on {}; saw {} records",
                    self.topic,
                    seen.len()
                )
            })?;
            let Ok(v) = M::decode(m.payload().unwrap_or_default()) else {
                continue;
            };
            if pred(&v) {
                return Ok((v, seen));
            }
            seen.push(v);
        }
    }
}

/// Runs one service as its own binary would: `args` is `<inventory|stockout-detector|
/// offer-generator|floor-channel> [flags]` (what `shelfguard-svc` takes), until SIGTERM or SIGINT.
pub async fn run_service(args: Vec<String>) -> Result<()> {
    use clap::Parser as _;
    let service = args.first().cloned().unwrap_or_default();
    let shutdown = shelfguard_runtime::shutdown::on_signals();
    match service.as_str() {
        "inventory" => {
            shelfguard_inventory::run(shelfguard_inventory::Config::parse_from(args), shutdown)
                .await
        }
        "stockout-detector" => {
            shelfguard_stockout_detector::run(
                shelfguard_stockout_detector::Config::parse_from(args),
                shutdown,
            )
            .await
        }
        "offer-generator" => {
            shelfguard_offer_generator::run(
                shelfguard_offer_generator::Config::parse_from(args),
                shutdown,
            )
            .await
        }
        "floor-channel" => {
            shelfguard_floor_channel::run(
                shelfguard_floor_channel::Config::parse_from(args),
                shutdown,
            )
            .await
        }
        other => bail!("unknown service {other:?}"),
    }
}

/// A free local TCP port (for a service's HTTP_ADDR).
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// `target/e2e-artifacts`: files tests keep for people (e.g. the console screenshot).
pub fn artifacts_dir() -> Result<PathBuf> {
    let dir = target_dir()
        .parent()
        .map(|p| p.join("e2e-artifacts"))
        .context("no target directory")?;
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Polls `url` until it answers 200 (the service is up), at most `within`.
pub async fn wait_http(url: &str, within: Duration) -> Result<()> {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let last = match client.get(url).send().await {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => format!("HTTP {}", r.status()),
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            bail!("{url} not up within {within:?}: {last}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

/// The `shelfguard-svc` executable next to the running test.
pub fn svc_binary() -> PathBuf {
    target_dir().join("shelfguard-svc")
}
