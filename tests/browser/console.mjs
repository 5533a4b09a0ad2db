// Drives the floor staff console in headless Chromium for tests/tests/console_browser.rs.
//
//   node console.mjs <console url with #token=...> <screenshot path>
//
// Opens the console, prints READY once it is live (connected, snapshot received), waits for an
// offer card to be pushed, saves a screenshot, clicks Accept, waits until the console says the
// answer was sent (after the channel's 202) and prints `ACCEPTED <offer id>`. Any failure exits
// non-zero with the reason.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, screenshot] = process.argv.slice(2);
if (!url || !screenshot) {
  console.error("usage: node console.mjs <url> <screenshot.png>");
  process.exit(2);
}
const WAIT = 60_000;
const userDataDir = mkdtempSync(join(tmpdir(), "shelfguard-chromium-"));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 390, height: 760 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => console.error("[page]", m.type(), m.text()));
  page.on("pageerror", (e) => console.error("[page error]", e.message));
  await page.goto(url);
  await page.locator("#status.live").waitFor({ timeout: WAIT });
  console.log("READY");
  const card = page.locator("article.card").first();
  await card.waitFor({ timeout: WAIT });
  const offerId = await card.getAttribute("data-offer-id");
  await page.screenshot({ path: screenshot, fullPage: true });
  await card.getByRole("button", { name: "Accept" }).click();
  // Shown once the channel answered 202 (the answer is on the broker).
  await card.getByText(/Accept sent|Accepted/).waitFor({ timeout: WAIT });
  console.log(`ACCEPTED ${offerId}`);
} catch (e) {
  console.error(`console test failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
