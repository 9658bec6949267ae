//! Sending the outbox's emails, in each server process: the [`Sender`] (the transport, a task per
//! send, and the recorder that writes the outcomes of the sends under way in one transaction per
//! batch, as the domain's delivery transitions say), through which a request sends the email
//! its own commit claimed; and the delivery loop, which claims and sends what no request is
//! sending (retries, lapsed claims, the rows of a replica that died or sends none).
//!
//! Nothing accepted is lost: a row leaves the outbox only with its outcome recorded; a claim is a
//! lease (`claimed_until`), so a process killed mid-send leaves its rows to whoever claims next
//! once the lease runs out; on PostgreSQL, `FOR UPDATE SKIP LOCKED` keeps replicas off each
//! other's rows. Delivery is at least once: a crash after the relay accepted a message but before
//! the outcome was written sends it again, with the same Message-ID so that it can be recognised.
//! The lease is fenced: each claim bumps the row's claim count, and an outcome is recorded only
//! under the claim count it was claimed with, so a worker that stalled past its lease cannot
//! overwrite the outcome of the newer claim that sent the row meanwhile.
//!
//! Stopping ([`DeliveryLoop::stop`], on a graceful shutdown) claims nothing more and gives back
//! claims whose send has not started; [`DeliveryLoop::idle`] then waits for every send under way,
//! the loop's and the requests', to finish and be recorded.

use std::sync::Arc;

use lettre::message::Mailbox;

use super::{App, DeliveryState, Recorded, now};
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

/// The longest the loop (and the recorder) waits after a store failure before it tries again.
const MAX_BACKOFF: std::time::Duration = std::time::Duration::from_secs(10);

/// Outcomes recorded in one transaction at most: enough to absorb a burst of sends, small
/// enough that the business locks it takes are not held long.
const MAX_BATCH: usize = 64;

/// The loop's handle: start it, or run one round of it.
#[derive(Clone, Debug)]
pub struct DeliveryLoop {
    app: App,
    sender: Arc<Sender>,
    /// Set once, by [`DeliveryLoop::stop`].
    stopping: Arc<tokio::sync::watch::Sender<bool>>,
}

/// The process's sending side: the transport, how to send, the recorder that writes outcomes,
/// and the sends under way. A request that queued an email sends it through here itself, right
/// after its commit ([`App::settle`]); the delivery loop sends through here what no request is
/// sending (retries, claims whose lease lapsed, the emails of a replica that died or sends
/// none).
#[derive(Debug)]
pub struct Sender {
    mailer: Mailer,
    settings: DeliverySettings,
    recorder: tokio::sync::mpsc::UnboundedSender<Pending>,
    in_flight: InFlight,
}

/// An outcome waiting for the recorder, and who waits for it to be recorded.
#[derive(Debug)]
struct Pending {
    row: OutboxRow,
    sent: Sent,
    done: tokio::sync::oneshot::Sender<Option<Arc<Recorded>>>,
}

/// How a send ended: what its row will be recorded as, and when the relay replied (the time the
/// record keeps, so that an answer given on the reply and the later record agree).
#[derive(Clone, Debug)]
pub struct Sent {
    pub change: RowChange,
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A send under way: its end, as soon as the relay has replied, and its record, once committed.
#[derive(Debug)]
pub struct Dispatched {
    pub sent: tokio::sync::oneshot::Receiver<Sent>,
    pub recorded: tokio::sync::oneshot::Receiver<Option<Arc<Recorded>>>,
}

/// Counts the sends under way, so that a shutdown can wait for them to finish and be recorded.
#[derive(Debug, Default)]
struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    idle: tokio::sync::Notify,
}

/// One send under way, until its outcome is recorded (or given up).
struct SendGuard(Arc<Sender>);

impl Drop for SendGuard {
    fn drop(&mut self) {
        let f = &self.0.in_flight;
        if f.count.fetch_sub(1, std::sync::atomic::Ordering::AcqRel) == 1 {
            f.idle.notify_waiters();
        }
    }
}

fn jitter() -> f64 {
    let mut b = [0u8; 4];
    let _ = getrandom::fill(&mut b);
    f64::from(u32::from_le_bytes(b)) / f64::from(u32::MAX)
}

impl Sender {
    /// How long a claim protects a row from other workers: a row a request queues and sends
    /// itself is claimed for this long from its commit.
    pub fn lease(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.settings.lease).unwrap_or(chrono::Duration::minutes(1))
    }

    /// Sends a claimed row in a task of its own (a slow relay holds only this email) and has
    /// its outcome recorded by the recorder; the news goes to every request waiting on the row
    /// once it is. Dropping what it returns stops neither.
    pub(super) fn dispatch(
        self: &Arc<Self>,
        app: &App,
        row: OutboxRow,
        record: Option<InvitationRecord>,
    ) -> Dispatched {
        self.in_flight
            .count
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let guard = SendGuard(Arc::clone(self));
        let (sent_tx, sent) = tokio::sync::oneshot::channel();
        let (recorded_tx, recorded) = tokio::sync::oneshot::channel();
        let (app, this) = (app.clone(), Arc::clone(self));
        tokio::spawn(async move {
            let id = row.id;
            let outcome = this.send(&app, &row, record.as_ref()).await;
            this.attempted(&app, &row, &outcome);
            let at = now();
            let attempt = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
            let retry = RetryPolicy {
                max_attempts: this.settings.max_attempts,
                base: this.settings.retry_base,
            };
            let change = delivery::row_change(outcome, attempt, retry, at, jitter());
            let sent = Sent { change, at };
            let _ = sent_tx.send(sent.clone());
            let (done, committed) = tokio::sync::oneshot::channel();
            if this.recorder.send(Pending { row, sent, done }).is_err() {
                // The recorder is gone (the process is ending): the claim lapses with its
                // lease and the row is sent again, at least once being the outbox's promise.
                return;
            }
            if let Ok(state) = committed.await {
                app.settled(id, state.clone());
                let _ = recorded_tx.send(state);
            }
            drop(guard);
        });
        Dispatched { sent, recorded }
    }

    /// Waits until no send is under way (their outcomes recorded).
    pub async fn idle(&self) {
        loop {
            let notified = self.in_flight.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self
                .in_flight
                .count
                .load(std::sync::atomic::Ordering::Acquire)
                == 0
            {
                return;
            }
            notified.await;
        }
    }

    /// Sends one claimed row through the transport; what a send may not be, it is not.
    async fn send(
        &self,
        app: &App,
        row: &OutboxRow,
        record: Option<&InvitationRecord>,
    ) -> SendOutcome {
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
            accept_link: accept_link(&self.settings.accept_url, &app.token_of(r)),
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

    /// The attempt's log line and metric.
    fn attempted(&self, app: &App, row: &OutboxRow, outcome: &SendOutcome) {
        let (kind, reason) = match outcome {
            SendOutcome::Accepted => ("accepted", None),
            SendOutcome::Permanent(why) => ("refused", Some(why.as_str())),
            SendOutcome::Transient(why) => ("deferred", Some(why.as_str())),
        };
        crate::metrics::delivery_attempt(kind);
        slog::info!(app.log, "delivery attempt";
            "outbox_id" => row.id.0,
            "invitation_id" => row.invitation_id.as_str(),
            "attempt" => row.attempts + 1,
            "outcome" => kind,
            "reply_code" => reason.and_then(reply_code),
            "reason" => reason);
    }
}

/// The recorder: writes the outcomes of the sends under way, every outcome waiting when it
/// starts in one transaction (one commit for many sends, where each used to take its own), in
/// the order of their businesses' ids (so that two replicas' recorders never wait on each
/// other's business locks in a cycle). While the store fails it keeps the outcomes and tries
/// again (a sent email is recorded as sent, not sent again): only a process that dies first
/// leaves them to the lease.
async fn record_outcomes(app: App, mut queue: tokio::sync::mpsc::UnboundedReceiver<Pending>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        let work: Vec<(OutboxRow, Sent)> = batch
            .iter()
            .map(|p| (p.row.clone(), p.sent.clone()))
            .collect();
        let recorded = match record_batch(&app, work.clone()).await {
            Ok(recorded) => recorded,
            // A failure that is not the database's (a bug, a row it cannot read) must not hold
            // every other outcome back: each is recorded on its own, and one that fails alone is
            // left to its lease (the loop sends it again) with the failure in the log.
            Err(_) => {
                let mut each = Vec::with_capacity(work.len());
                for one in work {
                    let id = one.0.id;
                    match record_batch(&app, vec![one]).await {
                        Ok(mut r) => each.push(r.pop().flatten()),
                        Err(e) => {
                            slog::error!(app.log, "delivery outcome not recorded: left to its lease";
                                "outbox_id" => %id, "error" => %e);
                            each.push(None);
                        }
                    }
                }
                each
            }
        };
        for (pending, state) in batch.into_iter().zip(recorded) {
            let _ = pending.done.send(state);
        }
    }
}

/// Records `work` in one transaction, trying again while the database is unavailable (its
/// outcomes are kept meanwhile); any other failure is returned.
async fn record_batch(
    app: &App,
    work: Vec<(OutboxRow, Sent)>,
) -> Result<Vec<Option<Arc<Recorded>>>, StoreError> {
    let mut backoff = std::time::Duration::from_millis(50);
    loop {
        let (attempt, log) = (work.clone(), app.log.clone());
        let result = app
            .store
            .transaction_to_the_end(move |tx| record_all(tx, attempt, &log))
            .await;
        match result {
            Ok(recorded) => return Ok(recorded),
            Err(e) if e.is_outage() => {
                slog::error!(app.log, "recording delivery outcomes: the database is unavailable";
                    "error" => %e, "outcomes" => work.len(),
                    "retry_in_ms" => u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Records each send's outcome, in one transaction, in business order; what each row and its
/// invitation became, in `work`'s order.
fn record_all(
    tx: &mut crate::store::Tx<'_>,
    work: Vec<(OutboxRow, Sent)>,
    log: &slog::Logger,
) -> Result<Vec<Option<Arc<Recorded>>>, StoreError> {
    let mut order: Vec<usize> = (0..work.len()).collect();
    order.sort_by(|&a, &b| {
        (work[a].0.business_id.as_str(), work[a].0.id.0)
            .cmp(&(work[b].0.business_id.as_str(), work[b].0.id.0))
    });
    let mut out = vec![None; work.len()];
    let mut locked: Option<&str> = None;
    for i in order {
        let (row, sent) = &work[i];
        // The business lock every other writer of its invitations takes: without it a revoke,
        // accept or resend committed while this send was under way would be overwritten by the
        // copy of the invitation read below.
        if locked != Some(row.business_id.as_str()) {
            tx.lock_business(&row.business_id)?;
            locked = Some(row.business_id.as_str());
        }
        out[i] = record_one(tx, row, sent, log)?;
    }
    Ok(out)
}

/// Records one send's outcome under the row's claim (its fence), at the time the relay replied;
/// what the row and its invitation became, as this transaction commits them.
fn record_one(
    tx: &mut crate::store::Tx<'_>,
    row: &OutboxRow,
    sent: &Sent,
    log: &slog::Logger,
) -> Result<Option<Arc<Recorded>>, StoreError> {
    let (now, change) = (sent.at, sent.change.clone());
    let mut current = tx.invitation(&row.business_id, &row.invitation_id)?;
    // An outcome is recorded only under the row's newest claim: a send that outlived its lease
    // while another worker claimed the row again says nothing (that worker's outcome is the one
    // the row and the invitation keep).
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
            if tx.outbox_delivered(row, now)? {
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
            if !tx.outbox_retry(row, due_at, &why)? {
                fenced_out(tx)?;
            }
        }
        RowChange::Failed { reason } => {
            // A row that had already ended (superseded by a resend meanwhile), or that a newer
            // claim holds, stays as it is, and says nothing about the invitation.
            let ended_now = tx.outbox_failed(row, now, &reason)?;
            if !ended_now {
                fenced_out(tx)?;
            }
            let newest = tx.latest_outbox_id(&row.invitation_id)? == Some(row.id);
            if ended_now
                && let Some(r) = current.as_mut()
                && let Some(next) = delivery::after_failed(&r.invitation, newest, &reason, now)
            {
                r.invitation = next;
                tx.update_invitation(r)?;
            }
        }
    }
    // What the waiting requests are told, as this transaction commits it.
    Ok(tx.outbox_state(row.id)?.map(|state| {
        Arc::new(Recorded {
            state,
            invitation: current.map(|r| r.invitation),
            at: now,
        })
    }))
}

impl DeliveryLoop {
    /// The loop and the process's sending side ([`Sender`]), whose recorder starts now; the
    /// application's requests send through it too from now on (unless `settings.concurrency` is
    /// 0: then this process sends nothing, and the loop is not run).
    pub fn new(app: App, mailer: Mailer, settings: DeliverySettings) -> DeliveryLoop {
        let (recorder, queue) = tokio::sync::mpsc::unbounded_channel();
        let sends = settings.concurrency > 0;
        let sender = Arc::new(Sender {
            mailer,
            settings,
            recorder,
            in_flight: InFlight::default(),
        });
        tokio::spawn(record_outcomes(app.clone(), queue));
        if sends {
            app.attach_sender(Arc::clone(&sender));
        }
        DeliveryLoop {
            app,
            sender,
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
        &self.sender.settings
    }

    /// Waits until every send under way, the requests' and the loop's, has finished and been
    /// recorded (a shutdown's last step).
    pub async fn idle(&self) {
        self.sender.idle().await;
    }

    /// Runs the loop until [`DeliveryLoop::stop`] or the process ends (nothing when concurrency
    /// is 0). It sends at most `concurrency` emails at once, each in a task of its own, and
    /// claims more as soon as any finishes: no send waits for another.
    pub fn spawn(&self, log: slog::Logger) -> Option<tokio::task::JoinHandle<()>> {
        let concurrency = self.sender.settings.concurrency;
        if concurrency == 0 {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move {
            let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
            // While the store fails, the loop waits longer after each failure (up to
            // MAX_BACKOFF), so that an outage is not met with a claim and a log line per poll.
            let mut backoff = this.sender.settings.poll;
            let mut stopping = this.stopping.subscribe();
            this.app.set_delivery_state(DeliveryState::Running);
            while !this.is_stopping() {
                // A free slot first: the claim then takes as many rows as there are free slots.
                let first = tokio::select! {
                    permit = Arc::clone(&permits).acquire_owned() => permit.ok(),
                    _ = stopping.changed() => None,
                };
                let Some(first) = first else { break };
                let mut slots = vec![first];
                while let Ok(more) = Arc::clone(&permits).try_acquire_owned() {
                    slots.push(more);
                }
                match this.claim(slots.len()).await {
                    Ok(claimed) => {
                        this.app.set_delivery_state(DeliveryState::Running);
                        if backoff != this.sender.settings.poll {
                            slog::info!(log, "delivery loop: store reachable again");
                            backoff = this.sender.settings.poll;
                        }
                        let handled = claimed.len();
                        for ((row, record), slot) in claimed.into_iter().zip(slots.drain(..)) {
                            let send = this.sender.dispatch(&this.app, row, record);
                            tokio::spawn(async move {
                                let _ = send.recorded.await;
                                drop(slot);
                            });
                        }
                        drop(slots);
                        if handled == 0 {
                            tokio::select! {
                                _ = this.app.signals.queued.notified() => {}
                                _ = tokio::time::sleep(this.sender.settings.poll) => {}
                                _ = stopping.changed() => {}
                            }
                        }
                    }
                    Err(e) => {
                        drop(slots);
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
            // The loop's sends under way finish and are recorded before it says it stopped.
            let _ = permits.acquire_many(concurrency as u32).await;
            this.app.set_delivery_state(DeliveryState::Stopped);
            slog::info!(log, "delivery loop stopped");
        }))
    }

    /// Claims up to `limit` due rows, with what each email is made of, in one transaction; when
    /// the loop is stopping, gives them back at once instead (none has started) and returns none.
    async fn claim(
        &self,
        limit: usize,
    ) -> Result<Vec<(OutboxRow, Option<InvitationRecord>)>, StoreError> {
        let limit = limit.max(1) as i64;
        let lease = chrono::Duration::from_std(self.sender.settings.lease)
            .unwrap_or(chrono::Duration::minutes(1));
        // The loop's transactions wait for the database as long as it takes (no deadline): one
        // given up on after it committed would leave its claims idle for a lease.
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
        if self.is_stopping() && !claimed.is_empty() {
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
            return Ok(Vec::new());
        }
        Ok(claimed)
    }

    /// Claims up to `concurrency` due rows, sends them at once and waits until their outcomes
    /// are recorded; returns how many it handled. Tests call it to drain the outbox.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let claimed = self.claim(self.sender.settings.concurrency.max(1)).await?;
        let n = claimed.len();
        let sends: Vec<_> = claimed
            .into_iter()
            .map(|(row, record)| self.sender.dispatch(&self.app, row, record))
            .collect();
        for send in sends {
            let _ = send.recorded.await;
        }
        Ok(n)
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
