// The smoke scenario through a Java client generated from openapi.json during the run
// (openapi-generator's `java` generator, library `native`; nothing generated is committed),
// compiled with javac against the generator's own jar (Jackson) and Debian's Jakarta annotations,
// and run against a live demo server whose mail relay is down (scripts/clients_smoke.sh):
//
//   java -cp ... Smoke BASE_URL OWNER_TOKEN
//
// Every check prints one line; the last line is the tally. Error bodies reach this client as
// text (ApiException.getResponseBody()); they are read into the generated Problem model with the
// client's own ObjectMapper.
import ai.leadping.client.ApiClient;
import ai.leadping.client.ApiException;
import ai.leadping.client.api.InvitationsApi;
import ai.leadping.client.model.BusinessInvitation;
import ai.leadping.client.model.BusinessInvitationRole;
import ai.leadping.client.model.BusinessInvitationRow;
import ai.leadping.client.model.BusinessInvitationStatus;
import ai.leadping.client.model.CreateBusinessInvitationRequest;
import ai.leadping.client.model.Problem;
import java.util.List;
import java.util.Objects;

public class Smoke {
  static int passed = 0;
  static int failed = 0;

  static void check(String what, boolean ok, Object detail) {
    if (ok) {
      passed++;
      System.out.println("ok    " + what);
    } else {
      failed++;
      System.out.println("FAIL  " + what + " " + detail);
    }
  }

  static void wellFormed(String what, BusinessInvitation inv) {
    check(what + ": status is one of the contract's", inv.getStatus() != null, inv.getStatus());
    String quantity = inv.getLicenseQuantity();
    check(what + ": licenseQuantity is an int64 string",
        quantity != null && quantity.matches("-?(0|[1-9]\\d*)"), quantity);
    check(what + ": expiresAt is a date-time", inv.getExpiresAt() != null, inv.getExpiresAt());
    check(what + ": acceptedAt is null", inv.getAcceptedAt() == null, inv.getAcceptedAt());
  }

  /** The problem a refused call answered with, in the generated model. */
  static Problem problem(ApiClient client, ApiException e) throws Exception {
    return client.getObjectMapper().readValue(e.getResponseBody(), Problem.class);
  }

  public static void main(String[] args) throws Exception {
    String base = args[0];
    String token = args[1];
    ApiClient client = new ApiClient();
    client.updateBaseUri(base);
    client.setRequestInterceptor(r -> r.header("Authorization", "Bearer " + token));
    InvitationsApi api = new InvitationsApi(client);

    // Create: the relay is down and one attempt is all there is, so the response shows
    // Failed to send.
    BusinessInvitation created = api.createBusinessInvitation(
        new CreateBusinessInvitationRequest().email("java.client@example.com")
            .role(BusinessInvitationRole.AGENT), null);
    wellFormed("create", created);
    check("create: status Failed to send",
        created.getStatus() == BusinessInvitationStatus.FAILED_TO_SEND, created.getStatus());
    check("create: sentAt is null", created.getSentAt() == null, created.getSentAt());
    check("create: sendFailureReason says why",
        created.getSendFailureReason() != null && !created.getSendFailureReason().isEmpty(),
        created.getSendFailureReason());

    // Resend the demo invitation that was sent ten minutes ago.
    BusinessInvitation resent = api.resendBusinessInvitation("inv_demo_acme", null);
    wellFormed("resend", resent);
    check("resend: resentAt is set", resent.getResentAt() != null, resent.getResentAt());
    check("resend: keeps the invitation", "inv_demo_acme".equals(resent.getId()), resent.getId());

    List<BusinessInvitationRow> rows = api.listBusinessInvitations();
    List<String> ids = rows.stream().map(BusinessInvitationRow::getId).toList();
    for (String wanted : List.of("inv_demo_acme", "inv_demo_acme_2", created.getId())) {
      check("list shows " + wanted, ids.contains(wanted), ids);
    }

    api.revokeBusinessInvitation("inv_demo_acme_2");
    check("revoke answers 204", true, "");

    // A revoked invitation cannot be resent: a 409 problem.
    try {
      api.resendBusinessInvitation("inv_demo_acme_2", null);
      check("resending the revoked one is refused", false, "it answered 200");
    } catch (ApiException e) {
      check("resending the revoked one answers 409", e.getCode() == 409, e.getCode());
      Problem p = problem(client, e);
      check("its problem type is invitation-revoked",
          "https://api.leadping.ai/errors/invitation-revoked".equals(p.getType()), p);
      check("its problem carries the request id",
          Objects.equals(p.getRequestId(),
              e.getResponseHeaders().firstValue("x-request-id").orElse(null)), p);
    }

    // Inside the cooldown: 429, with Retry-After read through the client's exception.
    try {
      api.resendBusinessInvitation("inv_demo_acme", null);
      check("resending at once is refused", false, "it answered 200");
    } catch (ApiException e) {
      check("resending at once answers 429", e.getCode() == 429, e.getCode());
      String retryAfter = e.getResponseHeaders().firstValue("Retry-After").orElse("");
      check("Retry-After is whole seconds within the cooldown",
          retryAfter.matches("\\d+") && Integer.parseInt(retryAfter) >= 1
              && Integer.parseInt(retryAfter) <= 60, retryAfter);
      Problem p = problem(client, e);
      check("its problem type is resend-cooldown",
          "https://api.leadping.ai/errors/resend-cooldown".equals(p.getType()), p);
    }

    System.out.println("java client: " + passed + " passed, " + failed + " failed");
    System.exit(failed == 0 ? 0 : 1);
  }
}
