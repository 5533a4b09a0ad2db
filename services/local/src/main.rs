//! `cargo run -p shelfguard-local`: broker (unless KAFKA_BOOTSTRAP_SERVERS is set), topics,
//! the three services, the floor channel (console per store), the simulator and a log of offers,
//! until Ctrl-C.
use anyhow::Result;
use clap::Parser;
use shelfguard_runtime::{KafkaArgs, admin, shutdown, telemetry};
use tokio::task::JoinSet;
use tracing::{error, info};

#[derive(Debug, Parser)]
#[command(
    name = "shelfguard-local",
    version,
    about = "Runs the whole system locally: broker, services, store simulator."
)]
struct Cli {
    /// An existing Kafka cluster; when unset, an embedded broker is started.
    #[arg(long, env = "KAFKA_BOOTSTRAP_SERVERS")]
    kafka_bootstrap_servers: Option<String>,
    /// Storage of the embedded broker: `memory://tansu/` (lost at exit) or `sqlite://FILE.db`
    /// (a file relative to the working directory, kept across runs).
    #[arg(long, env = "BROKER_STORAGE", default_value = "memory://tansu/", value_parser = shelfguard_local::broker::parse_storage)]
    broker_storage: String,
    /// Port of the embedded broker (0 = any free port); a port in use stops command 1 at once.
    #[arg(long, env = "BROKER_PORT", default_value_t = 9092)]
    broker_port: u16,
    /// Partitions of each store-keyed topic created at start.
    #[arg(long, env = "TOPIC_PARTITIONS", default_value_t = 6)]
    partitions: i32,
    /// Replication factor of the topics created at start.
    #[arg(long, env = "TOPIC_REPLICATION", default_value_t = 1)]
    replication: i32,
    /// Seconds before inventory asks again after a failed reorder (short, so failures pile up visibly).
    #[arg(long, env = "REORDER_RETRY_AFTER_SECS", default_value_t = 10)]
    reorder_retry_after_secs: i64,
    /// Address of the floor staff console and API (the URLs with tokens are printed at start);
    /// `0.0.0.0:8081` lets phones on the same network open it.
    #[arg(long, env = "FLOOR_HTTP_ADDR", default_value = "127.0.0.1:8081")]
    floor_http_addr: String,
    /// Currency of the gift values on the console (ISO 4217 code).
    #[arg(long, env = "FLOOR_CURRENCY", default_value = shelfguard_floor_channel::DEFAULT_CURRENCY, value_parser = shelfguard_floor_channel::currency)]
    floor_currency: String,
    /// Where the logs go (appended); `-` writes them to the terminal instead. The terminal shows
    /// the offers, a summary every 10 s and errors.
    #[arg(long, env = "LOG_FILE", default_value = "shelfguard-local.log")]
    log_file: String,
    #[command(flatten)]
    sim: shelfguard_simulator::SimConfig,
    /// Passed to every client (prefix, options, batching); bootstrap comes from above.
    #[command(flatten)]
    kafka: KafkaArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if cli.log_file == "-" {
        telemetry::init();
    } else if let Err(e) = telemetry::init_to_file(std::path::Path::new(&cli.log_file)) {
        eprintln!("LOG_FILE: cannot write {}: {e}", cli.log_file);
        return std::process::ExitCode::FAILURE;
    }
    telemetry::exit(run(cli).await)
}

async fn run(mut cli: Cli) -> Result<()> {
    let shutdown = shutdown::on_signals();
    let _broker = match &cli.kafka_bootstrap_servers {
        Some(servers) => {
            info!(
                servers,
                "using the Kafka cluster from KAFKA_BOOTSTRAP_SERVERS; no broker started"
            );
            cli.kafka.bootstrap_servers = servers.clone();
            None
        }
        None => {
            let b = if cli.broker_port == 0 {
                shelfguard_local::broker::EmbeddedBroker::start(&cli.broker_storage)?
            } else {
                shelfguard_local::broker::EmbeddedBroker::start_on(
                    &cli.broker_storage,
                    cli.broker_port,
                )?
            };
            info!(
                bootstrap = b.bootstrap,
                storage = cli.broker_storage,
                "embedded broker (tansu) up"
            );
            cli.kafka.bootstrap_servers = b.bootstrap.clone();
            Some(b)
        }
    };
    cli.kafka.health_addr.clear();
    shelfguard_runtime::preflight::reach(&cli.kafka).await?;
    admin::ensure_topics(&cli.kafka, cli.partitions, cli.replication).await?;
    info!(partitions = cli.partitions, "topics ready");

    // The floor channel, one fresh token per simulated store (printed below, local runs only).
    let stores: Vec<(String, String)> = (0..cli.sim.stores)
        .map(|i| {
            (
                shelfguard_simulator::store_id(i),
                uuid::Uuid::new_v4().simple().to_string(),
            )
        })
        .collect();
    let k = cli.kafka.clone();
    let mut tasks = JoinSet::new();
    // The catalogue comes first, as in a store: services load it when they start.
    let (published, catalogue) = tokio::sync::oneshot::channel();
    let (kk, s) = (k.clone(), shutdown.clone());
    tasks.spawn(named("simulator", async move {
        shelfguard_simulator::run_with(&kk, cli.sim, s, Some(published)).await
    }));
    if catalogue.await.is_err() {
        shutdown.cancel();
    }
    let inventory = shelfguard_inventory::Config {
        kafka: k.clone(),
        policy: shelfguard_inventory::ledger::Policy {
            reorder_retry_after_secs: cli.reorder_retry_after_secs,
            ..Default::default()
        },
    };
    tasks.spawn(named(
        "inventory",
        shelfguard_inventory::run(inventory, shutdown.clone()),
    ));
    let detector = shelfguard_stockout_detector::Config {
        kafka: k.clone(),
        policy: Default::default(),
    };
    tasks.spawn(named(
        "stockout-detector",
        shelfguard_stockout_detector::run(detector, shutdown.clone()),
    ));
    let offers = shelfguard_offer_generator::Config {
        kafka: k.clone(),
        policy: Default::default(),
    };
    tasks.spawn(named(
        "offer-generator",
        shelfguard_offer_generator::run(offers, shutdown.clone()),
    ));
    let floor = shelfguard_floor_channel::Config {
        kafka: k.clone(),
        http_addr: cli.floor_http_addr.clone(),
        store_tokens: shelfguard_floor_channel::Secret(
            stores
                .iter()
                .map(|(s, t)| format!("{s}={t}"))
                .collect::<Vec<_>>()
                .join(","),
        ),
        webhooks: Default::default(),
        currency: cli.floor_currency.clone(),
        delivery: Default::default(),
    };
    tasks.spawn(named(
        "floor-channel",
        shelfguard_floor_channel::run(floor, shutdown.clone()),
    ));
    let (kk, s) = (k.clone(), shutdown.clone());
    tasks.spawn(named("console", async move {
        shelfguard_local::console::follow(&kk, s).await
    }));
    println!(
        "shelfguard is running on {}: offers for the floor staff and a summary every 10 s appear \
         below (Ctrl-C stops). Logs: {}",
        k.bootstrap_servers,
        if cli.log_file == "-" {
            "this terminal"
        } else {
            cli.log_file.as_str()
        }
    );
    println!(
        "Floor staff consoles (open on a phone or a browser; the token is kept by the device):"
    );
    let urls = shelfguard_local::lan::console_urls(
        &cli.floor_http_addr,
        shelfguard_local::lan::lan_ipv4(),
    );
    for (store, token) in &stores {
        println!("  {store}: {}/stores/{store}#token={token}", urls.base);
    }
    if let Some(note) = urls.note {
        println!("{note}");
    }

    let mut failed = false;
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r.unwrap_or_else(|join| Err(join.into())) {
            error!(error = ?e, "a component stopped");
            failed = true;
            shutdown.cancel();
        }
    }
    if failed {
        anyhow::bail!("stopped after a failure (see the log above)")
    } else {
        Ok(())
    }
}

async fn named(name: &'static str, f: impl std::future::Future<Output = Result<()>>) -> Result<()> {
    f.await.map_err(|e| e.context(name))
}
