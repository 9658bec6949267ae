//! The small connection interface every statement runs through ([`Conn`]), and the one place
//! where SQLite and PostgreSQL differ in how a statement is written ([`Dialect`]).
//!
//! Statements are written once, in PostgreSQL's `$n` placeholder style, as `static` [`Sql`]
//! items; each dialect's text is rendered from it once per process. The differences that are
//! real, and named here rather than scattered through the statements:
//! - placeholders: `$n` on PostgreSQL, `?n` on SQLite (SQLite reads `$1` as a *named*
//!   parameter numbered by first appearance, which would silently misbind `$2 ... $1`);
//! - row locks: `{for_update}` is `FOR UPDATE` on PostgreSQL (`{for_update_of_b}` is
//!   `FOR UPDATE OF b`: only the rows of the table aliased `b` in a join); SQLite has no row
//!   locks, and its `BEGIN IMMEDIATE` already holds the one write lock for the whole transaction;
//! - `{skip_locked}`: `FOR UPDATE SKIP LOCKED` on PostgreSQL, so that replicas claiming outbox
//!   rows pass over each other's rows instead of waiting; nothing on SQLite (one writer);
//! - the auto-increment key of a migration, `{id_pk}`: `BIGSERIAL PRIMARY KEY` against SQLite's
//!   `INTEGER PRIMARY KEY AUTOINCREMENT` (only that exact spelling makes SQLite's row id the key).
//!
//! Both databases support `RETURNING` and `ON CONFLICT ... DO UPDATE`, which the statements use
//! as they are. Values cross the interface as three kinds only ([`Value`], [`Cell`]): null,
//! 64-bit integers (times are milliseconds since the Unix epoch; PostgreSQL booleans read as
//! 0/1) and text, which is all the schema stores.

use std::sync::OnceLock;

use chrono::{DateTime, Utc};

use super::{StoreError, parse_name, time};
use crate::domain::{BusinessId, InvitationId, OutboxId, UserId};

/// Which database a statement is rendered for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `text` with this dialect's placeholders and tokens (module docs).
    pub(crate) fn render(self, text: &str) -> String {
        let (for_update, for_update_of_b, skip_locked, id_pk) = match self {
            Dialect::Postgres => (
                " FOR UPDATE",
                " FOR UPDATE OF b",
                " FOR UPDATE SKIP LOCKED",
                "BIGSERIAL PRIMARY KEY",
            ),
            Dialect::Sqlite => ("", "", "", "INTEGER PRIMARY KEY AUTOINCREMENT"),
        };
        let text = text
            .replace(" {for_update}", for_update)
            .replace(" {for_update_of_b}", for_update_of_b)
            .replace(" {skip_locked}", skip_locked)
            .replace("{id_pk}", id_pk);
        match self {
            Dialect::Postgres => text,
            // No statement contains a `$` other than its placeholders.
            Dialect::Sqlite => text.replace('$', "?"),
        }
    }
}

/// One statement, written once; rendered for each dialect on first use.
pub struct Sql {
    text: &'static str,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl Sql {
    pub const fn new(text: &'static str) -> Sql {
        Sql {
            text,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The statement as `dialect` runs it.
    pub fn text(&self, dialect: Dialect) -> &str {
        let cell = match dialect {
            Dialect::Sqlite => &self.sqlite,
            Dialect::Postgres => &self.postgres,
        };
        cell.get_or_init(|| dialect.render(self.text))
    }

    /// A key naming this statement for the life of the process (statements are `static`), for
    /// per-connection caches of prepared statements.
    pub fn key(&'static self) -> usize {
        self as *const Sql as usize
    }
}

/// A parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Text(&'a str),
}

/// A column of a result row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Cell {
    Null,
    Int(i64),
    Text(String),
}

/// A result row.
#[derive(Debug)]
pub struct Row(pub(crate) Vec<Cell>);

impl Row {
    /// Column `i` as `T`; a column of another kind is stored data the code does not expect.
    pub fn get<T: FromCell>(&self, i: usize) -> Result<T, StoreError> {
        let cell = self
            .0
            .get(i)
            .ok_or_else(|| StoreError::Corrupt(format!("no column {i}")))?;
        T::from_cell(cell).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "column {i} holds {cell:?}, not {}",
                std::any::type_name::<T>()
            ))
        })
    }

    /// Column `i` as one of the domain's named values (a role, a status, ...).
    pub fn name<T: std::str::FromStr<Err = crate::domain::UnknownName>>(
        &self,
        i: usize,
    ) -> Result<T, StoreError> {
        parse_name(&self.get::<String>(i)?)
    }

    pub fn time(&self, i: usize) -> Result<DateTime<Utc>, StoreError> {
        time(self.get(i)?)
    }

    pub fn opt_time(&self, i: usize) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.get::<Option<i64>>(i)?.map(time).transpose()
    }
}

/// A connection inside a transaction: the whole of what the store asks of a database driver.
pub trait Conn {
    fn dialect(&self) -> Dialect;
    /// Runs a statement; returns the rows it changed.
    fn execute(&mut self, sql: &'static Sql, params: &[Value<'_>]) -> Result<u64, StoreError>;
    /// Runs a statement; returns its rows.
    fn query(&mut self, sql: &'static Sql, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError>;
    /// Runs a script of statements without parameters (migrations).
    fn batch(&mut self, script: &str) -> Result<(), StoreError>;
}

/// What can be a parameter.
pub trait ToValue {
    fn to_value(&self) -> Value<'_>;
}

impl ToValue for i64 {
    fn to_value(&self) -> Value<'_> {
        Value::Int(*self)
    }
}

impl ToValue for str {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl ToValue for String {
    fn to_value(&self) -> Value<'_> {
        Value::Text(self)
    }
}

impl<T: ToValue + ?Sized> ToValue for &T {
    fn to_value(&self) -> Value<'_> {
        (**self).to_value()
    }
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Null, ToValue::to_value)
    }
}

/// Times are stored as milliseconds since the Unix epoch.
impl ToValue for DateTime<Utc> {
    fn to_value(&self) -> Value<'_> {
        Value::Int(self.timestamp_millis())
    }
}

impl ToValue for OutboxId {
    fn to_value(&self) -> Value<'_> {
        Value::Int(self.0)
    }
}

/// What a column can be read as.
pub trait FromCell: Sized {
    fn from_cell(cell: &Cell) -> Option<Self>;
}

impl FromCell for i64 {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Int(v) => Some(*v),
            _ => None,
        }
    }
}

impl FromCell for bool {
    fn from_cell(cell: &Cell) -> Option<Self> {
        i64::from_cell(cell).map(|v| v != 0)
    }
}

impl FromCell for String {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Text(v) => Some(v.clone()),
            _ => None,
        }
    }
}

impl<T: FromCell> FromCell for Option<T> {
    fn from_cell(cell: &Cell) -> Option<Self> {
        match cell {
            Cell::Null => Some(None),
            cell => T::from_cell(cell).map(Some),
        }
    }
}

impl FromCell for OutboxId {
    fn from_cell(cell: &Cell) -> Option<Self> {
        i64::from_cell(cell).map(OutboxId)
    }
}

/// The domain's text ids bind and read as the text they are stored as.
macro_rules! text_id {
    ($($name:ident),*) => {$(
        impl ToValue for $name {
            fn to_value(&self) -> Value<'_> {
                Value::Text(self.as_str())
            }
        }

        impl FromCell for $name {
            fn from_cell(cell: &Cell) -> Option<Self> {
                String::from_cell(cell).map($name::from_stored)
            }
        }
    )*};
}

text_id!(BusinessId, InvitationId, UserId);

/// `[Value]` from a list of parameters of any [`ToValue`] type.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$($crate::store::sql::ToValue::to_value(&$p)),*]
    };
}
pub(crate) use params;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_dialect_gets_its_placeholders_locks_and_keys() {
        // (written once, PostgreSQL's rendering, SQLite's rendering)
        let cases = [
            (
                "SELECT a FROM t WHERE id = $2 AND b = $1 {for_update}",
                "SELECT a FROM t WHERE id = $2 AND b = $1 FOR UPDATE",
                "SELECT a FROM t WHERE id = ?2 AND b = ?1",
            ),
            (
                "SELECT id FROM outbox LIMIT $1 {skip_locked}",
                "SELECT id FROM outbox LIMIT $1 FOR UPDATE SKIP LOCKED",
                "SELECT id FROM outbox LIMIT ?1",
            ),
            (
                "CREATE TABLE t (id {id_pk})",
                "CREATE TABLE t (id BIGSERIAL PRIMARY KEY)",
                "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT)",
            ),
        ];
        for (text, postgres, sqlite) in cases {
            assert_eq!(Dialect::Postgres.render(text), postgres);
            assert_eq!(Dialect::Sqlite.render(text), sqlite);
        }
    }

    #[test]
    fn a_column_of_another_kind_is_reported_not_guessed() {
        let row = Row(vec![Cell::Int(3), Cell::Text("x".into()), Cell::Null]);
        assert_eq!(row.get::<i64>(0).unwrap(), 3);
        assert!(row.get::<bool>(0).unwrap());
        assert_eq!(row.get::<String>(1).unwrap(), "x");
        assert_eq!(row.get::<Option<String>>(2).unwrap(), None);
        assert!(row.get::<String>(0).is_err());
        assert!(row.get::<i64>(2).is_err());
        assert!(row.get::<i64>(3).is_err());
    }
}
