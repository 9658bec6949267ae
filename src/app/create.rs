//! Create an invitation: validate the email, refuse members and duplicates, count the email
//! against the daily cap, take a seat, queue the email.

use chrono::{DateTime, Utc};

use super::idempotency::replayed;
use super::{
    Answer, App, Idempotency, Queued, Render, Unexpected, member_and_locked_business, now,
    operation_error, queue_email,
};
use crate::auth::Identity;
use crate::billing;
use crate::contract::CreateBusinessInvitationResponse;
use crate::domain::delivery::EmailKind;
use crate::domain::rules;
use crate::domain::{EmailAddress, Invitation, InvitationId, License, Role, StoredStatus};
use crate::problem::{Problem, ProblemType, retry_after};
use crate::store::InvitationRecord;
use crate::tokens;

/// Why a create is refused. Each names its status; the message is the problem's detail.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// 403
    #[error("The bearer token's user is not a member of its business.")]
    NotMember,
    /// 403: Agents cannot invite; Admins cannot invite Owners.
    #[error(
        "Your role cannot invite to this role: Agents cannot invite, Admins cannot invite Owners."
    )]
    Forbidden,
    /// 400: the email does not parse.
    #[error("{0}")]
    InvalidEmail(String),
    /// 409
    #[error("This email already belongs to a member of the business.")]
    AlreadyMember,
    /// 409
    #[error("An outstanding invitation for this email already exists; resend it instead.")]
    DuplicateInvitation,
    /// 409
    #[error("No license seat is available on the business's subscription.")]
    SeatLimitReached,
    /// 422
    #[error("This Idempotency-Key was already used with a different request.")]
    IdempotencyKeyReused,
    /// 429 with Retry-After.
    #[error(
        "The business reached its daily cap of invitation emails. Retry in {retry_after_secs} s."
    )]
    DailyCap { retry_after_secs: u64 },
    /// 503 when the database is unavailable, 500 otherwise (a bug)
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}
operation_error!(CreateError);

impl From<super::EmailRefusal> for CreateError {
    fn from(r: super::EmailRefusal) -> Self {
        match r {
            super::EmailRefusal::AlreadyMember => CreateError::AlreadyMember,
            super::EmailRefusal::DuplicateInvitation => CreateError::DuplicateInvitation,
            super::EmailRefusal::DailyCap { retry_after_secs } => {
                CreateError::DailyCap { retry_after_secs }
            }
        }
    }
}

impl From<CreateError> for CreateBusinessInvitationResponse {
    fn from(e: CreateError) -> Self {
        use CreateBusinessInvitationResponse as R;
        let problem = |kind| Problem::new(kind, e.to_string());
        match &e {
            CreateError::NotMember | CreateError::Forbidden => {
                R::Forbidden(problem(ProblemType::Forbidden))
            }
            CreateError::InvalidEmail(_) => R::BadRequest(problem(ProblemType::Validation)),
            CreateError::AlreadyMember => R::Conflict(problem(ProblemType::AlreadyMember)),
            CreateError::DuplicateInvitation => {
                R::Conflict(problem(ProblemType::DuplicateInvitation))
            }
            CreateError::SeatLimitReached => R::Conflict(problem(ProblemType::SeatLimitReached)),
            CreateError::IdempotencyKeyReused => {
                R::UnprocessableEntity(problem(ProblemType::IdempotencyKeyReused))
            }
            CreateError::DailyCap { retry_after_secs } => R::TooManyRequests(
                problem(ProblemType::DailyEmailCap),
                retry_after(*retry_after_secs),
            ),
            CreateError::Unexpected(u) => u.respond(R::ServiceUnavailable, R::InternalServerError),
        }
    }
}

/// How the demo and the tests seed an invitation: as if created at `at` (a while ago, so that a
/// first resend is not inside the cooldown), under a given id, and with a given acceptance-token
/// nonce when one is given (the demo's ids and tokens are the same on every start, so that a
/// consumer's tests can name them).
#[derive(Clone, Debug)]
pub struct Seed {
    pub at: DateTime<Utc>,
    pub id: InvitationId,
    pub nonce: Option<String>,
}

impl App {
    /// Invites `email` to the caller's business with `role`, and answers once its email's first
    /// attempt is known (or the delivery wait is over).
    pub async fn create<R: Render>(
        &self,
        identity: Identity,
        email: String,
        role: Role,
        idem: Option<Idempotency>,
        render: R,
    ) -> Result<Answer<R::Body>, CreateError> {
        let watch = self.watch();
        let queued = self
            .create_at(identity, email, role, idem, render.clone(), None)
            .await?;
        Ok(self.settle(watch, queued, EmailKind::Invite, render).await)
    }

    /// The create's transaction, as [`Seed`] says when given (now and a fresh id otherwise).
    pub async fn create_at<R: Render>(
        &self,
        identity: Identity,
        email: String,
        role: Role,
        idem: Option<Idempotency>,
        render: R,
        seed: Option<Seed>,
    ) -> Result<Queued<R::Body>, CreateError> {
        let policy = self.policy.clone();
        let lease = self.sender().map(|s| s.lease());
        let queued = self
            .store
            .transaction(move |tx| {
                let Some((me, mut business)) = member_and_locked_business(tx, &identity)? else {
                    return Err(CreateError::NotMember);
                };
                if !rules::may_manage(me.role, role) {
                    return Err(CreateError::Forbidden);
                }
                let email = EmailAddress::parse(&email).map_err(CreateError::InvalidEmail)?;
                let now = seed.as_ref().map_or_else(now, |s| s.at);
                let nonce = seed
                    .as_ref()
                    .and_then(|s| s.nonce.clone())
                    .unwrap_or_else(|| tokens::random_nonce(16));
                // After the role rule above: a replay answers only what this caller may do.
                let reused = CreateError::IdempotencyKeyReused;
                let scope = me.idempotency_scope();
                if let Some(body) = replayed(idem.as_ref(), tx, &scope, now, reused)? {
                    return Ok(Queued::Replayed(body));
                }
                super::may_email::<CreateError>(
                    tx,
                    &business.id,
                    &email.normalized(),
                    None,
                    now,
                    &policy,
                )?;
                let id = seed.map_or_else(InvitationId::generate, |s| s.id);
                let Some(seat) =
                    billing::take_seat(tx, &mut business, &id, "invitation created", now, &policy)?
                else {
                    return Err(CreateError::SeatLimitReached);
                };
                let record = InvitationRecord {
                    invitation: Invitation {
                        id,
                        business_id: business.id.clone(),
                        business_name: business.name.clone(),
                        email: email.as_str().to_string(),
                        role,
                        status: StoredStatus::Pending,
                        created_at: now,
                        expires_at: now + policy.validity,
                        sent_at: None,
                        resent_at: None,
                        accepted_at: None,
                        revoked_at: None,
                        send_failure_reason: None,
                        license: Some(License {
                            billing_status: seat.billing_status,
                            quantity: seat.quantity,
                            renewal_date: seat.renewal_date,
                            activated_at: now,
                            released_at: None,
                        }),
                    },
                    email_normalized: email.normalized(),
                    token_nonce: nonce,
                };
                tx.insert_invitation(&record)?;
                Ok(queue_email(
                    tx,
                    &me,
                    record,
                    EmailKind::Invite,
                    idem.as_ref(),
                    &render,
                    now,
                    lease,
                )?)
            })
            .await?;
        Ok(self.dispatch(queued))
    }
}
