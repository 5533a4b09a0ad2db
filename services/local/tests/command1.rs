//! Command 1 as a user runs it: the local runner starts its broker, services and simulator,
//! and offers appear on the console within a minute; SIGTERM stops it cleanly. A second run
//! starts with no troubled SKUs at all: every offer it shows comes from the trouble the
//! simulator keeps bringing, and the terminal shows offers and summaries, not log lines.
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

#[tokio::test(flavor = "multi_thread")]
async fn offers_appear_within_a_minute_and_it_stops_cleanly() -> anyhow::Result<()> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shelfguard-local"))
        .env("BROKER_PORT", "0")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("RUST_LOG", "warn")
        .env(
            "LOG_FILE",
            std::env::temp_dir().join(format!("shelfguard-local-{}.log", std::process::id())),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let offer = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("OFFER") {
                return anyhow::Ok(line);
            }
        }
        anyhow::bail!("the runner ended without an offer")
    })
    .await??;
    assert!(offer.contains("is out, warehouse failed"), "{offer}");
    assert!(offer.contains("Code "), "{offer}");

    let pid = child.id().expect("pid");
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    assert!(status.success(), "clean exit after SIGTERM, got {status}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn trouble_keeps_coming_and_the_terminal_shows_offers_and_summaries_not_logs()
-> anyhow::Result<()> {
    let log =
        std::env::temp_dir().join(format!("shelfguard-local-keeps-{}.log", std::process::id()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_shelfguard-local"))
        .env("BROKER_PORT", "0")
        .env("FLOOR_HTTP_ADDR", "127.0.0.1:0")
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("RUST_LOG")
        .env("LOG_FILE", &log)
        // No trouble at the start: only the simulator's new trouble can make offers.
        .env("SIM_TROUBLED_PER_STORE", "0")
        .env("SIM_NEW_TROUBLE_EVERY_SECS", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stores = std::collections::BTreeSet::new();
    let mut summaries = 0;
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(line) = lines.next_line().await? {
            assert!(
                !(line.contains(" INFO ") || line.contains(" WARN ") || line.contains(" ERROR ")),
                "a log line on the terminal: {line}"
            );
            if line.contains("] OFFER") {
                assert!(
                    line.starts_with('[') && line.as_bytes().get(9) == Some(&b']'),
                    "local time first: {line}"
                );
                if let Some(store) = line.split_whitespace().nth(2) {
                    stores.insert(store.to_owned());
                }
            }
            if line.contains("] SUMMARY stockouts open") {
                summaries += 1;
            }
            seen.push(line);
            if stores.len() >= 2 && summaries >= 1 {
                return anyhow::Ok(());
            }
        }
        anyhow::bail!("the runner ended")
    })
    .await
    .map_err(|_| {
        anyhow::anyhow!(
            "no new trouble offers in two stores and a summary within 90 s:\n{}",
            seen.join("\n")
        )
    })??;
    let pid = child.id().expect("pid");
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait()).await??;
    assert!(status.success(), "clean exit after SIGTERM, got {status}");
    let logged = std::fs::read_to_string(&log)?;
    assert!(logged.contains("new trouble"), "the log file has the logs");
    let _ = std::fs::remove_file(&log);
    Ok(())
}
