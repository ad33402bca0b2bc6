//! Redis Cluster beside one server, each against the raw tool on itself:
//! `RedisStore` at 64 concurrent tasks on a private standalone server and
//! on a private three-master cluster (a replica each), and
//! `redis-benchmark -c 64` (`--cluster` on the cluster) running the plain
//! commands on the same servers in the same run.
//!
//! ```sh
//! cargo bench -p state-redis --bench redis_cluster
//! ```
//!
//! Every task works in a space (and on a lock) of its own, so the cluster's
//! tasks spread over its slots, as an application's many spaces would: one
//! space is one slot, on one master. redis-benchmark's keys are random
//! (`-r`), spread the same way. redis-benchmark cannot run statekit's
//! scripts on a cluster (in `--cluster` mode it routes only its built-in
//! tests), so its rows are its `get`, `set` and `incr` tests. `BENCH_SECONDS` changes the duration (3 s).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::time::Duration;

use bytes::Bytes;
use state_api::{Key, LockService, StateStore};
use state_redis::{RedisConfig, RedisStore};
use support::{Measured, TASKS, measure, redis_benchmark_rates};
use test_servers::find_binary;
use test_servers::redis::{redis, redis_cluster};

/// The statekit rows on one topology.
fn statekit_rows(runtime: &tokio::runtime::Runtime, store: &RedisStore, duration: Duration) -> Vec<Measured> {
    runtime.block_on(async {
        for task in 0..TASKS {
            let key = Key::new(&format!("get-{task}"), "k").unwrap();
            store.set(&key, Bytes::from_static(b"value"), None).await.unwrap();
        }
    });
    let mut rows = Vec::new();
    let s = store.clone();
    rows.push(runtime.block_on(measure(duration, move |task, _| {
        let s = s.clone();
        async move {
            let key = Key::new(&format!("get-{task}"), "k").unwrap();
            assert!(s.get(&key).await.unwrap().is_some());
        }
    })));
    let s = store.clone();
    rows.push(runtime.block_on(measure(duration, move |task, n| {
        let s = s.clone();
        async move {
            let key = Key::new(&format!("cas-{task}"), &format!("k{n}")).unwrap();
            assert!(s.check_and_set(&key, Bytes::from_static(b"value"), None).await.unwrap());
        }
    })));
    let s = store.clone();
    rows.push(runtime.block_on(measure(duration, move |task, _| {
        let s = s.clone();
        async move {
            let key = Key::new(&format!("incr-{task}"), "k").unwrap();
            s.increment(&key, 1, None).await.unwrap();
        }
    })));
    let s = store.clone();
    rows.push(runtime.block_on(measure(duration, move |task, _| {
        let s = s.clone();
        async move {
            let lease = s.try_acquire(&format!("lock-{task}"), Duration::from_secs(10)).await.unwrap().expect("free");
            s.release(&lease).await.unwrap();
        }
    })));
    rows
}

fn port_of(url: &str) -> u16 {
    url.rsplit(':').next().and_then(|p| p.trim_end_matches('/').parse().ok()).expect("a port")
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let duration = Duration::from_secs(seconds);
    let benchmark = find_binary("redis-benchmark", &["/usr/bin", "/usr/local/bin"])
        .expect("redis-benchmark is missing: install the Debian package redis-tools");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let requests = 100_000 * seconds;
    // The built-in tests: in cluster mode redis-benchmark routes only
    // their keys (each carries a hash tag of the node it is sent to).
    let raw = |port: u16, cluster: bool| -> Vec<f64> {
        let rates = redis_benchmark_rates(&benchmark, port, requests, cluster, &["-t", "get,set,incr"]);
        ["GET", "SET", "INCR"]
            .iter()
            .map(|name| rates.iter().find(|(test, _)| test == name).map(|(_, rate)| *rate).expect("a rate"))
            .collect()
    };

    let server = redis().unwrap_or_else(|e| panic!("{e}"));
    let store = runtime.block_on(RedisStore::connect(RedisConfig::new(server.url()))).unwrap();
    let standalone = statekit_rows(&runtime, &store, duration);
    let standalone_raw = raw(port_of(server.url()), false);
    drop(store);
    drop(server);

    let cluster = redis_cluster().unwrap_or_else(|e| panic!("{e}"));
    let store = runtime.block_on(RedisStore::connect(RedisConfig::cluster(cluster.urls()))).unwrap();
    let clustered = statekit_rows(&runtime, &store, duration);
    let cluster_raw = raw(port_of(&cluster.urls()[0]), true);
    drop(store);
    drop(cluster);

    println!();
    println!("RedisStore on one server and on a 3-master cluster, {TASKS} tasks, {seconds} s per row");
    println!(
        "{:<22} {:>16} {:>9} {:>16} {:>9} {:>8}",
        "operation", "standalone ops/s", "p99", "cluster ops/s", "p99", "cluster/standalone"
    );
    let names = ["get", "check_and_set (fresh)", "increment", "lock acquire+release"];
    for ((name, one), many) in names.iter().zip(&standalone).zip(&clustered) {
        println!(
            "{:<22} {:>16.0} {:>9} {:>16.0} {:>9} {:>7.2}x",
            name,
            one.ops_per_sec,
            format!("{:.2}ms", one.p99.as_secs_f64() * 1e3),
            many.ops_per_sec,
            format!("{:.2}ms", many.p99.as_secs_f64() * 1e3),
            many.ops_per_sec / one.ops_per_sec
        );
    }
    println!("redis-benchmark -c {TASKS} on the same servers (random keys):");
    for ((name, one), many) in ["GET", "SET", "INCR"].iter().zip(&standalone_raw).zip(&cluster_raw) {
        println!("{name:<22} {one:>16.0} {:>9} {many:>16.0} {:>9} {:>7.2}x", "", "", many / one);
    }
}
