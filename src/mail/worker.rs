//! The delivery worker: claims due outbox rows, sends them, and records each outcome in the
//! store; runs inside the server process, one per replica.
//!
//! Nothing accepted is lost: a row leaves the outbox only with its outcome recorded; a claim is a
//! lease (`claimed_until`), so a worker killed mid-send leaves its rows to whoever claims next
//! once the lease runs out; on PostgreSQL, `FOR UPDATE SKIP LOCKED` keeps replicas off each
//! other's rows. Delivery is at least once: a crash after the relay accepted a message but before
//! the outcome was written sends it again, with the same Message-ID so that it can be recognised.

use std::sync::Arc;

use chrono::Duration;
use lettre::message::Mailbox;
use tokio::sync::{Notify, broadcast};

use super::{Invite, Mailer, SendOutcome, accept_link, compose};
use crate::app::{App, now};
use crate::domain::{Status, StoredStatus};
use crate::store::{OutboxRow, OutboxState, StoreError};

/// How the worker behaves.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Messages sent at once by this process; 0 runs no worker (another replica sends).
    pub concurrency: usize,
    /// Attempts before a transiently failing message is given up as "Failed to send".
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles (with jitter), up to an hour.
    pub retry_base: std::time::Duration,
    /// How long a claim protects a row from other workers.
    pub lease: std::time::Duration,
    /// How often an idle worker looks for due rows (it is also woken on every enqueue).
    pub poll: std::time::Duration,
    /// How long a create or resend waits for the first delivery attempt before answering.
    pub wait: std::time::Duration,
    pub from: Mailbox,
    /// The accept page; the token is added as `?token=`.
    pub accept_url: String,
}

struct Inner {
    app: App,
    mailer: Mailer,
    settings: DeliverySettings,
    wake: Notify,
    done: broadcast::Sender<i64>,
}

/// The worker's handle: start it, wake it, wait for a row.
#[derive(Clone)]
pub struct Delivery(Arc<Inner>);

impl std::fmt::Debug for Delivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Delivery")
            .field("mailer", &self.0.mailer)
            .field("settings", &self.0.settings)
            .finish()
    }
}

/// The delay before retry number `attempt` (1-based): `base * 2^(attempt-1)`, capped at an hour,
/// times a random factor in [0.5, 1.5) so that a relay coming back is not hit by every retry at
/// once.
pub fn backoff(base: std::time::Duration, attempt: u32, jitter_unit: f64) -> std::time::Duration {
    let exp = base.as_secs_f64() * 2f64.powi(attempt.saturating_sub(1).min(30) as i32);
    let capped = exp.min(3600.0);
    std::time::Duration::from_secs_f64(capped * (0.5 + jitter_unit.clamp(0.0, 1.0)))
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn chrono_duration(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::hours(1))
}

impl Delivery {
    pub fn new(app: App, mailer: Mailer, settings: DeliverySettings) -> Delivery {
        let (done, _) = broadcast::channel(1024);
        Delivery(Arc::new(Inner {
            app,
            mailer,
            settings,
            wake: Notify::new(),
            done,
        }))
    }

    pub fn settings(&self) -> &DeliverySettings {
        &self.0.settings
    }

    /// Runs the worker until the process ends (nothing when concurrency is 0).
    pub fn spawn(&self, log: slog::Logger) -> Option<tokio::task::JoinHandle<()>> {
        if self.0.settings.concurrency == 0 {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match this.run_once().await {
                    Ok(0) => {
                        tokio::select! {
                            _ = this.0.wake.notified() => {}
                            _ = tokio::time::sleep(this.0.settings.poll) => {}
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        slog::error!(log, "delivery worker: store failure"; "error" => %e);
                        tokio::time::sleep(this.0.settings.poll).await;
                    }
                }
            }
        }))
    }

    /// Tells the worker that a row was queued.
    pub fn wake(&self) {
        self.0.wake.notify_one();
    }

    /// Claims up to `concurrency` due rows, sends them at once, records their outcomes; returns
    /// how many it handled. Tests call it to drain the outbox.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let limit = self.0.settings.concurrency.max(1) as i64;
        let lease = chrono_duration(self.0.settings.lease);
        let rows = self
            .0
            .app
            .store
            .transaction(move |tx| {
                let now = now();
                Ok(Ok::<_, ()>(tx.claim_outbox(now, now + lease, limit)?))
            })
            .await?
            .unwrap_or_default();
        let n = rows.len();
        let mut sends = tokio::task::JoinSet::new();
        for row in rows {
            let this = self.clone();
            sends.spawn(async move { this.deliver(row).await });
        }
        // Every send runs to its end even when another fails: dropping the set would abort sends
        // the relay may already have accepted, leaving them to be sent again after the lease.
        let mut first_error = None;
        while let Some(result) = sends.join_next().await {
            match result {
                Ok(Ok(id)) => {
                    let _ = self.0.done.send(id);
                }
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(StoreError::Join(e.to_string()));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Sends one claimed row and records the outcome; returns the row's id.
    async fn deliver(&self, row: OutboxRow) -> Result<i64, StoreError> {
        let (bid, iid) = (row.business_id.clone(), row.invitation_id.clone());
        let record = self
            .0
            .app
            .store
            .transaction(move |tx| Ok(Ok::<_, ()>(tx.invitation(&bid, &iid)?)))
            .await?
            .unwrap_or_default();
        let at = now();
        let outcome = match &record {
            Some(r)
                if matches!(
                    r.invitation.status_at(at),
                    Status::Accepted | Status::Revoked | Status::Expired
                ) =>
            {
                // Sending an invitation that can no longer be accepted would lie to its recipient.
                SendOutcome::Permanent(format!(
                    "not sent: the invitation was {} before delivery",
                    r.invitation.status_at(at).describe()
                ))
            }
            None => SendOutcome::Permanent("not sent: the invitation no longer exists".to_string()),
            Some(r) => {
                let token = self.0.app.token_of(r);
                let invite = Invite {
                    outbox_id: row.id,
                    invitation_id: &r.invitation.id,
                    to: &r.invitation.email,
                    business_name: &r.invitation.business_name,
                    role: r.invitation.role,
                    expires_at: r.invitation.expires_at,
                    accept_link: accept_link(&self.0.settings.accept_url, &token),
                    resend: row.kind == "resend",
                };
                match compose(&self.0.settings.from, &invite) {
                    Ok(message) => {
                        // Half the lease: a send still under way when the claim lapses could be
                        // claimed and sent again by another worker. Past this, the relay is
                        // treated as slow (a transient failure) and the row retried later.
                        let deadline = self.0.settings.lease / 2;
                        tokio::time::timeout(deadline, self.0.mailer.send(message))
                            .await
                            .unwrap_or_else(|_| {
                                SendOutcome::Transient(format!(
                                    "the relay did not finish within {} s",
                                    deadline.as_secs_f64()
                                ))
                            })
                    }
                    Err(why) => SendOutcome::Permanent(why),
                }
            }
        };
        let settings = self.0.settings.clone();
        let outstanding = record.as_ref().is_some_and(|r| {
            !matches!(
                r.invitation.status_at(at),
                Status::Accepted | Status::Revoked | Status::Expired
            )
        });
        let id = row.id;
        self.0
            .app
            .store
            .transaction(move |tx| {
                // The business lock every other writer of its invitations takes: without it a
                // revoke, accept or resend committed while this send was under way would be
                // overwritten by the copy of the invitation read below.
                tx.lock_business(&row.business_id)?;
                let now = now();
                let attempt = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
                let final_failure = match outcome {
                    SendOutcome::Accepted => {
                        tx.outbox_delivered(row.id, now)?;
                        if let Some(mut r) = tx.invitation(&row.business_id, &row.invitation_id)?
                            && r.invitation.sent_at.is_none()
                        {
                            // sentAt is the first delivery; later deliveries (resends) keep it.
                            r.invitation.sent_at = Some(now);
                            tx.update_invitation(&r)?;
                        }
                        None
                    }
                    SendOutcome::Transient(why) if attempt < settings.max_attempts => {
                        let due =
                            now + chrono_duration(backoff(settings.retry_base, attempt, jitter()));
                        tx.outbox_retry(row.id, due, &why)?;
                        None
                    }
                    SendOutcome::Transient(why) => Some(format!(
                        "Gave up after {attempt} attempts; the last one failed: {why}."
                    )),
                    SendOutcome::Permanent(why) => Some(format!("{}.", capitalize(&why))),
                };
                if let Some(reason) = final_failure {
                    tx.outbox_failed(row.id, now, &reason)?;
                    // Only the invitation's newest email speaks for it: an old copy failing after a
                    // resend does not undo the resend.
                    let latest = tx.latest_outbox_id(&row.invitation_id)? == Some(row.id);
                    if outstanding
                        && latest
                        && let Some(mut r) = tx.invitation(&row.business_id, &row.invitation_id)?
                        && !matches!(
                            r.invitation.status,
                            StoredStatus::Accepted | StoredStatus::Revoked
                        )
                    {
                        r.invitation.status = StoredStatus::FailedToSend;
                        r.invitation.send_failure_reason = Some(reason);
                        tx.update_invitation(&r)?;
                    }
                }
                Ok(Ok::<(), ()>(()))
            })
            .await?
            .ok();
        Ok(id)
    }

    /// Waits until the first delivery attempt of `outbox_id` has an outcome, or `wait` passes;
    /// returns the row's state then.
    pub async fn wait_for_first_attempt(
        &self,
        outbox_id: i64,
    ) -> Result<Option<OutboxState>, StoreError> {
        let mut done = self.0.done.subscribe();
        self.wake();
        let state = |app: App| async move {
            app.store
                .transaction(move |tx| Ok(Ok::<_, ()>(tx.outbox_state(outbox_id)?)))
                .await
                .map(|r| r.unwrap_or_default())
        };
        let attempted = |s: &Option<OutboxState>| {
            s.as_ref()
                .is_some_and(|s| s.attempts > 0 || s.delivered || s.failed)
        };
        let current = state(self.0.app.clone()).await?;
        if attempted(&current) || self.0.settings.wait.is_zero() {
            return Ok(current);
        }
        let deadline = tokio::time::Instant::now() + self.0.settings.wait;
        loop {
            tokio::select! {
                received = done.recv() => match received {
                    Ok(id) if id == outbox_id => break,
                    Ok(_) => continue,
                    // Missed messages: look at the row itself.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        if attempted(&state(self.0.app.clone()).await?) { break }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        state(self.0.app.clone()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_caps_at_an_hour() {
        let base = std::time::Duration::from_secs(2);
        assert_eq!(backoff(base, 1, 0.5), std::time::Duration::from_secs(2));
        assert_eq!(backoff(base, 2, 0.5), std::time::Duration::from_secs(4));
        assert_eq!(backoff(base, 4, 0.5), std::time::Duration::from_secs(16));
        assert_eq!(backoff(base, 3, 0.0), std::time::Duration::from_secs(4));
        assert_eq!(backoff(base, 3, 1.0), std::time::Duration::from_secs(12));
        assert_eq!(backoff(base, 40, 0.5), std::time::Duration::from_secs(3600));
    }
}
