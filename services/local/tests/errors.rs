//! The mistakes a newcomer makes with command 1 end within seconds with one line that says what
//! is wrong and what to do: a busy broker port, an unreachable cluster, a bad storage URL.
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::process::Command;

/// Runs command 1 with `env` until it exits (at most 30 s): (success, elapsed, stderr+stdout).
async fn run(env: &[(&str, &str)]) -> anyhow::Result<(bool, Duration, String)> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_shelfguard-local"));
    cmd.env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env("RUST_LOG", "info")
        // Every log line on the terminal: the test sees all of them.
        .env("LOG_FILE", "-")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
        .await
        .map_err(|_| anyhow::anyhow!("command 1 with {env:?} did not stop within 30 s"))??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    Ok((out.status.success(), started.elapsed(), text))
}

/// The lines that say something went wrong (errors and warnings), besides the final one.
fn complaints(text: &str) -> Vec<&str> {
    text.lines()
        .filter(|l| l.contains("ERROR") || l.contains("WARN") || l.starts_with("Error"))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_busy_broker_port_names_broker_port() -> anyhow::Result<()> {
    let busy = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = busy.local_addr()?.port().to_string();
    let (ok, took, text) = run(&[("BROKER_PORT", &port)]).await?;
    assert!(!ok, "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let said = complaints(&text);
    assert_eq!(said.len(), 1, "one line: {text}");
    assert!(said[0].contains(&format!("port {port}")), "{text}");
    assert!(said[0].contains("BROKER_PORT"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_cluster_names_the_address_and_the_setting() -> anyhow::Result<()> {
    let nowhere = {
        let l = std::net::TcpListener::bind("127.0.0.1:0")?;
        format!("127.0.0.1:{}", l.local_addr()?.port())
    };
    let (ok, took, text) = run(&[
        ("KAFKA_BOOTSTRAP_SERVERS", &nowhere),
        ("KAFKA_CONNECT_TIMEOUT_SECS", "2"),
    ])
    .await?;
    assert!(!ok, "{text}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let said = complaints(&text);
    assert_eq!(said.len(), 1, "one line: {text}");
    assert!(said[0].contains(&nowhere), "{text}");
    assert!(said[0].contains("KAFKA_BOOTSTRAP_SERVERS"), "{text}");
    assert!(said[0].contains("KAFKA_CONNECT_TIMEOUT_SECS"), "{text}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_bad_storage_url_lists_the_accepted_forms() -> anyhow::Result<()> {
    for bad in ["bogus://x", "sqlite:///tmp/shelfguard.db", "not a url"] {
        let (ok, took, text) = run(&[("BROKER_STORAGE", bad), ("BROKER_PORT", "0")]).await?;
        assert!(!ok, "{bad}: {text}");
        assert!(took < Duration::from_secs(10), "{bad}: took {took:?}");
        assert!(
            text.contains("BROKER_STORAGE") || text.contains("--broker-storage"),
            "{bad}: {text}"
        );
        assert!(text.contains("memory://tansu/"), "{bad}: {text}");
        assert!(text.contains("sqlite://FILE.db"), "{bad}: {text}");
        assert!(!text.contains("Url {"), "no debug struct: {text}");
    }
    Ok(())
}
