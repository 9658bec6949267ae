//! List the caller's business's invitations, newest first, each with its status as of now.

use chrono::{DateTime, Utc};

use super::{App, Unexpected, caller, now, operation_error};
use crate::auth::Identity;
use crate::contract::ListBusinessInvitationsResponse;
use crate::domain::Invitation;
use crate::problem::{Problem, ProblemType};

/// Why a list is refused. Each names its status; the message is the problem's detail.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// 403
    #[error("The bearer token's user is not a member of its business.")]
    NotMember,
    /// 503 when the database is unavailable, 500 otherwise (a bug)
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}
operation_error!(ListError);

impl From<ListError> for ListBusinessInvitationsResponse {
    fn from(e: ListError) -> Self {
        use ListBusinessInvitationsResponse as R;
        match &e {
            ListError::NotMember => {
                R::Forbidden(Problem::new(ProblemType::Forbidden, e.to_string()))
            }
            ListError::Unexpected(u) => u.respond(R::ServiceUnavailable, R::InternalServerError),
        }
    }
}

impl App {
    /// The business's invitations, newest first, and the time their statuses are computed at.
    pub async fn list(
        &self,
        identity: Identity,
    ) -> Result<(Vec<Invitation>, DateTime<Utc>), ListError> {
        self.store
            .transaction(move |tx| {
                let now = now();
                let Some(me) = caller(tx, &identity)? else {
                    return Err(ListError::NotMember);
                };
                let rows = tx.list_invitations(&me.business_id)?;
                Ok((rows.into_iter().map(|r| r.invitation).collect(), now))
            })
            .await
    }
}
