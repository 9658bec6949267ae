//! Settings from flags and the environment (a flag wins over its variable), with safe defaults
//! so that `serve` runs with nothing configured. Read by `main`; must never be imported by the
//! domain, the application layer or the API.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use chrono::Duration;

use crate::app::App;
use crate::auth::{self, AuthSettings};
use crate::domain::rules::Policy;
use crate::store::Store;
use crate::tokens::TokenKey;

/// Where the server keeps what it must remember between runs.
#[derive(Clone, Debug, clap::Args)]
pub struct DataArgs {
    /// Directory for local state: the SQLite database and generated secrets.
    #[arg(long, env = "LEADPING_DATA_DIR", default_value = "leadping-data")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` (the default is `leadping.db` in the data directory) or
    /// `postgres://USER@HOST/DB` for a database shared by several replicas.
    #[arg(long, env = "LEADPING_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Key the acceptance tokens are derived with (at least 32 bytes). Generated once and kept
    /// in the data directory when not set; replicas sharing a database must share it.
    #[arg(long, env = "LEADPING_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,
    /// Milliseconds an operation waits to reach the database (PostgreSQL: connecting and
    /// waiting for a pooled connection; SQLite: another process's lock) before it answers 503
    /// with Retry-After.
    #[arg(long, env = "LEADPING_DATABASE_TIMEOUT_MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..=600_000))]
    pub database_timeout_ms: u64,
}

impl DataArgs {
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("leadping.db").display()))
    }

    /// The database URL without its password, for logs.
    pub fn database_url_redacted(&self) -> String {
        let url = self.database_url();
        match (url.find("://"), url.rfind('@')) {
            (Some(scheme), Some(at)) if at > scheme => {
                let userinfo = &url[scheme + 3..at];
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
            }
            _ => url,
        }
    }

    pub fn token_key(&self) -> anyhow::Result<TokenKey> {
        match &self.token_key {
            Some(k) => TokenKey::new(k.as_bytes()),
            None => TokenKey::new(secret_in(&self.data_dir, "token-key")?.as_bytes()),
        }
    }
}

/// The business rules' limits.
#[derive(Clone, Debug, clap::Args)]
pub struct PolicyArgs {
    /// Least seconds between two emails for one invitation.
    #[arg(long, env = "LEADPING_RESEND_COOLDOWN_SECS", default_value_t = 60)]
    pub resend_cooldown_secs: u32,
    /// Invitation emails (creates and resends) per business per UTC day.
    #[arg(long, env = "LEADPING_DAILY_EMAIL_CAP", default_value_t = 200)]
    pub daily_email_cap: u32,
    /// Seconds an invitation can be accepted after it was (re)sent.
    #[arg(long, env = "LEADPING_INVITATION_TTL_SECS", default_value_t = 7 * 24 * 3600)]
    pub invitation_ttl_secs: u32,
    /// Most seats a business's subscription item may hold; 0 for no limit.
    #[arg(long, env = "LEADPING_SEAT_LIMIT", default_value_t = 100)]
    pub seat_limit: u32,
    /// Seconds between two runs of the sweeper that releases expired invitations' seats.
    #[arg(long, env = "LEADPING_SWEEP_INTERVAL_SECS", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub sweep_interval_secs: u32,
}

impl PolicyArgs {
    pub fn policy(&self) -> Policy {
        Policy {
            validity: Duration::seconds(i64::from(self.invitation_ttl_secs)),
            resend_cooldown: Duration::seconds(i64::from(self.resend_cooldown_secs)),
            daily_email_cap: self.daily_email_cap,
            seat_limit: (self.seat_limit > 0).then_some(i64::from(self.seat_limit)),
        }
    }

    pub fn sweep_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.sweep_interval_secs))
    }
}

/// The accept page of a local set-up: fine for the demo, wrong for anyone's real inbox.
pub const DEFAULT_ACCEPT_URL: &str = "http://localhost:3000/invitations/accept";

/// Invitation email.
#[derive(Clone, Debug, clap::Args)]
pub struct MailArgs {
    /// Relay URL: `smtp://host:25`, `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host:465` (TLS). Without it, messages are written as `.eml` files.
    #[arg(long, env = "LEADPING_SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,
    /// Where `.eml` files go when no relay is set (default: `mail` in the data directory).
    #[arg(long, env = "LEADPING_MAIL_DIR")]
    pub mail_dir: Option<PathBuf>,
    /// The From address of invitation emails.
    #[arg(
        long,
        env = "LEADPING_MAIL_FROM",
        default_value = "Leadping <invitations@leadping.localhost>"
    )]
    pub mail_from: String,
    /// The accept page the email links to; the acceptance token is added as `?token=`.
    #[arg(
        long,
        env = "LEADPING_ACCEPT_URL",
        default_value = DEFAULT_ACCEPT_URL
    )]
    pub accept_url: String,
    /// How long a create or resend waits for its email's first delivery attempt (ms).
    #[arg(long, env = "LEADPING_DELIVERY_WAIT_MS", default_value_t = 2000)]
    pub delivery_wait_ms: u64,
    /// Messages this process sends at once; 0 leaves sending to other replicas.
    #[arg(long, env = "LEADPING_DELIVERY_CONCURRENCY", default_value_t = 4)]
    pub delivery_concurrency: usize,
    /// Attempts before a message that keeps failing transiently is given up.
    #[arg(long, env = "LEADPING_DELIVERY_MAX_ATTEMPTS", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..))]
    pub delivery_max_attempts: u32,
    /// The first retry's delay (ms); each next one doubles, with jitter, up to an hour.
    #[arg(long, env = "LEADPING_DELIVERY_RETRY_BASE_MS", default_value_t = 5000)]
    pub delivery_retry_base_ms: u64,
    /// How long a worker's claim on a message lasts (s); a dead worker's messages are picked up after it.
    #[arg(long, env = "LEADPING_DELIVERY_LEASE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..))]
    pub delivery_lease_secs: u64,
    /// How often an idle worker looks for due messages (ms).
    #[arg(long, env = "LEADPING_DELIVERY_POLL_MS", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(10..))]
    pub delivery_poll_ms: u64,
}

impl MailArgs {
    pub fn mailer(&self, data: &DataArgs) -> anyhow::Result<crate::mail::Mailer> {
        match &self.smtp_url {
            Some(url) => crate::mail::Mailer::smtp(url),
            None => crate::mail::Mailer::files(
                &self
                    .mail_dir
                    .clone()
                    .unwrap_or_else(|| data.data_dir.join("mail")),
            ),
        }
    }

    pub fn settings(&self) -> anyhow::Result<crate::app::DeliverySettings> {
        use std::time::Duration as StdDuration;
        Ok(crate::app::DeliverySettings {
            concurrency: self.delivery_concurrency,
            max_attempts: self.delivery_max_attempts,
            retry_base: StdDuration::from_millis(self.delivery_retry_base_ms),
            lease: StdDuration::from_secs(self.delivery_lease_secs),
            poll: StdDuration::from_millis(self.delivery_poll_ms),
            wait: StdDuration::from_millis(self.delivery_wait_ms),
            from: self
                .mail_from
                .parse()
                .map_err(|e| anyhow::anyhow!("LEADPING_MAIL_FROM {:?}: {e}", self.mail_from))?,
            accept_url: self.accept_url.clone(),
        })
    }

    /// Where mail goes, for the startup banner (no credentials).
    pub fn describe(&self, data: &DataArgs) -> String {
        match &self.smtp_url {
            Some(url) => {
                let host = url.rsplit('@').next().unwrap_or(url);
                let scheme = url.split("://").next().unwrap_or("smtp");
                format!(
                    "{scheme}://{}",
                    host.trim_start_matches(&format!("{scheme}://"))
                )
            }
            None => format!(
                ".eml files in {}",
                self.mail_dir
                    .clone()
                    .unwrap_or_else(|| data.data_dir.join("mail"))
                    .display()
            ),
        }
    }
}

/// The application over the configured database, migrated. While the database is unavailable
/// (down, unreachable, still starting: [`crate::store::StoreError::is_outage`]) it waits and
/// tries again, up to every ten seconds, saying so on stderr, rather than exit: a replica started
/// during an outage comes up when the database does. Anything else (a bad URL, a schema this
/// build cannot read) ends the start at once.
pub async fn app(data: &DataArgs, policy: &PolicyArgs) -> anyhow::Result<App> {
    let timeout = std::time::Duration::from_millis(data.database_timeout_ms);
    let mut wait = std::time::Duration::from_millis(250);
    let store = loop {
        let url = data.database_url();
        match tokio::task::spawn_blocking(move || Store::open_with_timeout(&url, timeout)).await? {
            Ok(store) => break store,
            Err(e) if e.is_outage() => {
                eprintln!(
                    "waiting for the database ({}): {e}; trying again in {} ms",
                    data.database_url_redacted(),
                    wait.as_millis()
                );
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(std::time::Duration::from_secs(10));
            }
            Err(e) => return Err(e.into()),
        }
    };
    Ok(App::new(store, policy.policy(), data.token_key()?))
}

/// Reads the TOML file named by `--config FILE` (or `LEADPING_CONFIG`) into environment
/// variables that are not set yet, so that the file sits below the environment and flags.
/// Must run before any other thread starts.
pub fn load_file_into_env(args: impl Iterator<Item = OsString>) -> anyhow::Result<()> {
    let args: Vec<OsString> = args.collect();
    let from_args = args.iter().enumerate().find_map(|(i, a)| {
        let a = a.to_str()?;
        if a == "--config" {
            args.get(i + 1).map(PathBuf::from)
        } else {
            a.strip_prefix("--config=").map(PathBuf::from)
        }
    });
    let Some(path) = from_args.or_else(|| std::env::var_os("LEADPING_CONFIG").map(PathBuf::from))
    else {
        return Ok(());
    };
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
    for (name, value) in
        file_settings(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    {
        if std::env::var_os(&name).is_none() {
            // SAFETY: called at the start of `main`, before any thread exists.
            unsafe { std::env::set_var(&name, value) };
        }
    }
    Ok(())
}

/// `key = value` pairs of a config file as `(LEADPING_KEY, value)`.
fn file_settings(text: &str) -> anyhow::Result<Vec<(String, String)>> {
    let table: toml::Table = text.parse()?;
    table
        .into_iter()
        .map(|(key, value)| {
            let value = match value {
                toml::Value::String(s) => s,
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string())
                    })
                    .collect::<Vec<_>>()
                    .join(","),
                other => {
                    anyhow::bail!("`{key}`: {other} is not a string, integer, boolean or list")
                }
            };
            Ok((format!("LEADPING_{}", key.to_uppercase()), value))
        })
        .collect()
}

/// Which bearer tokens to trust.
#[derive(Clone, Debug, clap::Args)]
pub struct AuthArgs {
    /// HS256 secret (at least 32 bytes). Without it and without public keys, a random secret is
    /// generated once and kept in the data directory, so `serve` and `token` agree.
    #[arg(long, env = "LEADPING_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// PEM files of RSA (RS256) or P-256 (ES256) public keys, comma-separated.
    #[arg(long, env = "LEADPING_JWT_PUBLIC_KEYS", value_delimiter = ',')]
    pub jwt_public_keys: Vec<PathBuf>,
    /// A JWKS file of RSA and P-256 public keys.
    #[arg(long, env = "LEADPING_JWT_JWKS")]
    pub jwt_jwks: Option<PathBuf>,
    /// Required `iss` claim.
    #[arg(long, env = "LEADPING_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "LEADPING_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
}

/// The HS256 secret in force: the configured one, else the one kept in the data directory
/// (created on first use, readable by its owner only).
pub fn hs256_secret(auth: &AuthArgs, data: &DataArgs) -> anyhow::Result<String> {
    if let Some(secret) = &auth.jwt_secret {
        return Ok(secret.clone());
    }
    secret_in(&data.data_dir, "jwt-secret")
}

/// A secret kept in `dir/name`, generated on first use, readable by its owner only.
fn secret_in(dir: &Path, name: &str) -> anyhow::Result<String> {
    let path = dir.join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => return Ok(s.trim().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    }
    std::fs::create_dir_all(dir)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
    let secret = auth::generate_secret()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(&path) {
        Ok(mut f) => {
            std::io::Write::write_all(&mut f, secret.as_bytes())?;
            Ok(secret)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(&path)?.trim().to_string())
        }
        Err(e) => anyhow::bail!("cannot create {}: {e}", path.display()),
    }
}

/// Where the server runs: `development` allows the local defaults that make `serve` work with
/// nothing configured; `production` refuses each of them ([`production_refusals`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Environment {
    Development,
    Production,
}

/// What `serve --production` would otherwise fall back on, as one line per default in force,
/// each naming what to set instead. Empty when nothing local is left. Never includes a value.
pub fn production_refusals(
    auth: &AuthArgs,
    data: &DataArgs,
    mail: &MailArgs,
    demo: bool,
) -> Vec<String> {
    let mut refusals = Vec::new();
    if auth.jwt_secret.is_none() && auth.jwt_public_keys.is_empty() && auth.jwt_jwks.is_none() {
        refusals.push(
            "no JWT key is configured, so a secret would be generated into the data directory: \
             set LEADPING_JWT_PUBLIC_KEYS or LEADPING_JWT_JWKS (your identity provider's keys), \
             or LEADPING_JWT_SECRET"
                .to_string(),
        );
    }
    if data.token_key.is_none() {
        refusals.push(
            "LEADPING_TOKEN_KEY is not set, so an acceptance-token key would be generated into \
             the data directory (and differ between replicas): set it, the same on every replica"
                .to_string(),
        );
    }
    if mail.smtp_url.is_none() {
        refusals.push(
            "LEADPING_SMTP_URL is not set, so invitation emails would be written as files \
             instead of sent: set it to your relay (smtps://user:pass@host:465)"
                .to_string(),
        );
    }
    if let Some(why) = local_database(&data.database_url()) {
        refusals.push(format!(
            "the database is {why}: set LEADPING_DATABASE_URL to a PostgreSQL database, or to \
             a SQLite file on lasting storage"
        ));
    }
    if let Some(why) = local_accept_url(&mail.accept_url) {
        refusals.push(format!(
            "LEADPING_ACCEPT_URL {why}: set it to your public accept page \
             (https://app.example.com/invitations/accept)"
        ));
    }
    if demo {
        refusals.push("--demo seeds demo businesses and prints their tokens: leave it off".into());
    }
    refusals
}

/// Why a database URL is a local default: SQLite in memory or inside a temporary directory.
fn local_database(url: &str) -> Option<String> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    if path.is_empty() || path.contains(":memory:") {
        return Some("SQLite in memory (lost when the process ends)".into());
    }
    let path = std::path::absolute(Path::new(path)).ok()?;
    let temporary = [
        std::env::temp_dir(),
        "/tmp".into(),
        "/var/tmp".into(),
        "/dev/shm".into(),
    ];
    temporary
        .iter()
        .any(|t| path.starts_with(t))
        .then(|| "SQLite inside a temporary directory (cleared on reboot)".into())
}

/// Why an accept URL is a local default: the built-in one, or a host only this machine reaches.
fn local_accept_url(url: &str) -> Option<&'static str> {
    if url == DEFAULT_ACCEPT_URL {
        return Some("is the built-in local default");
    }
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or(host)
            .trim_start_matches('[')
    } else {
        host.split(':').next().unwrap_or(host)
    };
    let local = host.eq_ignore_ascii_case("localhost")
        || host.to_ascii_lowercase().ends_with(".localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified());
    local.then_some("points at this machine, which recipients cannot reach")
}

/// The keys `serve` trusts.
pub fn auth_settings(auth: &AuthArgs, data: &DataArgs) -> anyhow::Result<AuthSettings> {
    let has_public = !auth.jwt_public_keys.is_empty() || auth.jwt_jwks.is_some();
    let hs256_secret = if auth.jwt_secret.is_some() || !has_public {
        Some(hs256_secret(auth, data)?)
    } else {
        None
    };
    Ok(AuthSettings {
        hs256_secret,
        public_key_files: auth.jwt_public_keys.clone(),
        jwks_file: auth.jwt_jwks.clone(),
        issuer: auth.jwt_issuer.clone(),
        audience: auth.jwt_audience.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_secret_is_kept_and_reused() {
        let dir = std::env::temp_dir().join(format!("leadping-config-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = secret_in(&dir, "jwt-secret").unwrap();
        let second = secret_in(&dir, "jwt-secret").unwrap();
        assert_eq!(first, second);
        assert!(first.len() >= auth::MIN_SECRET_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("jwt-secret"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "the secret file must not be readable by others"
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn config_files_become_environment_names() {
        let settings = file_settings(
            "bind = \"0.0.0.0:9000\"\nseat_limit = 5\njwt_public_keys = [\"a.pem\", \"b.pem\"]\n",
        )
        .unwrap();
        assert_eq!(
            settings,
            vec![
                ("LEADPING_BIND".to_string(), "0.0.0.0:9000".to_string()),
                (
                    "LEADPING_JWT_PUBLIC_KEYS".to_string(),
                    "a.pem,b.pem".to_string()
                ),
                ("LEADPING_SEAT_LIMIT".to_string(), "5".to_string()),
            ]
        );
        assert!(file_settings("nested = { a = 1 }").is_err());
        assert!(file_settings("not toml").is_err());
    }

    fn args(
        smtp: Option<&str>,
        database_url: Option<&str>,
        accept_url: &str,
    ) -> (AuthArgs, DataArgs, MailArgs) {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct All {
            #[command(flatten)]
            auth: AuthArgs,
            #[command(flatten)]
            data: DataArgs,
            #[command(flatten)]
            mail: MailArgs,
        }
        let mut argv = vec!["serve".to_string(), format!("--accept-url={accept_url}")];
        argv.extend(smtp.map(|u| format!("--smtp-url={u}")));
        argv.extend(database_url.map(|u| format!("--database-url={u}")));
        let all = All::try_parse_from(argv).unwrap();
        (all.auth, all.data, all.mail)
    }

    #[test]
    fn production_refuses_each_local_default_by_name_and_accepts_a_full_configuration() {
        // Nothing configured: every local default is named, with what to set.
        let (auth, data, mail) = args(None, None, DEFAULT_ACCEPT_URL);
        let refusals = production_refusals(&auth, &data, &mail, true);
        let all = refusals.join("\n");
        for setting in [
            "LEADPING_JWT_SECRET",
            "LEADPING_TOKEN_KEY",
            "LEADPING_SMTP_URL",
            "LEADPING_ACCEPT_URL",
            "--demo",
        ] {
            assert!(all.contains(setting), "{setting} not named in:\n{all}");
        }
        // The default database is a relative path: lasting unless the process runs in /tmp.
        let (mut auth, mut data, mut mail) = args(
            Some("smtps://u:p@relay.example.com:465"),
            Some("postgres://app:s3cret@db/leadping"),
            "https://app.example.com/invitations/accept",
        );
        auth.jwt_secret = Some("s".repeat(40));
        data.token_key = Some("k".repeat(40));
        assert_eq!(
            production_refusals(&auth, &data, &mail, false),
            Vec::<String>::new()
        );
        // Each one alone is caught.
        for (url, local) in [
            ("sqlite::memory:", true),
            ("sqlite:///tmp/x/leadping.db", true),
            ("sqlite:///var/lib/leadping/leadping.db", false),
            ("postgres://db/leadping", false),
        ] {
            data.database_url = Some(url.into());
            let refused = production_refusals(&auth, &data, &mail, false);
            assert_eq!(refused.len(), usize::from(local), "{url}: {refused:?}");
        }
        // (Not the default database: a relative path, inside /tmp when the tests run there.)
        data.database_url = Some("postgres://db/leadping".into());
        for (url, local) in [
            ("http://127.0.0.1:8080/accept", true),
            ("https://localhost/accept", true),
            ("http://[::1]:3000/accept", true),
            ("https://app.localhost/accept", true),
            ("https://app.example.com/accept", false),
        ] {
            mail.accept_url = url.into();
            let refused = production_refusals(&auth, &data, &mail, false);
            assert_eq!(refused.len(), usize::from(local), "{url}: {refused:?}");
        }
    }

    #[test]
    fn database_urls_are_logged_without_passwords() {
        let data = |url: &str| DataArgs {
            data_dir: "d".into(),
            database_url: Some(url.into()),
            token_key: None,
            database_timeout_ms: 1000,
        };
        assert_eq!(
            data("postgres://app:s3cret@db:5432/x").database_url_redacted(),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(
            data("sqlite://d/leadping.db").database_url_redacted(),
            "sqlite://d/leadping.db"
        );
        let default = DataArgs {
            data_dir: "d".into(),
            database_url: None,
            token_key: None,
            database_timeout_ms: 1000,
        };
        assert_eq!(default.database_url(), "sqlite://d/leadping.db");
    }
}
