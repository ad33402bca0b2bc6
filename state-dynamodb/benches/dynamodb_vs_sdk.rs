//! statekit's DynamoDB backend against a bare `aws-sdk-dynamodb` loop that
//! sends the same requests (same item shape, conditions and projections)
//! through the same SDK client, against the same DynamoDB Local, in the
//! same run: the ratio is the cost of the abstraction.
//!
//! `cargo bench -p state-dynamodb --bench dynamodb_vs_sdk`
//!
//! Operations: `check_and_set` on fresh keys (a conditional `PutItem`),
//! `get` of existing keys (a consistent `GetItem`), and `compare_and_swap`
//! of each task's own key (a version-conditioned `PutItem`), at 1, 8 and 32
//! concurrent tasks. The two sides alternate in short rounds so that the
//! JVM's warm-up and any drift hit both alike. Every loop is bounded in
//! time and talks only to 127.0.0.1 (or `STATEKIT_DYNAMODB_URL`).
//!
//! `STATEKIT_BENCH_SECONDS` sets the measured time per side and cell
//! (default 3).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/local/mod.rs"]
#[allow(dead_code)]
mod local;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use bytes::Bytes;
use state_api::{Key, PutOutcome, StateStore, Version};
use state_dynamodb::DynamoStore;

const TASK_COUNTS: [usize; 3] = [1, 8, 32];
const MAX_TASKS: usize = 32;
const ROUNDS: u32 = 8;
const VALUE_LEN: usize = 100;
const GET_KEYS: usize = 1000;

/// What statekit stores for a value that never expires (see the crate's
/// `item` module): the bare loop writes the very same item.
const NEVER_MS: u64 = 253_402_300_799_999;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Operation {
    CheckAndSet,
    Get,
    CompareAndSwap,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Operation::CheckAndSet => "check_and_set",
            Operation::Get => "get",
            Operation::CompareAndSwap => "compare_and_swap",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Statekit,
    Sdk,
}

struct Bench {
    store: DynamoStore,
    sdk: Client,
    table: String,
    value: Bytes,
    next_key: AtomicU64,
    /// The current version of each side's and task's compare_and_swap key.
    cas_versions: [Vec<AtomicU64>; 2],
}

#[derive(Default)]
struct Sample {
    ops: u64,
    busy: Duration,
    latencies_us: Vec<u32>,
}

impl Sample {
    fn merge(&mut self, other: Sample) {
        self.ops += other.ops;
        self.latencies_us.extend(other.latencies_us);
    }

    fn ops_per_second(&self) -> f64 {
        self.ops as f64 / self.busy.as_secs_f64().max(1e-9)
    }

    fn percentile(&mut self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return 0.0;
        }
        self.latencies_us.sort_unstable();
        let index = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[index]) / 1000.0
    }
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

fn s(text: &str) -> AttributeValue {
    AttributeValue::S(text.to_owned())
}

fn names(pairs: &[&str]) -> HashMap<String, String> {
    pairs.iter().map(|name| (format!("#{name}"), (*name).to_owned())).collect()
}

impl Bench {
    fn item(&self, space: &str, id: &str, version: u64) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("space".to_owned(), s(space)),
            ("id".to_owned(), s(id)),
            ("v".to_owned(), AttributeValue::B(Blob::new(self.value.to_vec()))),
            ("ver".to_owned(), n(version)),
            ("exp".to_owned(), n(NEVER_MS)),
            ("ttl".to_owned(), n(NEVER_MS / 1000)),
        ])
    }

    /// `check_and_set` as one bare request.
    async fn sdk_check_and_set(&self, id: &str) -> bool {
        let now = now_ms();
        let result = self
            .sdk
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item("cs", id, 1)))
            .condition_expression("attribute_not_exists(#ver) OR #exp <= :now")
            .set_expression_attribute_names(Some(names(&["ver", "exp"])))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        result.is_ok()
    }

    async fn sdk_get(&self, id: &str) -> bool {
        let output = self
            .sdk
            .get_item()
            .table_name(&self.table)
            .key("space", s("get"))
            .key("id", s(id))
            .consistent_read(true)
            .projection_expression("#id, #v, #n, #ver, #exp")
            .set_expression_attribute_names(Some(names(&["id", "v", "n", "ver", "exp"])))
            .send()
            .await
            .unwrap();
        let now = now_ms();
        output.item.is_some_and(
            |item| matches!(item.get("exp"), Some(AttributeValue::N(e)) if e.parse::<u64>().unwrap() > now),
        )
    }

    async fn sdk_compare_and_swap(&self, id: &str, expected: u64) -> bool {
        let now = now_ms();
        let result = self
            .sdk
            .put_item()
            .table_name(&self.table)
            .set_item(Some(self.item("cas", id, expected + 1)))
            .condition_expression("#ver = :expected AND #exp > :now")
            .set_expression_attribute_names(Some(names(&["ver", "exp"])))
            .expression_attribute_values(":expected", n(expected))
            .expression_attribute_values(":now", n(now))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        result.is_ok()
    }
}

/// One task's loop until `deadline`.
async fn run_task(bench: Arc<Bench>, operation: Operation, side: Side, task: usize, deadline: Instant) -> Sample {
    let mut sample = Sample::default();
    // compare_and_swap: each task swaps its own key, so every swap wins.
    let cas_id = cas_id(side, task);
    let cas_key = Key::new("cas", &cas_id).unwrap();
    let cas_version = &bench.cas_versions[side as usize][task];
    let mut version = cas_version.load(Ordering::SeqCst);
    while Instant::now() < deadline {
        let started = Instant::now();
        let ok = match (operation, side) {
            (Operation::CheckAndSet, side) => {
                let id = format!("k{}", bench.next_key.fetch_add(1, Ordering::Relaxed));
                match side {
                    Side::Statekit => bench
                        .store
                        .check_and_set(&Key::new("cs", &id).unwrap(), bench.value.clone(), None)
                        .await
                        .unwrap(),
                    Side::Sdk => bench.sdk_check_and_set(&id).await,
                }
            }
            (Operation::Get, side) => {
                let id = format!("g{}", fastrand::usize(..GET_KEYS));
                match side {
                    Side::Statekit => bench.store.get(&Key::new("get", &id).unwrap()).await.unwrap().is_some(),
                    Side::Sdk => bench.sdk_get(&id).await,
                }
            }
            (Operation::CompareAndSwap, Side::Statekit) => {
                let outcome =
                    bench.store.compare_and_swap(&cas_key, Version(version), bench.value.clone(), None).await.unwrap();
                matches!(outcome, PutOutcome::Written(_))
            }
            (Operation::CompareAndSwap, Side::Sdk) => bench.sdk_compare_and_swap(&cas_id, version).await,
        };
        assert!(ok, "{operation:?} on {side:?} did not succeed");
        if operation == Operation::CompareAndSwap {
            version += 1;
        }
        sample.latencies_us.push(u32::try_from(started.elapsed().as_micros()).unwrap_or(u32::MAX));
        sample.ops += 1;
    }
    if operation == Operation::CompareAndSwap {
        cas_version.store(version, Ordering::SeqCst);
    }
    sample
}

fn cas_id(side: Side, task: usize) -> String {
    format!("{side:?}-{task}")
}

async fn measure(bench: &Arc<Bench>, operation: Operation, side: Side, tasks: usize, duration: Duration) -> Sample {
    let started = Instant::now();
    let deadline = started + duration;
    let handles: Vec<_> =
        (0..tasks).map(|task| tokio::spawn(run_task(Arc::clone(bench), operation, side, task, deadline))).collect();
    let mut total = Sample::default();
    for handle in handles {
        total.merge(handle.await.unwrap());
    }
    total.busy = started.elapsed();
    total
}

fn main() {
    let seconds: f64 = std::env::var("STATEKIT_BENCH_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3.0);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let server = test_servers::dynamodb::dynamodb().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let table = local::unique_table("bench");
        let store = DynamoStore::open(local::config(server.url(), &table)).await.unwrap();
        store.migrate().await.unwrap();
        let sdk = store.sdk_client().clone();
        let bench = Arc::new(Bench {
            store,
            sdk,
            table,
            value: Bytes::from(vec![b'x'; VALUE_LEN]),
            next_key: AtomicU64::new(0),
            cas_versions: [Side::Statekit, Side::Sdk].map(|_| (0..MAX_TASKS).map(|_| AtomicU64::new(0)).collect()),
        });
        for i in 0..GET_KEYS {
            bench.store.set(&Key::new("get", &format!("g{i}")).unwrap(), bench.value.clone(), None).await.unwrap();
        }
        for side in [Side::Statekit, Side::Sdk] {
            for task in 0..MAX_TASKS {
                let key = Key::new("cas", &cas_id(side, task)).unwrap();
                let version = bench.store.set(&key, bench.value.clone(), None).await.unwrap();
                bench.cas_versions[side as usize][task].store(version.0, Ordering::SeqCst);
            }
        }
        // Let the JVM compile its hot paths before anything is measured.
        for operation in [Operation::CheckAndSet, Operation::Get, Operation::CompareAndSwap] {
            for side in [Side::Sdk, Side::Statekit] {
                measure(&bench, operation, side, 8, Duration::from_secs_f64(seconds / 2.0)).await;
            }
        }
        println!(
            "DynamoDB Local at {}; {ROUNDS} alternating rounds, {seconds} s per side and cell, {VALUE_LEN}-byte values\n",
            server.url()
        );
        println!(
            "{:<17} {:>5} | {:>14} {:>8} {:>8} | {:>14} {:>8} {:>8} | {:>6}",
            "operation", "tasks", "statekit ops/s", "p50 ms", "p99 ms", "bare SDK ops/s", "p50 ms", "p99 ms", "ratio"
        );
        for operation in [Operation::CheckAndSet, Operation::Get, Operation::CompareAndSwap] {
            for tasks in TASK_COUNTS {
                let mut statekit = Sample::default();
                let mut sdk = Sample::default();
                let round = Duration::from_secs_f64(seconds / f64::from(ROUNDS));
                for _ in 0..ROUNDS {
                    let s = measure(&bench, operation, Side::Sdk, tasks, round).await;
                    sdk.busy += s.busy;
                    sdk.merge(s);
                    let s = measure(&bench, operation, Side::Statekit, tasks, round).await;
                    statekit.busy += s.busy;
                    statekit.merge(s);
                }
                let ratio = statekit.ops_per_second() / sdk.ops_per_second();
                println!(
                    "{:<17} {:>5} | {:>14.0} {:>8.2} {:>8.2} | {:>14.0} {:>8.2} {:>8.2} | {:>5.2}x",
                    operation.name(),
                    tasks,
                    statekit.ops_per_second(),
                    statekit.percentile(0.5),
                    statekit.percentile(0.99),
                    sdk.ops_per_second(),
                    sdk.percentile(0.5),
                    sdk.percentile(0.99),
                    ratio
                );
            }
        }
    });
    drop(server);
}
