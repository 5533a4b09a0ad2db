//! `cargo run -p shelfguard-local`: broker (unless KAFKA_BOOTSTRAP_SERVERS is set), topics,
//! the three services, the floor channel (console per store), the simulator and a log of offers,
//! until Ctrl-C.
use anyhow::Result;
use clap::Parser;
use shelfguard_local::cli::Cli;
use shelfguard_runtime::{admin, shutdown, telemetry};
use tokio::task::JoinSet;
use tracing::{error, info};

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
    // Never stopped: the embedded broker serves until the process has exited, so the clients of
    // the services close against a live broker at shutdown (stopping it first made them log
    // connection errors while they wound down).
    let _broker = std::mem::ManuallyDrop::new(match &cli.kafka_bootstrap_servers {
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
    });
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
        policy: cli.inventory.0,
    };
    tasks.spawn(named(
        "inventory",
        shelfguard_inventory::run(inventory, shutdown.clone()),
    ));
    let detector = shelfguard_stockout_detector::Config {
        kafka: k.clone(),
        policy: cli.detector.0,
    };
    tasks.spawn(named(
        "stockout-detector",
        shelfguard_stockout_detector::run(detector, shutdown.clone()),
    ));
    let offers = shelfguard_offer_generator::Config {
        kafka: k.clone(),
        policy: cli.offers.0,
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
        webhooks: cli.webhooks,
        currency: cli.floor_currency.clone(),
        delivery: cli.delivery,
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
