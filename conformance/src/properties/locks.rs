//! Properties 5, 6 and 7: locks.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use state_api::{FencingToken, Key, Lease, LockService, StateError, StateStore};
use tokio::time::{Instant, sleep, sleep_until};

use crate::ensure;
use crate::findings::Findings;
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
/// non-atomic read-modify-write under the lock ends exact. Overlaps, token
/// order and the counter are three separate checks, each reported: wrong
/// tokens must not hide missing exclusion.
///
/// Half the clients wait with `acquire`; the other half poll with
/// `try_acquire` every millisecond. A client's waiters take turns before
/// they reach the server (`fair_waiting`), so only the pollers keep asking
/// the server for the lock while it is held: exclusion is the server's to
/// keep, under constant attempts.
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
                    let lease = if client % 2 == 0 {
                        locks.acquire(&name, Duration::from_secs(10), Duration::from_secs(60)).await?
                    } else {
                        poll_for(locks.as_ref(), &name, Duration::from_secs(10), Duration::from_secs(60)).await?
                    };
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
    let mut findings = Findings::new();
    let mut tenures = Vec::new();
    for (client, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(done)) => tenures.extend(done),
            Ok(Err(Failure(failure))) => findings.fail(failure),
            Err(died) => findings.fail(format!("client {client} died: {died}")),
        }
    }
    tenures.sort_by_key(|t| t.start);
    let overlaps: Vec<String> = tenures
        .windows(2)
        .filter(|pair| pair[0].end > pair[1].start)
        .map(|pair| {
            format!(
                "client {} held the lock from {:?} to {:?} and client {} from {:?}",
                pair[0].client, pair[0].start, pair[0].end, pair[1].client, pair[1].start
            )
        })
        .collect();
    findings
        .check(overlaps.is_empty(), || format!("{} times two holders at once, first: {}", overlaps.len(), overlaps[0]));
    if cx.capabilities.features.fencing_tokens {
        let disorder = tenures.windows(2).find(|pair| pair[0].token >= pair[1].token);
        findings.check(disorder.is_none(), || {
            format!("fencing tokens out of order: {:?} then {:?}", disorder.map(|p| p[0]), disorder.map(|p| p[1]))
        });
    }
    let total = clients * rounds;
    let stored = cx.backend.store.get(&counter).await?.map(|e| e.value);
    findings.check(stored == Some(Bytes::from(total.to_string())), || {
        format!("the lock-protected counter ended at {stored:?}, expected {total}: updates overlapped")
    });
    findings.outcome()
}

/// Takes `name` by calling `try_acquire` every millisecond until it
/// succeeds, or fails after `timeout`.
async fn poll_for(locks: &dyn LockService, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease, Failure> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(lease) = locks.try_acquire(name, ttl).await? {
            return Ok(lease);
        }
        if Instant::now() >= deadline {
            return Err(Failure(format!("try_acquire did not get {name:?} in {timeout:?} of polling")));
        }
        sleep(Duration::from_millis(1)).await;
    }
}

/// The TTL for leases meant to expire during a property: long against the
/// clock tolerance so "not before" and "after" are both observable.
pub(crate) fn short_lease(cx: &Context) -> Duration {
    (cx.clock_tolerance() * 3).max(Duration::from_millis(300))
}

/// Property 6: fencing tokens strictly increase across every acquisition:
/// after releases, after abandoned leases expire, and among contenders.
pub async fn fencing_tokens(cx: &Context) -> Outcome {
    let locks = cx.backend.locks.as_ref();
    let name = cx.lock_name("fence");
    let ttl = short_lease(cx);
    let rounds = cx.scale.of(4).min(12);
    let mut findings = Findings::new();
    let mut tokens: Vec<FencingToken> = Vec::new();
    for round in 0..rounds {
        let lease = locks.acquire(&name, ttl, ttl * 4 + Duration::from_secs(5)).await?;
        tokens.push(lease.token());
        if round % 2 == 0 {
            locks.release(&lease).await?;
        } // else: abandoned, so the next acquisition is a takeover at expiry.
    }
    findings.check(tokens.windows(2).all(|w| w[0] < w[1]), || {
        format!("tokens did not strictly increase across releases and takeovers: {tokens:?}")
    });
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
        findings.check(won.len() == 1, || format!("round {round}: {} contenders acquired one free lock", won.len()));
        if let Some(token) = won.iter().map(Lease::token).max() {
            findings.check(last.is_none_or(|l| l < token), || format!("round {round}: token {token} after {last:?}"));
            last = Some(token);
        }
        for lease in &won {
            // With several winners all but one release may rightly fail.
            let _ = locks.release(lease).await;
        }
    }
    findings.outcome()
}

/// Property 7: an abandoned lease stays held until its TTL (within the
/// clock tolerance) and is free after it; the stale holder's extend and
/// release then fail with `LockLost` and leave the new holder's lease
/// alone. Each of these is its own check: a wrong takeover token does not
/// hide a stale release that frees the new holder.
pub async fn lease_expiry(cx: &Context) -> Outcome {
    let locks = cx.backend.locks.as_ref();
    let name = cx.lock_name("expiry");
    let ttl = short_lease(cx);
    let tolerance = cx.clock_tolerance();
    let mut findings = Findings::new();
    let requested = Instant::now();
    let mut stale = locks.try_acquire(&name, ttl).await?.ok_or_else(|| Failure("a fresh lock was not free".into()))?;
    let acquired = Instant::now();
    let held = locks.is_held(&stale).await?;
    if Instant::now() < requested + ttl - tolerance {
        findings.check(held, || "a just-acquired lease is not held".into());
    }

    // Before the TTL (minus tolerance) nobody else may take it.
    sleep_until(requested + ttl - tolerance).await;
    let early = locks.try_acquire(&name, ttl).await?;
    // Only a call that *returned* well before the deadline proves anything:
    // a call delayed past it may rightly find the lock free.
    if Instant::now() < requested + ttl - tolerance / 2 {
        findings.check(early.is_none(), || "the lock was free before its lease's TTL".into());
    }
    if let Some(lease) = early {
        // Reported above, or too late to tell (a legitimate takeover):
        // hand the lock back and go on with the other checks.
        locks.release(&lease).await?;
    }

    // After it, a contender takes over.
    sleep_until(acquired + ttl + tolerance).await;
    let current = locks.try_acquire(&name, Duration::from_secs(30)).await?;
    let current = current.ok_or_else(|| Failure(format!("the lock was still held {tolerance:?} after its TTL")))?;
    if cx.capabilities.features.fencing_tokens {
        findings.check(current.token() > stale.token(), || {
            format!("takeover token {} not above the abandoned lease's {}", current.token(), stale.token())
        });
    }

    let stale_held = locks.is_held(&stale).await?;
    findings.check(!stale_held, || "the stale lease still reports held".into());
    let extended = locks.extend(&mut stale, Duration::from_secs(60)).await;
    findings
        .check(matches!(extended, Err(StateError::LockLost { .. })), || format!("stale extend returned {extended:?}"));
    let released = locks.release(&stale).await;
    findings
        .check(matches!(released, Err(StateError::LockLost { .. })), || format!("stale release returned {released:?}"));
    let current_held = locks.is_held(&current).await?;
    findings.check(current_held, || "the stale holder's calls disturbed the new lease: it is no longer held".into());
    let third = locks.try_acquire(&name, ttl).await?;
    findings.check(third.is_none(), || {
        "after the stale holder's calls the lock was free while the new lease was valid".into()
    });
    if let Some(lease) = third {
        locks.release(&lease).await?;
    } else {
        let released = locks.release(&current).await;
        findings.check(released.is_ok(), || format!("the new holder's release returned {released:?}"));
        let again = locks.try_acquire(&name, ttl).await?;
        findings.check(again.is_some(), || "the lock was not free after its holder released it".into());
        if let Some(lease) = again {
            locks.release(&lease).await?;
        }
    }
    findings.absorb(lost_without_takeover(cx).await?);
    findings.outcome()
}

/// A lease past its deadline is lost even when nobody took the lock since:
/// it is not held, and `extend` and `release` on it answer `LockLost`, so
/// a holder that was paused learns it.
async fn lost_without_takeover(cx: &Context) -> Result<Findings, Failure> {
    let locks = cx.backend.locks.as_ref();
    let name = cx.lock_name("expiry-alone");
    let ttl = short_lease(cx);
    let mut findings = Findings::new();
    let mut lease = locks.try_acquire(&name, ttl).await?.ok_or_else(|| Failure("a fresh lock was not free".into()))?;
    sleep_until(Instant::now() + ttl + cx.clock_tolerance()).await;
    let held = locks.is_held(&lease).await?;
    findings.check(!held, || "a lease past its TTL, with nobody taking the lock since, still reports held".into());
    let extended = locks.extend(&mut lease, Duration::from_secs(60)).await;
    findings.check(matches!(extended, Err(StateError::LockLost { .. })), || {
        format!("extend of a lease past its TTL (nobody took the lock since) returned {extended:?}, not LockLost")
    });
    let released = locks.release(&lease).await;
    findings.check(matches!(released, Err(StateError::LockLost { .. })), || {
        format!("release of a lease past its TTL (nobody took the lock since) returned {released:?}, not LockLost")
    });
    // A released lease is not held, whatever other locks are held: two
    // fresh names may well carry the same token.
    let (first, second) = (cx.lock_name("expiry-first"), cx.lock_name("expiry-second"));
    let first = locks.try_acquire(&first, Duration::from_secs(30)).await?;
    let second = locks.try_acquire(&second, Duration::from_secs(30)).await?;
    if let (Some(first), Some(second)) = (first, second) {
        locks.release(&first).await?;
        let held = locks.is_held(&first).await?;
        findings.check(!held, || {
            format!(
                "a released lease (token {:?}) reports held while another lock's lease (token {:?}) is",
                first.token(),
                second.token()
            )
        });
        locks.release(&second).await?;
    } else {
        findings.fail("two fresh locks were not both free");
    }
    Ok(findings)
}
