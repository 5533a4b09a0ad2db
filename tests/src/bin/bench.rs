//! The benchmark: raw broker figures and the services' figures side by side, in one run.
//!
//! `cargo run --release -p shelfguard-e2e --bin bench -- [--keys 1000000] [--runs 25]
//! [--lines 20000] [--echo 50000] [--json]`
//!
//! Starts an embedded broker (tansu, memory storage) and measures, on it:
//! - raw: 1-hop and 4-hop produce → consume latency and echo throughput (one output per input,
//!   and inventory's volume: an output and a changelog record, each acknowledged) with bare
//!   rdkafka clients configured as the services configure theirs;
//! - services, each its own process (this executable serves them: `bench svc <service>`):
//!   failed reorder outcome → offer latency, inventory's throughput, inventory's RSS and
//!   changelog bytes per state key, its restore rate next to a plain reader's read rate of the
//!   same changelog, and process start → ready with an empty changelog and with `--keys` keys.
//!
//! Prints a Markdown table (the README's Measuring table) or, with `--json`, JSON.
use anyhow::Result;
use clap::Parser;
use shelfguard_e2e::bench::{self, Sizes};

#[derive(Parser)]
#[command(about = "Raw broker figures and the services' figures side by side")]
struct Cli {
    /// State keys in inventory's changelog for the restore and memory figures.
    #[arg(long, default_value_t = 1_000_000)]
    keys: usize,
    /// Latency samples (raw and pipeline), after warm-up runs.
    #[arg(long, default_value_t = 25)]
    runs: usize,
    /// Sale lines for inventory's throughput.
    #[arg(long, default_value_t = 20_000)]
    lines: usize,
    /// Input records of each raw echo.
    #[arg(long, default_value_t = 50_000)]
    echo: usize,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if args.get(1).is_some_and(|a| a == "svc") {
        // A service process of the benchmark, exactly as its own binary runs it.
        shelfguard_runtime::telemetry::init();
        return shelfguard_runtime::telemetry::exit(
            rt.block_on(shelfguard_e2e::run_service(args[2..].to_vec())),
        );
    }
    let cli = Cli::parse();
    match rt.block_on(measure(cli, args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn measure(cli: Cli, args: Vec<String>) -> Result<()> {
    let sizes = Sizes {
        keys: cli.keys.max(1),
        runs: cli.runs.max(1),
        lines: cli.lines.max(10),
        echo: cli.echo.max(1),
    };
    let exe = std::env::current_exe()?;
    let mut report = bench::run(sizes, exe, true).await?;
    report.command = args.join(" ");
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&report.json())?);
    } else {
        let profile = if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        };
        println!(
            "shelfguard bench ({profile} profile) on {}, load average {:.1} at start, {:.1} at end: {}",
            report.machine, report.load.0, report.load.1, report.command
        );
        print!("{}", report.table());
    }
    Ok(())
}
