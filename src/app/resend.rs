//! Resend an invitation (the headline operation): the resend rules, the duplicate, member and
//! daily-cap checks shared with create, a seat again for an expired invitation whose seat was
//! released, a fresh email that supersedes the older ones still waiting.

use super::idempotency::replayed;
use super::{
    Answer, App, EmailRefusal, Idempotency, Queued, Render, Unexpected, invitation_in,
    member_and_locked_business, now, operation_error, queue_email,
};
use crate::auth::Identity;
use crate::billing;
use crate::contract::ResendBusinessInvitationResponse;
use crate::domain::InvitationId;
use crate::domain::delivery::EmailKind;
use crate::domain::rules::{self, ResendRefusal};
use crate::problem::{Problem, ProblemType, retry_after};

/// Why a resend is refused. Each names its status; the message is the problem's detail.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    /// 403
    #[error("The bearer token's user is not a member of its business.")]
    NotMember,
    /// 404: unknown ids and other businesses' ids alike.
    #[error("The business has no invitation with this ID.")]
    NotFound,
    /// 403: Agents cannot resend; Admins cannot resend Owner invitations.
    #[error(
        "Your role cannot resend this invitation: Agents cannot, Admins cannot resend Owner invitations."
    )]
    Forbidden,
    /// 409
    #[error("The invitation was already accepted.")]
    Accepted,
    /// 409
    #[error("The invitation was revoked; create a new one.")]
    Revoked,
    /// 409: the invitation expired and another outstanding invitation for its email exists.
    #[error(
        "This invitation expired and a newer one for the same email is outstanding; resend that one instead."
    )]
    DuplicateInvitation,
    /// 409: the invited email has become a member of the business.
    #[error("The invited email now belongs to a member of the business.")]
    AlreadyMember,
    /// 409: the invitation needs a seat again and none can be had.
    #[error("The invitation needs a license seat again and none is available.")]
    SeatLimitReached,
    /// 422
    #[error("This Idempotency-Key was already used with a different request.")]
    IdempotencyKeyReused,
    /// 429 with Retry-After: the invitation's last email went out less than the cooldown ago.
    #[error("This invitation was sent moments ago. Retry in {retry_after_secs} s.")]
    Cooldown { retry_after_secs: u64 },
    /// 429 with Retry-After.
    #[error(
        "The business reached its daily cap of invitation emails. Retry in {retry_after_secs} s."
    )]
    DailyCap { retry_after_secs: u64 },
    /// 503 when the database is unavailable, 500 otherwise (a bug)
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}
operation_error!(ResendError);

impl From<ResendRefusal> for ResendError {
    fn from(r: ResendRefusal) -> Self {
        match r {
            ResendRefusal::Forbidden => ResendError::Forbidden,
            ResendRefusal::Accepted => ResendError::Accepted,
            ResendRefusal::Revoked => ResendError::Revoked,
            ResendRefusal::Cooldown { retry_after_secs } => {
                ResendError::Cooldown { retry_after_secs }
            }
        }
    }
}

impl From<EmailRefusal> for ResendError {
    fn from(r: EmailRefusal) -> Self {
        match r {
            EmailRefusal::AlreadyMember => ResendError::AlreadyMember,
            EmailRefusal::DuplicateInvitation => ResendError::DuplicateInvitation,
            EmailRefusal::DailyCap { retry_after_secs } => {
                ResendError::DailyCap { retry_after_secs }
            }
        }
    }
}

impl From<ResendError> for ResendBusinessInvitationResponse {
    fn from(e: ResendError) -> Self {
        use ResendBusinessInvitationResponse as R;
        let problem = |kind| Problem::new(kind, e.to_string());
        match &e {
            ResendError::NotMember | ResendError::Forbidden => {
                R::Forbidden(problem(ProblemType::Forbidden))
            }
            ResendError::NotFound => R::NotFound(problem(ProblemType::NotFound)),
            ResendError::Accepted => R::Conflict(problem(ProblemType::InvitationAccepted)),
            ResendError::Revoked => R::Conflict(problem(ProblemType::InvitationRevoked)),
            ResendError::DuplicateInvitation => {
                R::Conflict(problem(ProblemType::DuplicateInvitation))
            }
            ResendError::AlreadyMember => R::Conflict(problem(ProblemType::AlreadyMember)),
            ResendError::SeatLimitReached => R::Conflict(problem(ProblemType::SeatLimitReached)),
            ResendError::IdempotencyKeyReused => {
                R::UnprocessableEntity(problem(ProblemType::IdempotencyKeyReused))
            }
            ResendError::Cooldown { retry_after_secs } => R::TooManyRequests(
                problem(ProblemType::ResendCooldown),
                retry_after(*retry_after_secs),
            ),
            ResendError::DailyCap { retry_after_secs } => R::TooManyRequests(
                problem(ProblemType::DailyEmailCap),
                retry_after(*retry_after_secs),
            ),
            ResendError::Unexpected(u) => u.respond(R::ServiceUnavailable, R::InternalServerError),
        }
    }
}

impl App {
    /// Resends an invitation of the caller's business, and answers once the new email's first
    /// attempt is known (or the delivery wait is over). `None` stands for an id the server
    /// cannot have issued: a 404 once the caller is known to be a member.
    pub async fn resend<R: Render>(
        &self,
        identity: Identity,
        invitation_id: Option<InvitationId>,
        idem: Option<Idempotency>,
        render: R,
    ) -> Result<Answer<R::Body>, ResendError> {
        let policy = self.policy.clone();
        let lease = self.sender().map(|s| s.lease());
        let renderer = render.clone();
        let watch = self.watch();
        let (queued, superseded) = self
            .store
            .transaction(move |tx| {
                let Some((me, mut business)) = member_and_locked_business(tx, &identity)? else {
                    return Err(ResendError::NotMember);
                };
                let now = now();
                let Some(mut record) = invitation_in(tx, &business.id, invitation_id.as_ref())?
                else {
                    return Err(ResendError::NotFound);
                };
                // A replay answers only what this caller may still do: the role rule first.
                if !rules::may_manage(me.role, record.invitation.role) {
                    return Err(ResendError::Forbidden);
                }
                let reused = ResendError::IdempotencyKeyReused;
                let scope = me.idempotency_scope();
                if let Some(body) = replayed(idem.as_ref(), tx, &scope, now, reused)? {
                    return Ok((Queued::Replayed(body), vec![]));
                }
                let decision = rules::check_resend(&record.invitation, me.role, now, &policy)?;
                // Create allows one outstanding invitation per email; an expired one coming back
                // must not make two (each holding a seat), nor invite someone already a member.
                super::may_email::<ResendError>(
                    tx,
                    &business.id,
                    &record.email_normalized,
                    Some(&record.invitation.id),
                    now,
                    &policy,
                )?;
                let seat = if decision.takes_seat {
                    let seat = billing::take_seat(
                        tx,
                        &mut business,
                        &record.invitation.id,
                        "expired invitation resent",
                        now,
                        &policy,
                    )?;
                    Some(seat.ok_or(ResendError::SeatLimitReached)?)
                } else {
                    None
                };
                record.invitation = rules::apply_resend(&record.invitation, now, &policy, seat);
                tx.update_invitation(&record)?;
                // The recipient gets the resent email, not also an older copy still waiting for
                // a relay that was down.
                let superseded = tx.outbox_supersede_waiting(
                    &record.invitation.id,
                    now,
                    "Superseded by a resend",
                )?;
                let queued = queue_email(
                    tx,
                    &me,
                    record,
                    EmailKind::Resend,
                    idem.as_ref(),
                    &renderer,
                    now,
                    lease,
                )?;
                Ok((queued, superseded))
            })
            .await?;
        // Requests still waiting on a superseded email answer now, with what became of it.
        for id in superseded {
            self.settled(id, None);
        }
        let queued = self.dispatch(queued);
        Ok(self.settle(watch, queued, EmailKind::Resend, render).await)
    }
}
