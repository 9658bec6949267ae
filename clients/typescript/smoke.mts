// The smoke scenario through a TypeScript client generated from openapi.json during the run
// (openapi-typescript for the types, openapi-fetch for the calls; nothing generated is
// committed). scripts/clients_smoke.sh type-checks it with `tsc --noEmit`, then runs it against
// a live demo server whose mail relay is down, so that "Failed to send" is reachable:
//
//   node smoke.mjs BASE_URL OWNER_TOKEN
//
// Every check prints one line; the last line is the tally.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema.js";

type Invitation = components["schemas"]["BusinessInvitation"];
type Status = components["schemas"]["BusinessInvitationStatus"];

const [baseUrl, token] = process.argv.slice(2);
if (!baseUrl || !token) {
  console.error("usage: node smoke.mjs BASE_URL OWNER_TOKEN");
  process.exit(2);
}
const client = createClient<paths>({ baseUrl, headers: { Authorization: `Bearer ${token}` } });

let passed = 0;
let failed = 0;
function check(what: string, ok: boolean, detail: unknown = ""): void {
  if (ok) {
    passed++;
    console.log(`ok    ${what}`);
  } else {
    failed++;
    console.log(`FAIL  ${what} ${JSON.stringify(detail)}`);
  }
}

const statuses: readonly Status[] = ["Pending", "Accepted", "Expired", "Revoked", "Resent", "Failed to send"];
function wellFormed(what: string, inv: Invitation): void {
  check(`${what}: status is one of the contract's`, statuses.includes(inv.status), inv.status);
  check(`${what}: licenseQuantity is an int64 string`, /^-?(0|[1-9]\d*)$/.test(inv.licenseQuantity ?? ""), inv.licenseQuantity);
  check(`${what}: expiresAt is a date-time`, !Number.isNaN(Date.parse(inv.expiresAt)), inv.expiresAt);
  check(`${what}: acceptedAt is null`, inv.acceptedAt === null, inv.acceptedAt);
}

// Create: the relay is down and one attempt is all there is, so the response shows Failed to send.
const created = await client.POST("/businesses/me/invitations", {
  body: { email: "ts.client@example.com", role: "Agent" },
});
check("create answers 200", created.response.status === 200, created.response.status);
if (created.data) {
  wellFormed("create", created.data);
  check("create: status Failed to send", created.data.status === "Failed to send", created.data.status);
  check("create: sentAt is null", created.data.sentAt === null, created.data.sentAt);
  check("create: sendFailureReason says why", (created.data.sendFailureReason ?? "").length > 0, created.data.sendFailureReason);
}

// Resend the demo invitation that was sent ten minutes ago.
const resent = await client.POST("/businesses/me/invitations/{invitationId}/resend", {
  params: { path: { invitationId: "inv_demo_acme" } },
});
check("resend answers 200", resent.response.status === 200, resent.response.status);
if (resent.data) {
  wellFormed("resend", resent.data);
  check("resend: resentAt is set", resent.data.resentAt !== null, resent.data.resentAt);
  check("resend: keeps the invitation", resent.data.id === "inv_demo_acme", resent.data.id);
}

const listed = await client.GET("/businesses/me/invitations");
check("list answers 200", listed.response.status === 200, listed.response.status);
const ids = (listed.data ?? []).map((row) => row.id);
for (const id of ["inv_demo_acme", "inv_demo_acme_2", created.data?.id ?? "(created)"]) {
  check(`list shows ${id}`, ids.includes(id), ids);
}

const revoked = await client.DELETE("/businesses/me/invitations/{invitationId}", {
  params: { path: { invitationId: "inv_demo_acme_2" } },
});
check("revoke answers 204", revoked.response.status === 204, revoked.response.status);

// A revoked invitation cannot be resent: a 409 problem, typed by the client.
const again = await client.POST("/businesses/me/invitations/{invitationId}/resend", {
  params: { path: { invitationId: "inv_demo_acme_2" } },
});
check("resending the revoked one answers 409", again.response.status === 409, again.response.status);
check(
  "its problem type is invitation-revoked",
  again.error?.type === "https://api.leadping.ai/errors/invitation-revoked",
  again.error,
);
check("its problem carries the request id", again.error?.requestId === again.response.headers.get("x-request-id"), again.error);

// Inside the cooldown: 429, with Retry-After read through the client's response.
const tooSoon = await client.POST("/businesses/me/invitations/{invitationId}/resend", {
  params: { path: { invitationId: "inv_demo_acme" } },
});
check("resending at once answers 429", tooSoon.response.status === 429, tooSoon.response.status);
const retryAfter = Number(tooSoon.response.headers.get("Retry-After"));
check("Retry-After is whole seconds within the cooldown", Number.isInteger(retryAfter) && retryAfter >= 1 && retryAfter <= 60, retryAfter);
check(
  "its problem type is resend-cooldown",
  tooSoon.error?.type === "https://api.leadping.ai/errors/resend-cooldown",
  tooSoon.error,
);

console.log(`typescript client: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
