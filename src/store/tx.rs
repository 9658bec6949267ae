//! The primitives the application's transactions are made of ([`Tx`]), each written once over
//! [`Conn`], with every statement the application runs. The dialects differ only as
//! [`super::sql`] names.

use chrono::{DateTime, Utc};

use super::sql::{Conn, Row, Sql, Value, params};
use super::{Business, InvitationRecord, LedgerEntry, Member, OutboxRow, OutboxState};
use super::{IdempotencyScope, StoreError, StoredResponse};
use crate::domain::delivery::EmailKind;
use crate::domain::rules::start_of_utc_day;
use crate::domain::{BusinessId, Invitation, InvitationId, License, OutboxId, UserId};

/// One transaction; every method runs inside it. Made by [`super::Store::transaction`], which
/// commits or rolls it back.
pub struct Tx<'c> {
    conn: &'c mut dyn Conn,
}

static INSERT_BUSINESS: Sql = Sql::new(
    "INSERT INTO businesses (id, name, seat_quantity, renewal_date, billing_status, created_at, included_seats) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)",
);
static LOCK_BUSINESS: Sql = Sql::new(
    "SELECT id, name, seat_quantity, renewal_date, billing_status, included_seats, created_at \
     FROM businesses WHERE id = $1 {for_update}",
);
static UPDATE_BUSINESS_SEATS: Sql =
    Sql::new("UPDATE businesses SET seat_quantity = $2, renewal_date = $3 WHERE id = $1");

static INSERT_MEMBER: Sql = Sql::new(
    "INSERT INTO members (business_id, user_id, email, email_normalized, role, first_name, last_name, created_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
);
static MEMBER: Sql = Sql::new(
    "SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 AND user_id = $2",
);
static SET_MEMBER_ROLE: Sql =
    Sql::new("UPDATE members SET role = $3 WHERE business_id = $1 AND user_id = $2");
static MEMBER_BY_EMAIL: Sql = Sql::new(
    "SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 AND email_normalized = $2",
);
static MEMBERS: Sql = Sql::new(
    "SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 ORDER BY created_at, user_id",
);

/// The invitation columns every invitation query selects, in the order
/// [`invitation_record`] reads them, followed by the query's own clauses.
macro_rules! select_invitations {
    ($clauses:literal) => {
        Sql::new(concat!(
            "SELECT i.id, i.business_id, b.name, i.email, i.role, i.status, \
             i.created_at, i.expires_at, i.sent_at, i.resent_at, i.accepted_at, i.revoked_at, \
             i.send_failure_reason, i.license_billing_status, i.license_quantity, \
             i.license_renewal_date, i.license_activated_at, i.license_released_at, \
             i.email_normalized, i.token_nonce \
             FROM invitations i JOIN businesses b ON b.id = i.business_id ",
            $clauses
        ))
    };
}

static INVITATION: Sql = select_invitations!("WHERE i.business_id = $1 AND i.id = $2");
static INVITATION_BY_ID: Sql = select_invitations!("WHERE i.id = $1");
static OUTSTANDING_FOR_EMAIL: Sql = select_invitations!(
    "WHERE i.business_id = $1 AND i.email_normalized = $2 \
     AND i.status IN ('Pending', 'Resent', 'FailedToSend') AND i.expires_at > $3"
);
static LIST_INVITATIONS: Sql =
    select_invitations!("WHERE i.business_id = $1 ORDER BY i.created_at DESC, i.id DESC");
static EXPIRED_HOLDING_SEATS: Sql = select_invitations!(
    "WHERE i.license_activated_at IS NOT NULL AND i.license_released_at IS NULL AND i.expires_at <= $1 \
     AND i.status IN ('Pending', 'Resent', 'FailedToSend') ORDER BY i.expires_at LIMIT $2"
);

static INSERT_INVITATION: Sql = Sql::new(
    "INSERT INTO invitations (id, business_id, email, email_normalized, role, status, \
     token_nonce, created_at, expires_at, sent_at, resent_at, accepted_at, revoked_at, send_failure_reason, \
     license_billing_status, license_quantity, license_renewal_date, license_activated_at, license_released_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)",
);
/// Same parameter numbering as [`INSERT_INVITATION`]; identity columns are not updated.
static UPDATE_INVITATION: Sql = Sql::new(
    "UPDATE invitations SET email = $3, email_normalized = $4, role = $5, \
     status = $6, token_nonce = $7, created_at = $8, expires_at = $9, sent_at = $10, resent_at = $11, \
     accepted_at = $12, revoked_at = $13, send_failure_reason = $14, license_billing_status = $15, \
     license_quantity = $16, license_renewal_date = $17, license_activated_at = $18, license_released_at = $19 \
     WHERE id = $1 AND business_id = $2",
);

/// A new email, claimed at once (`claimed_until` and one claim) when the process that queues it
/// sends it itself.
static INSERT_OUTBOX: Sql = Sql::new(
    "INSERT INTO outbox (business_id, invitation_id, kind, created_at, due_at, claimed_until, claims) \
     VALUES ($1, $2, $3, $4, $4, $5, $6) RETURNING id",
);
/// Claims due rows: unsent, unfailed, due, and not claimed by a live lease. PostgreSQL skips
/// rows another replica is claiming at this moment instead of waiting for them; SQLite has one
/// writer at a time, so the plain claim is already exclusive.
static CLAIM_OUTBOX: Sql = Sql::new(
    "UPDATE outbox SET claimed_until = $2, claims = claims + 1 WHERE id IN (\
     SELECT id FROM outbox WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL AND due_at <= $1 \
     AND (claimed_until IS NULL OR claimed_until <= $1) ORDER BY due_at, id LIMIT $3 {skip_locked}) \
     RETURNING id, business_id, invitation_id, kind, attempts, claims",
);
/// The relay took the message. This is recorded even over a supersession: a worker whose claim
/// lapsed mid-send may still have sent it, and the record must say what happened. Every outcome
/// is fenced (`claims = $n`): only the newest claim of the row records one.
static OUTBOX_DELIVERED: Sql = Sql::new(
    "UPDATE outbox SET delivered_at = $2, superseded_at = NULL, attempts = attempts + 1, \
     claimed_until = NULL, last_error = NULL \
     WHERE id = $1 AND claims = $3 AND delivered_at IS NULL AND failed_at IS NULL",
);
/// A transient failure: due again at `$2`. Only while the row has not ended otherwise.
static OUTBOX_RETRY: Sql = Sql::new(
    "UPDATE outbox SET due_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = $3 \
     WHERE id = $1 AND claims = $4 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
);
/// A final failure. Only while the row has not ended otherwise.
static OUTBOX_FAILED: Sql = Sql::new(
    "UPDATE outbox SET failed_at = $2, attempts = attempts + 1, claimed_until = NULL, last_error = $3 \
     WHERE id = $1 AND claims = $4 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
);
/// A claim given back unstarted (a worker shutting down): due at once for whoever claims next,
/// its attempts unchanged. Only while the claim is still the worker's.
static OUTBOX_RELEASE: Sql = Sql::new(
    "UPDATE outbox SET claimed_until = NULL WHERE id = $1 AND claims = $2 \
     AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
);
/// Supersedes the invitation's emails still waiting: neither finished nor under a live claim. A
/// row a worker holds is being sent right now; it is left to finish and record what really
/// happened, so that no row ends both sent and cancelled.
static SUPERSEDE_WAITING_OUTBOX: Sql = Sql::new(
    "UPDATE outbox SET superseded_at = $2, claimed_until = NULL, last_error = $3 \
     WHERE invitation_id = $1 AND delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL \
     AND (claimed_until IS NULL OR claimed_until <= $2) RETURNING id",
);
/// The outbox's waiting rows (claimed or not) and the earliest due time among them: the claim's
/// partial index holds exactly these rows.
static OUTBOX_BACKLOG: Sql = Sql::new(
    "SELECT COUNT(*), MIN(due_at) FROM outbox \
     WHERE delivered_at IS NULL AND failed_at IS NULL AND superseded_at IS NULL",
);
/// Seats ever taken and given back, from the ledger (every replica's).
static SEAT_TOTALS: Sql = Sql::new(
    "SELECT CAST(COALESCE(SUM(CASE WHEN delta > 0 THEN delta ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN delta < 0 THEN 0 - delta ELSE 0 END), 0) AS BIGINT) FROM seat_ledger",
);
static OUTBOX_STATE: Sql = Sql::new(
    "SELECT attempts, delivered_at IS NOT NULL, failed_at IS NOT NULL, \
     superseded_at IS NOT NULL, last_error FROM outbox WHERE id = $1",
);
static SCHEMA_VERSION: Sql = Sql::new("SELECT MAX(version) FROM schema_migrations");
static OUTBOX_CLAIMS: Sql = Sql::new("SELECT claims FROM outbox WHERE id = $1");
static LATEST_OUTBOX_ID: Sql = Sql::new("SELECT MAX(id) FROM outbox WHERE invitation_id = $1");
/// Counts an email queued for the daily cap.
static COUNT_EMAIL: Sql = Sql::new(
    "INSERT INTO email_counts (business_id, day, emails) VALUES ($1, $2, 1) \
     ON CONFLICT (business_id, day) DO UPDATE SET emails = email_counts.emails + 1",
);
static EMAILS_ON: Sql =
    Sql::new("SELECT emails FROM email_counts WHERE business_id = $1 AND day = $2");
static COUNT_OUTBOX_FOR: Sql = Sql::new("SELECT COUNT(*) FROM outbox WHERE invitation_id = $1");

static INSERT_LEDGER: Sql = Sql::new(
    "INSERT INTO seat_ledger (business_id, invitation_id, delta, quantity_after, reason, proration_date, \
     renewal_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
);
static LEDGER: Sql = Sql::new(
    "SELECT business_id, invitation_id, delta, quantity_after, reason, proration_date, renewal_date \
     FROM seat_ledger WHERE business_id = $1 ORDER BY id",
);

static IDEMPOTENT_RESPONSE: Sql = Sql::new(
    "SELECT request_hash, status, body FROM idempotency_records \
     WHERE business_id = $1 AND user_id = $2 AND idempotency_key = $3 AND created_at >= $4",
);
static SAVE_IDEMPOTENT_RESPONSE: Sql = Sql::new(
    "INSERT INTO idempotency_records (business_id, user_id, idempotency_key, request_hash, status, \
     body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (business_id, user_id, idempotency_key) DO UPDATE SET \
     request_hash = excluded.request_hash, status = excluded.status, body = excluded.body, \
     created_at = excluded.created_at",
);
static UPDATE_IDEMPOTENT_BODY: Sql = Sql::new(
    "UPDATE idempotency_records SET body = $4 \
     WHERE business_id = $1 AND user_id = $2 AND idempotency_key = $3",
);

fn member(r: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        business_id: r.get(0)?,
        user_id: r.get(1)?,
        email: r.get(2)?,
        role: r.name(3)?,
    })
}

fn invitation_record(r: &Row) -> Result<InvitationRecord, StoreError> {
    let license = match r.get::<Option<i64>>(16)? {
        Some(activated) => Some(License {
            billing_status: super::parse_name(&r.get::<Option<String>>(13)?.unwrap_or_default())?,
            quantity: r.get::<Option<i64>>(14)?.unwrap_or_default(),
            renewal_date: super::time(r.get::<Option<i64>>(15)?.unwrap_or(activated))?,
            activated_at: super::time(activated)?,
            released_at: r.opt_time(17)?,
        }),
        None => None,
    };
    Ok(InvitationRecord {
        invitation: Invitation {
            id: r.get(0)?,
            business_id: r.get(1)?,
            business_name: r.get(2)?,
            email: r.get(3)?,
            role: r.name(4)?,
            status: r.name(5)?,
            created_at: r.time(6)?,
            expires_at: r.time(7)?,
            sent_at: r.opt_time(8)?,
            resent_at: r.opt_time(9)?,
            accepted_at: r.opt_time(10)?,
            revoked_at: r.opt_time(11)?,
            send_failure_reason: r.get(12)?,
            license,
        },
        email_normalized: r.get(18)?,
        token_nonce: r.get(19)?,
    })
}

fn count(rows: Vec<Row>) -> Result<u32, StoreError> {
    let n: i64 = one(rows)?.get(0)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// The one row of an aggregate.
pub(super) fn one(rows: Vec<Row>) -> Result<Row, StoreError> {
    rows.into_iter()
        .next()
        .ok_or_else(|| StoreError::Corrupt("an aggregate returned no row".into()))
}

impl<'c> Tx<'c> {
    pub(crate) fn new(conn: &'c mut dyn Conn) -> Self {
        Tx { conn }
    }

    /// The first row `sql` returns, read by `read`.
    fn first<T>(
        &mut self,
        sql: &'static Sql,
        params: &[Value<'_>],
        read: impl FnOnce(&Row) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        self.conn.query(sql, params)?.first().map(read).transpose()
    }

    /// Every row `sql` returns, each read by `read`.
    fn all<T>(
        &mut self,
        sql: &'static Sql,
        params: &[Value<'_>],
        read: impl FnMut(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        self.conn.query(sql, params)?.iter().map(read).collect()
    }

    fn invitations(
        &mut self,
        sql: &'static Sql,
        params: &[Value<'_>],
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.all(sql, params, invitation_record)
    }

    fn write_invitation(
        &mut self,
        sql: &'static Sql,
        r: &InvitationRecord,
    ) -> Result<u64, StoreError> {
        let i = &r.invitation;
        let l = i.license.as_ref();
        self.conn.execute(
            sql,
            params![
                i.id,
                i.business_id,
                i.email,
                r.email_normalized,
                i.role.as_str(),
                i.status.as_str(),
                r.token_nonce,
                i.created_at,
                i.expires_at,
                i.sent_at,
                i.resent_at,
                i.accepted_at,
                i.revoked_at,
                i.send_failure_reason,
                l.map(|l| l.billing_status.as_str()),
                l.map(|l| l.quantity),
                l.map(|l| l.renewal_date),
                l.map(|l| l.activated_at),
                l.and_then(|l| l.released_at),
            ],
        )
    }

    pub fn insert_business(&mut self, b: &Business, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            &INSERT_BUSINESS,
            params![
                b.id,
                b.name,
                b.seat_quantity,
                b.renewal_date,
                b.billing_status.as_str(),
                now,
                b.included_seats
            ],
        )?;
        Ok(())
    }

    /// Locks the business for the rest of the transaction and returns it.
    pub fn lock_business(&mut self, id: &BusinessId) -> Result<Option<Business>, StoreError> {
        self.first(&LOCK_BUSINESS, params![id], |r| {
            Ok(Business {
                id: r.get(0)?,
                name: r.get(1)?,
                seat_quantity: r.get(2)?,
                renewal_date: r.time(3)?,
                billing_status: r.name(4)?,
                included_seats: r.get(5)?,
                billing_anchor: r.time(6)?,
            })
        })
    }

    pub fn update_business_seats(
        &mut self,
        id: &BusinessId,
        quantity: i64,
        renewal_date: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(&UPDATE_BUSINESS_SEATS, params![id, quantity, renewal_date])?;
        Ok(())
    }

    pub fn insert_member(
        &mut self,
        m: &Member,
        first_name: Option<&str>,
        last_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &INSERT_MEMBER,
            params![
                m.business_id,
                m.user_id,
                m.email,
                m.email.to_lowercase(),
                m.role.as_str(),
                first_name,
                last_name,
                now
            ],
        )?;
        Ok(())
    }

    pub fn member(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.first(&MEMBER, params![business_id, user_id], member)
    }

    /// Gives a member another role (Leadping's members API does; this server's tests do, to
    /// prove that a role taken away is not still exercised through a replay).
    pub fn set_member_role(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
        role: crate::domain::Role,
    ) -> Result<bool, StoreError> {
        let n = self.conn.execute(
            &SET_MEMBER_ROLE,
            params![business_id, user_id, role.as_str()],
        )?;
        Ok(n == 1)
    }

    pub fn member_by_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.first(
            &MEMBER_BY_EMAIL,
            params![business_id, email_normalized],
            member,
        )
    }

    pub fn members(&mut self, business_id: &BusinessId) -> Result<Vec<Member>, StoreError> {
        self.all(&MEMBERS, params![business_id], member)
    }

    pub fn insert_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError> {
        self.write_invitation(&INSERT_INVITATION, r)?;
        Ok(())
    }

    pub fn update_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError> {
        match self.write_invitation(&UPDATE_INVITATION, r)? {
            1 => Ok(()),
            n => Err(StoreError::Corrupt(format!(
                "updating invitation {} touched {n} rows",
                r.invitation.id
            ))),
        }
    }

    pub fn invitation(
        &mut self,
        business_id: &BusinessId,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        Ok(self
            .invitations(&INVITATION, params![business_id, id])?
            .pop())
    }

    pub fn invitation_by_id(
        &mut self,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        Ok(self.invitations(&INVITATION_BY_ID, params![id])?.pop())
    }

    /// Invitations of the business for this email that are outstanding at `now`.
    pub fn outstanding_for_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.invitations(
            &OUTSTANDING_FOR_EMAIL,
            params![business_id, email_normalized, now],
        )
    }

    /// Newest first.
    pub fn list_invitations(
        &mut self,
        business_id: &BusinessId,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.invitations(&LIST_INVITATIONS, params![business_id])
    }

    /// Outstanding invitations past `expires_at` that still hold a seat, oldest first.
    pub fn expired_holding_seats(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.invitations(&EXPIRED_HOLDING_SEATS, params![now, limit])
    }

    /// Queues an email and counts it in its business's emails of the (UTC) day; returns the
    /// outbox row's id.
    /// Queues an email, due now; claimed until `claim_until` (its first claim) when given.
    pub fn insert_outbox(
        &mut self,
        business_id: &BusinessId,
        invitation_id: &InvitationId,
        kind: EmailKind,
        now: DateTime<Utc>,
        claim_until: Option<DateTime<Utc>>,
    ) -> Result<OutboxRow, StoreError> {
        let claims = i64::from(claim_until.is_some());
        let rows = self.conn.query(
            &INSERT_OUTBOX,
            params![
                business_id,
                invitation_id,
                kind.as_str(),
                now,
                claim_until,
                claims
            ],
        )?;
        Ok(OutboxRow {
            id: one(rows)?.get(0)?,
            business_id: business_id.clone(),
            invitation_id: invitation_id.clone(),
            kind,
            attempts: 0,
            claim: claims,
        })
    }

    /// Counts an email queued at `now` towards its business's daily cap ([`Tx::emails_on`]).
    pub fn count_email(
        &mut self,
        business_id: &BusinessId,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(&COUNT_EMAIL, params![business_id, start_of_utc_day(now)])?;
        Ok(())
    }

    /// Claims up to `limit` due rows until `lease_until`, in id order.
    pub fn claim_outbox(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut out = self
            .conn
            .query(&CLAIM_OUTBOX, params![now, lease_until, limit])?
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    business_id: r.get(1)?,
                    invitation_id: r.get(2)?,
                    kind: r.name(3)?,
                    attempts: r.get(4)?,
                    claim: r.get(5)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // RETURNING has no order of its own.
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    /// The relay took the message; `false` when the row had already ended or `row`'s claim is no
    /// longer the newest (the outcome is then not recorded).
    pub fn outbox_delivered(
        &mut self,
        row: &OutboxRow,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute(&OUTBOX_DELIVERED, params![row.id, now, row.claim])?
            > 0)
    }

    /// A transient failure: try again at `due_at`; `false` when the row had already ended or
    /// the claim is no longer the newest.
    pub fn outbox_retry(
        &mut self,
        row: &OutboxRow,
        due_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute(&OUTBOX_RETRY, params![row.id, due_at, error, row.claim])?
            > 0)
    }

    /// A final failure, never retried; `false` when the row had already ended or the claim is
    /// no longer the newest.
    pub fn outbox_failed(
        &mut self,
        row: &OutboxRow,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute(&OUTBOX_FAILED, params![row.id, now, error, row.claim])?
            > 0)
    }

    /// Gives back a claim whose send never started, so that the row is due at once for the
    /// next claim (here or on another replica); `false` when the claim was no longer the newest.
    pub fn outbox_release(&mut self, row: &OutboxRow) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .execute(&OUTBOX_RELEASE, params![row.id, row.claim])?
            > 0)
    }

    /// Supersedes the invitation's rows still waiting (not ended, not under a live claim) with
    /// `reason`; returns their ids.
    pub fn outbox_supersede_waiting(
        &mut self,
        invitation_id: &InvitationId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<OutboxId>, StoreError> {
        self.all(
            &SUPERSEDE_WAITING_OUTBOX,
            params![invitation_id, now, reason],
            |r| r.get(0),
        )
    }

    pub fn outbox_state(&mut self, id: OutboxId) -> Result<Option<OutboxState>, StoreError> {
        self.first(&OUTBOX_STATE, params![id], |r| {
            Ok(OutboxState {
                attempts: r.get(0)?,
                delivered: r.get(1)?,
                failed: r.get(2)?,
                superseded: r.get(3)?,
                last_error: r.get(4)?,
            })
        })
    }

    /// How many emails wait to be sent, and since when the earliest of them is due.
    pub fn outbox_backlog(&mut self) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
        let rows = self.conn.query(&OUTBOX_BACKLOG, params![])?;
        let row = one(rows)?;
        let due: Option<i64> = row.get(1)?;
        Ok((row.get(0)?, due.map(super::time).transpose()?))
    }

    /// Seats taken and seats given back since the database began (from the seat ledger).
    pub fn seat_totals(&mut self) -> Result<(i64, i64), StoreError> {
        let rows = self.conn.query(&SEAT_TOTALS, params![])?;
        let row = one(rows)?;
        Ok((row.get(0)?, row.get(1)?))
    }

    /// The newest migration applied to the database (see [`super::SCHEMA_VERSION`]).
    pub fn schema_version(&mut self) -> Result<Option<i64>, StoreError> {
        one(self.conn.query(&SCHEMA_VERSION, params![])?)?.get(0)
    }

    /// How many times the row has been claimed: the fence of its newest claim.
    pub fn outbox_claim_of(&mut self, id: OutboxId) -> Result<Option<i64>, StoreError> {
        self.first(&OUTBOX_CLAIMS, params![id], |r| r.get(0))
    }

    /// The newest outbox row of an invitation.
    pub fn latest_outbox_id(
        &mut self,
        invitation_id: &InvitationId,
    ) -> Result<Option<OutboxId>, StoreError> {
        one(self.conn.query(&LATEST_OUTBOX_ID, params![invitation_id])?)?.get(0)
    }

    /// Replaces the body of a stored idempotent response (after the delivery wait).
    pub fn update_idempotent_body(
        &mut self,
        scope: &IdempotencyScope,
        key: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &UPDATE_IDEMPOTENT_BODY,
            params![scope.business_id, scope.user_id, key, body],
        )?;
        Ok(())
    }

    /// Emails the business queued on the UTC day that starts at `day` (every one counts, sent,
    /// failed or superseded).
    pub fn emails_on(
        &mut self,
        business_id: &BusinessId,
        day: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let rows = self.conn.query(&EMAILS_ON, params![business_id, day])?;
        match rows.first() {
            Some(row) => Ok(u32::try_from(row.get::<i64>(0)?).unwrap_or(u32::MAX)),
            None => Ok(0),
        }
    }

    pub fn count_outbox_for(&mut self, invitation_id: &InvitationId) -> Result<u32, StoreError> {
        count(self.conn.query(&COUNT_OUTBOX_FOR, params![invitation_id])?)
    }

    pub fn insert_ledger(&mut self, e: &LedgerEntry, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.conn.execute(
            &INSERT_LEDGER,
            params![
                e.business_id,
                e.invitation_id,
                e.delta,
                e.quantity_after,
                e.reason,
                e.proration_date,
                e.renewal_date,
                now
            ],
        )?;
        Ok(())
    }

    pub fn ledger(&mut self, business_id: &BusinessId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.all(&LEDGER, params![business_id], |r| {
            Ok(LedgerEntry {
                business_id: r.get(0)?,
                invitation_id: r.get(1)?,
                delta: r.get(2)?,
                quantity_after: r.get(3)?,
                reason: r.get(4)?,
                proration_date: r.time(5)?,
                renewal_date: r.time(6)?,
            })
        })
    }

    pub fn idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        self.first(
            &IDEMPOTENT_RESPONSE,
            params![scope.business_id, scope.user_id, key, since],
            |r| {
                let status: i64 = r.get(1)?;
                Ok(StoredResponse {
                    request_hash: r.get(0)?,
                    status: u16::try_from(status).map_err(|_| {
                        StoreError::Corrupt(format!("stored status {status} out of range"))
                    })?,
                    body: r.get(2)?,
                })
            },
        )
    }

    pub fn save_idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
        key: &str,
        r: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            &SAVE_IDEMPOTENT_RESPONSE,
            params![
                scope.business_id,
                scope.user_id,
                key,
                r.request_hash,
                i64::from(r.status),
                r.body,
                now
            ],
        )?;
        Ok(())
    }
}
