use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shelfguard_runtime::telemetry::init();
    let config = shelfguard_floor_channel::Config::parse();
    shelfguard_floor_channel::run(config, shelfguard_runtime::shutdown::on_signals()).await
}
