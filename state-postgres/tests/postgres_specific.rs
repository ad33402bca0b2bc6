//! Behaviour specific to the PostgreSQL backend: migrations, the reaper,
//! server restarts, unreachable servers, secrets, schema and prefix
//! configuration, statement timeouts and lock wake-ups.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use state_api::{Key, LockService, StateError, StateStore, Version};
use state_postgres::{PostgresConfig, PostgresStore};
use test_servers::Server;

/// A private server (or the external one) and a migrated store on it.
async fn server_and_store(configure: impl FnOnce(PostgresConfig) -> PostgresConfig) -> (Server, PostgresStore) {
    let server = test_servers::postgres::postgres().expect("a PostgreSQL server");
    let store = PostgresStore::connect(configure(PostgresConfig::new(server.url()))).await.expect("connect");
    store.migrate().await.expect("migrate");
    (server, store)
}

/// A name no other run uses, for schemas and prefixes on a shared server.
fn unique(label: &str) -> String {
    format!("{label}_{:08x}", fastrand_u32())
}

fn fastrand_u32() -> u32 {
    // Tests need no dependency for this: time and pid are unique enough.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}

/// A separate connection to look at the tables behind the store's back.
async fn inspector(server: &Server) -> sqlx::PgPool {
    sqlx::PgPool::connect(server.url()).await.unwrap()
}

async fn count_rows(inspector: &sqlx::PgPool, store: &PostgresStore, table: &str) -> i64 {
    let config = store.config();
    let sql = format!("SELECT count(*) FROM \"{}\".\"{}_{table}\"", config.schema(), config.table_prefix());
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(inspector).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrations_are_idempotent_and_safe_when_run_concurrently() {
    let server = test_servers::postgres::postgres().unwrap();
    let schema = unique("mig");
    let config = PostgresConfig::new(server.url()).with_schema(schema.as_str()).unwrap();
    let mut stores = Vec::new();
    for _ in 0..6 {
        stores.push(PostgresStore::connect(config.clone()).await.unwrap());
    }
    // All instances migrate the fresh schema at once.
    let runs: Vec<_> = stores.iter().cloned().map(|store| tokio::spawn(async move { store.migrate().await })).collect();
    let mut reports = Vec::new();
    for run in runs {
        reports.push(run.await.unwrap().expect("a concurrent migration failed"));
    }
    let applied: Vec<&Vec<i64>> = reports.iter().map(|r| &r.applied).filter(|a| !a.is_empty()).collect();
    assert_eq!(applied, vec![&vec![1, 2, 3, 4]], "exactly one instance applies each migration: {reports:?}");
    assert!(reports.iter().all(|r| r.current == 4), "{reports:?}");

    let again = stores[0].migrate().await.unwrap();
    assert!(again.applied.is_empty() && again.current == 4, "a second run changed something: {again:?}");
    assert_eq!(count_rows(&inspector(&server).await, &stores[0], "migrations").await, 4);

    let key = Key::new("s", "k").unwrap();
    assert_eq!(stores[1].set(&key, Bytes::from_static(b"v"), None).await.unwrap(), Version(1));
    assert_eq!(stores[2].get(&key).await.unwrap().unwrap().value, "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_before_migrating_fail_with_a_hint() {
    let server = test_servers::postgres::postgres().unwrap();
    let config = PostgresConfig::new(server.url()).with_table_prefix(unique("unmigrated")).unwrap();
    let store = PostgresStore::connect(config).await.unwrap();
    let error = store.get(&Key::new("s", "k").unwrap()).await.unwrap_err();
    assert!(matches!(error, StateError::Backend { retryable: false, .. }), "{error:?}");
    assert!(error.to_string().contains("migrate"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_removes_expired_rows_and_keeps_live_and_rewritten_ones() {
    // Own tables: on a shared server, other tests leave expired rows too.
    let prefix = unique("reap");
    let (server, store) =
        server_and_store(|c| c.with_table_prefix(prefix).unwrap().with_reap_interval(None).with_reap_batch(3)).await;
    let inspector = inspector(&server).await;
    let space = unique("reap");
    let key = |id: &str| Key::new(&space, id).unwrap();
    let short = Some(Duration::from_millis(100));
    for n in 0..10 {
        store.set(&key(&format!("doomed-{n}")), Bytes::from_static(b"x"), short).await.unwrap();
    }
    store.set(&key("forever"), Bytes::from_static(b"kept"), None).await.unwrap();
    store.set(&key("later"), Bytes::from_static(b"kept"), Some(Duration::from_secs(600))).await.unwrap();
    store.set(&key("rewritten"), Bytes::from_static(b"old"), short).await.unwrap();
    store.increment(&key("rewritten-counter"), 1, short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    // Expired, then written again before the reaper came: a new entry.
    store.set(&key("rewritten"), Bytes::from_static(b"new"), None).await.unwrap();
    store.increment(&key("rewritten-counter"), 5, Some(Duration::from_secs(600))).await.unwrap();
    let before = count_rows(&inspector, &store, "entries").await;

    // Ten expired rows in batches of three: one call takes them all.
    assert_eq!(store.reap_expired().await.unwrap(), 10);
    assert_eq!(count_rows(&inspector, &store, "entries").await, before - 10);
    assert_eq!(store.reap_expired().await.unwrap(), 0, "a second pass found more");
    for id in ["forever", "later"] {
        assert_eq!(store.get(&key(id)).await.unwrap().unwrap().value, "kept");
    }
    let rewritten = store.get(&key("rewritten")).await.unwrap().unwrap();
    assert_eq!((rewritten.value, rewritten.version, rewritten.ttl), (Bytes::from_static(b"new"), Version(1), None));
    let counter = store.get(&key("rewritten-counter")).await.unwrap().unwrap();
    assert_eq!((counter.value, counter.version), (Bytes::from_static(b"5"), Version(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_reaper_runs_at_its_interval() {
    let prefix = unique("bg");
    let (server, store) =
        server_and_store(|c| c.with_table_prefix(prefix).unwrap().with_reap_interval(Some(Duration::from_millis(200))))
            .await;
    let inspector = inspector(&server).await;
    let space = unique("bg");
    for n in 0..5 {
        let key = Key::new(&space, &format!("k{n}")).unwrap();
        store.set(&key, Bytes::from_static(b"x"), Some(Duration::from_millis(50))).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while count_rows(&inspector, &store, "entries").await > 0 {
        assert!(Instant::now() < deadline, "the background reaper left expired rows for 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_recover_after_the_server_restarts() {
    let connect_timeout = Duration::from_secs(2);
    let (mut server, store) = server_and_store(|c| c.with_connect_timeout(connect_timeout)).await;
    if !server.is_private() {
        eprintln!("STATEKIT_POSTGRES_URL names an external server, which this test cannot restart");
        return;
    }
    let key = Key::new("restart", "k").unwrap();
    store.set(&key, Bytes::from_static(b"before"), None).await.unwrap();
    // Asynchronous commit (the test server's setting) flushes WAL within
    // three times wal_writer_delay (200 ms); let it, so the write survives.
    tokio::time::sleep(Duration::from_secs(1)).await;

    server.process_mut().unwrap().kill();
    // Twice: the first call finds the pooled connection dead; the second
    // finds no server to connect to and gives up at the connect timeout.
    for _ in 0..2 {
        let started = Instant::now();
        let error = store.get(&key).await.expect_err("a server that is down answered");
        let took = started.elapsed();
        assert!(error.is_retryable(), "{error:?}");
        assert!(matches!(error, StateError::Unavailable { .. } | StateError::Timeout { .. }), "{error:?}");
        assert!(took < connect_timeout + Duration::from_secs(1), "the failure took {took:?}");
    }

    test_servers::postgres::restart(&mut server).unwrap();
    // The failures closed the dead connections, so the first call after the
    // server is back opens a fresh one and succeeds.
    let entry = store.get(&key).await.expect("the first call after the restart");
    assert_eq!(entry.map(|e| e.value), Some(Bytes::from_static(b"before")));
    assert_eq!(store.set(&key, Bytes::from_static(b"after"), None).await.unwrap(), Version(2));
    let lease = store.try_acquire("restart-lock", Duration::from_secs(5)).await.unwrap().unwrap();
    store.release(&lease).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_gives_a_retryable_error_within_the_connect_timeout() {
    let connect_timeout = Duration::from_millis(800);
    let closed_port = test_servers::free_port().unwrap();
    // A closed loopback port (connection refused, retried by the pool until
    // the timeout) and an address reserved for documentation (unroutable:
    // an immediate error or silence, depending on the network).
    for url in [format!("postgres://u:pw@127.0.0.1:{closed_port}/db"), "postgres://u:pw@192.0.2.1:5432/db".to_owned()] {
        let config = PostgresConfig::new(url.as_str()).with_connect_timeout(connect_timeout);
        let started = Instant::now();
        let error = PostgresStore::connect(config).await.expect_err("connected to nothing");
        let took = started.elapsed();
        println!("{url}: {error} after {took:?}");
        assert!(matches!(error, StateError::Unavailable { .. }), "{url}: {error:?}");
        assert!(error.is_retryable());
        assert!(took < connect_timeout + Duration::from_millis(500), "{url}: took {took:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_never_appear_in_debug_display_or_errors() {
    let secret = "hunter2-secret";
    let closed_port = test_servers::free_port().unwrap();
    let config = PostgresConfig::new(format!("postgres://app:{secret}@127.0.0.1:{closed_port}/db"))
        .with_connect_timeout(Duration::from_millis(300));
    assert!(!format!("{config:?}").contains(secret));
    let error = PostgresStore::connect(config).await.unwrap_err();
    assert_no_secret(&error, secret);

    // A reachable server: the store's Debug, and a server-side error.
    let server = test_servers::postgres::postgres().unwrap();
    let url = with_password(server.url(), secret);
    let store = PostgresStore::connect(PostgresConfig::new(url.as_str())).await.unwrap();
    assert!(!format!("{store:?}").contains(secret));
    let missing_db = PostgresConfig::new(format!("{}_does_not_exist", url.trim_end_matches('/')));
    match PostgresStore::connect(missing_db).await {
        Ok(_) => panic!("connected to a database that does not exist"),
        Err(error) => assert_no_secret(&error, secret),
    }
    let bad_url = PostgresConfig::new(format!("postgres://app:{secret}@host:notaport/db"));
    assert_no_secret(&PostgresStore::connect(bad_url).await.unwrap_err(), secret);
}

fn with_password(url: &str, password: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| rest.split_once('@').map(|(user, host)| (scheme, user, host)))
    {
        Some((scheme, user, host)) if !user.contains(':') => format!("{scheme}://{user}:{password}@{host}"),
        _ => url.to_owned(),
    }
}

fn assert_no_secret(error: &StateError, secret: &str) {
    let mut text = format!("{error} {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(" {cause} {cause:?}"));
        source = cause.source();
    }
    assert!(!text.contains(secret), "the password leaked: {text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_schema_and_prefix_keep_stores_apart_and_bad_identifiers_are_refused() {
    let server = test_servers::postgres::postgres().unwrap();
    let schema = unique("custom");
    let store_for = |prefix: &str| {
        PostgresConfig::new(server.url()).with_schema(schema.as_str()).unwrap().with_table_prefix(prefix).unwrap()
    };
    let a = PostgresStore::connect(store_for("alpha")).await.unwrap();
    let b = PostgresStore::connect(store_for("beta")).await.unwrap();
    assert_eq!(a.migrate().await.unwrap().applied, vec![1, 2, 3, 4]);
    assert_eq!(
        b.migrate().await.unwrap().applied,
        vec![1, 2, 3, 4],
        "a second prefix in one schema gets its own tables"
    );
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name",
    )
    .bind(schema.as_str())
    .fetch_all(&inspector(&server).await)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "alpha_entries",
            "alpha_lock_waiters",
            "alpha_locks",
            "alpha_migrations",
            "alpha_schedules",
            "beta_entries",
            "beta_lock_waiters",
            "beta_locks",
            "beta_migrations",
            "beta_schedules"
        ]
    );

    let key = Key::new("s", "k").unwrap();
    a.set(&key, Bytes::from_static(b"from a"), None).await.unwrap();
    assert!(b.get(&key).await.unwrap().is_none(), "stores with different prefixes share entries");
    let lease = a.try_acquire("l", Duration::from_secs(10)).await.unwrap().unwrap();
    assert!(b.try_acquire("l", Duration::from_secs(10)).await.unwrap().is_some(), "stores share locks");
    a.release(&lease).await.unwrap();

    let base = PostgresConfig::new(server.url());
    for bad in ["", "Public", "1abc", "a-b", "a\"b", "x; DROP TABLE y", "pg_catalog", &"s".repeat(42)] {
        assert!(
            matches!(base.clone().with_schema(bad), Err(StateError::InvalidArgument { name: "schema", .. })),
            "schema {bad:?} was accepted"
        );
    }
    for bad in ["", "Upper", "9x", "a.b", "x\"; --", &"p".repeat(42)] {
        assert!(
            matches!(
                base.clone().with_table_prefix(bad),
                Err(StateError::InvalidArgument { name: "table_prefix", .. })
            ),
            "prefix {bad:?} was accepted"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_statement_timeout_is_a_retryable_timeout() {
    let timeout = Duration::from_millis(300);
    let (server, store) = server_and_store(|c| c.with_statement_timeout(timeout)).await;
    let inspector = inspector(&server).await;
    let key = Key::new(&unique("slow"), "held").unwrap();
    store.set(&key, Bytes::from_static(b"v"), None).await.unwrap();
    // Another session holds the row lock, so the write waits until the
    // server cancels it.
    let mut blocker = inspector.begin().await.unwrap();
    let sql = format!(
        "SELECT 1 FROM \"{}\".\"{}_entries\" WHERE space = $1 AND id = $2 FOR UPDATE",
        store.config().schema(),
        store.config().table_prefix()
    );
    sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key.space()).bind(key.id()).execute(&mut *blocker).await.unwrap();
    let started = Instant::now();
    let error = store.set(&key, Bytes::from_static(b"w"), None).await.unwrap_err();
    assert!(matches!(error, StateError::Timeout { operation: "put", after } if after == timeout), "{error:?}");
    assert!(error.is_retryable());
    assert!(started.elapsed() < timeout * 4, "took {:?}", started.elapsed());
    blocker.rollback().await.unwrap();
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, "v", "a cancelled write took effect");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_by_the_release_notification() {
    let prefix = unique("wake");
    let channel = format!("{prefix}_locks");
    let (server, store) = server_and_store(|c| c.with_table_prefix(prefix).unwrap()).await;
    let inspector = inspector(&server).await;
    let store = Arc::new(store);
    // "Wait forever" is a valid timeout, not an overflow.
    let free = store.acquire(&unique("free"), Duration::from_secs(1), Duration::MAX).await.unwrap();
    store.release(&free).await.unwrap();
    let name = unique("wake");
    for round in 0..3 {
        let held = store.try_acquire(&name, Duration::from_secs(60)).await.unwrap().unwrap();
        let waiter = {
            let (store, name) = (Arc::clone(&store), name.clone());
            tokio::spawn(async move {
                let lease = store.acquire(&name, Duration::from_secs(60), Duration::from_secs(30)).await;
                (lease, Instant::now())
            })
        };
        // Long enough for the waiter to subscribe and settle into waiting
        // on notifications (while listening it re-checks only every five seconds).
        tokio::time::sleep(Duration::from_millis(700)).await;
        let listeners: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_stat_activity WHERE query = $1")
            .bind(format!("LISTEN \"{channel}\""))
            .fetch_one(&inspector)
            .await
            .unwrap();
        assert_eq!(listeners, 1, "round {round}: one shared LISTEN connection per store");
        let released_at = Instant::now();
        store.release(&held).await.unwrap();
        let (lease, acquired_at) = waiter.await.unwrap();
        let lease = lease.unwrap();
        let delay = acquired_at - released_at;
        assert!(lease.token() > held.token());
        // Well under the five-second re-check: only the notification explains it.
        assert!(delay < Duration::from_millis(500), "round {round}: the waiter took {delay:?} after the release");
        store.release(&lease).await.unwrap();
    }
}
