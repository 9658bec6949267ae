//! `spawn_app()`: the real server on 127.0.0.1:0 over a fresh database, with the generated client
//! pointed at it. The database is SQLite in memory, or a fresh PostgreSQL database created on
//! the server `TEST_DATABASE_URL` names.

use chrono::{DateTime, Utc};
use dropshot::{ConfigLoggingLevel, HttpServer};
use leadping_invitations::api::ApiContext;
use leadping_invitations::app::{App, DeliveryLoop, DeliverySettings, NoBody, Queued, Seed};
use leadping_invitations::auth::{self, AuthSettings, Claims, Identity, Verifier};
use leadping_invitations::domain::rules::Policy;
use leadping_invitations::domain::{BusinessId, InvitationId, Role, UserId};
use leadping_invitations::mail::Mailer;
use leadping_invitations::server::{self, ServerSettings};
use leadping_invitations::store::{Store, StoreError};
use leadping_invitations::tokens::TokenKey;
use leadping_invitations_client::Client;

use crate::smtp::FakeSmtp;

/// The HS256 secret the test server trusts.
pub const JWT_SECRET: &str = "test-secret-0123456789abcdef-0123456789";
pub const TOKEN_KEY: &str = "test-token-key-0123456789abcdef-0123456789";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub base_url: String,
    /// The progenitor client generated from openapi.json, with its own types (no token).
    pub client: Client,
    /// A plain HTTP client for what the generated one refuses to send (malformed requests).
    pub http: reqwest::Client,
    /// The application behind the server, for seeding and for looking at the store.
    pub app: App,
    /// The database this server uses (a second server on it is a second replica).
    pub database_url: String,
    /// The relay the server's delivery worker sends to.
    pub smtp: FakeSmtp,
    pub delivery: DeliveryLoop,
    worker: Option<tokio::task::JoinHandle<()>>,
    server: Option<HttpServer<ApiContext>>,
}

/// A fresh PostgreSQL database on the `TEST_DATABASE_URL` server, or `None` (with a note on
/// stderr) when it is not set.
pub fn fresh_postgres_database() -> Option<String> {
    let Ok(base) = std::env::var("TEST_DATABASE_URL") else {
        eprintln!(
            "SKIPPED (PostgreSQL): TEST_DATABASE_URL is not set; this test ran on SQLite only"
        );
        return None;
    };
    let name = format!("leadping_test_{}", uuid::Uuid::new_v4().simple());
    let mut client = postgres::Client::connect(&base, postgres::NoTls)
        .expect("TEST_DATABASE_URL accepts connections");
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("can create a test database");
    // Replace the database name at the end of the URL.
    let (prefix, _) = base
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL ends in /DATABASE");
    Some(format!("{prefix}/{name}"))
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, Policy::default()).await
}

pub async fn spawn_app_with(backend: Backend, policy: Policy) -> Option<TestApp> {
    spawn_app_full(backend, policy, delivery_settings()).await
}

/// Fast delivery settings for tests: short retries, leases and polls.
pub fn delivery_settings() -> DeliverySettings {
    use std::time::Duration;
    DeliverySettings {
        concurrency: 4,
        max_attempts: 3,
        retry_base: Duration::from_millis(100),
        lease: Duration::from_secs(2),
        poll: Duration::from_millis(50),
        wait: Duration::from_secs(3),
        from: "Leadping <invitations@leadping.example.com>"
            .parse()
            .unwrap(),
        accept_url: "https://app.example.com/invitations/accept".into(),
    }
}

pub async fn spawn_app_full(
    backend: Backend,
    policy: Policy,
    mail: DeliverySettings,
) -> Option<TestApp> {
    let database_url = match backend {
        Backend::Sqlite => "sqlite::memory:".to_string(),
        Backend::Postgres => tokio::task::spawn_blocking(fresh_postgres_database)
            .await
            .unwrap()?,
    };
    let url = database_url.clone();
    let store = tokio::task::spawn_blocking(move || Store::open(&url))
        .await
        .unwrap()
        .expect("database opens and migrates");
    let smtp = FakeSmtp::start().await;
    let mut app = App::new(store, policy, TokenKey::new(TOKEN_KEY.as_bytes()).unwrap());
    app.delivery_wait = mail.wait;
    let delivery = DeliveryLoop::new(app.clone(), Mailer::smtp(&smtp.url()).unwrap(), mail);
    let verifier = Verifier::from_settings(&AuthSettings {
        hs256_secret: Some(JWT_SECRET.into()),
        ..Default::default()
    })
    .unwrap();
    let settings = ServerSettings::new(
        "127.0.0.1:0".parse().unwrap(),
        server::logger(&ConfigLoggingLevel::Warn).unwrap(),
    );
    let context = ApiContext {
        verifier,
        app: app.clone(),
    };
    let server = server::start(&settings, context).expect("server starts");
    let worker = delivery.spawn(server::logger(&ConfigLoggingLevel::Warn).unwrap());
    let base_url = format!("http://{}", server.local_addr());
    Some(TestApp {
        client: Client::new(&base_url),
        base_url,
        http: reqwest::Client::new(),
        app,
        database_url,
        smtp,
        delivery,
        worker,
        server: Some(server),
    })
}

/// The id of an invitation the API named.
pub fn invitation_id(s: &str) -> InvitationId {
    InvitationId::parse(s).expect("the API names invitations by ids it issued")
}

/// The id of a business a test seeded.
pub fn business_id(s: &str) -> BusinessId {
    BusinessId::parse(s).expect("seeded business ids parse")
}

pub fn user_id(s: &str) -> UserId {
    UserId::parse(s).expect("seeded user ids parse")
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

/// Seats a test business's subscription includes: its three members and one invitation.
pub const INCLUDED_SEATS: i64 = 4;

/// A seeded business: its id and its members' user ids by role.
pub struct Seeded {
    pub id: String,
    pub owner: String,
    pub admin: String,
    pub agent: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

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

    /// A business named `name` with an Owner, an Admin and an Agent.
    pub async fn business(&self, name: &str) -> Seeded {
        let id = format!("biz_{name}");
        let s = Seeded {
            owner: format!("usr_{name}_owner"),
            admin: format!("usr_{name}_admin"),
            agent: format!("usr_{name}_agent"),
            id,
        };
        let members = vec![
            (
                s.owner.clone(),
                format!("owner@{name}.example.com"),
                Role::Owner,
            ),
            (
                s.admin.clone(),
                format!("admin@{name}.example.com"),
                Role::Admin,
            ),
            (
                s.agent.clone(),
                format!("agent@{name}.example.com"),
                Role::Agent,
            ),
        ];
        self.app
            .create_business(&s.id, &format!("{name} Inc"), members, INCLUDED_SEATS)
            .await
            .unwrap();
        s
    }

    /// The client acting as the business's member of `role`.
    pub fn as_role(&self, b: &Seeded, role: Role) -> Client {
        let (user, r) = match role {
            Role::Owner => (&b.owner, "Owner"),
            Role::Admin => (&b.admin, "Admin"),
            Role::Agent => (&b.agent, "Agent"),
        };
        self.client_with_token(&token(&b.id, user, r))
    }

    /// An invitation created by the business's Owner as if `at` (so it can be outside the
    /// cooldown, or already expired).
    pub async fn invitation_at(
        &self,
        b: &Seeded,
        email: &str,
        role: Role,
        at: DateTime<Utc>,
    ) -> String {
        let owner = Identity {
            user_id: UserId::parse(&b.owner).unwrap(),
            business_id: business_id(&b.id),
            token_role: None,
        };
        // Subscribed before the create, as the create handler is, so that no outcome is missed.
        let watch = self.app.watch();
        let queued = self
            .app
            .create_at(
                owner,
                email.into(),
                role,
                None,
                NoBody,
                Some(Seed {
                    at,
                    id: InvitationId::generate(),
                    nonce: None,
                }),
            )
            .await
            .unwrap();
        let (id, outbox_id) = match &queued {
            Queued::Fresh {
                invitation, outbox, ..
            } => (invitation.invitation.id.clone(), outbox.id),
            Queued::Replayed(()) => panic!("no Idempotency-Key was given"),
        };
        drop(queued);
        // Its email goes out as a created invitation's would. The background worker may already
        // hold the row, so draining alone can return before the delivery is recorded: wait for it
        // the way the create handler does.
        self.drain_outbox().await;
        self.app
            .wait_for_first_attempt(watch, outbox_id)
            .await
            .unwrap();
        id.to_string()
    }

    /// An invitation sent ten minutes ago: resendable at once.
    pub async fn invitation(&self, b: &Seeded, email: &str, role: Role) -> String {
        self.invitation_at(b, email, role, Utc::now() - chrono::Duration::minutes(10))
            .await
    }

    /// The acceptance token of an invitation, as the email would carry it.
    pub async fn acceptance_token(&self, business_id: &str, invitation_id: &str) -> String {
        let (b, i) = (
            self::business_id(business_id),
            self::invitation_id(invitation_id),
        );
        let record = self
            .app
            .store
            .transaction(move |tx| tx.invitation(&b, &i))
            .await
            .unwrap()
            .expect("invitation exists");
        self.app.token_of(&record)
    }

    /// Outbox rows written for an invitation.
    pub async fn outbox_rows(&self, invitation_id: &str) -> u32 {
        let i = self::invitation_id(invitation_id);
        self.app
            .store
            .transaction(move |tx| tx.count_outbox_for(&i))
            .await
            .unwrap()
    }

    /// Sends every due outbox row now (the background worker would, a moment later), once the
    /// sends under way (the requests' own) are recorded.
    pub async fn drain_outbox(&self) -> usize {
        self.delivery.idle().await;
        let mut total = 0;
        loop {
            match self.delivery.run_once().await.unwrap() {
                0 => return total,
                n => total += n,
            }
        }
    }

    /// Waits (up to `secs`) until `check` holds, draining the outbox in between.
    pub async fn eventually(&self, secs: u64, mut check: impl AsyncFnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < deadline {
            self.drain_outbox().await;
            if check().await {
                return true;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        false
    }

    /// Runs `f` in a store transaction (to set up states the API cannot reach yet).
    pub async fn with_store<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut leadping_invitations::store::Tx<'_>) -> Result<T, StoreError>
        + Send
        + 'static,
    ) -> T {
        self.app.store.transaction(f).await.unwrap()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.abort();
        }
        // Close in the background so that a test's port is released promptly.
        if let Some(server) = self.server.take()
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            handle.spawn(async move {
                let _ = server.close().await;
            });
        }
        // A test's PostgreSQL database goes with it (FORCE: the pool may still hold connections).
        if let (Ok(base), Some((_, name))) = (
            std::env::var("TEST_DATABASE_URL"),
            self.database_url.rsplit_once('/'),
        ) && name.starts_with("leadping_test_")
        {
            let name = name.to_string();
            let _ = std::thread::spawn(move || {
                if let Ok(mut c) = postgres::Client::connect(&base, postgres::NoTls) {
                    let _ =
                        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
                }
            })
            .join();
        }
    }
}

/// Defines `NAME_sqlite` and `NAME_postgres` tests running `async fn NAME(Backend)`; the
/// PostgreSQL one says it was skipped when `TEST_DATABASE_URL` is not set.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Postgres).await;
                }
            )*
        }
    };
}

/// Seeds business `biz_NAME` with one member, its Owner `usr_NAME` (`owner@NAME.example.com`):
/// what a test of server processes acts as, with [`token`]`("biz_NAME", "usr_NAME", "Owner")`.
pub async fn seed_owner(app: &App, name: &str) {
    app.create_business(
        &format!("biz_{name}"),
        &format!("{name} Inc"),
        vec![(
            format!("usr_{name}"),
            format!("owner@{name}.example.com"),
            Role::Owner,
        )],
        1,
    )
    .await
    .unwrap();
}

/// The application over an existing database (to seed what a server process will serve).
pub async fn app_on(database_url: &str) -> App {
    let url = database_url.to_string();
    let store = tokio::task::spawn_blocking(move || Store::open(&url))
        .await
        .unwrap()
        .expect("database opens");
    App::new(
        store,
        Policy::default(),
        TokenKey::new(TOKEN_KEY.as_bytes()).unwrap(),
    )
}

/// Drops a database made by [`fresh_postgres_database`].
pub fn drop_postgres_database(database_url: &str) {
    if let (Ok(base), Some((_, name))) = (
        std::env::var("TEST_DATABASE_URL"),
        database_url.rsplit_once('/'),
    ) && name.starts_with("leadping_test_")
    {
        let name = name.to_string();
        let _ = std::thread::spawn(move || {
            if let Ok(mut c) = postgres::Client::connect(&base, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
            }
        })
        .join();
    }
}

/// Removes what [`process_database`] made: the PostgreSQL database (nothing for SQLite, whose
/// file is in `dir`) and `dir`.
pub fn remove_process_database(database_url: &str, dir: &std::path::Path) {
    drop_postgres_database(database_url);
    let _ = std::fs::remove_dir_all(dir);
}

/// A directory of its own under the system's temporary directory.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "leadping-{name}-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A server process of the real binary on `database_url`; killed (SIGKILL) when dropped.
pub struct ServerProcess {
    child: std::process::Child,
    pub base_url: String,
    /// Every line the process has written to stderr so far (its log, after the banner).
    stderr: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

/// A database for server processes: a SQLite file in `dir` (so that a restarted process finds
/// what an earlier one committed), or a fresh PostgreSQL database (`None` when
/// `TEST_DATABASE_URL` is not set).
pub async fn process_database(backend: Backend, dir: &std::path::Path) -> Option<String> {
    match backend {
        Backend::Sqlite => Some(format!("sqlite://{}", dir.join("leadping.db").display())),
        Backend::Postgres => tokio::task::spawn_blocking(fresh_postgres_database)
            .await
            .unwrap(),
    }
}

impl ServerProcess {
    pub fn start(
        database_url: &str,
        data_dir: &std::path::Path,
        smtp_url: &str,
        send: bool,
    ) -> ServerProcess {
        Self::start_with(database_url, data_dir, smtp_url, send, &[])
    }

    /// [`ServerProcess::start`] with more environment variables (which win over its own).
    pub fn start_with(
        database_url: &str,
        data_dir: &std::path::Path,
        smtp_url: &str,
        send: bool,
        env: &[(&str, &str)],
    ) -> ServerProcess {
        Self::start_limited(database_url, data_dir, smtp_url, send, env, None)
    }

    /// [`ServerProcess::start_with`], the process allowed at most `open_files` file descriptors
    /// when given (through util-linux's `prlimit`).
    pub fn start_limited(
        database_url: &str,
        data_dir: &std::path::Path,
        smtp_url: &str,
        send: bool,
        env: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> ServerProcess {
        use std::io::BufRead;
        let binary = env!("CARGO_BIN_EXE_leadping-invitations");
        let mut command = match open_files {
            Some(n) => {
                let mut c = std::process::Command::new("prlimit");
                c.arg(format!("--nofile={n}:{n}")).arg("--").arg(binary);
                c
            }
            None => std::process::Command::new(binary),
        };
        let mut child = command
            .arg("serve")
            .env("LEADPING_BIND", "127.0.0.1:0")
            .env("LEADPING_DATABASE_URL", database_url)
            .env("LEADPING_JWT_SECRET", crate::helpers::JWT_SECRET)
            .env("LEADPING_TOKEN_KEY", crate::helpers::TOKEN_KEY)
            .env("LEADPING_DATA_DIR", data_dir)
            .env("LEADPING_LOG_LEVEL", "warn")
            .env("LEADPING_SMTP_URL", smtp_url)
            .env(
                "LEADPING_DELIVERY_CONCURRENCY",
                if send { "4" } else { "0" },
            )
            .env("LEADPING_DELIVERY_WAIT_MS", "0")
            .env("LEADPING_DELIVERY_POLL_MS", "50")
            .env("LEADPING_DELIVERY_LEASE_SECS", "2")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the server binary starts");
        let stderr = child.stderr.take().unwrap();
        let mut lines = std::io::BufReader::new(stderr).lines();
        let base_url = loop {
            let line = lines
                .next()
                .expect("the server prints where it listens")
                .unwrap();
            if let Some(url) = line.strip_prefix("leadping-invitations listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stderr so that the child never blocks on a full pipe.
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = stderr.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        ServerProcess {
            child,
            base_url,
            stderr,
        }
    }

    pub fn client(&self, token: &str) -> leadping_invitations_client::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        leadping_invitations_client::Client::new_with_client(
            &self.base_url,
            reqwest::Client::builder()
                .default_headers(headers)
                .build()
                .unwrap(),
        )
    }

    /// Sends SIGTERM (a graceful shutdown) and waits up to `within` for the process to exit;
    /// its exit status, or `None` if it was still running then (it is killed when dropped).
    pub fn terminate(&mut self, within: std::time::Duration) -> Option<std::process::ExitStatus> {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(status.success(), "SIGTERM delivered");
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        None
    }

    /// The lines the process has written to stderr since it started listening.
    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
