use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shelfguard_runtime::telemetry::init();
    let config = shelfguard_inventory::Config::parse();
    shelfguard_runtime::telemetry::exit(
        shelfguard_inventory::run(config, shelfguard_runtime::shutdown::on_signals()).await,
    )
}
