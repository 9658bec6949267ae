// Opens the server's docs page in headless Chromium (Debian's, installed by .ci/run) and checks
// what a reader would: the resend operation with each status it declares (its 429 with the
// Retry-After header, its 401 with WWW-Authenticate), and the BusinessInvitation fields are
// rendered, and the page made no request anywhere but the server itself.
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
  // Read resend's declared responses as a reader would (the page opens every operation): the
  // 429 row with the Retry-After header in its headers table, the 401 with WWW-Authenticate.
  const resend = "#operations-invitations-resendBusinessInvitation";
  await page.waitForSelector(`${resend} tr.response[data-code="429"]`, { timeout: 60000 });
  const rows = await page.$$eval(`${resend} tr.response`, (trs) =>
    trs.map((tr) => ({ code: tr.getAttribute("data-code"), text: tr.innerText })),
  );
  const codes = rows.map((r) => r.code);
  for (const code of ["200", "400", "401", "403", "404", "409", "422", "429", "500"]) {
    if (!codes.includes(code)) failures.push(`resend's responses do not show ${code} (shown: ${codes.join(", ")})`);
  }
  for (const [code, header] of [["429", "Retry-After"], ["401", "WWW-Authenticate"], ["200", "x-request-id"]]) {
    const row = rows.find((r) => r.code === code);
    if (row && !row.text.includes(header)) failures.push(`resend's ${code} does not show the ${header} header`);
  }
  if (codes.some((c) => c.endsWith("XX"))) failures.push(`resend still shows a range: ${codes.join(", ")}`);
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
