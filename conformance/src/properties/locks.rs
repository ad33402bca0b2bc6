//! Properties 5, 6 and 7: locks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use state_api::{FencingToken, Key, Lease, StateError, StateStore};
use tokio::time::{Instant, sleep, sleep_until};

use crate::ensure;
use crate::kit::{Context, Failure, Outcome};

/// One holder's tenure: from the moment `acquire` returned until the moment
/// `release` was called, with the token it was given.
#[derive(Debug, Clone, Copy)]
struct Tenure {
    start: Instant,
    end: Instant,
    token: FencingToken,
    client: u64,
}

/// A lock-protected, deliberately non-atomic increment of a counter kept in
/// the store: only mutual exclusion keeps it exact.
async fn protected_increment(store: &dyn StateStore, key: &Key) -> Result<(), Failure> {
    let current = match store.get(key).await? {
        Some(e) => std::str::from_utf8(&e.value).ok().and_then(|t| t.parse::<u64>().ok()).unwrap_or(u64::MAX),
        None => 0,
    };
    // Widen the race window a little so overlapping holders collide.
    tokio::task::yield_now().await;
    sleep(Duration::from_millis(1)).await;
    store.set(key, Bytes::from(current.saturating_add(1).to_string()), None).await?;
    Ok(())
}

/// Property 5: valid leases never overlap, and a counter updated with a
/// non-atomic read-modify-write under the lock ends exact.
pub async fn mutual_exclusion(cx: &Context) -> Outcome {
    let clients = 4u64;
    let rounds = cx.scale.of(8);
    let name = cx.lock_name("mutex");
    let counter = Key::new(&cx.space("mutex"), "protected")?;
    let tasks: Vec<_> = (0..clients)
        .map(|client| {
            let (locks, store) = (Arc::clone(&cx.backend.locks), Arc::clone(&cx.backend.store));
            let (name, counter) = (name.clone(), counter.clone());
            tokio::spawn(async move {
                let mut tenures = Vec::new();
                for _ in 0..rounds {
                    let lease = locks.acquire(&name, Duration::from_secs(10), Duration::from_secs(60)).await?;
                    let start = Instant::now();
                    protected_increment(store.as_ref(), &counter).await?;
                    let end = Instant::now();
                    ensure!(end < lease.valid_until(), "client {client}: lease ran out during a 1 ms critical section");
                    locks.release(&lease).await?;
                    tenures.push(Tenure { start, end, token: lease.token(), client });
                }
                Ok::<_, Failure>(tenures)
            })
        })
        .collect();
    let mut tenures = Vec::new();
    for task in tasks {
        tenures.extend(task.await.map_err(|e| Failure(format!("a client died: {e}")))??);
    }
    tenures.sort_by_key(|t| t.start);
    for pair in tenures.windows(2) {
        ensure!(
            pair[0].end <= pair[1].start,
            "two holders at once: client {} held the lock from {:?} to {:?} and client {} from {:?}",
            pair[0].client,
            pair[0].start,
            pair[0].end,
            pair[1].client,
            pair[1].start
        );
        ensure!(pair[0].token < pair[1].token, "fencing tokens out of order: {:?} then {:?}", pair[0], pair[1]);
    }
    let total = clients * rounds;
    let stored = cx.backend.store.get(&counter).await?.map(|e| e.value);
    ensure!(
        stored == Some(Bytes::from(total.to_string())),
        "the lock-protected counter ended at {stored:?}, expected {total}: updates overlapped"
    );
    Ok(total)
}

/// The TTL for leases meant to expire during a property: long against the
/// clock tolerance so "not before" and "after" are both observable.
fn short_lease(cx: &Context) -> Duration {
    (cx.clock_tolerance() * 3).max(Duration::from_millis(300))
}

/// Property 6: fencing tokens strictly increase across every acquisition:
/// after releases, after abandoned leases expire, and among contenders.
pub async fn fencing_tokens(cx: &Context) -> Outcome {
    let locks = cx.backend.locks.as_ref();
    let name = cx.lock_name("fence");
    let ttl = short_lease(cx);
    let rounds = cx.scale.of(4).min(12);
    let mut tokens: Vec<FencingToken> = Vec::new();
    for round in 0..rounds {
        let lease = locks.acquire(&name, ttl, ttl * 4 + Duration::from_secs(5)).await?;
        tokens.push(lease.token());
        if round % 2 == 0 {
            locks.release(&lease).await?;
        } // else: abandoned, so the next acquisition is a takeover at expiry.
    }
    ensure!(tokens.windows(2).all(|w| w[0] < w[1]), "tokens did not strictly increase: {tokens:?}");
    // Contenders racing for a free lock: every acquisition a new, larger token.
    let contended = cx.lock_name("fence-race");
    let mut last = None;
    for round in 0..cx.scale.of(10) {
        let attempts: Vec<_> = (0..4)
            .map(|_| {
                let (locks, name) = (Arc::clone(&cx.backend.locks), contended.clone());
                tokio::spawn(async move { locks.try_acquire(&name, Duration::from_secs(30)).await })
            })
            .collect();
        let mut won: Vec<Lease> = Vec::new();
        for attempt in attempts {
            if let Some(lease) = attempt.await.map_err(|e| Failure(format!("a contender died: {e}")))?? {
                won.push(lease);
            }
        }
        ensure!(won.len() == 1, "round {round}: {} contenders acquired one free lock", won.len());
        let token = won[0].token();
        ensure!(last.is_none_or(|l| l < token), "round {round}: token {token} after {last:?}");
        last = Some(token);
        locks.release(&won[0]).await?;
    }
    Ok(rounds + cx.scale.of(10))
}

/// Property 7: an abandoned lease stays held until its TTL (within the
/// clock tolerance) and is free after it; the stale holder's extend and
/// release then fail with `LockLost` and leave the new holder's lease alone.
pub async fn lease_expiry(cx: &Context) -> Outcome {
    let locks = cx.backend.locks.as_ref();
    let name = cx.lock_name("expiry");
    let ttl = short_lease(cx);
    let tolerance = cx.clock_tolerance();
    let requested = Instant::now();
    let mut stale = locks.try_acquire(&name, ttl).await?.ok_or_else(|| Failure("a fresh lock was not free".into()))?;
    let acquired = Instant::now();
    ensure!(locks.is_held(&stale).await?, "a just-acquired lease is not held");

    // Before the TTL (minus tolerance) nobody else may take it.
    sleep_until(requested + ttl - tolerance).await;
    let early = locks.try_acquire(&name, ttl).await?;
    // Only a call that *returned* well before the deadline proves anything:
    // a call delayed past it may rightly find the lock free.
    if Instant::now() < requested + ttl - tolerance / 2 {
        ensure!(early.is_none(), "the lock was free before its lease's TTL");
    } else if let Some(lease) = early {
        // Too late to tell: a legitimate takeover. Hand the lock back and
        // go on with the checks that do not depend on timing.
        locks.release(&lease).await?;
    }

    // After it, a contender takes over.
    sleep_until(acquired + ttl + tolerance).await;
    let current = locks.try_acquire(&name, Duration::from_secs(30)).await?;
    let current = current.ok_or_else(|| Failure(format!("the lock was still held {tolerance:?} after its TTL")))?;
    ensure!(current.token() > stale.token(), "takeover token {} not above {}", current.token(), stale.token());

    ensure!(!locks.is_held(&stale).await?, "the stale lease still reports held");
    let extended = locks.extend(&mut stale, Duration::from_secs(60)).await;
    ensure!(matches!(extended, Err(StateError::LockLost { .. })), "stale extend returned {extended:?}");
    let released = locks.release(&stale).await;
    ensure!(matches!(released, Err(StateError::LockLost { .. })), "stale release returned {released:?}");
    ensure!(locks.is_held(&current).await?, "the stale holder's calls disturbed the new lease");
    let third = locks.try_acquire(&name, ttl).await?;
    ensure!(third.is_none(), "after a stale release the lock was free while the new lease was valid");
    locks.release(&current).await?;
    let again = locks.try_acquire(&name, ttl).await?;
    ensure!(again.is_some(), "the lock was not free after its holder released it");
    if let Some(lease) = again {
        locks.release(&lease).await?;
    }
    Ok(1)
}
