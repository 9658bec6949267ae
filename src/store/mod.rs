//! Persistence behind one interface: SQLite (embedded, the default) and PostgreSQL (shared by
//! several replicas).
//!
//! Design: the application's operations are written once, as synchronous functions over
//! [`Tx`], and each runs as one blocking call inside one database transaction (on SQLite, a
//! savepoint of a group committed together: [`sqlite`]) ([`Store::transaction`]). Every operation that changes a business's state first takes that
//! business's row lock ([`Tx::lock_business`]: `SELECT ... FOR UPDATE` on PostgreSQL; SQLite's
//! `BEGIN IMMEDIATE` holds the single write lock already), so limits, seat counts and idempotency
//! records of one business are decided by one transaction at a time, however many replicas run.
//!
//! Every statement is written once ([`tx`]), over a small connection interface whose two
//! implementations are the drivers ([`sqlite`], [`pg`]); what really differs between the two
//! databases is named in one place ([`sql`]). The schema's migrations are written once too
//! (`migrations/`), with the same tokens, and applied by [`migrate`] on both. Times are
//! milliseconds since the Unix epoch in both databases.
//!
//! Used by the application layer (and billing) only; must never import the API, the mail
//! transport or the application layer.

pub mod pg;
pub mod sql;
pub mod sqlite;
mod tx;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::delivery::EmailKind;
use crate::domain::{
    BusinessId, Invitation, InvitationId, OutboxId, Role, SubscriptionStatus, UserId,
};
use sql::{Conn, Sql, params};
pub use tx::{EmailStanding, Tx};

/// A failure of the database itself (not of a business rule): a 503 when the database is
/// unreachable or cannot take writes for now ([`StoreError::is_outage`]), a 500 (a bug) otherwise;
/// the cause is logged either way.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("postgres: {0}")]
    Postgres(#[from] ::postgres::Error),
    #[error("connection pool: {0}")]
    Pool(#[from] r2d2::Error),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("the blocking task failed: {0}")]
    Join(String),
    #[error("the transaction did not commit: {0}")]
    Commit(String),
    /// The database did not finish the call within the store's deadline ([`Store::deadline`]):
    /// hung, frozen or cut off by a network that drops packets.
    #[error("the database did not answer within {} ms", .0.as_millis())]
    Deadline(Duration),
    #[error("{0}")]
    Config(String),
}

impl StoreError {
    /// Whether this is the database being unavailable (down, unreachable, restarting, out of
    /// disk, read-only, busy past its timeout) rather than a bug: the request may succeed when
    /// retried later. Only a failed commit leaves unknown whether the change took effect (the
    /// answer says so; an Idempotency-Key retry cannot apply it twice).
    pub fn is_outage(&self) -> bool {
        match self {
            // r2d2's only error: no healthy connection within the checkout timeout.
            StoreError::Pool(_) => true,
            StoreError::Postgres(e) => pg::is_outage(e),
            StoreError::Sqlite(e) => sqlite::is_outage(e),
            // A group that did not commit: the disk or the lock refused it (SQLite).
            StoreError::Commit(_) => true,
            StoreError::Deadline(_) => true,
            StoreError::Corrupt(_) | StoreError::Join(_) | StoreError::Config(_) => false,
        }
    }
}

/// A business and its shared user-license subscription item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Business {
    pub id: BusinessId,
    pub name: String,
    /// Seats on the subscription item: one per member and per outstanding invitation.
    pub seat_quantity: i64,
    /// Seats the subscription includes; seats beyond them are billed, prorated.
    pub included_seats: i64,
    /// The current period's end, used for proration.
    pub renewal_date: DateTime<Utc>,
    /// When the subscription started (the business's creation): every period ends a whole
    /// number of months after it.
    pub billing_anchor: DateTime<Utc>,
    pub billing_status: SubscriptionStatus,
}

/// A member of a business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub business_id: BusinessId,
    pub user_id: UserId,
    pub email: String,
    pub role: Role,
}

/// An invitation as stored: the domain invitation and what only the store needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvitationRecord {
    pub invitation: Invitation,
    pub email_normalized: String,
    /// Per-invitation salt of the acceptance token; the token itself is never stored.
    pub token_nonce: String,
}

impl Member {
    /// The scope of the Idempotency-Keys this member sends.
    pub fn idempotency_scope(&self) -> IdempotencyScope {
        IdempotencyScope {
            business_id: self.business_id.clone(),
            user_id: self.user_id.clone(),
        }
    }
}

/// Whose Idempotency-Keys a record belongs to: the member who sent the request. A key is a
/// client's own name for its own request, so another member's key (or another business's) is
/// another key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyScope {
    pub business_id: BusinessId,
    pub user_id: UserId,
}

/// A stored idempotent response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// One entry of the seat ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub business_id: BusinessId,
    pub invitation_id: Option<InvitationId>,
    pub delta: i64,
    pub quantity_after: i64,
    pub reason: String,
    pub proration_date: DateTime<Utc>,
    pub renewal_date: DateTime<Utc>,
}

/// How long an operation waits for the database before it answers 503: long enough for a busy
/// pool, short enough that a client hears of an outage within about a second.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The configured database, and the deadline of every call to it.
#[derive(Clone)]
pub struct Store {
    db: Db,
    deadline: Duration,
}

#[derive(Clone)]
enum Db {
    Sqlite(sqlite::SqliteStore),
    Postgres(pg::PgStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.db {
            Db::Sqlite(_) => "Store::Sqlite",
            Db::Postgres(_) => "Store::Postgres",
        })
    }
}

/// Whether the caller of a transaction still waits for it: the store's deadline can pass while
/// the transaction runs on its own thread (a database that stopped answering holds that thread
/// until it answers again), and a transaction whose caller was told 503 must not commit later
/// if it can still be stopped. Whichever comes first wins: the commit's start, or the caller
/// giving up. Only a commit already sent when the deadline passes may still take effect, which
/// the 503 allows for (it never says that nothing changed).
#[derive(Debug, Default)]
pub(crate) struct Gate(std::sync::atomic::AtomicU8);

const RUNNING: u8 = 0;
const COMMITTING: u8 = 1;
const ABANDONED: u8 = 2;

impl Gate {
    /// The caller gave up.
    fn abandon(&self) {
        use std::sync::atomic::Ordering;
        let _ = self
            .0
            .compare_exchange(RUNNING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }

    /// Whether the caller gave up: the transaction's next statement fails instead of running.
    pub(crate) fn abandoned(&self) -> bool {
        self.0.load(std::sync::atomic::Ordering::Acquire) == ABANDONED
    }

    /// Whether the transaction may commit: `false` once the caller gave up.
    pub(crate) fn commit(&self) -> bool {
        use std::sync::atomic::Ordering;
        self.0
            .compare_exchange(RUNNING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

impl Store {
    /// Opens the database a URL names (`sqlite://PATH`, `sqlite://PATH?mode=ro`,
    /// `sqlite::memory:`, `postgres://...`)
    /// and brings its schema up to date.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        Store::open_with_timeout(url, DEFAULT_TIMEOUT)
    }

    /// [`Store::open`], giving up on reaching the database after `timeout` (PostgreSQL: the
    /// connect and the wait for a pooled connection; SQLite: the wait for a lock another process
    /// holds), after which an operation fails as an outage ([`StoreError::is_outage`]).
    ///
    /// The same `timeout` is the deadline of every later call ([`Store::transaction`],
    /// [`Store::read_only`]): past it the call fails as an outage, whatever the database is
    /// doing, and on PostgreSQL the server itself cancels a statement or ends an idle
    /// transaction that runs longer.
    pub fn open_with_timeout(url: &str, timeout: Duration) -> Result<Store, StoreError> {
        let db = Self::open_db(url, timeout)?;
        Ok(Store {
            db,
            deadline: timeout,
        })
    }

    fn open_db(url: &str, timeout: Duration) -> Result<Db, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Db::Postgres(pg::PgStore::open(url, timeout)?))
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            // `?mode=ro`: open the file for reading only (a copy to inspect, a volume mounted
            // read-only); writes then answer 503, and start-up and readiness say why.
            let (path, read_only) = match path.split_once('?') {
                None => (path, false),
                Some((path, "mode=ro")) => (path, true),
                Some((_, other)) => {
                    return Err(StoreError::Config(format!(
                        "unsupported SQLite option {other:?}: the only one is mode=ro"
                    )));
                }
            };
            Ok(Db::Sqlite(sqlite::SqliteStore::open_with(
                path, timeout, read_only,
            )?))
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
            )))
        }
    }

    /// How long a call to the database may take before it fails as an outage.
    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Whether the database takes no writes (a read-only SQLite file, a PostgreSQL standby or
    /// read-only default): every write would answer 503, so start-up and readiness say so.
    pub async fn read_only(&self) -> Result<bool, StoreError> {
        match &self.db {
            Db::Sqlite(s) => Ok(s.read_only()),
            Db::Postgres(s) => {
                let s = s.clone();
                let call = tokio::task::spawn_blocking(move || s.read_only());
                match tokio::time::timeout(self.deadline, call).await {
                    Ok(joined) => joined.map_err(|e| StoreError::Join(e.to_string()))?,
                    Err(_) => Err(StoreError::Deadline(self.deadline)),
                }
            }
        }
    }

    /// Runs `f` in one transaction (on SQLite, a savepoint of the writer's next group; on
    /// PostgreSQL, a transaction of its own on a blocking thread); commits when it returns
    /// `Ok`, rolls back when it returns `Err`, whether that is a refusal of the operation or a
    /// failure of the database (which `E` must be able to carry). It answers only once its
    /// change has committed, or with [`StoreError::Deadline`] once [`Store::deadline`] has
    /// passed, in which case the transaction is stopped before its commit if it has not
    /// started it ([`Gate`]).
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.transaction_within(Some(self.deadline), f).await
    }

    /// [`Store::transaction`] without the deadline on the caller's side: for work the process
    /// does for itself, whose transaction records what has already happened outside the
    /// database (an email the relay took). Giving up on such a transaction would leave it
    /// unrecorded while it may still commit, or not run at all, and the email sent again once its
    /// lease lapsed; it waits for the database instead, as long as the database takes (on
    /// PostgreSQL, each statement still ends at the server's `statement_timeout`).
    pub async fn transaction_to_the_end<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.transaction_within(None, f).await
    }

    async fn transaction_within<T, E, F>(&self, deadline: Option<Duration>, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let gate = std::sync::Arc::new(Gate::default());
        let call = async {
            match &self.db {
                // The writer skips an operation whose caller has gone.
                Db::Sqlite(s) => s.transaction(f).await,
                Db::Postgres(s) => {
                    let (s, gate) = (s.clone(), gate.clone());
                    tokio::task::spawn_blocking(move || s.transaction(f, &gate))
                        .await
                        .map_err(|e| E::from(StoreError::Join(e.to_string())))?
                }
            }
        };
        let Some(deadline) = deadline else {
            return call.await;
        };
        match tokio::time::timeout(deadline, call).await {
            Ok(result) => result,
            Err(_) => {
                gate.abandon();
                Err(E::from(StoreError::Deadline(deadline)))
            }
        }
    }
}

pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("time {ms} out of range")))
}

/// A stored name of one of the domain's named values, or the store's complaint that it is not.
pub(crate) fn parse_name<T: std::str::FromStr<Err = crate::domain::UnknownName>>(
    s: &str,
) -> Result<T, StoreError> {
    s.parse()
        .map_err(|e: crate::domain::UnknownName| StoreError::Corrupt(e.to_string()))
}

/// The schema's migrations, applied in order and recorded in `schema_migrations`. Each is
/// written once for both databases, with [`sql::Dialect`]'s tokens where they differ.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/0001_init.sql")),
    (2, include_str!("../../migrations/0002_delivery.sql")),
    (3, include_str!("../../migrations/0003_included_seats.sql")),
    (4, include_str!("../../migrations/0004_superseded.sql")),
    (5, include_str!("../../migrations/0005_email_counts.sql")),
    (6, include_str!("../../migrations/0006_claim_fence.sql")),
    (
        7,
        include_str!("../../migrations/0007_idempotency_per_caller.sql"),
    ),
    (
        8,
        include_str!("../../migrations/0008_waiting_by_invitation.sql"),
    ),
];

/// The schema version this build expects: its newest migration's.
pub const SCHEMA_VERSION: i64 = MIGRATIONS[MIGRATIONS.len() - 1].0;

static MIGRATION_APPLIED: Sql =
    Sql::new("SELECT COUNT(*) FROM schema_migrations WHERE version = $1");
static RECORD_MIGRATION: Sql =
    Sql::new("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)");

/// Brings the schema up to date, inside the caller's transaction (which holds whatever lock
/// keeps two processes from migrating at once).
fn migrate(conn: &mut dyn Conn) -> Result<(), StoreError> {
    conn.batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
    )?;
    for (version, script) in MIGRATIONS {
        let applied: i64 = tx::one(conn.query(&MIGRATION_APPLIED, params![version])?)?.get(0)?;
        if applied == 0 {
            conn.batch(&conn.dialect().render(script))?;
            conn.execute(&RECORD_MIGRATION, params![version, Utc::now()])?;
        }
    }
    Ok(())
}

/// An outbox row claimed for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: OutboxId,
    pub business_id: BusinessId,
    pub invitation_id: InvitationId,
    pub kind: EmailKind,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The claim's fence: the row's claim count as this claim set it. An outcome is recorded
    /// only while it is still the row's ([`Tx::outbox_delivered`] and the rest).
    pub claim: i64,
}

pub use crate::domain::delivery::EmailState as OutboxState;
