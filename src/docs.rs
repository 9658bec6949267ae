//! `GET /docs`: an API reference rendered in the browser from the same `openapi.json` the server
//! serves, by a vendored, pinned Swagger UI (`assets/docs/`). Nothing on the page comes from
//! elsewhere, and the Content-Security-Policy holds the browser to that: no CDN, fonts or
//! telemetry. The page is a reference: it sends no API requests ("try it out" is off, since the
//! contract's server is production). The endpoints are unpublished: they are not part of the API.

use dropshot::{HttpError, RequestContext};
use http::header;

use crate::api::ApiContext;

/// Swagger UI 5.35.0 (see `assets/docs/README.md`).
const BUNDLE: &str = include_str!("../assets/docs/swagger-ui-bundle.js");
const STYLE: &str = include_str!("../assets/docs/swagger-ui.css");

/// Only this server's own origin; inline script for the page's bootstrap and inline style for
/// the renderer's; `data:` images for its icons.
const CSP: &str = "default-src 'self'; script-src 'self' 'unsafe-inline'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The page: Redoc pointed at the contract. Paths are relative, so that the page works behind a
/// proxy that mounts the API under a prefix.
const PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Leadping Business Invitations API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<link rel="icon" href="data:,">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null,
  docExpansion: "full",
  defaultModelsExpandDepth: 3,
  defaultModelExpandDepth: 3,
  supportedSubmitMethods: [],
  deepLinking: true
});
</script>
</body>
</html>
"##;

fn respond(
    content_type: &'static str,
    cache: &'static str,
    body: &'static str,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    http::Response::builder()
        .status(http::StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CACHE_CONTROL, cache)
        .header(header::CONTENT_SECURITY_POLICY, CSP)
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .body(dropshot::Body::from(body))
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}

/// The API reference, rendered from `/openapi.json`.
#[dropshot::endpoint { method = GET, path = "/docs", unpublished = true }]
pub async fn docs_page(
    _rqctx: RequestContext<ApiContext>,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    respond("text/html; charset=utf-8", "no-cache", PAGE)
}

/// The renderer's script; it changes only with the server's build, hence the day-long cache.
#[dropshot::endpoint { method = GET, path = "/docs/swagger-ui-bundle.js", unpublished = true }]
pub async fn docs_script(
    _rqctx: RequestContext<ApiContext>,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    respond(
        "text/javascript; charset=utf-8",
        "public, max-age=86400",
        BUNDLE,
    )
}

/// The renderer's style sheet.
#[dropshot::endpoint { method = GET, path = "/docs/swagger-ui.css", unpublished = true }]
pub async fn docs_style(
    _rqctx: RequestContext<ApiContext>,
) -> Result<http::Response<dropshot::Body>, HttpError> {
    respond("text/css; charset=utf-8", "public, max-age=86400", STYLE)
}
