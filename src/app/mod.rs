//! The application layer, and the only orchestrator: each operation of the API as one store
//! transaction that runs the domain rules and writes their outcome (state, seat ledger, outbox
//! row, idempotency record) together, one file per operation with its error enum beside it; the
//! sending of the outbox's emails ([`deliver`]): a create or resend sends the email its commit
//! claimed itself, and a delivery loop sends the rest.
//!
//! Each operation's error enum names every refusal with its status, carries unexpected failures
//! in [`Unexpected`], and turns into one of its operation's declared responses
//! (`From<…Error> for …Response`, the generated enum whose variants are the contract's statuses)
//! next to its definition, so that the policy "which refusal is which status" lives in one place
//! and a status the contract does not declare does not compile.
//!
//! Never sees a request and never imports the API layer; handlers call in here, and only here.

mod accept;
mod create;
pub mod deliver;
mod health;
mod idempotency;
mod list;
mod lookup;
mod resend;
mod revoke;
mod seed;
mod sweep;

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tokio::sync::{Notify, broadcast};

use crate::auth::Identity;
use crate::contract::RetryAfterHeader;
use crate::domain::delivery::{self, EmailKind, EmailState};
use crate::domain::rules::{self, Policy};
use crate::domain::{BusinessId, Invitation, InvitationId, OutboxId};
use crate::problem::{Problem, retry_after};
use crate::store::{
    Business, IdempotencyScope, InvitationRecord, Member, OutboxRow, Store, StoreError, Tx,
};
use crate::tokens::TokenKey;

pub use accept::AcceptError;
pub use create::{CreateError, Seed};
pub use deliver::{DeliveryLoop, DeliverySettings};
pub use health::{DeliveryState, Readiness};
pub use idempotency::{IDEMPOTENCY_WINDOW, Idempotency, InvalidIdempotencyKey};
pub use list::ListError;
pub use lookup::LookupError;
pub use resend::ResendError;
pub use revoke::RevokeError;

/// What every operation needs.
#[derive(Clone, Debug)]
pub struct App {
    pub store: Store,
    pub policy: Policy,
    pub tokens: TokenKey,
    /// How long a create or resend waits for its email's first delivery attempt before it
    /// answers; zero answers at once with the email queued.
    pub delivery_wait: std::time::Duration,
    /// Where the application notes what it recovered from without failing the request (a read
    /// after a commit that failed); discards until the server sets it.
    pub log: slog::Logger,
    signals: Arc<OutboxSignals>,
}

/// In-process news of the outbox: rows queued (to wake the delivery loop) and rows that have
/// something to report (an attempt recorded, or superseded by a resend), for the requests
/// waiting on them. Another replica's news does not arrive here; its waiters read the row when
/// their wait runs out.
#[derive(Debug)]
struct OutboxSignals {
    queued: Notify,
    settled: broadcast::Sender<Settled>,
    /// The delivery loop's [`health::DeliveryState`], for readiness.
    delivery: std::sync::atomic::AtomicU8,
    /// The process's sending side, when it sends: a create or resend then claims its email in
    /// its own transaction and sends it itself, right after the commit.
    sender: std::sync::OnceLock<Arc<deliver::Sender>>,
}

/// News that an outbox row has something to report, with what was committed when the news
/// carries it (the delivery loop's outcomes); `None` sends the waiter to read the row.
#[derive(Clone, Debug)]
struct Settled {
    id: OutboxId,
    /// Shared: every waiter receives every piece of news.
    recorded: Option<Arc<Recorded>>,
}

/// What the delivery loop committed for an outbox row: the row's state and its invitation, as
/// of `at`, the commit's time.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub state: EmailState,
    pub invitation: Option<Invitation>,
    pub at: DateTime<Utc>,
}

/// A subscription to the outbox's news, taken before the transaction that queues an email, so
/// that no outcome of that email can come before it.
#[derive(Debug)]
pub struct Watch(broadcast::Receiver<Settled>);

/// A failure that no business rule explains (the database down, a bug): answered as an opaque
/// 500, with its whole cause chain written to the log.
#[derive(Debug, thiserror::Error)]
#[error("unexpected failure")]
pub struct Unexpected(#[source] Box<dyn std::error::Error + Send + Sync>);

impl Unexpected {
    /// The failure and every cause below it, one after the other: what the log line says.
    pub fn chain(&self) -> String {
        let mut out = String::new();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&cause.to_string());
            next = cause.source();
        }
        out
    }
}

/// Seconds a client is told to wait when the database is unavailable: a restart or a failover
/// takes about that; a client that retries sooner only adds to the queue.
pub const OUTAGE_RETRY_AFTER_SECS: u64 = 2;

impl Unexpected {
    /// Whether the failure is the database being unavailable ([`StoreError::is_outage`]) rather
    /// than a bug.
    pub fn is_outage(&self) -> bool {
        self.0
            .downcast_ref::<StoreError>()
            .is_some_and(StoreError::is_outage)
    }

    /// The operation's answer to this failure: `unavailable` (its declared 503, with
    /// Retry-After) for an outage, `internal` (its opaque 500) for a bug.
    pub fn respond<R>(
        &self,
        unavailable: impl FnOnce(Problem, RetryAfterHeader) -> R,
        internal: impl FnOnce(Problem) -> R,
    ) -> R {
        if self.is_outage() {
            unavailable(
                Problem::unavailable(OUTAGE_RETRY_AFTER_SECS),
                retry_after(OUTAGE_RETRY_AFTER_SECS),
            )
        } else {
            internal(Problem::internal())
        }
    }
}

impl From<StoreError> for Unexpected {
    fn from(e: StoreError) -> Self {
        Unexpected(Box::new(e))
    }
}

impl From<serde_json::Error> for Unexpected {
    fn from(e: serde_json::Error) -> Self {
        Unexpected(Box::new(e))
    }
}

/// What an operation's error can say about itself to the layer that answers for it.
pub trait OperationError: std::error::Error {
    /// The unexpected failure behind this error, whose cause chain belongs in the log.
    fn unexpected(&self) -> Option<&Unexpected>;
}

/// Implements `From<StoreError>` and [`OperationError`] for an operation's error enum with an
/// `Unexpected(Unexpected)` variant.
macro_rules! operation_error {
    ($name:ident) => {
        impl From<crate::store::StoreError> for $name {
            fn from(e: crate::store::StoreError) -> Self {
                $name::Unexpected(e.into())
            }
        }
        impl crate::app::OperationError for $name {
            fn unexpected(&self) -> Option<&crate::app::Unexpected> {
                match self {
                    $name::Unexpected(u) => Some(u),
                    _ => None,
                }
            }
        }
    };
}
use operation_error;

/// How the success of a create or resend is written on the wire. The application stores the
/// body for the request's Idempotency-Key, and replays it, without knowing the wire types.
pub trait Render: Clone + Send + Sync + 'static {
    type Body: serde::Serialize + serde::de::DeserializeOwned + Send + 'static;
    /// The body for `inv` as of `now`, with `message` as its `safeMessage`.
    fn render(&self, inv: &Invitation, now: DateTime<Utc>, message: String) -> Self::Body;
}

/// A create or resend that committed: fresh, or the replay of an earlier identical request.
#[derive(Debug)]
pub enum Queued<B> {
    Fresh {
        invitation: Box<InvitationRecord>,
        /// The outbox row of the email this change queued, with the claim this process took on
        /// it when it sends the email itself.
        outbox: OutboxRow,
        /// The email's send under way in this process; `None` when a delivery loop sends it.
        sending: Option<deliver::Dispatched>,
        /// Whose key, and the key, the response is stored under, to be updated once the wait
        /// is over.
        idempotency: Option<(IdempotencyScope, String)>,
    },
    Replayed(B),
}

impl<B> Queued<B> {
    /// The outbox row's id of a fresh change.
    pub fn outbox_id(&self) -> Option<OutboxId> {
        match self {
            Queued::Fresh { outbox, .. } => Some(outbox.id),
            Queued::Replayed(_) => None,
        }
    }
}

/// The answer to a create or resend: its body, and whether that body replays the first answer
/// to the request's Idempotency-Key (which the response says, so that a client can tell).
#[derive(Debug)]
pub struct Answer<B> {
    pub body: B,
    pub replayed: bool,
}

impl<B> Answer<B> {
    fn fresh(body: B) -> Self {
        Answer {
            body,
            replayed: false,
        }
    }
}

impl App {
    pub fn new(store: Store, policy: Policy, tokens: TokenKey) -> App {
        let (settled, _) = broadcast::channel(1024);
        App {
            store,
            policy,
            tokens,
            delivery_wait: std::time::Duration::ZERO,
            log: slog::Logger::root(slog::Discard, slog::o!()),
            signals: Arc::new(OutboxSignals {
                queued: Notify::new(),
                settled,
                delivery: std::sync::atomic::AtomicU8::new(health::DeliveryState::NotHere as u8),
                sender: std::sync::OnceLock::new(),
            }),
        }
    }

    /// The acceptance token of an invitation (what the email carries).
    pub fn token_of(&self, record: &InvitationRecord) -> String {
        self.tokens
            .token(&record.invitation.id, &record.token_nonce)
    }

    /// Makes this process send the emails its requests queue, through `sender` (the delivery
    /// loop does, when it starts); a second call changes nothing.
    pub(crate) fn attach_sender(&self, sender: Arc<deliver::Sender>) {
        let _ = self.signals.sender.set(sender);
    }

    /// The process's sending side, if it sends.
    fn sender(&self) -> Option<&Arc<deliver::Sender>> {
        self.signals.sender.get()
    }

    /// After the commit of a create or resend: the email it queued, when this process claimed
    /// it, is sent now, in a task of its own; else the delivery loop is told of it.
    fn dispatch<B>(&self, mut queued: Queued<B>) -> Queued<B> {
        if let Queued::Fresh {
            invitation,
            outbox,
            sending,
            ..
        } = &mut queued
        {
            match self.sender() {
                Some(sender) if outbox.claim > 0 => {
                    *sending =
                        Some(sender.dispatch(self, outbox.clone(), Some((**invitation).clone())));
                }
                _ => self.queued(),
            }
        }
        queued
    }

    /// Tells the delivery loop that a row was queued.
    fn queued(&self) {
        self.signals.queued.notify_one();
    }

    /// Tells the requests waiting on `outbox_id` that it has something to report: what was
    /// committed, or (`None`) what a read of the row will say.
    fn settled(&self, outbox_id: OutboxId, recorded: Option<Arc<Recorded>>) {
        // No receiver is no waiter: nothing to tell.
        let _ = self.signals.settled.send(Settled {
            id: outbox_id,
            recorded,
        });
    }

    /// Subscribes to the outbox's news; for [`App::settle`], taken before the transaction.
    pub fn watch(&self) -> Watch {
        Watch(self.signals.settled.subscribe())
    }

    /// The state of one outbox row, in a transaction of its own.
    async fn email_state(&self, outbox_id: OutboxId) -> Result<Option<EmailState>, StoreError> {
        self.store
            .transaction(move |tx| tx.outbox_state(outbox_id))
            .await
    }

    /// Waits until `outbox_id` has something to report (an attempt's outcome, or a resend that
    /// superseded it) or [`App::delivery_wait`] passes; returns the row's state then. `watch`
    /// was taken before the row was queued, so every outcome of the row reaches it; the row is
    /// read only when the news does not carry its state, when news was missed, and when the
    /// wait runs out (another replica's worker may have sent it).
    pub async fn wait_for_first_attempt(
        &self,
        watch: Watch,
        outbox_id: OutboxId,
    ) -> Result<Option<EmailState>, StoreError> {
        Ok(match self.wait_for_news(watch, outbox_id).await? {
            News::Recorded(recorded) => Some(recorded.state.clone()),
            News::Read(state) => state,
        })
    }

    /// [`App::wait_for_first_attempt`], with the delivery loop's news when that is what ended
    /// the wait.
    async fn wait_for_news(&self, watch: Watch, outbox_id: OutboxId) -> Result<News, StoreError> {
        let Watch(mut settled) = watch;
        self.queued();
        if self.delivery_wait.is_zero() {
            return Ok(News::Read(self.email_state(outbox_id).await?));
        }
        let attempted = |s: &Option<EmailState>| s.as_ref().is_some_and(EmailState::attempted);
        let deadline = tokio::time::Instant::now() + self.delivery_wait;
        loop {
            tokio::select! {
                received = settled.recv() => match received {
                    Ok(Settled { id, recorded: Some(recorded) }) if id == outbox_id => {
                        return Ok(News::Recorded(recorded));
                    }
                    Ok(Settled { id, recorded: None }) if id == outbox_id => break,
                    Ok(_) => continue,
                    // Missed messages: look at the row itself.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        let current = self.email_state(outbox_id).await?;
                        if attempted(&current) {
                            return Ok(News::Read(current));
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        Ok(News::Read(self.email_state(outbox_id).await?))
    }

    /// The answer to a create or resend: a replay as stored; a fresh change after waiting (up
    /// to [`App::delivery_wait`]) for its email's first attempt, showing the invitation and
    /// telling what happened to that email then, and never more. The answer replaces the stored
    /// one for the request's Idempotency-Key, so that a replay says the same.
    ///
    /// It cannot fail: the change has committed, so a failure of what comes after (the store
    /// gone between the commit and a read) answers with the invitation as committed and its
    /// email queued, which is true, and is logged. The stored answer for the key then stays the
    /// one of the commit, which says the same.
    pub async fn settle<R: Render>(
        &self,
        watch: Watch,
        queued: Queued<R::Body>,
        kind: EmailKind,
        render: R,
    ) -> Answer<R::Body> {
        let (invitation, outbox_id, sending, key) = match queued {
            Queued::Replayed(body) => {
                return Answer {
                    body,
                    replayed: true,
                };
            }
            Queued::Fresh {
                invitation,
                outbox,
                sending,
                idempotency,
            } => (invitation.invitation, outbox.id, sending, idempotency),
        };
        let as_committed = |render: &R, e: &dyn std::fmt::Display| {
            slog::warn!(self.log, "answered with the change as committed: a read after it failed";
                "error" => %e, "outbox_id" => %outbox_id);
            let message =
                delivery::delivery_message(kind, &invitation.email, delivery::Delivery::Queued);
            Answer::fresh(render.render(&invitation, now(), message))
        };
        if let Some(sending) = sending {
            drop(watch);
            return self
                .answer_own_send(sending, invitation, kind, key, render)
                .await;
        }
        let news = match self.wait_for_news(watch, outbox_id).await {
            Ok(news) => news,
            Err(e) => return as_committed(&render, &e),
        };
        let email = match news {
            // Without a stored response to update, the invitation as the delivery loop
            // committed it is the answer: true at that commit, which came after this request's.
            News::Recorded(recorded) => match (&recorded.invitation, &key) {
                (Some(current), None) => {
                    let state = Some(&recorded.state);
                    let body = answer(&render, kind, current, state, recorded.at);
                    return Answer::fresh(body);
                }
                _ => Some(recorded.state.clone()),
            },
            News::Read(state) => state,
        };
        let (bid, iid) = (invitation.business_id.clone(), invitation.id.clone());
        let renderer = render.clone();
        let answered = self
            .store
            .transaction(move |tx| {
                let now = now();
                let Some(current) = tx.invitation(&bid, &iid)? else {
                    return Ok::<_, Unexpected>(None);
                };
                let body = answer(&render, kind, &current.invitation, email.as_ref(), now);
                if let Some((scope, key)) = key {
                    tx.update_idempotent_body(&scope, &key, &serde_json::to_string(&body)?)?;
                }
                Ok(Some(body))
            })
            .await;
        match answered {
            Ok(Some(body)) => Answer::fresh(body),
            // Invitations are never deleted; were one gone, its state at commit is still true.
            Ok(None) => as_committed(&renderer, &"the invitation is gone"),
            Err(e) => as_committed(&renderer, &e.chain()),
        }
    }
}

impl App {
    /// The answer to a create or resend whose email this process is sending: as soon as the
    /// relay has replied (up to [`App::delivery_wait`]), the invitation and its email as that
    /// reply makes them, which is what the outcome is being recorded as; when the wait runs out
    /// first, as committed, the email queued (its send goes on). Both are true when said: the
    /// reply happened, or the email was queued and not yet attempted. The answer replaces the
    /// stored one for the request's Idempotency-Key when it says more.
    async fn answer_own_send<R: Render>(
        &self,
        sending: deliver::Dispatched,
        invitation: Invitation,
        kind: EmailKind,
        key: Option<(IdempotencyScope, String)>,
        render: R,
    ) -> Answer<R::Body> {
        let sent = if self.delivery_wait.is_zero() {
            None
        } else {
            tokio::time::timeout(self.delivery_wait, sending.sent)
                .await
                .ok()
                .and_then(Result::ok)
        };
        let Some(sent) = sent else {
            let message =
                delivery::delivery_message(kind, &invitation.email, delivery::Delivery::Queued);
            return Answer::fresh(render.render(&invitation, now(), message));
        };
        let (after, email) = delivery::after_attempt(&invitation, &sent.change, sent.at);
        let body = answer(&render, kind, &after, Some(&email), sent.at);
        if let Some((scope, key)) = key {
            let stored = serde_json::to_string(&body);
            let updated = self
                .store
                .transaction(move |tx| {
                    tx.update_idempotent_body(&scope, &key, &stored?)?;
                    Ok::<_, Unexpected>(())
                })
                .await;
            if let Err(e) = updated {
                // The stored answer stays the commit's (the email queued), which was true.
                slog::warn!(self.log, "the answer kept for an Idempotency-Key was not updated";
                    "error" => e.chain());
            }
        }
        Answer::fresh(body)
    }
}

/// What ended a delivery wait: the delivery loop's news, or a read of the row.
enum News {
    Recorded(Arc<Recorded>),
    Read(Option<EmailState>),
}

/// The body of a create's or resend's answer: `invitation` as of `now`, telling what became of
/// its email (`email`, as committed by then), and never more.
fn answer<R: Render>(
    render: &R,
    kind: EmailKind,
    invitation: &Invitation,
    email: Option<&EmailState>,
    now: DateTime<Utc>,
) -> R::Body {
    let reported = delivery::reported(invitation.status_at(now), email);
    let message = delivery::delivery_message(kind, &invitation.email, reported);
    render.render(invitation, now, message)
}

/// Now, at the millisecond precision the store keeps, so that a response says exactly what a
/// later read will. Operations that lock their business read it after the lock is held, so that
/// a request that waited for the lock never compares an earlier time with the previous holder's
/// writes.
pub fn now() -> DateTime<Utc> {
    let t = Utc::now();
    t - Duration::nanoseconds(i64::from(t.timestamp_subsec_nanos() % 1_000_000))
}

/// The member the identity names, if it is one.
fn caller(tx: &mut Tx<'_>, identity: &Identity) -> Result<Option<Member>, StoreError> {
    tx.member(&identity.business_id, &identity.user_id)
}

/// The caller's membership and, locked for the rest of the transaction, its business; `None`
/// when the token's user is not a member.
fn member_and_locked_business(
    tx: &mut Tx<'_>,
    identity: &Identity,
) -> Result<Option<(Member, Business)>, StoreError> {
    tx.member_and_locked_business(&identity.business_id, &identity.user_id)
}

/// The business's invitation with this client-given id; `None` stands for an id the server cannot
/// have issued (it did not parse), unknown without a query.
fn invitation_in(
    tx: &mut Tx<'_>,
    business_id: &BusinessId,
    id: Option<&InvitationId>,
) -> Result<Option<InvitationRecord>, StoreError> {
    match id {
        Some(id) => tx.invitation(business_id, id),
        None => Ok(None),
    }
}

/// Why an invitation email may not go to an address now; create and resend refuse the same way.
#[derive(Debug)]
enum EmailRefusal {
    /// 409: the address belongs to a member already.
    AlreadyMember,
    /// 409: another outstanding invitation for the address exists.
    DuplicateInvitation,
    /// 429: the business's daily email cap is reached.
    DailyCap { retry_after_secs: u64 },
}

/// Whether the business may email an invitation to `email_normalized` at `now`: not a member's
/// address, no outstanding invitation for it but `invitation_id` itself (one per address, each
/// holding a seat), and the daily cap not reached.
fn may_email<E: From<EmailRefusal> + From<StoreError>>(
    tx: &mut Tx<'_>,
    business_id: &BusinessId,
    email_normalized: &str,
    invitation_id: Option<&InvitationId>,
    now: DateTime<Utc>,
    policy: &Policy,
) -> Result<(), E> {
    let standing = tx.email_standing(
        business_id,
        email_normalized,
        invitation_id,
        now,
        rules::start_of_utc_day(now),
    )?;
    if standing.member {
        return Err(EmailRefusal::AlreadyMember.into());
    }
    if standing.other_outstanding {
        return Err(EmailRefusal::DuplicateInvitation.into());
    }
    rules::check_daily_cap(standing.emails_today, now, policy)
        .map_err(|retry_after_secs| EmailRefusal::DailyCap { retry_after_secs }.into())
}

/// The end of a create or resend by `me`: queues the email in the same transaction (claimed
/// for this process when it sends it itself: it will, right after the commit, and no other
/// worker may before the lease lapses), counts it for the daily cap, renders the response as of
/// the commit (the email queued), and keeps it for the request's Idempotency-Key, so that the
/// record holds it even if the process dies next.
#[allow(clippy::too_many_arguments)]
fn queue_email<R: Render>(
    tx: &mut Tx<'_>,
    me: &Member,
    record: InvitationRecord,
    kind: EmailKind,
    idem: Option<&Idempotency>,
    render: &R,
    now: DateTime<Utc>,
    lease: Option<Duration>,
) -> Result<Queued<R::Body>, Unexpected> {
    let invitation = &record.invitation;
    // The lease runs from the real time (a seeded create's `now` may lie in the past).
    let claim_until = lease.map(|lease| self::now().max(now) + lease);
    let outbox = tx.insert_outbox(
        &invitation.business_id,
        &invitation.id,
        kind,
        now,
        claim_until,
    )?;
    tx.count_email(&invitation.business_id, now)?;
    let idempotency = match idem {
        None => None,
        Some(idem) => {
            let scope = me.idempotency_scope();
            let message =
                delivery::delivery_message(kind, &invitation.email, delivery::Delivery::Queued);
            let body = serde_json::to_string(&render.render(invitation, now, message))?;
            idem.save(tx, &scope, body, now)?;
            Some((scope, idem.key.clone()))
        }
    };
    Ok(Queued::Fresh {
        invitation: Box::new(record),
        outbox,
        sending: None,
        idempotency,
    })
}

/// A renderer for callers that need no response body (the demo's seeding, the tests' set-up).
#[derive(Clone, Copy, Debug)]
pub struct NoBody;

impl Render for NoBody {
    type Body = ();
    fn render(&self, _: &Invitation, _: DateTime<Utc>, _: String) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("connection reset by peer")]
    struct Reset;

    #[derive(Debug, thiserror::Error)]
    #[error("the database did not answer")]
    struct Outage(#[source] Reset);

    #[test]
    fn an_unexpected_failure_keeps_its_whole_cause_chain_for_the_log() {
        let e = Unexpected(Box::new(Outage(Reset)));
        assert_eq!(
            e.chain(),
            "the database did not answer: connection reset by peer"
        );
        // What the client sees says nothing of it.
        assert_eq!(e.to_string(), "unexpected failure");
        let response =
            crate::contract::ResendBusinessInvitationResponse::from(ResendError::Unexpected(e));
        let crate::contract::ResendBusinessInvitationResponse::InternalServerError(problem) =
            response
        else {
            panic!("an unexpected failure is a 500, not {response:?}");
        };
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("database"));
    }
}
