//! SQLite through rusqlite: one connection, owned by one writer thread, which runs every
//! operation of the process and commits them in groups ([`writer`]). WAL keeps readers of other
//! processes (a backup, an inspection) off the writer's path. Statements are rusqlite's cached
//! prepared statements.
//!
//! Why a writer thread and group commit: SQLite has one writer at a time anyway, so operations
//! queued behind a lock only added thread hand-offs (a blocking-pool thread per operation, all
//! contending for the connection), and each commit appended the same hot pages (the business
//! row, the outbox's indexes) to the WAL again. The writer takes the operations waiting for it,
//! runs each in a savepoint of one `BEGIN IMMEDIATE` transaction (an operation that refuses or
//! fails rolls back its savepoint only, so every operation is still all-or-nothing), commits
//! once, and only then answers them: no operation is reported done before its commit is.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, TransactionBehavior};

use super::sql::{Cell, Conn, Dialect, Row, Sql, Value};
use super::{StoreError, Tx};

#[derive(Clone)]
pub struct SqliteStore {
    jobs: mpsc::Sender<Box<dyn Job>>,
    /// The file could only be opened for reading (its permissions, or a read-only mount).
    read_only: bool,
}

/// Operations committed together at most; enough to absorb a burst, small enough that the
/// first of them does not wait long for the last.
const MAX_GROUP: usize = 64;

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`; `:memory:` for a private in-memory one.
    pub fn open(path: &str, busy_timeout: std::time::Duration) -> Result<Self, StoreError> {
        Self::open_with(path, busy_timeout, false)
    }

    /// [`SqliteStore::open`], or (`read_only`) the existing file at `path` for reading only.
    pub fn open_with(
        path: &str,
        busy_timeout: std::time::Duration,
        read_only: bool,
    ) -> Result<Self, StoreError> {
        let mut conn = if path == ":memory:" {
            Connection::open_in_memory()?
        } else if read_only {
            Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                    | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?
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
        conn.busy_timeout(busy_timeout)?;
        let read_only = conn.is_readonly(rusqlite::MAIN_DB)?;
        if !read_only {
            conn.pragma_update(None, "journal_mode", "WAL")?;
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        // Enough for every statement the store has, so none is ever re-prepared.
        conn.set_prepared_statement_cache_capacity(64);
        if read_only {
            schema_is_current(&conn)?;
        } else {
            migrate(&mut conn)?;
        }
        let (jobs, queue) = mpsc::channel();
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, queue))
            .map_err(|e| StoreError::Config(format!("cannot start the SQLite writer: {e}")))?;
        Ok(SqliteStore { jobs, read_only })
    }

    /// Whether the database file could only be opened for reading: every write then fails.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Runs `f` in its own savepoint of the writer's next group; answers once that group has
    /// committed (module docs).
    pub(crate) async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Pending {
            f: Some(f),
            result: None,
            reply,
        };
        let stopped = || E::from(StoreError::Join("the SQLite writer has stopped".into()));
        self.jobs.send(Box::new(job)).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A database that can only be read cannot be migrated: it serves (reads work, writes answer 503)
/// only when its schema is this build's.
fn schema_is_current(conn: &Connection) -> Result<(), StoreError> {
    let version: Option<i64> = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap_or(None);
    if version == Some(super::SCHEMA_VERSION) {
        Ok(())
    } else {
        Err(StoreError::Config(format!(
            "the database is read-only and its schema is at version {} where this build needs {}: migrate a writable copy first",
            version.unwrap_or(0),
            super::SCHEMA_VERSION
        )))
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    // Exclusive: another process opening the same file waits for the schema.
    let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
    super::migrate(&mut SqliteConn(&tx))?;
    tx.commit()?;
    Ok(())
}

/// One operation waiting for the writer, its result types erased.
trait Job: Send {
    /// Runs the operation; whether it succeeded (its savepoint is kept).
    fn run(&mut self, tx: &mut Tx<'_>) -> bool;
    /// Answers the caller once its group's commit is known: `Err` when the group did not
    /// commit, so that nothing that was rolled back is reported done.
    fn answer(self: Box<Self>, commit: Result<(), &StoreError>);
}

struct Pending<F, T, E> {
    f: Option<F>,
    result: Option<Result<T, E>>,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
}

impl<F, T, E> Job for Pending<F, T, E>
where
    F: FnOnce(&mut Tx<'_>) -> Result<T, E> + Send,
    T: Send,
    E: From<StoreError> + Send,
{
    fn run(&mut self, tx: &mut Tx<'_>) -> bool {
        // A caller past the store's deadline has answered 503 and gone: its operation is not
        // run, so that nothing it was told might not happen happens after all.
        if self.reply.is_closed() {
            return false;
        }
        let Some(f) = self.f.take() else { return false };
        let result = f(tx);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn answer(self: Box<Self>, commit: Result<(), &StoreError>) {
        let answer = match (self.result, commit) {
            // A refusal was rolled back whatever became of the group: it is the answer.
            (Some(Err(refusal)), _) => Err(refusal),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (Some(Ok(_)), Err(e)) => Err(E::from(StoreError::Commit(e.to_string()))),
            // Never ran: the group failed before it, or it panicked.
            (None, Err(e)) => Err(E::from(StoreError::Commit(e.to_string()))),
            (None, Ok(())) => Err(E::from(StoreError::Join(
                "the operation panicked and was rolled back".into(),
            ))),
        };
        // A caller that went away (its request cancelled) needs no answer.
        let _ = self.reply.send(answer);
    }
}

/// The writer thread: groups, runs and commits every operation until the store is dropped.
fn writer(conn: Connection, queue: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        let outcome = run_group(&conn, &queue, &mut group);
        if outcome.is_err() {
            // Whatever the group wrote is undone; a failed rollback leaves nothing either
            // (the next BEGIN would fail and report it).
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in group {
            job.answer(outcome.as_ref().map(|_| ()));
        }
    }
}

/// Runs `group` and the operations that arrive while it runs (up to [`MAX_GROUP`]) in one
/// transaction, each in a savepoint, and commits.
fn run_group(
    conn: &Connection,
    queue: &mpsc::Receiver<Box<dyn Job>>,
    group: &mut Vec<Box<dyn Job>>,
) -> Result<(), StoreError> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let mut next = 0;
    loop {
        if next == group.len() {
            if group.len() >= MAX_GROUP {
                break;
            }
            match queue.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        conn.prepare_cached("SAVEPOINT operation")?.execute([])?;
        let job = &mut group[next];
        let ok = std::panic::catch_unwind(AssertUnwindSafe(|| {
            job.run(&mut Tx::new(&mut SqliteConn(conn)))
        }))
        .unwrap_or(false);
        if !ok {
            conn.prepare_cached("ROLLBACK TO operation")?.execute([])?;
        }
        conn.prepare_cached("RELEASE operation")?.execute([])?;
        next += 1;
    }
    conn.prepare_cached("COMMIT")?.execute([])?;
    Ok(())
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

/// SQLite's codes for a database that cannot take the operation for now: locked by another
/// process past the busy timeout, read-only, out of disk, or failing I/O.
pub(super) fn is_outage(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(
            C::DatabaseBusy
                | C::DatabaseLocked
                | C::ReadOnly
                | C::DiskFull
                | C::SystemIoFailure
                | C::CannotOpen
        )
    )
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
    use crate::domain::{BusinessId, SubscriptionStatus};
    use chrono::{TimeZone, Utc};

    fn business(id: &str) -> super::super::Business {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        super::super::Business {
            id: BusinessId::from_stored(id.into()),
            name: id.into(),
            seat_quantity: 1,
            included_seats: 1,
            renewal_date: at,
            billing_anchor: at,
            billing_status: SubscriptionStatus::Active,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn operations_committed_together_stay_all_or_nothing_each() {
        let store = SqliteStore::open(":memory:", crate::store::DEFAULT_TIMEOUT).unwrap();
        // Hold the writer inside a first operation while twenty more queue up behind it, so
        // that they run as one group.
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let first = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .transaction(move |tx| {
                        gate.recv().unwrap();
                        tx.insert_business(&business("biz_first"), Utc::now())
                    })
                    .await
            }
        });
        let mut others = Vec::new();
        for i in 0..20 {
            let store = store.clone();
            others.push(tokio::spawn(async move {
                store
                    .transaction(move |tx| -> Result<(), StoreError> {
                        tx.insert_business(&business(&format!("biz_{i}")), Utc::now())?;
                        match i % 4 {
                            // A refusal after a write: the write must not survive.
                            1 => Err(StoreError::Config(format!("refused {i}"))),
                            // A bug: the writer must survive it, and so must the others.
                            3 => panic!("operation {i} panicked"),
                            _ => Ok(()),
                        }
                    })
                    .await
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        release.send(()).unwrap();
        first.await.unwrap().unwrap();
        for (i, other) in others.into_iter().enumerate() {
            let result = other.await.unwrap();
            match i % 4 {
                1 => assert!(
                    matches!(result, Err(StoreError::Config(_))),
                    "{i}: {result:?}"
                ),
                3 => assert!(
                    matches!(result, Err(StoreError::Join(_))),
                    "{i}: {result:?}"
                ),
                _ => assert!(result.is_ok(), "{i}: {result:?}"),
            }
        }
        let stored = store
            .transaction(|tx| {
                (0..20)
                    .map(|i| {
                        let id = BusinessId::from_stored(format!("biz_{i}"));
                        Ok((i, tx.lock_business(&id)?.is_some()))
                    })
                    .collect::<Result<Vec<_>, StoreError>>()
            })
            .await
            .unwrap();
        for (i, present) in stored {
            assert_eq!(present, i % 4 == 0 || i % 4 == 2, "biz_{i}");
        }
    }

    /// A caller that gave up at the store's deadline was answered 503: its operation, still
    /// queued behind a stuck one, must not run later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_operation_whose_caller_passed_the_deadline_never_runs() {
        let deadline = std::time::Duration::from_millis(200);
        let store = crate::store::Store::open_with_timeout("sqlite::memory:", deadline).unwrap();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let (running, started) = tokio::sync::oneshot::channel::<()>();
        let stuck = tokio::spawn({
            let store = store.clone();
            async move {
                store
                    .transaction(move |tx| {
                        running.send(()).unwrap();
                        gate.recv().unwrap();
                        tx.insert_business(&business("biz_stuck"), Utc::now())
                    })
                    .await
            }
        });
        // The writer is inside the stuck operation before the late one queues behind it.
        started.await.unwrap();
        let late = store
            .transaction(|tx| tx.insert_business(&business("biz_late"), Utc::now()))
            .await;
        assert!(
            matches!(late, Err(StoreError::Deadline(d)) if d == deadline),
            "{late:?}"
        );
        assert!(late.unwrap_err().is_outage());
        release.send(()).unwrap();
        // The stuck one's caller gave up too; it had started, so it commits (its 503 says
        // that it may have).
        assert!(matches!(stuck.await.unwrap(), Err(StoreError::Deadline(_))));
        let present = store
            .transaction(|tx| {
                Ok::<_, StoreError>((
                    tx.lock_business(&BusinessId::from_stored("biz_stuck".into()))?
                        .is_some(),
                    tx.lock_business(&BusinessId::from_stored("biz_late".into()))?
                        .is_some(),
                ))
            })
            .await
            .unwrap();
        assert_eq!(present, (true, false));
    }

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
