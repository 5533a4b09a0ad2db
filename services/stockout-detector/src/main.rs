use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shelfguard_runtime::telemetry::init();
    let config = shelfguard_stockout_detector::Config::parse();
    shelfguard_stockout_detector::run(config, shelfguard_runtime::shutdown::on_signals()).await
}
