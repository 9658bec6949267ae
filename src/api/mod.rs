//! The implementation of the generated [`LeadpingInvitationsApi`] trait: one thin handler per
//! operation that receives its parsed inputs (and, where the operation requires a bearer token,
//! the [`Caller`] that this module's extractor authenticates), calls one application function,
//! and maps the outcome to one of the operation's declared responses. No SQL, no business
//! rules, no delivery decisions here: which refusal is which response is decided beside each
//! operation's error enum in `app`. Must never import the store or the mail transport.

pub mod mapping;

use std::any::Any;

use chrono::{DateTime, Utc};
use dropshot::{
    ApiEndpointBodyContentType, ClientErrorStatusCode, ExtensionMode, ExtractorMetadata, HttpError,
    RequestContext, ServerContext, SharedExtractor,
};
use http::HeaderValue;
use slog::{error, warn};

use crate::app::{App, Idempotency, InvalidIdempotencyKey, OperationError, Render};
use crate::auth::{AuthError, Identity, Verifier};
use crate::contract::*;
use crate::domain::{Invitation, InvitationId, Role};
use crate::problem::{Problem, ProblemType};
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

/// The authenticated caller of an operation that requires `bearerAuth`: the generated trait
/// hands it to exactly those operations, so none of them can be written without it.
#[derive(Debug)]
pub struct Caller(pub Identity);

/// Reads the bearer token. A refusal is a 401 with `WWW-Authenticate` as RFC 6750 asks, which
/// the generated endpoint turns into the operation's declared 401.
#[async_trait::async_trait]
impl SharedExtractor for Caller {
    async fn from_request<C: ServerContext>(rqctx: &RequestContext<C>) -> Result<Self, HttpError> {
        // dropshot hands extractors a context of any type; this one runs only in this API.
        let context: &dyn Any = rqctx.context();
        let Some(context) = context.downcast_ref::<ApiContext>() else {
            return Err(HttpError::for_internal_error(
                "the bearer extractor ran outside this server's API".into(),
            ));
        };
        let header = rqctx.request.headers().get(http::header::AUTHORIZATION);
        let value = match header.map(|h| h.to_str()) {
            None => None,
            Some(Ok(v)) => Some(v),
            Some(Err(_)) => return Err(unauthorized(&AuthError::Malformed)),
        };
        context
            .verifier
            .verify(value)
            .map(Caller)
            .map_err(|e| unauthorized(&e))
    }

    fn metadata(_: ApiEndpointBodyContentType) -> ExtractorMetadata {
        ExtractorMetadata {
            extension_mode: ExtensionMode::None,
            parameters: vec![],
        }
    }
}

fn unauthorized(error: &AuthError) -> HttpError {
    let challenge = match error {
        AuthError::Missing | AuthError::NotBearer => "Bearer",
        _ => "Bearer error=\"invalid_token\"",
    };
    HttpError::for_client_error(None, ClientErrorStatusCode::UNAUTHORIZED, error.to_string())
        .with_header(
            http::header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )
        .unwrap_or_else(|e| HttpError::for_internal_error(e.to_string()))
}

/// A refused operation as its declared response (which the generated endpoint ties to the
/// request). An unexpected failure answers 503 (the database unavailable) or an opaque 500 (a
/// bug); its whole cause chain goes to the log.
fn refuse<E: OperationError + Into<R>, R>(rqctx: &Ctx, e: E) -> R {
    if let Some(unexpected) = e.unexpected() {
        if unexpected.is_outage() {
            crate::metrics::store_error("outage");
            warn!(rqctx.log, "database unavailable"; "error" => unexpected.chain());
        } else {
            crate::metrics::store_error("bug");
            error!(rqctx.log, "unexpected failure"; "error" => unexpected.chain());
        }
    }
    e.into()
}

/// The request's Idempotency-Key, within the contract's `length` bounds, with the fingerprint of
/// everything else the request says.
fn idempotency(
    key: Option<String>,
    length: std::ops::RangeInclusive<usize>,
    operation: &str,
    parts: &[&str],
) -> Result<Option<Idempotency>, InvalidIdempotencyKey> {
    key.map(|key| Idempotency::new(key, length, operation, parts))
        .transpose()
}

/// Whether a create's or resend's answer replays the first answer to its Idempotency-Key.
fn replayed(replayed: bool) -> IdempotentReplayedHeader {
    IdempotentReplayedHeader {
        idempotent_replayed: replayed,
    }
}

/// The problem of an Idempotency-Key outside its bounds.
fn invalid_key(e: InvalidIdempotencyKey) -> Problem {
    Problem::new(ProblemType::Validation, e.to_string())
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

impl LeadpingInvitationsApi for InvitationsApi {
    type Context = ApiContext;

    fn observe(
        _context: &ApiContext,
        operation_id: &'static str,
        status: http::StatusCode,
        started: std::time::Instant,
    ) {
        crate::metrics::request(operation_id, status.as_u16(), started.elapsed());
    }

    async fn accept_business_invitation(
        rqctx: Ctx,
        body: AcceptBusinessInvitationRequest,
    ) -> AcceptBusinessInvitationResponse {
        use AcceptBusinessInvitationResponse as R;
        let first_name = body.first_name.map(String::from);
        let last_name = body.last_name.map(String::from);
        let app = &rqctx.context().app;
        match app
            .accept(body.token, body.email, first_name, last_name)
            .await
        {
            Ok((inv, now)) => {
                let message = format!("Welcome to {}.", inv.business_name);
                R::Ok(mapping::invitation(&inv, now, Some(message)))
            }
            Err(e) => refuse(&rqctx, e),
        }
    }

    async fn get_business_invitation_by_token(
        rqctx: Ctx,
        path: GetBusinessInvitationByTokenPath,
    ) -> GetBusinessInvitationByTokenResponse {
        use GetBusinessInvitationByTokenResponse as R;
        match rqctx.context().app.lookup(path.token).await {
            Ok((inv, now)) => R::Ok(mapping::invitation(&inv, now, None)),
            Err(e) => refuse(&rqctx, e),
        }
    }

    async fn list_business_invitations(
        rqctx: Ctx,
        caller: Caller,
    ) -> ListBusinessInvitationsResponse {
        use ListBusinessInvitationsResponse as R;
        match rqctx.context().app.list(caller.0).await {
            Ok((invitations, now)) => {
                R::Ok(invitations.iter().map(|i| mapping::row(i, now)).collect())
            }
            Err(e) => refuse(&rqctx, e),
        }
    }

    async fn create_business_invitation(
        rqctx: Ctx,
        caller: Caller,
        headers: CreateBusinessInvitationHeaders,
        body: CreateBusinessInvitationRequest,
    ) -> CreateBusinessInvitationResponse {
        use CreateBusinessInvitationResponse as R;
        let role = body
            .role
            .map(mapping::role_from_wire)
            .unwrap_or(Role::Agent);
        let idem = match idempotency(
            headers.idempotency_key,
            CreateBusinessInvitationHeaders::IDEMPOTENCY_KEY_MIN_LENGTH
                ..=CreateBusinessInvitationHeaders::IDEMPOTENCY_KEY_MAX_LENGTH,
            "createBusinessInvitation",
            &[&body.email, mapping::role(role).as_str()],
        ) {
            Ok(idem) => idem,
            Err(e) => return R::BadRequest(invalid_key(e)),
        };
        let app = &rqctx.context().app;
        match app.create(caller.0, body.email, role, idem, Wire).await {
            Ok(answer) => R::Ok(answer.body, replayed(answer.replayed)),
            Err(e) => refuse(&rqctx, e),
        }
    }

    async fn revoke_business_invitation(
        rqctx: Ctx,
        caller: Caller,
        path: RevokeBusinessInvitationPath,
    ) -> RevokeBusinessInvitationResponse {
        use RevokeBusinessInvitationResponse as R;
        let id = InvitationId::parse(&path.invitation_id);
        match rqctx.context().app.revoke(caller.0, id).await {
            Ok(()) => R::NoContent,
            Err(e) => refuse(&rqctx, e),
        }
    }

    async fn resend_business_invitation(
        rqctx: Ctx,
        caller: Caller,
        path: ResendBusinessInvitationPath,
        headers: ResendBusinessInvitationHeaders,
    ) -> ResendBusinessInvitationResponse {
        use ResendBusinessInvitationResponse as R;
        let raw_id = path.invitation_id;
        let idem = match idempotency(
            headers.idempotency_key,
            ResendBusinessInvitationHeaders::IDEMPOTENCY_KEY_MIN_LENGTH
                ..=ResendBusinessInvitationHeaders::IDEMPOTENCY_KEY_MAX_LENGTH,
            "resendBusinessInvitation",
            &[&raw_id],
        ) {
            Ok(idem) => idem,
            Err(e) => return R::BadRequest(invalid_key(e)),
        };
        let id = InvitationId::parse(&raw_id);
        match rqctx.context().app.resend(caller.0, id, idem, Wire).await {
            Ok(answer) => R::Ok(answer.body, replayed(answer.replayed)),
            Err(e) => refuse(&rqctx, e),
        }
    }
}
