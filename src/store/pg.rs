//! PostgreSQL through the `postgres` crate and an r2d2 pool: the shared database of several
//! replicas. Each operation is one blocking call inside one transaction; the business row lock
//! (`SELECT ... FOR UPDATE`) serialises the operations of one business across replicas.

use ::postgres::types::ToSql;
use ::postgres::{NoTls, Row};
use chrono::{DateTime, Utc};
use r2d2_postgres::PostgresConnectionManager;

use super::*;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;

#[derive(Clone)]
pub struct PgStore {
    pool: std::sync::Arc<PoolOwner>,
}

/// Owns the pool so that it is dropped off the async runtime: the `postgres` crate's client
/// closes its connection with a blocking call, which panics on a runtime thread.
struct PoolOwner(Option<Pool>);

impl std::ops::Deref for PoolOwner {
    type Target = Pool;
    fn deref(&self) -> &Pool {
        self.0
            .as_ref()
            .expect("the pool lives as long as its owner")
    }
}

impl Drop for PoolOwner {
    fn drop(&mut self) {
        if let Some(pool) = self.0.take() {
            std::thread::spawn(move || drop(pool));
        }
    }
}

/// Connections per process; enough for the blocking pool to overlap waits on the network.
const POOL_SIZE: u32 = 16;

impl PgStore {
    pub fn open(url: &str) -> Result<Self, StoreError> {
        let config: ::postgres::Config = url.parse()?;
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(PostgresConnectionManager::new(config, NoTls))?;
        let store = PgStore {
            pool: std::sync::Arc::new(PoolOwner(Some(pool))),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut client = self.pool.get()?;
        let mut tx = client.transaction()?;
        // Replicas starting together take turns; the lock ends with the transaction.
        tx.execute("SELECT pg_advisory_xact_lock(727413)", &[])?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")?;
        for (version, sql) in POSTGRES_MIGRATIONS {
            let done: bool = tx
                .query_one(
                    "SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE version = $1)",
                    &[version],
                )?
                .get(0);
            if !done {
                tx.batch_execute(sql)?;
                tx.execute(
                    "INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)",
                    &[version, &millis(Utc::now())],
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
        let mut client = self.pool.get().map_err(StoreError::from)?;
        let mut tx = client.transaction().map_err(StoreError::from)?;
        let result = f(&mut PgTx { tx: &mut tx });
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

struct PgTx<'a, 'b> {
    tx: &'a mut ::postgres::Transaction<'b>,
}

impl InvitationColumns for Row {
    fn text(&self, i: usize) -> Result<String, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        Ok(self.try_get(i)?)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        Ok(self.try_get(i)?)
    }
}

fn member(row: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        business_id: row.try_get(0)?,
        user_id: row.try_get(1)?,
        email: row.try_get(2)?,
        role: parse_name(row.try_get(3)?)?,
    })
}

impl PgTx<'_, '_> {
    fn invitations(
        &mut self,
        where_clause: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<InvitationRecord>, StoreError> {
        let rows = self
            .tx
            .query(&format!("{INVITATION_SELECT} {where_clause}"), params)?;
        rows.iter().map(|r| r.invitation_record()).collect()
    }

    fn write_invitation(&mut self, sql: &str, r: &InvitationRecord) -> Result<u64, StoreError> {
        let v = InvitationValues::of(r);
        Ok(self.tx.execute(
            sql,
            &[
                &v.id,
                &v.business_id,
                &v.email,
                &v.email_normalized,
                &v.role,
                &v.status,
                &v.token_nonce,
                &v.created_at,
                &v.expires_at,
                &v.sent_at,
                &v.resent_at,
                &v.accepted_at,
                &v.revoked_at,
                &v.send_failure_reason,
                &v.license_billing_status,
                &v.license_quantity,
                &v.license_renewal_date,
                &v.license_activated_at,
                &v.license_released_at,
            ],
        )?)
    }
}

impl Tx for PgTx<'_, '_> {
    fn insert_business(&mut self, b: &Business, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO businesses (id, name, seat_quantity, renewal_date, billing_status, created_at, included_seats) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&b.id, &b.name, &b.seat_quantity, &millis(b.renewal_date), &b.billing_status.as_str(), &millis(now), &b.included_seats],
        )?;
        Ok(())
    }

    fn lock_business(&mut self, id: &BusinessId) -> Result<Option<Business>, StoreError> {
        let row = self.tx.query_opt("SELECT id, name, seat_quantity, renewal_date, billing_status, included_seats, created_at FROM businesses WHERE id = $1 FOR UPDATE", &[&id])?;
        row.map(|r| {
            Ok(Business {
                id: r.try_get(0)?,
                name: r.try_get(1)?,
                seat_quantity: r.try_get(2)?,
                included_seats: r.try_get(5)?,
                renewal_date: time(r.try_get(3)?)?,
                billing_anchor: time(r.try_get(6)?)?,
                billing_status: parse_name(r.try_get(4)?)?,
            })
        })
        .transpose()
    }

    fn update_business_seats(
        &mut self,
        id: &BusinessId,
        quantity: i64,
        renewal_date: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE businesses SET seat_quantity = $2, renewal_date = $3 WHERE id = $1",
            &[&id, &quantity, &millis(renewal_date)],
        )?;
        Ok(())
    }

    fn insert_member(
        &mut self,
        m: &Member,
        first_name: Option<&str>,
        last_name: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO members (business_id, user_id, email, email_normalized, role, first_name, last_name, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&m.business_id, &m.user_id, &m.email, &m.email.to_lowercase(), &m.role.as_str(), &first_name, &last_name, &millis(now)],
        )?;
        Ok(())
    }

    fn member(
        &mut self,
        business_id: &BusinessId,
        user_id: &UserId,
    ) -> Result<Option<Member>, StoreError> {
        self.tx
            .query_opt("SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 AND user_id = $2", &[&business_id, &user_id])?
            .map(|r| member(&r))
            .transpose()
    }

    fn member_by_email(
        &mut self,
        business_id: &BusinessId,
        email_normalized: &str,
    ) -> Result<Option<Member>, StoreError> {
        self.tx
            .query_opt("SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 AND email_normalized = $2", &[&business_id, &email_normalized])?
            .map(|r| member(&r))
            .transpose()
    }

    fn members(&mut self, business_id: &BusinessId) -> Result<Vec<Member>, StoreError> {
        self.tx
            .query("SELECT business_id, user_id, email, role FROM members WHERE business_id = $1 ORDER BY created_at, user_id", &[&business_id])?
            .iter()
            .map(member)
            .collect()
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
        let row = self.tx.query_one(
            "INSERT INTO outbox (business_id, invitation_id, kind, created_at, due_at) VALUES ($1, $2, $3, $4, $4) RETURNING id",
            &[&business_id, &invitation_id, &kind.as_str(), &millis(now)],
        )?;
        Ok(row.try_get(0)?)
    }

    fn claim_outbox(
        &mut self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let mut out = self
            .tx
            .query(
                CLAIM_OUTBOX_PG,
                &[&millis(now), &millis(lease_until), &limit],
            )?
            .iter()
            .map(|r| {
                Ok(OutboxRow {
                    id: r.try_get(0)?,
                    business_id: r.try_get(1)?,
                    invitation_id: r.try_get(2)?,
                    kind: parse_name(r.try_get(3)?)?,
                    attempts: r.try_get(4)?,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by_key(|r| r.id);
        Ok(out)
    }

    fn outbox_delivered(&mut self, id: OutboxId, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = self
            .tx
            .execute(super::OUTBOX_DELIVERED, &[&id, &millis(now)])?;
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
            .execute(super::OUTBOX_RETRY, &[&id, &millis(due_at), &error])?;
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
            .execute(super::OUTBOX_FAILED, &[&id, &millis(now), &error])?;
        Ok(n > 0)
    }

    fn outbox_supersede_waiting(
        &mut self,
        invitation_id: &InvitationId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<OutboxId>, StoreError> {
        self.tx
            .query(
                super::SUPERSEDE_WAITING_OUTBOX,
                &[&invitation_id, &millis(now), &reason],
            )?
            .iter()
            .map(|r| Ok(r.try_get(0)?))
            .collect()
    }

    fn outbox_state(&mut self, id: OutboxId) -> Result<Option<OutboxState>, StoreError> {
        self.tx
            .query_opt(super::OUTBOX_STATE, &[&id])?
            .map(|r| {
                Ok(OutboxState {
                    attempts: r.try_get(0)?,
                    delivered: r.try_get(1)?,
                    failed: r.try_get(2)?,
                    superseded: r.try_get(3)?,
                    last_error: r.try_get(4)?,
                })
            })
            .transpose()
    }

    fn latest_outbox_id(
        &mut self,
        invitation_id: &InvitationId,
    ) -> Result<Option<OutboxId>, StoreError> {
        Ok(self
            .tx
            .query_one(
                "SELECT MAX(id) FROM outbox WHERE invitation_id = $1",
                &[&invitation_id],
            )?
            .try_get(0)?)
    }

    fn update_idempotent_body(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "UPDATE idempotency_keys SET body = $3 WHERE business_id = $1 AND idempotency_key = $2",
            &[&business_id, &key, &body],
        )?;
        Ok(())
    }

    fn count_emails_since(
        &mut self,
        business_id: &BusinessId,
        since: DateTime<Utc>,
    ) -> Result<u32, StoreError> {
        let n: i64 = self
            .tx
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE business_id = $1 AND created_at >= $2",
                &[&business_id, &millis(since)],
            )?
            .try_get(0)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn count_outbox_for(&mut self, invitation_id: &InvitationId) -> Result<u32, StoreError> {
        let n: i64 = self
            .tx
            .query_one(
                "SELECT COUNT(*) FROM outbox WHERE invitation_id = $1",
                &[&invitation_id],
            )?
            .try_get(0)?;
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    fn insert_ledger(&mut self, e: &LedgerEntry, now: DateTime<Utc>) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO seat_ledger (business_id, invitation_id, delta, quantity_after, reason, proration_date, renewal_date, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[&e.business_id, &e.invitation_id, &e.delta, &e.quantity_after, &e.reason, &millis(e.proration_date), &millis(e.renewal_date), &millis(now)],
        )?;
        Ok(())
    }

    fn ledger(&mut self, business_id: &BusinessId) -> Result<Vec<LedgerEntry>, StoreError> {
        self.tx
            .query(
                "SELECT business_id, invitation_id, delta, quantity_after, reason, proration_date, renewal_date FROM seat_ledger WHERE business_id = $1 ORDER BY id",
                &[&business_id],
            )?
            .iter()
            .map(|r| {
                Ok(LedgerEntry {
                    business_id: r.try_get(0)?,
                    invitation_id: r.try_get(1)?,
                    delta: r.try_get(2)?,
                    quantity_after: r.try_get(3)?,
                    reason: r.try_get(4)?,
                    proration_date: time(r.try_get(5)?)?,
                    renewal_date: time(r.try_get(6)?)?,
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
        self.tx
            .query_opt(
                "SELECT request_hash, status, body FROM idempotency_keys WHERE business_id = $1 AND idempotency_key = $2 AND created_at >= $3",
                &[&business_id, &key, &millis(since)],
            )?
            .map(|r| Ok(StoredResponse { request_hash: r.try_get(0)?, status: r.try_get::<_, i64>(1)? as u16, body: r.try_get(2)? }))
            .transpose()
    }

    fn save_idempotent_response(
        &mut self,
        business_id: &BusinessId,
        key: &str,
        r: &StoredResponse,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.tx.execute(
            "INSERT INTO idempotency_keys (business_id, idempotency_key, request_hash, status, body, created_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (business_id, idempotency_key) DO UPDATE SET request_hash = excluded.request_hash, status = excluded.status, \
             body = excluded.body, created_at = excluded.created_at",
            &[&business_id, &key, &r.request_hash, &i64::from(r.status), &r.body, &millis(now)],
        )?;
        Ok(())
    }
}
