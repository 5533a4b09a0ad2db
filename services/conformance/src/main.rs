//! `shelfguard-conformance`: run the kit against a deployment (see `--help` and
//! docs/integrating.md). Exits 0 when every check passed, 1 when one failed, 2 when it could
//! not run at all.
use clap::Parser as _;

#[tokio::main]
async fn main() {
    let config = shelfguard_conformance::Config::parse();
    match shelfguard_conformance::run(&config, &mut |line| println!("{line}")).await {
        Ok(report) if report.ok() => {}
        Ok(_) => std::process::exit(1),
        Err(e) => {
            eprintln!("shelfguard-conformance: {e:#}");
            std::process::exit(2);
        }
    }
}
