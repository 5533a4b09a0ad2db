use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shelfguard_runtime::telemetry::init();
    let config = shelfguard_offer_generator::Config::parse();
    shelfguard_offer_generator::run(config, shelfguard_runtime::shutdown::on_signals()).await
}
