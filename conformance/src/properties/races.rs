//! Properties 3 and 4: races on one key.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use state_api::{Condition, Key, PutOutcome, StateStore};
use tokio::time::Instant;

use crate::ensure;
use crate::kit::{Context, Failure, Outcome};

async fn join_all<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Result<Vec<T>, Failure> {
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.map_err(|e| Failure(format!("a worker task died: {e}")))?);
    }
    Ok(results)
}

/// Property 3: of concurrent `check_and_set` calls on one absent key,
/// exactly one returns `true`, and the stored value is the winner's. The
/// keys are of two kinds, each raced as often: never written, and written
/// with a short TTL that has just passed — a store that treats an expired
/// entry as absent in one step and writes in another lets several
/// contenders win there. Every round runs; the failures of all are
/// reported.
pub async fn one_winner(cx: &Context) -> Outcome {
    let rounds = cx.scale.of(20);
    let space = cx.space("winner");
    let short_ttl = Duration::from_millis(50);
    // Expired keys are written first and waited out together, so the wait
    // costs one TTL however many rounds run. Nothing reads them before
    // their race: a read could make a store drop the expired entry, and
    // the race would be on a never-written key again.
    let mut expiring = Vec::new();
    for round in 0..rounds {
        let key = Key::new(&space, &format!("expired-{round}"))?;
        cx.backend.store.set(&key, Bytes::from_static(b"expiring"), Some(short_ttl)).await?;
        expiring.push(key);
    }
    let expired_at = Instant::now() + short_ttl + cx.clock_tolerance();
    let mut failures = Vec::new();
    for round in 0..rounds {
        let key = Key::new(&space, &format!("race-{round}"))?;
        if let Err(Failure(why)) = race(cx, &key).await {
            failures.push(format!("never-written key, round {round}: {why}"));
        }
    }
    tokio::time::sleep_until(expired_at).await;
    for (round, key) in expiring.iter().enumerate() {
        if let Err(Failure(why)) = race(cx, key).await {
            failures.push(format!("key expired {short_ttl:?} after its write, round {round}: {why}"));
        }
    }
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(rounds * 2)
}

/// Races contenders' `check_and_set` on `key`, which is absent: exactly one
/// wins, and its value is stored.
async fn race(cx: &Context, key: &Key) -> Result<(), Failure> {
    let contenders = 8;
    // A barrier lines the contenders up so their calls really overlap.
    let barrier = Arc::new(tokio::sync::Barrier::new(contenders));
    let tasks = (0..contenders)
        .map(|c| {
            let (store, key, barrier) = (Arc::clone(&cx.backend.store), key.clone(), Arc::clone(&barrier));
            tokio::spawn(async move {
                barrier.wait().await;
                store.check_and_set(&key, Bytes::from(format!("contender-{c}")), None).await
            })
        })
        .collect();
    let results = join_all(tasks).await?;
    let mut winners = Vec::new();
    for (c, result) in results.into_iter().enumerate() {
        if result? {
            winners.push(c);
        }
    }
    ensure!(winners.len() == 1, "{} contenders won check_and_set on one key: {winners:?}", winners.len());
    let stored = cx.backend.store.get(key).await?.map(|e| e.value);
    let expected = Bytes::from(format!("contender-{}", winners[0]));
    ensure!(stored.as_ref() == Some(&expected), "winner {} but stored {stored:?}", winners[0]);
    Ok(())
}

/// Read, add one, compare-and-swap; on rejection retry from the entry the
/// rejection carries, which the contract promises is current.
async fn cas_increment(store: &dyn StateStore, key: &Key) -> Result<(), Failure> {
    let mut current = store.get_versioned(key).await?;
    for _ in 0..10_000 {
        let outcome = match &current {
            None => store.put(key, Bytes::from_static(b"1"), Condition::IfAbsent, None).await?,
            Some((value, version)) => {
                let n: u64 = std::str::from_utf8(value)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| Failure(format!("the shared counter holds a non-number: {value:?}")))?;
                store.compare_and_swap(key, *version, Bytes::from((n + 1).to_string()), None).await?
            }
        };
        match outcome {
            PutOutcome::Written(_) => return Ok(()),
            PutOutcome::Rejected(entry) => current = entry.map(|e| (e.value, e.version)),
        }
    }
    Err(Failure("a read-then-CAS increment did not succeed in 10000 attempts".into()))
}

/// Property 4: workers doing read-then-`compare_and_swap` increments end
/// with the exact total, and so do atomic `increment`s.
pub async fn no_lost_update(cx: &Context) -> Outcome {
    let workers = 6u64;
    let per_worker = cx.scale.of(25);
    let space = cx.space("lost");
    let cas_key = Key::new(&space, "cas-counter")?;
    let atomic_key = Key::new(&space, "atomic-counter")?;
    let tasks = (0..workers)
        .map(|_| {
            let (store, cas_key, atomic_key) = (Arc::clone(&cx.backend.store), cas_key.clone(), atomic_key.clone());
            tokio::spawn(async move {
                for _ in 0..per_worker {
                    cas_increment(store.as_ref(), &cas_key).await?;
                    store.increment(&atomic_key, 1, None).await?;
                }
                Ok::<(), Failure>(())
            })
        })
        .collect();
    for result in join_all(tasks).await? {
        result?;
    }
    let total = workers * per_worker;
    let cas = cx.backend.store.get(&cas_key).await?.map(|e| e.value);
    ensure!(cas == Some(Bytes::from(total.to_string())), "read-then-CAS counter ended at {cas:?}, expected {total}");
    let atomic = cx.backend.store.get(&atomic_key).await?;
    let atomic = atomic.map(|e| (e.value, e.version.0));
    ensure!(
        atomic == Some((Bytes::from(total.to_string()), total)),
        "atomic counter ended at {atomic:?}, expected value and version {total}"
    );
    Ok(total)
}
