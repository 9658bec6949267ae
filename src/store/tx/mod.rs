//! The primitives the application's transactions are made of ([`Tx`]), each written once over
//! [`Conn`], with every statement the application runs, one file per aggregate and each statement
//! beside the method that runs it: [`business`] (and its members), [`invitation`], [`outbox`]
//! (and the daily email counts), [`ledger`] and [`idempotency`]. The dialects differ only as
//! [`super::sql`] names.

mod business;

pub use business::EmailStanding;
mod idempotency;
mod invitation;
mod ledger;
mod outbox;

use super::StoreError;
use super::sql::{Conn, Row, Sql, Value, params};

/// One transaction; every method runs inside it. Made by [`super::Store::transaction`], which
/// commits or rolls it back.
pub struct Tx<'c> {
    conn: &'c mut dyn Conn,
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

    /// The newest migration applied to the database (see [`super::SCHEMA_VERSION`]).
    pub fn schema_version(&mut self) -> Result<Option<i64>, StoreError> {
        static SCHEMA_VERSION: Sql = Sql::new("SELECT MAX(version) FROM schema_migrations");
        one(self.conn.query(&SCHEMA_VERSION, params![])?)?.get(0)
    }
}
