// Drives the floor staff console's shelf checks in headless Chromium at phone size for
// tests/tests/console_browser.rs (staff_answer_a_shelf_check_and_its_offer_takes_its_place).
//
//   node checks.mjs <console url, no token> <store token> <screenshot path>
//
// Prints one line per step; the Rust test awaits them in this order (and publishes what the
// next step waits for in between):
//   READY            the console is live (token from the link's fragment, stream open)
//   ANSWERED <id>    a shelf check card was pushed: marked "Shelf check", the question in large
//                    text, the reason, the location, big Empty and Stock is there buttons, less
//                    than half the screen high; Empty was tapped, the channel answered 202 and
//                    the card left the page
//   OFFER <id>       the offer for the same SKU was pushed: its card is on the page and no check
//                    card is left (the API's check list is empty too)
//   FOUND <id>       a second check card came, visually distinct from the offer card beside it
//                    (screenshot saved); 5 was typed in its count field, kept through a
//                    re-render, and Stock is there was tapped (202, the card left)
// Any failure exits non-zero with the reason.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, token, screenshot] = process.argv.slice(2);
if (!url || !token || !screenshot) {
  console.error("usage: node checks.mjs <url> <token> <screenshot.png>");
  process.exit(2);
}
const WAIT = 60_000;
const PHONE = { width: 390, height: 844 };
const store = decodeURIComponent(new URL(url).pathname.split("/")[2]);

function check(ok, what) {
  if (!ok) throw new Error(what);
}

// Resolves with the status of the next answer POST for `kind` ("checks" or "offers").
function nextAnswer(page, kind) {
  return page
    .waitForResponse((r) => r.request().method() === "POST" && r.url().includes(`/${kind}/`) && r.url().endsWith("/answer"), { timeout: WAIT })
    .then((r) => r.status());
}

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
    viewport: PHONE,
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
    locale: "en-US",
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => console.error("[page]", m.type(), m.text()));
  page.on("pageerror", (e) => console.error("[page error]", e.message));
  const checksOfApi = () => page.evaluate(async ([store, token]) => {
    const r = await fetch(`/api/stores/${encodeURIComponent(store)}/checks`, { headers: { Authorization: `Bearer ${token}` } });
    return (await r.json()).checks;
  }, [store, token]);

  // 1. A device set up with the store's link: live at once.
  await page.goto(`${url}#token=${encodeURIComponent(token)}`);
  await page.locator("#status.live").waitFor({ timeout: WAIT });
  console.log("READY");

  // 2. The check card.
  const checkCard = page.locator("article.card.check").first();
  await checkCard.waitFor({ timeout: 2 * WAIT });
  const checkId = await checkCard.getAttribute("data-check-id");
  const sku = await checkCard.getAttribute("data-sku");
  const listed = (await checksOfApi()).find((c) => c.check_id === checkId);
  check(listed, `check ${checkId} is not in the API's list`);
  const text = await checkCard.innerText();
  check(/shelf check/i.test(text), `the card does not say it is a shelf check:\n${text}`);
  check(text.includes(listed.question), `the card lacks the question "${listed.question}":\n${text}`);
  check(text.includes(listed.product.location), `the card lacks the location:\n${text}`);
  check(text.toLowerCase().includes(listed.reason.slice(0, 20).toLowerCase()), `the card lacks the reason "${listed.reason}":\n${text}`);
  const size = (l) => l.evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
  const [questionSize, reasonSize] = [await size(checkCard.locator(".question")), await size(checkCard.locator(".why"))];
  check(questionSize >= 18 && questionSize > reasonSize, `the question is not large: ${questionSize}px (reason ${reasonSize}px)`);
  const emptyButton = checkCard.getByRole("button", { name: "Empty", exact: true });
  const foundButton = checkCard.getByRole("button", { name: "Stock is there" });
  for (const [name, b] of [["Empty", emptyButton], ["Stock is there", foundButton]]) {
    const box = await b.boundingBox();
    check(box && box.height >= 44 && box.width >= 88, `the ${name} button is small: ${JSON.stringify(box)}`);
  }
  const cardBox = await checkCard.boundingBox();
  check(cardBox.height < PHONE.height / 2, `one check card is ${cardBox.height}px high on a ${PHONE.height}px screen`);

  // 3. Empty: the answer goes out (202) and the card leaves.
  const status = nextAnswer(page, "checks");
  await emptyButton.click();
  check((await status) === 202, `the channel answered ${await status} to Empty`);
  await page.locator(`article.check[data-check-id="${checkId}"]`).waitFor({ state: "detached", timeout: WAIT });
  console.log(`ANSWERED ${checkId}`);

  // 4. The offer for the same SKU takes the check's place.
  const offerCard = page.locator(`article.card[data-offer-id][data-sku="${sku}"]`).first();
  await offerCard.waitFor({ timeout: 2 * WAIT });
  const offerId = await offerCard.getAttribute("data-offer-id");
  check((await page.locator("article.check").count()) === 0, "a check card is still on the page beside the offer");
  // The channel dropped the check too (the Rust test saw offer-generator's Answered removal on
  // the stream before it published the offer).
  check(!(await checksOfApi()).some((c) => c.check_id === checkId), `check ${checkId} is still live in the API`);
  console.log(`OFFER ${offerId}`);

  // 5. A second check beside the offer: distinct from it; a typed count survives a re-render.
  const second = page.locator("article.card.check").first();
  await second.waitFor({ timeout: 2 * WAIT });
  const secondId = await second.getAttribute("data-check-id");
  const edge = (l) => l.evaluate((e) => getComputedStyle(e).borderLeftColor + " " + getComputedStyle(e).backgroundColor);
  const [checkLook, offerLook] = [await edge(second), await edge(offerCard)];
  check(checkLook !== offerLook, `the check card looks like the offer card (${checkLook})`);
  const count = second.locator("input.count");
  await count.fill("5");
  await page.evaluate(() => render());
  check((await second.locator("input.count").inputValue()) === "5", "the typed count was lost in a re-render");
  await page.screenshot({ path: screenshot });
  const found = nextAnswer(page, "checks");
  await second.getByRole("button", { name: "Stock is there" }).click();
  check((await found) === 202, `the channel answered ${await found} to Stock is there`);
  await page.locator(`article.check[data-check-id="${secondId}"]`).waitFor({ state: "detached", timeout: WAIT });
  check(await offerCard.isVisible(), "the offer card left with the check");
  console.log(`FOUND ${secondId}`);
} catch (e) {
  console.error(`checks test failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
