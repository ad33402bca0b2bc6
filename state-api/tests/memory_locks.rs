//! Lock rules of the contract, pinned on the in-memory backend.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use state_api::{LockGuard, LockService, MemoryStore, StateError};
use tokio::time::{Instant, advance};

const SEC: Duration = Duration::from_secs(1);

fn locks() -> MemoryStore {
    MemoryStore::builder().sweep_interval(None).build()
}

#[tokio::test(start_paused = true)]
async fn a_held_lock_cannot_be_acquired_and_is_not_reentrant() {
    let l = locks();
    let lease = l.try_acquire("job", SEC).await.unwrap().unwrap();
    assert!(l.try_acquire("job", SEC).await.unwrap().is_none());
    assert!(l.is_held(&lease).await.unwrap());
    assert!(l.try_acquire("other-job", SEC).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn fencing_tokens_strictly_increase_across_release_and_takeover() {
    let l = locks();
    let mut tokens = Vec::new();
    for round in 0..6 {
        let lease = l.acquire("fenced", SEC, 10 * SEC).await.unwrap();
        tokens.push(lease.token());
        if round % 2 == 0 {
            l.release(&lease).await.unwrap();
        } else {
            advance(SEC).await; // abandoned: the next acquisition is a takeover
        }
    }
    assert!(tokens.windows(2).all(|w| w[0] < w[1]), "{tokens:?}");
}

#[tokio::test(start_paused = true)]
async fn a_lease_expires_at_its_ttl_and_not_before() {
    let l = locks();
    let lease = l.try_acquire("ttl", SEC).await.unwrap().unwrap();
    advance(SEC - Duration::from_millis(1)).await;
    assert!(l.try_acquire("ttl", SEC).await.unwrap().is_none());
    assert!(l.is_held(&lease).await.unwrap());
    advance(Duration::from_millis(1)).await;
    assert!(!l.is_held(&lease).await.unwrap());
    assert!(l.try_acquire("ttl", SEC).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn a_stale_holder_cannot_release_or_extend_the_new_holders_lease() {
    let l = locks();
    let mut stale = l.try_acquire("takeover", SEC).await.unwrap().unwrap();
    advance(SEC).await;
    let current = l.try_acquire("takeover", 10 * SEC).await.unwrap().unwrap();
    assert!(matches!(l.release(&stale).await, Err(StateError::LockLost { .. })));
    assert!(matches!(l.extend(&mut stale, 60 * SEC).await, Err(StateError::LockLost { .. })));
    assert!(l.is_held(&current).await.unwrap());
    advance(10 * SEC - Duration::from_millis(1)).await;
    assert!(l.is_held(&current).await.unwrap(), "the stale extend must not have shortened it");
    advance(Duration::from_millis(1)).await;
    assert!(!l.is_held(&current).await.unwrap(), "nor lengthened it");
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_lost_even_if_nobody_took_over() {
    let l = locks();
    let mut lease = l.try_acquire("lonely", SEC).await.unwrap().unwrap();
    advance(SEC).await;
    assert!(matches!(l.extend(&mut lease, SEC).await, Err(StateError::LockLost { .. })));
    assert!(matches!(l.release(&lease).await, Err(StateError::LockLost { .. })));
}

#[tokio::test(start_paused = true)]
async fn extend_moves_the_deadline() {
    let l = locks();
    let mut lease = l.try_acquire("long", SEC).await.unwrap().unwrap();
    advance(SEC / 2).await;
    l.extend(&mut lease, SEC).await.unwrap();
    advance(SEC * 3 / 4).await;
    assert!(l.is_held(&lease).await.unwrap());
    assert!(lease.valid_until() > Instant::now());
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_lost_and_the_lock_is_free() {
    let l = locks();
    let lease = l.try_acquire("r", SEC).await.unwrap().unwrap();
    l.release(&lease).await.unwrap();
    assert!(matches!(l.release(&lease).await, Err(StateError::LockLost { .. })));
    assert!(l.try_acquire("r", SEC).await.unwrap().is_some());
}

#[tokio::test(start_paused = true)]
async fn waiters_are_woken_by_release_not_by_polling() {
    let l = locks();
    let lease = l.try_acquire("handoff", 3600 * SEC).await.unwrap().unwrap();
    let waiter = {
        let l = l.clone();
        tokio::spawn(async move {
            let started = Instant::now();
            let lease = l.acquire("handoff", SEC, 7200 * SEC).await.unwrap();
            (lease, started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    l.release(&lease).await.unwrap();
    let (second, waited) = waiter.await.unwrap();
    assert!(second.token() > lease.token());
    // Woken at the release, not at the hour-long lease's expiry.
    assert_eq!(waited, Duration::from_millis(10));
}

#[tokio::test(start_paused = true)]
async fn a_waiter_takes_over_when_the_lease_expires() {
    let l = locks();
    l.try_acquire("abandoned", 5 * SEC).await.unwrap().unwrap();
    let started = Instant::now();
    l.acquire("abandoned", SEC, 60 * SEC).await.unwrap();
    assert_eq!(started.elapsed(), 5 * SEC);
}

#[tokio::test(start_paused = true)]
async fn acquire_times_out_with_a_typed_error() {
    let l = locks();
    l.try_acquire("busy", 60 * SEC).await.unwrap().unwrap();
    let err = l.acquire("busy", SEC, 2 * SEC).await.unwrap_err();
    assert!(matches!(err, StateError::Timeout { operation: "acquire", .. }), "{err:?}");
    assert!(err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn a_dropped_guard_releases_its_lease() {
    let l = locks();
    let service: Arc<dyn LockService> = Arc::new(l.clone());
    let lease = l.try_acquire("guarded", 60 * SEC).await.unwrap().unwrap();
    drop(LockGuard::new(Arc::clone(&service), lease));
    tokio::task::yield_now().await;
    assert!(l.try_acquire("guarded", SEC).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_protected_read_modify_write_loses_nothing() {
    let l = locks();
    let shared = Arc::new(parking_lot::Mutex::new(0u64));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (l, shared) = (l.clone(), Arc::clone(&shared));
            tokio::spawn(async move {
                for _ in 0..50 {
                    let lease = l.acquire("counter", 10 * SEC, 60 * SEC).await.unwrap();
                    // Non-atomic on purpose: only the lock makes it safe.
                    let read = *shared.lock();
                    tokio::task::yield_now().await;
                    *shared.lock() = read + 1;
                    l.release(&lease).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(*shared.lock(), 400);
}

#[tokio::test(start_paused = true)]
async fn an_unbounded_timeout_waits_instead_of_panicking() {
    let l = locks();
    let lease = l.acquire("forever", SEC, Duration::MAX).await.unwrap();
    l.release(&lease).await.unwrap();
}
