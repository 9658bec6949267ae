//! The handler a team would write instead of this server: the reference every resend figure of
//! the benchmark is a ratio to. One dropshot endpoint, `POST
//! /businesses/me/invitations/{invitationId}/resend`, on the server's own schema and data:
//!
//! 1. the same bearer-JWT check (the server's `Verifier`, HS256);
//! 2. one transaction: the caller's role, the invitation (locked for the update on PostgreSQL;
//!    SQLite's `BEGIN IMMEDIATE` holds the one write lock), the state and cooldown checks, the
//!    update, an outbox row;
//! 3. then the invitation email, composed as the server composes it, written inline through the
//!    same file-drop transport;
//! 4. then the answer.
//!
//! What it does not do, and the server does: the daily email cap, seats for an expired
//! invitation coming back, Idempotency-Keys, an outcome recorded for the email (its outbox row
//! stays as inserted), retries, and answers that say only what is true of the email. The drivers
//! are the server's (rusqlite on one connection; the synchronous `postgres` crate in a pool of
//! 16 on the blocking threads, statements prepared once per connection as sqlx would), so that
//! what the comparison shows is the design, not the driver. With `BENCH_NAIVE_DRIVER=async` on
//! PostgreSQL it uses tokio-postgres instead (16 connections, no blocking threads, the same
//! statements one after the other): the measure of what an async driver would give the server.
//!
//!     bench-naive ADDR DATABASE_URL JWT_SECRET TOKEN_KEY MAIL_DIR

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, TimeZone, Utc};
use dropshot::{
    ApiDescription, ClientErrorStatusCode, ConfigDropshot, HttpError, HttpResponseOk, Path,
    RequestContext,
};
use leadping_invitations::auth::{AuthSettings, Verifier};
use leadping_invitations::domain::{InvitationId, Role};
use leadping_invitations::mail::{Invite, Mailer, accept_link, compose};
use leadping_invitations::tokens::TokenKey;

/// The validity of a resent invitation, and the cooldown between its emails (the benchmark runs
/// the server with a cooldown of 0).
const VALIDITY_MS: i64 = 7 * 24 * 3600 * 1000;
const COOLDOWN_MS: i64 = 0;

struct Naive {
    verifier: Verifier,
    db: Db,
    tokens: TokenKey,
    mailer: Mailer,
    from: lettre::message::Mailbox,
}

enum Db {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(r2d2::Pool<PgManager>),
    PostgresAsync(AsyncPool),
}

/// tokio-postgres connections, each with the statements prepared on it, handed out one request
/// at a time.
struct AsyncPool {
    give: tokio::sync::mpsc::UnboundedSender<AsyncConn>,
    take: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<AsyncConn>>,
}

struct AsyncConn {
    client: tokio_postgres::Client,
    prepared: HashMap<&'static str, tokio_postgres::Statement>,
}

impl AsyncPool {
    async fn connect(url: &str, size: usize) -> anyhow::Result<AsyncPool> {
        let (give, take) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..size {
            let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(connection);
            let _ = give.send(AsyncConn {
                client,
                prepared: HashMap::new(),
            });
        }
        Ok(AsyncPool {
            give,
            take: tokio::sync::Mutex::new(take),
        })
    }

    async fn get(&self) -> anyhow::Result<AsyncConn> {
        self.take
            .lock()
            .await
            .recv()
            .await
            .ok_or_else(|| anyhow::anyhow!("the pool is closed"))
    }

    fn put(&self, conn: AsyncConn) {
        let _ = self.give.send(conn);
    }
}

async fn pg_resend_async(
    conn: &mut AsyncConn,
    business: &str,
    user: &str,
    id: &str,
) -> anyhow::Result<Result<Row, Refusal>> {
    let AsyncConn { client, prepared } = conn;
    let mut statements = Vec::new();
    for sql in [MEMBER, INVITATION_PG, UPDATE, OUTBOX] {
        let stmt = match prepared.get(sql) {
            Some(s) => s.clone(),
            None => {
                let s = client.prepare(sql).await?;
                prepared.insert(sql, s.clone());
                s
            }
        };
        statements.push(stmt);
    }
    let tx = client.transaction().await?;
    let Some(caller) = tx.query_opt(&statements[0], &[&business, &user]).await? else {
        return Ok(Err(Refusal::Forbidden));
    };
    let caller: String = caller.get(0);
    let Some(r) = tx.query_opt(&statements[1], &[&business, &id]).await? else {
        return Ok(Err(Refusal::NotFound));
    };
    let now = Utc::now().timestamp_millis();
    let (role, status): (String, String) = (r.get(2), r.get(3));
    let last: i64 = r.get::<_, Option<i64>>(7).or(r.get(6)).unwrap_or(r.get(5));
    if let Err(refusal) = check(&caller, &role, &status, last, now) {
        return Ok(Err(refusal));
    }
    tx.execute(
        &statements[2],
        &[&business, &id, &now, &(now + VALIDITY_MS)],
    )
    .await?;
    let outbox_id: i64 = tx
        .query_one(&statements[3], &[&business, &id, &now])
        .await?
        .get(0);
    tx.commit().await?;
    Ok(Ok(Row {
        business_name: r.get(0),
        email: r.get(1),
        role,
        token_nonce: r.get(4),
        outbox_id,
        now,
    }))
}

/// A pooled PostgreSQL connection with the statements prepared on it.
struct PgConn {
    client: postgres::Client,
    prepared: HashMap<&'static str, postgres::Statement>,
}

struct PgManager(postgres::Config);

impl r2d2::ManageConnection for PgManager {
    type Connection = PgConn;
    type Error = postgres::Error;
    fn connect(&self) -> Result<PgConn, postgres::Error> {
        Ok(PgConn {
            client: self.0.connect(postgres::NoTls)?,
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

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct ResendPath {
    #[serde(rename = "invitationId")]
    invitation_id: String,
}

#[derive(serde::Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
struct Resent {
    id: String,
    business_id: String,
    business_name: String,
    email: String,
    role: String,
    status: String,
    expires_at: DateTime<Utc>,
    resent_at: DateTime<Utc>,
    safe_message: String,
}

/// What the transaction read and wrote, for the email and the answer.
struct Row {
    business_name: String,
    email: String,
    role: String,
    token_nonce: String,
    outbox_id: i64,
    /// The transaction's time, read once it held its lock (an earlier reading could be older
    /// than the resend committed just before, and fail the cooldown).
    now: i64,
}

/// Why a resend is refused.
enum Refusal {
    Forbidden,
    NotFound,
    Conflict,
    Cooldown,
}

const MEMBER: &str = "SELECT role FROM members WHERE business_id = $1 AND user_id = $2";
const INVITATION_SQLITE: &str = "SELECT b.name, i.email, i.role, i.status, i.token_nonce, \
     i.created_at, i.sent_at, i.resent_at FROM invitations i JOIN businesses b ON b.id = i.business_id \
     WHERE i.business_id = $1 AND i.id = $2";
const INVITATION_PG: &str = "SELECT b.name, i.email, i.role, i.status, i.token_nonce, \
     i.created_at, i.sent_at, i.resent_at FROM invitations i JOIN businesses b ON b.id = i.business_id \
     WHERE i.business_id = $1 AND i.id = $2 FOR UPDATE OF i";
const UPDATE: &str = "UPDATE invitations SET status = 'Resent', resent_at = $3, expires_at = $4, \
     send_failure_reason = NULL WHERE business_id = $1 AND id = $2";
const OUTBOX: &str = "INSERT INTO outbox (business_id, invitation_id, kind, created_at, due_at) \
     VALUES ($1, $2, 'resend', $3, $3) RETURNING id";

/// The checks on what the transaction read: the caller's role, the state, the cooldown.
fn check(caller: &str, role: &str, status: &str, last_email: i64, now: i64) -> Result<(), Refusal> {
    match (caller, role) {
        ("Owner", _) | ("Admin", "Admin" | "Agent") => {}
        _ => return Err(Refusal::Forbidden),
    }
    if matches!(status, "Accepted" | "Revoked") {
        return Err(Refusal::Conflict);
    }
    if now < last_email + COOLDOWN_MS {
        return Err(Refusal::Cooldown);
    }
    Ok(())
}

fn sqlite_resend(
    conn: &mut rusqlite::Connection,
    business: &str,
    user: &str,
    id: &str,
) -> anyhow::Result<Result<Row, Refusal>> {
    let sqlite = |sql: &str| sql.replace('$', "?");
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let now = Utc::now().timestamp_millis();
    let caller: Option<String> = {
        let mut stmt = tx.prepare_cached(&sqlite(MEMBER))?;
        let mut rows = stmt.query(rusqlite::params![business, user])?;
        rows.next()?.map(|r| r.get(0)).transpose()?
    };
    let Some(caller) = caller else {
        return Ok(Err(Refusal::Forbidden));
    };
    let found = {
        let mut stmt = tx.prepare_cached(&sqlite(INVITATION_SQLITE))?;
        let mut rows = stmt.query(rusqlite::params![business, id])?;
        match rows.next()? {
            None => None,
            Some(r) => Some((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
                r.get::<_, i64>(5)?,
                r.get::<_, Option<i64>>(6)?,
                r.get::<_, Option<i64>>(7)?,
            )),
        }
    };
    let Some((business_name, email, role, status, token_nonce, created, sent, resent)) = found
    else {
        return Ok(Err(Refusal::NotFound));
    };
    if let Err(refusal) = check(
        &caller,
        &role,
        &status,
        resent.or(sent).unwrap_or(created),
        now,
    ) {
        return Ok(Err(refusal));
    }
    tx.prepare_cached(&sqlite(UPDATE))?
        .execute(rusqlite::params![business, id, now, now + VALIDITY_MS])?;
    let outbox_id: i64 = tx
        .prepare_cached(&sqlite(OUTBOX))?
        .query_row(rusqlite::params![business, id, now], |r| r.get(0))?;
    tx.commit()?;
    Ok(Ok(Row {
        business_name,
        email,
        role,
        token_nonce,
        outbox_id,
        now,
    }))
}

fn pg_resend(
    conn: &mut PgConn,
    business: &str,
    user: &str,
    id: &str,
) -> anyhow::Result<Result<Row, Refusal>> {
    let PgConn { client, prepared } = conn;
    let mut stmt = |client: &mut postgres::Client, sql: &'static str| -> anyhow::Result<_> {
        if let Some(s) = prepared.get(sql) {
            return Ok(s.clone());
        }
        let s = client.prepare(sql)?;
        prepared.insert(sql, s.clone());
        Ok(s)
    };
    let statements = [
        stmt(client, MEMBER)?,
        stmt(client, INVITATION_PG)?,
        stmt(client, UPDATE)?,
        stmt(client, OUTBOX)?,
    ];
    let mut tx = client.transaction()?;
    let Some(caller) = tx.query_opt(&statements[0], &[&business, &user])? else {
        return Ok(Err(Refusal::Forbidden));
    };
    let caller: String = caller.get(0);
    let Some(r) = tx.query_opt(&statements[1], &[&business, &id])? else {
        return Ok(Err(Refusal::NotFound));
    };
    let now = Utc::now().timestamp_millis();
    let (role, status): (String, String) = (r.get(2), r.get(3));
    let last: i64 = r.get::<_, Option<i64>>(7).or(r.get(6)).unwrap_or(r.get(5));
    if let Err(refusal) = check(&caller, &role, &status, last, now) {
        return Ok(Err(refusal));
    }
    tx.execute(
        &statements[2],
        &[&business, &id, &now, &(now + VALIDITY_MS)],
    )?;
    let outbox_id: i64 = tx
        .query_one(&statements[3], &[&business, &id, &now])?
        .get(0);
    tx.commit()?;
    Ok(Ok(Row {
        business_name: r.get(0),
        email: r.get(1),
        role,
        token_nonce: r.get(4),
        outbox_id,
        now,
    }))
}

fn internal(e: impl std::fmt::Display) -> HttpError {
    HttpError::for_internal_error(e.to_string())
}

#[dropshot::endpoint {
    method = POST,
    path = "/businesses/me/invitations/{invitationId}/resend",
}]
async fn resend(
    rqctx: RequestContext<Arc<Naive>>,
    path: Path<ResendPath>,
) -> Result<HttpResponseOk<Resent>, HttpError> {
    let naive = Arc::clone(rqctx.context());
    let header = rqctx
        .request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let identity = naive.verifier.verify(header).map_err(|e| {
        HttpError::for_client_error(None, ClientErrorStatusCode::UNAUTHORIZED, e.to_string())
    })?;
    let id = path.into_inner().invitation_id;
    let (business, user) = (
        identity.business_id.to_string(),
        identity.user_id.to_string(),
    );
    let (b, u, i) = (business.clone(), user, id.clone());
    let outcome = if let Db::PostgresAsync(pool) = &naive.db {
        let mut conn = pool.get().await.map_err(internal)?;
        let outcome = pg_resend_async(&mut conn, &b, &u, &i).await;
        pool.put(conn);
        outcome.map_err(internal)?
    } else {
        let worker = Arc::clone(&naive);
        tokio::task::spawn_blocking(move || match &worker.db {
            Db::Sqlite(conn) => sqlite_resend(&mut conn.lock().unwrap(), &b, &u, &i),
            Db::Postgres(pool) => pg_resend(&mut *pool.get()?, &b, &u, &i),
            Db::PostgresAsync(_) => unreachable!("answered above"),
        })
        .await
        .map_err(internal)?
        .map_err(internal)?
    };
    let row = match outcome {
        Ok(row) => row,
        Err(refusal) => {
            let (status, why) = match refusal {
                Refusal::Forbidden => (ClientErrorStatusCode::FORBIDDEN, "forbidden"),
                Refusal::NotFound => (ClientErrorStatusCode::NOT_FOUND, "no such invitation"),
                Refusal::Conflict => (ClientErrorStatusCode::CONFLICT, "not resendable"),
                Refusal::Cooldown => (ClientErrorStatusCode::TOO_MANY_REQUESTS, "cooldown"),
            };
            return Err(HttpError::for_client_error(None, status, why.to_string()));
        }
    };
    let now = row.now;
    let role: Role = row.role.parse().map_err(internal)?;
    let expires_at = Utc.timestamp_millis_opt(now + VALIDITY_MS).unwrap();
    let invitation_id = InvitationId::parse(&id).ok_or_else(|| internal("a stored id"))?;
    let invite = Invite {
        outbox_id: row.outbox_id,
        invitation_id: &id,
        to: &row.email,
        business_name: &row.business_name,
        role,
        expires_at,
        accept_link: accept_link(
            "http://localhost:3000/invitations/accept",
            &naive.tokens.token(&invitation_id, &row.token_nonce),
        ),
        resend: true,
    };
    let message = compose(&naive.from, &invite).map_err(internal)?;
    let sent = naive.mailer.send(message).await;
    if !matches!(
        sent,
        leadping_invitations::domain::delivery::SendOutcome::Accepted
    ) {
        return Err(internal(format!("the email was not written: {sent:?}")));
    }
    Ok(HttpResponseOk(Resent {
        id,
        business_id: business,
        business_name: row.business_name,
        safe_message: format!("Invitation resent to {}.", row.email),
        email: row.email,
        role: row.role,
        status: "Resent".into(),
        expires_at,
        resent_at: Utc.timestamp_millis_opt(now).unwrap(),
    }))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bind, url, secret, token_key, mail_dir] = args.as_slice() else {
        anyhow::bail!("usage: bench-naive ADDR DATABASE_URL JWT_SECRET TOKEN_KEY MAIL_DIR");
    };
    let db = if url.starts_with("postgres")
        && std::env::var("BENCH_NAIVE_DRIVER").as_deref() == Ok("async")
    {
        Db::PostgresAsync(AsyncPool::connect(url, 16).await?)
    } else if url.starts_with("postgres") {
        let config: postgres::Config = url.parse()?;
        let pool = tokio::task::spawn_blocking(move || {
            r2d2::Pool::builder().max_size(16).build(PgManager(config))
        })
        .await??;
        Db::Postgres(pool)
    } else {
        let path = url
            .strip_prefix("sqlite://")
            .ok_or_else(|| anyhow::anyhow!("sqlite://PATH or postgres://..."))?;
        let conn = rusqlite::Connection::open(path)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        Db::Sqlite(Arc::new(Mutex::new(conn)))
    };
    let naive = Naive {
        verifier: Verifier::from_settings(&AuthSettings {
            hs256_secret: Some(secret.clone()),
            ..Default::default()
        })?,
        db,
        tokens: TokenKey::new(token_key.as_bytes())?,
        mailer: Mailer::files(std::path::Path::new(mail_dir))?,
        from: "Leadping <invitations@leadping.localhost>".parse()?,
    };
    let mut api = ApiDescription::new();
    api.register(resend)?;
    let log = slog::Logger::root(slog::Discard, slog::o!());
    let server = dropshot::ServerBuilder::new(api, Arc::new(naive), log)
        .config(ConfigDropshot {
            bind_address: bind.parse()?,
            ..Default::default()
        })
        .start()?;
    server.await.map_err(|e| anyhow::anyhow!(e))
}
