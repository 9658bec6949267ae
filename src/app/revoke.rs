//! Revoke an invitation: it can no longer be accepted, and its seat goes back.

use super::{App, Unexpected, invitation_in, member_and_locked_business, now, operation_error};
use crate::auth::Identity;
use crate::billing;
use crate::contract::RevokeBusinessInvitationResponse;
use crate::domain::rules;
use crate::domain::{InvitationId, StoredStatus};
use crate::problem::{Problem, ProblemType};

/// Why a revoke is refused. Each names its status; the message is the problem's detail.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    /// 403
    #[error("The bearer token's user is not a member of its business.")]
    NotMember,
    /// 404: unknown ids and other businesses' ids alike.
    #[error("The business has no invitation with this ID.")]
    NotFound,
    /// 403: Agents cannot revoke; Admins cannot revoke Owner invitations.
    #[error(
        "Your role cannot revoke this invitation: Agents cannot, Admins cannot revoke Owner invitations."
    )]
    Forbidden,
    /// 409
    #[error("The invitation was already accepted; remove the member instead.")]
    Accepted,
    /// 503 when the database is unavailable, 500 otherwise (a bug)
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}
operation_error!(RevokeError);

impl From<RevokeError> for RevokeBusinessInvitationResponse {
    fn from(e: RevokeError) -> Self {
        use RevokeBusinessInvitationResponse as R;
        let problem = |kind| Problem::new(kind, e.to_string());
        match &e {
            RevokeError::NotMember | RevokeError::Forbidden => {
                R::Forbidden(problem(ProblemType::Forbidden))
            }
            RevokeError::NotFound => R::NotFound(problem(ProblemType::NotFound)),
            RevokeError::Accepted => R::Conflict(problem(ProblemType::InvitationAccepted)),
            RevokeError::Unexpected(u) => u.respond(R::ServiceUnavailable, R::InternalServerError),
        }
    }
}

impl App {
    /// Revokes an invitation and releases its seat. Revoking a revoked invitation is a no-op.
    /// `None` stands for an id the server cannot have issued: a 404 once the caller is known to
    /// be a member.
    pub async fn revoke(
        &self,
        identity: Identity,
        invitation_id: Option<InvitationId>,
    ) -> Result<(), RevokeError> {
        self.store
            .transaction(move |tx| {
                let Some((me, mut business)) = member_and_locked_business(tx, &identity)? else {
                    return Err(RevokeError::NotMember);
                };
                let now = now();
                let Some(mut record) = invitation_in(tx, &business.id, invitation_id.as_ref())?
                else {
                    return Err(RevokeError::NotFound);
                };
                if !rules::may_manage(me.role, record.invitation.role) {
                    return Err(RevokeError::Forbidden);
                }
                match record.invitation.status {
                    StoredStatus::Accepted => return Err(RevokeError::Accepted),
                    StoredStatus::Revoked => return Ok(()),
                    StoredStatus::Pending | StoredStatus::Resent | StoredStatus::FailedToSend => {}
                }
                billing::release_seat(
                    tx,
                    &mut business,
                    &mut record.invitation,
                    "invitation revoked",
                    now,
                )?;
                record.invitation.status = StoredStatus::Revoked;
                record.invitation.revoked_at = Some(now);
                tx.update_invitation(&record)?;
                Ok(())
            })
            .await
    }
}
