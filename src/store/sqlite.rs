//! SQLite through rusqlite: one connection, one writer, each operation one blocking call inside
//! one `BEGIN IMMEDIATE` transaction. WAL keeps readers of other processes (a backup, an
//! inspection) off the writer's path. Statements are rusqlite's cached prepared statements.

use std::sync::{Arc, Mutex};

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::sql::{Cell, Conn, Dialect, Row, Sql, Value};
use super::{StoreError, Tx};

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
        // Enough for every statement the store has, so none is ever re-prepared.
        conn.set_prepared_statement_cache_capacity(64);
        let store = SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        // Exclusive: another process opening the same file waits for the schema.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
        super::migrate(&mut SqliteConn(&tx))?;
        tx.commit()?;
        Ok(())
    }

    pub(crate) fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
    ) -> Result<T, E> {
        // A poisoned lock only means another operation panicked mid-transaction; its transaction
        // was rolled back when dropped, so the connection is fine to use.
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        let result = f(&mut Tx::new(&mut SqliteConn(&tx)));
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

/// A connection inside one of this store's transactions.
struct SqliteConn<'a>(&'a Connection);

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(v),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

fn cell(value: ValueRef<'_>) -> Result<Cell, StoreError> {
    match value {
        ValueRef::Null => Ok(Cell::Null),
        ValueRef::Integer(v) => Ok(Cell::Int(v)),
        ValueRef::Text(t) => String::from_utf8(t.to_vec())
            .map(Cell::Text)
            .map_err(|e| StoreError::Corrupt(format!("text column is not UTF-8: {e}"))),
        ValueRef::Real(v) => Err(StoreError::Corrupt(format!("unexpected real {v}"))),
        ValueRef::Blob(_) => Err(StoreError::Corrupt("unexpected blob".into())),
    }
}

impl Conn for SqliteConn<'_> {
    fn dialect(&self) -> Dialect {
        Dialect::Sqlite
    }

    fn execute(&mut self, sql: &'static Sql, params: &[Value<'_>]) -> Result<u64, StoreError> {
        let mut stmt = self.0.prepare_cached(sql.text(Dialect::Sqlite))?;
        let n = stmt.execute(rusqlite::params_from_iter(params))?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &'static Sql, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let mut stmt = self.0.prepare_cached(sql.text(Dialect::Sqlite))?;
        let columns = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            out.push(Row((0..columns)
                .map(|i| cell(row.get_ref(i)?))
                .collect::<Result<_, StoreError>>()?));
        }
        Ok(out)
    }

    fn batch(&mut self, script: &str) -> Result<(), StoreError> {
        Ok(self.0.execute_batch(script)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::BusinessId;
    use chrono::{TimeZone, Utc};

    #[test]
    fn the_daily_email_counts_start_from_the_outbox_of_a_database_made_before_them() {
        let conn = Connection::open_in_memory().unwrap();
        // Outbox rows without their businesses and invitations: this is about the counts.
        conn.pragma_update(None, "foreign_keys", "OFF").unwrap();
        // The schema as it stood before migration 5, with a day and a half of emails.
        conn.execute_batch("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)")
            .unwrap();
        for (version, script) in &super::super::MIGRATIONS[..4] {
            conn.execute_batch(&Dialect::Sqlite.render(script)).unwrap();
            conn.execute("INSERT INTO schema_migrations VALUES (?1, 0)", [version])
                .unwrap();
        }
        let day = Utc
            .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
            .unwrap()
            .timestamp_millis();
        let hour = 3_600_000;
        for (business, at) in [
            ("biz_a", day - hour),
            ("biz_a", day),
            ("biz_a", day + 23 * hour),
            ("biz_b", day + hour),
        ] {
            conn.execute(
                "INSERT INTO outbox (business_id, invitation_id, kind, created_at, due_at) VALUES (?1, 'inv_x', 'Invitation', ?2, ?2)",
                rusqlite::params![business, at],
            )
            .unwrap();
        }
        super::super::migrate(&mut SqliteConn(&conn)).unwrap();
        let mut conn = SqliteConn(&conn);
        let mut tx = Tx::new(&mut conn);
        let a = BusinessId::from_stored("biz_a".into());
        let b = BusinessId::from_stored("biz_b".into());
        let on = |ms| Utc.timestamp_millis_opt(ms).unwrap();
        assert_eq!(tx.emails_on(&a, on(day)).unwrap(), 2);
        assert_eq!(tx.emails_on(&a, on(day - 24 * hour)).unwrap(), 1);
        assert_eq!(tx.emails_on(&b, on(day)).unwrap(), 1);
        assert_eq!(tx.emails_on(&b, on(day + 24 * hour)).unwrap(), 0);
    }
}
