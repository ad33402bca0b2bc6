//! Throughput of the in-memory backend: `get` and `check_and_set` on one and
//! two threads. `cargo bench -p state-api --bench memory`; criterion reports
//! elements per second, one element being one operation.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use state_api::{Key, MemoryStore, StateStore};

const KEYS: usize = 10_000;

/// Runs `iters` operations split across `threads` OS threads, each driving
/// its share in a current-thread runtime, and returns the wall time.
fn run_threads(threads: usize, iters: u64, op: Arc<dyn Fn(usize, u64) + Send + Sync>) -> Duration {
    let per_thread = iters.div_ceil(threads as u64);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let op = Arc::clone(&op);
            scope.spawn(move || op(t, per_thread));
        }
    });
    start.elapsed()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap()
}

fn bench_get(c: &mut Criterion) {
    let store = MemoryStore::builder().sweep_interval(None).build();
    let keys: Arc<Vec<Key>> = Arc::new((0..KEYS).map(|i| Key::new("bench", &format!("key-{i}")).unwrap()).collect());
    runtime().block_on(async {
        for key in keys.iter() {
            store.set(key, "value".into(), None).await.unwrap();
        }
    });
    let mut group = c.benchmark_group("memory/get");
    group.throughput(Throughput::Elements(1));
    for threads in [1, 2] {
        let (store, keys) = (store.clone(), Arc::clone(&keys));
        group.bench_function(format!("{threads}-threads"), move |b| {
            let (store, keys) = (store.clone(), Arc::clone(&keys));
            b.iter_custom(move |iters| {
                let (store, keys) = (store.clone(), Arc::clone(&keys));
                run_threads(
                    threads,
                    iters,
                    Arc::new(move |t, n| {
                        runtime().block_on(async {
                            for i in 0..n as usize {
                                let key = &keys[(i * 7 + t * 5003) % KEYS];
                                assert!(store.get(key).await.unwrap().is_some());
                            }
                        })
                    }),
                )
            });
        });
    }
    group.finish();
}

fn bench_check_and_set(c: &mut Criterion) {
    let mut group = c.benchmark_group("memory/check_and_set");
    group.throughput(Throughput::Elements(1));
    for threads in [1, 2] {
        group.bench_function(format!("{threads}-threads"), move |b| {
            b.iter_custom(move |iters| {
                // A fresh store per sample: every call creates a new key, the
                // deduplication workload.
                let store = MemoryStore::builder().sweep_interval(None).build();
                run_threads(
                    threads,
                    iters,
                    Arc::new(move |t, n| {
                        let space = format!("dedup-{t}");
                        runtime().block_on(async {
                            for i in 0..n {
                                let key = Key::new(&space, &i.to_string()).unwrap();
                                assert!(store.check_and_set(&key, "seen".into(), None).await.unwrap());
                            }
                        })
                    }),
                )
            });
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench_get, bench_check_and_set
}
criterion_main!(benches);
