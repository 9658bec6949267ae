//! The `leadping-invitations` command: wiring only.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use dropshot::ConfigLoggingLevel;
use leadping_invitations::app::DeliveryLoop;
use leadping_invitations::auth::{self, Claims, Verifier};
use leadping_invitations::config::{self, AuthArgs, DataArgs, MailArgs, PolicyArgs};
use leadping_invitations::demo;
use leadping_invitations::domain::Role;
use leadping_invitations::logging::LogFormat;
use leadping_invitations::server::{self, ServerSettings};
use leadping_invitations::store::Store;

#[derive(Parser)]
#[command(version, about = "The Leadping business-invitations API server")]
struct Cli {
    /// A TOML file of settings (keys are the environment variables' names without the
    /// `LEADPING_` prefix, in lower case: `bind = "0.0.0.0:8080"`). Environment variables win
    /// over the file, flags over both.
    #[arg(long, env = "LEADPING_CONFIG", global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the `serve` variant costs nothing worth boxing it for.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Serve the API (migrating the database first).
    Serve {
        /// Address to listen on.
        #[arg(long, env = "LEADPING_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
        /// Log level: trace, debug, info, warn, error or critical.
        #[arg(long, env = "LEADPING_LOG_LEVEL", default_value = "info", value_parser = parse_level)]
        log_level: ConfigLoggingLevel,
        /// Seconds a connection may wait on a read or a write before it is closed: a client that
        /// sends nothing, stalls mid-request or stops reading, or an idle keep-alive connection.
        /// Must exceed the delivery wait (a create or resend waits that long to answer).
        #[arg(long, env = "LEADPING_IDLE_TIMEOUT_SECS", default_value_t = server::DEFAULT_IDLE_TIMEOUT_SECS,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        idle_timeout_secs: u64,
        /// Seconds a client has to send a complete request head, counted from the connection's
        /// start (or, on a kept-alive connection, from the next request's first byte) and not
        /// extended by each byte: a client that sends its head a byte at a time, or nothing,
        /// is closed after it.
        #[arg(long, env = "LEADPING_REQUEST_HEAD_TIMEOUT_SECS", default_value_t = server::DEFAULT_HEAD_TIMEOUT_SECS,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        request_head_timeout_secs: u64,
        /// Seconds a request body may take to arrive in full after its head, however it
        /// trickles in; past it the request is answered 408 and the connection closed.
        #[arg(long, env = "LEADPING_REQUEST_BODY_TIMEOUT_SECS", default_value_t = server::DEFAULT_BODY_TIMEOUT_SECS,
              value_parser = clap::value_parser!(u64).range(1..=3600))]
        request_body_timeout_secs: u64,
        /// Connections served at once; one more is answered 503 (with Retry-After) at once and
        /// closed, instead of waiting in the kernel's queue or starving the process of file
        /// descriptors. By default the process's file-descriptor limit less 128 (and at least
        /// half of it).
        #[arg(long, env = "LEADPING_MAX_CONNECTIONS",
              value_parser = clap::value_parser!(u64).range(1..))]
        max_connections: Option<u64>,
        /// Where to serve `GET /metrics` (Prometheus text format); not served when unset. Keep
        /// it off the public network.
        #[arg(long, env = "LEADPING_METRICS_BIND")]
        metrics_bind: Option<SocketAddr>,
        /// Log lines as `json` (bunyan) or `text`; by default JSON in production, text otherwise.
        #[arg(long, env = "LEADPING_LOG_FORMAT", value_enum)]
        log_format: Option<LogFormat>,
        /// Seed two demo businesses with members and invitations, and print a token per member.
        #[arg(long)]
        demo: bool,
        /// With --demo: also write the demo's base URL, businesses, members and tokens as JSON.
        #[arg(long, requires = "demo")]
        demo_out: Option<PathBuf>,
        /// Run in production: refuse to start while any local default is in force (a generated
        /// JWT secret or token key, `.eml` files instead of a relay, SQLite in memory or in a
        /// temporary directory, a local accept URL), naming what to set. Same as
        /// `LEADPING_ENV=production`.
        #[arg(long)]
        production: bool,
        /// `development` (the default: local defaults allowed) or `production` (see
        /// `--production`).
        #[arg(
            long = "env",
            env = "LEADPING_ENV",
            value_enum,
            default_value = "development"
        )]
        environment: config::Environment,
        /// Seconds a graceful shutdown (SIGTERM or SIGINT) gives requests and email sends under
        /// way to finish before the process exits anyway.
        #[arg(long, env = "LEADPING_SHUTDOWN_GRACE_SECS", default_value_t = 20,
              value_parser = clap::value_parser!(u64).range(0..=3600))]
        shutdown_grace_secs: u64,
        #[command(flatten)]
        auth: AuthArgs,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        policy: PolicyArgs,
        #[command(flatten)]
        mail: MailArgs,
    },
    /// Bring the database schema up to date, then exit.
    Migrate {
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
        #[arg(long, value_parser = |s: &str| s.parse::<Role>())]
        role: Option<Role>,
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

/// For a setting with a bad value, every name it goes by: clap names the flag only, while most
/// settings come from the environment or the config file.
fn setting_hint(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let ContextValue::String(arg) = e.get(ContextKind::InvalidArg)? else {
        return None;
    };
    let flag = arg.split_whitespace().next()?.strip_prefix("--")?;
    let key = flag.replace('-', "_");
    let env = format!("LEADPING_{}", key.to_uppercase());
    let from = if std::env::var_os(&env).is_some() {
        " (set here by the environment or the config file)"
    } else {
        ""
    };
    Some(format!(
        "the setting is `--{flag}`, environment variable {env}{from}, config file key `{key}`"
    ))
}

/// Waits for SIGTERM (what an orchestrator sends on a deploy or a scale-down) or SIGINT (Ctrl-C);
/// returns its name.
async fn shutdown_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

fn main() -> anyhow::Result<()> {
    // The config file feeds the environment before anything reads it, and before any thread
    // exists: that is what makes setting variables sound here.
    config::load_file_into_env(std::env::args_os())?;
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let hint = setting_hint(&e);
            let _ = e.print();
            if let Some(hint) = hint {
                eprintln!("{hint}");
            }
            std::process::exit(e.exit_code());
        }
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Openapi => {
            print!("{}", leadping_invitations::generated_openapi());
            Ok(())
        }
        Command::Migrate { data } => {
            let url = data.database_url();
            tokio::task::spawn_blocking(move || Store::open(&url)).await??;
            eprintln!("database is up to date: {}", data.database_url_redacted());
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
                role: role.map(|r| r.as_str().to_string()),
                exp: now + ttl,
                iat: Some(now),
                iss: auth.jwt_issuer.clone(),
                aud: auth.jwt_audience.clone().map(auth::Audience::One),
            };
            println!("{}", auth::mint(&secret, &claims)?);
            Ok(())
        }
        Command::Serve {
            bind,
            log_level,
            log_format,
            metrics_bind,
            idle_timeout_secs,
            request_head_timeout_secs,
            request_body_timeout_secs,
            max_connections,
            demo,
            demo_out,
            shutdown_grace_secs,
            production,
            environment,
            auth,
            data,
            policy,
            mail,
        } => {
            let production = production || environment == config::Environment::Production;
            if production {
                // Before anything is created: a refused start leaves nothing behind.
                let refusals = config::production_refusals(&auth, &data, &mail, demo);
                if !refusals.is_empty() {
                    let lines: Vec<String> = refusals.iter().map(|r| format!("  - {r}")).collect();
                    anyhow::bail!(
                        "refusing to start in production with local defaults:\n{}",
                        lines.join("\n")
                    );
                }
            }
            let verifier = Verifier::from_settings(&config::auth_settings(&auth, &data)?)?;
            let settings = mail.settings()?;
            let idle_timeout = std::time::Duration::from_secs(idle_timeout_secs);
            if idle_timeout <= settings.wait + std::time::Duration::from_secs(1) {
                anyhow::bail!(
                    "LEADPING_IDLE_TIMEOUT_SECS ({idle_timeout_secs} s) must exceed LEADPING_DELIVERY_WAIT_MS ({} ms) by a second at least: a create or resend waits that long before it answers",
                    settings.wait.as_millis()
                );
            }
            let grace = std::time::Duration::from_secs(shutdown_grace_secs);
            if grace < settings.wait + std::time::Duration::from_secs(1) {
                anyhow::bail!(
                    "LEADPING_SHUTDOWN_GRACE_SECS ({shutdown_grace_secs} s) must exceed LEADPING_DELIVERY_WAIT_MS ({} ms) by a second at least: a create or resend under way at a shutdown waits that long before it answers, and a shorter grace would cut it off after its change committed",
                    settings.wait.as_millis()
                );
            }
            let max_connections = max_connections
                .map_or_else(server::default_max_connections, |n| {
                    usize::try_from(n).unwrap_or(usize::MAX)
                });
            let format = log_format.unwrap_or(if production {
                LogFormat::Json
            } else {
                LogFormat::Text
            });
            let log = leadping_invitations::logging::logger_in(&log_level, format)?;
            let mut app = config::app(&data, &policy).await?;
            app.delivery_wait = settings.wait;
            app.log = log.clone();
            let delivery = DeliveryLoop::new(app.clone(), mail.mailer(&data)?, settings);
            let context = leadping_invitations::api::ApiContext {
                verifier,
                app: app.clone(),
            };
            let server = server::start(
                &ServerSettings {
                    idle_timeout,
                    head_timeout: std::time::Duration::from_secs(request_head_timeout_secs),
                    body_timeout: std::time::Duration::from_secs(request_body_timeout_secs),
                    max_connections,
                    ..ServerSettings::new(bind, log.clone())
                },
                context,
            )?;
            let base_url = format!("http://{}", server.local_addr());
            eprintln!("leadping-invitations listening on {base_url}");
            eprintln!("  database: {}", data.database_url_redacted());
            eprintln!("  mail: {}", mail.describe(&data));
            eprintln!("  contract: {base_url}/openapi.json");
            eprintln!("  docs: {base_url}/docs");
            eprintln!("  connections: at most {max_connections} at once");
            if app.store.read_only().await.unwrap_or(false) {
                eprintln!(
                    "warning: the database is read-only: every write will answer 503 until it is writable"
                );
            }
            let metrics = match metrics_bind {
                Some(bind) => {
                    let server = server::start_metrics(bind, app.clone(), log.clone())?;
                    eprintln!("  metrics: http://{}/metrics", server.local_addr());
                    Some(server)
                }
                None => None,
            };
            let sweeper = server::spawn_sweeper(app.clone(), policy.sweep_interval(), log.clone());
            let worker = delivery.spawn(log.clone());
            if demo {
                let secret = config::hs256_secret(&auth, &data)?;
                let seeded = demo::seed(&app, &secret, &base_url).await?;
                println!("{}", demo::instructions(&seeded));
                if let Some(path) = demo_out {
                    std::fs::write(&path, serde_json::to_string_pretty(&seeded)? + "\n")?;
                    eprintln!("  demo written to {}", path.display());
                }
            }
            let stopped = server.wait_for_shutdown();
            let signal = tokio::select! {
                result = stopped => {
                    return result.map_err(|e| anyhow::anyhow!("server stopped: {e}"));
                }
                signal = shutdown_signal() => signal?,
            };
            slog::info!(log, "shutting down: finishing requests and email sends under way";
                "signal" => signal, "grace_secs" => shutdown_grace_secs);
            let deadline = tokio::time::Instant::now() + grace;
            // Requests first, with the delivery loop still running: a create or resend under way
            // may be waiting for its email's first attempt. Then the loop: its sends under way
            // finish and are recorded, claims not started go back at once.
            match tokio::time::timeout_at(deadline, server.close()).await {
                Ok(result) => result.map_err(|e| anyhow::anyhow!("shutdown failed: {e}"))?,
                Err(_) => slog::warn!(log, "shutdown grace ran out with requests still under way"),
            }
            sweeper.abort();
            if let Some(metrics) = metrics {
                let _ = metrics.close().await;
            }
            delivery.stop();
            // The loop's sends, then every send under way (a request's that outlived its wait),
            // finish and are recorded.
            let sends = async {
                if let Some(worker) = worker {
                    let _ = worker.await;
                }
                delivery.idle().await;
            };
            if tokio::time::timeout_at(deadline, sends).await.is_err() {
                // Their claims lapse with the lease; the relay may have taken them, so they are
                // not given back (that could send them twice).
                slog::warn!(
                    log,
                    "shutdown grace ran out with email sends still under way"
                );
            }
            slog::info!(log, "stopped");
            Ok(())
        }
    }
}
