"""The smoke scenario through a Python client generated from openapi.json during the run
(openapi-python-client; nothing generated is committed), against a live demo server whose mail
relay is down, so that "Failed to send" is reachable (scripts/clients_smoke.sh):

    python smoke.py BASE_URL OWNER_TOKEN      # with the generated `leadping_client` importable

Every check prints one line; the last line is the tally.
"""
import datetime
import re
import sys

from leadping_client import AuthenticatedClient
from leadping_client.api.invitations import (
    create_business_invitation,
    list_business_invitations,
    resend_business_invitation,
    revoke_business_invitation,
)
from leadping_client.models import (
    BusinessInvitation,
    BusinessInvitationRole,
    BusinessInvitationStatus,
    CreateBusinessInvitationRequest,
    Problem,
)

base_url, token = sys.argv[1:3]
client = AuthenticatedClient(base_url=base_url, token=token)
passed = failed = 0


def check(what, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {what}")
    else:
        failed += 1
        print(f"FAIL  {what} {detail!r}")


def well_formed(what, inv):
    check(f"{what}: a BusinessInvitation", isinstance(inv, BusinessInvitation), inv)
    if not isinstance(inv, BusinessInvitation):
        return
    check(f"{what}: status is one of the contract's", isinstance(inv.status, BusinessInvitationStatus), inv.status)
    check(f"{what}: licenseQuantity is an int64 string", isinstance(inv.license_quantity, str)
          and re.fullmatch(r"-?(0|[1-9]\d*)", inv.license_quantity) is not None, inv.license_quantity)
    check(f"{what}: expiresAt is a date-time", isinstance(inv.expires_at, datetime.datetime), inv.expires_at)
    check(f"{what}: acceptedAt is null", inv.accepted_at is None, inv.accepted_at)


# Create: the relay is down and one attempt is all there is, so the response shows Failed to send.
created = create_business_invitation.sync_detailed(
    client=client,
    body=CreateBusinessInvitationRequest(email="py.client@example.com", role=BusinessInvitationRole.AGENT),
)
check("create answers 200", created.status_code == 200, created.status_code)
well_formed("create", created.parsed)
inv = created.parsed
if isinstance(inv, BusinessInvitation):
    check("create: status Failed to send", inv.status == BusinessInvitationStatus.FAILED_TO_SEND, inv.status)
    check("create: sentAt is null", inv.sent_at is None, inv.sent_at)
    check("create: sendFailureReason says why", bool(inv.send_failure_reason), inv.send_failure_reason)

# Resend the demo invitation that was sent ten minutes ago.
resent = resend_business_invitation.sync_detailed("inv_demo_acme", client=client)
check("resend answers 200", resent.status_code == 200, resent.status_code)
well_formed("resend", resent.parsed)
if isinstance(resent.parsed, BusinessInvitation):
    check("resend: resentAt is set", isinstance(resent.parsed.resent_at, datetime.datetime), resent.parsed.resent_at)
    check("resend: keeps the invitation", resent.parsed.id == "inv_demo_acme", resent.parsed.id)

listed = list_business_invitations.sync_detailed(client=client)
check("list answers 200", listed.status_code == 200, listed.status_code)
ids = [row.id for row in (listed.parsed or [])]
for wanted in ["inv_demo_acme", "inv_demo_acme_2", getattr(inv, "id", "(created)")]:
    check(f"list shows {wanted}", wanted in ids, ids)

revoked = revoke_business_invitation.sync_detailed("inv_demo_acme_2", client=client)
check("revoke answers 204", revoked.status_code == 204, revoked.status_code)

# A revoked invitation cannot be resent: a 409 problem, typed by the client.
again = resend_business_invitation.sync_detailed("inv_demo_acme_2", client=client)
check("resending the revoked one answers 409", again.status_code == 409, again.status_code)
check("its problem type is invitation-revoked", isinstance(again.parsed, Problem)
      and again.parsed.type_ == "https://api.leadping.ai/errors/invitation-revoked", again.parsed)
check("its problem carries the request id", isinstance(again.parsed, Problem)
      and again.parsed.request_id == again.headers.get("x-request-id"), again.parsed)

# Inside the cooldown: 429, with Retry-After read through the client's response.
too_soon = resend_business_invitation.sync_detailed("inv_demo_acme", client=client)
check("resending at once answers 429", too_soon.status_code == 429, too_soon.status_code)
retry_after = too_soon.headers.get("Retry-After", "")
check("Retry-After is whole seconds within the cooldown", retry_after.isdigit() and 1 <= int(retry_after) <= 60, retry_after)
check("its problem type is resend-cooldown", isinstance(too_soon.parsed, Problem)
      and too_soon.parsed.type_ == "https://api.leadping.ai/errors/resend-cooldown", too_soon.parsed)

print(f"python client: {passed} passed, {failed} failed")
sys.exit(0 if failed == 0 else 1)
