use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shelfguard_runtime::telemetry::init();
    let config = shelfguard_inventory::Config::parse();
    shelfguard_inventory::run(config, shelfguard_runtime::shutdown::on_signals()).await
}
