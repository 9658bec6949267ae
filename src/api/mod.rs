//! The implementation of the generated [`LeadpingInvitationsApi`] trait: one thin handler per
//! operation that unpacks the request, authenticates it, calls one application function, and
//! maps the outcome to the wire. No SQL, no business rules, no delivery decisions here: which
//! refusal is which problem is decided beside each operation's error enum in `app`. Must never
//! import the store or the mail transport.

// A handler's refusal is the response it gives, by value, through the generated response enum.
#![allow(clippy::result_large_err)]

pub mod mapping;

use chrono::{DateTime, Utc};
use dropshot::{Header, Path, RequestContext, TypedBody};
use http::HeaderValue;
use slog::error;

use crate::app::{App, Idempotency, OperationError, Render};
use crate::auth::{AuthError, Identity, Verifier};
use crate::contract::*;
use crate::domain::{Invitation, InvitationId, Role};
use crate::problem::{Problem, ProblemType, ProblemWithHeaders};
use crate::wire::{
    AcceptBusinessInvitationRequest, BusinessInvitation, CreateBusinessInvitationRequest,
};

/// What every handler can reach.
#[derive(Debug)]
pub struct ApiContext {
    pub verifier: Verifier,
    pub app: App,
}

/// The server's implementation of the API trait.
pub enum InvitationsApi {}

type Ctx = RequestContext<ApiContext>;

/// The caller's identity from the bearer token, or the 401 problem to answer with; the problem
/// carries `WWW-Authenticate` as RFC 6750 asks, which is why it is a [`ProblemWithHeaders`].
fn authenticate(rqctx: &Ctx) -> Result<Identity, ProblemWithHeaders> {
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

fn unauthorized(rqctx: &Ctx, error: &AuthError) -> ProblemWithHeaders {
    let challenge = match error {
        AuthError::Missing | AuthError::NotBearer => "Bearer",
        _ => "Bearer error=\"invalid_token\"",
    };
    let mut problem =
        ProblemWithHeaders::of(ProblemType::Unauthorized, error.to_string()).at(rqctx);
    problem.headers.insert(
        http::header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    problem
}

/// A refused operation as its problem, tied to the request. An unexpected failure answers an
/// opaque 500; its whole cause chain goes to the log.
fn refuse<E: OperationError + Into<ProblemWithHeaders>>(rqctx: &Ctx, e: E) -> ProblemWithHeaders {
    if let Some(unexpected) = e.unexpected() {
        error!(rqctx.log, "unexpected failure"; "error" => unexpected.chain());
    }
    e.into().at(rqctx)
}

/// The request's Idempotency-Key, within the contract's `length` bounds, with the fingerprint of
/// everything else the request says.
fn idempotency(
    rqctx: &Ctx,
    key: Option<String>,
    length: std::ops::RangeInclusive<usize>,
    operation: &str,
    parts: &[&str],
) -> Result<Option<Idempotency>, ProblemWithHeaders> {
    key.map(|key| Idempotency::new(key, length, operation, parts))
        .transpose()
        .map_err(|e| ProblemWithHeaders::of(ProblemType::Validation, e.to_string()).at(rqctx))
}

/// The body of a create or resend: the invitation with its `safeMessage`.
#[derive(Clone, Copy, Debug)]
struct Wire;

impl Render for Wire {
    type Body = BusinessInvitation;
    fn render(&self, inv: &Invitation, now: DateTime<Utc>, message: String) -> BusinessInvitation {
        mapping::invitation(inv, now, Some(message))
    }
}

/// Unpacks a result whose error is already the response to give.
macro_rules! answer {
    ($response:ident, $result:expr) => {
        match $result {
            Ok(value) => value,
            Err(problem) => return Ok($response::Problem(problem)),
        }
    };
}

impl LeadpingInvitationsApi for InvitationsApi {
    type Context = ApiContext;

    async fn accept_business_invitation(
        rqctx: Ctx,
        body: TypedBody<AcceptBusinessInvitationRequest>,
    ) -> Result<AcceptBusinessInvitationResponse, Problem> {
        use AcceptBusinessInvitationResponse as R;
        let body = body.into_inner();
        let first_name = body.first_name.map(String::from);
        let last_name = body.last_name.map(String::from);
        let app = &rqctx.context().app;
        Ok(
            match app
                .accept(body.token, body.email, first_name, last_name)
                .await
            {
                Ok((inv, now)) => {
                    let message = format!("Welcome to {}.", inv.business_name);
                    R::Ok(mapping::invitation(&inv, now, Some(message)))
                }
                Err(e) => R::Problem(refuse(&rqctx, e)),
            },
        )
    }

    async fn get_business_invitation_by_token(
        rqctx: Ctx,
        path: Path<GetBusinessInvitationByTokenPath>,
    ) -> Result<GetBusinessInvitationByTokenResponse, Problem> {
        use GetBusinessInvitationByTokenResponse as R;
        let token = path.into_inner().token;
        Ok(match rqctx.context().app.lookup(token).await {
            Ok((inv, now)) => R::Ok(mapping::invitation(&inv, now, None)),
            Err(e) => R::Problem(refuse(&rqctx, e)),
        })
    }

    async fn list_business_invitations(
        rqctx: Ctx,
    ) -> Result<ListBusinessInvitationsResponse, Problem> {
        use ListBusinessInvitationsResponse as R;
        let identity = answer!(R, authenticate(&rqctx));
        Ok(match rqctx.context().app.list(identity).await {
            Ok((invitations, now)) => {
                R::Ok(invitations.iter().map(|i| mapping::row(i, now)).collect())
            }
            Err(e) => R::Problem(refuse(&rqctx, e)),
        })
    }

    async fn create_business_invitation(
        rqctx: Ctx,
        headers: Header<CreateBusinessInvitationHeaders>,
        body: TypedBody<CreateBusinessInvitationRequest>,
    ) -> Result<CreateBusinessInvitationResponse, Problem> {
        use CreateBusinessInvitationResponse as R;
        let identity = answer!(R, authenticate(&rqctx));
        let body = body.into_inner();
        let role = body
            .role
            .map(mapping::role_from_wire)
            .unwrap_or(Role::Agent);
        let idem = answer!(
            R,
            idempotency(
                &rqctx,
                headers.into_inner().idempotency_key,
                CreateBusinessInvitationHeaders::IDEMPOTENCY_KEY_MIN_LENGTH
                    ..=CreateBusinessInvitationHeaders::IDEMPOTENCY_KEY_MAX_LENGTH,
                "createBusinessInvitation",
                &[&body.email, mapping::role(role).as_str()],
            )
        );
        let app = &rqctx.context().app;
        Ok(
            match app.create(identity, body.email, role, idem, Wire).await {
                Ok(invitation) => R::Ok(invitation),
                Err(e) => R::Problem(refuse(&rqctx, e)),
            },
        )
    }

    async fn revoke_business_invitation(
        rqctx: Ctx,
        path: Path<RevokeBusinessInvitationPath>,
    ) -> Result<RevokeBusinessInvitationResponse, Problem> {
        use RevokeBusinessInvitationResponse as R;
        let identity = answer!(R, authenticate(&rqctx));
        let id = InvitationId::parse(&path.into_inner().invitation_id);
        Ok(match rqctx.context().app.revoke(identity, id).await {
            Ok(()) => R::NoContent,
            Err(e) => R::Problem(refuse(&rqctx, e)),
        })
    }

    async fn resend_business_invitation(
        rqctx: Ctx,
        path: Path<ResendBusinessInvitationPath>,
        headers: Header<ResendBusinessInvitationHeaders>,
    ) -> Result<ResendBusinessInvitationResponse, Problem> {
        use ResendBusinessInvitationResponse as R;
        let identity = answer!(R, authenticate(&rqctx));
        let raw_id = path.into_inner().invitation_id;
        let idem = answer!(
            R,
            idempotency(
                &rqctx,
                headers.into_inner().idempotency_key,
                ResendBusinessInvitationHeaders::IDEMPOTENCY_KEY_MIN_LENGTH
                    ..=ResendBusinessInvitationHeaders::IDEMPOTENCY_KEY_MAX_LENGTH,
                "resendBusinessInvitation",
                &[&raw_id],
            )
        );
        let id = InvitationId::parse(&raw_id);
        Ok(
            match rqctx.context().app.resend(identity, id, idem, Wire).await {
                Ok(invitation) => R::Ok(invitation),
                Err(e) => R::Problem(refuse(&rqctx, e)),
            },
        )
    }
}
