//! The implementation of the generated [`LeadpingInvitationsApi`] trait: one thin handler per
//! operation that unpacks the request, calls one application function, and maps the outcome to
//! the wire. No SQL, no business rules here.

// Handlers must return dropshot's error type by value, so the helpers that build it do too.
#![allow(clippy::result_large_err)]

pub mod wire_map;

use dropshot::{Header, Path, RequestContext, TypedBody};
use http::HeaderValue;
use slog::error;

use crate::app::{
    App, CreateError, Idempotency, ListError, Outcome, Render, ResendError, RevokeError, TokenError,
};
use crate::auth::{AuthError, Identity, Verifier};
use crate::contract::*;
use crate::domain::rules::{self, Delivery, EmailKind};
use crate::domain::{Role, Status};
use crate::mail::worker::Delivery as DeliveryWorker;
use crate::problem::{Problem, ProblemType, ProblemWithHeaders};
use crate::store::StoreError;
use crate::types::{
    AcceptBusinessInvitationRequest, BusinessInvitation, CreateBusinessInvitationRequest,
};

/// What every handler can reach.
#[derive(Debug)]
pub struct ApiContext {
    pub verifier: Verifier,
    pub app: App,
    /// The delivery worker a create or resend waits on for its first attempt; `None` answers at
    /// once with the email queued.
    pub delivery: Option<DeliveryWorker>,
}

/// The server's implementation of the API trait.
pub enum InvitationsApi {}

type Ctx = RequestContext<ApiContext>;

/// The longest Idempotency-Key accepted.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// The caller's identity from the bearer token, or the 401 problem to answer with; the problem
/// carries `WWW-Authenticate` as RFC 6750 asks, which is why it is a [`ProblemWithHeaders`].
fn authenticate(rqctx: &Ctx) -> Result<Identity, Box<ProblemWithHeaders>> {
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

fn unauthorized(rqctx: &Ctx, error: &AuthError) -> Box<ProblemWithHeaders> {
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

/// A store failure is a bug or an outage: logged with its cause, answered with an opaque 500.
fn internal(rqctx: &Ctx, e: StoreError) -> Problem {
    error!(rqctx.log, "store failure"; "error" => %e);
    Problem::internal().at(rqctx)
}

fn problem(rqctx: &Ctx, kind: ProblemType, detail: impl Into<String>) -> Problem {
    Problem::new(kind, detail).at(rqctx)
}

fn too_many(
    rqctx: &Ctx,
    kind: ProblemType,
    detail: &str,
    retry_after_secs: u64,
) -> ProblemWithHeaders {
    ProblemWithHeaders::retry_after(
        problem(
            rqctx,
            kind,
            format!("{detail} Retry in {retry_after_secs} s."),
        ),
        retry_after_secs,
    )
}

const NOT_MEMBER: &str = "The bearer token's user is not a member of its business.";

/// The request's Idempotency-Key with the fingerprint of everything else the request says.
fn idempotency(
    rqctx: &Ctx,
    key: Option<String>,
    operation: &str,
    parts: &[&str],
) -> Result<Option<Idempotency>, Problem> {
    let Some(key) = key else { return Ok(None) };
    // The contract's bounds (minLength 1, maxLength 255, in characters); dropshot does not check them.
    if key.is_empty() || key.chars().count() > IDEMPOTENCY_KEY_MAX {
        return Err(problem(
            rqctx,
            ProblemType::Validation,
            format!("Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} characters long."),
        ));
    }
    let mut material = String::from(operation);
    for p in parts {
        material.push('\n');
        material.push_str(p);
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, material.as_bytes());
    Ok(Some(Idempotency {
        key,
        request_hash: crate::tokens::hex(digest.as_ref()),
    }))
}

/// Renders the body of a create or resend as of its commit (the email queued); runs inside the
/// store transaction, so that the idempotency record holds it even if the process dies next.
fn render_queued(kind: EmailKind) -> Render {
    Box::new(move |inv, now| {
        let message = rules::delivery_message(kind, &inv.email, Delivery::Queued);
        serde_json::to_string(&wire_map::invitation(inv, now, Some(message)))
            .expect("wire types serialize")
    })
}

/// The response of a create or resend: a replay as stored; a fresh change after waiting (up to
/// the configured deadline) for its email's first delivery attempt, showing the state then.
async fn settle(
    rqctx: &Ctx,
    outcome: Outcome,
    kind: EmailKind,
    idempotency_key: Option<String>,
) -> Result<BusinessInvitation, Problem> {
    let parse = |body: &str| {
        serde_json::from_str::<BusinessInvitation>(body).map_err(|e| {
            error!(rqctx.log, "stored response does not parse"; "error" => %e);
            Problem::internal().at(rqctx)
        })
    };
    let (invitation, body, outbox_id) = match outcome {
        Outcome::Replayed(stored) => return parse(&stored.body),
        Outcome::Done {
            invitation,
            body,
            outbox_id,
        } => (invitation, body, outbox_id),
    };
    let ctx = rqctx.context();
    let Some(delivery) = &ctx.delivery else {
        return parse(&body);
    };
    let state = delivery
        .wait_for_first_attempt(outbox_id)
        .await
        .map_err(|e| internal(rqctx, e))?;
    let view = ctx
        .app
        .delivery_view(
            invitation.business_id.clone(),
            invitation.id.clone(),
            outbox_id,
        )
        .await
        .map_err(|e| internal(rqctx, e))?;
    let Some((current, _, now)) = view else {
        return parse(&body);
    };
    let delivery_state = match (current.status_at(now), state) {
        (Status::FailedToSend, _) => Delivery::Failed,
        (_, Some(s)) if s.delivered => Delivery::Delivered,
        (_, Some(s)) if s.failed => Delivery::Failed,
        (_, Some(s)) if s.attempts > 0 => Delivery::Retrying,
        _ => Delivery::Queued,
    };
    let wire = wire_map::invitation(
        &current,
        now,
        Some(rules::delivery_message(
            kind,
            &current.email,
            delivery_state,
        )),
    );
    if let Some(key) = idempotency_key {
        let body = serde_json::to_string(&wire).expect("wire types serialize");
        ctx.app
            .update_idempotent_body(current.business_id.clone(), key, body)
            .await
            .map_err(|e| internal(rqctx, e))?;
    }
    Ok(wire)
}

impl LeadpingInvitationsApi for InvitationsApi {
    type Context = ApiContext;

    async fn accept_business_invitation(
        rqctx: Ctx,
        body: TypedBody<AcceptBusinessInvitationRequest>,
    ) -> Result<AcceptBusinessInvitationResponse, Problem> {
        let body = body.into_inner();
        let result = rqctx
            .context()
            .app
            .accept(
                body.token,
                body.email,
                body.first_name.map(String::from),
                body.last_name.map(String::from),
            )
            .await;
        match result.map_err(|e| internal(&rqctx, e))? {
            Ok((inv, now)) => {
                let message = format!("Welcome to {}.", inv.business_name);
                Ok(AcceptBusinessInvitationResponse::Ok(wire_map::invitation(
                    &inv,
                    now,
                    Some(message),
                )))
            }
            Err(e) => Err(token_problem(&rqctx, e)),
        }
    }

    async fn get_business_invitation_by_token(
        rqctx: Ctx,
        path: Path<GetBusinessInvitationByTokenPath>,
    ) -> Result<GetBusinessInvitationByTokenResponse, Problem> {
        let token = path.into_inner().token;
        match rqctx
            .context()
            .app
            .lookup(token)
            .await
            .map_err(|e| internal(&rqctx, e))?
        {
            Ok((inv, now)) => Ok(GetBusinessInvitationByTokenResponse::Ok(
                wire_map::invitation(&inv, now, None),
            )),
            Err(e) => Err(token_problem(&rqctx, e)),
        }
    }

    async fn list_business_invitations(
        rqctx: Ctx,
    ) -> Result<ListBusinessInvitationsResponse, Problem> {
        let identity = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(ListBusinessInvitationsResponse::Problem(*problem)),
        };
        match rqctx
            .context()
            .app
            .list(identity)
            .await
            .map_err(|e| internal(&rqctx, e))?
        {
            Ok((invitations, now)) => Ok(ListBusinessInvitationsResponse::Ok(
                invitations.iter().map(|i| wire_map::row(i, now)).collect(),
            )),
            Err(ListError::NotMember) => Err(problem(&rqctx, ProblemType::Forbidden, NOT_MEMBER)),
        }
    }

    async fn create_business_invitation(
        rqctx: Ctx,
        headers: Header<CreateBusinessInvitationHeaders>,
        body: TypedBody<CreateBusinessInvitationRequest>,
    ) -> Result<CreateBusinessInvitationResponse, Problem> {
        let identity = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(CreateBusinessInvitationResponse::Problem(*problem)),
        };
        let body = body.into_inner();
        let role = body
            .role
            .map(wire_map::role_from_wire)
            .unwrap_or(Role::Agent);
        let role_text = wire_map::role(role).as_str();
        let idem = idempotency(
            &rqctx,
            headers.into_inner().idempotency_key,
            "createBusinessInvitation",
            &[&body.email, role_text],
        )?;
        let key = idem.as_ref().map(|i| i.key.clone());
        let result = rqctx
            .context()
            .app
            .create(
                identity,
                body.email,
                role,
                idem,
                render_queued(EmailKind::Invite),
            )
            .await;
        match result.map_err(|e| internal(&rqctx, e))? {
            Ok(outcome) => Ok(CreateBusinessInvitationResponse::Ok(
                settle(&rqctx, outcome, EmailKind::Invite, key).await?,
            )),
            Err(CreateError::DailyCap { retry_after_secs }) => {
                Ok(CreateBusinessInvitationResponse::Problem(too_many(
                    &rqctx,
                    ProblemType::DailyEmailCap,
                    "The business reached its daily cap of invitation emails.",
                    retry_after_secs,
                )))
            }
            Err(e) => Err(match e {
                CreateError::NotMember => problem(&rqctx, ProblemType::Forbidden, NOT_MEMBER),
                CreateError::Forbidden => problem(
                    &rqctx,
                    ProblemType::Forbidden,
                    "Your role cannot invite to this role: Agents cannot invite, Admins cannot invite Owners.",
                ),
                CreateError::InvalidEmail(why) => problem(&rqctx, ProblemType::Validation, why),
                CreateError::AlreadyMember => problem(
                    &rqctx,
                    ProblemType::AlreadyMember,
                    "This email already belongs to a member of the business.",
                ),
                CreateError::DuplicateInvitation => problem(
                    &rqctx,
                    ProblemType::DuplicateInvitation,
                    "An outstanding invitation for this email already exists; resend it instead.",
                ),
                CreateError::SeatLimitReached => problem(
                    &rqctx,
                    ProblemType::SeatLimitReached,
                    "No license seat is available on the business's subscription.",
                ),
                CreateError::IdempotencyKeyReused => problem(
                    &rqctx,
                    ProblemType::IdempotencyKeyReused,
                    "This Idempotency-Key was already used with a different request.",
                ),
                CreateError::DailyCap { .. } => unreachable!("answered above"),
            }),
        }
    }

    async fn revoke_business_invitation(
        rqctx: Ctx,
        path: Path<RevokeBusinessInvitationPath>,
    ) -> Result<RevokeBusinessInvitationResponse, Problem> {
        let identity = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(RevokeBusinessInvitationResponse::Problem(*problem)),
        };
        let id = path.into_inner().invitation_id;
        match rqctx
            .context()
            .app
            .revoke(identity, id)
            .await
            .map_err(|e| internal(&rqctx, e))?
        {
            Ok(()) => Ok(RevokeBusinessInvitationResponse::NoContent),
            Err(RevokeError::NotMember) => Err(problem(&rqctx, ProblemType::Forbidden, NOT_MEMBER)),
            Err(RevokeError::NotFound) => Err(problem(
                &rqctx,
                ProblemType::NotFound,
                "The business has no invitation with this ID.",
            )),
            Err(RevokeError::Forbidden) => Err(problem(
                &rqctx,
                ProblemType::Forbidden,
                "Your role cannot revoke this invitation: Agents cannot, Admins cannot revoke Owner invitations.",
            )),
            Err(RevokeError::Accepted) => Err(problem(
                &rqctx,
                ProblemType::InvitationAccepted,
                "The invitation was already accepted; remove the member instead.",
            )),
        }
    }

    async fn resend_business_invitation(
        rqctx: Ctx,
        path: Path<ResendBusinessInvitationPath>,
        headers: Header<ResendBusinessInvitationHeaders>,
    ) -> Result<ResendBusinessInvitationResponse, Problem> {
        let identity = match authenticate(&rqctx) {
            Ok(identity) => identity,
            Err(problem) => return Ok(ResendBusinessInvitationResponse::Problem(*problem)),
        };
        let id = path.into_inner().invitation_id;
        let idem = idempotency(
            &rqctx,
            headers.into_inner().idempotency_key,
            "resendBusinessInvitation",
            &[&id],
        )?;
        let key = idem.as_ref().map(|i| i.key.clone());
        let result = rqctx
            .context()
            .app
            .resend(identity, id, idem, render_queued(EmailKind::Resend))
            .await;
        match result.map_err(|e| internal(&rqctx, e))? {
            Ok(outcome) => Ok(ResendBusinessInvitationResponse::Ok(
                settle(&rqctx, outcome, EmailKind::Resend, key).await?,
            )),
            Err(ResendError::Cooldown { retry_after_secs }) => {
                Ok(ResendBusinessInvitationResponse::Problem(too_many(
                    &rqctx,
                    ProblemType::ResendCooldown,
                    "This invitation was sent moments ago.",
                    retry_after_secs,
                )))
            }
            Err(ResendError::DailyCap { retry_after_secs }) => {
                Ok(ResendBusinessInvitationResponse::Problem(too_many(
                    &rqctx,
                    ProblemType::DailyEmailCap,
                    "The business reached its daily cap of invitation emails.",
                    retry_after_secs,
                )))
            }
            Err(e) => Err(match e {
                ResendError::NotMember => problem(&rqctx, ProblemType::Forbidden, NOT_MEMBER),
                ResendError::NotFound => problem(
                    &rqctx,
                    ProblemType::NotFound,
                    "The business has no invitation with this ID.",
                ),
                ResendError::Forbidden => problem(
                    &rqctx,
                    ProblemType::Forbidden,
                    "Your role cannot resend this invitation: Agents cannot, Admins cannot resend Owner invitations.",
                ),
                ResendError::Accepted => problem(
                    &rqctx,
                    ProblemType::InvitationAccepted,
                    "The invitation was already accepted.",
                ),
                ResendError::Revoked => problem(
                    &rqctx,
                    ProblemType::InvitationRevoked,
                    "The invitation was revoked; create a new one.",
                ),
                ResendError::DuplicateInvitation => problem(
                    &rqctx,
                    ProblemType::DuplicateInvitation,
                    "This invitation expired and a newer one for the same email is outstanding; resend that one instead.",
                ),
                ResendError::AlreadyMember => problem(
                    &rqctx,
                    ProblemType::AlreadyMember,
                    "The invited email now belongs to a member of the business.",
                ),
                ResendError::SeatLimitReached => problem(
                    &rqctx,
                    ProblemType::SeatLimitReached,
                    "The invitation needs a license seat again and none is available.",
                ),
                ResendError::IdempotencyKeyReused => problem(
                    &rqctx,
                    ProblemType::IdempotencyKeyReused,
                    "This Idempotency-Key was already used with a different request.",
                ),
                ResendError::Cooldown { .. } | ResendError::DailyCap { .. } => {
                    unreachable!("answered above")
                }
            }),
        }
    }
}

fn token_problem(rqctx: &Ctx, e: TokenError) -> Problem {
    match e {
        TokenError::NotFound => problem(
            rqctx,
            ProblemType::NotFound,
            "No invitation has this token.",
        ),
        TokenError::Accepted => problem(
            rqctx,
            ProblemType::InvitationAccepted,
            "The invitation was already accepted.",
        ),
        TokenError::Revoked => problem(
            rqctx,
            ProblemType::InvitationRevoked,
            "The invitation was revoked.",
        ),
        TokenError::Expired => problem(
            rqctx,
            ProblemType::InvitationExpired,
            "The invitation expired; ask the business to resend it.",
        ),
        TokenError::EmailMismatch => problem(
            rqctx,
            ProblemType::EmailMismatch,
            "This is not the email address the invitation was sent to.",
        ),
        TokenError::AlreadyMember => problem(
            rqctx,
            ProblemType::AlreadyMember,
            "This email already belongs to a member of the business.",
        ),
    }
}
