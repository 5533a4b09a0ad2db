//! Command 1 as a user runs it: the local runner starts its broker, services and simulator,
//! and offers appear on the console within a minute; SIGTERM stops it cleanly.
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
