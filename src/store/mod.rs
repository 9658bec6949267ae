//! Persistence behind one interface: SQLite (embedded, the default) and PostgreSQL (shared by
//! several replicas).
//!
//! Design: the application's operations are written once, as synchronous functions over the
//! [`Tx`] trait, and each runs as one blocking call inside one database transaction
//! ([`Store::transaction`]). Every operation that changes a business's state first takes that
//! business's row lock ([`Tx::lock_business`]: `SELECT ... FOR UPDATE` on PostgreSQL; SQLite's
//! `BEGIN IMMEDIATE` holds the single write lock already), so limits, seat counts and idempotency
//! records of one business are decided by one transaction at a time, however many replicas run.
//!
//! Times are milliseconds since the Unix epoch in both databases. Some statements (the
//! invitation and outbox ones here) are written once in PostgreSQL's `$n` style and rewritten to
//! `?n` for SQLite; most are still written twice, once per driver in `sqlite.rs` and `pg.rs`:
//! rebuilding the store with every statement written once is the performance issue's work.
//!
//! Used by the application layer (and billing) only; must never import the API, the mail
//! transport or the application layer.

mod ids;
pub mod pg;
pub mod sqlite;

use chrono::{DateTime, TimeZone, Utc};

use crate::domain::delivery::EmailKind;
use crate::domain::{
    BusinessId, Invitation, InvitationId, License, OutboxId, Role, SubscriptionStatus, UserId,
};

/// A failure of the database itself (not of a business rule): a 500 with the cause logged.
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
    #[error("{0}")]
    Config(String),
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

/// The primitives the application's transactions are made of. Every method runs inside the
/// transaction it was called on.
pub trait Tx {
    fn insert_business(&mut self, b: &Business, now: DateTime<Utc>) -> Result<(), StoreError>;
    /// Locks the business for the rest of the transaction and returns it.
    fn lock_business(&mut self, id: &BusinessId) -> Result<Option<Business>, StoreError>;
    fn update_business_seats(
        &mut self,
        id: &BusinessId,
        quantity: i64,
        renewal_date: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    fn insert_member(
        &mut self,
        m: &Member,
        first_name: Option<&str>,
        last_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    fn member(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
    ) -> Result<Option<Member>, StoreError>;
    fn member_by_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
    ) -> Result<Option<Member>, StoreError>;
    fn members(&mut self, business_id: &BusinessId) -> Result<Vec<Member>, StoreError>;

    fn insert_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError>;
    fn update_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError>;
    fn invitation(
        &mut self,
        business_id: &BusinessId,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError>;
    fn invitation_by_id(
        &mut self,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError>;
    /// Invitations of the business for this email that are outstanding at `now`.
    fn outstanding_for_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<InvitationRecord>, StoreError>;
    /// Newest first.
    fn list_invitations(
        &mut self,
        business_id: &BusinessId,
    ) -> Result<Vec<InvitationRecord>, StoreError>;
    /// Outstanding invitations past `expires_at` that still hold a seat, oldest first.
    fn expired_holding_seats(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError>;

    /// Queues an email; returns the outbox row's id.
    fn insert_outbox(
        &mut self,
        business_id: &BusinessId,
        invitation_id: &InvitationId,
        kind: EmailKind,
        now: DateTime<Utc>,
    ) -> Result<OutboxId, StoreError>;
    /// Claims up to `limit` due rows until `lease_until`.
    fn claim_outbox(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;
    /// The relay took the message; `false` when the row had already ended.
    fn outbox_delivered(&mut self, id: OutboxId, now: DateTime<Utc>) -> Result<bool, StoreError>;
    /// A transient failure: try again at `due_at`; `false` when the row had already ended.
    fn outbox_retry(
        &mut self,
        id: OutboxId,
        due_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError>;
    /// A final failure, never retried; `false` when the row had already ended.
    fn outbox_failed(
        &mut self,
        id: OutboxId,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError>;
    /// Supersedes the invitation's rows still waiting (not ended, not under a live claim) with
    /// `reason`; returns their ids.
    fn outbox_supersede_waiting(
        &mut self,
        invitation_id: &InvitationId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<OutboxId>, StoreError>;
    fn outbox_state(&mut self, id: OutboxId) -> Result<Option<OutboxState>, StoreError>;
    /// The newest outbox row of an invitation.
    fn latest_outbox_id(
        &mut self,
        invitation_id: &InvitationId,
    ) -> Result<Option<OutboxId>, StoreError>;
    /// Replaces the body of a stored idempotent response (after the delivery wait).
    fn update_idempotent_body(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        body: &str,
    ) -> Result<(), StoreError>;
    fn count_emails_since(
        &mut self,
        business_id: &BusinessId,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError>;
    fn count_outbox_for(&mut self, invitation_id: &InvitationId) -> Result<u32, StoreError>;

    fn insert_ledger(&mut self, e: &LedgerEntry, now: DateTime<Utc>) -> Result<(), StoreError>;
    fn ledger(&mut self, business_id: &BusinessId) -> Result<Vec<LedgerEntry>, StoreError>;

    fn idempotent_response(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<StoredResponse>, StoreError>;
    fn save_idempotent_response(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        r: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// The configured database.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(pg::PgStore),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Store::Sqlite(_) => "Store::Sqlite",
            Store::Postgres(_) => "Store::Postgres",
        })
    }
}

impl Store {
    /// Opens the database a URL names (`sqlite://PATH`, `sqlite::memory:`, `postgres://...`)
    /// and brings its schema up to date.
    pub fn open(url: &str) -> Result<Store, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Store::Postgres(pg::PgStore::open(url)?))
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Ok(Store::Sqlite(sqlite::SqliteStore::open(path)?))
        } else {
            Err(StoreError::Config(format!(
                "unsupported database URL {url:?}: use sqlite://PATH or postgres://..."
            )))
        }
    }

    /// Runs `f` in one transaction on a blocking thread; commits when it returns `Ok`, rolls
    /// back when it returns `Err`, whether that is a refusal of the operation or a failure of the
    /// database (which `E` must be able to carry).
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn Tx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let store = self.clone();
        tokio::task::spawn_blocking(move || match store {
            Store::Sqlite(s) => s.transaction(f),
            Store::Postgres(s) => s.transaction(f),
        })
        .await
        .map_err(|e| E::from(StoreError::Join(e.to_string())))?
    }
}

/// `$1` -> `?1`, so one SQL text serves both databases. Only placeholders are touched; the
/// statements contain no `$` anywhere else.
pub(crate) fn sqlite_sql(sql: &str) -> String {
    sql.replace('$', "?")
}

pub(crate) fn millis(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .ok_or_else(|| StoreError::Corrupt(format!("time {ms} out of range")))
}

pub(crate) fn opt_time(ms: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    ms.map(time).transpose()
}

/// A stored name of one of the domain's named values, or the store's complaint that it is not.
pub(crate) fn parse_name<T: std::str::FromStr<Err = crate::domain::UnknownName>>(
    s: &str,
) -> Result<T, StoreError> {
    s.parse()
        .map_err(|e: crate::domain::UnknownName| StoreError::Corrupt(e.to_string()))
}

/// The invitation columns every query selects, in the order [`InvitationColumns`] reads them.
pub(crate) const INVITATION_SELECT: &str = "SELECT i.id, i.business_id, b.name, i.email, i.role, i.status, \
     i.created_at, i.expires_at, i.sent_at, i.resent_at, i.accepted_at, i.revoked_at, i.send_failure_reason, \
     i.license_billing_status, i.license_quantity, i.license_renewal_date, i.license_activated_at, \
     i.license_released_at, i.email_normalized, i.token_nonce \
     FROM invitations i JOIN businesses b ON b.id = i.business_id";

/// Column access common to both drivers' rows.
pub(crate) trait InvitationColumns {
    fn text(&self, i: usize) -> Result<String, StoreError>;
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;

    fn invitation_record(&self) -> Result<InvitationRecord, StoreError> {
        let license = match self.opt_int(16)? {
            Some(activated) => Some(License {
                billing_status: parse_name(&self.opt_text(13)?.unwrap_or_default())?,
                quantity: self.opt_int(14)?.unwrap_or_default(),
                renewal_date: time(self.opt_int(15)?.unwrap_or(activated))?,
                activated_at: time(activated)?,
                released_at: opt_time(self.opt_int(17)?)?,
            }),
            None => None,
        };
        Ok(InvitationRecord {
            invitation: Invitation {
                id: InvitationId::from_stored(self.text(0)?),
                business_id: BusinessId::from_stored(self.text(1)?),
                business_name: self.text(2)?,
                email: self.text(3)?,
                role: parse_name(&self.text(4)?)?,
                status: parse_name(&self.text(5)?)?,
                created_at: time(self.int(6)?)?,
                expires_at: time(self.int(7)?)?,
                sent_at: opt_time(self.opt_int(8)?)?,
                resent_at: opt_time(self.opt_int(9)?)?,
                accepted_at: opt_time(self.opt_int(10)?)?,
                revoked_at: opt_time(self.opt_int(11)?)?,
                send_failure_reason: self.opt_text(12)?,
                license,
            },
            email_normalized: self.text(18)?,
            token_nonce: self.text(19)?,
        })
    }
}

/// The values of an invitation row in the order of the INSERT/UPDATE statements below.
pub(crate) struct InvitationValues {
    pub id: InvitationId,
    pub business_id: BusinessId,
    pub email: String,
    pub email_normalized: String,
    pub role: &'static str,
    pub status: &'static str,
    pub token_nonce: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub sent_at: Option<i64>,
    pub resent_at: Option<i64>,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub send_failure_reason: Option<String>,
    pub license_billing_status: Option<&'static str>,
    pub license_quantity: Option<i64>,
    pub license_renewal_date: Option<i64>,
    pub license_activated_at: Option<i64>,
    pub license_released_at: Option<i64>,
}

impl InvitationValues {
    pub fn of(r: &InvitationRecord) -> Self {
        let i = &r.invitation;
        let l = i.license.as_ref();
        InvitationValues {
            id: i.id.clone(),
            business_id: i.business_id.clone(),
            email: i.email.clone(),
            email_normalized: r.email_normalized.clone(),
            role: i.role.as_str(),
            status: i.status.as_str(),
            token_nonce: r.token_nonce.clone(),
            created_at: millis(i.created_at),
            expires_at: millis(i.expires_at),
            sent_at: i.sent_at.map(millis),
            resent_at: i.resent_at.map(millis),
            accepted_at: i.accepted_at.map(millis),
            revoked_at: i.revoked_at.map(millis),
            send_failure_reason: i.send_failure_reason.clone(),
            license_billing_status: l.map(|l| l.billing_status.as_str()),
            license_quantity: l.map(|l| l.quantity),
            license_renewal_date: l.map(|l| millis(l.renewal_date)),
            license_activated_at: l.map(|l| millis(l.activated_at)),
            license_released_at: l.and_then(|l| l.released_at.map(millis)),
        }
    }
}

pub(crate) const INSERT_INVITATION: &str = "INSERT INTO invitations (id, business_id, email, email_normalized, role, status, \
     token_nonce, created_at, expires_at, sent_at, resent_at, accepted_at, revoked_at, send_failure_reason, \
     license_billing_status, license_quantity, license_renewal_date, license_activated_at, license_released_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)";

/// Same parameter numbering as [`INSERT_INVITATION`]; identity columns are not updated.
pub(crate) const UPDATE_INVITATION: &str = "UPDATE invitations SET email = $3, email_normalized = $4, role = $5, \
     status = $6, token_nonce = $7, created_at = $8, expires_at = $9, sent_at = $10, resent_at = $11, \
     accepted_at = $12, revoked_at = $13, send_failure_reason = $14, license_billing_status = $15, \
     license_quantity = $16, license_renewal_date = $17, license_activated_at = $18, license_released_at = $19 \
     WHERE id = $1 AND business_id = $2";

// The outbox statements below are written for PostgreSQL; SQLite runs them through
// [`sqlite_sql`], like the invitation statements.

/// Supersedes the invitation's emails still waiting: neither finished nor under a live claim. A
/// row a worker holds is being sent right now; it is left to finish and record what really
/// happened, so that no row ends both sent and cancelled.
pub(crate) const SUPERSEDE_WAITING_OUTBOX: &str = "UPDATE outbox SET superseded_at = $2, claimed_until = NULL, last_error = $3 \
     WHERE invitation_id = $1 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL \
     AND (claimed_until IS NULL OR claimed_until <= $2) RETURNING id";

/// The relay took the message. This is recorded even over a supersession: a worker whose claim
/// lapsed mid-send may still have sent it, and the record must say what happened.
pub(crate) const OUTBOX_DELIVERED: &str = "UPDATE outbox SET delivered_at = $2, superseded_at = NULL, attempts = attempts + 1, \
     claimed_until = NULL, last_error = NULL WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL";
/// A transient failure: due again at `$2`. Only while the row has not ended otherwise.
pub(crate) const OUTBOX_RETRY: &str = "UPDATE outbox SET due_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = $3 \
     WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL";
/// A final failure. Only while the row has not ended otherwise.
pub(crate) const OUTBOX_FAILED: &str = "UPDATE outbox SET failed_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = $3 \
     WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL";
pub(crate) const OUTBOX_STATE: &str = "SELECT attempts, delivered_at IS NOT NULL, failed_at IS NOT NULL, \
     superseded_at IS NOT NULL, last_error FROM outbox WHERE id = $1";

/// The schema migrations of each database, applied in order and recorded in
/// `schema_migrations`.
pub(crate) const SQLITE_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/sqlite/0001_init.sql")),
    (2, include_str!("../../migrations/sqlite/0002_delivery.sql")),
    (
        3,
        include_str!("../../migrations/sqlite/0003_included_seats.sql"),
    ),
    (
        4,
        include_str!("../../migrations/sqlite/0004_superseded.sql"),
    ),
];
pub(crate) const POSTGRES_MIGRATIONS: &[(i64, &str)] = &[
    (1, include_str!("../../migrations/postgres/0001_init.sql")),
    (
        2,
        include_str!("../../migrations/postgres/0002_delivery.sql"),
    ),
    (
        3,
        include_str!("../../migrations/postgres/0003_included_seats.sql"),
    ),
    (
        4,
        include_str!("../../migrations/postgres/0004_superseded.sql"),
    ),
];

/// An outbox row claimed for sending.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: OutboxId,
    pub business_id: BusinessId,
    pub invitation_id: InvitationId,
    pub kind: EmailKind,
    /// Attempts made before this one.
    pub attempts: i64,
}

pub use crate::domain::delivery::EmailState as OutboxState;

/// Claims due rows: unsent, unfailed, due, and not claimed by a live lease. PostgreSQL skips rows
/// another replica is claiming at this moment instead of waiting for them.
pub(crate) const CLAIM_OUTBOX_PG: &str = "UPDATE outbox SET claimed_until = $2 WHERE id IN (\
     SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL AND due_at <= $1 \
     AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
     RETURNING id, business_id, invitation_id, kind, attempts";
/// SQLite has one writer at a time, so the plain claim is already exclusive.
pub(crate) const CLAIM_OUTBOX_SQLITE: &str = "UPDATE outbox SET claimed_until = ?2 WHERE id IN (\
     SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL AND due_at <= ?1 \
     AND (claimed_until IS NULL OR claimed_until <= ?1) ORDER BY due_at, id LIMIT ?3) \
     RETURNING id, business_id, invitation_id, kind, attempts";
