//! Responses stay true under interleavings that load brings about: a resend that waited for the
//! business lock, an email superseded while its request waits for it, and an email being sent
//! when a resend comes.

use std::time::Duration as StdDuration;

use leadping_invitations::domain::rules::Policy;
use leadping_invitations::domain::{OutboxId, Role};
use leadping_invitations::store::OutboxState;
use leadping_invitations_client::types::BusinessInvitationStatus;

use crate::delivery::{create, resend, row};
use crate::helpers::{Backend, TestApp, delivery_settings, spawn_app_full};

crate::on_both_databases!(
    a_resend_that_waited_for_the_lock_judges_the_cooldown_by_the_time_it_got_it,
    a_request_whose_email_a_later_resend_superseded_answers_at_once_and_truly,
    an_email_being_sent_when_a_resend_comes_is_recorded_as_sent_and_nothing_else,
);

fn no_cooldown() -> Policy {
    Policy {
        resend_cooldown: chrono::Duration::seconds(0),
        ..Policy::default()
    }
}

/// Waits (up to ten seconds, without draining the outbox) until `check` holds.
async fn until(mut check: impl AsyncFnMut() -> bool) -> bool {
    for _ in 0..500 {
        if check().await {
            return true;
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    false
}

async fn newest_email(t: &TestApp, invitation_id: &str) -> OutboxId {
    let id = crate::helpers::invitation_id(invitation_id);
    t.with_store(move |tx| tx.latest_outbox_id(&id))
        .await
        .expect("an outbox row")
}

async fn email_state(t: &TestApp, outbox_id: OutboxId) -> OutboxState {
    t.with_store(move |tx| tx.outbox_state(outbox_id))
        .await
        .expect("the outbox row exists")
}

/// Every outbox row of the invitation has ended in at most one state.
async fn no_row_ends_twice(t: &TestApp, invitation_id: &str, rows: &[OutboxId]) {
    for &id in rows {
        let s = email_state(t, id).await;
        let ends = [s.delivered, s.failed, s.superseded];
        assert!(
            ends.iter().filter(|e| **e).count() <= 1,
            "row {id} of {invitation_id} ended more than one way: {s:?}"
        );
    }
}

async fn a_resend_that_waited_for_the_lock_judges_the_cooldown_by_the_time_it_got_it(
    backend: Backend,
) {
    let mut settings = delivery_settings();
    settings.wait = StdDuration::ZERO;
    let Some(t) = spawn_app_full(backend, no_cooldown(), settings).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    let client = t.as_role(&b, Role::Owner);
    // With no cooldown every resend is allowed: one that compared a time read before it waited
    // for the lock with the resentAt of the request that held it would answer 429.
    let calls: Vec<_> = (0..16)
        .map(|_| {
            let (client, id) = (client.clone(), id.clone());
            tokio::spawn(async move {
                match client
                    .resend_business_invitation()
                    .invitation_id(&id)
                    .send()
                    .await
                {
                    Ok(r) => Ok(r.into_inner().resent_at),
                    Err(e) => Err(e.status().map(|s| s.as_u16())),
                }
            })
        })
        .collect();
    let mut last = None;
    for call in calls {
        let resent_at = call.await.unwrap().expect("every resend is allowed");
        last = last.max(resent_at);
    }
    assert_eq!(
        row(&t, &b, &id).await.resent_at,
        last,
        "the stored resentAt is the last resend's"
    );
}

async fn a_request_whose_email_a_later_resend_superseded_answers_at_once_and_truly(
    backend: Backend,
) {
    // No worker: the emails wait until the test sends them, and a request waits for its email
    // far longer than this test allows.
    let mut settings = delivery_settings();
    settings.concurrency = 0;
    settings.wait = StdDuration::from_secs(120);
    let Some(t) = spawn_app_full(backend, no_cooldown(), settings).await else {
        return;
    };
    let b = t.business("acme").await;
    let id = t.invitation(&b, "ann@example.com", Role::Agent).await;
    let spawn_resend = || {
        let (client, id) = (t.as_role(&b, Role::Owner), id.clone());
        tokio::spawn(async move {
            client
                .resend_business_invitation()
                .invitation_id(&id)
                .send()
                .await
                .map(|r| r.into_inner())
        })
    };
    let first = spawn_resend();
    assert!(
        until(async || t.outbox_rows(&id).await == 2).await,
        "the first resend queues its email"
    );
    let first_email = newest_email(&t, &id).await;
    let second = spawn_resend();
    let first = tokio::time::timeout(StdDuration::from_secs(30), first)
        .await
        .expect("woken when its email was superseded, not at the end of its wait")
        .unwrap()
        .expect("the first resend succeeded");
    assert_eq!(first.status, BusinessInvitationStatus::Resent);
    let message = first.safe_message.unwrap_or_default();
    assert!(message.contains("newer email"), "{message}");
    assert!(!message.contains("could not be delivered"), "{message}");
    assert!(first.send_failure_reason.is_none());

    assert!(until(async || t.outbox_rows(&id).await == 3).await);
    t.drain_outbox().await;
    let second = tokio::time::timeout(StdDuration::from_secs(30), second)
        .await
        .expect("woken by its own delivery")
        .unwrap()
        .expect("the second resend succeeded");
    assert_eq!(
        second.safe_message.as_deref(),
        Some("Invitation resent to a•••@example.com.")
    );
    let s = email_state(&t, first_email).await;
    assert!(s.superseded && !s.delivered && !s.failed, "{s:?}");
    // The create's email and the second resend's; never the superseded one.
    assert_eq!(t.smtp.received_for("ann@example.com").len(), 2);
    let newest = newest_email(&t, &id).await;
    no_row_ends_twice(&t, &id, &[first_email, newest]).await;
}

async fn an_email_being_sent_when_a_resend_comes_is_recorded_as_sent_and_nothing_else(
    backend: Backend,
) {
    let mut settings = delivery_settings();
    settings.wait = StdDuration::ZERO;
    settings.max_attempts = 50;
    // A send may take half the lease before it is given up: long enough to hold one mid-way.
    settings.lease = StdDuration::from_secs(30);
    let Some(t) = spawn_app_full(backend, no_cooldown(), settings).await else {
        return;
    };
    let b = t.business("acme").await;
    t.smtp.stall("ann@example.com");
    let inv = create(&t, &b, "ann@example.com").await;
    let first_email = newest_email(&t, &inv.id).await;
    assert!(
        until(async || t.smtp.stalls() >= 1).await,
        "the worker is sending the create's email"
    );
    let resent = resend(&t, &b, &inv.id).await;
    assert_eq!(resent.status, BusinessInvitationStatus::Resent);
    let second_email = newest_email(&t, &inv.id).await;
    assert_ne!(first_email, second_email);
    t.smtp.unstall("ann@example.com");
    let both_sent = t
        .eventually(20, async || {
            email_state(&t, first_email).await.delivered
                && email_state(&t, second_email).await.delivered
        })
        .await;
    assert!(
        both_sent,
        "the email in flight and the resend's both went out"
    );
    // The one in flight was sent, and is recorded as sent and as nothing else.
    let s = email_state(&t, first_email).await;
    assert!(s.delivered && !s.failed && !s.superseded, "{s:?}");
    assert_eq!(t.smtp.received_for("ann@example.com").len(), 2);
    no_row_ends_twice(&t, &inv.id, &[first_email, second_email]).await;
    let r = row(&t, &b, &inv.id).await;
    assert_eq!(r.status, BusinessInvitationStatus::Resent);
    assert!(r.sent_at.is_some());
}
