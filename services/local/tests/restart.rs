//! Command 1 restarted on persistent storage (SQLite): quiet (no error lines, no topic created
//! twice), the earlier run's offers shown as restored, and none of them withdrawn because the
//! simulator counted every shelf full again.
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

fn start(dir: &Path, log: &str) -> anyhow::Result<(Child, Lines<BufReader<ChildStdout>>)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shelfguard-local"))
        .current_dir(dir)
        .env("BROKER_PORT", "0")
        .env("BROKER_STORAGE", "sqlite://shelfguard.db")
        .env("FLOOR_HTTP_ADDR", "127.0.0.1:0")
        .env("LOG_FILE", log)
        .env_remove("KAFKA_BOOTSTRAP_SERVERS")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    Ok((child, lines))
}

/// SIGTERM, a clean exit, and what it wrote on stderr.
async fn stop(child: Child) -> anyhow::Result<String> {
    let pid = child.id().expect("pid");
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()?;
    let out = tokio::time::timeout(Duration::from_secs(30), child.wait_with_output()).await??;
    assert!(
        out.status.success(),
        "clean exit after SIGTERM, got {}",
        out.status
    );
    Ok(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_on_sqlite_is_quiet_shows_the_offers_as_restored_and_withdraws_none()
-> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("shelfguard-restart-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;

    // Run 1: until three offers are out.
    let (child, mut lines) = start(&dir, "run1.log")?;
    let mut offers = 0;
    tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains("] OFFER") {
                offers += 1;
                if offers == 3 {
                    return anyhow::Ok(());
                }
            }
        }
        anyhow::bail!("run 1 ended before three offers")
    })
    .await??;
    let stderr = stop(child).await?;
    assert!(stderr.trim().is_empty(), "run 1 stderr: {stderr}");

    // Run 2 on the same storage: watch its first 20 s.
    let (child, mut lines) = start(&dir, "run2.log")?;
    let mut seen = Vec::new();
    let window = tokio::time::sleep(Duration::from_secs(20));
    tokio::pin!(window);
    loop {
        tokio::select! {
            _ = &mut window => break,
            line = lines.next_line() => match line? {
                Some(l) => seen.push(l),
                None => break,
            },
        }
    }
    let stderr = stop(child).await?;
    let text = seen.join("\n");
    assert!(stderr.trim().is_empty(), "run 2 stderr: {stderr}");
    let restored = seen
        .iter()
        .filter(|l| l.starts_with("[restored] OFFER"))
        .count();
    assert!(restored >= 3, "run 1's offers shown as restored:\n{text}");
    let withdrawn: Vec<&String> = seen
        .iter()
        .filter(|l| !l.starts_with("[restored]") && l.contains("] WITHDRAWN"))
        .collect();
    assert!(
        withdrawn.is_empty(),
        "withdrawn after the restart: {withdrawn:?}\n{text}"
    );
    let log = std::fs::read_to_string(dir.join("run2.log"))?;
    let errors: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("ERROR") || l.contains("TopicAlreadyExists"))
        .collect();
    assert!(errors.is_empty(), "run 2 logged errors: {errors:?}");
    assert!(
        log.contains("opening counts not sent again"),
        "the simulator saw the earlier run"
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
