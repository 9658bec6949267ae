//! The `leadping-invitations` command: wiring only.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};
use dropshot::ConfigLoggingLevel;
use leadping_invitations::api::ApiContext;
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
        Command::Serve { bind, log_level } => {
            let server = server::start(&ServerSettings { bind, log_level }, ApiContext::default())?;
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
