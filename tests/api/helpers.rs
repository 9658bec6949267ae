//! `spawn_app()`: the real server on 127.0.0.1:0, with the generated client pointed at it.

use dropshot::{ConfigLoggingLevel, HttpServer};
use leadping_invitations::api::ApiContext;
use leadping_invitations::auth::{self, AuthSettings, Claims, Verifier};
use leadping_invitations::client::Client;
use leadping_invitations::server::{self, ServerSettings};

/// The HS256 secret the test server trusts.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef-0123456789";

pub struct TestApp {
    pub base_url: String,
    /// The progenitor client generated from openapi.json, with its own types.
    pub client: Client,
    /// A plain HTTP client for what the generated one refuses to send (malformed requests).
    pub http: reqwest::Client,
    server: Option<HttpServer<ApiContext>>,
}

pub async fn spawn_app() -> TestApp {
    let settings = ServerSettings {
        bind: "127.0.0.1:0".parse().unwrap(),
        log_level: ConfigLoggingLevel::Warn,
    };
    let verifier = Verifier::from_settings(&AuthSettings {
        hs256_secret: Some(JWT_SECRET.into()),
        ..Default::default()
    })
    .unwrap();
    let server = server::start(&settings, ApiContext { verifier }).expect("server starts");
    let address = server.local_addr();
    let base_url = format!("http://{address}");
    TestApp {
        client: Client::new(&base_url),
        base_url,
        http: reqwest::Client::new(),
        server: Some(server),
    }
}

/// A bearer token for `user` in `business`, valid for an hour.
pub fn token(business: &str, user: &str, role: &str) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = Claims {
        sub: user.into(),
        org_id: business.into(),
        role: Some(role.into()),
        exp: now + 3600,
        iat: Some(now),
        iss: None,
        aud: None,
    };
    auth::mint(JWT_SECRET, &claims).unwrap()
}

impl TestApp {
    /// The generated client, sending `Authorization: Bearer <token>` on every request.
    pub fn client_with_token(&self, token: &str) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap();
        Client::new_with_client(&self.base_url, http)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        // Close in the background so that a test's port is released promptly.
        if let Some(server) = self.server.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = server.close().await;
            });
        }
    }
}
