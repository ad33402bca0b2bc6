//! The cost of the abstraction, as a ratio: `RedisStore` operations at 64
//! concurrent tasks against `redis-benchmark -c 64` running the same
//! scripts (by SHA1, `EVALSHA`) on the same server in the same run.
//!
//! ```sh
//! cargo bench -p state-redis --bench redis_vs_benchmark
//! ```
//!
//! Each statekit figure is ~3 s of 64 tasks sharing one store (one
//! multiplexed connection); each redis-benchmark figure is `-c 64` clients
//! (one connection each, one request in flight per connection). Where
//! redis-benchmark cannot replay the exact arguments (it cannot carry a
//! version or an owner id from one request to the next) the row says which
//! equivalent it runs. `BENCH_SECONDS` changes the duration.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::Script;
use state_api::{Key, LockService, PutOutcome, StateStore, Version};
use state_redis::{RedisConfig, RedisStore};
use test_servers::find_binary;
use test_servers::redis::redis;

mod support;

use support::{Measured, TASKS, measure};

const PREFIX: &str = "bench";

/// Runs `redis-benchmark -c 64 -q` with `args` and returns its requests/s.
fn redis_benchmark(binary: &std::path::Path, port: u16, requests: u64, args: &[&str]) -> f64 {
    support::redis_benchmark(binary, port, requests, false, args)
}

fn sha(source: &str) -> String {
    Script::new(source).get_hash().to_owned()
}

/// A script as the store sends it: the writers carry `index.lua` in front
/// (see `src/scripts.rs`). `main` checks the server knows each hash.
macro_rules! with_index {
    ($file:literal) => {
        concat!(include_str!("../src/scripts/index.lua"), "\n", include_str!($file))
    };
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let server = redis().unwrap_or_else(|e| panic!("{e}"));
    let port: u16 = server.url().rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).expect("port");
    let benchmark = find_binary("redis-benchmark", &["/usr/bin", "/usr/local/bin"])
        .expect("redis-benchmark is missing: install the Debian package redis-tools");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let store = runtime.block_on(RedisStore::connect(RedisConfig::new(server.url()).with_key_prefix(PREFIX))).unwrap();

    let get_sha = sha(include_str!("../src/scripts/get.lua"));
    let put_sha = sha(with_index!("../src/scripts/put.lua"));
    let acquire_sha = sha(include_str!("../src/scripts/lock_acquire.lua"));
    let release_sha = sha(include_str!("../src/scripts/lock_release.lua"));
    // The store loaded its scripts at connect: the hashes must be known.
    runtime.block_on(async {
        let mut raw = redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        for hash in [&get_sha, &put_sha, &acquire_sha, &release_sha] {
            let known: Vec<bool> = redis::cmd("SCRIPT").arg("EXISTS").arg(hash).query_async(&mut raw).await.unwrap();
            assert_eq!(known, [true], "script {hash} is not the one the store sends");
        }
    });
    // Requests per redis-benchmark run: about `seconds` at ~100k/s.
    let requests = 100_000 * seconds;
    let mut rows: Vec<(&str, Measured, f64, &str)> = Vec::new();

    // get: 64 keys, one per task.
    runtime.block_on(async {
        for task in 0..TASKS {
            store
                .set(&Key::new("get", &format!("k{task}")).unwrap(), Bytes::from_static(b"value"), None)
                .await
                .unwrap();
        }
    });
    let s = store.clone();
    let ours = runtime.block_on(measure(duration, move |task, _| {
        let s = s.clone();
        async move {
            let key = Key::new("get", &format!("k{task}")).unwrap();
            assert!(s.get(&key).await.unwrap().is_some());
        }
    }));
    let theirs = redis_benchmark(&benchmark, port, requests, &["EVALSHA", &get_sha, "1", "bench:{get}:e:k1"]);
    rows.push(("get", ours, theirs, "EVALSHA get.lua on one key"));

    // check_and_set on fresh keys: every call creates a key.
    let s = store.clone();
    let ours = runtime.block_on(measure(duration, move |task, n| {
        let s = s.clone();
        async move {
            let key = Key::new("cas", &format!("t{task}-{n}")).unwrap();
            assert!(s.check_and_set(&key, Bytes::from_static(b"value"), None).await.unwrap());
        }
    }));
    let put_fresh = [
        "EVALSHA",
        &put_sha,
        "3",
        "bench:{rb}:e:__rand_int__",
        "bench:{rb}:i",
        "bench:{rb}:x",
        "absent",
        "",
        "value",
        "",
        "__rand_int__",
        "1",
    ];
    let theirs = redis_benchmark(&benchmark, port, requests, &put_fresh);
    rows.push(("check_and_set", ours, theirs, "EVALSHA put.lua absent, random keys"));

    // compare_and_swap: each task swaps its own key at the version it holds.
    let versions: Arc<Vec<AtomicU64>> = Arc::new((0..TASKS).map(|_| AtomicU64::new(0)).collect());
    runtime.block_on(async {
        for (task, slot) in versions.iter().enumerate() {
            let version = store.set(&Key::new("swap", &format!("k{task}")).unwrap(), Bytes::new(), None).await.unwrap();
            slot.store(version.0, Ordering::Relaxed);
        }
    });
    let (s, v) = (store.clone(), Arc::clone(&versions));
    let ours = runtime.block_on(measure(duration, move |task, _| {
        let (s, v) = (s.clone(), Arc::clone(&v));
        async move {
            let key = Key::new("swap", &format!("k{task}")).unwrap();
            let expected = Version(v[task].load(Ordering::Relaxed));
            match s.compare_and_swap(&key, expected, Bytes::from_static(b"value"), None).await.unwrap() {
                PutOutcome::Written(version) => v[task].store(version.0, Ordering::Relaxed),
                PutOutcome::Rejected(_) => panic!("task {task} lost its own key"),
            }
        }
    }));
    // An existing key overwritten: the write path of a successful swap.
    let put_always = [
        "EVALSHA",
        &put_sha,
        "3",
        "bench:{rb}:e:swap",
        "bench:{rb}:i",
        "bench:{rb}:x",
        "always",
        "",
        "value",
        "",
        "swap",
        "1",
    ];
    let theirs = redis_benchmark(&benchmark, port, requests, &put_always);
    rows.push(("compare_and_swap", ours, theirs, "EVALSHA put.lua always, one existing key"));

    // Lock acquire + release, one lock per task (uncontended).
    let s = store.clone();
    let ours = runtime.block_on(measure(duration, move |task, _| {
        let s = s.clone();
        async move {
            let name = format!("lock-{task}");
            let lease = s.try_acquire(&name, Duration::from_secs(10)).await.unwrap().expect("free");
            s.release(&lease).await.unwrap();
        }
    }));
    // try_acquire's arguments: no waiter, so no line (the line keys stay
    // absent). The release runs on a random name, which nobody holds: the
    // owner check's path.
    let acquire = [
        "EVALSHA",
        &acquire_sha,
        "3",
        "bench:lock:{__rand_int__}:lease",
        "bench:lock:{x}:line",
        "bench:lock:{x}:live",
        "owner",
        "10000",
        "",
        "0",
        "0",
        "",
    ];
    let release = [
        "EVALSHA",
        &release_sha,
        "1",
        "bench:lock:{__rand_int__}:lease",
        "1:owner",
        "bench:released",
        "PUBLISH",
        "60000",
        "1",
    ];
    let acquired = redis_benchmark(&benchmark, port, requests, &acquire);
    let released = redis_benchmark(&benchmark, port, requests, &release);
    // One pair costs one of each: the pair rate is the harmonic combination.
    let theirs = 1.0 / (1.0 / acquired + 1.0 / released);
    rows.push(("lock acquire+release", ours, theirs, "EVALSHA lock_acquire.lua then lock_release.lua"));

    // For scale: the plainest commands.
    let plain_get = redis_benchmark(&benchmark, port, requests, &["GET", "bench:plain"]);
    let plain_set = redis_benchmark(&benchmark, port, requests, &["SET", "bench:plain", "value"]);

    println!();
    println!(
        "statekit RedisStore vs redis-benchmark, {TASKS} concurrent tasks / clients, same server, {seconds} s per row"
    );
    println!(
        "{:<22} {:>14} {:>9} {:>9} {:>18} {:>7}  redis-benchmark runs",
        "operation", "statekit ops/s", "p50", "p99", "redis-benchmark/s", "ratio"
    );
    for (name, ours, theirs, what) in &rows {
        println!(
            "{:<22} {:>14.0} {:>9} {:>9} {:>18.0} {:>6.2}x  {what}",
            name,
            ours.ops_per_sec,
            format!("{:.2}ms", ours.p50.as_secs_f64() * 1e3),
            format!("{:.2}ms", ours.p99.as_secs_f64() * 1e3),
            theirs,
            ours.ops_per_sec / theirs,
        );
    }
    println!("(reference: plain GET {plain_get:.0}/s, plain SET {plain_set:.0}/s with redis-benchmark -c {TASKS})");
    drop(store);
    drop(server);
}
