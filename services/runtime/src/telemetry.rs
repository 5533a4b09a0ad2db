//! Logging: `RUST_LOG` filter, JSON lines when `LOG_FORMAT=json`.
use tracing_subscriber::EnvFilter;

/// Services at info; librdkafka and the embedded broker (tansu, local runs only) at warn.
pub const DEFAULT_FILTER: &str = "info,librdkafka=warn,rdkafka=warn,tansu_broker=warn,tansu_storage=warn,tansu_service=warn,tansu_sans_io=warn,tansu_schema=warn,tansu_auth=warn";

pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v == "json");
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
