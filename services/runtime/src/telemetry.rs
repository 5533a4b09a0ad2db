//! Logging: `RUST_LOG` filter, JSON lines when `LOG_FORMAT=json` (with the current span's fields,
//! e.g. the `trace_id` of the record being handled: see [`crate::trace`]).
use tracing_subscriber::EnvFilter;

/// Services at info; librdkafka and the embedded broker (tansu, local runs only) at warn.
pub const DEFAULT_FILTER: &str = "info,librdkafka=warn,rdkafka=warn,tansu_broker=warn,tansu_storage=warn,tansu_service=warn,tansu_sans_io=warn,tansu_schema=warn,tansu_auth=warn";

/// When logging was set up: the process start, as near as a service can tell.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Time since [`init`] (or since the first call, without it).
pub fn since_start() -> std::time::Duration {
    STARTED.get_or_init(std::time::Instant::now).elapsed()
}

pub fn init() {
    let _ = since_start();
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
        // Each line carries the fields of the current span (a record's `trace_id`, `span_id`,
        // topic, partition, offset), once.
        builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
}

/// A binary's exit: an error is logged as one line (its causes joined with `: `, no backtrace,
/// in JSON with `LOG_FORMAT=json`) and the process exits with status 1.
pub fn exit(result: anyhow::Result<()>) -> std::process::ExitCode {
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Logs to the file at `path` (appended; `RUST_LOG` filter as [`init`], no colours), and only
/// errors to the terminal: for command 1, whose terminal shows offers and a live summary.
pub fn init_to_file(path: &std::path::Path) -> std::io::Result<()> {
    let _ = since_start();
    use tracing_subscriber::filter::LevelFilter;
    use tracing_subscriber::prelude::*;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let to_file = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .with_filter(filter);
    let to_terminal = tracing_subscriber::fmt::layer()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .with_filter(LevelFilter::ERROR);
    let _ = tracing_subscriber::registry()
        .with(to_file)
        .with(to_terminal)
        .try_init();
    Ok(())
}
