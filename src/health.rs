//! `GET /health/live` and `GET /health/ready`, for load balancers and orchestrators. Unpublished:
//! they are not part of the API that `openapi.json` describes, and need no token (they reveal
//! nothing but whether this process can serve).

use dropshot::{HttpError, RequestContext};
use http::{StatusCode, header};

use crate::api::ApiContext;

fn respond(status: StatusCode, body: String) -> Result<http::Response<dropshot::Body>, HttpError> {
    http::Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, dropshot::CONTENT_TYPE_JSON)
        .header(header::CACHE_CONTROL, "no-store")
        .body(dropshot::Body::from(body))
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}

/// 200 while the process answers at all: a restart is the only cure for a process that does not.
#[dropshot::endpoint { method = GET, path = "/health/live", unpublished = true }]
pub async fn health_live(
    _rqctx: RequestContext<ApiContext>,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    respond(StatusCode::OK, r#"{"live":true}"#.to_string())
}

/// 200 when the store is reachable with the schema this build expects and the delivery loop
/// runs; 503 otherwise, saying which check failed: take the replica out of rotation until it
/// passes again.
#[dropshot::endpoint { method = GET, path = "/health/ready", unpublished = true }]
pub async fn health_ready(
    rqctx: RequestContext<ApiContext>,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    let readiness = rqctx.context().app.readiness().await;
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = serde_json::to_string(&readiness)
        .map_err(|e| HttpError::for_internal_error(e.to_string()))?;
    respond(status, body)
}
