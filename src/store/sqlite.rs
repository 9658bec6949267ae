//! SQLite through rusqlite: one connection, one writer, each operation one blocking call inside
//! one `BEGIN IMMEDIATE` transaction. WAL keeps readers of other processes (a backup, an
//! inspection) off the writer's path.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::*;

#[derive(Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`; `:memory:` for a private in-memory one.
    pub fn open(path: &str) -> Result<Self, StoreError> {
        let conn = if path == ":memory:" {
            Connection::open_in_memory()?
        } else {
            if let Some(dir) = std::path::Path::new(path)
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
            {
                std::fs::create_dir_all(dir).map_err(|e| {
                    StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                })?;
            }
            Connection::open(path)?
        };
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let store = SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)")?;
        for (version, sql) in SQLITE_MIGRATIONS {
            let done: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = ?1)",
                [version],
                |r| r.get(0),
            )?;
            if !done {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
                    params![version, millis(Utc::now())],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut dyn Tx) -> Result<T, E>,
    ) -> Result<T, E> {
        // A poisoned lock only means another operation panicked mid-transaction; its transaction
        // was rolled back when dropped, so the connection is fine to use.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let result = f(&mut SqliteTx { tx: &tx });
        if result.is_ok() {
            tx.commit().map_err(StoreError::from)?;
        } else {
            // The refusal or failure is what the caller needs to hear; a transaction that also
            // fails to roll back is rolled back when dropped.
            let _ = tx.rollback();
        }
        result
    }
}

struct SqliteTx<'a> {
    tx: &'a rusqlite::Transaction<'a>,
}

impl InvitationColumns for Row<'_> {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.get(i)?)
    }
}

impl SqliteTx<'_> {
    fn invitations(
        &self,
        where_clause: &str,
        params: &[&dyn rusqlite::ToSql],
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        let sql = sqlite_sql(&format!("{INVITATION_SELECT} {where_clause}"));
        let mut stmt = self.tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(params)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(row.invitation_record()?);
        }
        Ok(out)
    }

    fn write_invitation(&self, sql: &str, r: &InvitationRecord) -> Result<usize, StoreError> {
        let v = InvitationValues::of(r);
        Ok(self.tx.prepare_cached(&sqlite_sql(sql))?.execute(params![
            v.id,
            v.business_id,
            v.email,
            v.email_normalized,
            v.role,
            v.status,
            v.token_nonce,
            v.created_at,
            v.expires_at,
            v.sent_at,
            v.resent_at,
            v.accepted_at,
            v.revoked_at,
            v.send_failure_reason,
            v.license_billing_status,
            v.license_quantity,
            v.license_renewal_date,
            v.license_activated_at,
            v.license_released_at,
        ])?)
    }
}

fn member_from(row: &Row<'_>) -> rusqlite::Result<(BusinessId, UserId, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn member(t: (BusinessId, UserId, String, String)) -> Result<Member, StoreError> {
    Ok(Member {
        business_id: t.0,
        user_id: t.1,
        email: t.2,
        role: parse_name(&t.3)?,
    })
}

impl Tx for SqliteTx<'_> {
    fn insert_business(&mut self, b: &Business, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO businesses (id, name, seat_quantity, renewal_date, billing_status, created_at, included_seats) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![b.id, b.name, b.seat_quantity, millis(b.renewal_date), b.billing_status.as_str(), millis(now), b.included_seats],
        )?;
        Ok(())
    }

    fn lock_business(&mut self, id: &BusinessId) -> Result<Option<Business>, StoreError> {
        let row = self
            .tx
            .prepare_cached("SELECT id, name, seat_quantity, renewal_date, billing_status, included_seats, created_at FROM businesses WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get::<_, BusinessId>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get::<_, i64>(3)?, r.get::<_, String>(4)?, r.get::<_, i64>(5)?, r.get::<_, i64>(6)?)))
            .optional()?;
        row.map(
            |(id, name, seat_quantity, renewal, billing_status, included_seats, created)| {
                Ok(Business {
                    id,
                    name,
                    seat_quantity,
                    included_seats,
                    renewal_date: time(renewal)?,
                    billing_anchor: time(created)?,
                    billing_status: parse_name(&billing_status)?,
                })
            },
        )
        .transpose()
    }

    fn update_business_seats(
        &mut self,
        id: &BusinessId,
        quantity: i64,
        renewal_date: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "UPDATE businesses SET seat_quantity = ?2, renewal_date = ?3 WHERE id = ?1",
            )?
            .execute(params![id, quantity, millis(renewal_date)])?;
        Ok(())
    }

    fn insert_member(
        &mut self,
        m: &Member,
        first_name: Option<&str>,
        last_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx.prepare_cached(
            "INSERT INTO members (business_id, user_id, email, email_normalized, role, first_name, last_name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![m.business_id, m.user_id, m.email, m.email.to_lowercase(), m.role.as_str(), first_name, last_name, millis(now)])?;
        Ok(())
    }

    fn member(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.tx
            .prepare_cached("SELECT business_id, user_id, email, role FROM members WHERE business_id = ?1 AND user_id = ?2")?
            .query_row(params![business_id, user_id], member_from)
            .optional()?
            .map(member)
            .transpose()
    }

    fn member_by_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.tx
            .prepare_cached("SELECT business_id, user_id, email, role FROM members WHERE business_id = ?1 AND email_normalized = ?2")?
            .query_row(params![business_id, email_normalized], member_from)
            .optional()?
            .map(member)
            .transpose()
    }

    fn members(&mut self, business_id: &BusinessId) -> Result<Vec<Member>, StoreError> {
        let mut stmt = self.tx.prepare_cached("SELECT business_id, user_id, email, role FROM members WHERE business_id = ?1 ORDER BY created_at, user_id")?;
        let rows = stmt.query_map([business_id], member_from)?;
        rows.map(|r| member(r?)).collect()
    }

    fn insert_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError> {
        self.write_invitation(INSERT_INVITATION, r)?;
        Ok(())
    }

    fn update_invitation(&mut self, r: &InvitationRecord) -> Result<(), StoreError> {
        match self.write_invitation(UPDATE_INVITATION, r)? {
            1 => Ok(()),
            n => Err(StoreError::Corrupt(format!(
                "updating invitation {} touched {n} rows",
                r.invitation.id
            ))),
        }
    }

    fn invitation(
        &mut self,
        business_id: &BusinessId,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        Ok(self
            .invitations(
                "WHERE i.business_id = $1 AND i.id = $2",
                &[&business_id, &id],
            )?
            .pop())
    }

    fn invitation_by_id(
        &mut self,
        id: &InvitationId,
    ) -> Result<Option<InvitationRecord>, StoreError> {
        Ok(self.invitations("WHERE i.id = $1", &[&id])?.pop())
    }

    fn outstanding_for_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.invitations(
            "WHERE i.business_id = $1 AND i.email_normalized = $2 AND i.status IN ('Pending', 'Resent', 'FailedToSend') AND i.expires_at > $3",
            &[&business_id, &email_normalized, &millis(now)],
        )
    }

    fn list_invitations(
        &mut self,
        business_id: &BusinessId,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.invitations(
            "WHERE i.business_id = $1 ORDER BY i.created_at DESC, i.id DESC",
            &[&business_id],
        )
    }

    fn expired_holding_seats(
        &mut self,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        self.invitations(
            "WHERE i.license_activated_at IS NOT NULL AND i.license_released_at IS NULL AND i.expires_at <= $1 \
             AND i.status IN ('Pending', 'Resent', 'FailedToSend') ORDER BY i.expires_at LIMIT $2",
            &[&millis(now), &limit],
        )
    }

    fn insert_outbox(
        &mut self,
        business_id: &BusinessId,
        invitation_id: &InvitationId,
        kind: EmailKind,
        now: DateTime<Utc>,
    ) -> Result<OutboxId, StoreError> {
        self.tx
            .prepare_cached("INSERT INTO outbox (business_id, invitation_id, kind, created_at, due_at) VALUES (?1, ?2, ?3, ?4, ?4)")?
            .execute(params![business_id, invitation_id, kind.as_str(), millis(now)])?;
        Ok(OutboxId(self.tx.last_insert_rowid()))
    }

    fn claim_outbox(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut stmt = self.tx.prepare_cached(CLAIM_OUTBOX_SQLITE)?;
        let rows = stmt.query_map(params![millis(now), millis(lease_until), limit], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, String>(3)?,
                r.get(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, business_id, invitation_id, kind, attempts) = row?;
            out.push(OutboxRow {
                id,
                business_id,
                invitation_id,
                kind: parse_name(&kind)?,
                attempts,
            });
        }
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    fn outbox_delivered(&mut self, id: OutboxId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(&super::sqlite_sql(super::OUTBOX_DELIVERED))?
            .execute(params![id, millis(now)])?;
        Ok(n > 0)
    }

    fn outbox_retry(
        &mut self,
        id: OutboxId,
        due_at: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(&super::sqlite_sql(super::OUTBOX_RETRY))?
            .execute(params![id, millis(due_at), error])?;
        Ok(n > 0)
    }

    fn outbox_failed(
        &mut self,
        id: OutboxId,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .tx
            .prepare_cached(&super::sqlite_sql(super::OUTBOX_FAILED))?
            .execute(params![id, millis(now), error])?;
        Ok(n > 0)
    }

    fn outbox_supersede_waiting(
        &mut self,
        invitation_id: &InvitationId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<OutboxId>, StoreError> {
        let mut stmt = self
            .tx
            .prepare_cached(&super::sqlite_sql(super::SUPERSEDE_WAITING_OUTBOX))?;
        let ids = stmt.query_map(params![invitation_id, millis(now), reason], |r| r.get(0))?;
        Ok(ids.collect::<Result<Vec<OutboxId>, _>>()?)
    }

    fn outbox_state(&mut self, id: OutboxId) -> Result<Option<OutboxState>, StoreError> {
        Ok(self
            .tx
            .prepare_cached(&super::sqlite_sql(super::OUTBOX_STATE))?
            .query_row([id], |r| {
                Ok(OutboxState {
                    attempts: r.get(0)?,
                    delivered: r.get(1)?,
                    failed: r.get(2)?,
                    superseded: r.get(3)?,
                    last_error: r.get(4)?,
                })
            })
            .optional()?)
    }

    fn latest_outbox_id(
        &mut self,
        invitation_id: &InvitationId,
    ) -> Result<Option<OutboxId>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT MAX(id) FROM outbox WHERE invitation_id = ?1")?
            .query_row([invitation_id], |r| r.get(0))?)
    }

    fn update_idempotent_body(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        self.tx
            .prepare_cached("UPDATE idempotency_keys SET body = ?3 WHERE business_id = ?1 AND idempotency_key = ?2")?
            .execute(params![business_id, key, body])?;
        Ok(())
    }

    fn count_emails_since(
        &mut self,
        business_id: &BusinessId,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let n: i64 = self
            .tx
            .prepare_cached(
                "SELECT COUNT(*) FROM outbox WHERE business_id = ?1 AND created_at >= ?2",
            )?
            .query_row(params![business_id, millis(since)], |r| r.get(0))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn count_outbox_for(&mut self, invitation_id: &InvitationId) -> Result<u32, StoreError> {
        let n: i64 = self
            .tx
            .prepare_cached("SELECT COUNT(*) FROM outbox WHERE invitation_id = ?1")?
            .query_row([invitation_id], |r| r.get(0))?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn insert_ledger(&mut self, e: &LedgerEntry, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.tx
            .prepare_cached(
                "INSERT INTO seat_ledger (business_id, invitation_id, delta, quantity_after, reason, proration_date, renewal_date, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![e.business_id, e.invitation_id, e.delta, e.quantity_after, e.reason, millis(e.proration_date), millis(e.renewal_date), millis(now)])?;
        Ok(())
    }

    fn ledger(&mut self, business_id: &BusinessId) -> Result<Vec<LedgerEntry>, StoreError> {
        let mut stmt = self.tx.prepare_cached(
            "SELECT business_id, invitation_id, delta, quantity_after, reason, proration_date, renewal_date FROM seat_ledger WHERE business_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([business_id], |r| {
            Ok((
                r.get::<_, BusinessId>(0)?,
                r.get::<_, Option<InvitationId>>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, i64>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, i64>(6)?,
            ))
        })?;
        rows.map(|r| {
            let (business_id, invitation_id, delta, quantity_after, reason, p, rd) = r?;
            Ok(LedgerEntry {
                business_id,
                invitation_id,
                delta,
                quantity_after,
                reason,
                proration_date: time(p)?,
                renewal_date: time(rd)?,
            })
        })
        .collect()
    }

    fn idempotent_response(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        Ok(self
            .tx
            .prepare_cached("SELECT request_hash, status, body FROM idempotency_keys WHERE business_id = ?1 AND idempotency_key = ?2 AND created_at >= ?3")?
            .query_row(params![business_id, key, millis(since)], |r| {
                Ok(StoredResponse { request_hash: r.get(0)?, status: r.get::<_, i64>(1)? as u16, body: r.get(2)? })
            })
            .optional()?)
    }

    fn save_idempotent_response(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        r: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        // An expired record for the same key is replaced.
        self.tx
            .prepare_cached(
                "INSERT INTO idempotency_keys (business_id, idempotency_key, request_hash, status, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (business_id, idempotency_key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status, \
                 body = excluded.body, created_at = excluded.created_at",
            )?
            .execute(params![business_id, key, r.request_hash, i64::from(r.status), r.body, millis(now)])?;
        Ok(())
    }
}
