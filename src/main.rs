//! The `leadping-invitations` command: wiring only.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use dropshot::ConfigLoggingLevel;
use leadping_invitations::api::ApiContext;
use leadping_invitations::auth::{self, Claims, Verifier};
use leadping_invitations::config::{self, AuthArgs, DataArgs};
use leadping_invitations::server::{self, ServerSettings};

#[derive(Parser)]
#[command(version, about = "The Leadping business-invitations API server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API.
    Serve {
        /// Address to listen on.
        #[arg(long, env = "LEADPING_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Log level: trace, debug, info, warn, error or critical.
        #[arg(long, env = "LEADPING_LOG_LEVEL", default_value = "info", value_parser = parse_level)]
        log_level: ConfigLoggingLevel,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Mint a bearer token signed with the configured (or generated) HS256 secret, for local use.
    Token {
        /// The business (`org_id` claim).
        #[arg(long)]
        business: String,
        /// The user (`sub` claim).
        #[arg(long)]
        user: String,
        /// The role to claim (the stored membership role is what counts).
        #[arg(long, value_parser = ["Owner", "Admin", "Agent"])]
        role: Option<String>,
        /// Lifetime in seconds.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Print the OpenAPI document that the generated API trait describes (what dropshot
    /// emits; `openapi.json` adds only what dropshot cannot express, such as security).
    Openapi,
}

fn parse_level(s: &str) -> Result<ConfigLoggingLevel, String> {
    Ok(match s {
        "trace" => ConfigLoggingLevel::Trace,
        "debug" => ConfigLoggingLevel::Debug,
        "info" => ConfigLoggingLevel::Info,
        "warn" => ConfigLoggingLevel::Warn,
        "error" => ConfigLoggingLevel::Error,
        "critical" => ConfigLoggingLevel::Critical,
        other => return Err(format!("unknown log level {other:?}")),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Openapi => {
            print!("{}", leadping_invitations::generated_openapi());
            Ok(())
        }
        Command::Token {
            business,
            user,
            role,
            ttl,
            auth,
            data,
        } => {
            let secret = config::hs256_secret(&auth, &data)?;
            let now = jsonwebtoken::get_current_timestamp();
            let claims = Claims {
                sub: user,
                org_id: business,
                role,
                exp: now + ttl,
                iat: Some(now),
                iss: auth.jwt_issuer.clone(),
                aud: auth.jwt_audience.clone(),
            };
            println!("{}", auth::mint(&secret, &claims)?);
            Ok(())
        }
        Command::Serve {
            bind,
            log_level,
            auth,
            data,
        } => {
            let verifier = Verifier::from_settings(&config::auth_settings(&auth, &data)?)?;
            let server =
                server::start(&ServerSettings { bind, log_level }, ApiContext { verifier })?;
            eprintln!(
                "leadping-invitations listening on http://{}",
                server.local_addr()
            );
            eprintln!("  contract: http://{}/openapi.json", server.local_addr());
            let shutdown = server.wait_for_shutdown();
            tokio::select! {
                result = shutdown => result.map_err(|e| anyhow::anyhow!("server stopped: {e}")),
                _ = tokio::signal::ctrl_c() => {
                    eprintln!("shutting down");
                    server.close().await.map_err(|e| anyhow::anyhow!("shutdown failed: {e}"))
                }
            }
        }
    }
}
