//! RFC 9457 problem details: the error format of every operation. Must never import the
//! application layer, the store or the mail transport.
//!
//! The wire shape is the generated [`Problem`]; this module gives it the catalogue of problem
//! types (each with a stable `type` URI, title and status), the problem of a request refused
//! before its operation ran, and dropshot's error traits. Every problem goes out through its
//! operation's generated response enum, whose variants are exactly the statuses the contract
//! declares (with their typed headers: `Retry-After` on 429, `WWW-Authenticate` on 401). Which
//! refusal of an operation is which response is decided beside the operation's error enum in
//! `app`, not here.
//!
//! A 500 is a bug: its body says nothing about the cause, which is logged instead.

use std::fmt;

use dropshot::{ErrorStatusCode, HttpError, HttpResponseError};
use http::StatusCode;

use crate::contract::{ProblemBody, Rejection, RetryAfterHeader};
pub use crate::wire::Problem;

/// Where problem type URIs live; a type URI is this plus the type's slug.
pub const PROBLEM_TYPE_BASE: &str = "https://api.leadping.ai/errors/";

/// Every problem type the server can answer with. The contract's descriptions list the same
/// catalogue; a test keeps the two in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemType {
    /// 400: the request does not match the contract.
    Validation,
    /// 401: missing, malformed, expired or untrusted bearer token.
    Unauthorized,
    /// 403: the caller's role does not allow this.
    Forbidden,
    /// 404: no such invitation for the caller's business, or no such acceptance token, or no
    /// operation at the path.
    NotFound,
    /// 405: the path has operations, none for this method.
    MethodNotAllowed,
    /// 409: the invitation was already accepted.
    InvitationAccepted,
    /// 409: the invitation was revoked.
    InvitationRevoked,
    /// 409: the invitation expired.
    InvitationExpired,
    /// 409: an outstanding invitation for that email already exists.
    DuplicateInvitation,
    /// 409: the email already belongs to a member.
    AlreadyMember,
    /// 409: no license seat is available.
    SeatLimitReached,
    /// 409: the accepting email is not the invited one.
    EmailMismatch,
    /// 422: an Idempotency-Key was reused with a different request.
    IdempotencyKeyReused,
    /// 429: the invitation was sent moments ago.
    ResendCooldown,
    /// 429: the business reached its daily invitation email cap.
    DailyEmailCap,
    /// 413: the request body is over the size limit.
    PayloadTooLarge,
    /// 415: the request body is not JSON.
    UnsupportedMediaType,
    /// 408: the request body did not arrive within the server's body timeout.
    RequestTimeout,
    /// 500: a bug.
    Internal,
    /// 503 with Retry-After: the database cannot be reached or cannot take writes for now, or
    /// the server is at its connection limit.
    Unavailable,
}

impl ProblemType {
    /// All problem types, for the catalogue test.
    pub const ALL: &'static [ProblemType] = &[
        Self::Validation,
        Self::Unauthorized,
        Self::Forbidden,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::InvitationAccepted,
        Self::InvitationRevoked,
        Self::InvitationExpired,
        Self::DuplicateInvitation,
        Self::AlreadyMember,
        Self::SeatLimitReached,
        Self::EmailMismatch,
        Self::IdempotencyKeyReused,
        Self::ResendCooldown,
        Self::DailyEmailCap,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::RequestTimeout,
        Self::Internal,
        Self::Unavailable,
    ];

    pub const fn slug(self) -> &'static str {
        match self {
            Self::Validation => "validation",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::InvitationAccepted => "invitation-accepted",
            Self::InvitationRevoked => "invitation-revoked",
            Self::InvitationExpired => "invitation-expired",
            Self::DuplicateInvitation => "duplicate-invitation",
            Self::AlreadyMember => "already-member",
            Self::SeatLimitReached => "seat-limit-reached",
            Self::EmailMismatch => "email-mismatch",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::ResendCooldown => "resend-cooldown",
            Self::DailyEmailCap => "daily-email-cap",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::RequestTimeout => "request-timeout",
            Self::Internal => "internal",
            Self::Unavailable => "service-unavailable",
        }
    }

    pub const fn title(self) -> &'static str {
        match self {
            Self::Validation => "Request validation failed",
            Self::Unauthorized => "Authentication required",
            Self::Forbidden => "Not allowed",
            Self::NotFound => "Not found",
            Self::MethodNotAllowed => "Method not allowed",
            Self::InvitationAccepted => "Invitation already accepted",
            Self::InvitationRevoked => "Invitation revoked",
            Self::InvitationExpired => "Invitation expired",
            Self::DuplicateInvitation => "Invitation already outstanding",
            Self::AlreadyMember => "Already a member",
            Self::SeatLimitReached => "No license seat available",
            Self::EmailMismatch => "Email does not match the invitation",
            Self::IdempotencyKeyReused => "Idempotency key reused",
            Self::ResendCooldown => "Invitation sent moments ago",
            Self::DailyEmailCap => "Daily invitation email cap reached",
            Self::PayloadTooLarge => "Request body too large",
            Self::UnsupportedMediaType => "Unsupported media type",
            Self::RequestTimeout => "Request body not received in time",
            Self::Internal => "Internal server error",
            Self::Unavailable => "Service temporarily unavailable",
        }
    }

    pub const fn status(self) -> StatusCode {
        match self {
            Self::Validation => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::InvitationAccepted
            | Self::InvitationRevoked
            | Self::InvitationExpired
            | Self::DuplicateInvitation
            | Self::AlreadyMember
            | Self::SeatLimitReached
            | Self::EmailMismatch => StatusCode::CONFLICT,
            Self::IdempotencyKeyReused => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ResendCooldown | Self::DailyEmailCap => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn uri(self) -> String {
        format!("{PROBLEM_TYPE_BASE}{}", self.slug())
    }
}

impl Problem {
    /// A problem of a catalogued type, with a detail safe to show an end user.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Problem {
            r#type: kind.uri(),
            title: kind.title().to_string(),
            status: i32::from(kind.status().as_u16()),
            detail: detail.into(),
            instance: None,
            request_id: None,
        }
    }

    /// An opaque 500 for a bug; the cause belongs in the log, not in the body.
    pub fn internal() -> Self {
        Problem::new(
            ProblemType::Internal,
            "The server hit an unexpected error. Quote the request ID when reporting it.",
        )
    }

    /// A 503 for a database that cannot be reached: the client should retry after `retry_after`
    /// seconds. It does not say that nothing changed: a commit cut off by the outage may have
    /// taken effect, which a retry with the same Idempotency-Key settles.
    pub fn unavailable(retry_after_secs: u64) -> Self {
        Problem::new(
            ProblemType::Unavailable,
            format!(
                "The service cannot reach its database right now. Retry in {} s.",
                retry_after_secs.max(1)
            ),
        )
    }

    /// Whether this problem is of the given catalogued type.
    pub fn is(&self, kind: ProblemType) -> bool {
        self.r#type == kind.uri()
    }

    fn status_code_or_500(&self) -> StatusCode {
        u16::try_from(self.status)
            .ok()
            .and_then(|s| StatusCode::from_u16(s).ok())
            .filter(|s| s.is_client_error() || s.is_server_error())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for Problem {
    /// For logs: the status and the type, not the detail (which may quote the request).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status, self.r#type)
    }
}

/// dropshot's own errors (a path, header or body that does not parse, a body over the size
/// limit) and the bearer extractor's refusals become problems of the matching type.
impl From<HttpError> for Problem {
    fn from(e: HttpError) -> Self {
        let status = e.status_code.as_status();
        let kind = match status {
            s if s.is_server_error() => return Problem::internal(),
            StatusCode::UNAUTHORIZED => ProblemType::Unauthorized,
            StatusCode::FORBIDDEN => ProblemType::Forbidden,
            StatusCode::NOT_FOUND => ProblemType::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ProblemType::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ProblemType::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ProblemType::UnsupportedMediaType,
            StatusCode::REQUEST_TIMEOUT => ProblemType::RequestTimeout,
            _ => ProblemType::Validation,
        };
        let mut p = Problem::new(kind, e.external_message);
        // Keep dropshot's exact status (413 stays 413) while naming the closest problem type.
        p.status = i32::from(status.as_u16());
        p
    }
}

/// A request refused before its operation ran, as the problem its declared response carries,
/// tied to the request like any other.
impl From<Rejection> for Problem {
    fn from(r: Rejection) -> Self {
        let mut p = Problem::from(r.error);
        p.instance = Some(r.path);
        p.request_id = Some(r.request_id);
        p
    }
}

/// Every error response's problem states its response's status and the request it answers,
/// whatever the handler put in it; a catalogued type sent under another status is a bug.
impl ProblemBody for Problem {
    fn answer(&mut self, status: StatusCode, request_id: &str, path: &str) {
        debug_assert!(
            ProblemType::ALL
                .iter()
                .find(|k| self.is(**k))
                .is_none_or(|k| k.status() == status || *k == ProblemType::Validation),
            "problem {} sent as {status}",
            self.r#type
        );
        self.status = i32::from(status.as_u16());
        self.instance = Some(path.to_string());
        self.request_id = Some(request_id.to_string());
    }
}

impl HttpResponseError for Problem {
    fn status_code(&self) -> ErrorStatusCode {
        ErrorStatusCode::from_status(self.status_code_or_500())
            .unwrap_or(ErrorStatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// `Retry-After` in whole seconds: at least one, as the contract's `minimum` says.
pub fn retry_after(seconds: u64) -> RetryAfterHeader {
    RetryAfterHeader {
        retry_after: i64::try_from(seconds.max(1)).unwrap_or(i64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalogue_slugs_are_unique_and_statuses_are_errors() {
        let mut slugs: Vec<_> = ProblemType::ALL.iter().map(|k| k.slug()).collect();
        slugs.sort_unstable();
        slugs.dedup();
        assert_eq!(slugs.len(), ProblemType::ALL.len());
        for k in ProblemType::ALL {
            assert!(
                k.status().is_client_error() || k.status().is_server_error(),
                "{k:?}"
            );
        }
    }

    #[test]
    fn dropshot_errors_become_problems_with_their_status() {
        let p = Problem::from(HttpError::for_bad_request(
            None,
            "unable to parse JSON body: EOF".into(),
        ));
        assert!(p.is(ProblemType::Validation));
        assert_eq!(p.status, 400);
        assert_eq!(p.detail, "unable to parse JSON body: EOF");

        let p = Problem::from(HttpError::for_internal_error(
            "db exploded at /var/x".into(),
        ));
        assert!(p.is(ProblemType::Internal));
        assert!(
            !p.detail.contains("db exploded"),
            "a 500 must not reveal its cause"
        );
    }

    #[test]
    fn the_endpoint_ties_a_problem_to_its_request_and_its_status() {
        use crate::contract::{ResendBusinessInvitationResponse as R, answer};
        let mut response = R::Conflict(Problem::new(ProblemType::InvitationRevoked, "revoked"));
        answer(
            &mut response,
            "req-1",
            "/businesses/me/invitations/inv_1/resend",
        );
        let R::Conflict(p) = response else {
            panic!("the variant stays")
        };
        assert_eq!(p.status, 409);
        assert_eq!(p.request_id.as_deref(), Some("req-1"));
        assert_eq!(
            p.instance.as_deref(),
            Some("/businesses/me/invitations/inv_1/resend")
        );
    }

    #[test]
    #[cfg(debug_assertions)]
    #[should_panic(expected = "sent as 404")]
    fn a_catalogued_type_sent_under_another_status_is_a_bug() {
        use crate::contract::{ResendBusinessInvitationResponse as R, answer};
        let mut response = R::NotFound(Problem::new(ProblemType::InvitationAccepted, "accepted"));
        answer(&mut response, "req-1", "/x");
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        assert_eq!(retry_after(0).retry_after, 1);
        assert_eq!(retry_after(42).retry_after, 42);
    }

    #[test]
    fn a_problem_logs_its_status_and_type_but_not_its_detail() {
        let p = Problem::new(ProblemType::NotFound, "no invitation for a@example.com");
        assert_eq!(
            p.to_string(),
            "404 https://api.leadping.ai/errors/not-found"
        );
    }
}
