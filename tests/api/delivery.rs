//! Invitation email against a real SMTP relay on 127.0.0.1: content, permanent and temporary
//! failures, a relay that is down, a server killed between commit and send, and two server
//! processes sharing one PostgreSQL.

use std::time::Duration as StdDuration;

use leadping_invitations::domain::Role;
use leadping_invitations::domain::rules::Policy;
use leadping_invitations_client::types::{
    BusinessInvitation, BusinessInvitationRole, BusinessInvitationStatus,
    CreateBusinessInvitationRequest,
};

use crate::helpers::{
    Backend, ServerProcess, TestApp, delivery_settings, spawn_app, spawn_app_full, temp_dir, token,
};
use crate::smtp::FakeSmtp;

crate::on_both_databases!(
    the_email_names_business_role_expiry_and_carries_the_token,
    a_permanent_rejection_is_failed_to_send_and_a_resend_starts_clean,
    temporary_failures_are_retried_then_delivered,
    temporary_failures_give_up_after_the_attempt_limit,
    a_relay_that_is_down_gets_the_message_when_it_is_back,
    a_resend_cancels_the_copy_still_waiting_for_the_relay,
    a_relay_that_hangs_is_given_up_on_before_the_claim_lapses,
    the_response_never_claims_a_delivery_that_has_not_happened,
    a_server_killed_between_commit_and_send_delivers_after_restart,
    a_server_killed_mid_send_leaves_its_claim_to_lapse_and_the_email_is_sent_again,
    a_hanging_relay_session_holds_only_its_own_email,
);

pub(crate) async fn create(
    t: &TestApp,
    b: &crate::helpers::Seeded,
    email: &str,
) -> BusinessInvitation {
    let r = t
        .as_role(b, Role::Owner)
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: email.into(),
            role: Some(BusinessInvitationRole::Admin),
        })
        .send()
        .await;
    match r {
        Ok(v) => v.into_inner(),
        Err(e) => panic!("create failed: {e:?}"),
    }
}

/// Resends as the Owner; the resend must succeed.
pub(crate) async fn resend(
    t: &TestApp,
    b: &crate::helpers::Seeded,
    id: &str,
) -> BusinessInvitation {
    match t
        .as_role(b, Role::Owner)
        .resend_business_invitation()
        .invitation_id(id)
        .send()
        .await
    {
        Ok(v) => v.into_inner(),
        Err(e) => panic!("resend failed: {e:?}"),
    }
}

pub(crate) async fn row(
    t: &TestApp,
    b: &crate::helpers::Seeded,
    id: &str,
) -> leadping_invitations_client::types::BusinessInvitationRow {
    let rows = t
        .as_role(b, Role::Owner)
        .list_business_invitations()
        .send()
        .await
        .unwrap()
        .into_inner();
    rows.into_iter().find(|r| r.id == id).expect("listed")
}

async fn the_email_names_business_role_expiry_and_carries_the_token(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    let inv = create(&t, &b, "ann@example.com").await;
    // The response waited for the first attempt, which the relay accepted.
    assert!(inv.sent_at.is_some(), "sentAt records the delivery");
    assert_eq!(
        inv.safe_message.as_deref(),
        Some("Invitation sent to a•••@example.com.")
    );
    let mails = t.smtp.received_for("ann@example.com");
    assert_eq!(mails.len(), 1);
    let text = mails[0].text();
    let token = t.acceptance_token(&b.id, &inv.id).await;
    assert!(
        text.contains(&format!(
            "https://app.example.com/invitations/accept?token={token}"
        )),
        "{text}"
    );
    assert!(
        text.contains("acme Inc invited you to join their team on Leadping as an Admin."),
        "{text}"
    );
    assert!(
        text.contains(&inv.expires_at.format("%B %-d, %Y at %H:%M UTC").to_string()),
        "{text}"
    );
    assert!(text.contains("text/plain") && text.contains("text/html"));
    let message_id = mails[0].header("Message-ID").expect("a Message-ID");
    assert!(
        message_id.contains(&inv.id) && message_id.ends_with("@leadping.example.com>"),
        "{message_id}"
    );
    assert_eq!(
        mails[0].header("Subject").as_deref(),
        Some("acme Inc invited you to join Leadping")
    );

    // A resend sends the same token again, in a message of its own.
    let id = t.invitation(&b, "bo@example.com", Role::Agent).await;
    let resent = t
        .as_role(&b, Role::Owner)
        .resend_business_invitation()
        .invitation_id(&id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        resent.safe_message.as_deref(),
        Some("Invitation resent to b•••@example.com.")
    );
    let mails = t.smtp.received_for("bo@example.com");
    assert_eq!(mails.len(), 2);
    let token = t.acceptance_token(&b.id, &id).await;
    assert!(mails.iter().all(|m| m.text().contains(&token)));
    assert_ne!(mails[0].header("Message-ID"), mails[1].header("Message-ID"));
    assert!(
        mails[1]
            .text()
            .contains("This is a new copy of your invitation.")
    );
    assert_eq!(
        resent.sent_at,
        row(&t, &b, &id).await.sent_at,
        "sentAt stays the first delivery"
    );
}

async fn a_permanent_rejection_is_failed_to_send_and_a_resend_starts_clean(backend: Backend) {
    let policy = Policy {
        resend_cooldown: chrono::Duration::seconds(0),
        ..Policy::default()
    };
    let Some(t) = spawn_app_full(backend, policy, delivery_settings()).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.reject("ann@example.com");
    let inv = create(&t, &b, "ann@example.com").await;
    assert_eq!(inv.status, BusinessInvitationStatus::FailedToSend);
    assert!(inv.sent_at.is_none());
    let reason = inv.send_failure_reason.clone().expect("a reason");
    assert!(
        reason.contains("550") && reason.contains("No such user"),
        "{reason}"
    );
    assert_eq!(
        inv.safe_message.as_deref(),
        Some(
            "The invitation could not be delivered to a•••@example.com. Check the address, then resend it."
        )
    );
    // No retry for a permanent failure.
    tokio::time::sleep(StdDuration::from_millis(400)).await;
    t.drain_outbox().await;
    assert!(t.smtp.received().is_empty());
    assert_eq!(
        row(&t, &b, &inv.id).await.status,
        BusinessInvitationStatus::FailedToSend
    );

    t.smtp.accept("ann@example.com");
    let resent = resend(&t, &b, &inv.id).await;
    assert_eq!(resent.status, BusinessInvitationStatus::Resent);
    assert_eq!(resent.send_failure_reason, None);
    assert!(resent.sent_at.is_some());
    assert_eq!(t.smtp.received_for("ann@example.com").len(), 1);
}

async fn temporary_failures_are_retried_then_delivered(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.tempfail("ann@example.com", 2);
    let inv = create(&t, &b, "ann@example.com").await;
    assert_eq!(inv.status, BusinessInvitationStatus::Pending);
    assert!(
        inv.sent_at.is_none(),
        "not delivered when the response was written"
    );
    assert_eq!(
        inv.safe_message.as_deref(),
        Some("Delivery to a•••@example.com is delayed; it will be retried automatically.")
    );
    // The relay counts a message when it replies 250; the worker records the delivery just after,
    // so wait for the record, not for the relay.
    let delivered = t
        .eventually(10, async || row(&t, &b, &inv.id).await.sent_at.is_some())
        .await;
    assert!(delivered, "delivered after the relay stopped refusing");
    assert_eq!(t.smtp.received_for("ann@example.com").len(), 1);
    let r = row(&t, &b, &inv.id).await;
    assert_eq!(r.status, BusinessInvitationStatus::Pending);
    assert_eq!(r.send_failure_reason, None);
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    t.drain_outbox().await;
    assert_eq!(t.smtp.received_for("ann@example.com").len(), 1, "sent once");
}

async fn temporary_failures_give_up_after_the_attempt_limit(backend: Backend) {
    let Some(t) = spawn_app(backend).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.tempfail("ann@example.com", 100);
    let inv = create(&t, &b, "ann@example.com").await;
    let failed = t
        .eventually(10, async || {
            row(&t, &b, &inv.id).await.status == BusinessInvitationStatus::FailedToSend
        })
        .await;
    assert!(failed, "given up after max_attempts");
    let reason = row(&t, &b, &inv.id).await.send_failure_reason.unwrap();
    assert!(
        reason.starts_with("Gave up after 3 attempts") && reason.contains("451"),
        "{reason}"
    );
    assert!(t.smtp.received().is_empty());
}

async fn a_relay_that_is_down_gets_the_message_when_it_is_back(backend: Backend) {
    let mut settings = delivery_settings();
    settings.max_attempts = 50;
    let Some(mut t) = spawn_app_full(backend, Policy::default(), settings).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.stop();
    let first = create(&t, &b, "ann@example.com").await;
    let second = create(&t, &b, "bo@example.com").await;
    assert!(first.sent_at.is_none() && second.sent_at.is_none());
    assert_eq!(
        first.status,
        BusinessInvitationStatus::Pending,
        "connection refused is not a failure yet"
    );
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    t.smtp.restart().await;
    // Wait for the recorded deliveries: the relay counts a message a moment before the worker
    // records it.
    let delivered = t
        .eventually(15, async || {
            row(&t, &b, &first.id).await.sent_at.is_some()
                && row(&t, &b, &second.id).await.sent_at.is_some()
        })
        .await;
    assert!(
        delivered,
        "every message arrives once the relay is back: {:?} received",
        t.smtp.received().len()
    );
    assert_eq!(t.smtp.received_for("ann@example.com").len(), 1);
    assert_eq!(t.smtp.received_for("bo@example.com").len(), 1);
}

async fn a_resend_cancels_the_copy_still_waiting_for_the_relay(backend: Backend) {
    let mut settings = delivery_settings();
    settings.max_attempts = 50;
    let policy = Policy {
        resend_cooldown: chrono::Duration::seconds(0),
        ..Policy::default()
    };
    let Some(mut t) = spawn_app_full(backend, policy, settings).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.stop();
    let inv = create(&t, &b, "ann@example.com").await;
    assert!(inv.sent_at.is_none(), "the relay is down");
    let resent = resend(&t, &b, &inv.id).await;
    assert_eq!(resent.status, BusinessInvitationStatus::Resent);
    t.smtp.restart().await;
    let delivered = t
        .eventually(15, async || row(&t, &b, &inv.id).await.sent_at.is_some())
        .await;
    assert!(delivered, "the resent email arrives once the relay is back");
    // Give the older copy every chance to show up: it must not.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    t.drain_outbox().await;
    let mails = t.smtp.received_for("ann@example.com");
    assert_eq!(mails.len(), 1, "one email, not the create's copy as well");
    assert!(
        mails[0]
            .text()
            .contains("This is a new copy of your invitation."),
        "the one sent is the resend"
    );
    let r = row(&t, &b, &inv.id).await;
    assert_eq!(r.status, BusinessInvitationStatus::Resent);
    assert_eq!(
        r.send_failure_reason, None,
        "the cancelled copy is no failure"
    );
}

async fn a_relay_that_hangs_is_given_up_on_before_the_claim_lapses(backend: Backend) {
    let mut settings = delivery_settings();
    settings.max_attempts = 50;
    settings.lease = StdDuration::from_secs(2);
    settings.wait = StdDuration::from_millis(0);
    let Some(t) = spawn_app_full(backend, Policy::default(), settings).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.stall("ann@example.com");
    let inv = create(&t, &b, "ann@example.com").await;
    let id = crate::helpers::invitation_id(&inv.id);
    let outbox = t
        .with_store(move |tx| tx.latest_outbox_id(&id))
        .await
        .expect("an outbox row");
    // The attempt ends as a transient failure, recorded while this worker still holds the row.
    // `eventually` waits on the drain too, so the bound goes around the whole wait: a send left
    // to hang would hold it far longer.
    let given_up = tokio::time::timeout(
        StdDuration::from_secs(6),
        t.eventually(6, async || {
            t.with_store(move |tx| tx.outbox_state(outbox))
                .await
                .is_some_and(|s| {
                    s.attempts >= 1
                        && s.last_error
                            .as_deref()
                            .is_some_and(|e| e.contains("did not finish"))
                })
        }),
    )
    .await;
    assert_eq!(
        given_up,
        Ok(true),
        "the hung send was given up within half the lease"
    );
    t.smtp.unstall("ann@example.com");
    let delivered = t
        .eventually(15, async || row(&t, &b, &inv.id).await.sent_at.is_some())
        .await;
    assert!(delivered, "retried and delivered once the relay answers");
    assert_eq!(t.smtp.received_for("ann@example.com").len(), 1);
}

/// No send waits for another: while a relay session hangs on one recipient, the other
/// requests send their own emails and are answered as soon as the relay takes them.
async fn a_hanging_relay_session_holds_only_its_own_email(backend: Backend) {
    let mut settings = delivery_settings();
    settings.lease = StdDuration::from_secs(20);
    settings.wait = StdDuration::from_secs(5);
    let Some(t) = spawn_app_full(backend, Policy::default(), settings).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.stall("slow@example.com");
    let slow = {
        let client = t.as_role(&b, Role::Owner);
        tokio::spawn(async move {
            client
                .create_business_invitation()
                .body(CreateBusinessInvitationRequest {
                    email: "slow@example.com".into(),
                    role: None,
                })
                .send()
                .await
                .map(|r| r.into_inner())
        })
    };
    // (Not `eventually`: its drain would wait for the hanging send.)
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while t.smtp.stalls() == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the slow email is under way"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    for i in 0..6 {
        let started = std::time::Instant::now();
        let fast = create(&t, &b, &format!("fast{i}@example.com")).await;
        assert!(
            fast.sent_at.is_some(),
            "answered as sent: {:?}",
            fast.safe_message
        );
        assert!(
            started.elapsed() < StdDuration::from_secs(2),
            "not held by the hanging session: {:?}",
            started.elapsed()
        );
    }
    assert!(
        !slow.is_finished(),
        "the slow one is still waiting for its relay"
    );
    t.smtp.unstall("slow@example.com");
    let slow = slow.await.unwrap().unwrap();
    assert!(slow.sent_at.is_some(), "{:?}", slow.safe_message);
}

async fn the_response_never_claims_a_delivery_that_has_not_happened(backend: Backend) {
    let mut settings = delivery_settings();
    settings.wait = StdDuration::from_millis(0);
    settings.concurrency = 0;
    let Some(t) = spawn_app_full(backend, Policy::default(), settings).await else {
        return;
    };
    let b = t.business("acme").await;
    let inv = create(&t, &b, "ann@example.com").await;
    assert!(inv.sent_at.is_none());
    assert_eq!(
        inv.safe_message.as_deref(),
        Some("Invitation to a•••@example.com is queued for delivery.")
    );
    assert!(t.smtp.received().is_empty());
    // Delivery goes on in the background (here: drained by hand).
    t.drain_outbox().await;
    assert_eq!(t.smtp.received().len(), 1);
    assert!(row(&t, &b, &inv.id).await.sent_at.is_some());
}

async fn a_server_killed_between_commit_and_send_delivers_after_restart(backend: Backend) {
    let dir = temp_dir("kill");
    let Some(database_url) = crate::helpers::process_database(backend, &dir).await else {
        return;
    };
    let smtp = FakeSmtp::start().await;
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    // The first process commits but never sends: it is killed with the email still queued.
    let first = tokio::task::spawn_blocking(move || ServerProcess::start(&url, &d, &s, false))
        .await
        .unwrap();
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "k").await;
    let created = first
        .client(&token("biz_k", "usr_k", "Owner"))
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "ann@example.com".into(),
            role: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(created.sent_at.is_none());
    first.kill();
    assert!(smtp.received().is_empty());

    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let second = tokio::task::spawn_blocking(move || ServerProcess::start(&url, &d, &s, true))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
    while smtp.received().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert_eq!(
        smtp.received_for("ann@example.com").len(),
        1,
        "delivered by the restarted server"
    );
    drop(second);
    drop(seed);
    crate::helpers::remove_process_database(&database_url, &dir);
}

/// A request sends its own email under a claim it took in its own commit. Killed while the
/// relay had the message but before the outcome was recorded, the process leaves the row
/// claimed: once the lease lapses another process sends it again, with the same Message-ID
/// (so that the copy is recognisable), and records it once.
async fn a_server_killed_mid_send_leaves_its_claim_to_lapse_and_the_email_is_sent_again(
    backend: Backend,
) {
    let dir = temp_dir("kill-mid-send");
    let Some(database_url) = crate::helpers::process_database(backend, &dir).await else {
        return;
    };
    let smtp = FakeSmtp::start().await;
    // The relay takes the message, then a while to say so.
    smtp.slow(StdDuration::from_millis(1500));
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "m").await;
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let first = tokio::task::spawn_blocking(move || ServerProcess::start(&url, &d, &s, true))
        .await
        .unwrap();
    let created = first
        .client(&token("biz_m", "usr_m", "Owner"))
        .create_business_invitation()
        .body(CreateBusinessInvitationRequest {
            email: "ann@example.com".into(),
            role: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(
        created.sent_at.is_none(),
        "answered before the relay replied"
    );
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    first.kill();
    smtp.slow(StdDuration::ZERO);

    let started = std::time::Instant::now();
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let second = tokio::task::spawn_blocking(move || ServerProcess::start(&url, &d, &s, true))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
    while smtp.received_for("ann@example.com").len() < 2 && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let mails = smtp.received_for("ann@example.com");
    assert_eq!(
        mails.len(),
        2,
        "the killed send's copy, and the one sent again"
    );
    assert_eq!(
        mails[0].header("Message-ID"),
        mails[1].header("Message-ID"),
        "the copy sent again is recognisable as the same message"
    );
    assert!(
        started.elapsed() >= StdDuration::from_millis(500),
        "sent again only once the claim had lapsed"
    );
    let (waiting, _) = seed
        .store
        .transaction(|tx| tx.outbox_backlog())
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    let mut waiting = waiting;
    while waiting > 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        waiting = seed
            .store
            .transaction(|tx| tx.outbox_backlog())
            .await
            .unwrap()
            .0;
    }
    assert_eq!(waiting, 0, "recorded as delivered");
    drop((second, seed));
    crate::helpers::remove_process_database(&database_url, &dir);
}

/// An outcome the recorder cannot write for a reason other than the database being down (here
/// an invitation row that no longer reads: a bug, or a hand-edited database) holds back no other:
/// it is left to its lease, and the outcomes recorded with it and after it are recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_outcome_that_cannot_be_recorded_holds_back_no_other() {
    let mut settings = delivery_settings();
    settings.lease = StdDuration::from_secs(30);
    settings.wait = StdDuration::from_secs(5);
    let Some(t) = spawn_app_full(Backend::Postgres, Policy::default(), settings).await else {
        eprintln!("SKIPPED (PostgreSQL): TEST_DATABASE_URL is not set");
        return;
    };
    let b = t.business("acme").await;
    t.smtp.stall("poison@example.com");
    t.smtp.stall("fine@example.com");
    let spawn_create = |email: &'static str| {
        let client = t.as_role(&b, Role::Owner);
        tokio::spawn(async move {
            client
                .create_business_invitation()
                .body(CreateBusinessInvitationRequest {
                    email: email.into(),
                    role: None,
                })
                .send()
                .await
                .map(|r| r.into_inner())
        })
    };
    let poison = spawn_create("poison@example.com");
    let fine = spawn_create("fine@example.com");
    let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
    while t.smtp.stalls() < 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "both sends are under way"
        );
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    // While both wait for the relay, the first's invitation stops reading as one.
    let url = t.database_url.clone();
    tokio::task::spawn_blocking(move || {
        let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        c.batch_execute(
            "UPDATE invitations SET status = 'Bogus' WHERE email = 'poison@example.com'",
        )
        .unwrap();
    })
    .await
    .unwrap();
    t.smtp.unstall("poison@example.com");
    t.smtp.unstall("fine@example.com");
    let _ = poison.await.unwrap();
    assert!(fine.await.unwrap().unwrap().sent_at.is_some());
    // Recorded, the one beside the poisoned outcome and one sent after it.
    let later = create(&t, &b, "later@example.com").await;
    assert!(later.sent_at.is_some());
    let recorded = async |email: &'static str| {
        let url = t.database_url.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
            c.query_one(
                "SELECT COUNT(*) FROM outbox o JOIN invitations i ON i.id = o.invitation_id \
                 WHERE i.email = $1 AND o.delivered_at IS NOT NULL",
                &[&email],
            )
            .unwrap()
            .get::<_, i64>(0)
                == 1
        })
        .await
        .unwrap()
    };
    let deadline = std::time::Instant::now() + StdDuration::from_secs(10);
    while !(recorded("fine@example.com").await && recorded("later@example.com").await) {
        assert!(
            std::time::Instant::now() < deadline,
            "the other outcomes were recorded"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    assert!(!recorded("poison@example.com").await, "left to its lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_server_processes_on_one_postgres_send_each_message_once() {
    let Some(database_url) = tokio::task::spawn_blocking(crate::helpers::fresh_postgres_database)
        .await
        .unwrap()
    else {
        return;
    };
    let smtp = FakeSmtp::start().await;
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "r").await;
    let dir = temp_dir("replicas");
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let (one, two) = tokio::task::spawn_blocking(move || {
        (
            ServerProcess::start(&url, &d, &s, true),
            ServerProcess::start(&url, &d, &s, true),
        )
    })
    .await
    .unwrap();
    let tok = token("biz_r", "usr_r", "Owner");
    let clients = [one.client(&tok), two.client(&tok)];
    let n = 30;
    for i in 0..n {
        clients[i % 2]
            .create_business_invitation()
            .body(CreateBusinessInvitationRequest {
                email: format!("person{i}@example.com"),
                role: None,
            })
            .send()
            .await
            .unwrap();
    }
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    while smtp.received().len() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    // Give a duplicate the chance to show up.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let received = smtp.received();
    assert_eq!(received.len(), n, "each message exactly once");
    let mut ids: Vec<String> = received
        .iter()
        .map(|m| m.header("Message-ID").unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    drop((one, two, seed));
    crate::helpers::remove_process_database(&database_url, &dir);
}
