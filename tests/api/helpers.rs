//! `spawn_app()`: the real server on 127.0.0.1:0, with the generated client pointed at it.

use dropshot::{ConfigLoggingLevel, HttpServer};
use leadping_invitations::api::ApiContext;
use leadping_invitations::client::Client;
use leadping_invitations::server::{self, ServerSettings};

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
    let server = server::start(&settings, ApiContext::default()).expect("server starts");
    let address = server.local_addr();
    let base_url = format!("http://{address}");
    TestApp {
        client: Client::new(&base_url),
        base_url,
        http: reqwest::Client::new(),
        server: Some(server),
    }
}

impl TestApp {
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
