//! Idempotency records: the response kept for each caller's Idempotency-Key.

use chrono::{DateTime, Utc};

use super::super::sql::{Sql, params};
use super::super::{IdempotencyScope, StoreError, StoredResponse};
use super::Tx;

impl Tx<'_> {
    pub fn idempotent_response(
        &mut self,
        scope: &IdempotencyScope,
        key: &str,
        since: DateTime<Utc>,
    ) -> Result<Option<StoredResponse>, StoreError> {
        static IDEMPOTENT_RESPONSE: Sql = Sql::new(
            "SELECT request_hash, status, body FROM idempotency_records \
             WHERE business_id = $1 AND user_id = $2 AND idempotency_key = $3 AND created_at >= $4",
        );
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
        static SAVE_IDEMPOTENT_RESPONSE: Sql = Sql::new(
            "INSERT INTO idempotency_records (business_id, user_id, idempotency_key, request_hash, status, \
             body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (business_id, user_id, idempotency_key) DO UPDATE SET \
             request_hash = excluded.request_hash, status = excluded.status, body = excluded.body, \
             created_at = excluded.created_at",
        );
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

    /// Replaces the body of a stored idempotent response (after the delivery wait).
    pub fn update_idempotent_body(
        &mut self,
        scope: &IdempotencyScope,
        key: &str,
        body: &str,
    ) -> Result<(), StoreError> {
        static UPDATE_IDEMPOTENT_BODY: Sql = Sql::new(
            "UPDATE idempotency_records SET body = $4 \
             WHERE business_id = $1 AND user_id = $2 AND idempotency_key = $3",
        );
        self.conn.execute(
            &UPDATE_IDEMPOTENT_BODY,
            params![scope.business_id, scope.user_id, key, body],
        )?;
        Ok(())
    }
}
