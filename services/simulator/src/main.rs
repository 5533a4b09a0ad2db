use clap::Parser;
use shelfguard_runtime::KafkaArgs;
use shelfguard_simulator::SimConfig;

/// Plays the store systems and the warehouse: catalogue, counts, POS baskets, reorder outcomes.
#[derive(Debug, Parser)]
#[command(
    name = "simulator",
    version,
    about = "Store and warehouse simulator for shelfguard."
)]
struct Cli {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    sim: SimConfig,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shelfguard_runtime::telemetry::init();
    let cli = Cli::parse();
    shelfguard_runtime::telemetry::exit(
        shelfguard_simulator::run(
            &cli.kafka,
            cli.sim,
            shelfguard_runtime::shutdown::on_signals(),
        )
        .await,
    )
}
