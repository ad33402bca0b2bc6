//! statekit's Redis backend against what a Rust user would otherwise write
//! or pick for the same job, on one private Redis server, in one run:
//!
//! - a deduplication mark (set-if-absent with a TTL, every key fresh)
//!   against raw `SET key value NX PX ttl`;
//! - a counter against raw `INCRBY`;
//! - an uncontended lock (acquire, then release, one name per task) against
//!   the lock crates rslock 0.10, redis-lock 0.5 (`lock_across`, its
//!   single-resource path) and async-redis-lock 0.4;
//! - a contended lock (16 tasks, one name): hand-overs to another task per
//!   second;
//!
//! and, for each job at 64 tasks, the server's CPU per operation (`INFO
//! cpu`), the memory one dedup mark takes (`INFO memory` over 100k marks)
//! and the keys 1,000 lock names leave behind once released.
//!
//! ```sh
//! cargo bench -p state-redis --bench redis_vs_peers
//! ```
//!
//! Every client uses one multiplexed connection shared by its tasks, as the
//! store does (redis-lock's `lock_across` takes it behind a mutex, as its
//! API requires). `BENCH_SECONDS` (default 2) sets each cell's duration.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use redis::AsyncCommands;
use redis::aio::MultiplexedConnection;
use state_api::{Key, LockService, StateStore};
use state_redis::{RedisConfig, RedisStore};
use test_servers::redis::redis;
use tokio::runtime::Runtime;

mod support;

use support::{Measured, measure_tasks};

const PREFIX: &str = "bench";
const CONCURRENCY: [usize; 3] = [1, 16, 64];
const CONTENDERS: usize = 16;
const MARKS: u64 = 100_000;
const LOCK_NAMES: usize = 1_000;
const LEASE: Duration = Duration::from_secs(10);
/// How long the lock-names store remembers a released lock's token.
const TOKEN_MEMORY: Duration = Duration::from_secs(1);

/// One job's figures: ops/s at each of [`CONCURRENCY`], and the server's
/// CPU per operation at the last.
struct Row {
    job: String,
    rates: Vec<f64>,
    cpu_micros: f64,
}

/// The server's CPU time so far, in microseconds (`INFO cpu`).
async fn server_cpu(raw: &mut MultiplexedConnection) -> f64 {
    let info: String = redis::cmd("INFO").arg("cpu").query_async(raw).await.unwrap();
    info.lines()
        .filter(|line| line.starts_with("used_cpu_user:") || line.starts_with("used_cpu_sys:"))
        .filter_map(|line| line.split_once(':')?.1.trim().parse::<f64>().ok())
        .sum::<f64>()
        * 1e6
}

/// The server's `used_memory`, in bytes.
async fn used_memory(raw: &mut MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO").arg("memory").query_async(raw).await.unwrap();
    info.lines()
        .find_map(|line| line.strip_prefix("used_memory:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("used_memory")
}

/// Runs `op` at each of [`CONCURRENCY`] and records the server CPU per
/// operation of the last run.
fn job<F, Fut>(runtime: &Runtime, raw: &MultiplexedConnection, duration: Duration, job: &str, op: F) -> Row
where
    F: Fn(usize, u64) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send,
{
    let mut rates = Vec::new();
    let mut cpu_micros = 0.0;
    for tasks in CONCURRENCY {
        let mut raw = raw.clone();
        let before = runtime.block_on(server_cpu(&mut raw));
        let Measured { ops_per_sec, .. } = runtime.block_on(measure_tasks(tasks, duration, op.clone()));
        let after = runtime.block_on(server_cpu(&mut raw));
        rates.push(ops_per_sec);
        cpu_micros = (after - before) / (ops_per_sec * duration.as_secs_f64());
    }
    eprintln!("{job}: {rates:.0?} ops/s, {cpu_micros:.1} µs of server CPU per op at 64 tasks");
    Row { job: job.to_owned(), rates, cpu_micros }
}

/// A run-unique id for task `task`'s `n`th operation.
fn fresh(run: u64, task: usize, n: u64) -> String {
    format!("r{run}-t{task}-{n}")
}

/// `CONTENDERS` tasks taking turns on one lock through `cycle(task)`
/// (acquire, note the holder with [`held_by`], release) for `duration`.
async fn contend<F, Fut>(duration: Duration, cycle: F)
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: Future<Output = ()> + Send,
{
    let until = tokio::time::Instant::now() + duration;
    let tasks: Vec<_> = (0..CONTENDERS)
        .map(|task| {
            let cycle = cycle.clone();
            tokio::spawn(async move {
                while tokio::time::Instant::now() < until {
                    cycle(task).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
}

/// Counts a hand-over when the holder differs from the previous one.
fn held_by(last: &AtomicUsize, count: &AtomicU64, task: usize) {
    if last.swap(task, Ordering::Relaxed) != task {
        count.fetch_add(1, Ordering::Relaxed);
    }
}

fn main() {
    let seconds: u64 = std::env::var("BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2);
    let duration = Duration::from_secs(seconds);
    let server = redis().unwrap_or_else(|e| panic!("{e}"));
    let url = server.url().to_owned();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    // Spaces starting with "unscanned-" are declared never scanned. The
    // sweeper is off: its passes walk the whole database (millions of keys
    // by the later cells) on the store's connection, and whichever cell
    // one fell on would pay for it.
    let config =
        RedisConfig::new(&url).with_key_prefix(PREFIX).with_unscanned_spaces(["unscanned-*"]).with_sweep_interval(None);
    let store = runtime.block_on(RedisStore::connect(config)).unwrap();
    let raw: MultiplexedConnection = runtime.block_on(async {
        redis::Client::open(url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap()
    });
    let runs = Arc::new(AtomicU64::new(0));
    let mut rows = Vec::new();

    // Deduplication marks: every key is fresh, so every call creates. The raw
    // commands go first: statekit then runs on the fuller database.
    let c = raw.clone();
    let r = Arc::clone(&runs);
    rows.push(job(&runtime, &raw, duration, "dedup: raw SET NX PX", move |task, n| {
        let (mut c, run) = (c.clone(), r.fetch_add(u64::from(n == 0), Ordering::Relaxed));
        async move {
            let set: Option<String> = redis::cmd("SET")
                .arg(format!("raw:dedup:{}", fresh(run, task, n)))
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(600_000)
                .query_async(&mut c)
                .await
                .unwrap();
            assert!(set.is_some());
        }
    }));

    let s = store.clone();
    let r = Arc::clone(&runs);
    rows.push(job(&runtime, &raw, duration, "dedup: statekit check_and_set, TTL", move |task, n| {
        let (s, run) = (s.clone(), r.fetch_add(u64::from(n == 0), Ordering::Relaxed));
        async move {
            let key = Key::new("dedup", &fresh(run, task, n)).unwrap();
            assert!(s.check_and_set(&key, Bytes::from_static(b"1"), Some(Duration::from_secs(600))).await.unwrap());
        }
    }));
    let s = store.clone();
    let r = Arc::clone(&runs);
    rows.push(job(&runtime, &raw, duration, "dedup: statekit, unscanned space", move |task, n| {
        let (s, run) = (s.clone(), r.fetch_add(u64::from(n == 0), Ordering::Relaxed));
        async move {
            let key = Key::new("unscanned-dedup", &fresh(run, task, n)).unwrap();
            assert!(s.check_and_set(&key, Bytes::from_static(b"1"), Some(Duration::from_secs(600))).await.unwrap());
        }
    }));
    // Counters: one per task.
    let s = store.clone();
    rows.push(job(&runtime, &raw, duration, "counter: statekit increment", move |task, _| {
        let s = s.clone();
        async move {
            s.increment(&Key::new("counter", &format!("c{task}")).unwrap(), 1, None).await.unwrap();
        }
    }));
    let c = raw.clone();
    rows.push(job(&runtime, &raw, duration, "counter: raw INCRBY", move |task, _| {
        let mut c = c.clone();
        async move {
            let _: i64 = c.incr(format!("raw:counter:c{task}"), 1).await.unwrap();
        }
    }));

    // Uncontended locks: one name per task.
    let s = store.clone();
    rows.push(job(&runtime, &raw, duration, "lock: statekit try_acquire + release", move |task, _| {
        let s = s.clone();
        async move {
            let lease = s.try_acquire(&format!("own-{task}"), LEASE).await.unwrap().expect("free");
            s.release(&lease).await.unwrap();
        }
    }));
    let rslock = rslock::LockManager::new(vec![url.clone()]);
    let m = rslock.clone();
    rows.push(job(&runtime, &raw, duration, "lock: rslock lock + unlock", move |task, _| {
        let m = m.clone();
        async move {
            let lock = m.lock(format!("rslock-{task}").as_bytes(), LEASE).await.expect("free");
            m.unlock(&lock).await;
        }
    }));
    let connection = runtime.block_on(async {
        let client = redis_027::Client::open(url.as_str()).unwrap();
        Arc::new(tokio::sync::Mutex::new(client.get_multiplexed_async_connection().await.unwrap()))
    });
    let c = Arc::clone(&connection);
    rows.push(job(&runtime, &raw, duration, "lock: redis-lock lock_across", move |task, _| {
        let c = Arc::clone(&c);
        async move {
            let options = redis_lock::LockAcrossOptions { ttl: LEASE, ..Default::default() };
            redis_lock::lock_across(&[c], &format!("redis-lock-{task}"), async {}, options).await.expect("free");
        }
    }));
    let locker = runtime.block_on(async_redis_lock::Locker::from_redis_url(&url)).unwrap();
    let l = locker.clone();
    rows.push(job(&runtime, &raw, duration, "lock: async-redis-lock acquire + release", move |task, _| {
        let l = l.clone();
        async move {
            let options = async_redis_lock::options::Options::new().ttl(LEASE);
            let lock = l.acquire_with_options(&options, format!("async-redis-lock-{task}")).await.expect("free");
            lock.release().await.unwrap();
        }
    }));

    // Contended: CONTENDERS tasks, one name, each waiting its turn.
    let mut contended = Vec::new();
    let (last, count) = (Arc::new(AtomicUsize::new(usize::MAX)), Arc::new(AtomicU64::new(0)));
    let shared = |last: &Arc<AtomicUsize>, count: &Arc<AtomicU64>| {
        last.store(usize::MAX, Ordering::Relaxed);
        count.store(0, Ordering::Relaxed);
        (Arc::clone(last), Arc::clone(count))
    };
    let (s, (l, n)) = (store.clone(), shared(&last, &count));
    runtime.block_on(contend(duration, move |task| {
        let (s, l, n) = (s.clone(), Arc::clone(&l), Arc::clone(&n));
        async move {
            let lease = s.acquire("hot", LEASE, Duration::from_secs(30)).await.unwrap();
            held_by(&l, &n, task);
            s.release(&lease).await.unwrap();
        }
    }));
    contended.push(("statekit acquire (waits in line)", count.load(Ordering::Relaxed) as f64 / seconds as f64));
    let (m, (l, n)) = (rslock.clone(), shared(&last, &count));
    runtime.block_on(contend(duration, move |task| {
        let (m, l, n) = (m.clone(), Arc::clone(&l), Arc::clone(&n));
        async move {
            let guard = m.acquire(b"rslock-hot", LEASE).await.unwrap();
            held_by(&l, &n, task);
            guard.release().await;
        }
    }));
    contended.push(("rslock acquire (retries every 200 ms)", count.load(Ordering::Relaxed) as f64 / seconds as f64));
    let (c, (l, n)) = (Arc::clone(&connection), shared(&last, &count));
    runtime.block_on(contend(duration, move |task| {
        let (c, l, n) = (Arc::clone(&c), Arc::clone(&l), Arc::clone(&n));
        async move {
            let options =
                redis_lock::LockAcrossOptions { ttl: LEASE, duration: Duration::from_secs(30), ..Default::default() };
            redis_lock::lock_across(&[c], "redis-lock-hot", async move { held_by(&l, &n, task) }, options)
                .await
                .unwrap();
        }
    }));
    contended
        .push(("redis-lock lock_across (retries every 100 ms)", count.load(Ordering::Relaxed) as f64 / seconds as f64));
    let (lk, (l, n)) = (locker.clone(), shared(&last, &count));
    runtime.block_on(contend(duration, move |task| {
        let (lk, l, n) = (lk.clone(), Arc::clone(&l), Arc::clone(&n));
        async move {
            let options = async_redis_lock::options::Options::new().ttl(LEASE).timeout(Some(Duration::from_secs(30)));
            let lock = lk.acquire_with_options(&options, "async-redis-lock-hot").await.unwrap();
            held_by(&l, &n, task);
            lock.release().await.unwrap();
        }
    }));
    contended.push((
        "async-redis-lock acquire (retries every 100 ms)",
        count.load(Ordering::Relaxed) as f64 / seconds as f64,
    ));

    // Memory per dedup mark, and what released lock names leave behind.
    let (mark_bytes, raw_mark_bytes, lock_keys) = runtime.block_on(async {
        // Nothing is freed meanwhile: the earlier keys' TTLs are minutes.
        let mut c = raw.clone();
        let before = used_memory(&mut c).await;
        for n in 0..MARKS {
            let key = Key::new("marks", &format!("message-{n}")).unwrap();
            store.check_and_set(&key, Bytes::from_static(b"1"), Some(Duration::from_secs(3600))).await.unwrap();
        }
        let ours = (used_memory(&mut c).await - before) as f64 / MARKS as f64;
        let before = used_memory(&mut c).await;
        for n in 0..MARKS {
            let key = Key::new("unscanned-marks", &format!("message-{n}")).unwrap();
            store.check_and_set(&key, Bytes::from_static(b"1"), Some(Duration::from_secs(3600))).await.unwrap();
        }
        let unscanned = (used_memory(&mut c).await - before) as f64 / MARKS as f64;
        let before = used_memory(&mut c).await;
        for n in 0..MARKS {
            let _: Option<String> = redis::cmd("SET")
                .arg(format!("raw:marks:message-{n}"))
                .arg("1")
                .arg("NX")
                .arg("PX")
                .arg(3_600_000)
                .query_async(&mut c)
                .await
                .unwrap();
        }
        let theirs = (used_memory(&mut c).await - before) as f64 / MARKS as f64;
        // The database is emptied at once (ASYNC frees in the background).
        // A store whose sweeper runs every 500 ms remembers a released
        // lock's token for 1 s (two intervals): the keys are counted right
        // after the releases and once that memory and a sweep have passed.
        let _: () = redis::cmd("FLUSHALL").arg("ASYNC").query_async(&mut c).await.unwrap();
        let config = RedisConfig::new(&url).with_key_prefix(PREFIX).with_sweep_interval(Some(TOKEN_MEMORY / 2));
        let locks = RedisStore::connect(config).await.unwrap();
        for n in 0..LOCK_NAMES {
            let lease = locks.try_acquire(&format!("job-{n}"), LEASE).await.unwrap().expect("free");
            locks.release(&lease).await.unwrap();
        }
        let right_after: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
        tokio::time::sleep(TOKEN_MEMORY * 2).await;
        let later: i64 = redis::cmd("DBSIZE").query_async(&mut c).await.unwrap();
        ((ours, unscanned), theirs, (right_after, later))
    });

    println!();
    println!("statekit RedisStore vs the raw commands and the lock crates, same Redis server, {seconds} s per cell");
    println!("{:<44} {:>10} {:>10} {:>10} {:>16}", "job", "1 task", "16 tasks", "64 tasks", "server µs/op @64");
    for row in &rows {
        println!(
            "{:<44} {:>10.0} {:>10.0} {:>10.0} {:>16.1}",
            row.job, row.rates[0], row.rates[1], row.rates[2], row.cpu_micros
        );
    }
    let ratio = |ours: &str, theirs: &str| {
        let find = |name: &str| rows.iter().find(|row| row.job.starts_with(name)).expect("row");
        let (a, b) = (find(ours), find(theirs));
        a.rates.iter().zip(&b.rates).map(|(x, y)| format!("{:.2}x", x / y)).collect::<Vec<_>>().join(" / ")
    };
    println!();
    println!("ratios statekit / peer at 1 / 16 / 64 tasks:");
    println!("  dedup vs SET NX PX:             {}", ratio("dedup: statekit check", "dedup: raw"));
    println!("  dedup, unscanned, vs SET NX PX: {}", ratio("dedup: statekit, unscanned", "dedup: raw"));
    println!("  counter vs INCRBY:              {}", ratio("counter: statekit", "counter: raw"));
    for peer in ["lock: rslock", "lock: redis-lock", "lock: async-redis-lock"] {
        println!("  lock vs {:<24} {}", &peer[6..], ratio("lock: statekit", peer));
    }
    println!();
    println!("contended lock, {CONTENDERS} tasks on one name: hand-overs to another task per second");
    for (who, rate) in &contended {
        println!("  {who:<48} {rate:>8.0}");
    }
    println!();
    println!(
        "memory per dedup mark ({MARKS} marks): statekit {:.0} B ({:.2}x), in an unscanned space {:.0} B ({:.2}x), \
         SET NX PX {raw_mark_bytes:.0} B",
        mark_bytes.0,
        mark_bytes.0 / raw_mark_bytes,
        mark_bytes.1,
        mark_bytes.1 / raw_mark_bytes
    );
    println!(
        "keys left by {LOCK_NAMES} lock names, each acquired and released once: {} right after, {} after {:?}",
        lock_keys.0,
        lock_keys.1,
        TOKEN_MEMORY * 2
    );
    drop(store);
    drop(server);
}
