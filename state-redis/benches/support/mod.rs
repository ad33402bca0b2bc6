//! What the Redis benchmarks share: a timed run of concurrent tasks, and
//! `redis-benchmark`'s rate.

#![allow(dead_code)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Concurrent tasks on the statekit side, clients on redis-benchmark's.
pub const TASKS: usize = 64;

/// Per-operation results of one statekit run.
pub struct Measured {
    pub ops_per_sec: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Runs `op(task, iteration)` from `TASKS` tasks for `duration`.
pub async fn measure<F, Fut>(duration: Duration, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    measure_tasks(TASKS, duration, op).await
}

/// Runs `op(task, iteration)` from `tasks` tasks for `duration`.
pub async fn measure_tasks<F, Fut>(tasks: usize, duration: Duration, op: F) -> Measured
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let op = Arc::new(op);
    let started = Instant::now();
    let until = started + duration;
    let tasks: Vec<_> = (0..tasks)
        .map(|task| {
            let op = Arc::clone(&op);
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(1 << 16);
                let mut n = 0u64;
                while Instant::now() < until {
                    let t = Instant::now();
                    op(task, n).await;
                    latencies.push(t.elapsed());
                    n += 1;
                }
                latencies
            })
        })
        .collect();
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let elapsed = started.elapsed();
    all.sort_unstable();
    let at = |q: f64| all.get(((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))).copied();
    Measured {
        ops_per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50).unwrap_or_default(),
        p99: at(0.99).unwrap_or_default(),
    }
}

/// Runs `redis-benchmark -c 64 -q -r 100000000` on `port` (with
/// `--cluster` for a cluster seed) with `args`, and returns each test's
/// requests/s, in the order printed.
pub fn redis_benchmark_rates(
    binary: &std::path::Path,
    port: u16,
    requests: u64,
    cluster: bool,
    args: &[&str],
) -> Vec<(String, f64)> {
    let output = Command::new(binary)
        .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-c", &TASKS.to_string(), "-n", &requests.to_string()])
        .args(["-r", "100000000", "-q"])
        .args(cluster.then_some("--cluster"))
        .args(args)
        .output()
        .expect("redis-benchmark runs");
    let text = String::from_utf8_lossy(&output.stdout);
    // "<command>: 123456.79 requests per second, p50=0.215 msec"; progress
    // lines end in carriage returns.
    let rates: Vec<(String, f64)> = text
        .split(['\r', '\n'])
        .filter(|line| line.contains("requests per second"))
        .filter_map(|line| {
            let (name, rest) = line.split_once(": ")?;
            Some((name.trim().to_owned(), rest.split_whitespace().next()?.parse().ok()?))
        })
        .collect();
    assert!(!rates.is_empty(), "redis-benchmark printed no rate: {text} {}", String::from_utf8_lossy(&output.stderr));
    rates
}

/// The rate of one `redis-benchmark` run of one command (`args`).
pub fn redis_benchmark(binary: &std::path::Path, port: u16, requests: u64, cluster: bool, args: &[&str]) -> f64 {
    redis_benchmark_rates(binary, port, requests, cluster, args).last().map(|(_, rate)| *rate).unwrap_or_default()
}
