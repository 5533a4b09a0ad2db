use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    shelfguard_runtime::telemetry::init();
    let config = shelfguard_floor_channel::Config::parse();
    shelfguard_runtime::telemetry::exit(
        shelfguard_floor_channel::run(config, shelfguard_runtime::shutdown::on_signals()).await,
    )
}
