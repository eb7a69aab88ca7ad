// The chat page at / in headless Chromium (Debian's), through puppeteer-core:
//   node chat_page_test.mjs BASE_URL API_KEY CHROMIUM
// Loads the page, enters the API key, sends a message and watches the
// reply stream in (several updates, then done, no error).
import puppeteer from "puppeteer-core";
import assert from "node:assert/strict";

const [base, key, chromium] = process.argv.slice(2);
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
});
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(base + "/", { waitUntil: "load" });
  assert.equal(await page.title(), "Lumen chat");
  await page.type("#key", key);
  await page.$eval("#key", (e) => e.dispatchEvent(new Event("change")));
  // Count the changes to the reply while it streams.
  await page.evaluate(() => {
    window.replyUpdates = 0;
    new MutationObserver(() => window.replyUpdates++).observe(document.getElementById("log"), {
      subtree: true, childList: true, characterData: true,
    });
  });
  await page.type("#input", "Hello from a browser");
  await page.keyboard.press("Enter");
  await page.waitForSelector('.msg[data-state="done"]', { timeout: 120000 });
  const reply = await page.$eval(".msg:last-child", (e) => ({ cls: e.className, text: e.textContent }));
  assert.equal(reply.cls, "msg assistant", "the reply is not an error: " + reply.text);
  assert.ok(reply.text.length > 0, "the reply has text");
  const updates = await page.evaluate(() => window.replyUpdates);
  assert.ok(updates >= 3, `the reply streamed in (${updates} updates)`);
  const user = await page.$eval(".msg.user", (e) => e.textContent);
  assert.equal(user, "Hello from a browser");
  assert.deepEqual(errors, []);
  // The page named the model from /v1/models, with the key.
  await page.waitForFunction(() => document.getElementById("model").textContent.length > 0, { timeout: 10000 });
  console.log(`ok chat page: reply of ${reply.text.length} characters in ${updates} updates`);
} finally {
  await browser.close();
}
