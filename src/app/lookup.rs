//! Look an invitation up by its acceptance token (what the accept page shows before accepting).

use chrono::{DateTime, Utc};

use super::{App, Unexpected, now, operation_error};
use crate::contract::GetBusinessInvitationByTokenResponse;
use crate::domain::{Invitation, InvitationId};
use crate::problem::{Problem, ProblemType};
use crate::store::{InvitationRecord, StoreError, Tx};
use crate::tokens;

/// Why a look-up is refused. Each names its status; the message is the problem's detail.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// 404: no invitation has this token.
    #[error("No invitation has this token.")]
    NotFound,
    /// 503 when the database is unavailable, 500 otherwise (a bug)
    #[error(transparent)]
    Unexpected(#[from] Unexpected),
}
operation_error!(LookupError);

impl From<LookupError> for GetBusinessInvitationByTokenResponse {
    fn from(e: LookupError) -> Self {
        use GetBusinessInvitationByTokenResponse as R;
        match &e {
            LookupError::NotFound => {
                R::NotFound(Problem::new(ProblemType::NotFound, e.to_string()))
            }
            LookupError::Unexpected(u) => u.respond(R::ServiceUnavailable, R::InternalServerError),
        }
    }
}

impl App {
    /// The invitation whose acceptance token this is (for `id`, the invitation the token names),
    /// if any.
    pub(super) fn find_by_token(
        &self,
        tx: &mut Tx<'_>,
        id: &InvitationId,
        token: &str,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        Ok(tx
            .invitation_by_id(id)?
            .filter(|r| self.tokens.verify(token, &r.invitation.id, &r.token_nonce)))
    }

    /// The invitation this token accepts, and the time its status is computed at.
    pub async fn lookup(&self, token: String) -> Result<(Invitation, DateTime<Utc>), LookupError> {
        // A token not shaped like one is unknown without a transaction.
        let Some(id) = tokens::invitation_id_of(&token) else {
            return Err(LookupError::NotFound);
        };
        let app = self.clone();
        self.store
            .transaction(move |tx| {
                let now = now();
                match app.find_by_token(tx, &id, &token)? {
                    Some(r) => Ok((r.invitation, now)),
                    None => Err(LookupError::NotFound),
                }
            })
            .await
    }
}
