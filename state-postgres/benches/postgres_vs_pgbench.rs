//! `check_and_set`, `get` and `compare_and_swap` through [`PostgresStore`]
//! at 16 connections, beside `pgbench -c 16` running the identical SQL
//! statements (the crate's own `queries/*.sql`) against the same server in
//! the same run, so the cost of the abstraction (Rust, tokio, sqlx, the
//! contract's decoding) is a ratio.
//!
//! ```text
//! cargo bench -p state-postgres --bench postgres_vs_pgbench
//! ```
//!
//! Uses `STATEKIT_POSTGRES_URL` if set, else a private server;
//! `STATEKIT_BENCH_SECONDS` sets each measurement's length (default 5) and
//! `STATEKIT_BENCH_ROUNDS` how many times each side is measured (default
//! 3). The two sides alternate and the medians are compared, so a change
//! in background load during the run hits both alike.
//! Both sides use prepared statements (sqlx always does; pgbench with
//! `-M prepared`) and the same key distributions; pgbench gets `-j 2`
//! threads, the store a 2-worker tokio runtime.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use state_api::{Key, PutOutcome, StateStore, Version};
use state_postgres::{PostgresConfig, PostgresStore};
use test_servers::find_binary;

const CONNECTIONS: usize = 16;
/// Ids for `get`, and the key space `check_and_set` draws fresh ids from.
const GET_KEYS: u32 = 10_000;
const FRESH_IDS: u32 = 2_000_000_000;

#[derive(Debug, Clone, Copy)]
enum Workload {
    /// `put(IfAbsent)` on a fresh random id: the insert path.
    CheckAndSet,
    /// `get` of a random one of 10 000 existing keys.
    Get,
    /// `put(IfVersion)` on a key per connection, expecting the version the
    /// previous call returned: every call writes.
    CompareAndSwap,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::CheckAndSet => "check_and_set",
            Workload::Get => "get",
            Workload::CompareAndSwap => "compare_and_swap",
        }
    }

    fn space(self, side: &str) -> String {
        format!("bench-{}-{side}", self.name())
    }

    /// The pgbench script: the store's statement with its parameters as
    /// pgbench variables (bound as parameters under `-M prepared`).
    fn pgbench_script(self) -> String {
        let (file, head, tail) = match self {
            Workload::CheckAndSet => ("put_if_absent.sql", format!("\\set id random(0, {})\n", FRESH_IDS - 1), ";"),
            Workload::Get => ("get.sql", format!("\\set id random(0, {})\n", GET_KEYS - 1), ";"),
            // `version` starts at 1 (-D) and \gset keeps the returned one.
            Workload::CompareAndSwap => ("put_if_version.sql", String::new(), " \\gset"),
        };
        let id = if matches!(self, Workload::CompareAndSwap) { ":client_id" } else { ":id" };
        let sql = statement(file)
            .replace("$1", ":space")
            .replace("$2", id)
            .replace("$3", ":value")
            // pgbench cannot bind NULL; the store binds NULL here (no TTL).
            .replace("$4::float8", "NULL::float8")
            .replace("$5", ":version");
        format!("{head}{}{tail}\n", sql.trim_end())
    }
}

/// A query file rendered for the default schema and prefix, without its
/// comment lines.
fn statement(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries").join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("{{entries}}", "\"public\".\"statekit_entries\"")
        .replace("{{locks}}", "\"public\".\"statekit_locks\"")
}

struct Measured {
    ops_per_sec: f64,
    p50: Duration,
    p99: Duration,
    mean: Duration,
}

/// Puts the compare-and-swap keys back at version 1 before a measurement,
/// where every client starts expecting version 1.
async fn reset(store: &PostgresStore, workload: Workload, side: &str) {
    if matches!(workload, Workload::CompareAndSwap) {
        prepare(store, workload, side).await;
    }
}

async fn prepare(store: &PostgresStore, workload: Workload, side: &str) {
    let space = workload.space(side);
    match workload {
        Workload::CheckAndSet => {}
        Workload::Get => {
            for id in 0..GET_KEYS {
                store.set(&Key::new(&space, &id.to_string()).unwrap(), Bytes::from_static(b"v"), None).await.unwrap();
            }
        }
        Workload::CompareAndSwap => {
            for id in 0..CONNECTIONS {
                let key = Key::new(&space, &id.to_string()).unwrap();
                store.delete(&key, state_api::DeleteCondition::Always).await.unwrap();
                assert_eq!(store.set(&key, Bytes::from_static(b"v"), None).await.unwrap(), Version(1));
            }
        }
    }
}

/// One client's loop: as many calls as fit in `length`, each timed.
async fn client(store: Arc<PostgresStore>, workload: Workload, client: usize, length: Duration) -> Vec<Duration> {
    let space = workload.space("store");
    let mut rng = fastrand_seed(client as u64 + 1);
    let mut latencies = Vec::with_capacity(100_000);
    let mut version = Version(1);
    let cas_key = Key::new(&space, &client.to_string()).unwrap();
    let value = Bytes::from_static(b"v");
    let end = Instant::now() + length;
    while Instant::now() < end {
        let started = Instant::now();
        match workload {
            Workload::CheckAndSet => {
                let key = Key::new(&space, &(next(&mut rng) % FRESH_IDS).to_string()).unwrap();
                store.check_and_set(&key, value.clone(), None).await.unwrap();
            }
            Workload::Get => {
                let key = Key::new(&space, &(next(&mut rng) % GET_KEYS).to_string()).unwrap();
                assert!(store.get(&key).await.unwrap().is_some());
            }
            Workload::CompareAndSwap => {
                version = match store.compare_and_swap(&cas_key, version, value.clone(), None).await.unwrap() {
                    PutOutcome::Written(v) => v,
                    PutOutcome::Rejected(entry) => entry.map_or(Version(1), |e| e.version),
                };
            }
        }
        latencies.push(started.elapsed());
    }
    latencies
}

/// A tiny xorshift generator: the bench needs cheap, seeded randomness
/// only.
fn fastrand_seed(seed: u64) -> u64 {
    seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1
}

fn next(state: &mut u64) -> u32 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    (*state >> 32) as u32
}

async fn run_store(store: &Arc<PostgresStore>, workload: Workload, length: Duration) -> Measured {
    let started = Instant::now();
    let tasks: Vec<_> =
        (0..CONNECTIONS).map(|c| tokio::spawn(client(Arc::clone(store), workload, c, length))).collect();
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    measure(latencies, started.elapsed())
}

/// The store in pgbench's topology: 2 threads, each a single-threaded
/// runtime driving 8 connections (its own store), so no task ever migrates
/// between threads. Shows how much of the gap is the multi-threaded
/// runtime's cross-thread wake-ups rather than the library.
fn run_store_split(url: &str, workload: Workload, length: Duration) -> Measured {
    let threads: Vec<_> = (0..2)
        .map(|half| {
            let url = url.to_owned();
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                runtime.block_on(async move {
                    let config =
                        PostgresConfig::new(url).with_pool_size(CONNECTIONS as u32 / 2).with_reap_interval(None);
                    let store = Arc::new(PostgresStore::connect(config).await.unwrap());
                    let started = Instant::now();
                    let tasks: Vec<_> = (0..CONNECTIONS / 2)
                        .map(|c| tokio::spawn(client(Arc::clone(&store), workload, half * CONNECTIONS / 2 + c, length)))
                        .collect();
                    let mut latencies = Vec::new();
                    for task in tasks {
                        latencies.extend(task.await.unwrap());
                    }
                    (latencies, started.elapsed())
                })
            })
        })
        .collect();
    let mut latencies = Vec::new();
    let mut elapsed = Duration::ZERO;
    for thread in threads {
        let (part, took) = thread.join().unwrap();
        latencies.extend(part);
        elapsed = elapsed.max(took);
    }
    measure(latencies, elapsed)
}

fn measure(mut latencies: Vec<Duration>, elapsed: Duration) -> Measured {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    let total: Duration = latencies.iter().sum();
    Measured {
        ops_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
        mean: total / u32::try_from(latencies.len()).unwrap(),
    }
}

struct PgbenchResult {
    tps: f64,
    latency: Duration,
}

fn run_pgbench(pgbench: &Path, url: &str, workload: Workload, length: Duration) -> PgbenchResult {
    let script = std::env::temp_dir().join(format!("statekit-pgbench-{}-{}.sql", std::process::id(), workload.name()));
    std::fs::write(&script, workload.pgbench_script()).unwrap();
    let output = Command::new(pgbench)
        .args(["-n", "-M", "prepared", "-c", &CONNECTIONS.to_string(), "-j", "2"])
        .args(["-T", &length.as_secs().max(1).to_string()])
        .args(["-D", &format!("space={}", workload.space("pgbench")), "-D", "value=v", "-D", "version=1"])
        .arg("-f")
        .arg(&script)
        .arg(url)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&script);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "pgbench failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let number_after = |label: &str| -> f64 {
        let line =
            stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in:\n{stdout}"));
        line[label.len()..].split_whitespace().next().unwrap().parse().unwrap()
    };
    let failed = stdout.lines().find(|l| l.starts_with("number of failed transactions")).unwrap_or("");
    assert!(failed.is_empty() || failed.contains(": 0 "), "pgbench transactions failed: {failed}");
    PgbenchResult {
        tps: number_after("tps = "),
        latency: Duration::from_secs_f64(number_after("latency average = ") / 1000.0),
    }
}

fn find_pgbench() -> PathBuf {
    find_binary("pgbench", &["/usr/lib/postgresql/*/bin"])
        .expect("pgbench not found: install the Debian package `postgresql-contrib` (or `postgresql-client`)")
}

fn main() {
    // `cargo test --benches` runs benches with --bench absent: stay quick.
    if !std::env::args().any(|a| a == "--bench") {
        println!("postgres_vs_pgbench: run with `cargo bench` to measure");
        return;
    }
    let seconds: u64 = std::env::var("STATEKIT_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(5);
    let length = Duration::from_secs(seconds);
    let pgbench = find_pgbench();
    let server = test_servers::postgres::postgres().expect("a PostgreSQL server");
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let config = PostgresConfig::new(server.url()).with_pool_size(CONNECTIONS as u32).with_reap_interval(None);
    let store = Arc::new(runtime.block_on(async {
        let store = PostgresStore::connect(config).await.unwrap();
        store.migrate().await.unwrap();
        store
    }));

    let rounds: usize = std::env::var("STATEKIT_BENCH_ROUNDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3).max(1);
    println!(
        "{CONNECTIONS} connections, {rounds} alternating rounds of {seconds} s per side, medians; server {}",
        state_api::redact_url(server.url())
    );
    println!(
        "{:<42} {:>8} {:>9} {:>9} {:>9} | {:>11} {:>9} | {:>6}",
        "operation (statekit runtime)", "ops/s", "p50", "p99", "mean", "pgbench tps", "mean", "ratio"
    );
    for workload in [Workload::CheckAndSet, Workload::Get, Workload::CompareAndSwap] {
        runtime.block_on(prepare(&store, workload, "store"));
        runtime.block_on(prepare(&store, workload, "pgbench"));
        // Warm the connections and their statement caches.
        runtime.block_on(run_store(&store, workload, Duration::from_millis(500)));
        let (mut multi, mut split, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..rounds {
            runtime.block_on(reset(&store, workload, "store"));
            multi.push(runtime.block_on(run_store(&store, workload, length)));
            runtime.block_on(reset(&store, workload, "pgbench"));
            theirs.push(run_pgbench(&pgbench, server.url(), workload, length));
            runtime.block_on(reset(&store, workload, "store"));
            split.push(run_store_split(server.url(), workload, length));
        }
        let theirs = median(theirs, |m| m.tps);
        for (runtime_name, ours) in [("multi-thread, 2 workers", multi), ("2 x current-thread", split)] {
            let ours = median(ours, |m| m.ops_per_sec);
            println!(
                "{:<42} {:>8.0} {:>9.2?} {:>9.2?} {:>9.2?} | {:>11.0} {:>9.2?} | {:>5.2}x",
                format!("{} ({runtime_name})", workload.name()),
                ours.ops_per_sec,
                ours.p50,
                ours.p99,
                ours.mean,
                theirs.tps,
                theirs.latency,
                ours.ops_per_sec / theirs.tps
            );
        }
    }
}

/// The middle measurement by `key`.
fn median<T>(mut runs: Vec<T>, key: impl Fn(&T) -> f64) -> T {
    runs.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = runs.len() / 2;
    runs.swap_remove(middle)
}
