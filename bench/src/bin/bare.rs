//! A bare dropshot 0.18 server: one handler that answers a small JSON, no logging, the same
//! dropshot the server is built on. What the benchmark divides by.
//!
//!     bench-bare 127.0.0.1:PORT

use dropshot::{ApiDescription, ConfigDropshot, HttpError, HttpResponseOk, RequestContext};

#[derive(serde::Serialize, schemars::JsonSchema)]
struct Small {
    ok: bool,
    n: u32,
}

#[dropshot::endpoint { method = GET, path = "/bare" }]
async fn bare(_rqctx: RequestContext<()>) -> Result<HttpResponseOk<Small>, HttpError> {
    Ok(HttpResponseOk(Small { ok: true, n: 1 }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let bind = std::env::args()
        .nth(1)
        .ok_or_else(|| anyhow::anyhow!("usage: bench-bare ADDR"))?
        .parse()?;
    let mut api = ApiDescription::new();
    api.register(bare)?;
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let config = ConfigDropshot {
        bind_address: bind,
        ..Default::default()
    };
    let server = dropshot::ServerBuilder::new(api, (), log)
        .config(config)
        .start()?;
    server.await.map_err(|e| anyhow::anyhow!(e))
}
