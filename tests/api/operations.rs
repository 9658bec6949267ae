//! What operators rely on: a graceful shutdown that loses and repeats nothing, and a delivery
//! lease that a stalled worker cannot outlive.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use leadping_invitations::domain::Role;
use leadping_invitations_client::types::CreateBusinessInvitationRequest;

use crate::helpers::{
    Backend, ServerProcess, delivery_settings, invitation_id, process_database, spawn_app_full,
    temp_dir, token,
};
use crate::smtp::FakeSmtp;

crate::on_both_databases!(
    an_outcome_is_recorded_only_under_the_newest_claim_of_its_row,
    sigterm_during_a_burst_answers_every_request_and_sends_every_email_once,
    no_credential_or_address_reaches_the_log_in_either_format,
    a_read_only_database_is_reported_at_start_and_by_readiness_and_writes_answer_503,
);

/// A worker stalls past its lease; another claims the row again. The stalled worker's outcome,
/// whatever it is, changes nothing; the newer claim's is the one recorded.
async fn an_outcome_is_recorded_only_under_the_newest_claim_of_its_row(backend: Backend) {
    let mut settings = delivery_settings();
    // No delivery loop of its own, and no wait for one: this test claims by hand.
    settings.concurrency = 0;
    settings.wait = StdDuration::ZERO;
    let Some(t) = spawn_app_full(backend, Default::default(), settings).await else {
        return;
    };
    let b = t.business("fence").await;
    // Created through the API: queued, and (with no loop and no wait) not sent.
    let id = crate::delivery::create(&t, &b, "ann@example.com").await.id;
    let start = Utc::now();
    let lease = Duration::seconds(60);
    let stalled = t
        .with_store(move |tx| tx.claim_outbox(start, start + lease, 10))
        .await;
    assert_eq!(stalled.len(), 1, "the create's email is claimed");
    // The lease runs out while the first worker is stalled; a second worker claims the row.
    let later = start + lease + Duration::seconds(1);
    let newer = t
        .with_store(move |tx| tx.claim_outbox(later, later + lease, 10))
        .await;
    assert_eq!(newer.len(), 1, "the lapsed claim is claimed again");
    let (stalled, newer) = (stalled[0].clone(), newer[0].clone());
    assert_eq!(stalled.id, newer.id);
    assert_ne!(stalled.claim, newer.claim, "each claim has its own fence");

    // Whatever the stalled worker comes back with is refused, and leaves the row as it was.
    let (s, now) = (stalled.clone(), later + Duration::seconds(1));
    let refused = t
        .with_store(move |tx| {
            Ok([
                tx.outbox_failed(&s, now, "550 refused")?,
                tx.outbox_retry(&s, now, "451 later")?,
                tx.outbox_release(&s)?,
                tx.outbox_delivered(&s, now)?,
            ])
        })
        .await;
    assert_eq!(refused, [false; 4], "a lapsed claim records nothing");
    let row_id = stalled.id;
    let state = t
        .with_store(move |tx| tx.outbox_state(row_id))
        .await
        .unwrap();
    assert!(!state.delivered && !state.failed && !state.superseded);
    assert_eq!(state.attempts, 0);
    assert_eq!(state.last_error, None);
    // Nor is the row due for anyone else: the newer claim still holds it.
    let none = t
        .with_store(move |tx| tx.claim_outbox(now, now + lease, 10))
        .await;
    assert!(none.is_empty(), "the newer claim's lease still holds");

    // The newer claim records its outcome.
    let n = newer.clone();
    assert!(t.with_store(move |tx| tx.outbox_delivered(&n, now)).await);
    let state = t
        .with_store(move |tx| tx.outbox_state(row_id))
        .await
        .unwrap();
    assert!(state.delivered && !state.failed);
    assert_eq!(state.attempts, 1);
    // The invitation's newest email is still this one.
    let iid = invitation_id(&id);
    assert_eq!(
        t.with_store(move |tx| tx.latest_outbox_id(&iid)).await,
        Some(row_id)
    );
}

/// SIGTERM while creates are sending their own emails to a slow relay: every request is
/// answered, the sends under way finish and their outcomes are recorded before the process
/// exits on its own well within its grace (no claim is left to wait out a minute's lease), and
/// every email is sent exactly once, the next process sending none again.
async fn sigterm_during_a_burst_answers_every_request_and_sends_every_email_once(backend: Backend) {
    let dir = temp_dir("sigterm");
    let Some(database_url) = process_database(backend, &dir).await else {
        return;
    };
    let smtp = FakeSmtp::start().await;
    smtp.slow(StdDuration::from_millis(1000));
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "t").await;
    let env = [
        ("LEADPING_DELIVERY_WAIT_MS", "1500"),
        ("LEADPING_DELIVERY_LEASE_SECS", "60"),
        ("LEADPING_SHUTDOWN_GRACE_SECS", "20"),
        ("LEADPING_LOG_LEVEL", "info"),
    ];
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let mut first =
        tokio::task::spawn_blocking(move || ServerProcess::start_with(&url, &d, &s, true, &env))
            .await
            .unwrap();
    let client = first.client(&token("biz_t", "usr_t", "Owner"));
    let n = 24;
    let calls: Vec<_> = (0..n)
        .map(|i| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .create_business_invitation()
                    .body(CreateBusinessInvitationRequest {
                        email: format!("person{i}@example.com"),
                        role: None,
                    })
                    .send()
                    .await
            })
        })
        .collect();
    // Every request has arrived and is waiting for its email, which takes the relay a second.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    let sent_before = smtp.received().len();
    assert!(sent_before < n, "the burst is still under way at SIGTERM");
    let status = tokio::task::spawn_blocking(move || {
        let status = first.terminate(StdDuration::from_secs(15));
        (status, first)
    })
    .await
    .unwrap();
    let (status, first) = status;
    let status = status.expect("the process exits on SIGTERM within 15 s");
    assert!(status.success(), "a graceful shutdown exits 0: {status:?}");
    for call in calls {
        let answer = call.await.unwrap();
        assert!(
            answer.is_ok(),
            "a request under way at SIGTERM is answered: {answer:?}"
        );
    }
    drop(first);
    // Every email went out before the exit, and every outcome was recorded.
    assert_eq!(smtp.received().len(), n, "every send under way finished");
    let (waiting, _) = seed
        .store
        .transaction(|tx| tx.outbox_backlog())
        .await
        .unwrap();
    assert_eq!(waiting, 0, "every outcome was recorded before the exit");

    // The next process has nothing to send again.
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let second = tokio::task::spawn_blocking(move || ServerProcess::start(&url, &d, &s, true))
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    while smtp.received().len() < n && std::time::Instant::now() < deadline {
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    // Give a duplicate the chance to show up.
    tokio::time::sleep(StdDuration::from_millis(500)).await;
    for i in 0..n {
        let to = format!("person{i}@example.com");
        assert_eq!(
            smtp.received_for(&to).len(),
            1,
            "{to}: sent exactly once across the shutdown"
        );
    }
    drop((second, seed));
    crate::helpers::remove_process_database(&database_url, &dir);
}

/// `GET /health/live` always answers 200; `GET /health/ready` 200 with every check passing.
/// Neither needs a token, and neither is part of the API document.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_checks_answer_without_a_token_and_stay_out_of_the_contract() {
    let Some(t) = crate::helpers::spawn_app(Backend::Sqlite).await else {
        return;
    };
    let live = t
        .http
        .get(format!("{}/health/live", t.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), 200);
    let ready = t
        .http
        .get(format!("{}/health/ready", t.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["ready"], true, "{body}");
    assert_eq!(body["store"], "ok", "{body}");
    assert_eq!(body["delivery"], "running", "{body}");
    let contract: serde_json::Value =
        serde_json::from_str(leadping_invitations::OPENAPI_JSON).unwrap();
    assert!(
        contract["paths"]
            .as_object()
            .unwrap()
            .keys()
            .all(|p| !p.starts_with("/health")),
        "health checks are not API operations"
    );
    // A stopped delivery loop makes the replica not ready.
    t.delivery.stop();
    assert!(
        t.eventually(5, async || {
            let r = t
                .http
                .get(format!("{}/health/ready", t.base_url))
                .send()
                .await
                .unwrap();
            r.status() == 503
        })
        .await,
        "not ready once the delivery loop has stopped"
    );
}

/// The test's own PostgreSQL stops under a running server: requests answer 503 with a problem
/// and Retry-After within about the database timeout (not 500, not after 10 s), readiness goes
/// false, and once the database is back everything recovers without a restart. A replica
/// started during an outage waits for the database, then serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_outage_answers_503_with_retry_after_and_recovers_without_a_restart() {
    let Some(OnOwnPostgres {
        pg,
        url,
        smtp,
        dir,
        server,
    }) = on_own_postgres("o", &[]).await
    else {
        return;
    };
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token("biz_o", "usr_o", "Owner"));
    let list = || {
        http.get(format!("{}/businesses/me/invitations", server.base_url))
            .header("authorization", &auth)
            .send()
    };
    let ready = || http.get(format!("{}/health/ready", server.base_url)).send();
    let create = || {
        http.post(format!("{}/businesses/me/invitations", server.base_url))
            .header("authorization", &auth)
            .json(&serde_json::json!({"email": "ann@example.com"}))
            .send()
    };
    assert_eq!(list().await.unwrap().status(), 200);
    assert_eq!(ready().await.unwrap().status(), 200);

    let pg = tokio::task::spawn_blocking(move || {
        pg.stop();
        pg
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let answer = list().await.unwrap();
    let took = started.elapsed();
    assert_eq!(answer.status(), 503, "a database outage is a 503");
    assert!(
        took < StdDuration::from_secs(5),
        "answered within about the database timeout (1 s), took {took:?}"
    );
    let retry_after: u64 = answer.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after >= 1);
    assert_eq!(answer.headers()["content-type"], "application/problem+json");
    let problem: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(problem["status"], 503, "{problem}");
    let refused = create().await.unwrap();
    assert_eq!(refused.status(), 503, "a write during the outage is a 503");
    let not_ready = ready().await.unwrap();
    assert_eq!(not_ready.status(), 503);
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert_eq!(body["store"], "unavailable", "{body}");

    let _pg = tokio::task::spawn_blocking(move || {
        pg.resume();
        pg
    })
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let status = list().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "only 503 while the database comes back");
        assert!(
            std::time::Instant::now() < deadline,
            "recovered without a restart"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    let created = create().await.unwrap();
    assert_eq!(created.status(), 200, "writes work again");
    let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
    while smtp.received_for("ann@example.com").is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery loop recovered too"
        );
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
    while ready().await.unwrap().status() != 200 {
        assert!(std::time::Instant::now() < deadline, "ready again");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }

    // A replica started while the database is down waits for it instead of exiting, and
    // serves once it is back.
    let pg = tokio::task::spawn_blocking(move || {
        _pg.stop();
        _pg
    })
    .await
    .unwrap();
    let (u, d, s) = (url.clone(), dir.clone(), smtp.url());
    let starting = tokio::task::spawn_blocking(move || ServerProcess::start(&u, &d, &s, true));
    tokio::time::sleep(StdDuration::from_millis(1500)).await;
    assert!(
        !starting.is_finished(),
        "no replica serves without its database"
    );
    let _pg = tokio::task::spawn_blocking(move || {
        pg.resume();
        pg
    })
    .await
    .unwrap();
    let late = tokio::time::timeout(StdDuration::from_secs(20), starting)
        .await
        .expect("the waiting replica starts once the database is back")
        .unwrap();
    let answer = http
        .get(format!("{}/businesses/me/invitations", late.base_url))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    drop((server, late));
    let _ = std::fs::remove_dir_all(dir);
}

/// A database that stops answering without closing anything (SIGSTOP: a frozen host, a
/// partition that drops packets, a lock that never clears) is an outage like any other: with
/// connections already pooled, every request answers 503 with Retry-After within the database
/// timeout, readiness answers that the store is unavailable, and a create that was answered 503
/// does not commit when the database comes back. Then everything works again, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hung_database_answers_503_within_the_deadline_and_commits_nothing_after_it() {
    let Some(OnOwnPostgres {
        pg,
        dir,
        server,
        smtp: _relay,
        ..
    }) = on_own_postgres("h", &[("LEADPING_DATABASE_TIMEOUT_MS", "1000")]).await
    else {
        return;
    };
    let base = server.base_url.clone();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token("biz_h", "usr_h", "Owner"));
    let list = {
        let (http, base, auth) = (http.clone(), base.clone(), auth.clone());
        move || {
            http.get(format!("{base}/businesses/me/invitations"))
                .header("authorization", &auth)
                .send()
        }
    };
    let create = |email: &str| {
        http.post(format!("{base}/businesses/me/invitations"))
            .header("authorization", &auth)
            .json(&serde_json::json!({ "email": email }))
            .send()
    };
    // Connections in the pool, as under traffic.
    for _ in 0..3 {
        let answers = futures_join((0..8).map(|_| list())).await;
        assert!(answers.iter().all(|r| r.status() == 200));
    }

    pg.freeze();
    let started = std::time::Instant::now();
    let lists: Vec<_> = (0..30).map(|_| list()).collect();
    let lists = tokio::spawn(futures_join(lists.into_iter()));
    let hung_create = create("frozen@example.com");
    let ready = http.get(format!("{base}/health/ready")).send();
    let (hung_create, ready) = tokio::join!(hung_create, ready);
    let lists = lists.await.unwrap();
    let took = started.elapsed();
    assert!(
        took < StdDuration::from_secs(4),
        "every request answered within about the 1 s deadline, all took {took:?}"
    );
    for answer in lists.iter().chain([hung_create.as_ref().unwrap()]) {
        assert_eq!(answer.status(), 503, "a hung database is an outage");
        let retry_after: u64 = answer.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(retry_after >= 1);
    }
    let ready = ready.unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["store"], "unavailable", "{body}");

    pg.thaw();
    let deadline = std::time::Instant::now() + StdDuration::from_secs(20);
    loop {
        let status = list().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503, "only 503 while the database comes back");
        assert!(std::time::Instant::now() < deadline, "recovered");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    assert_eq!(create("thawed@example.com").await.unwrap().status(), 200);
    // The frozen create was stopped before its commit: answered 503, it did not happen later.
    let listed: Vec<serde_json::Value> = list().await.unwrap().json().await.unwrap();
    let emails: Vec<&str> = listed.iter().filter_map(|i| i["email"].as_str()).collect();
    assert_eq!(emails, ["thawed@example.com"], "{listed:?}");
    let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
    while http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(std::time::Instant::now() < deadline, "ready again");
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

/// A server process on a PostgreSQL of the test's own (which the test may stop, freeze and
/// start again), with business `biz_NAME` and its Owner `usr_NAME` seeded, sending through a
/// fake relay; `None` where PostgreSQL's server tools are not installed.
struct OnOwnPostgres {
    pg: crate::own_postgres::OwnPostgres,
    url: String,
    smtp: FakeSmtp,
    dir: std::path::PathBuf,
    server: ServerProcess,
}

async fn on_own_postgres(
    name: &str,
    env: &[(&'static str, &'static str)],
) -> Option<OnOwnPostgres> {
    let pg = tokio::task::spawn_blocking(crate::own_postgres::OwnPostgres::start)
        .await
        .unwrap()?;
    let url = pg.url();
    let seed = crate::helpers::app_on(&url).await;
    crate::helpers::seed_owner(&seed, name).await;
    drop(seed);
    let smtp = FakeSmtp::start().await;
    let dir = temp_dir(name);
    let (u, d, s, env) = (url.clone(), dir.clone(), smtp.url(), env.to_vec());
    let server =
        tokio::task::spawn_blocking(move || ServerProcess::start_with(&u, &d, &s, true, &env))
            .await
            .unwrap();
    Some(OnOwnPostgres {
        pg,
        url,
        smtp,
        dir,
        server,
    })
}

/// A lock that never clears (another session holding the business row): the request waiting on
/// it answers 503 within the database timeout, and the server itself cancels the waiting
/// statement at the same time (`statement_timeout`), rather than leave it queued on the lock,
/// holding a connection, after the request has been answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_statement_stuck_on_a_lock_is_cancelled_by_the_server_at_the_deadline() {
    let dir = temp_dir("stuck-lock");
    let Some(database_url) = process_database(Backend::Postgres, &dir).await else {
        eprintln!("SKIPPED (PostgreSQL): TEST_DATABASE_URL is not set");
        return;
    };
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "k").await;
    let smtp = FakeSmtp::start().await;
    let (u, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let server = tokio::task::spawn_blocking(move || {
        ServerProcess::start_with(
            &u,
            &d,
            &s,
            false,
            &[("LEADPING_DATABASE_TIMEOUT_MS", "1000")],
        )
    })
    .await
    .unwrap();
    // Another session takes the business row and keeps it.
    let (release, locked) = std::sync::mpsc::channel::<()>();
    let (held, holding) = std::sync::mpsc::channel::<()>();
    let url = database_url.clone();
    let locker = std::thread::spawn(move || {
        let mut c = ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap();
        let mut tx = c.transaction().unwrap();
        tx.batch_execute("SELECT * FROM businesses WHERE id = 'biz_k' FOR UPDATE")
            .unwrap();
        held.send(()).unwrap();
        let _ = locked.recv();
        tx.rollback().unwrap();
    });
    holding.recv().unwrap();
    let http = reqwest::Client::new();
    let create = || {
        http.post(format!("{}/businesses/me/invitations", server.base_url))
            .header(
                "authorization",
                format!("Bearer {}", token("biz_k", "usr_k", "Owner")),
            )
            .json(&serde_json::json!({"email": "ann@example.com"}))
            .send()
    };
    let started = std::time::Instant::now();
    let answer = create().await.unwrap();
    assert_eq!(
        answer.status(),
        503,
        "a lock that never clears is an outage"
    );
    assert!(
        started.elapsed() < StdDuration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // The waiting statement is gone from the server, not left queued on the lock.
    let name = database_url.rsplit_once('/').unwrap().1.to_string();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    let waiting = tokio::task::spawn_blocking(move || {
        let mut c = ::postgres::Client::connect(&admin, ::postgres::NoTls).unwrap();
        let deadline = std::time::Instant::now() + StdDuration::from_secs(5);
        loop {
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'",
                    &[&name],
                )
                .unwrap()
                .get(0);
            if n == 0 || std::time::Instant::now() > deadline {
                break n;
            }
            std::thread::sleep(StdDuration::from_millis(100));
        }
    })
    .await
    .unwrap();
    assert_eq!(
        waiting, 0,
        "the server cancelled the statement waiting on the lock"
    );
    release.send(()).unwrap();
    locker.join().unwrap();
    assert_eq!(
        create().await.unwrap().status(),
        200,
        "the lock gone, it works"
    );
    drop((server, seed));
    crate::helpers::remove_process_database(&database_url, &dir);
}

/// Every request of `requests` sent at once; their responses in order.
async fn futures_join<F>(requests: impl Iterator<Item = F>) -> Vec<reqwest::Response>
where
    F: std::future::Future<Output = reqwest::Result<reqwest::Response>> + Send + 'static,
{
    let handles: Vec<_> = requests.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap().unwrap());
    }
    out
}

/// Two server processes on one PostgreSQL take creates and resends at once; one is SIGKILLed
/// mid-run. Every request that got a 200 is stored; every stored invitation's newest email is
/// delivered (its Message-ID at the relay; a copy twice only where the killed process may have
/// sent it before recording it, at least once being the outbox's promise); an Idempotency-Key
/// replays across replicas; the daily cap holds across both.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_one_killed_mid_run_lose_nothing_and_hold_every_limit() {
    let Some(database_url) = tokio::task::spawn_blocking(crate::helpers::fresh_postgres_database)
        .await
        .unwrap()
    else {
        return;
    };
    let smtp = FakeSmtp::start().await;
    smtp.slow(StdDuration::from_millis(30));
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "k").await;
    let cap = 45;
    let cap_text = cap.to_string();
    let env = [
        ("LEADPING_RESEND_COOLDOWN_SECS", "0"),
        ("LEADPING_DAILY_EMAIL_CAP", cap_text.as_str()),
    ];
    let dir = temp_dir("replicas-kill");
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let env_owned: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let (a, b) = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = env_owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        (
            ServerProcess::start_with(&url, &d, &s, true, &env),
            ServerProcess::start_with(&url, &d, &s, true, &env),
        )
    })
    .await
    .unwrap();
    let tok = token("biz_k", "usr_k", "Owner");
    let (ca, cb) = (a.client(&tok), b.client(&tok));
    // One Idempotency-Key, one request at each replica: one invitation.
    let mut answers = Vec::new();
    for client in [&ca, &cb] {
        let answer = client
            .create_business_invitation()
            .idempotency_key("shared-key")
            .body(CreateBusinessInvitationRequest {
                email: "shared@example.com".into(),
                role: None,
            })
            .send()
            .await
            .unwrap()
            .into_inner();
        answers.push(answer);
    }
    let (first, again) = (&answers[0], &answers[1]);
    assert_eq!(first.id, again.id, "the key replays on the other replica");

    // Creates at both at once; the first replica is killed while they run.
    let creates: Vec<_> = (0..30)
        .map(|i| {
            let client = if i % 2 == 0 { ca.clone() } else { cb.clone() };
            tokio::spawn(async move {
                tokio::time::sleep(StdDuration::from_millis(10 * i)).await;
                let r = client
                    .create_business_invitation()
                    .body(CreateBusinessInvitationRequest {
                        email: format!("person{i}@example.com"),
                        role: None,
                    })
                    .send()
                    .await;
                r.ok().map(|r| r.into_inner().id)
            })
        })
        .collect();
    tokio::time::sleep(StdDuration::from_millis(150)).await;
    tokio::task::spawn_blocking(move || a.kill()).await.unwrap();
    let mut stored = vec![first.id.clone()];
    for call in creates {
        if let Some(id) = call.await.unwrap() {
            stored.push(id);
        }
    }
    assert!(stored.len() > 10, "most creates answered: {}", stored.len());

    // Resends at the survivor until the daily cap, shared with the creates, refuses them.
    let mut resent = 0;
    let mut capped = 0;
    for id in stored.iter().cycle().take(40) {
        match cb
            .resend_business_invitation()
            .invitation_id(id)
            .send()
            .await
        {
            Ok(_) => resent += 1,
            Err(leadping_invitations_client::Error::ErrorResponse(r)) if r.status() == 429 => {
                capped += 1
            }
            Err(e) => panic!("resend: {e:?}"),
        }
    }
    assert!(capped > 0 && resent > 0, "resent {resent}, capped {capped}");
    let business = crate::helpers::business_id("biz_k");
    let day = Utc::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_utc();
    let emails = seed
        .store
        .transaction(move |tx| tx.emails_on(&business, day))
        .await
        .unwrap();
    assert_eq!(
        emails, cap,
        "the cap held across both replicas, to the email"
    );

    // Every answered invitation is stored, and its newest email is delivered (the killed
    // replica's claims lapse after the 2 s lease and are sent by the survivor).
    let deadline = std::time::Instant::now() + StdDuration::from_secs(30);
    for id in &stored {
        let (business, iid) = (crate::helpers::business_id("biz_k"), invitation_id(id));
        let record = seed
            .store
            .transaction(move |tx| {
                let record = tx.invitation(&business, &iid)?;
                let newest = tx.latest_outbox_id(&iid)?;
                Ok::<_, leadping_invitations::store::StoreError>((record, newest))
            })
            .await
            .unwrap();
        let (record, newest) = record;
        assert!(record.is_some(), "{id}: answered 200, so stored");
        let newest = newest.expect("an email for every invitation");
        let wanted = format!("<outbox-{newest}.{id}@");
        loop {
            let at_relay = smtp
                .received()
                .iter()
                .filter(|m| {
                    m.header("Message-ID")
                        .is_some_and(|h| h.starts_with(&wanted))
                })
                .count();
            if at_relay > 0 {
                assert!(at_relay <= 2, "{wanted}: sent {at_relay} times");
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{id}: its newest email ({wanted}) reached the relay"
            );
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
    }
    // Copies of one message: only what the killed replica may have sent without recording.
    let mut ids: Vec<String> = smtp
        .received()
        .iter()
        .filter_map(|m| m.header("Message-ID"))
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert!(
        total - ids.len() <= 4,
        "at most the killed replica's sends in flight (4) went twice: {} copies",
        total - ids.len()
    );
    drop((b, seed));
    crate::helpers::remove_process_database(&database_url, &dir);
}

/// `serve --production` with local defaults refuses to start, naming each setting to set and
/// creating nothing; `LEADPING_ENV=production` with everything set starts and serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn production_mode_refuses_local_defaults_by_name_and_starts_when_all_is_set() {
    let dir = temp_dir("production");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadping-invitations"))
        .args(["serve", "--production", "--bind", "127.0.0.1:0"])
        .env("LEADPING_DATA_DIR", &dir)
        .env_remove("LEADPING_ENV")
        .output()
        .expect("the binary runs");
    assert!(!out.status.success(), "refused to start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    for setting in [
        "LEADPING_JWT_SECRET",
        "LEADPING_TOKEN_KEY",
        "LEADPING_SMTP_URL",
        "LEADPING_DATABASE_URL",
        "LEADPING_ACCEPT_URL",
    ] {
        assert!(stderr.contains(setting), "{setting} named in:\n{stderr}");
    }
    assert!(
        std::fs::read_dir(&dir).unwrap().next().is_none(),
        "a refused start creates nothing (no generated secret, no database)"
    );

    let Some(database_url) = process_database(Backend::Postgres, &dir).await else {
        let _ = std::fs::remove_dir_all(dir);
        return;
    };
    let smtp = FakeSmtp::start().await;
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let server = tokio::task::spawn_blocking(move || {
        ServerProcess::start_with(
            &url,
            &d,
            &s,
            true,
            &[
                ("LEADPING_ENV", "production"),
                (
                    "LEADPING_ACCEPT_URL",
                    "https://app.example.com/invitations/accept",
                ),
            ],
        )
    })
    .await
    .unwrap();
    let ready = reqwest::get(format!("{}/health/ready", server.base_url))
        .await
        .unwrap();
    assert_eq!(
        ready.status(),
        200,
        "a fully configured production server serves"
    );
    drop(server);
    crate::helpers::remove_process_database(&database_url, &dir);
}

/// A full scenario, hostile requests included, in both log formats: no bearer token, acceptance
/// token (nor its MAC), secret or email address appears in any log line; the lines that must be
/// there are (one per request, naming its operation and, for a problem, its type; one per
/// delivery attempt).
async fn no_credential_or_address_reaches_the_log_in_either_format(backend: Backend) {
    for format in ["json", "text"] {
        let dir = temp_dir("log-grep");
        let Some(database_url) = process_database(backend, &dir).await else {
            return;
        };
        let smtp = FakeSmtp::start().await;
        smtp.reject("refused.person@example.com");
        let seed = crate::helpers::app_on(&database_url).await;
        seed.create_business(
            "biz_l",
            "Log Inc",
            vec![("usr_l".into(), "owner.l@example.com".into(), Role::Owner)],
            1,
        )
        .await
        .unwrap();
        let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
        let env = [
            ("LEADPING_LOG_FORMAT", format),
            ("LEADPING_LOG_LEVEL", "info"),
            ("LEADPING_DELIVERY_WAIT_MS", "2000"),
        ];
        let mut server = tokio::task::spawn_blocking(move || {
            ServerProcess::start_with(&url, &d, &s, true, &env)
        })
        .await
        .unwrap();
        let base = server.base_url.clone();
        let bearer = token("biz_l", "usr_l", "Owner");
        let http = reqwest::Client::new();
        let auth = format!("Bearer {bearer}");
        let create = |email: &str| {
            http.post(format!("{base}/businesses/me/invitations"))
                .header("authorization", &auth)
                .json(&serde_json::json!({ "email": email }))
                .send()
        };
        let created: serde_json::Value = create("zed.person@example.com")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let id = created["id"].as_str().unwrap().to_string();
        assert_eq!(
            create("refused.person@example.com").await.unwrap().status(),
            200
        );
        // Refused addresses: invisible characters, no domain.
        for bad in [
            "zed\u{200b}@example.com",
            "not-an-address@",
            "x y@example.com",
        ] {
            assert_eq!(create(bad).await.unwrap().status(), 400, "{bad}");
        }
        let (b, i) = (crate::helpers::business_id("biz_l"), invitation_id(&id));
        let record = seed
            .store
            .transaction(move |tx| tx.invitation(&b, &i))
            .await
            .unwrap()
            .unwrap();
        let acceptance = seed.token_of(&record);
        let mac = acceptance.split_once('.').unwrap().1.to_string();
        let get = |path: String| http.get(format!("{base}{path}")).send();
        for path in [
            format!("/businesses/invitations/token/{acceptance}"),
            format!("/Businesses/Invitations/Token/{acceptance}"),
            format!("/businesses/invitations/token/x?token={acceptance}"),
            format!("/businesses/me/invitations?token={acceptance}&bearer={bearer}"),
            format!("/nowhere/{acceptance}/zed.person@example.com"),
            // Percent-encoded, as the router and a reader of the log would decode them.
            "/nowhere/zed.person%40example.com".to_string(),
            "/nowhere/zed.person%2540example%252Ecom".to_string(),
            format!("/nowhere/{}", acceptance.replace('.', "%2E")),
            format!("/nowhere/{}", bearer.replace('.', "%2e")),
            format!("/businesses/invitations/%74oken/{acceptance}"),
        ] {
            let status = get(path.clone()).await.unwrap().status();
            assert!(
                status.is_success() || status.is_client_error(),
                "{path}: {status}"
            );
        }
        // Forged, foreign and malformed credentials.
        for header in [
            format!("Bearer {bearer}x"),
            format!("Bearer {}", &bearer[..bearer.len() - 4]),
            format!("Basic {bearer}"),
        ] {
            let status = http
                .get(format!("{base}/businesses/me/invitations"))
                .header("authorization", header)
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, 401);
        }
        let accepted = http
            .post(format!("{base}/businesses/invitations/accept"))
            .json(&serde_json::json!({ "token": acceptance, "email": "zed.person@example.com" }))
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status(), 200);
        let _ = http
            .post(format!("{base}/businesses/invitations/accept"))
            .json(&serde_json::json!({ "token": format!("{acceptance}0"), "email": "owner.l@example.com" }))
            .send()
            .await
            .unwrap();
        // Flush: a graceful stop writes every queued line.
        let status = tokio::task::spawn_blocking(move || {
            let status = server.terminate(StdDuration::from_secs(15));
            (status, server)
        })
        .await
        .unwrap();
        let (status, server) = status;
        assert!(status.is_some_and(|s| s.success()));
        let lines = server.stderr_lines();
        // What a reader sees, encodings undone.
        let log = leadping_invitations::logging::decoded(&lines.join("\n")).into_owned();
        for secret in [
            bearer.as_str(),
            &bearer[bearer.len() - 20..],
            acceptance.as_str(),
            mac.as_str(),
            crate::helpers::JWT_SECRET,
            crate::helpers::TOKEN_KEY,
            "zed.person@example.com",
            "zed.person",
            "refused.person",
            "owner.l@example.com",
            "zed\u{200b}@",
            "not-an-address",
        ] {
            assert!(
                !log.contains(secret),
                "{format} log shows {secret:?}:\n{}",
                lines
                    .iter()
                    .filter(|l| l.contains(secret))
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
        // The lines that must be there.
        let completed: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("request completed"))
            .collect();
        assert!(
            completed.len() >= 14,
            "{format}: one line per request:\n{log}"
        );
        assert!(
            completed
                .iter()
                .any(|l| l.contains("createBusinessInvitation")
                    && l.contains("400")
                    && l.contains("errors/validation")),
            "{format}: a refused create names its operation and problem type:\n{log}"
        );
        let attempts: Vec<&String> = lines
            .iter()
            .filter(|l| l.contains("delivery attempt"))
            .collect();
        assert!(
            attempts.iter().any(|l| l.contains("accepted"))
                && attempts
                    .iter()
                    .any(|l| l.contains("refused") && l.contains("550")),
            "{format}: one line per delivery attempt, with the relay's reply code:\n{log}"
        );
        if format == "json" {
            for line in &completed {
                let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
                assert!(
                    v["req_id"].is_string() && v["latency_us"].is_number(),
                    "{line}"
                );
            }
        }
        drop((server, seed));
        crate::helpers::remove_process_database(&database_url, &dir);
    }
}

/// `GET /metrics` on its own listener: requests by operation and status (refused ones and
/// unknown paths too) with their latency, delivery attempts by outcome, the outbox backlog and
/// the seats, read from the store. The API's listener does not serve it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_count_requests_deliveries_backlog_and_seats_on_their_own_listener() {
    let dir = temp_dir("metrics");
    let database_url = process_database(Backend::Sqlite, &dir).await.unwrap();
    let smtp = FakeSmtp::start().await;
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "m").await;
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let server = tokio::task::spawn_blocking(move || {
        ServerProcess::start_with(
            &url,
            &d,
            &s,
            true,
            &[
                ("LEADPING_METRICS_BIND", "127.0.0.1:0"),
                ("LEADPING_LOG_LEVEL", "info"),
            ],
        )
    })
    .await
    .unwrap();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token("biz_m", "usr_m", "Owner"));
    let base = &server.base_url;
    let create = |email: &'static str| {
        http.post(format!("{base}/businesses/me/invitations"))
            .header("authorization", &auth)
            .json(&serde_json::json!({ "email": email }))
            .send()
    };
    assert_eq!(create("ann@example.com").await.unwrap().status(), 200);
    assert_eq!(create("not an address").await.unwrap().status(), 400);
    let resend = http
        .post(format!("{base}/businesses/me/invitations/inv_nope/resend"))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(resend.status(), 404);
    assert_eq!(
        http.get(format!("{base}/nowhere"))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        404,
        "the API listener does not serve the metrics"
    );
    let metrics_url = server
        .stderr_lines()
        .iter()
        .find_map(|l| l.trim().strip_prefix("metrics: ").map(str::to_string))
        .expect("the banner says where the metrics are");
    // The email goes out in the background; its attempt shows once it has.
    let deadline = std::time::Instant::now() + StdDuration::from_secs(15);
    let text = loop {
        let text = reqwest::get(&metrics_url)
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text.contains("leadping_delivery_attempts_total{outcome=\"accepted\"} 1") {
            break text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no delivery counted:\n{text}"
        );
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    };
    for line in [
        "leadping_http_requests_total{operation=\"createBusinessInvitation\",status=\"200\"} 1",
        "leadping_http_requests_total{operation=\"createBusinessInvitation\",status=\"400\"} 1",
        "leadping_http_requests_total{operation=\"resendBusinessInvitation\",status=\"404\"} 1",
        "leadping_http_requests_total{operation=\"unmatched\",status=\"404\"} 2",
        "leadping_http_request_duration_seconds_count{operation=\"createBusinessInvitation\"} 2",
        "leadping_outbox_waiting 0",
        "leadping_seats_taken_total 1",
        "leadping_seats_released_total 0",
        "leadping_store_up 1",
        "leadping_log_lines_dropped_total 0",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    drop((server, seed));
    let _ = std::fs::remove_dir_all(dir);
}

/// A body over the size limit is a 413 and a body that is not JSON a 415, each a problem of its
/// own type, on both operations that take a body; neither changes anything. Headers over their
/// limit get hyper's 431.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn oversized_and_non_json_bodies_get_413_and_415_problems_and_change_nothing() {
    let Some(t) = crate::helpers::spawn_app(Backend::Sqlite).await else {
        return;
    };
    let b = t.business("sizes").await;
    let auth = format!("Bearer {}", token(&b.id, &b.owner, "Owner"));
    let huge =
        serde_json::json!({ "email": format!("{}@example.com", "a".repeat(20_000)) }).to_string();
    for path in [
        "/businesses/me/invitations",
        "/businesses/invitations/accept",
    ] {
        let url = format!("{}{path}", t.base_url);
        let too_large = t
            .http
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(huge.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(too_large.status(), 413, "{path}");
        assert_eq!(
            too_large.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = too_large.json().await.unwrap();
        assert_eq!(
            problem["type"], "https://api.leadping.ai/errors/payload-too-large",
            "{problem}"
        );
        assert_eq!(problem["status"], 413);
        // Another media type, a JSON dialect the contract does not name, or none at all.
        for content_type in [
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("application/problem+json"),
            None,
        ] {
            let mut request = t
                .http
                .post(&url)
                .header("authorization", &auth)
                .body(r#"{"email":"ann@example.com"}"#);
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let not_json = request.send().await.unwrap();
            assert_eq!(not_json.status(), 415, "{path} as {content_type:?}");
            let problem: serde_json::Value = not_json.json().await.unwrap();
            assert_eq!(
                problem["type"], "https://api.leadping.ai/errors/unsupported-media-type",
                "{problem}"
            );
        }
        // A declared length over the limit is refused at once, before anything is read.
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let addr = t.base_url.trim_start_matches("http://").to_string();
            let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{{"
            );
            c.write_all(head.as_bytes()).await.unwrap();
            let started = std::time::Instant::now();
            let mut reply = vec![0u8; 512];
            let n = tokio::time::timeout(StdDuration::from_secs(5), c.read(&mut reply))
                .await
                .expect("answered without waiting for the body")
                .unwrap();
            let reply = String::from_utf8_lossy(&reply[..n]).to_string();
            assert!(reply.starts_with("HTTP/1.1 413"), "{path}: {reply}");
            assert!(reply.contains("payload-too-large"), "{reply}");
            assert!(started.elapsed() < StdDuration::from_secs(2), "{path}");
        }
    }
    // Headers over the deliberate limit (16 KiB) are refused by hyper with a 431; a large but
    // reasonable header block (an 8 KiB cookie, say) is not.
    for (size, expected) in [(20_000, "431"), (8_000, "200")] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = t.base_url.trim_start_matches("http://").to_string();
        let mut c = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let request = format!(
            "GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        let _ = c.write_all(request.as_bytes()).await;
        let mut reply = Vec::new();
        let _ = tokio::time::timeout(StdDuration::from_secs(5), c.read_to_end(&mut reply)).await;
        let status = String::from_utf8_lossy(&reply)
            .split(' ')
            .nth(1)
            .unwrap_or_default()
            .to_string();
        assert_eq!(status, expected, "a {size}-byte header");
    }
    let list = t
        .http
        .get(format!("{}/businesses/me/invitations", t.base_url))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    let listed: serde_json::Value = list.json().await.unwrap();
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");
}

/// A body field the contract does not name (`isAdmin`, `businessId`, a `role` on accept) is
/// accepted and ignored, as the request schemas' descriptions say: it changes nothing. (Refusing
/// them would break clients of the earlier versions that send one; see the README.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unknown_body_fields_are_ignored_and_change_nothing() {
    let Some(t) = crate::helpers::spawn_app(Backend::Sqlite).await else {
        return;
    };
    let b = t.business("fields").await;
    let other = t.business("other").await;
    let auth = format!("Bearer {}", token(&b.id, &b.admin, "Admin"));
    let created = t
        .http
        .post(format!("{}/businesses/me/invitations", t.base_url))
        .header("authorization", &auth)
        .json(&serde_json::json!({
            "email": "ann@example.com",
            "isAdmin": true,
            "businessId": other.id,
            "status": "Accepted",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let created: serde_json::Value = created.json().await.unwrap();
    assert_eq!(created["businessId"], b.id.as_str(), "{created}");
    assert_eq!(
        created["role"], "Agent",
        "the default role, not an admin: {created}"
    );
    assert_eq!(created["status"], "Pending", "{created}");
    let token = t
        .acceptance_token(&b.id, created["id"].as_str().unwrap())
        .await;
    let accepted = t
        .http
        .post(format!("{}/businesses/invitations/accept", t.base_url))
        .json(&serde_json::json!({ "token": token, "role": "Owner", "businessId": other.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 200);
    let accepted: serde_json::Value = accepted.json().await.unwrap();
    assert_eq!(
        accepted["role"], "Agent",
        "the invitation's role: {accepted}"
    );
    assert_eq!(accepted["businessId"], b.id.as_str(), "{accepted}");
    let others: serde_json::Value = t
        .http
        .get(format!("{}/businesses/me/invitations", t.base_url))
        .header(
            "authorization",
            format!(
                "Bearer {}",
                crate::helpers::token(&other.id, &other.owner, "Owner")
            ),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(others.as_array().map(Vec::len), Some(0), "{others}");
}

/// A database that takes no writes (a PostgreSQL with `default_transaction_read_only`, as a
/// standby is; a SQLite file opened `?mode=ro`) at the schema this build expects: the server
/// starts, says so, answers reads, refuses writes with 503 and Retry-After, and readiness
/// reports it.
async fn a_read_only_database_is_reported_at_start_and_by_readiness_and_writes_answer_503(
    backend: Backend,
) {
    let dir = temp_dir("read-only");
    let Some(database_url) = process_database(backend, &dir).await else {
        return;
    };
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "ro").await;
    drop(seed);
    let served_url = match backend {
        Backend::Sqlite => format!("{database_url}?mode=ro"),
        Backend::Postgres => {
            set_read_only(&database_url, true).await;
            database_url.clone()
        }
    };
    let smtp = FakeSmtp::start().await;
    let (url, d, s) = (served_url, dir.clone(), smtp.url());
    let server = tokio::task::spawn_blocking(move || ServerProcess::start(&url, &d, &s, true))
        .await
        .unwrap();
    let http = reqwest::Client::new();
    let auth = format!("Bearer {}", token("biz_ro", "usr_ro", "Owner"));
    let list = http
        .get(format!("{}/businesses/me/invitations", server.base_url))
        .header("authorization", &auth)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200, "reads still work");
    let create = http
        .post(format!("{}/businesses/me/invitations", server.base_url))
        .header("authorization", &auth)
        .json(&serde_json::json!({ "email": "ann@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(create.status(), 503, "a write is refused as unavailable");
    assert!(create.headers().contains_key("retry-after"));
    let ready = http
        .get(format!("{}/health/ready", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert!(
        body["store"]
            .as_str()
            .is_some_and(|s| s.starts_with("read-only")),
        "{body}"
    );
    assert!(
        server
            .stderr_lines()
            .iter()
            .any(|l| l.contains("the database is read-only")),
        "reported at start: {:?}",
        server.stderr_lines()
    );
    drop(server);
    if backend == Backend::Postgres {
        set_read_only(&database_url, false).await;
        crate::helpers::drop_postgres_database(&database_url);
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Makes a test's PostgreSQL database take no writes on new connections, as a standby does.
async fn set_read_only(database_url: &str, on: bool) {
    let name = database_url.rsplit_once('/').unwrap().1.to_string();
    let admin = std::env::var("TEST_DATABASE_URL").unwrap();
    let value = if on { "on" } else { "off" };
    tokio::task::spawn_blocking(move || {
        let mut c = ::postgres::Client::connect(&admin, ::postgres::NoTls).unwrap();
        c.batch_execute(&format!(
            "ALTER DATABASE {name} SET default_transaction_read_only = {value}"
        ))
        .unwrap();
    })
    .await
    .unwrap();
}

/// Clients that send slowly get a budget, not a reset: with the server at 256 file descriptors
/// (so at most 128 connections), 300 connections that send a request head and then their body a
/// byte every half second, and 100 that send their head that way, arrive at once. Those beyond
/// the connection limit are answered 503 at once; the rest are closed at their deadline (2 s
/// for the head, 2 s for the body: a 408), however steadily they trickle; and real requests made
/// all the while, retried on a 503, are answered within the deadline and a second or two.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_clients_are_cut_at_their_deadline_and_real_requests_are_answered() {
    // The test's own side holds 400 sockets at once.
    let _ = rlimit::increase_nofile_limit(4096);
    let dir = temp_dir("slow");
    let database_url = process_database(Backend::Sqlite, &dir).await.unwrap();
    let smtp = FakeSmtp::start().await;
    let seed = crate::helpers::app_on(&database_url).await;
    crate::helpers::seed_owner(&seed, "s").await;
    let (url, d, s) = (database_url.clone(), dir.clone(), smtp.url());
    let server = tokio::task::spawn_blocking(move || {
        ServerProcess::start_limited(
            &url,
            &d,
            &s,
            true,
            &[
                ("LEADPING_REQUEST_HEAD_TIMEOUT_SECS", "2"),
                ("LEADPING_REQUEST_BODY_TIMEOUT_SECS", "2"),
            ],
            Some(256),
        )
    })
    .await
    .unwrap();
    let addr = server.base_url.trim_start_matches("http://").to_string();
    let deadline = StdDuration::from_secs(2);

    let mut slow = Vec::new();
    for i in 0..400 {
        let head = if i % 4 == 3 {
            // Slowloris: the head itself, a byte at a time.
            "GET /businesses/me/invitations HTTP/1.1\r\nHost: x\r\n".to_string()
        } else {
            // A complete head, then a body that never finishes.
            "POST /businesses/invitations/accept HTTP/1.1\r\nHost: x\r\n\
             Content-Type: application/json\r\nContent-Length: 16000\r\n\r\n{"
                .to_string()
        };
        slow.push(tokio::spawn(trickle(addr.clone(), head)));
    }

    // The slow ones connect first and take every connection the server serves.
    tokio::time::sleep(StdDuration::from_millis(300)).await;
    // Real requests all the while: each retried (after 100 ms) while it is refused at the
    // connection limit; how long each took to be answered.
    let auth = format!("Bearer {}", token("biz_s", "usr_s", "Owner"));
    let http = reqwest::Client::builder()
        .timeout(StdDuration::from_secs(20))
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut waits = Vec::new();
    let started = std::time::Instant::now();
    while started.elapsed() < StdDuration::from_secs(6) {
        let asked = std::time::Instant::now();
        loop {
            let answer = http
                .get(format!("{}/businesses/me/invitations", server.base_url))
                .header("authorization", &auth)
                .send()
                .await;
            match answer.map(|a| a.status().as_u16()) {
                Ok(200) => break,
                Ok(503) | Err(_) => tokio::time::sleep(StdDuration::from_millis(100)).await,
                Ok(other) => panic!("a real request answered {other}"),
            }
            assert!(
                asked.elapsed() < StdDuration::from_secs(15),
                "a real request went unanswered"
            );
        }
        waits.push(asked.elapsed());
        tokio::time::sleep(StdDuration::from_millis(250)).await;
    }
    let longest = waits.iter().max().copied().unwrap_or_default();
    eprintln!(
        "{} real requests answered, the longest after {longest:?}",
        waits.len()
    );
    assert!(
        longest < deadline + StdDuration::from_secs(3),
        "real requests are answered within the deadline and a little: {waits:?}"
    );

    let mut refused = 0;
    let mut timed_out_bodies = 0;
    for (i, task) in slow.into_iter().enumerate() {
        let t = task.await.unwrap();
        let closed = t
            .closed_after
            .unwrap_or_else(|| panic!("connection {i} was never closed: {t:?}"));
        if t.reply.starts_with("http/1.1 503") {
            refused += 1;
            assert!(t.reply.contains("retry-after: 1"), "{t:?}");
            assert!(closed < StdDuration::from_secs(1), "refused at once: {t:?}");
            continue;
        }
        // Not a moment before its deadline, and not long after it.
        assert!(
            closed >= deadline - StdDuration::from_millis(100)
                && closed < deadline + StdDuration::from_millis(1500),
            "connection {i} closed after {closed:?}: {t:?}"
        );
        if i % 4 != 3 {
            assert!(t.reply.starts_with("http/1.1 408"), "{i}: {t:?}");
            assert!(t.reply.contains("request-timeout"), "{t:?}");
            timed_out_bodies += 1;
        }
    }
    eprintln!("{refused} refused at the limit, {timed_out_bodies} bodies answered 408");
    assert!(refused >= 400 - 128, "beyond the limit, refused: {refused}");
    assert!(timed_out_bodies > 0);
    drop((server, seed));
    let _ = std::fs::remove_dir_all(dir);
}

/// What became of a connection that sent `head` and then a byte every half second.
#[derive(Debug)]
struct Trickled {
    /// What the server sent, if anything.
    reply: String,
    /// When the server closed it, counted from the end of `head`.
    closed_after: Option<StdDuration>,
}

async fn trickle(addr: String, head: String) -> Trickled {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut reply = Vec::new();
    let Ok(mut c) = tokio::net::TcpStream::connect(&addr).await else {
        return Trickled {
            reply: "connect failed".into(),
            closed_after: Some(StdDuration::ZERO),
        };
    };
    let _ = c.write_all(head.as_bytes()).await;
    let sent = std::time::Instant::now();
    let mut buf = [0u8; 1024];
    let mut ticker = tokio::time::interval(StdDuration::from_millis(500));
    ticker.tick().await;
    let closed_after = loop {
        if sent.elapsed() > StdDuration::from_secs(15) {
            break None;
        }
        tokio::select! {
            read = c.read(&mut buf) => match read {
                Ok(0) | Err(_) => break Some(sent.elapsed()),
                Ok(n) => reply.extend_from_slice(&buf[..n]),
            },
            _ = ticker.tick() => {
                if c.write_all(b"a").await.is_err() {
                    break Some(sent.elapsed());
                }
            }
        }
    };
    Trickled {
        reply: String::from_utf8_lossy(&reply).to_lowercase(),
        closed_after,
    }
}

/// A bad value in the environment stops the start with a message naming the setting by every
/// name it has (clap alone names only the flag).
#[test]
fn a_bad_setting_is_named_by_its_environment_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadping-invitations"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("LEADPING_DELIVERY_LEASE_SECS", "soon")
        .env("LEADPING_DATA_DIR", temp_dir("bad-setting"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("soon")
            && stderr.contains("LEADPING_DELIVERY_LEASE_SECS")
            && stderr.contains("delivery_lease_secs"),
        "{stderr}"
    );
}

/// Settings that contradict each other stop the start, naming both: a shutdown grace or an idle
/// timeout that a create or resend waiting for its email would outlast (the grace would cut it
/// off after its change committed, without an answer).
#[test]
fn a_grace_or_idle_timeout_shorter_than_the_delivery_wait_is_refused_at_start() {
    for (setting, value) in [
        ("LEADPING_SHUTDOWN_GRACE_SECS", "2"),
        ("LEADPING_IDLE_TIMEOUT_SECS", "2"),
    ] {
        let dir = temp_dir("contradiction");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_leadping-invitations"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .env("LEADPING_DELIVERY_WAIT_MS", "2000")
            .env(setting, value)
            .env("LEADPING_DATA_DIR", &dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{setting}={value} was accepted");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(setting) && stderr.contains("LEADPING_DELIVERY_WAIT_MS"),
            "{stderr}"
        );
        assert!(
            !dir.join("leadping.db").exists(),
            "a refused start creates no database"
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
