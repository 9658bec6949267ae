//! Building and starting the HTTP server: the generated API with our implementation, plus the
//! contract itself at `GET /openapi.json` and its rendering at `GET /docs` (both outside the
//! documented API). Wiring: it may import any
//! layer, and nothing but `main` and the tests imports it.

use std::net::SocketAddr;

use dropshot::{
    ApiDescription, ConfigDropshot, ConfigLoggingLevel, HttpError, HttpServer, RequestContext,
    ServerBuilder,
};

use crate::api::{ApiContext, InvitationsApi};
use crate::contract::leadping_invitations_api_mod;

/// Request bodies above this are refused with a validation problem. dropshot's default (1 KiB)
/// is tight for an accept request with long names.
pub const REQUEST_BODY_MAX_BYTES: usize = 16 * 1024;

/// How to run the server.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub bind: SocketAddr,
    pub log_level: ConfigLoggingLevel,
}

/// The full API this server serves: the generated trait's operations, `GET /openapi.json` and
/// the docs page.
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

pub use crate::logging::logger;

/// Starts the server; it runs until closed.
pub fn start(
    settings: &ServerSettings,
    context: ApiContext,
) -> anyhow::Result<HttpServer<ApiContext>> {
    let log = logger(&settings.log_level)?;
    let config = ConfigDropshot {
        bind_address: settings.bind,
        default_request_body_max_bytes: REQUEST_BODY_MAX_BYTES,
        ..Default::default()
    };
    let server = ServerBuilder::new(api_description()?, context, log)
        .config(config)
        .start()
        .map_err(|e| anyhow::anyhow!("cannot start the server on {}: {e}", settings.bind))?;
    Ok(server)
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
