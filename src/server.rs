//! Building and starting the HTTP server: the generated API with our implementation, plus the
//! contract itself at `GET /openapi.json`, its rendering at `GET /docs` and the health checks
//! (all outside the documented API), and the problems for the errors dropshot produces before any operation runs
//! (unknown path, unsupported method). Wiring: it may import any layer, and nothing but `main`
//! and the tests imports it.

use std::net::SocketAddr;
use std::sync::Arc;

use dropshot::{
    ApiDescription, ConfigDropshot, ErrorRenderer, HttpError, HttpServer, RequestContext,
    ServerBuilder,
};
use http::{Method, Response, StatusCode, Uri};

use crate::problem::{Problem, ProblemType};

use crate::api::{ApiContext, InvitationsApi};
use crate::contract::leadping_invitations_api_mod;

/// Request bodies above this are refused with a validation problem. dropshot's default (1 KiB)
/// is tight for an accept request with long names.
pub const REQUEST_BODY_MAX_BYTES: usize = 16 * 1024;

/// The request line and headers together above this are refused (hyper's 431, without a
/// body): a bearer JWT is a few KiB at most, and the longest path a few hundred bytes.
pub const REQUEST_HEAD_MAX_BYTES: usize = 16 * 1024;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    /// The process's logger (one writer thread for the whole process).
    pub log: slog::Logger,
    /// How long a connection's read or write may wait before the connection is closed (an idle,
    /// silent or stalled client); longer than any request takes to answer.
    pub idle_timeout: std::time::Duration,
    /// How long a client has to send a complete request head (from the connection's start, or
    /// the next request's first byte): a budget that a client sending a byte at a time does
    /// not extend.
    pub head_timeout: std::time::Duration,
    /// How long a request body may take to arrive in full after its head (a 408 past it).
    pub body_timeout: std::time::Duration,
    /// Connections served at once; more are answered 503 at once and closed.
    pub max_connections: usize,
}

/// [`ServerSettings::idle_timeout`] unless set, in seconds.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 30;
/// [`ServerSettings::head_timeout`] unless set, in seconds: a request head is a few KiB at most.
pub const DEFAULT_HEAD_TIMEOUT_SECS: u64 = 10;
/// [`ServerSettings::body_timeout`] unless set, in seconds: a body is 16 KiB at most, so this
/// asks at least 1.6 KB/s of a client.
pub const DEFAULT_BODY_TIMEOUT_SECS: u64 = 10;

impl ServerSettings {
    /// The settings the server runs with unless told otherwise (`serve --help` names each).
    pub fn new(bind: SocketAddr, log: slog::Logger) -> Self {
        ServerSettings {
            bind,
            log,
            idle_timeout: std::time::Duration::from_secs(DEFAULT_IDLE_TIMEOUT_SECS),
            head_timeout: std::time::Duration::from_secs(DEFAULT_HEAD_TIMEOUT_SECS),
            body_timeout: std::time::Duration::from_secs(DEFAULT_BODY_TIMEOUT_SECS),
            max_connections: default_max_connections(),
        }
    }
}

/// Connections the server keeps at most by default: the file-descriptor limit less what the
/// process keeps open besides (the database pool, the relay's connections, the log, the metrics
/// listener, refused connections still reading their answer), so that a flood of connections
/// is refused at the door instead of starving everything of descriptors.
pub fn default_max_connections() -> usize {
    let soft = rlimit::getrlimit(rlimit::Resource::NOFILE)
        .map(|(soft, _)| soft)
        .unwrap_or(1024);
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    soft.saturating_sub(128).max(soft / 2).max(1)
}

/// What a connection over the limit is answered before it is closed: a 503 problem with
/// Retry-After, written whole without reading the request (hence no `instance`).
fn connection_refusal() -> Vec<u8> {
    let request_id = uuid::Uuid::new_v4().to_string();
    let mut problem = Problem::new(
        ProblemType::Unavailable,
        "The server is at its connection limit. Retry in 1 s.",
    );
    problem.request_id = Some(request_id.clone());
    let body = serde_json::to_string(&problem).unwrap_or_default();
    format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: {}\r\nretry-after: 1\r\n\
         x-request-id: {request_id}\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        crate::contract::PROBLEM_CONTENT_TYPE,
        body.len()
    )
    .into_bytes()
}

/// The full API this server serves: the generated trait's operations, `GET /openapi.json`, the
/// docs page and the health checks.
pub fn api_description() -> anyhow::Result<ApiDescription<ApiContext>> {
    let mut api = leadping_invitations_api_mod::api_description::<InvitationsApi>()
        .map_err(|e| anyhow::anyhow!("the generated API does not build: {e}"))?;
    api.register(openapi_document)
        .map_err(|e| anyhow::anyhow!("cannot register /openapi.json: {e}"))?;
    api.register(crate::docs::docs_page)
        .map_err(|e| anyhow::anyhow!("cannot register /docs: {e}"))?;
    api.register(crate::docs::docs_script)
        .map_err(|e| anyhow::anyhow!("cannot register the docs script: {e}"))?;
    api.register(crate::docs::docs_style)
        .map_err(|e| anyhow::anyhow!("cannot register the docs style: {e}"))?;
    api.register(crate::health::health_live)
        .map_err(|e| anyhow::anyhow!("cannot register /health/live: {e}"))?;
    api.register(crate::health::health_ready)
        .map_err(|e| anyhow::anyhow!("cannot register /health/ready: {e}"))?;
    Ok(api)
}

/// The contract this server implements, exactly as checked in.
#[dropshot::endpoint { method = GET, path = "/openapi.json", unpublished = true }]
async fn openapi_document(
    _rqctx: RequestContext<ApiContext>,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    http::Response::builder()
        .status(http::StatusCode::OK)
        .header(http::header::CONTENT_TYPE, dropshot::CONTENT_TYPE_JSON)
        .body(dropshot::Body::from(crate::OPENAPI_JSON))
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}

/// The errors dropshot produces itself (no route for the path, no handler for the method, a path
/// that does not decode) as problems like every other error, tied to the request. dropshot 0.18
/// has no hook for them; a patch of the vendored dropshot adds it (`vendor/dropshot/README.md`).
#[derive(Debug)]
pub struct ProblemRenderer;

impl ErrorRenderer for ProblemRenderer {
    fn render(
        &self,
        mut error: HttpError,
        method: &Method,
        uri: &Uri,
        request_id: &str,
    ) -> Response<dropshot::Body> {
        let headers = error.headers.take();
        let status = error.status_code.as_status();
        // The router's own refusals get a detail that says what happened; anything else (an
        // `HttpError` from an unpublished endpoint) keeps its own.
        let from_router = error.internal_message.starts_with("no route found")
            || error.internal_message.starts_with("route has no handlers");
        let mut problem = match status {
            StatusCode::NOT_FOUND if from_router => Problem::new(
                ProblemType::NotFound,
                "No operation of this API has this path.",
            ),
            StatusCode::METHOD_NOT_ALLOWED => Problem::new(
                ProblemType::MethodNotAllowed,
                format!(
                    "This path has no {method} operation; the Allow header lists those it has."
                ),
            ),
            _ => Problem::from(error),
        };
        if from_router || status == StatusCode::METHOD_NOT_ALLOWED {
            crate::metrics::unmatched(status.as_u16());
        }
        problem.instance = Some(uri.path().to_string());
        problem.request_id = Some(request_id.to_string());
        let body = serde_json::to_string(&problem).unwrap_or_default();
        let mut response = Response::new(dropshot::Body::from(body));
        *response.status_mut() = StatusCode::from_u16(u16::try_from(problem.status).unwrap_or(500))
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(crate::contract::PROBLEM_CONTENT_TYPE),
        );
        // The error's own headers (the 405's `Allow`, as dropshot's router wrote it), but not
        // the ones that describe the body, which is the problem's now.
        for (name, value) in headers.iter().flat_map(|h| h.iter()) {
            if name != http::header::CONTENT_TYPE && name != http::header::CONTENT_LENGTH {
                response.headers_mut().append(name, value.clone());
            }
        }
        response
    }
}

pub use crate::logging::logger;

/// Starts the server; it runs until closed.
pub fn start(
    settings: &ServerSettings,
    context: ApiContext,
) -> anyhow::Result<HttpServer<ApiContext>> {
    let log = settings.log.clone();
    let config = ConfigDropshot {
        bind_address: settings.bind,
        default_request_body_max_bytes: REQUEST_BODY_MAX_BYTES,
        ..Default::default()
    };
    let server = ServerBuilder::new(api_description()?, context, log)
        .config(config)
        .error_renderer(Arc::new(ProblemRenderer))
        .idle_timeout(settings.idle_timeout)
        .max_request_head_bytes(REQUEST_HEAD_MAX_BYTES)
        .request_head_timeout(settings.head_timeout)
        .request_body_timeout(settings.body_timeout)
        .max_connections(settings.max_connections, Some(Arc::new(connection_refusal)))
        .connection_observer(Arc::new(crate::metrics::Connections))
        .reject_empty_path_segments()
        .start()
        .map_err(|e| anyhow::anyhow!("cannot start the server on {}: {e}", settings.bind))?;
    Ok(server)
}

/// `GET /metrics` on a listener of its own: the metrics in Prometheus text format.
#[dropshot::endpoint { method = GET, path = "/metrics" }]
async fn metrics_endpoint(
    rqctx: RequestContext<crate::app::App>,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    let body = crate::metrics::render(rqctx.context()).await;
    http::Response::builder()
        .status(StatusCode::OK)
        .header(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .body(dropshot::Body::from(body))
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}

/// Starts the metrics listener on `bind`: separate from the API, so that it can be kept off the
/// public network.
pub fn start_metrics(
    bind: SocketAddr,
    app: crate::app::App,
    log: slog::Logger,
) -> anyhow::Result<HttpServer<crate::app::App>> {
    let mut api = ApiDescription::new();
    api.register(metrics_endpoint)
        .map_err(|e| anyhow::anyhow!("cannot register /metrics: {e}"))?;
    ServerBuilder::new(api, app, log)
        .config(ConfigDropshot {
            bind_address: bind,
            ..Default::default()
        })
        .start()
        .map_err(|e| anyhow::anyhow!("cannot start the metrics listener on {bind}: {e}"))
}

/// Runs the sweeper every `interval` for the life of the process: expired invitations give their
/// seats back even when nobody reads them.
pub fn spawn_sweeper(
    app: crate::app::App,
    interval: std::time::Duration,
    log: slog::Logger,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            match app.sweep().await {
                Ok(0) => {}
                Ok(n) => {
                    slog::info!(log, "sweeper released the seats of expired invitations"; "released" => n)
                }
                Err(e) => slog::error!(log, "sweeper: store failure"; "error" => %e),
            }
        }
    })
}
