//! The implementation of the generated [`LeadpingInvitationsApi`] trait: one thin handler per
//! operation that unpacks the request, calls the application, and maps the outcome to the wire.
//!
//! Until the lifecycle lands, every operation answers a `not-implemented` problem (501), so that
//! the contract, the generated client and the server can be exercised end to end already.

pub mod wire_map;

use dropshot::{Header, Path, RequestContext, TypedBody};

use crate::contract::*;
use crate::problem::{Problem, ProblemType};
use crate::types::{AcceptBusinessInvitationRequest, CreateBusinessInvitationRequest};

/// What every handler can reach.
#[derive(Debug, Default)]
pub struct ApiContext {}

/// The server's implementation of the API trait.
pub enum InvitationsApi {}

fn not_implemented(rqctx: &RequestContext<ApiContext>, operation_id: &str) -> Problem {
    Problem::new(
        ProblemType::NotImplemented,
        format!(
            "{operation_id} is part of the contract but this server does not implement it yet."
        ),
    )
    .at(rqctx)
}

impl LeadpingInvitationsApi for InvitationsApi {
    type Context = ApiContext;

    async fn accept_business_invitation(
        rqctx: RequestContext<ApiContext>,
        _body: TypedBody<AcceptBusinessInvitationRequest>,
    ) -> Result<AcceptBusinessInvitationResponse, Problem> {
        Err(not_implemented(&rqctx, "acceptBusinessInvitation"))
    }

    async fn get_business_invitation_by_token(
        rqctx: RequestContext<ApiContext>,
        _path: Path<GetBusinessInvitationByTokenPath>,
    ) -> Result<GetBusinessInvitationByTokenResponse, Problem> {
        Err(not_implemented(&rqctx, "getBusinessInvitationByToken"))
    }

    async fn list_business_invitations(
        rqctx: RequestContext<ApiContext>,
    ) -> Result<ListBusinessInvitationsResponse, Problem> {
        Err(not_implemented(&rqctx, "listBusinessInvitations"))
    }

    async fn create_business_invitation(
        rqctx: RequestContext<ApiContext>,
        _headers: Header<CreateBusinessInvitationHeaders>,
        _body: TypedBody<CreateBusinessInvitationRequest>,
    ) -> Result<CreateBusinessInvitationResponse, Problem> {
        Err(not_implemented(&rqctx, "createBusinessInvitation"))
    }

    async fn revoke_business_invitation(
        rqctx: RequestContext<ApiContext>,
        _path: Path<RevokeBusinessInvitationPath>,
    ) -> Result<RevokeBusinessInvitationResponse, Problem> {
        Err(not_implemented(&rqctx, "revokeBusinessInvitation"))
    }

    async fn resend_business_invitation(
        rqctx: RequestContext<ApiContext>,
        _path: Path<ResendBusinessInvitationPath>,
        _headers: Header<ResendBusinessInvitationHeaders>,
    ) -> Result<ResendBusinessInvitationResponse, Problem> {
        Err(not_implemented(&rqctx, "resendBusinessInvitation"))
    }
}
