//! The services in one executable for the end-to-end tests, which start, kill and
//! restart them as processes: `shelfguard-svc <inventory|stockout-detector|offer-generator|floor-channel> [flags]`.
//! Each runs exactly as its own binary does (same `Config`, same `run`).
use clap::Parser;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    shelfguard_runtime::telemetry::init();
    let mut args = std::env::args();
    let _ = args.next();
    let service = args.next().unwrap_or_default();
    let rest = std::iter::once(service.clone()).chain(args);
    let shutdown = shelfguard_runtime::shutdown::on_signals();
    match service.as_str() {
        "inventory" => {
            shelfguard_inventory::run(shelfguard_inventory::Config::parse_from(rest), shutdown)
                .await
        }
        "stockout-detector" => {
            shelfguard_stockout_detector::run(
                shelfguard_stockout_detector::Config::parse_from(rest),
                shutdown,
            )
            .await
        }
        "offer-generator" => {
            shelfguard_offer_generator::run(
                shelfguard_offer_generator::Config::parse_from(rest),
                shutdown,
            )
            .await
        }
        "floor-channel" => {
            shelfguard_floor_channel::run(
                shelfguard_floor_channel::Config::parse_from(rest),
                shutdown,
            )
            .await
        }
        other => anyhow::bail!("unknown service {other:?}"),
    }
}
