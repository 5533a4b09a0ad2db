//! The services in one executable for the end-to-end tests, which start, kill and
//! restart them as processes: `shelfguard-svc <inventory|stockout-detector|offer-generator|floor-channel> [flags]`.
//! Each runs exactly as its own binary does (same `Config`, same `run`).
#[tokio::main]
async fn main() -> std::process::ExitCode {
    shelfguard_runtime::telemetry::init();
    shelfguard_runtime::telemetry::exit(
        shelfguard_e2e::run_service(std::env::args().skip(1).collect()).await,
    )
}
