//! Accept an invitation: the recipient becomes a member with the invitation's role, and the seat
//! the invitation held becomes theirs.

use chrono::{DateTime, Utc};

use super::{App, Unexpected, now, operation_error};
use crate::contract::AcceptBusinessInvitationResponse;
use crate::domain::{EmailAddress, Invitation, Status, StoredStatus, UserId};
use crate::problem::{Problem, ProblemType};
use crate::store::Member;
use crate::tokens;

/// Why an accept is refused. Each names its status; the message is the problem's detail.
#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    /// 404: no invitation has this token.
    #[error("No invitation has this token.")]
    NotFound,
    /// 409
    #[error("The invitation was already accepted.")]
    Accepted,
    /// 409
    #[error("The invitation was revoked.")]
    Revoked,
    /// 409
    #[error("The invitation expired; ask the business to resend it.")]
    Expired,
    /// 409: the accepting email is not the invited one.
    #[error("This is not the email address the invitation was sent to.")]
    EmailMismatch,
    /// 409: the invited email became a member meanwhile.
    #[error("This email already belongs to a member of the business.")]
    AlreadyMember,
    /// 503 when the database is unavailable, 500 otherwise (a bug)
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}
operation_error!(AcceptError);

impl From<AcceptError> for AcceptBusinessInvitationResponse {
    fn from(e: AcceptError) -> Self {
        use AcceptBusinessInvitationResponse as R;
        let problem = |kind| Problem::new(kind, e.to_string());
        match &e {
            AcceptError::NotFound => R::NotFound(problem(ProblemType::NotFound)),
            AcceptError::Accepted => R::Conflict(problem(ProblemType::InvitationAccepted)),
            AcceptError::Revoked => R::Conflict(problem(ProblemType::InvitationRevoked)),
            AcceptError::Expired => R::Conflict(problem(ProblemType::InvitationExpired)),
            AcceptError::EmailMismatch => R::Conflict(problem(ProblemType::EmailMismatch)),
            AcceptError::AlreadyMember => R::Conflict(problem(ProblemType::AlreadyMember)),
            AcceptError::Unexpected(u) => u.respond(R::ServiceUnavailable, R::InternalServerError),
        }
    }
}

impl App {
    /// Accepts an invitation by its token, as `email` when given (it must be the invited one),
    /// with the member's names; returns the invitation and the time of acceptance.
    pub async fn accept(
        &self,
        token: String,
        email: Option<String>,
        first_name: Option<String>,
        last_name: Option<String>,
    ) -> Result<(Invitation, DateTime<Utc>), AcceptError> {
        // A token not shaped like one is unknown without a transaction.
        let Some(id) = tokens::invitation_id_of(&token) else {
            return Err(AcceptError::NotFound);
        };
        let app = self.clone();
        self.store
            .transaction(move |tx| {
                let Some(found) = app.find_by_token(tx, &id, &token)? else {
                    return Err(AcceptError::NotFound);
                };
                let Some(_business) = tx.lock_business(&found.invitation.business_id)? else {
                    return Err(AcceptError::NotFound);
                };
                let now = now();
                // Re-read under the lock: a concurrent accept or revoke may have won.
                let Some(mut record) =
                    tx.invitation(&found.invitation.business_id, &found.invitation.id)?
                else {
                    return Err(AcceptError::NotFound);
                };
                match record.invitation.status_at(now) {
                    Status::Accepted => return Err(AcceptError::Accepted),
                    Status::Revoked => return Err(AcceptError::Revoked),
                    Status::Expired => return Err(AcceptError::Expired),
                    Status::Pending | Status::Resent | Status::FailedToSend => {}
                }
                if let Some(given) = email.as_deref().filter(|e| !e.trim().is_empty()) {
                    let matches = EmailAddress::parse(given)
                        .is_ok_and(|e| e.normalized() == record.email_normalized);
                    if !matches {
                        return Err(AcceptError::EmailMismatch);
                    }
                }
                if tx
                    .member_by_email(&record.invitation.business_id, &record.email_normalized)?
                    .is_some()
                {
                    return Err(AcceptError::AlreadyMember);
                }
                let member = Member {
                    business_id: record.invitation.business_id.clone(),
                    user_id: UserId::generate(),
                    email: record.invitation.email.clone(),
                    role: record.invitation.role,
                };
                tx.insert_member(&member, first_name.as_deref(), last_name.as_deref(), now)?;
                record.invitation.status = StoredStatus::Accepted;
                record.invitation.accepted_at = Some(now);
                tx.update_invitation(&record)?;
                Ok((record.invitation, now))
            })
            .await
    }
}
