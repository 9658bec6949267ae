//! The implementation of the generated [`LeadpingInvitationsApi`] trait: one thin handler per
//! operation that unpacks the request, calls the application, and maps the outcome to the wire.
//!
//! Until the lifecycle lands, every operation answers a `not-implemented` problem (501), so that
//! the contract, the generated client and the server can be exercised end to end already.

pub mod wire_map;

use dropshot::{Header, Path, RequestContext, TypedBody};
use http::HeaderValue;

use crate::auth::{AuthError, Identity, Verifier};
use crate::contract::*;
use crate::problem::{Problem, ProblemType, ProblemWithHeaders};
use crate::types::{AcceptBusinessInvitationRequest, CreateBusinessInvitationRequest};

/// What every handler can reach.
#[derive(Debug)]
pub struct ApiContext {
    pub verifier: Verifier,
}

/// The caller's identity from the bearer token, or the 401 problem to answer with; the problem
/// carries `WWW-Authenticate` as RFC 6750 asks, which is why it is a [`ProblemWithHeaders`].
fn authenticate(rqctx: &RequestContext<ApiContext>) -> Result<Identity, Box<ProblemWithHeaders>> {
    let header = rqctx.request.headers().get(http::header::AUTHORIZATION);
    let value = match header.map(|h| h.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Err(unauthorized(rqctx, &AuthError::Malformed)),
    };
    rqctx
        .context()
        .verifier
        .verify(value)
        .map_err(|e| unauthorized(rqctx, &e))
}

fn unauthorized(rqctx: &RequestContext<ApiContext>, error: &AuthError) -> Box<ProblemWithHeaders> {
    let challenge = match error {
        AuthError::Missing | AuthError::NotBearer => "Bearer",
        _ => "Bearer error=\"invalid_token\"",
    };
    let mut problem = ProblemWithHeaders::new(
        Problem::new(ProblemType::Unauthorized, error.to_string()).at(rqctx),
    );
    problem.headers.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    Box::new(problem)
}

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
        let _caller = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(ListBusinessInvitationsResponse::Problem(*problem)),
        };
        Err(not_implemented(&rqctx, "listBusinessInvitations"))
    }

    async fn create_business_invitation(
        rqctx: RequestContext<ApiContext>,
        _headers: Header<CreateBusinessInvitationHeaders>,
        _body: TypedBody<CreateBusinessInvitationRequest>,
    ) -> Result<CreateBusinessInvitationResponse, Problem> {
        let _caller = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(CreateBusinessInvitationResponse::Problem(*problem)),
        };
        Err(not_implemented(&rqctx, "createBusinessInvitation"))
    }

    async fn revoke_business_invitation(
        rqctx: RequestContext<ApiContext>,
        _path: Path<RevokeBusinessInvitationPath>,
    ) -> Result<RevokeBusinessInvitationResponse, Problem> {
        let _caller = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(RevokeBusinessInvitationResponse::Problem(*problem)),
        };
        Err(not_implemented(&rqctx, "revokeBusinessInvitation"))
    }

    async fn resend_business_invitation(
        rqctx: RequestContext<ApiContext>,
        _path: Path<ResendBusinessInvitationPath>,
        _headers: Header<ResendBusinessInvitationHeaders>,
    ) -> Result<ResendBusinessInvitationResponse, Problem> {
        let _caller = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(ResendBusinessInvitationResponse::Problem(*problem)),
        };
        Err(not_implemented(&rqctx, "resendBusinessInvitation"))
    }
}
