//! PostgreSQL through the `postgres` crate and an r2d2 pool: the shared database of several
//! replicas. Each operation is one blocking call inside one transaction; the business row lock
//! (`SELECT ... FOR UPDATE`) serialises the operations of one business across replicas.
//!
//! Every statement is prepared once per pooled connection and kept ([`PgConn`]): a statement
//! sent unprepared is parsed and planned each time and costs a second round trip.

use std::collections::HashMap;
use std::error::Error;

use bytes::BytesMut;
use postgres::types::{IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};

use super::sql::{Cell, Conn, Dialect, Row, Sql, Value};
use super::{Gate, StoreError, Tx};

type Pool = r2d2::Pool<Manager>;

/// tokio-postgres's default `keepalives_idle` (two hours): a URL that does not set its own.
const DEFAULT_KEEPALIVES_IDLE: std::time::Duration = std::time::Duration::from_secs(2 * 60 * 60);

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

/// A pooled connection and the statements prepared on it.
pub struct PgConn {
    client: Client,
    prepared: HashMap<usize, Statement>,
}

/// The pool's connection manager. r2d2_postgres's hands out bare clients, with nowhere to keep
/// a connection's prepared statements or to set a session up; this one is the same twenty lines
/// with both.
pub struct Manager {
    config: postgres::Config,
    /// Each session's `statement_timeout` and `idle_in_transaction_session_timeout`.
    timeout: std::time::Duration,
}

impl r2d2::ManageConnection for Manager {
    type Connection = PgConn;
    type Error = postgres::Error;

    fn connect(&self) -> Result<PgConn, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        // The server's side of the store's deadline: a statement that runs longer (a lock
        // that never clears, a plan gone wrong) is cancelled, and a transaction left open by
        // a replica that stalled (a paused VM, a process stopped mid-transaction) is ended,
        // releasing the business row it locked for the other replicas. The client's deadline
        // (`Store::transaction`) covers what the server cannot: a server that does not answer.
        let ms = self.timeout.as_millis().max(1);
        client.batch_execute(&format!(
            "SET statement_timeout = {ms}; SET idle_in_transaction_session_timeout = {ms}"
        ))?;
        Ok(PgConn {
            client,
            prepared: HashMap::new(),
        })
    }

    fn is_valid(&self, conn: &mut PgConn) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut PgConn) -> bool {
        conn.client.is_closed()
    }
}

impl PgStore {
    pub fn open(url: &str, timeout: std::time::Duration) -> Result<Self, StoreError> {
        let mut config: postgres::Config = url.parse()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(timeout);
        }
        // A peer that vanished (a host powered off, a network partition that drops packets)
        // is noticed by TCP within about half a minute instead of the kernel's two hours, so
        // that a connection stuck on it is given up and its thread freed; the URL's own
        // settings win.
        if config.get_keepalives_idle() == DEFAULT_KEEPALIVES_IDLE {
            config.keepalives_idle(std::time::Duration::from_secs(10));
            config.keepalives_interval(std::time::Duration::from_secs(5));
            config.keepalives_retries(3);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(std::time::Duration::from_secs(30));
        }
        // No test query at each checkout (r2d2's default): it cost every transaction a round
        // trip. A connection the server closed is known without asking (`checkout`), and one
        // that fails otherwise is an outage answered 503 and then dropped by the pool.
        let pool = r2d2::Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(timeout)
            .test_on_check_out(false)
            .build(Manager { config, timeout })?;
        let store = PgStore {
            pool: std::sync::Arc::new(PoolOwner(Some(pool))),
        };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.pool.get()?;
        let PgConn { client, prepared } = &mut *conn;
        let read_only = client.query_one("SHOW transaction_read_only", &[])?;
        if read_only.get::<_, String>(0) == "on" {
            // A standby or a read-only default: no DDL can run. Serving is still possible (reads
            // work, writes answer 503, readiness says why) when the schema is this build's.
            let version: Option<i64> = client
                .query_one("SELECT MAX(version) FROM schema_migrations", &[])
                .map(|row| row.get(0))
                .unwrap_or(None);
            return if version == Some(super::SCHEMA_VERSION) {
                Ok(())
            } else {
                Err(StoreError::Config(format!(
                    "the database is read-only and its schema is at version {} where this build needs {}: migrate it on a writable primary",
                    version.unwrap_or(0),
                    super::SCHEMA_VERSION
                )))
            };
        }
        let mut tx = client.transaction()?;
        // A migration may take longer than any request should (an index on a large table), and
        // replicas starting together take turns (the lock ends with the transaction).
        tx.batch_execute("SET LOCAL statement_timeout = 0; SELECT pg_advisory_xact_lock(727413)")?;
        super::migrate(&mut PgTxConn {
            tx: &mut tx,
            prepared,
            gate: None,
        })?;
        tx.commit()?;
        // Statements prepared before a migration may describe the tables as they were.
        prepared.clear();
        Ok(())
    }

    /// Runs `f` in a transaction, and commits it unless `f` refused or the caller gave up
    /// waiting ([`Gate`]).
    pub(crate) fn transaction<T, E: From<StoreError>>(
        &self,
        f: impl FnOnce(&mut Tx<'_>) -> Result<T, E>,
        gate: &Gate,
    ) -> Result<T, E> {
        let mut conn = self.checkout()?;
        let PgConn { client, prepared } = &mut *conn;
        let mut tx = client.transaction().map_err(StoreError::from)?;
        let result = f(&mut Tx::new(&mut PgTxConn {
            tx: &mut tx,
            prepared,
            gate: Some(gate),
        }));
        if result.is_ok() && !gate.commit() {
            // The caller has answered 503 already and reads nothing of this.
            let _ = tx.rollback();
            return Err(StoreError::Deadline(std::time::Duration::ZERO).into());
        }
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

impl PgStore {
    /// A pooled connection that is still open: one the server closed (a restart, an idle
    /// timeout) is known to be closed without a round trip, and is passed over (the pool drops
    /// it when it comes back).
    fn checkout(&self) -> Result<r2d2::PooledConnection<Manager>, StoreError> {
        for _ in 0..=POOL_SIZE {
            let conn = self.pool.get()?;
            if !conn.client.is_closed() {
                return Ok(conn);
            }
        }
        Ok(self.pool.get()?)
    }

    /// Whether the server takes no writes on this database: a standby after a failover, or
    /// `default_transaction_read_only` set. Every write then fails.
    pub(crate) fn read_only(&self) -> Result<bool, StoreError> {
        let mut conn = self.checkout()?;
        let row = conn.client.query_one("SHOW transaction_read_only", &[])?;
        Ok(row.get::<_, String>(0) == "on")
    }
}

/// A connection inside one of this store's transactions.
struct PgTxConn<'a, 'b> {
    tx: &'a mut postgres::Transaction<'b>,
    prepared: &'a mut HashMap<usize, Statement>,
    /// Whether the caller still waits (none for a migration, which has no caller to give up).
    gate: Option<&'a Gate>,
}

impl PgTxConn<'_, '_> {
    /// The prepared statement, unless the caller gave up: then nothing more is sent, and the
    /// transaction rolls back.
    fn statement(&mut self, sql: &'static Sql) -> Result<Statement, StoreError> {
        if self.gate.is_some_and(Gate::abandoned) {
            return Err(StoreError::Deadline(std::time::Duration::ZERO));
        }
        if let Some(stmt) = self.prepared.get(&sql.key()) {
            return Ok(stmt.clone());
        }
        let stmt = self.tx.prepare(sql.text(Dialect::Postgres))?;
        self.prepared.insert(sql.key(), stmt.clone());
        Ok(stmt)
    }
}

/// Whether PostgreSQL (or the way to it) is unavailable rather than the statement wrong: the
/// connection failed or closed, or the server says it is shutting down, starting, out of
/// connections or disk, or read-only (a standby after a failover).
pub(super) fn is_outage(e: &postgres::Error) -> bool {
    if let Some(code) = e.code() {
        let code = code.code();
        return code.starts_with("08") // connection exception
            || code.starts_with("57P") // admin, crash or starting shutdown
            || code == "57014" // cancelled: statement_timeout (a lock or a plan that never ends)
            || code == "25P03" // idle_in_transaction_session_timeout
            || code == "53300" // too many connections
            || code == "53100" // disk full
            || code == "25006"; // read-only transaction
    }
    // No SQLSTATE: the client's own failures. I/O and a closed connection are the network's;
    // anything else (a value that does not convert) is a bug.
    e.is_closed() || e.source().is_some_and(|s| s.is::<std::io::Error>())
}

type BoxError = Box<dyn Error + Sync + Send>;

/// Binds to the parameter types PostgreSQL inferred for the prepared statement: integers to
/// any integer column (range-checked) or a boolean, text to any text type, null to anything.
impl ToSql for Value<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(v)?.to_sql(ty, out),
                Type::BOOL => (v != 0).to_sql(ty, out),
                _ => Err(format!("an integer parameter cannot bind to {ty}").into()),
            },
            Value::Text(s) if <&str as ToSql>::accepts(ty) => s.to_sql(ty, out),
            Value::Text(_) => Err(format!("a text parameter cannot bind to {ty}").into()),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Checked per value in `to_sql`: whether a value fits depends on its kind.
        true
    }

    postgres::types::to_sql_checked!();
}

fn cell(row: &postgres::Row, i: usize) -> Result<Cell, StoreError> {
    let ty = row.columns()[i].type_();
    let cell = match *ty {
        Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
        Type::INT4 => row
            .try_get::<_, Option<i32>>(i)?
            .map(|v| Cell::Int(v.into())),
        Type::INT2 => row
            .try_get::<_, Option<i16>>(i)?
            .map(|v| Cell::Int(v.into())),
        Type::BOOL => row
            .try_get::<_, Option<bool>>(i)?
            .map(|v| Cell::Int(v.into())),
        _ if <String as postgres::types::FromSql>::accepts(ty) => {
            row.try_get::<_, Option<String>>(i)?.map(Cell::Text)
        }
        _ => {
            return Err(StoreError::Corrupt(format!(
                "column {} has type {ty}, which the store does not read",
                row.columns()[i].name()
            )));
        }
    };
    Ok(cell.unwrap_or(Cell::Null))
}

fn bind<'v>(params: &'v [Value<'_>]) -> Vec<&'v (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl Conn for PgTxConn<'_, '_> {
    fn dialect(&self) -> Dialect {
        Dialect::Postgres
    }

    fn execute(&mut self, sql: &'static Sql, params: &[Value<'_>]) -> Result<u64, StoreError> {
        let stmt = self.statement(sql)?;
        Ok(self.tx.execute(&stmt, &bind(params))?)
    }

    fn query(&mut self, sql: &'static Sql, params: &[Value<'_>]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.statement(sql)?;
        self.tx
            .query(&stmt, &bind(params))?
            .iter()
            .map(|r| {
                Ok(Row((0..r.len())
                    .map(|i| cell(r, i))
                    .collect::<Result<_, _>>()?))
            })
            .collect()
    }

    fn batch(&mut self, script: &str) -> Result<(), StoreError> {
        Ok(self.tx.batch_execute(script)?)
    }
}
