//! Behaviour the conformance kit cannot see from the contract alone: script
//! reloading, reconnection, timeouts, key encoding and the scan index on a
//! real `redis-server`, and secrets kept out of errors.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use redis::AsyncCommands;
use state_api::driver::LINE_REFRESH;
use state_api::{Key, LockService, PutOutcome, StateError, StateStore, Version};
use state_redis::{RedisConfig, RedisStore};
use test_servers::redis::redis;
use test_servers::{Server, free_port};

/// How far past a time limit an operation may return on a loaded machine
/// and still count as "within" it: these tests check that nothing hangs,
/// not how fast anything is.
const SLACK: Duration = Duration::from_millis(1000);

/// A key prefix no other test (or run, on a shared server) uses.
fn unique_prefix(label: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("test-{label}-{nanos:x}")
}

fn server() -> Server {
    redis().unwrap_or_else(|e| panic!("cannot start redis: {e}"))
}

async fn connect(server: &Server, label: &str, configure: impl FnOnce(RedisConfig) -> RedisConfig) -> RedisStore {
    let config = configure(RedisConfig::new(server.url()).with_key_prefix(unique_prefix(label)));
    RedisStore::connect(config).await.unwrap()
}

/// A plain client on the same server, for what the store does not expose.
async fn raw(server: &Server) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap()
}

async fn cached_scripts(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(raw).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("number_of_cached_scripts:"))
        .map(|n| n.trim().parse().unwrap())
        .expect("INFO memory reports number_of_cached_scripts")
}

/// How many scripts the server has run (EVALSHA calls).
async fn script_calls(raw: &mut redis::aio::MultiplexedConnection) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(raw).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("cmdstat_evalsha:calls="))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_reloads_its_script_after_script_flush() {
    let server = server();
    let store = connect(&server, "flush", |c| c).await;
    let mut raw = raw(&server).await;
    let key = Key::new("flush", "k").unwrap();
    store.set(&key, Bytes::from_static(b"1"), None).await.unwrap();

    let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
    // On a shared server other clients may load scripts meanwhile: count
    // only on a private one.
    let private = server.is_private();
    if private {
        assert_eq!(cached_scripts(&mut raw).await, 0, "SCRIPT FLUSH left scripts behind");
    }

    assert_eq!(store.get(&key).await.unwrap().unwrap().value, "1");
    assert_eq!(store.increment(&key, 1, None).await.unwrap().value, 2);
    assert!(!store.check_and_set(&key, Bytes::new(), None).await.unwrap());
    assert_eq!(store.scan("flush", "", None, 10).await.unwrap().items.len(), 1);
    let lease = store.try_acquire("flush-lock", Duration::from_secs(5)).await.unwrap().unwrap();
    let mut renewed = lease.clone();
    store.extend(&mut renewed, Duration::from_secs(5)).await.unwrap();
    store.release(&lease).await.unwrap();
    assert!(store.delete(&key, state_api::DeleteCondition::Always).await.unwrap());
    if private {
        assert_eq!(cached_scripts(&mut raw).await, 8, "every script is loaded again on first use");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operations_fail_fast_during_an_outage_and_recover_after_a_restart() {
    let mut server = server();
    if !server.is_private() {
        eprintln!("not applicable: STATEKIT_REDIS_URL names a server this test cannot restart");
        return;
    }
    let command_timeout = Duration::from_millis(800);
    let store = connect(&server, "restart", |c| c.with_command_timeout(command_timeout)).await;
    let key = Key::new("restart", "k").unwrap();
    store.set(&key, Bytes::from_static(b"before"), None).await.unwrap();

    server.process_mut().unwrap().kill();
    for _ in 0..3 {
        let started = Instant::now();
        let error = store.get(&key).await.expect_err("a server that is down cannot answer");
        let took = started.elapsed();
        eprintln!("during the outage: {error} after {took:?}");
        assert!(error.is_retryable(), "an outage gave a non-retryable error: {error:?}");
        assert!(
            matches!(error, StateError::Unavailable { .. } | StateError::Timeout { .. }),
            "an outage gave {error:?}"
        );
        assert!(took < command_timeout + SLACK, "a call during the outage took {took:?}");
    }

    server.process_mut().unwrap().restart(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let version = loop {
        match store.set(&key, Bytes::from_static(b"after"), None).await {
            Ok(version) => break version,
            Err(e) if e.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("the store did not recover after the restart: {e:?}"),
        }
    };
    // The private server keeps no data: the key starts again at version 1.
    assert_eq!(version, Version(1));
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, "after");

    // Locks work again too, including the wake-up of a waiter.
    let held = store.try_acquire("restart-lock", Duration::from_secs(30)).await.unwrap().unwrap();
    let waiter = {
        let store = store.clone();
        tokio::spawn(
            async move { store.acquire("restart-lock", Duration::from_secs(5), Duration::from_secs(10)).await },
        )
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    store.release(&held).await.unwrap();
    let taken = tokio::time::timeout(Duration::from_secs(2), waiter).await.unwrap().unwrap().unwrap();
    assert!(taken.token() > held.token());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_server_times_out_within_the_command_timeout() {
    let server = server();
    if !server.is_private() {
        eprintln!("not applicable: pausing the shared server named by STATEKIT_REDIS_URL would stall other tests");
        return;
    }
    let command_timeout = Duration::from_millis(300);
    let store = connect(&server, "pause", |c| c.with_command_timeout(command_timeout)).await;
    let mut raw = raw(&server).await;
    let key = Key::new("pause", "k").unwrap();
    store.set(&key, Bytes::from_static(b"v"), None).await.unwrap();

    // CLIENT PAUSE makes the server hold every client's commands (this
    // raw connection's too) until the pause ends.
    let pause = Duration::from_millis(3000);
    let paused_at = Instant::now();
    let _: () =
        redis::cmd("CLIENT").arg("PAUSE").arg(pause.as_millis() as u64).arg("ALL").query_async(&mut raw).await.unwrap();
    let started = Instant::now();
    let error = store.get(&key).await.expect_err("a paused server cannot answer");
    let took = started.elapsed();
    eprintln!("paused server: {error} after {took:?}");
    assert!(matches!(error, StateError::Timeout { operation: "get", .. }), "{error:?}");
    assert!(took >= command_timeout && took < command_timeout + SLACK, "took {took:?}");

    tokio::time::sleep_until((paused_at + pause).into()).await;
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, "v");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_gives_a_retryable_error_within_the_connect_timeout() {
    let port = free_port().unwrap();
    let connect_timeout = Duration::from_millis(2000);
    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}")).with_connect_timeout(connect_timeout);
    let started = Instant::now();
    let error = RedisStore::connect(config).await.expect_err("nothing listens on the port");
    let took = started.elapsed();
    eprintln!("unreachable server: {error} after {took:?}");
    assert!(matches!(error, StateError::Unavailable { .. }), "a refused connection gave {error:?}");
    assert!(error.is_retryable());
    assert!(took < connect_timeout + SLACK, "connect took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_within_the_connect_timeout() {
    // Accepts connections and then says nothing, like a hung server.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let connect_timeout = Duration::from_millis(500);
    let config = RedisConfig::new(format!("redis://127.0.0.1:{port}")).with_connect_timeout(connect_timeout);
    let started = Instant::now();
    let error = RedisStore::connect(config).await.expect_err("a silent server cannot complete a handshake");
    let took = started.elapsed();
    eprintln!("silent server: {error} after {took:?}");
    assert!(matches!(error, StateError::Timeout { .. }), "a silent server gave {error:?}");
    assert!(error.is_retryable());
    assert!(took >= connect_timeout && took < connect_timeout + SLACK, "connect took {took:?}");
    silent.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_the_url_never_appears_in_config_or_errors() {
    let secret = "hunter2-s3cret";
    let port = free_port().unwrap();
    let unreachable = RedisConfig::new(format!("redis://app:{secret}@127.0.0.1:{port}/0"))
        .with_connect_timeout(Duration::from_millis(500));
    let server = server();
    // The server's default user takes any password; an unknown user is refused.
    let with_password = server.url().replacen("redis://", &format!("redis://nobody-here:{secret}@"), 1);
    let refused = RedisConfig::new(with_password).with_connect_timeout(Duration::from_secs(2));
    let mut texts =
        vec![format!("{unreachable:?}"), unreachable.to_string(), format!("{refused:?}"), refused.to_string()];
    for config in [unreachable, refused] {
        let error = RedisStore::connect(config).await.expect_err("the server has no such password");
        eprintln!("refused connection: {error}");
        texts.push(format!("{error} / {error:?}"));
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            texts.push(format!("{cause} / {cause:?}"));
            source = cause.source();
        }
    }
    for text in &texts {
        assert!(!text.contains(secret), "the password leaked: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_full_of_metacharacters_round_trip_and_scan() {
    let server = server();
    let store = connect(&server, "odd", |c| c).await;
    let spaces = ["{s}*?[]:\n", "}{", "%7B", "{", "*"];
    let ids = [
        "*",
        "?",
        "[",
        "]",
        "[a-z]",
        "{",
        "}",
        "{}",
        ":",
        "::",
        "\n",
        "a\nb",
        "a*b?c[d]{e}:f\ng",
        "\\",
        "*?[]{}:",
        "é*",
        "{a}*",
    ];
    for (s, space) in spaces.iter().enumerate() {
        for (i, id) in ids.iter().enumerate() {
            let value = Bytes::from(format!("{s}/{i}"));
            store.set(&Key::new(space, id).unwrap(), value, None).await.unwrap();
        }
    }
    for (s, space) in spaces.iter().enumerate() {
        for (i, id) in ids.iter().enumerate() {
            let entry = store.get(&Key::new(space, id).unwrap()).await.unwrap().unwrap();
            assert_eq!(entry.value, format!("{s}/{i}"), "({space:?}, {id:?})");
            assert_eq!(entry.version, Version(1), "({space:?}, {id:?}) was written by another key");
        }
        let mut sorted: Vec<&str> = ids.to_vec();
        sorted.sort_unstable();
        for limit in [1, 2, 5, 1000] {
            assert_eq!(scan_ids(&store, space, "", limit).await, sorted, "space {space:?}, limit {limit}");
        }
        for prefix in ["*", "[", "{", "a*b?", "*?[", "{a}"] {
            let expected: Vec<&str> = sorted.iter().copied().filter(|id| id.starts_with(prefix)).collect();
            assert_eq!(scan_ids(&store, space, prefix, 2).await, expected, "space {space:?}, prefix {prefix:?}");
        }
    }
}

async fn scan_ids(store: &RedisStore, space: &str, prefix: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = store.scan(space, prefix, cursor.as_ref(), limit).await.unwrap();
        assert!(page.items.len() <= limit);
        ids.extend(page.items.into_iter().map(|item| item.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
    panic!("the scan of {space:?} / {prefix:?} did not end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scans_skip_and_unindex_expired_entries_with_bounded_pages() {
    let server = server();
    let prefix = unique_prefix("stale");
    let store = RedisStore::connect(RedisConfig::new(server.url()).with_key_prefix(prefix.as_str())).await.unwrap();
    let mut raw = raw(&server).await;
    for n in 0..120 {
        let key = Key::new("stale", &format!("gone-{n:03}")).unwrap();
        store.set(&key, Bytes::from_static(b"x"), Some(Duration::from_millis(1000))).await.unwrap();
    }
    // Created while the 120 are still live (a second is ample even on a
    // loaded machine), so no creation's sweep can unindex them early.
    for id in ["a", "m", "z"] {
        store.set(&Key::new("stale", id).unwrap(), Bytes::from_static(b"live"), None).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let index = format!("{prefix}:{{stale}}:i");
    assert_eq!(raw.zcard::<_, u64>(&index).await.unwrap(), 123, "expired entries are still indexed before a scan");
    let mut pages = 0;
    let mut cursor = None;
    let mut ids = Vec::new();
    loop {
        let page = store.scan("stale", "", cursor.as_ref(), 1).await.unwrap();
        pages += 1;
        ids.extend(page.items.into_iter().map(|i| i.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(ids, ["a", "m", "z"]);
    // 120 stale members with at most 34 examined per page of limit 1: the
    // scan took several short pages rather than one unbounded one.
    assert!(pages >= 4, "a page examined an unbounded number of members ({pages} pages)");
    assert_eq!(raw.zcard::<_, u64>(&index).await.unwrap(), 3, "the scan left stale index members behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_ids_leave_the_index_as_new_entries_are_created_without_any_scan() {
    let server = server();
    let prefix = unique_prefix("sweep");
    let store = RedisStore::connect(RedisConfig::new(server.url()).with_key_prefix(prefix.as_str())).await.unwrap();
    let mut raw = raw(&server).await;
    for n in 0..50 {
        let key = Key::new("marks", &format!("seen-{n:03}")).unwrap();
        assert!(store.check_and_set(&key, Bytes::new(), Some(Duration::from_millis(50))).await.unwrap());
    }
    let counter = Key::new("marks", "window").unwrap();
    store.increment(&counter, 1, Some(Duration::from_millis(50))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;

    // Each creation unindexes a few expired ids: 20 creations clear 51.
    for n in 0..20 {
        let key = Key::new("marks", &format!("new-{n:03}")).unwrap();
        assert!(store.check_and_set(&key, Bytes::new(), None).await.unwrap());
    }
    let (index, schedule) = (format!("{prefix}:{{marks}}:i"), format!("{prefix}:{{marks}}:x"));
    assert_eq!(raw.zcard::<_, u64>(&index).await.unwrap(), 20, "expired ids stayed in the index");
    assert_eq!(raw.zcard::<_, u64>(&schedule).await.unwrap(), 0, "expired ids stayed in the schedule");

    // A rewrite without TTL takes the id off the schedule; delete clears both.
    let kept = Key::new("marks", "kept").unwrap();
    store.set(&kept, Bytes::new(), Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(raw.zcard::<_, u64>(&schedule).await.unwrap(), 1);
    store.set(&kept, Bytes::new(), None).await.unwrap();
    assert_eq!(raw.zcard::<_, u64>(&schedule).await.unwrap(), 0);
    store.set(&kept, Bytes::new(), Some(Duration::from_secs(60))).await.unwrap();
    assert!(store.delete(&kept, state_api::DeleteCondition::Always).await.unwrap());
    assert_eq!(raw.zcard::<_, u64>(&schedule).await.unwrap(), 0);
    assert_eq!(raw.zcard::<_, u64>(&index).await.unwrap(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_exact_over_the_whole_i64_range() {
    let server = server();
    let store = connect(&server, "counter", |c| c).await;
    let key = |id: &str| Key::new("counter", id).unwrap();
    let set = |id: &'static str, text: &'static str| {
        let store = store.clone();
        async move { store.set(&Key::new("counter", id).unwrap(), Bytes::from_static(text.as_bytes()), None).await }
    };

    // Beyond 2^53 a double cannot count by one: the server's integers can.
    set("big", "9007199254740993").await.unwrap();
    assert_eq!(store.increment(&key("big"), 2, None).await.unwrap().value, 9_007_199_254_740_995);
    assert_eq!(store.get(&key("big")).await.unwrap().unwrap().value, "9007199254740995");

    set("max", "9223372036854775806").await.unwrap();
    assert_eq!(store.increment(&key("max"), 1, None).await.unwrap().value, i64::MAX);
    set("min", "-9223372036854775807").await.unwrap();
    assert_eq!(store.increment(&key("min"), -1, None).await.unwrap().value, i64::MIN);
    assert_eq!(store.increment(&key("fresh-min"), i64::MIN, None).await.unwrap().value, i64::MIN);
    assert_eq!(store.increment(&key("fresh-min"), i64::MAX, None).await.unwrap().value, -1);

    for (id, delta) in [("max", 1), ("min", -1), ("max", i64::MAX), ("min", i64::MIN)] {
        let before = store.get(&key(id)).await.unwrap().unwrap();
        let refused = store.increment(&key(id), delta, None).await;
        assert!(matches!(refused, Err(StateError::Overflow { .. })), "{id} + {delta}: {refused:?}");
        assert_eq!(store.get(&key(id)).await.unwrap().unwrap(), before, "a refused increment changed {id}");
    }

    let not_counters: [&[u8]; 14] = [
        b"",
        b"-",
        b"+1",
        b"01",
        b"-0",
        b" 1",
        b"1 ",
        b"1.0",
        b"1e3",
        b"0x10",
        b"9223372036854775808",
        b"-9223372036854775809",
        b"99999999999999999999",
        "\u{661}".as_bytes(),
    ];
    for (n, text) in not_counters.into_iter().enumerate() {
        let k = key(&format!("text-{n}"));
        store.set(&k, Bytes::copy_from_slice(text), None).await.unwrap();
        let refused = store.increment(&k, 1, None).await;
        assert!(
            matches!(refused, Err(StateError::TypeMismatch { .. })),
            "{:?}: {refused:?}",
            String::from_utf8_lossy(text)
        );
        let entry = store.get(&k).await.unwrap().unwrap();
        assert_eq!((entry.value.as_ref(), entry.version), (text, Version(1)), "a refused increment changed it");
    }
    for text in ["0", "-1", "9223372036854775807", "-9223372036854775808"] {
        let k = key(&format!("canonical{text}"));
        store.set(&k, Bytes::from_static(text.as_bytes()), None).await.unwrap();
        let counted = store.increment(&k, 0, None).await.unwrap();
        assert_eq!((counted.value.to_string().as_str(), counted.version), (text, Version(2)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_put_returns_the_entry_with_its_remaining_ttl() {
    let server = server();
    let store = connect(&server, "rejected", |c| c).await;
    let key = Key::new("rejected", "k").unwrap();
    store.set(&key, Bytes::from_static(b"first"), Some(Duration::from_secs(60))).await.unwrap();
    let outcome = store.put(&key, Bytes::from_static(b"x"), state_api::Condition::IfVersion(Version(7)), None).await;
    let PutOutcome::Rejected(Some(entry)) = outcome.unwrap() else { panic!("a version mismatch wrote") };
    assert_eq!((entry.value.as_ref(), entry.version), (&b"first"[..], Version(1)));
    let ttl = entry.ttl.expect("the entry has a TTL");
    assert!(ttl <= Duration::from_secs(60) && ttl > Duration::from_secs(55), "{ttl:?}");
}

/// Holds `name`, lets a second task wait for it, checks that the waiter asks
/// the server no more often than its entry in the lock's line needs (once
/// per `LINE_REFRESH`; on a private server, where this test is the only
/// client), releases, and returns how long the waiter took to notice.
async fn wake_latency(server: &Server, store: &RedisStore, name: &'static str) -> Duration {
    let holder = store.try_acquire(name, Duration::from_secs(60)).await.unwrap().expect("the lock is free");
    let waiter = {
        let store = store.clone();
        tokio::spawn(async move {
            let lease = store.acquire(name, Duration::from_secs(60), Duration::from_secs(20)).await;
            (lease, Instant::now())
        })
    };
    // Let the waiter subscribe and make its attempts; from then on it asks
    // only to keep its entry in the lock's line live.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut raw = raw(server).await;
    let before = script_calls(&mut raw).await;
    let watched = Duration::from_millis(1300);
    tokio::time::sleep(watched).await;
    let polled = script_calls(&mut raw).await - before;
    let needed = u64::try_from(watched.as_millis() / LINE_REFRESH.as_millis()).unwrap() + 1;
    if server.is_private() {
        assert!(polled <= needed, "the waiter asked {polled} times in {watched:?} while the lock was held");
    }
    let released_at = Instant::now();
    store.release(&holder).await.unwrap();
    let (lease, acquired_at) = waiter.await.unwrap();
    let lease = lease.unwrap();
    assert!(lease.token() > holder.token());
    store.release(&lease).await.unwrap();
    acquired_at - released_at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_by_the_release_not_by_polling() {
    let server = server();
    let store = connect(&server, "wake", |c| c).await;
    let latency = wake_latency(&server, &store, "wake").await;
    eprintln!("a waiter acquired {latency:?} after the release");
    // `wake_latency` checked that the waiter did not poll: the release
    // itself woke it.
    assert!(latency < SLACK, "the waiter took {latency:?} to notice the release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_are_notified_again_after_the_server_restarts() {
    let mut server = server();
    if !server.is_private() {
        eprintln!("not applicable: STATEKIT_REDIS_URL names a server this test cannot restart");
        return;
    }
    let store = connect(&server, "rewake", |c| c).await;
    assert!(wake_latency(&server, &store, "before").await < SLACK);

    server.process_mut().unwrap().restart(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Err(e) = store.get(&Key::new("rewake", "k").unwrap()).await {
        assert!(e.is_retryable() && Instant::now() < deadline, "the store did not recover: {e:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The pub/sub connection comes back on its own (within its 2 s
    // reconnection backoff) and subscribes again.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let latency = wake_latency(&server, &store, "after").await;
    eprintln!("after the restart, a waiter acquired {latency:?} after the release");
    assert!(latency < SLACK, "the waiter took {latency:?} to notice the release");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_names_leave_nothing_for_good_and_tokens_increase_past_the_clock() {
    let server = server();
    let memory = Duration::from_millis(200);
    // The token memory is two sweeper intervals.
    let store = connect(&server, "names", |config| config.with_sweep_interval(Some(memory / 2))).await;
    let mut raw = raw(&server).await;
    let lease_key = |name: &str| format!("{}:lock:{{{name}}}:lease", store.config().key_prefix());

    // Tokens are the server's clock in microseconds...
    let micros = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64;
    let first = store.try_acquire("job-1", Duration::from_secs(30)).await.unwrap().unwrap();
    assert!(first.token().0 >= micros - 5_000_000, "{first:?} is not a clock reading near {micros}");
    store.release(&first).await.unwrap();
    // ...and one more than the remembered token when that is higher: a
    // server clock stepped back by less than the memory cannot make them
    // go back.
    let ahead: u64 = first.token().0 + 3_600_000_000;
    let _: () = raw.set(lease_key("job-1"), ahead.to_string()).await.unwrap();
    let second = store.try_acquire("job-1", Duration::from_secs(30)).await.unwrap().unwrap();
    assert_eq!(second.token().0, ahead + 1);
    // Fenced writes take the token in the lease key; a released lock's
    // key keeps the token alone, which no fence matches.
    let key = Key::new("fenced", "k").unwrap();
    store
        .put_fenced(&key, Bytes::from_static(b"v"), state_api::Condition::Always, None, &second.fence())
        .await
        .unwrap();
    store.release(&second).await.unwrap();
    assert_eq!(raw.get::<_, String>(lease_key("job-1")).await.unwrap(), (ahead + 1).to_string());
    let refused =
        store.put_fenced(&key, Bytes::from_static(b"w"), state_api::Condition::Always, None, &second.fence()).await;
    assert!(matches!(refused, Err(StateError::LockLost { .. })), "{refused:?}");

    // A thousand names locked once each: within the memory, nothing is left.
    for n in 0..1000 {
        let lease = store.try_acquire(&format!("per-message-{n}"), Duration::from_secs(30)).await.unwrap().unwrap();
        store.release(&lease).await.unwrap();
    }
    tokio::time::sleep(memory + Duration::from_millis(100)).await;
    let pattern = format!("{}:lock:*", store.config().key_prefix());
    let left: Vec<String> = raw.keys(pattern).await.unwrap();
    assert!(left.is_empty(), "released locks left {} keys behind: {:?}", left.len(), &left[..left.len().min(5)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscanned_spaces_write_the_entry_alone_and_refuse_scans() {
    let server = server();
    let store = connect(&server, "unscanned", |config| config.with_unscanned_spaces(["dedup", "rate:*"])).await;
    let raw = raw(&server).await;
    let prefix = store.config().key_prefix().to_owned();
    let key_count = |pattern: String| {
        let mut raw = raw.clone();
        async move { raw.keys::<_, Vec<String>>(pattern).await.unwrap().len() }
    };

    for space in ["dedup", "rate:api-1"] {
        // The contract's operations, unchanged: marks, TTLs, counters,
        // conditional writes and deletes.
        let mark = Key::new(space, "message-1").unwrap();
        assert!(store.check_and_set(&mark, Bytes::from_static(b"1"), Some(Duration::from_millis(300))).await.unwrap());
        assert!(!store.check_and_set(&mark, Bytes::from_static(b"2"), None).await.unwrap());
        let window = Key::new(space, "window").unwrap();
        assert_eq!(store.increment(&window, 5, Some(Duration::from_secs(60))).await.unwrap().value, 5);
        assert_eq!(store.increment(&window, -2, None).await.unwrap().value, 3);
        let kept = Key::new(space, "kept").unwrap();
        let version = store.set(&kept, Bytes::from_static(b"a"), Some(Duration::from_secs(60))).await.unwrap();
        assert!(matches!(
            store.compare_and_swap(&kept, version, Bytes::from_static(b"b"), None).await.unwrap(),
            PutOutcome::Written(_)
        ));
        assert_eq!(store.get(&kept).await.unwrap().unwrap().ttl, None);
        assert!(store.delete(&kept, state_api::DeleteCondition::Always).await.unwrap());

        // Nothing but the entries themselves: no index, no schedule.
        let tag = format!("{prefix}:{{{space}}}");
        assert_eq!(key_count(format!("{tag}:e:*")).await, 2, "{space}: the entries");
        assert_eq!(key_count(format!("{tag}:[ix]")).await, 0, "{space}: an index or schedule was written");

        // Scans and storage reports name what they cannot do.
        let scanned = store.scan(space, "", None, 10).await;
        assert!(matches!(scanned, Err(StateError::Unsupported { .. })), "{space}: {scanned:?}");
        let scope = state_api::StorageScope { spaces: &[space], lock_prefix: "none-" };
        let usage = store.storage_usage(scope).await;
        assert!(matches!(usage, Err(StateError::Unsupported { .. })), "{space}: {usage:?}");

        // Redis expires the mark by itself.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(store.get(&mark).await.unwrap(), None);
        assert!(store.check_and_set(&mark, Bytes::from_static(b"3"), None).await.unwrap());
    }

    // Any other space is indexed and scanned as ever, a prefix's look-alike
    // included.
    for space in ["dedup2", "rate"] {
        store.set(&Key::new(space, "a").unwrap(), Bytes::new(), None).await.unwrap();
        let page = store.scan(space, "", None, 10).await.unwrap();
        assert_eq!(page.items.len(), 1, "{space}");
    }
}

/// A server that turned replica (a failover demoted it) refuses writes
/// with `READONLY`: an increment there is a retryable error, not the
/// permanent `TypeMismatch` that the script's own refusals map to, and
/// loses nothing once the server is a master again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_increment_on_a_server_turned_replica_is_retryable_not_a_type_mismatch() {
    let server = server();
    if !server.is_private() {
        eprintln!("not applicable: STATEKIT_REDIS_URL names a server this test cannot demote");
        return;
    }
    let store = connect(&server, "replica", |c| c).await;
    let key = Key::new("replica", "n").unwrap();
    assert_eq!(store.increment(&key, 1, None).await.unwrap().value, 1);
    let mut raw = raw(&server).await;
    // A replica of a master that is not there: it refuses every write.
    let _: () = redis::cmd("REPLICAOF").arg("127.0.0.1").arg(free_port().unwrap()).query_async(&mut raw).await.unwrap();
    let error = store.increment(&key, 1, None).await.unwrap_err();
    assert!(error.is_retryable() && !matches!(error, StateError::TypeMismatch { .. }), "{error:?}");
    let _: () = redis::cmd("REPLICAOF").arg("NO").arg("ONE").query_async(&mut raw).await.unwrap();
    assert_eq!(store.increment(&key, 1, None).await.unwrap().value, 2, "the refused increment changed nothing");
}

/// How many times the server ran `command` (`INFO commandstats`).
async fn command_calls(raw: &mut redis::aio::MultiplexedConnection, command: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg("commandstats").query_async(raw).await.unwrap();
    let prefix = format!("cmdstat_{command}:calls=");
    info.lines()
        .find_map(|line| line.strip_prefix(prefix.as_str()))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

/// A plain entry is one string `<version>:<value>` and a creation one
/// `SET NX`; a counter is a hash, an increment turns a plain entry into one
/// and a put turns it back, keeping value, version and deadline; hashes
/// written by earlier versions of the crate read and write as they are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_is_one_string_a_counter_a_hash_and_earlier_hashes_need_no_migration() {
    let server = server();
    let store = connect(&server, "format", |config| config.with_unscanned_spaces(["dedup"])).await;
    let mut raw = raw(&server).await;
    let prefix = store.config().key_prefix().to_owned();
    let stored = |space: &str, id: &str| format!("{prefix}:{{{space}}}:e:{id}");

    // A deduplication mark in a space never scanned: one SET NX PX and no
    // script, and the entry is that string.
    let mark = Key::new("dedup", "message-1").unwrap();
    store.check_and_set(&mark, Bytes::from_static(b"seen"), Some(Duration::from_secs(60))).await.unwrap();
    let commands = ["set", "evalsha", "eval", "get", "getrange", "hset", "hget", "pexpire", "pttl", "zadd"];
    let mut before = Vec::new();
    for command in commands {
        before.push(command_calls(&mut raw, command).await);
    }
    let fresh = Key::new("dedup", "message-2").unwrap();
    assert!(store.check_and_set(&fresh, Bytes::from_static(b"seen"), Some(Duration::from_secs(60))).await.unwrap());
    for (command, before) in commands.iter().zip(before) {
        let expected = u64::from(*command == "set");
        assert_eq!(command_calls(&mut raw, command).await - before, expected, "{command} calls for one mark");
    }
    let packed: Vec<u8> = raw.get(stored("dedup", "message-2")).await.unwrap();
    assert_eq!(packed, b"1:seen");
    let left: i64 = raw.pttl(stored("dedup", "message-2")).await.unwrap();
    assert!((59_000..=60_000).contains(&left), "PTTL {left}");

    // Put, increment, put, increment again: one history of versions, the
    // deadline kept by increments, the representation switching under it.
    let key = Key::new("jobs", "a:b").unwrap();
    let kind = |raw: &mut redis::aio::MultiplexedConnection| {
        let mut raw = raw.clone();
        let stored = stored("jobs", "a:b");
        async move { redis::cmd("TYPE").arg(stored).query_async::<String>(&mut raw).await.unwrap() }
    };
    assert_eq!(store.set(&key, Bytes::from_static(b"5"), Some(Duration::from_secs(60))).await.unwrap(), Version(1));
    assert_eq!(kind(&mut raw).await, "string");
    let counted = store.increment(&key, 2, None).await.unwrap();
    assert_eq!((counted.value, counted.version), (7, Version(2)));
    assert_eq!(kind(&mut raw).await, "hash");
    let entry = store.get(&key).await.unwrap().unwrap();
    assert_eq!((entry.value.as_ref(), entry.version), (&b"7"[..], Version(2)));
    assert!(entry.ttl.is_some_and(|ttl| ttl > Duration::from_secs(58)), "the deadline was kept: {:?}", entry.ttl);
    assert_eq!(store.set(&key, Bytes::from_static(b"x:y"), None).await.unwrap(), Version(3));
    assert_eq!(kind(&mut raw).await, "string");
    assert!(matches!(store.increment(&key, 1, None).await, Err(StateError::TypeMismatch { .. })));
    let entry = store.get(&key).await.unwrap().unwrap();
    assert_eq!((entry.value.as_ref(), entry.version, entry.ttl), (&b"x:y"[..], Version(3), None), "nothing lost");
    let page = store.scan("jobs", "", None, 10).await.unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!((page.items[0].entry.value.as_ref(), page.items[0].entry.version), (&b"x:y"[..], Version(3)));
    assert!(!store.delete(&key, state_api::DeleteCondition::IfVersion(Version(2))).await.unwrap());
    assert!(store.delete(&key, state_api::DeleteCondition::IfVersion(Version(3))).await.unwrap());

    // Entries of an earlier version: hashes {v, ver}, in an indexed space.
    let legacy = stored("old", "kept");
    let () = raw.hset_multiple(&legacy, &[("v", "hello"), ("ver", "7")]).await.unwrap();
    let () = raw.zadd(format!("{prefix}:{{old}}:i"), "kept", 0).await.unwrap();
    let old = Key::new("old", "kept").unwrap();
    let entry = store.get(&old).await.unwrap().unwrap();
    assert_eq!((entry.value.as_ref(), entry.version), (&b"hello"[..], Version(7)));
    assert_eq!(store.scan("old", "", None, 10).await.unwrap().items.len(), 1);
    assert!(matches!(
        store.compare_and_swap(&old, Version(7), Bytes::from_static(b"hi"), None).await.unwrap(),
        PutOutcome::Written(Version(8))
    ));
    let legacy_counter = stored("old", "count");
    let () = raw.hset_multiple(&legacy_counter, &[("v", "41"), ("ver", "3")]).await.unwrap();
    let counted = store.increment(&Key::new("old", "count").unwrap(), 1, None).await.unwrap();
    assert_eq!((counted.value, counted.version), (42, Version(4)));
}
