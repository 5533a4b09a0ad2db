//! The conformance kit: points at a deployment (its Kafka cluster, topic prefix and floor
//! channel), plays store system and warehouse for a throw-away test store, and checks what the
//! deployment answers. It uses only what an integrator has: the topics (docs/topics.md), the
//! protobuf contracts (proto/) and the floor-channel HTTP API (services/floor-channel/openapi.yaml).
//!
//! Everything a run publishes carries ids of its own (a random run id in every SKU and event id,
//! and in the store id unless one is given), and the readers start at the topics' ends when the
//! run begins, so two runs against one cluster do not see each other's records.
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tokio::time::Instant;

mod checks;
pub mod kafka;

pub use checks::CHECKS;
use kafka::{Cluster, KafkaOptions, parse_options};

/// Settings of one run. Every flag is also an environment variable.
#[derive(Parser, Clone)]
#[command(
    name = "shelfguard-conformance",
    version,
    about = "Checks a shelfguard deployment the way a store system sees it: publishes a throw-away \
             test store's catalogue, counts, sales and warehouse answers, and checks the offers, \
             stock levels and dead letters that come back (and the floor-channel API). Prints \
             PASS/FAIL per check; exits 1 if any check fails."
)]
pub struct Config {
    /// Kafka bootstrap servers of the deployment.
    #[arg(
        long,
        env = "KAFKA_BOOTSTRAP_SERVERS",
        default_value = "localhost:9092"
    )]
    pub bootstrap_servers: String,

    /// Extra librdkafka settings, `k=v,k=v` (TLS, SASL). Never printed.
    #[arg(long, env = "KAFKA_OPTIONS", default_value = "", value_parser = parse_options, hide_env_values = true, hide_default_value = true)]
    pub kafka_options: KafkaOptions,

    /// Prefix of every topic name of the deployment (its `TOPIC_PREFIX`).
    #[arg(long, env = "TOPIC_PREFIX", default_value = "")]
    pub topic_prefix: String,

    /// Base URL of the floor channel, e.g. `https://floor.example.com`; without it the API part of
    /// check a is skipped (and reported as such).
    #[arg(long, env = "FLOOR_URL")]
    pub floor_url: Option<String>,

    /// The test store's id. The floor channel's token opens exactly one store, so give the store
    /// of `--store-token` here; default `CK-<run id>` (a fresh store per run).
    #[arg(long, env = "CONFORMANCE_STORE")]
    pub store: Option<String>,

    /// The test store's floor-channel token (its entry in the floor channel's `STORE_TOKENS`).
    /// Never printed.
    #[arg(long, env = "CONFORMANCE_STORE_TOKEN", hide_env_values = true)]
    pub store_token: Option<String>,

    /// Time limit of each check, in seconds.
    #[arg(long, env = "CONFORMANCE_TIMEOUT_SECS", default_value_t = 30)]
    pub timeout_secs: u64,

    /// inventory's `REORDER_RETRY_AFTER_SECS` in the deployment: the kit dates the test store's
    /// events so that each retry falls due (timers run on event time, not wall time).
    #[arg(long, env = "REORDER_RETRY_AFTER_SECS", default_value_t = 900)]
    pub reorder_retry_after_secs: i64,

    /// Run only these checks, e.g. `a,c` (default: all).
    #[arg(long, env = "CONFORMANCE_CHECKS", value_delimiter = ',')]
    pub checks: Vec<String>,

    /// Leave the run's products in the catalogue (by default they are retired with tombstones
    /// and the run's offers are declined, which gives the store's gesture budget back).
    #[arg(long, env = "CONFORMANCE_KEEP")]
    pub keep: bool,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("kafka_options", &self.kafka_options)
            .field("topic_prefix", &self.topic_prefix)
            .field("floor_url", &self.floor_url)
            .field("store", &self.store)
            .field("store_token", &self.store_token.as_ref().map(|_| "***"))
            .field("timeout_secs", &self.timeout_secs)
            .finish_non_exhaustive()
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Skip,
}

/// What a run found: one entry per check, and the text printed.
#[derive(Debug, Default)]
pub struct Report {
    /// The run's id (in its SKUs, event ids and default store id).
    pub run_id: String,
    pub results: Vec<(String, Verdict)>,
    pub text: String,
}

impl Report {
    pub fn failed(&self) -> usize {
        self.count(Verdict::Fail)
    }
    pub fn passed(&self) -> usize {
        self.count(Verdict::Pass)
    }
    fn count(&self, v: Verdict) -> usize {
        self.results.iter().filter(|(_, r)| *r == v).count()
    }
    /// Every check that ran passed (a skipped one counts as not passed only if it was asked for).
    pub fn ok(&self) -> bool {
        self.failed() == 0 && self.passed() > 0
    }
}

/// Runs the checks; `out` gets each line as soon as it is known (the same lines end up in
/// [`Report::text`]). Errors only when the run cannot start (bad settings, no cluster): a check
/// that fails is a FAIL in the report.
pub async fn run(config: &Config, out: &mut (dyn FnMut(&str) + Send)) -> Result<Report> {
    let run_id = format!("{:08x}", rand::random::<u32>());
    let store = config
        .store
        .clone()
        .unwrap_or_else(|| format!("CK-{run_id}"));
    shelfguard_events::validate::id("store id", &store).map_err(anyhow::Error::msg)?;
    let mut report = Report {
        run_id: run_id.clone(),
        ..Report::default()
    };
    let mut say = |report: &mut Report, line: &str| {
        out(line);
        report.text.push_str(line);
        report.text.push('\n');
    };
    let cluster = Cluster {
        bootstrap_servers: config.bootstrap_servers.clone(),
        options: config.kafka_options.clone(),
        topic_prefix: config.topic_prefix.clone(),
    };
    let floor = match (&config.floor_url, &config.store_token) {
        (Some(url), Some(token)) => Some(checks::Floor::new(url, token)?),
        (Some(_), None) => anyhow::bail!(
            "--floor-url needs --store-token (CONFORMANCE_STORE_TOKEN), the token of --store"
        ),
        _ => None,
    };
    if floor.is_some() && config.store.is_none() {
        anyhow::bail!(
            "--floor-url needs --store: a floor-channel token opens one store, name it with --store"
        );
    }
    say(
        &mut report,
        &format!(
            "shelfguard conformance kit, run {run_id}: store {store}, topic prefix {:?}, bootstrap {}, floor channel {}",
            config.topic_prefix,
            config.bootstrap_servers,
            config
                .floor_url
                .as_deref()
                .unwrap_or("(none: --floor-url not given)")
        ),
    );
    let limit = Duration::from_secs(config.timeout_secs.max(1));
    let ctx = checks::Ctx::start(&cluster, &store, &run_id, config, floor, limit)
        .await
        .context("connecting to the cluster")?;
    for (id, title) in CHECKS {
        if !config.checks.is_empty() && !config.checks.iter().any(|c| c.trim() == *id) {
            continue;
        }
        let started = Instant::now();
        let (verdict, lines) = ctx.run(id, started + limit).await;
        let word = match verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Skip => "SKIP",
        };
        say(
            &mut report,
            &format!(
                "{word} {id}. {title} ({:.1} s)",
                started.elapsed().as_secs_f64()
            ),
        );
        for l in lines {
            say(&mut report, &format!("     {l}"));
        }
        report.results.push(((*id).to_owned(), verdict));
    }
    if !config.keep {
        let line = ctx.cleanup(Instant::now() + limit).await;
        say(&mut report, &line);
    }
    let skipped = report.count(Verdict::Skip);
    let summary = format!(
        "{} passed, {} failed{}",
        report.passed(),
        report.failed(),
        if skipped > 0 {
            format!(", {skipped} skipped")
        } else {
            String::new()
        }
    );
    say(&mut report, &summary);
    Ok(report)
}
