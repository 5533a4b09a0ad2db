//! The floor console in a real browser at phone size (headless Chromium, 390×844, driven by
//! playwright-core): the page asks for the store token and keeps asking (through its re-renders)
//! while the token is missing or refused, opens once the valid one is typed, a failed reorder is
//! published upstream, the offer card is pushed to the page (compact, the code once, the gift value
//! with its currency, a decline dialog that names the offer), staff click Accept and the answer
//! arrives on `floor.responses.v1`. The channel then restarts with other tokens and the page asks
//! again. Each check is in `tests/browser/console.mjs`.
//!
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules`; `.ci/run` installs both.
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use shelfguard_e2e::{Env, artifacts_dir, fixtures::*, free_port, wait_http};
use shelfguard_events::floor::{Answer, OfferEvent, StaffResponse, offer_event::Change};
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
