// Opens the server's docs page in headless Chromium (Debian's, installed by .ci/run) and checks
// what a reader would: the resend operation, its 429 with Retry-After, and the BusinessInvitation
// fields are rendered, and the page made no request anywhere but the server itself.
//
//   node scripts/docs_check.mjs http://127.0.0.1:PORT
//
// Chromium's own background traffic (updates, sync) is switched off, and anything left of it goes
// to a proxy on a closed local port, so that nothing leaves the machine; only the page's own
// requests are judged.
import puppeteer from "puppeteer-core";

const base = process.argv[2];
if (!base) {
  console.error("usage: node scripts/docs_check.mjs BASE_URL");
  process.exit(2);
}
const origin = new URL(base).origin;

const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--proxy-server=http://127.0.0.1:9",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-domain-reliability",
    "--no-pings",
    "--no-first-run",
  ],
});
const failures = [];
try {
  const page = await browser.newPage();
  const requested = [];
  page.on("request", (r) => requested.push(r.url()));
  const response = await page.goto(`${base}/docs`, { waitUntil: "networkidle0", timeout: 60000 });
  if (response.status() !== 200) failures.push(`GET /docs answered ${response.status()}`);
  await page.waitForFunction(
    () => document.body.innerText.includes("Resend a current-business user invitation"),
    { timeout: 60000 },
  );
  const text = await page.evaluate(() => document.body.innerText);
  const expected = [
    "Resend a current-business user invitation",
    "/businesses/me/invitations/{invitationId}/resend",
    "429",
    "Retry-After",
    // BusinessInvitation's fields, as its schema renders them.
    "safeMessage",
    "licenseQuantity",
    "sendFailureReason",
    "resentAt",
    "expiresAt",
  ];
  for (const words of expected) {
    if (!text.includes(words)) failures.push(`the page does not show ${JSON.stringify(words)}`);
  }
  const elsewhere = requested.filter(
    (u) => !u.startsWith(`${origin}/`) && !u.startsWith("data:") && !u.startsWith("blob:"),
  );
  for (const u of elsewhere) failures.push(`the page requested ${u}`);
  console.log(`docs page: ${requested.length} requests, all to ${origin}: ${elsewhere.length === 0}`);
} finally {
  await browser.close();
}
if (failures.length) {
  for (const f of failures) console.log(`FAIL  ${f}`);
  console.log(`docs check: 0 passed, ${failures.length} failed`);
  process.exit(1);
}
console.log("docs check: 1 passed, 0 failed");
