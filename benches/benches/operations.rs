//! `cargo bench -p statekit-benches`: latency of each contract operation on
//! every backend that can be provisioned here (memory always; Redis,
//! PostgreSQL and DynamoDB Local when their binaries are installed — see
//! the README — or named by `STATEKIT_*_URL`). One task, one operation at a
//! time: the cost of a single call. Throughput under concurrency is
//! `statekit bench`'s job.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use state_api::{Backend, Condition, Key};

fn bench_backend(c: &mut Criterion, runtime: &tokio::runtime::Runtime, name: &str, backend: &Backend) {
    let mut group = c.benchmark_group(name);
    group.measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1)).sample_size(30);
    let space = format!("crit-{name}");
    let key = Key::new(&space, "k").unwrap();
    let counter = Key::new(&space, "counter").unwrap();
    runtime.block_on(async {
        backend.store.set(&key, "value".into(), None).await.unwrap();
        for n in 0..100 {
            backend.store.set(&Key::new(&space, &format!("scan-{n:03}")).unwrap(), "v".into(), None).await.unwrap();
        }
    });
    let store = backend.store.as_ref();
    group.bench_function("get", |b| b.to_async(runtime).iter(|| async { store.get(&key).await.unwrap() }));
    group.bench_function("set", |b| {
        b.to_async(runtime).iter(|| async { store.set(&key, "value".into(), None).await.unwrap() })
    });
    let mut n = 0u64;
    group.bench_function("check_and_set", |b| {
        b.to_async(runtime).iter(|| {
            n += 1;
            let fresh = Key::new(&space, &format!("dedup-{n}")).unwrap();
            async move { assert!(store.check_and_set(&fresh, "seen".into(), None).await.unwrap()) }
        })
    });
    group.bench_function("compare_and_swap", |b| {
        b.to_async(runtime).iter(|| async {
            let (_, version) = store.get_versioned(&key).await.unwrap().unwrap();
            store.compare_and_swap(&key, version, "next".into(), None).await.unwrap()
        })
    });
    group.bench_function("increment", |b| {
        b.to_async(runtime).iter(|| async { store.increment(&counter, 1, None).await.unwrap() })
    });
    group.bench_function("scan_page_100", |b| {
        b.to_async(runtime).iter(|| async { store.scan(&space, "scan-", None, 100).await.unwrap() })
    });
    let locks = backend.locks.as_ref();
    let lock = format!("crit-{name}-lock");
    group.bench_function("lock_acquire_release", |b| {
        b.to_async(runtime).iter(|| async {
            let lease = locks.try_acquire(&lock, Duration::from_secs(10)).await.unwrap().unwrap();
            locks.release(&lease).await.unwrap();
        })
    });
    if backend.capabilities().features.fenced_writes {
        // The same writes fenced by a held lease: the price of the check.
        let lease = runtime.block_on(locks.try_acquire(&format!("{lock}-fence"), Duration::from_secs(600))).unwrap();
        let fence = lease.unwrap().fence();
        group.bench_function("set_fenced", |b| {
            b.to_async(runtime).iter(|| async {
                store.put_fenced(&key, "value".into(), Condition::Always, None, &fence).await.unwrap()
            })
        });
        group.bench_function("increment_fenced", |b| {
            b.to_async(runtime).iter(|| async { store.increment_fenced(&counter, 1, None, &fence).await.unwrap() })
        });
    }
    group.finish();
}

fn operations(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (ready, skipped) = runtime.block_on(statekit_benches::provision_all());
    for (name, reason) in &skipped {
        eprintln!("skipped {name}: {reason}");
    }
    for provisioned in &ready {
        bench_backend(c, &runtime, provisioned.name, &provisioned.backend);
    }
}

criterion_group!(benches, operations);
criterion_main!(benches);
