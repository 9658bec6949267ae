//! The seat ledger: every change of a business's seat quantity, with the totals the metrics read.

use chrono::{DateTime, Utc};

use super::super::sql::{Sql, params};
use super::super::{LedgerEntry, StoreError};
use super::{Tx, one};
use crate::domain::BusinessId;

impl Tx<'_> {
    pub fn insert_ledger(&mut self, e: &LedgerEntry, now: DateTime<Utc>) -> Result<(), StoreError> {
        static INSERT_LEDGER: Sql = Sql::new(
            "INSERT INTO seat_ledger (business_id, invitation_id, delta, quantity_after, reason, proration_date, \
             renewal_date, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        );
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
        static LEDGER: Sql = Sql::new(
            "SELECT business_id, invitation_id, delta, quantity_after, reason, proration_date, renewal_date \
             FROM seat_ledger WHERE business_id = $1 ORDER BY id",
        );
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

    /// Seats taken and seats given back since the database began (from the seat ledger).
    pub fn seat_totals(&mut self) -> Result<(i64, i64), StoreError> {
        /// Seats ever taken and given back, from the ledger (every replica's).
        static SEAT_TOTALS: Sql = Sql::new(
            "SELECT CAST(COALESCE(SUM(CASE WHEN delta > 0 THEN delta ELSE 0 END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN delta < 0 THEN 0 - delta ELSE 0 END), 0) AS BIGINT) FROM seat_ledger",
        );
        let rows = self.conn.query(&SEAT_TOTALS, params![])?;
        let row = one(rows)?;
        Ok((row.get(0)?, row.get(1)?))
    }
}
