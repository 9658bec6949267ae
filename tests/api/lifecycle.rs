//! The invitation lifecycle through the generated client against the real server, on SQLite and
//! (when `TEST_DATABASE_URL` is set) on PostgreSQL: every resend rule, seats, limits,
//! idempotency and concurrency.

use chrono::{Duration, Utc};
use leadping_invitations::domain::Role;
use leadping_invitations::domain::rules::Policy;
use leadping_invitations::problem::ProblemType;
use leadping_invitations_client::types::{
    AcceptBusinessInvitationRequest, BusinessInvitation, BusinessInvitationRole,
    BusinessInvitationStatus, CreateBusinessInvitationRequest, Problem,
};
use leadping_invitations_client::{Error, ResponseValue};

use crate::helpers::{
    Backend, ServerProcess, TestApp, business_id, invitation_id, spawn_app, spawn_app_with, token,
    user_id,
};
use crate::served::expect_problem;

crate::on_both_databases!(
    resend_refreshes_delivery_and_keeps_identity,
    an_immediate_repeat_is_refused_with_retry_after,
    the_role_matrix_decides_who_may_resend,
    another_business_invitation_is_indistinguishable_from_an_unknown_one,
    ids_and_names_no_store_could_hold_are_clear_problems,
    accepted_and_revoked_invitations_cannot_be_resent,
    failed_and_expired_invitations_can_be_resent,
    an_expired_invitation_cannot_return_beside_a_newer_one_or_a_member,
    the_daily_email_cap_is_shared_by_create_and_resend,
    seats_follow_create_revoke_expire_resend_and_accept,
    no_seat_means_nothing_changes,
    idempotency_keys_replay_and_refuse_misuse,
    replays_keep_authorisation,
    concurrent_resends_change_state_once,
    concurrent_creates_for_one_email_make_one_invitation,
    create_validates_and_refuses_duplicates,
    accept_makes_a_member_and_refuses_bad_tokens,
    revoke_is_idempotent_and_refuses_accepted,
    list_is_newest_first_with_status_computed_when_read,
    non_members_are_forbidden,
);

fn ok<T>(r: Result<ResponseValue<T>, Error<Problem>>) -> T {
    match r {
        Ok(v) => v.into_inner(),
        Err(Error::ErrorResponse(e)) => {
            panic!("expected success, got {} {:?}", e.status(), e.into_inner())
        }
        Err(e) => panic!("expected success, got {e}"),
    }
}

/// The body of a create's or resend's 200, and its `Idempotent-Replayed` header.
fn answered<T>(r: Result<ResponseValue<T>, Error<Problem>>) -> (T, bool) {
    let response = match r {
        Ok(v) => v,
        Err(Error::ErrorResponse(e)) => {
            panic!("expected success, got {} {:?}", e.status(), e.into_inner())
        }
        Err(e) => panic!("expected success, got {e}"),
    };
    let replayed = match response
        .headers()
        .get("idempotent-replayed")
        .map(|v| v.to_str())
    {
        Some(Ok("true")) => true,
        Some(Ok("false")) => false,
        other => panic!("Idempotent-Replayed is true or false on every 200, not {other:?}"),
    };
    (response.into_inner(), replayed)
}

fn retry_after<T: std::fmt::Debug>(
    r: Result<ResponseValue<T>, Error<Problem>>,
    kind: ProblemType,
) -> u64 {
    let response = match r {
        Err(Error::ErrorResponse(response)) => response,
        other => panic!("expected 429, got {other:?}"),
    };
    assert_eq!(response.status().as_u16(), 429);
    let secs: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(response.into_inner().type_, kind.uri());
    secs
}

fn quantity(inv: &BusinessInvitation) -> Option<i64> {
    inv.license_quantity.as_ref().map(|q| q.parse().unwrap())
}

async fn resend(
    t: &TestApp,
    b: &crate::helpers::Seeded,
    role: Role,
    id: &str,
) -> Result<ResponseValue<BusinessInvitation>, Error<Problem>> {
    t.as_role(b, role)
        .resend_business_invitation()
        .invitation_id(id)
        .send()
        .await
}

/// Accepts with the token alone.
async fn accept(t: &TestApp, token: String) -> BusinessInvitation {
    ok(t.client
        .accept_business_invitation()
        .body(AcceptBusinessInvitationRequest {
            token,
            email: None,
            first_name: None,
            last_name: None,
        })
        .send()
        .await)
}

async fn resend_refreshes_delivery_and_keeps_identity(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "Ann.Lee@example.com", Role::Admin).await;
    let token_before = t.acceptance_token(&b.id, &id).await;
    let before = ok(t
        .client
        .get_business_invitation_by_token()
        .token(&token_before)
        .send()
        .await);

    let started = Utc::now();
    let inv = ok(resend(&t, &b, Role::Owner, &id).await);
    assert_eq!(inv.id, id);
    assert_eq!(inv.email, "Ann.Lee@example.com");
    assert_eq!(inv.role, BusinessInvitationRole::Admin);
    assert_eq!(inv.status, BusinessInvitationStatus::Resent);
    assert_eq!(inv.business_id, b.id);
    assert_eq!(inv.business_name, "acme Inc");
    let resent_at = inv.resent_at.expect("resentAt set");
    assert!(resent_at >= started - Duration::seconds(1));
    assert_eq!(inv.expires_at, resent_at + Duration::days(7));
    assert_eq!(
        inv.sent_at, before.sent_at,
        "sentAt keeps the first delivery"
    );
    assert_eq!(inv.send_failure_reason, None);
    assert_eq!(
        inv.safe_message.as_deref(),
        Some("Invitation resent to A•••@example.com.")
    );
    assert_eq!(
        quantity(&inv),
        quantity(&before),
        "a seat still held: billing unchanged"
    );
    assert_eq!(inv.license_activated_at, before.license_activated_at);

    // The same token still opens the invitation.
    assert_eq!(t.acceptance_token(&b.id, &id).await, token_before);
    let after = ok(t
        .client
        .get_business_invitation_by_token()
        .token(&token_before)
        .send()
        .await);
    assert_eq!(after.status, BusinessInvitationStatus::Resent);
    assert_eq!(
        t.outbox_rows(&id).await,
        2,
        "one email for the create, one for the resend"
    );
}

async fn an_immediate_repeat_is_refused_with_retry_after(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    ok(resend(&t, &b, Role::Owner, &id).await);
    let secs = retry_after(
        resend(&t, &b, Role::Owner, &id).await,
        ProblemType::ResendCooldown,
    );
    assert!((58..=60).contains(&secs), "Retry-After {secs}");
    assert_eq!(
        t.outbox_rows(&id).await,
        2,
        "the refused resend queued nothing"
    );

    // A freshly created invitation is inside the cooldown too: its first email just went out.
    let fresh = ok(t
        .as_role(&b, Role::Owner)
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "bo@example.com".into(),
            role: None,
        })
        .send()
        .await);
    retry_after(
        resend(&t, &b, Role::Owner, &fresh.id).await,
        ProblemType::ResendCooldown,
    );
}

async fn the_role_matrix_decides_who_may_resend(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let allowed = [
        (Role::Owner, Role::Owner),
        (Role::Owner, Role::Admin),
        (Role::Owner, Role::Agent),
        (Role::Admin, Role::Admin),
        (Role::Admin, Role::Agent),
    ];
    for (n, caller) in [Role::Owner, Role::Admin, Role::Agent]
        .into_iter()
        .enumerate()
    {
        for (m, target) in [Role::Owner, Role::Admin, Role::Agent]
            .into_iter()
            .enumerate()
        {
            let id = t
                .invitation(&b, &format!("x{n}{m}@example.com"), target)
                .await;
            let result = resend(&t, &b, caller, &id).await;
            if allowed.contains(&(caller, target)) {
                assert_eq!(
                    ok(result).status,
                    BusinessInvitationStatus::Resent,
                    "{caller:?} -> {target:?}"
                );
            } else {
                let p = expect_problem(result, 403, ProblemType::Forbidden);
                assert!(
                    p.detail.contains("role"),
                    "{caller:?} -> {target:?}: {}",
                    p.detail
                );
            }
        }
    }
}

async fn another_business_invitation_is_indistinguishable_from_an_unknown_one(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let a = t.business("acme").await;
    let b = t.business("birch").await;
    let theirs = t.invitation(&b, "ann@example.com", Role::Agent).await;
    let p1 = expect_problem(
        resend(&t, &a, Role::Owner, &theirs).await,
        404,
        ProblemType::NotFound,
    );
    let p2 = expect_problem(
        resend(&t, &a, Role::Owner, "inv_does_not_exist").await,
        404,
        ProblemType::NotFound,
    );
    assert_eq!(p1.detail, p2.detail);
    expect_problem(
        resend(&t, &a, Role::Owner, "%20..%2F").await,
        404,
        ProblemType::NotFound,
    );
    expect_problem(
        t.as_role(&a, Role::Owner)
            .revoke_business_invitation()
            .invitation_id(&theirs)
            .send()
            .await,
        404,
        ProblemType::NotFound,
    );
    let list = ok(t
        .as_role(&a, Role::Owner)
        .list_business_invitations()
        .send()
        .await);
    assert!(list.is_empty(), "acme sees none of birch's invitations");
    // Birch's invitation is untouched.
    assert_eq!(t.outbox_rows(&theirs).await, 1);
}

/// A NUL byte reaches the server percent-encoded in a path or escaped in JSON; PostgreSQL's text
/// columns refuse it, so it must be answered before the store sees it, never with a 500.
async fn ids_and_names_no_store_could_hold_are_clear_problems(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    for id in ["inv_\0", "inv\u{7f}x", &"a".repeat(200)] {
        expect_problem(
            resend(&t, &b, Role::Owner, id).await,
            404,
            ProblemType::NotFound,
        );
        expect_problem(
            owner
                .revoke_business_invitation()
                .invitation_id(id)
                .send()
                .await,
            404,
            ProblemType::NotFound,
        );
        expect_problem(
            t.client
                .get_business_invitation_by_token()
                .token(format!("{id}.{}", "0".repeat(64)))
                .send()
                .await,
            404,
            ProblemType::NotFound,
        );
    }
    for email in ["a\0b@example.com", "\"a\0b\"@example.com"] {
        expect_problem(
            owner
                .create_business_invitation()
                .body(CreateBusinessInvitationRequest {
                    email: email.into(),
                    role: None,
                })
                .send()
                .await,
            400,
            ProblemType::Validation,
        );
    }

    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    let token = t.acceptance_token(&b.id, &id).await;
    // The contract carries the rule (format person-name: maxLength and a pattern), so the
    // generated client refuses such names itself; a raw request shows the server does too.
    use leadping_invitations_client::types::AcceptBusinessInvitationRequestFirstName as FirstName;
    assert!("A\0n".parse::<FirstName>().is_err());
    assert!("L".repeat(101).parse::<FirstName>().is_err());
    for (first, last, why) in [
        ("A\0n", "Lee", "control characters"),
        ("Ann", "Lee\u{85}", "control characters"),
        ("Ann", &"L".repeat(101) as &str, "at most 100 characters"),
    ] {
        let response = t
            .http
            .post(t.url("/businesses/invitations/accept"))
            .json(&serde_json::json!({"token": token, "firstName": first, "lastName": last}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{first:?} {last:?}");
        let problem: Problem = response.json().await.unwrap();
        assert_eq!(problem.type_, ProblemType::Validation.uri());
        assert!(problem.detail.contains(why), "{}", problem.detail);
    }
    let accepted = ok(t
        .client
        .accept_business_invitation()
        .body(AcceptBusinessInvitationRequest {
            token,
            email: None,
            first_name: Some("Zoë".parse().unwrap()),
            last_name: Some("O'Neil".parse().unwrap()),
        })
        .send()
        .await);
    assert_eq!(accepted.status, BusinessInvitationStatus::Accepted);
}

async fn accepted_and_revoked_invitations_cannot_be_resent(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let accepted = t.invitation(&b, "ann@example.com", Role::Agent).await;
    let tok = t.acceptance_token(&b.id, &accepted).await;
    accept(&t, tok).await;
    expect_problem(
        resend(&t, &b, Role::Owner, &accepted).await,
        409,
        ProblemType::InvitationAccepted,
    );

    let revoked = t.invitation(&b, "bo@example.com", Role::Agent).await;
    ok(t.as_role(&b, Role::Owner)
        .revoke_business_invitation()
        .invitation_id(&revoked)
        .send()
        .await);
    expect_problem(
        resend(&t, &b, Role::Owner, &revoked).await,
        409,
        ProblemType::InvitationRevoked,
    );
}

async fn failed_and_expired_invitations_can_be_resent(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;

    // "Failed to send": set as the delivery worker would.
    let failed = t.invitation(&b, "ann@example.com", Role::Agent).await;
    let (bid, fid) = (business_id(&b.id), invitation_id(&failed));
    t.with_store(move |tx| {
        let mut r = tx.invitation(&bid, &fid)?.unwrap();
        r.invitation.status = leadping_invitations::domain::StoredStatus::FailedToSend;
        r.invitation.send_failure_reason = Some("550 mailbox unavailable".into());
        tx.update_invitation(&r)
    })
    .await;
    let listed = ok(t
        .as_role(&b, Role::Owner)
        .list_business_invitations()
        .send()
        .await);
    assert_eq!(listed[0].status, BusinessInvitationStatus::FailedToSend);
    let inv = ok(resend(&t, &b, Role::Owner, &failed).await);
    assert_eq!(inv.status, BusinessInvitationStatus::Resent);
    assert_eq!(inv.send_failure_reason, None);

    // Expired when read (no sweeper has run): resendable, keeps its seat.
    let expired = t
        .invitation_at(
            &b,
            "bo@example.com",
            Role::Agent,
            Utc::now() - Duration::days(8),
        )
        .await;
    let before = ok(t
        .client
        .get_business_invitation_by_token()
        .token(t.acceptance_token(&b.id, &expired).await)
        .send()
        .await);
    assert_eq!(before.status, BusinessInvitationStatus::Expired);
    let inv = ok(resend(&t, &b, Role::Owner, &expired).await);
    assert_eq!(inv.status, BusinessInvitationStatus::Resent);
    assert!(inv.expires_at > Utc::now() + Duration::days(6));
    assert_eq!(
        inv.license_activated_at, before.license_activated_at,
        "seat never released, so none taken"
    );
}

async fn an_expired_invitation_cannot_return_beside_a_newer_one_or_a_member(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    let old = t
        .invitation_at(
            &b,
            "ann@example.com",
            Role::Agent,
            Utc::now() - Duration::days(8),
        )
        .await;
    // The expired one no longer blocks a new invitation for the same email.
    let newer = ok(owner
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "Ann@example.com".into(),
            role: None,
        })
        .send()
        .await);
    // The newer one's email is recorded as sent (a moment after its answer said so).
    t.drain_outbox().await;
    let before = ok(owner.list_business_invitations().send().await);

    let problem = expect_problem(
        resend(&t, &b, Role::Owner, &old).await,
        409,
        ProblemType::DuplicateInvitation,
    );
    assert!(
        problem.detail.contains("resend that one"),
        "{}",
        problem.detail
    );
    assert_eq!(
        ok(owner.list_business_invitations().send().await),
        before,
        "the refused resend changed nothing: no second seat, no status change"
    );
    assert_eq!(t.outbox_rows(&old).await, 1, "and queued no email");

    // Once the newer invitation is accepted, the old one would invite a member.
    let token = t.acceptance_token(&b.id, &newer.id).await;
    accept(&t, token).await;
    expect_problem(
        resend(&t, &b, Role::Owner, &old).await,
        409,
        ProblemType::AlreadyMember,
    );
    assert_eq!(t.outbox_rows(&old).await, 1);
}

async fn the_daily_email_cap_is_shared_by_create_and_resend(backend: Backend) {
    let policy = Policy {
        daily_email_cap: 3,
        ..Policy::default()
    };
    let Some(t) = spawn_app_with(backend, policy).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    // Yesterday's email does not count today.
    let other = t
        .invitation_at(
            &b,
            "dee@example.com",
            Role::Agent,
            Utc::now() - Duration::days(1) - Duration::minutes(5),
        )
        .await;
    // The seeded invitation counts: its email was queued today.
    let seeded = t
        .invitation_at(
            &b,
            "ann@example.com",
            Role::Agent,
            Utc::now() - Duration::seconds(61),
        )
        .await;
    ok(owner
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "bo@example.com".into(),
            role: None,
        })
        .send()
        .await);
    ok(resend(&t, &b, Role::Owner, &seeded).await);
    let secs = retry_after(
        owner
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: "cy@example.com".into(),
                role: None,
            })
            .send()
            .await,
        ProblemType::DailyEmailCap,
    );
    let to_midnight = (Utc::now()
        .date_naive()
        .succ_opt()
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc()
        - Utc::now())
    .num_seconds() as u64;
    // Compared on a 24 h circle, so a run that crosses midnight UTC does not fail.
    let apart = secs.abs_diff(to_midnight) % 86_400;
    assert!(
        apart.min(86_400 - apart) <= 2,
        "Retry-After {secs} vs {to_midnight} s to midnight"
    );
    retry_after(
        resend(&t, &b, Role::Owner, &other).await,
        ProblemType::DailyEmailCap,
    );
    // Another business has its own cap.
    let c = t.business("birch").await;
    ok(t.as_role(&c, Role::Owner)
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "ann@example.com".into(),
            role: None,
        })
        .send()
        .await);
}

async fn seats_follow_create_revoke_expire_resend_and_accept(backend: Backend) {
    let policy = Policy {
        validity: Duration::seconds(2),
        resend_cooldown: Duration::seconds(0),
        ..Policy::default()
    };
    let Some(t) = spawn_app_with(backend, policy).await else {
        return;
    };
    let b = t.business("acme").await; // three members: quantity 3
    let owner = t.as_role(&b, Role::Owner);
    let create = |email: &str| {
        owner
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: email.into(),
                role: Some(BusinessInvitationRole::Agent),
            })
    };

    let a = ok(create("a@example.com").send().await);
    assert_eq!(quantity(&a), Some(4));
    // The subscription includes four seats: three members and this invitation.
    assert_eq!(a.license_billing_status.as_deref(), Some("included"));
    assert!(a.license_renewal_date.unwrap() > Utc::now());
    let c = ok(create("c@example.com").send().await);
    assert_eq!(quantity(&c), Some(5));
    assert_eq!(
        c.license_billing_status.as_deref(),
        Some("prorated"),
        "a fifth seat is billed"
    );

    // Revoke releases the seat.
    ok(owner
        .revoke_business_invitation()
        .invitation_id(&a.id)
        .send()
        .await);
    let row = ok(owner.list_business_invitations().send().await)
        .into_iter()
        .find(|r| r.id == a.id)
        .unwrap();
    assert_eq!(row.status, BusinessInvitationStatus::Revoked);
    assert!(row.license_released_at.is_some());
    assert_eq!(row.license_billing_status.as_deref(), Some("released"));
    assert_eq!(
        row.license_quantity.as_ref().map(|q| q.to_string()),
        Some("4".into())
    );

    // Expiry plus the sweeper releases the seat; resending takes one again.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(t.app.sweep().await.unwrap(), 1);
    assert_eq!(t.app.sweep().await.unwrap(), 0, "the sweep is idempotent");
    let swept = ok(owner.list_business_invitations().send().await)
        .into_iter()
        .find(|r| r.id == c.id)
        .unwrap();
    assert_eq!(swept.status, BusinessInvitationStatus::Expired);
    assert_eq!(
        swept.license_quantity.as_ref().map(|q| q.to_string()),
        Some("3".into())
    );
    let again = ok(resend(&t, &b, Role::Owner, &c.id).await);
    assert_eq!(quantity(&again), Some(4));
    assert_eq!(
        again.license_billing_status.as_deref(),
        Some("included"),
        "back within the included seats"
    );
    assert!(again.license_released_at.is_none());
    assert!(again.license_activated_at.unwrap() > c.license_activated_at.unwrap());

    // Accept: the seat stays with the new member.
    let tok = t.acceptance_token(&b.id, &c.id).await;
    let accepted = ok(t
        .client
        .accept_business_invitation()
        .body(AcceptBusinessInvitationRequest {
            token: tok,
            email: None,
            first_name: Some("Cy".parse().unwrap()),
            last_name: None,
        })
        .send()
        .await);
    assert_eq!(accepted.status, BusinessInvitationStatus::Accepted);
    assert_eq!(quantity(&accepted), Some(4));
    assert!(accepted.license_released_at.is_none());
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(
        t.app.sweep().await.unwrap(),
        0,
        "accepted invitations keep their seat"
    );

    // The ledger explains every quantity returned.
    let bid = business_id(&b.id);
    let ledger = t.with_store(move |tx| tx.ledger(&bid)).await;
    let history: Vec<(i64, i64, &str)> = ledger
        .iter()
        .map(|e| (e.delta, e.quantity_after, e.reason.as_str()))
        .collect();
    assert_eq!(
        history,
        vec![
            (1, 4, "invitation created"),
            (1, 5, "invitation created"),
            (-1, 4, "invitation revoked"),
            (-1, 3, "invitation expired"),
            (1, 4, "expired invitation resent"),
        ]
    );
    assert!(ledger.iter().all(|e| e.renewal_date > e.proration_date));
}

async fn no_seat_means_nothing_changes(backend: Backend) {
    let policy = Policy {
        seat_limit: Some(4),
        validity: Duration::seconds(1),
        resend_cooldown: Duration::seconds(0),
        ..Policy::default()
    };
    let Some(t) = spawn_app_with(backend, policy).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    let first = ok(owner
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "a@example.com".into(),
            role: None,
        })
        .send()
        .await);
    expect_problem(
        owner
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: "b@example.com".into(),
                role: None,
            })
            .send()
            .await,
        409,
        ProblemType::SeatLimitReached,
    );
    assert_eq!(
        ok(owner.list_business_invitations().send().await).len(),
        1,
        "the refused create left nothing behind"
    );

    // An expired invitation whose seat was released cannot take one when none is free.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(t.app.sweep().await.unwrap(), 1);
    ok(owner
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "c@example.com".into(),
            role: None,
        })
        .send()
        .await);
    expect_problem(
        resend(&t, &b, Role::Owner, &first.id).await,
        409,
        ProblemType::SeatLimitReached,
    );
    let row = ok(owner.list_business_invitations().send().await)
        .into_iter()
        .find(|r| r.id == first.id)
        .unwrap();
    assert_eq!(
        row.status,
        BusinessInvitationStatus::Expired,
        "the refused resend changed nothing"
    );
    assert!(row.resent_at.is_none() && row.license_released_at.is_some());
    assert_eq!(t.outbox_rows(&first.id).await, 1);
}

/// A replay answers only what the caller may still do: authentication and the role rules run
/// before it, and a key belongs to the user who sent it, not to the whole business.
async fn replays_keep_authorisation(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    let id = t.invitation(&b, "cy@example.com", Role::Agent).await;
    let resend = async |client: &leadping_invitations_client::Client| {
        client
            .resend_business_invitation()
            .invitation_id(&id)
            .idempotency_key("K")
            .send()
            .await
    };
    let (first, replayed) = answered(resend(&owner).await);
    assert!(!replayed, "the first answer is not a replay");
    let (again, replayed) = answered(resend(&owner).await);
    assert!(
        replayed,
        "the same caller, key and request: a replay, marked"
    );
    assert_eq!(again, first);

    // Another role: refused by the role rule, not answered from the Owner's record.
    expect_problem(
        resend(&t.as_role(&b, Role::Agent)).await,
        403,
        ProblemType::Forbidden,
    );
    // Another user whom the rules allow: the key is theirs, a request of its own (inside the
    // cooldown of the Owner's resend), not the Owner's answer.
    retry_after(
        resend(&t.as_role(&b, Role::Admin)).await,
        ProblemType::ResendCooldown,
    );
    // Another business: the same 404 as for any id it does not have.
    let c = t.business("birch").await;
    expect_problem(
        resend(&t.as_role(&c, Role::Owner)).await,
        404,
        ProblemType::NotFound,
    );
    // The same user after losing the role the first request needed: refused, not replayed.
    let demote = |role| {
        let (bid, uid) = (business_id(&b.id), user_id(&b.owner));
        move |tx: &mut leadping_invitations::store::Tx<'_>| tx.set_member_role(&bid, &uid, role)
    };
    assert!(t.with_store(demote(Role::Agent)).await);
    expect_problem(resend(&owner).await, 403, ProblemType::Forbidden);
    assert!(t.with_store(demote(Role::Owner)).await);
    let (again, replayed) = answered(resend(&owner).await);
    assert!(
        replayed && again == first,
        "the role back, the replay is back"
    );
    assert_eq!(
        t.outbox_rows(&id).await,
        2,
        "one invitation email, one resend"
    );

    // Create: the role rule (Admins may not invite Owners) runs before the replay too.
    let owner_invite = || CreateBusinessInvitationRequest {
        email: "dee@example.com".into(),
        role: Some(BusinessInvitationRole::Owner),
    };
    let create = async |client: &leadping_invitations_client::Client| {
        client
            .create_business_invitation()
            .idempotency_key("K2")
            .body(owner_invite())
            .send()
            .await
    };
    let (created, replayed) = answered(create(&owner).await);
    assert!(!replayed);
    assert_eq!(answered(create(&owner).await), (created.clone(), true));
    expect_problem(
        create(&t.as_role(&b, Role::Agent)).await,
        403,
        ProblemType::Forbidden,
    );
    expect_problem(
        create(&t.as_role(&b, Role::Admin)).await,
        403,
        ProblemType::Forbidden,
    );
    assert!(t.with_store(demote(Role::Admin)).await);
    expect_problem(create(&owner).await, 403, ProblemType::Forbidden);
    assert!(t.with_store(demote(Role::Owner)).await);
    // The Admin's own key "K2" is not the Owner's: with another request it is not "reused".
    let (admins, replayed) = answered(
        t.as_role(&b, Role::Admin)
            .create_business_invitation()
            .idempotency_key("K2")
            .body(CreateBusinessInvitationRequest {
                email: "eve@example.com".into(),
                role: None,
            })
            .send()
            .await,
    );
    assert!(!replayed && admins.email == "eve@example.com");
    let listed = ok(owner.list_business_invitations().send().await);
    assert_eq!(listed.len(), 3, "cy, dee and eve, each once: {listed:?}");
}

async fn idempotency_keys_replay_and_refuse_misuse(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    let body = || CreateBusinessInvitationRequest {
        email: "ann@example.com".into(),
        role: Some(BusinessInvitationRole::Admin),
    };
    let first = ok(owner
        .create_business_invitation()
        .idempotency_key("key-1")
        .body(body())
        .send()
        .await);
    let replay = ok(owner
        .create_business_invitation()
        .idempotency_key("key-1")
        .body(body())
        .send()
        .await);
    assert_eq!(
        replay, first,
        "the same key and request replay the first response"
    );
    assert_eq!(ok(owner.list_business_invitations().send().await).len(), 1);
    let other = CreateBusinessInvitationRequest {
        email: "bo@example.com".into(),
        role: None,
    };
    expect_problem(
        owner
            .create_business_invitation()
            .idempotency_key("key-1")
            .body(other)
            .send()
            .await,
        422,
        ProblemType::IdempotencyKeyReused,
    );

    let id = t.invitation(&b, "cy@example.com", Role::Agent).await;
    let r1 = ok(owner
        .resend_business_invitation()
        .invitation_id(&id)
        .idempotency_key("key-2")
        .send()
        .await);
    let r2 = ok(owner
        .resend_business_invitation()
        .invitation_id(&id)
        .idempotency_key("key-2")
        .send()
        .await);
    assert_eq!(
        r1, r2,
        "a replayed resend is not a second resend (no cooldown 429)"
    );
    assert_eq!(t.outbox_rows(&id).await, 2);
    expect_problem(
        owner
            .resend_business_invitation()
            .invitation_id(&first.id)
            .idempotency_key("key-2")
            .send()
            .await,
        422,
        ProblemType::IdempotencyKeyReused,
    );

    // Keys belong to a business: another business may use the same key for its own request.
    let c = t.business("birch").await;
    ok(t.as_role(&c, Role::Owner)
        .create_business_invitation()
        .idempotency_key("key-1")
        .body(body())
        .send()
        .await);

    // The contract bounds the key (1 to 255 characters): the generated client refuses a longer
    // one before sending, and the server refuses it from anyone else.
    let long = "k".repeat(256);
    let refused = owner
        .create_business_invitation()
        .idempotency_key(long.clone())
        .body(body())
        .send()
        .await;
    assert!(
        matches!(
            refused,
            Err(leadping_invitations_client::Error::InvalidRequest(_))
        ),
        "{refused:?}"
    );
    let response = t
        .http
        .post(t.url("/businesses/me/invitations"))
        .bearer_auth(token(&b.id, &b.owner, "Owner"))
        .header("Idempotency-Key", long)
        .json(&serde_json::json!({"email": "zed@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let problem: Problem = response.json().await.unwrap();
    assert_eq!(problem.type_, ProblemType::Validation.uri());
    assert!(
        problem.detail.contains("Idempotency-Key"),
        "{}",
        problem.detail
    );
}

/// Awaits concurrent calls' statuses: exactly one 200, every other one `loser`.
async fn assert_exactly_one_wins(calls: Vec<tokio::task::JoinHandle<u16>>, loser: u16) {
    let mut statuses = Vec::new();
    for c in calls {
        statuses.push(c.await.unwrap());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == loser).count(),
        statuses.len() - 1,
        "{statuses:?}"
    );
}

/// Fires 24 concurrent resends of one invitation, spread over `clients`: exactly one may win,
/// the rest must hit the cooldown.
async fn assert_one_resend_wins(clients: &[leadping_invitations_client::Client], id: &str) {
    let calls: Vec<_> = (0..24)
        .map(|i| {
            let client = clients[i % clients.len()].clone();
            let id = id.to_string();
            tokio::spawn(async move {
                match client
                    .resend_business_invitation()
                    .invitation_id(&id)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(e) => e.status().unwrap().as_u16(),
                }
            })
        })
        .collect();
    assert_exactly_one_wins(calls, 429).await;
}

async fn concurrent_resends_change_state_once(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    assert_one_resend_wins(&[t.as_role(&b, Role::Owner)], &id).await;
    assert_eq!(
        t.outbox_rows(&id).await,
        2,
        "one row for the create, one for the single resend"
    );
}

async fn concurrent_creates_for_one_email_make_one_invitation(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let client = t.as_role(&b, Role::Owner);
    let calls = (0..20).map(|i| {
        let client = client.clone();
        // Different spellings of one address.
        let email = if i % 2 == 0 {
            "ann@example.com"
        } else {
            "ANN@Example.com"
        };
        tokio::spawn(async move {
            client
                .create_business_invitation()
                .body(CreateBusinessInvitationRequest {
                    email: email.into(),
                    role: None,
                })
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or_else(|e| e.status().unwrap().as_u16())
        })
    });
    assert_exactly_one_wins(calls.collect(), 409).await;
    assert_eq!(ok(client.list_business_invitations().send().await).len(), 1);
}

async fn create_validates_and_refuses_duplicates(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    let create = |email: &str, role: Option<BusinessInvitationRole>| {
        owner
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: email.into(),
                role,
            })
    };

    let inv = ok(create("Ann@Example.com", None).send().await);
    assert_eq!(
        inv.role,
        BusinessInvitationRole::Agent,
        "Agent when omitted"
    );
    assert_eq!(inv.status, BusinessInvitationStatus::Pending);
    assert_eq!(
        inv.safe_message.as_deref(),
        Some("Invitation sent to A•••@Example.com.")
    );
    assert!(inv.expires_at > Utc::now() + Duration::days(6));
    assert_eq!(
        t.outbox_rows(&inv.id).await,
        1,
        "the email is queued with the invitation"
    );

    for bad in ["not-an-email", "ann@", "a b@example.com", "ann@localhost"] {
        let p = expect_problem(create(bad, None).send().await, 400, ProblemType::Validation);
        assert!(!p.detail.is_empty(), "{bad}");
    }
    expect_problem(
        create("ann@example.com", None).send().await,
        409,
        ProblemType::DuplicateInvitation,
    );
    expect_problem(
        create("admin@acme.example.com", None).send().await,
        409,
        ProblemType::AlreadyMember,
    );
    expect_problem(
        t.as_role(&b, Role::Admin)
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: "boss@example.com".into(),
                role: Some(BusinessInvitationRole::Owner),
            })
            .send()
            .await,
        403,
        ProblemType::Forbidden,
    );
    expect_problem(
        t.as_role(&b, Role::Agent)
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: "x@example.com".into(),
                role: None,
            })
            .send()
            .await,
        403,
        ProblemType::Forbidden,
    );
    ok(t.as_role(&b, Role::Admin)
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "y@example.com".into(),
            role: Some(BusinessInvitationRole::Admin),
        })
        .send()
        .await);

    // Once revoked, the address can be invited again.
    ok(owner
        .revoke_business_invitation()
        .invitation_id(&inv.id)
        .send()
        .await);
    ok(create("ann@example.com", None).send().await);
}

async fn accept_makes_a_member_and_refuses_bad_tokens(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "ann@example.com", Role::Admin).await;
    let tok = t.acceptance_token(&b.id, &id).await;
    let accept = |token: &str, email: Option<&str>| {
        t.client
            .accept_business_invitation()
            .body(AcceptBusinessInvitationRequest {
                token: token.into(),
                email: email.map(Into::into),
                first_name: Some("Ann".parse().unwrap()),
                last_name: Some("Lee".parse().unwrap()),
            })
    };

    let looked_up = ok(t
        .client
        .get_business_invitation_by_token()
        .token(&tok)
        .send()
        .await);
    assert_eq!(looked_up.id, id);
    assert_eq!(looked_up.business_name, "acme Inc");

    expect_problem(
        accept(&tok, Some("someone@example.com")).send().await,
        409,
        ProblemType::EmailMismatch,
    );
    let mut forged = tok.clone();
    forged.replace_range(forged.len() - 4.., "0000");
    expect_problem(
        accept(&forged, None).send().await,
        404,
        ProblemType::NotFound,
    );
    expect_problem(
        t.client
            .get_business_invitation_by_token()
            .token(&forged)
            .send()
            .await,
        404,
        ProblemType::NotFound,
    );
    expect_problem(
        accept("garbage", None).send().await,
        404,
        ProblemType::NotFound,
    );

    let accepted = ok(accept(&tok, Some("ANN@example.com")).send().await);
    assert_eq!(accepted.status, BusinessInvitationStatus::Accepted);
    assert!(accepted.accepted_at.is_some());
    assert_eq!(
        accepted.safe_message.as_deref(),
        Some("Welcome to acme Inc.")
    );
    expect_problem(
        accept(&tok, None).send().await,
        409,
        ProblemType::InvitationAccepted,
    );
    // The new member holds the invited role: the address is now a member.
    expect_problem(
        t.as_role(&b, Role::Owner)
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: "ann@example.com".into(),
                role: None,
            })
            .send()
            .await,
        409,
        ProblemType::AlreadyMember,
    );
    let bid = business_id(&b.id);
    let members = t.with_store(move |tx| tx.members(&bid)).await;
    let ann = members
        .iter()
        .find(|m| m.email == "ann@example.com")
        .expect("member created");
    assert_eq!(ann.role, Role::Admin);

    let revoked = t.invitation(&b, "bo@example.com", Role::Agent).await;
    let revoked_tok = t.acceptance_token(&b.id, &revoked).await;
    ok(t.as_role(&b, Role::Owner)
        .revoke_business_invitation()
        .invitation_id(&revoked)
        .send()
        .await);
    expect_problem(
        accept(&revoked_tok, None).send().await,
        409,
        ProblemType::InvitationRevoked,
    );

    let expired = t
        .invitation_at(
            &b,
            "cy@example.com",
            Role::Agent,
            Utc::now() - Duration::days(8),
        )
        .await;
    let expired_tok = t.acceptance_token(&b.id, &expired).await;
    expect_problem(
        accept(&expired_tok, None).send().await,
        409,
        ProblemType::InvitationExpired,
    );
}

async fn revoke_is_idempotent_and_refuses_accepted(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let owner = t.as_role(&b, Role::Owner);
    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    ok(owner
        .revoke_business_invitation()
        .invitation_id(&id)
        .send()
        .await);
    ok(owner
        .revoke_business_invitation()
        .invitation_id(&id)
        .send()
        .await);
    let bid = business_id(&b.id);
    let ledger = t.with_store(move |tx| tx.ledger(&bid)).await;
    assert_eq!(
        ledger.iter().filter(|e| e.delta == -1).count(),
        1,
        "the second revoke released nothing"
    );

    let owner_inv = t.invitation(&b, "boss@example.com", Role::Owner).await;
    expect_problem(
        t.as_role(&b, Role::Admin)
            .revoke_business_invitation()
            .invitation_id(&owner_inv)
            .send()
            .await,
        403,
        ProblemType::Forbidden,
    );
    expect_problem(
        t.as_role(&b, Role::Agent)
            .revoke_business_invitation()
            .invitation_id(&owner_inv)
            .send()
            .await,
        403,
        ProblemType::Forbidden,
    );

    let accepted = t.invitation(&b, "cy@example.com", Role::Agent).await;
    let tok = t.acceptance_token(&b.id, &accepted).await;
    accept(&t, tok).await;
    expect_problem(
        owner
            .revoke_business_invitation()
            .invitation_id(&accepted)
            .send()
            .await,
        409,
        ProblemType::InvitationAccepted,
    );
}

async fn list_is_newest_first_with_status_computed_when_read(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let old = t
        .invitation_at(
            &b,
            "old@example.com",
            Role::Agent,
            Utc::now() - Duration::days(8),
        )
        .await;
    let mid = t
        .invitation_at(
            &b,
            "mid@example.com",
            Role::Agent,
            Utc::now() - Duration::days(1),
        )
        .await;
    let new = t.invitation(&b, "new@example.com", Role::Admin).await;
    for role in [Role::Owner, Role::Admin, Role::Agent] {
        let rows = ok(t.as_role(&b, role).list_business_invitations().send().await);
        let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            vec![new.as_str(), mid.as_str(), old.as_str()],
            "{role:?}"
        );
        assert_eq!(rows[2].status, BusinessInvitationStatus::Expired);
        assert_eq!(rows[1].status, BusinessInvitationStatus::Pending);
    }
    // The wire rows carry no safeMessage.
    let raw: serde_json::Value = t
        .http
        .get(t.url("/businesses/me/invitations"))
        .bearer_auth(token(&b.id, &b.owner, "Owner"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(raw[0].get("safeMessage").is_none());
    assert_eq!(raw[0]["licenseQuantity"], "6");
}

async fn non_members_are_forbidden(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    // A valid token for a user who is not a member, and for a business that does not exist.
    for client in [
        t.client_with_token(&token(&b.id, "usr_stranger", "Owner")),
        t.client_with_token(&token("biz_nowhere", &b.owner, "Owner")),
    ] {
        expect_problem(
            client.list_business_invitations().send().await,
            403,
            ProblemType::Forbidden,
        );
        expect_problem(
            client
                .resend_business_invitation()
                .invitation_id(&id)
                .send()
                .await,
            403,
            ProblemType::Forbidden,
        );
        expect_problem(
            client
                .revoke_business_invitation()
                .invitation_id(&id)
                .send()
                .await,
            403,
            ProblemType::Forbidden,
        );
        expect_problem(
            client
                .create_business_invitation()
                .body(CreateBusinessInvitationRequest {
                    email: "x@example.com".into(),
                    role: None,
                })
                .send()
                .await,
            403,
            ProblemType::Forbidden,
        );
    }
    // The role that counts is the stored one: an Agent's token claiming Owner is still an Agent.
    let claims_owner = t.client_with_token(&token(&b.id, &b.agent, "Owner"));
    expect_problem(
        claims_owner
            .resend_business_invitation()
            .invitation_id(&id)
            .send()
            .await,
        403,
        ProblemType::Forbidden,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_on_one_postgres_change_state_once() {
    let Some(t) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    let data_dir = std::env::temp_dir().join(format!("leadping-replicas-{}", std::process::id()));
    let url = t.database_url.clone();
    let dir = data_dir.clone();
    let (one, two) = tokio::task::spawn_blocking(move || {
        (
            ServerProcess::start(&url, &dir, "smtp://127.0.0.1:9", false),
            ServerProcess::start(&url, &dir, "smtp://127.0.0.1:9", false),
        )
    })
    .await
    .unwrap();

    let tok = token(&b.id, &b.owner, "Owner");
    assert_one_resend_wins(&[one.client(&tok), two.client(&tok)], &id).await;
    assert_eq!(t.outbox_rows(&id).await, 2);
    drop((one, two));
    let _ = std::fs::remove_dir_all(data_dir);
}
