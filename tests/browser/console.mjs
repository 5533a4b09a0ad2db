// Drives the floor staff console in headless Chromium at phone size for
// tests/tests/console_browser.rs.
//
//   node console.mjs <console url, no token> <store token> <screenshot path> <currency text>
//
// Prints one line per step; the Rust test awaits them in this order:
//   FORM_KEPT      without a token, then with a stale one, the token form is up and stays up (with
//                  what is being typed) across 25 s of re-renders (the page clock is advanced, not
//                  waited for); "No offers right now" is never shown meanwhile
//   READY          the valid token was entered: the console is live (stream open, snapshot in)
//   ACCEPTED <id>  an offer card was pushed; it is compact, shows the code once, the gift value
//                  with the currency, and a decline dialog naming the offer whose confirm button
//                  does not look like Accept; a screenshot was saved; Accept was clicked and the
//                  channel answered 202
//   ASKED_AGAIN    the channel restarted with other tokens: the form is back
// Any failure exits non-zero with the reason.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [url, token, screenshot, currencyText] = process.argv.slice(2);
if (!url || !token || !screenshot || !currencyText) {
  console.error("usage: node console.mjs <url> <token> <screenshot.png> <currency text>");
  process.exit(2);
}
const WAIT = 60_000;
const PHONE = { width: 390, height: 844 };
const store = decodeURIComponent(new URL(url).pathname.split("/")[2]);

function check(ok, what) {
  if (!ok) throw new Error(what);
}
function occurrences(text, part) {
  return part ? text.split(part).length - 1 : 0;
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
  // Fake timers (the page's 10 s re-render included) that flow with real time unless advanced.
  await page.clock.install();

  const form = page.locator("#token-form");
  const input = page.locator("#token-input");
  const noOffers = page.getByText("No offers right now");

  // 1. No token on this device: the form, not "No offers right now".
  await page.goto(url);
  await form.waitFor({ state: "visible", timeout: WAIT });
  check(!(await noOffers.isVisible()), "'No offers right now' shown while the token is missing");
  await page.locator("#status", { hasText: "Needs the store token" }).waitFor({ timeout: WAIT });

  // 2. A stale token kept on the device: refused by the channel, the form again.
  await page.evaluate(([key, stale]) => localStorage.setItem(key, stale), [`shelfguard.token.${store}`, "stale-token-of-yesterday"]);
  await page.reload();
  await page.locator("#token-why", { hasText: "refused" }).waitFor({ timeout: WAIT });
  // Half typed when the re-renders come.
  const typed = token.slice(0, 6);
  await input.fill(typed);
  const before = await page.evaluate(() => Date.now());
  await page.clock.runFor(25_000);
  const advanced = (await page.evaluate(() => Date.now())) - before;
  check(advanced >= 25_000, `the page clock advanced only ${advanced} ms`);
  check(await form.isVisible(), "the token form was wiped by a re-render");
  check((await input.inputValue()) === typed, `the typed token was lost: ${JSON.stringify(await input.inputValue())}`);
  check(!(await noOffers.isVisible()), "'No offers right now' shown beside the refused token's form");
  check((await page.locator("#status").textContent()) === "Needs the store token", "the header no longer asks for the token");
  console.log("FORM_KEPT");

  // 3. The valid token: live, the form gone.
  await input.fill(token);
  await form.getByRole("button", { name: "Connect" }).click();
  await page.locator("#status.live").waitFor({ timeout: WAIT });
  await form.waitFor({ state: "hidden", timeout: WAIT });
  console.log("READY");

  // 4. The pushed card, at phone size.
  const card = page.locator("article.card").first();
  await card.waitFor({ timeout: WAIT });
  const offerId = await card.getAttribute("data-offer-id");
  const offer = await page.evaluate(async ([store, token, id]) => {
    const r = await fetch(`/api/stores/${encodeURIComponent(store)}/offers`, { headers: { Authorization: `Bearer ${token}` } });
    return (await r.json()).offers.find((o) => o.offer_id === id);
  }, [store, token, offerId]);
  check(offer, `offer ${offerId} is not in the API's list`);
  const label = (p) => [p.size, p.name].filter(Boolean).join(" ");
  const [orig, sub, code] = [label(offer.original), label(offer.substitute), offer.redemption_code];
  const text = await card.innerText();
  check(occurrences(text, code) === 1, `the code ${code} is on the card ${occurrences(text, code)} times:\n${text}`);
  check(occurrences(text, sub) === 1, `the substitute "${sub}" is on the card ${occurrences(text, sub)} times (the reason repeats the headline):\n${text}`);
  check(occurrences(text, orig) === 1, `the original "${orig}" is on the card ${occurrences(text, orig)} times:\n${text}`);
  check(text.includes(currencyText), `no ${currencyText} with the gift value:\n${text}`);
  const box = await card.boundingBox();
  check(box.height < PHONE.height / 2, `one card is ${box.height}px high on a ${PHONE.height}px screen`);
  const storeLines = await page.locator("#store").evaluate((e) => e.getClientRects().length);
  check(storeLines === 1, `the store id wraps over ${storeLines} lines`);
  await page.screenshot({ path: screenshot });

  // 5. Decline asks first, naming the offer; its confirm button is not an Accept look-alike.
  await card.getByRole("button", { name: "Decline" }).click();
  const dialog = page.locator("#decline-dialog");
  await dialog.waitFor({ state: "visible", timeout: WAIT });
  const asked = await dialog.innerText();
  for (const part of [orig, sub, code]) check(asked.includes(part), `the decline dialog does not name "${part}":\n${asked}`);
  const colour = (l) => l.evaluate((e) => getComputedStyle(e).backgroundColor);
  const [confirmColour, acceptColour] = [
    await colour(dialog.getByRole("button", { name: "Decline offer" })),
    await colour(card.getByRole("button", { name: "Accept" })),
  ];
  check(confirmColour !== acceptColour, `the decline confirm button has Accept's colour ${acceptColour}`);
  await dialog.getByRole("button", { name: "Back" }).click();
  await dialog.waitFor({ state: "hidden", timeout: WAIT });

  // 6. Accept.
  await card.getByRole("button", { name: "Accept" }).click();
  // Shown once the channel answered 202 (the answer is on the broker).
  await card.getByText(/Accept sent|Accepted/).waitFor({ timeout: WAIT });
  console.log(`ACCEPTED ${offerId}`);

  // 7. The channel restarts with other tokens: the page asks again instead of showing no offers.
  await page.locator("#token-why", { hasText: "refused" }).waitFor({ timeout: 2 * WAIT });
  check(await form.isVisible(), "the token form is not shown after the token was refused");
  check(!(await card.isVisible()), "the cards stay on screen under the token form");
  check(!(await noOffers.isVisible()), "'No offers right now' shown beside the token form");
  console.log("ASKED_AGAIN");
} catch (e) {
  console.error(`console test failed: ${e.stack || e}`);
  process.exitCode = 1;
} finally {
  if (context) await context.close();
  rmSync(userDataDir, { recursive: true, force: true });
}
