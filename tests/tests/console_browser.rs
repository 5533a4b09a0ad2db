//! The floor console in a real browser at phone size (headless Chromium, 390×844, driven by
//! playwright-core): the page asks for the store token and keeps asking (through its re-renders)
//! while the token is missing or refused, opens once the valid one is typed, a failed reorder is
//! published upstream, the offer card is pushed to the page (compact, the code once, the gift value
//! with its currency, a decline dialog that names the offer), staff click Accept and the answer
//! arrives on `floor.responses.v1`. The channel then restarts with other tokens and the page asks
//! again. Each check is in `tests/browser/console.mjs`.
//!
//! A second test does the same for a shelf check (`tests/browser/checks.mjs`): the check card,
//! **Empty**, and the offer card that takes its place.
//!
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules`; `.ci/run` installs both.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shelfguard_e2e::{Env, artifacts_dir, fixtures::*, free_port, wait_http};
use shelfguard_events::floor::shelf_check_event::Change as CheckChange;
use shelfguard_events::floor::{
    Answer, CheckAnswered, OfferEvent, ShelfCheckEvent, ShelfFinding, StaffResponse,
    offer_event::Change,
};
use shelfguard_events::topics::*;
use shelfguard_events::warehouse::ReorderRequest;
use tokio::io::{AsyncBufReadExt, BufReader};

const WAIT: Duration = Duration::from_secs(60);
const CHROMIUM: &str = "/usr/bin/chromium";
/// With a hyphen, as real store ids have: the header must not break it over two lines.
const STORE: &str = "S-002";
const TOKEN: &str = "browser-test-token-S-002";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

/// Fails (never skips) when the browser or the driver is missing.
fn require_browser() -> Result<()> {
    if !std::path::Path::new(CHROMIUM).exists() {
        bail!("{CHROMIUM} is missing: `.ci/run` installs it (apt-get install chromium)");
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        bail!(
            "tests/browser/node_modules is missing: `.ci/run` installs it (npm ci --prefix tests/browser)"
        );
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_err()
    {
        bail!("node is missing: the browser test runs tests/browser/console.mjs with node");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn staff_see_the_offer_in_the_browser_and_accept_it() -> Result<()> {
    require_browser()?;
    let env = Env::start("console_browser").await?;
    for p in [
        product("GOLD-14", "coconut-oil", "Gold", 14.0, 799),
        product("GOLD-28", "coconut-oil", "Gold", 28.0, 1399),
    ] {
        env.publish(CATALOG_PRODUCTS, &p.sku.clone(), &p).await?;
    }
    let _inv = env.spawn("inventory", &[])?;
    let _det = env.spawn("stockout-detector", &[])?;
    // Free after the first failure, so the card shows the strongest gesture.
    let _off = env.spawn("offer-generator", &[("FREE_AFTER_FAILURES", "1")])?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let tokens = format!("{STORE}={TOKEN},S-003=browser-test-token-S-003");
    // FLOOR_CURRENCY is left at its default (EUR).
    let channel = env.spawn(
        "floor-channel",
        &[("HTTP_ADDR", &addr), ("STORE_TOKENS", &tokens)],
    )?;
    wait_http(&format!("http://{addr}/stores/{STORE}"), WAIT)
        .await
        .with_context(|| format!("floor-channel log: {}", channel.log.display()))?;

    // The shelf empties and inventory asks the warehouse.
    for (sku, units) in [("GOLD-14", 3), ("GOLD-28", 8)] {
        env.publish(STORE_STOCK_MOVEMENTS, STORE, &count(STORE, sku, units))
            .await?;
    }
    env.publish(STORE_SALES, STORE, &sale(STORE, "GOLD-14", 3))
        .await?;
    let (req, _) = env
        .tail(WAREHOUSE_REORDER_REQUESTS)?
        .until::<ReorderRequest>(WAIT, |r| r.sku == "GOLD-14")
        .await?;

    // The console asks for the token, then opens (empty, live) before the warehouse answers.
    let screenshot = artifacts_dir()?.join("console.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut node = tokio::process::Command::new("node")
        .arg(browser_dir().join("console.mjs"))
        .arg(format!("http://{addr}/stores/{STORE}"))
        .arg(TOKEN)
        .arg(&screenshot)
        .arg("€")
        .current_dir(browser_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting node")?;
    let mut lines = BufReader::new(node.stdout.take().context("node stdout")?).lines();
    let next_line = async |lines: &mut tokio::io::Lines<_>| -> Result<String> {
        tokio::time::timeout(WAIT * 2, lines.next_line())
            .await
            .context("the browser script said nothing in time")??
            .context("the browser script ended early (see its stderr above)")
    };
    assert_eq!(next_line(&mut lines).await?, "FORM_KEPT");
    assert_eq!(next_line(&mut lines).await?, "READY");

    // The warehouse fails the reorder: the offer is pushed to the open page.
    let mut outcome = failed(STORE, "GOLD-14", 1, "supplier out of stock");
    outcome.reorder_id = req.reorder_id.clone();
    let responses = env.tail(FLOOR_RESPONSES)?;
    env.publish(WAREHOUSE_REORDER_OUTCOMES, STORE, &outcome)
        .await?;
    let (issued, _) = env
        .tail(FLOOR_OFFERS)?
        .until::<OfferEvent>(WAIT, |e| matches!(e.change, Some(Change::Issued(_))))
        .await?;
    let accepted = next_line(&mut lines).await?;
    assert_eq!(accepted, format!("ACCEPTED {}", issued.offer_id));
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );

    // The click became a staff answer on the responses topic.
    let (resp, _) = responses
        .until::<StaffResponse>(WAIT, |r| r.offer_id == issued.offer_id)
        .await?;
    assert_eq!(resp.answer, Answer::Accept as i32);
    assert_eq!(
        (
            resp.store_id.as_str(),
            resp.sku.as_str(),
            resp.channel.as_str()
        ),
        (STORE, "GOLD-14", "console")
    );

    // The channel restarts with new tokens: the open page's token is refused and it asks again.
    channel.stop().await?;
    let rotated = format!("{STORE}=rotated-token-of-{STORE}");
    let channel = env.spawn(
        "floor-channel",
        &[("HTTP_ADDR", &addr), ("STORE_TOKENS", &rotated)],
    )?;
    wait_http(&format!("http://{addr}/stores/{STORE}"), WAIT)
        .await
        .with_context(|| format!("restarted floor-channel log: {}", channel.log.display()))?;
    assert_eq!(next_line(&mut lines).await?, "ASKED_AGAIN");
    let status = tokio::time::timeout(WAIT, node.wait()).await??;
    assert!(status.success(), "browser script failed: {status}");
    Ok(())
}

/// A shelf check of `sku` requested in [`STORE`], as offer-generator publishes it.
fn check_requested(check_id: &str, sku: &str, name: &str) -> ShelfCheckEvent {
    shelfguard_e2e::fixtures::check_requested(STORE, check_id, sku, name, now_ms() + 3_600_000)
}

fn check_step(check_id: &str, sku: &str, step: &str, change: CheckChange) -> ShelfCheckEvent {
    shelfguard_e2e::fixtures::check_step(STORE, check_id, sku, step, change)
}

/// A shelf check in the browser: the test plays offer-generator (it publishes the
/// `ShelfCheckEvent`s and the offer itself; no pipeline runs), the check card is pushed to the
/// page, staff tap **Empty**, the `StaffResponse` with that `check_id` and EMPTY arrives on
/// `floor.responses.v1`; offer-generator's `Answered` and then its offer for the same SKU are
/// published, and the page shows the offer card where the check card was. A second check is
/// answered **Stock is there** with a count of 5. Each browser-side check is in
/// `tests/browser/checks.mjs`; it saves `target/e2e-artifacts/console-check.png`.
#[tokio::test(flavor = "multi_thread")]
async fn staff_answer_a_shelf_check_and_its_offer_takes_its_place() -> Result<()> {
    require_browser()?;
    let env = Env::start("console_browser_checks").await?;
    let addr = format!("127.0.0.1:{}", free_port()?);
    let tokens = format!("{STORE}={TOKEN}");
    let channel = env.spawn(
        "floor-channel",
        &[("HTTP_ADDR", &addr), ("STORE_TOKENS", &tokens)],
    )?;
    let base = format!("http://{addr}");
    wait_http(&format!("{base}/stores/{STORE}"), WAIT)
        .await
        .with_context(|| format!("floor-channel log: {}", channel.log.display()))?;
    let screenshot = artifacts_dir()?.join("console-check.png");
    let _ = std::fs::remove_file(&screenshot);
    let mut node = tokio::process::Command::new("node")
        .arg(browser_dir().join("checks.mjs"))
        .arg(format!("{base}/stores/{STORE}"))
        .arg(TOKEN)
        .arg(&screenshot)
        .current_dir(browser_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting node")?;
    let mut lines = BufReader::new(node.stdout.take().context("node stdout")?).lines();
    let next_line = async |lines: &mut tokio::io::Lines<_>| -> Result<String> {
        tokio::time::timeout(WAIT * 2, lines.next_line())
            .await
            .context("the browser script said nothing in time")??
            .context("the browser script ended early (see its stderr above)")
    };
    assert_eq!(next_line(&mut lines).await?, "READY");

    // offer-generator (played here) asks staff to look at the shelf.
    let check = format!("{STORE}/GOLD-14/S1/check");
    let responses = env.tail(FLOOR_RESPONSES)?;
    env.publish(
        FLOOR_CHECKS,
        STORE,
        &check_requested(&check, "GOLD-14", "Coco Gold Coconut Oil"),
    )
    .await?;
    assert_eq!(next_line(&mut lines).await?, format!("ANSWERED {check}"));
    let (resp, _) = responses
        .until::<StaffResponse>(WAIT, |r| r.check_id == check)
        .await?;
    assert_eq!(resp.finding, ShelfFinding::Empty as i32, "{resp:?}");
    assert_eq!(
        (
            resp.store_id.as_str(),
            resp.sku.as_str(),
            resp.channel.as_str(),
            resp.counted
        ),
        (STORE, "GOLD-14", "console", None)
    );
    assert!(resp.offer_id.is_empty(), "{resp:?}");

    // offer-generator applies it: Answered on floor.checks.v1 (awaited on a stream of our own,
    // so the channel has dropped the check), then the confirmed stockout's offer for the SKU.
    let mut stream = reqwest::Client::new()
        .get(format!("{base}/api/stores/{STORE}/offers/stream"))
        .bearer_auth(TOKEN)
        .send()
        .await?;
    env.publish(
        FLOOR_CHECKS,
        STORE,
        &check_step(
            &check,
            "GOLD-14",
            "answered",
            CheckChange::Answered(CheckAnswered {
                finding: ShelfFinding::Empty as i32,
                by: resp.by.clone(),
                counted: None,
            }),
        ),
    )
    .await?;
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !seen.contains("\"ended\":\"answered\"") {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .with_context(|| format!("no removal of the check on the stream; got:\n{seen}"))??
            .with_context(|| format!("stream ended; got:\n{seen}"))?;
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    let offer_id = format!("{STORE}/GOLD-14/S1/offer");
    env.publish(
        FLOOR_OFFERS,
        STORE,
        &offer_issued(STORE, &offer_id, now_ms() + 3_600_000),
    )
    .await?;
    assert_eq!(next_line(&mut lines).await?, format!("OFFER {offer_id}"));

    // A second check, answered "Stock is there" with a count.
    let second = format!("{STORE}/VAN-14/S1/check");
    env.publish(
        FLOOR_CHECKS,
        STORE,
        &check_requested(&second, "VAN-14", "Vanilla Bean Ice Cream"),
    )
    .await?;
    assert_eq!(next_line(&mut lines).await?, format!("FOUND {second}"));
    let (resp, _) = responses
        .until::<StaffResponse>(WAIT, |r| r.check_id == second)
        .await?;
    assert_eq!(
        (resp.finding, resp.counted, resp.sku.as_str()),
        (ShelfFinding::StockIsThere as i32, Some(5), "VAN-14")
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    let status = tokio::time::timeout(WAIT, node.wait()).await??;
    assert!(status.success(), "browser script failed: {status}");
    Ok(())
}
