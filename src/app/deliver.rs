//! The delivery loop: claims due outbox rows, sends them through the mail transport, and records
//! each outcome as the domain's delivery transitions say; runs inside the server process, one
//! per replica.
//!
//! Nothing accepted is lost: a row leaves the outbox only with its outcome recorded; a claim is a
//! lease (`claimed_until`), so a loop killed mid-send leaves its rows to whoever claims next
//! once the lease runs out; on PostgreSQL, `FOR UPDATE SKIP LOCKED` keeps replicas off each
//! other's rows. Delivery is at least once: a crash after the relay accepted a message but before
//! the outcome was written sends it again, with the same Message-ID so that it can be recognised.
//! The lease is fenced: each claim bumps the row's claim count, and an outcome is recorded only
//! under the claim count it was claimed with, so a worker that stalled past its lease cannot
//! overwrite the outcome of the newer claim that sent the row meanwhile.
//!
//! Stopping ([`DeliveryLoop::stop`], on a graceful shutdown) lets the sends under way finish and
//! record their outcomes, gives back claims whose send has not started, and claims nothing more.

use std::sync::Arc;

use lettre::message::Mailbox;

use super::{App, DeliveryState, Recorded, now};
use crate::domain::OutboxId;
use crate::domain::delivery::{self, EmailKind, RetryPolicy, RowChange, SendOutcome};
use crate::mail::{Invite, Mailer, accept_link, compose};
use crate::store::{InvitationRecord, OutboxRow, StoreError};

/// How the loop behaves.
#[derive(Clone, Debug)]
pub struct DeliverySettings {
    /// Messages sent at once by this process; 0 runs no loop (another replica sends).
    pub concurrency: usize,
    /// Attempts before a transiently failing message is given up as "Failed to send".
    pub max_attempts: u32,
    /// The first retry's delay; each next one doubles (with jitter), up to an hour.
    pub retry_base: std::time::Duration,
    /// How long a claim protects a row from other workers.
    pub lease: std::time::Duration,
    /// How often an idle loop looks for due rows (it is also woken on every enqueue).
    pub poll: std::time::Duration,
    /// How long a create or resend waits for the first delivery attempt before answering
    /// (becomes [`App::delivery_wait`]).
    pub wait: std::time::Duration,
    pub from: Mailbox,
    /// The accept page; the token is added as `?token=`.
    pub accept_url: String,
}

/// The relay's reply code in a failed send's reason, as lettre words it ("permanent error
/// (550): ..."); `None` when the failure was not a reply (a refused connection, a timeout).
fn reply_code(reason: &str) -> Option<u16> {
    reason.match_indices('(').find_map(|(at, _)| {
        let code = reason.get(at + 1..at + 4)?;
        (reason.get(at + 4..at + 5) == Some(")") && code.bytes().all(|b| b.is_ascii_digit()))
            .then(|| code.parse().ok())
            .flatten()
    })
}

/// The longest the loop waits after a store failure before it tries again.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// The loop's handle: start it, or run one round of it.
#[derive(Clone, Debug)]
pub struct DeliveryLoop {
    app: App,
    mailer: Mailer,
    settings: DeliverySettings,
    /// Set once, by [`DeliveryLoop::stop`].
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

impl DeliveryLoop {
    pub fn new(app: App, mailer: Mailer, settings: DeliverySettings) -> DeliveryLoop {
        DeliveryLoop {
            app,
            mailer,
            settings,
            stopping: Arc::new(tokio::sync::watch::Sender::new(false)),
        }
    }

    /// Asks the loop (and any round under way) to stop: sends under way finish and record their
    /// outcomes, claims not yet sent are given back, and nothing more is claimed. The spawned
    /// task ends once that is done.
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    fn is_stopping(&self) -> bool {
        *self.stopping.borrow()
    }

    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    /// Runs the loop until [`DeliveryLoop::stop`] or the process ends (nothing when concurrency
    /// is 0).
    pub fn spawn(&self, log: slog::Logger) -> Option<tokio::task::JoinHandle<()>> {
        if self.settings.concurrency == 0 {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move {
            // While the store fails, the loop waits longer after each failure (up to
            // MAX_BACKOFF), so that an outage is not met with a claim and a log line per poll.
            let mut backoff = this.settings.poll;
            let mut stopping = this.stopping.subscribe();
            this.app.set_delivery_state(DeliveryState::Running);
            while !this.is_stopping() {
                match this.run_once().await {
                    Ok(handled) => {
                        this.app.set_delivery_state(DeliveryState::Running);
                        if backoff != this.settings.poll {
                            slog::info!(log, "delivery loop: store reachable again");
                            backoff = this.settings.poll;
                        }
                        if handled == 0 {
                            tokio::select! {
                                _ = this.app.signals.queued.notified() => {}
                                _ = tokio::time::sleep(this.settings.poll) => {}
                                _ = stopping.changed() => {}
                            }
                        }
                    }
                    Err(e) => {
                        this.app.set_delivery_state(DeliveryState::StoreFailing);
                        let kind = if e.is_outage() { "outage" } else { "bug" };
                        slog::error!(log, "delivery loop: store failure";
                            "error" => %e, "kind" => kind,
                            "retry_in_ms" => u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX));
                        // A request that commits an email meanwhile shows the store is back.
                        tokio::select! {
                            _ = this.app.signals.queued.notified() => {}
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stopping.changed() => {}
                        }
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                    }
                }
            }
            this.app.set_delivery_state(DeliveryState::Stopped);
            slog::info!(log, "delivery loop stopped");
        }))
    }

    /// Claims up to `concurrency` due rows, sends them at once, records their outcomes; returns
    /// how many it handled. Tests call it to drain the outbox.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let limit = self.settings.concurrency.max(1) as i64;
        let lease =
            chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(1));
        // The claim and what each email is made of, read in one transaction.
        // The loop's transactions wait for the database as long as it takes (no deadline): one
        // given up on after it committed would leave its claims idle for a lease, or a sent
        // email unrecorded, to be sent again.
        let claimed = self
            .app
            .store
            .transaction_to_the_end(move |tx| {
                let now = now();
                let rows = tx.claim_outbox(now, now + lease, limit)?;
                rows.into_iter()
                    .map(|row| {
                        let record = tx.invitation(&row.business_id, &row.invitation_id)?;
                        Ok((row, record))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await?;
        let n = claimed.len();
        if self.is_stopping() && n > 0 {
            // Claimed as the loop was told to stop: none of these has started, so they go back
            // at once rather than wait out the lease (another replica, or the next start, sends
            // them).
            let rows: Vec<OutboxRow> = claimed.into_iter().map(|(row, _)| row).collect();
            self.app
                .store
                .transaction_to_the_end(move |tx| {
                    for row in &rows {
                        tx.outbox_release(row)?;
                    }
                    Ok::<_, StoreError>(())
                })
                .await?;
            return Ok(0);
        }
        let mut sends = tokio::task::JoinSet::new();
        for (row, record) in claimed {
            let this = self.clone();
            sends.spawn(async move { this.deliver(row, record).await });
        }
        // Every send runs to its end even when another fails: dropping the set would abort sends
        // the relay may already have accepted, leaving them to be sent again after the lease.
        let mut first_error = None;
        while let Some(result) = sends.join_next().await {
            match result {
                Ok(Ok((id, state))) => self.app.settled(id, state),
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

    /// Sends one claimed row through the transport; what a send may not be, it is not.
    async fn send(&self, row: &OutboxRow, record: Option<&InvitationRecord>) -> SendOutcome {
        let at = now();
        let r = match record {
            Some(r) if delivery::not_sendable(Some(&r.invitation), at).is_none() => r,
            other => {
                let why = delivery::not_sendable(other.map(|r| &r.invitation), at);
                return SendOutcome::Permanent(why.unwrap_or_default());
            }
        };
        let invite = Invite {
            outbox_id: row.id.0,
            invitation_id: r.invitation.id.as_str(),
            to: &r.invitation.email,
            business_name: &r.invitation.business_name,
            role: r.invitation.role,
            expires_at: r.invitation.expires_at,
            accept_link: accept_link(&self.settings.accept_url, &self.app.token_of(r)),
            resend: row.kind == EmailKind::Resend,
        };
        let message = match compose(&self.settings.from, &invite) {
            Ok(message) => message,
            Err(why) => return SendOutcome::Permanent(why),
        };
        // Half the lease: a send still under way when the claim lapses could be claimed and sent
        // again by another worker. Past this, the relay is treated as slow (a transient failure)
        // and the row retried later.
        let deadline = self.settings.lease / 2;
        tokio::time::timeout(deadline, self.mailer.send(message))
            .await
            .unwrap_or_else(|_| {
                SendOutcome::Transient(format!(
                    "the relay did not finish within {} s",
                    deadline.as_secs_f64()
                ))
            })
    }

    /// Sends one claimed row (its invitation as read with the claim) and records the outcome;
    /// returns the row's id and its state as recorded.
    async fn deliver(
        &self,
        row: OutboxRow,
        record: Option<InvitationRecord>,
    ) -> Result<(OutboxId, Option<Arc<Recorded>>), StoreError> {
        let outcome = self.send(&row, record.as_ref()).await;
        let (kind, reason) = match &outcome {
            SendOutcome::Accepted => ("accepted", None),
            SendOutcome::Permanent(why) => ("refused", Some(why.as_str())),
            SendOutcome::Transient(why) => ("deferred", Some(why.as_str())),
        };
        crate::metrics::delivery_attempt(kind);
        slog::info!(self.app.log, "delivery attempt";
            "outbox_id" => row.id.0,
            "invitation_id" => row.invitation_id.as_str(),
            "attempt" => row.attempts + 1,
            "outcome" => kind,
            "reply_code" => reason.and_then(reply_code),
            "reason" => reason);
        let retry = RetryPolicy {
            max_attempts: self.settings.max_attempts,
            base: self.settings.retry_base,
        };
        let id = row.id;
        let log = self.app.log.clone();
        let recorded = self
            .app
            .store
            .transaction_to_the_end(move |tx| {
                // The business lock every other writer of its invitations takes: without it a
                // revoke, accept or resend committed while this send was under way would be
                // overwritten by the copy of the invitation read below.
                tx.lock_business(&row.business_id)?;
                let now = now();
                let attempt = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
                let change = delivery::row_change(outcome, attempt, retry, now, jitter());
                let mut current = tx.invitation(&row.business_id, &row.invitation_id)?;
                // An outcome is recorded only under the row's newest claim: a send that outlived
                // its lease while another worker claimed the row again says nothing (that
                // worker's outcome is the one the row and the invitation keep).
                let fenced_out = |tx: &mut crate::store::Tx<'_>| {
                    let newer = tx.outbox_claim_of(row.id)?.is_some_and(|c| c != row.claim);
                    if newer {
                        slog::warn!(log, "delivery outcome not recorded: the lease had lapsed and the row was claimed again";
                            "outbox_id" => %row.id, "claim" => row.claim);
                    }
                    Ok::<_, StoreError>(newer)
                };
                match change {
                    RowChange::Delivered => {
                        if tx.outbox_delivered(&row, now)? {
                            if let Some(r) = current.as_mut()
                                && let Some(next) = delivery::after_delivered(&r.invitation, now)
                            {
                                r.invitation = next;
                                tx.update_invitation(r)?;
                            }
                        } else {
                            fenced_out(tx)?;
                        }
                    }
                    RowChange::Retry { due_at, why } => {
                        if !tx.outbox_retry(&row, due_at, &why)? {
                            fenced_out(tx)?;
                        }
                    }
                    RowChange::Failed { reason } => {
                        // A row that had already ended (superseded by a resend meanwhile), or that
                        // a newer claim holds, stays as it is, and says nothing about the invitation.
                        let ended_now = tx.outbox_failed(&row, now, &reason)?;
                        if !ended_now {
                            fenced_out(tx)?;
                        }
                        let newest = tx.latest_outbox_id(&row.invitation_id)? == Some(row.id);
                        if ended_now
                            && let Some(r) = current.as_mut()
                            && let Some(next) =
                                delivery::after_failed(&r.invitation, newest, &reason, now)
                        {
                            r.invitation = next;
                            tx.update_invitation(r)?;
                        }
                    }
                }
                // What the waiting requests are told, as this transaction commits it.
                Ok::<_, StoreError>(tx.outbox_state(row.id)?.map(|state| {
                    Arc::new(Recorded {
                        state,
                        invitation: current.map(|r| r.invitation),
                        at: now,
                    })
                }))
            })
            .await?;
        Ok((id, recorded))
    }
}

#[cfg(test)]
mod tests {
    use super::reply_code;

    #[test]
    fn the_reply_code_is_read_from_lettres_wording_and_only_from_it() {
        assert_eq!(
            reply_code("the mail server refused the message: permanent error (550): No such user"),
            Some(550)
        );
        assert_eq!(
            reply_code(
                "the mail server could not take the message now: transient error (451): later"
            ),
            Some(451)
        );
        assert_eq!(reply_code("connection refused (os error 111)"), None);
        assert_eq!(reply_code("the relay did not finish within 30 s"), None);
    }
}
