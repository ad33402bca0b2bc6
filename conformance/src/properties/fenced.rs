//! Fenced writes: a write that carries a lease's fence is performed only
//! while that lease holds its lock (checked by the store, atomically with
//! the write). The current holder's fenced `put`, `increment` and `delete`
//! succeed; after the lease expired, was released or was taken over, the
//! old holder's fenced writes answer `LockLost` and change nothing, even
//! while it does not know yet (a stalled holder); a fence with another
//! token or another lock's name is refused; and under concurrent takeovers
//! the fenced writes that succeed are ordered by their tokens: no stale
//! holder ever writes after a newer one.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use state_api::{Condition, DeleteCondition, Fence, FencingToken, Key, Lease, PutOutcome, StateError, Version};

use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// A refused fenced write: `LockLost` naming the fence's lock.
fn refused<T>(answer: &state_api::Result<T>, fence: &Fence) -> bool {
    matches!(answer, Err(StateError::LockLost { name }) if name == fence.lock())
}

/// Runs the property.
pub async fn run(cx: &Context) -> Outcome {
    let mut findings = Findings::new();
    findings.record("holder", holder_writes(cx).await);
    findings.record("stale holders", stale_holders(cx).await);
    findings.record("foreign fences", foreign_fences(cx).await);
    findings.record("takeovers", takeovers(cx).await);
    findings.record("writes at the end of a lease", edge_writes(cx).await);
    findings.outcome()
}

async fn acquire(cx: &Context, name: &str, ttl: Duration) -> Result<Lease, Failure> {
    cx.backend.locks.try_acquire(name, ttl).await?.ok_or_else(|| Failure(format!("the lock {name} was not free")))
}

/// The current holder's fenced writes all succeed, as their unfenced forms.
async fn holder_writes(cx: &Context) -> Result<(), Failure> {
    let store = cx.backend.store.as_ref();
    let space = cx.space("fenced-holder");
    let lease = acquire(cx, &cx.lock_name("fenced-holder"), Duration::from_secs(10)).await?;
    let fence = lease.fence();
    let key = Key::new(&space, "value")?;
    let mut failures = Vec::new();
    let put = store.put_fenced(&key, Bytes::from_static(b"one"), Condition::IfAbsent, None, &fence).await;
    if !matches!(put, Ok(PutOutcome::Written(Version(1)))) {
        failures.push(format!("the holder's fenced put(IfAbsent) answered {put:?}"));
    }
    let put = store.put_fenced(&key, Bytes::from_static(b"two"), Condition::IfVersion(Version(1)), None, &fence).await;
    if !matches!(put, Ok(PutOutcome::Written(Version(2)))) {
        failures.push(format!("the holder's fenced put(IfVersion(1)) answered {put:?}"));
    }
    let rejected = store.put_fenced(&key, Bytes::from_static(b"x"), Condition::IfAbsent, None, &fence).await;
    if !matches!(&rejected, Ok(PutOutcome::Rejected(Some(entry))) if entry.value.as_ref() == b"two") {
        failures.push(format!("the holder's fenced put(IfAbsent) of a present key answered {rejected:?}"));
    }
    let counter = Key::new(&space, "counter")?;
    let counted = store.increment_fenced(&counter, 5, Some(Duration::from_secs(60)), &fence).await;
    if !matches!(counted, Ok(c) if c.value == 5) {
        failures.push(format!("the holder's fenced increment answered {counted:?}"));
    }
    let deleted = store.delete_fenced(&key, DeleteCondition::Always, &fence).await;
    if !matches!(deleted, Ok(true)) {
        failures.push(format!("the holder's fenced delete answered {deleted:?}"));
    }
    if store.get(&key).await?.is_some() {
        failures.push("the holder's fenced delete left the entry".to_owned());
    }
    cx.backend.locks.release(&lease).await?;
    if failures.is_empty() { Ok(()) } else { Err(Failure(failures.join("; "))) }
}

/// Every write of a lease that expired (with or without a new holder) or
/// was released is refused, and changes nothing.
async fn stale_holders(cx: &Context) -> Result<(), Failure> {
    let store = cx.backend.store.as_ref();
    let locks = &cx.backend.locks;
    let space = cx.space("fenced-stale");
    let ttl = Duration::from_millis(200);
    let wait = ttl + cx.clock_tolerance() * 2;
    let key = Key::new(&space, "value")?;
    let counter = Key::new(&space, "counter")?;
    store.set(&key, Bytes::from_static(b"kept"), None).await?;
    store.increment(&counter, 1, None).await?;
    let mut failures = Vec::new();
    let mut check = |when: &str, answers: [(&str, bool); 3]| {
        for (operation, was_refused) in answers {
            if !was_refused {
                failures.push(format!("{operation} with the fence of a lease {when} was not refused with LockLost"));
            }
        }
    };

    // Expired, with no new holder: the stalled holder does not know yet.
    let name = cx.lock_name("fenced-expired");
    let expired = acquire(cx, &name, ttl).await?.fence();
    tokio::time::sleep(wait).await;
    let answers = stale_writes(cx, &key, &counter, &expired).await;
    check("that expired", answers);

    // Taken over by a new holder after it expired.
    let taker = acquire(cx, &name, Duration::from_secs(10)).await?;
    let answers = stale_writes(cx, &key, &counter, &expired).await;
    check("taken over after it expired", answers);
    locks.release(&taker).await?;

    // Released.
    let released = acquire(cx, &cx.lock_name("fenced-released"), Duration::from_secs(10)).await?;
    locks.release(&released).await?;
    let fence = released.fence();
    let answers = stale_writes(cx, &key, &counter, &fence).await;
    check("that was released", answers);

    let value = store.get(&key).await?.map(|e| e.value);
    if value.as_deref() != Some(&b"kept"[..]) {
        failures.push(format!("refused fenced writes changed the entry: {value:?}"));
    }
    let count = store.get(&counter).await?.map(|e| e.value);
    if count.as_deref() != Some(&b"1"[..]) {
        failures.push(format!("refused fenced increments changed the counter: {count:?}"));
    }
    if failures.is_empty() { Ok(()) } else { Err(Failure(failures.join("; "))) }
}

/// A fenced put, increment and delete with `fence`; whether each was
/// refused with `LockLost`.
async fn stale_writes(cx: &Context, key: &Key, counter: &Key, fence: &Fence) -> [(&'static str, bool); 3] {
    let store = cx.backend.store.as_ref();
    let put = store.put_fenced(key, Bytes::from_static(b"stale"), Condition::Always, None, fence).await;
    let increment = store.increment_fenced(counter, 1, None, fence).await;
    let delete = store.delete_fenced(key, DeleteCondition::Always, fence).await;
    [("put", refused(&put, fence)), ("increment", refused(&increment, fence)), ("delete", refused(&delete, fence))]
}

/// A fence with a token the holder was not issued, or with another lock's
/// name, is refused while the lock is held.
async fn foreign_fences(cx: &Context) -> Result<(), Failure> {
    let store = cx.backend.store.as_ref();
    let key = Key::new(&cx.space("fenced-foreign"), "value")?;
    let name = cx.lock_name("fenced-foreign");
    let lease = acquire(cx, &name, Duration::from_secs(10)).await?;
    let mut failures = Vec::new();
    let next = Fence::new(&name, FencingToken(lease.token().0 + 1));
    let previous = Fence::new(&name, FencingToken(lease.token().0.saturating_sub(1).max(1)));
    let other_lock = Fence::new(cx.lock_name("fenced-foreign-other"), lease.token());
    for (what, fence) in [("the next token", &next), ("another lock's name", &other_lock)]
        .into_iter()
        .chain((previous.token() != lease.token()).then_some(("an earlier token", &previous)))
    {
        let answer = store.put_fenced(&key, Bytes::from_static(b"foreign"), Condition::Always, None, fence).await;
        if !refused(&answer, fence) {
            failures.push(format!("a fenced put with {what} answered {answer:?} while the lock was held"));
        }
    }
    if store.get(&key).await?.is_some() {
        failures.push("a refused fenced put wrote the entry".to_owned());
    }
    let zero = store
        .put_fenced(&key, Bytes::from_static(b"zero"), Condition::Always, None, &Fence::new(&name, FencingToken::NONE))
        .await;
    if !matches!(zero, Err(StateError::InvalidArgument { .. })) {
        failures.push(format!("a fence with token 0 answered {zero:?} instead of InvalidArgument"));
    }
    cx.backend.locks.release(&lease).await?;
    if failures.is_empty() { Ok(()) } else { Err(Failure(failures.join("; "))) }
}

/// Workers take the lock in turns, some stalling past their lease before
/// they write and some writing at the very end of it; every successful
/// fenced write, in the order the store applied it (its version), carries
/// a token no lower than the one before.
async fn takeovers(cx: &Context) -> Result<(), Failure> {
    let key = Arc::new(Key::new(&cx.space("fenced-takeovers"), "value")?);
    let name = Arc::new(cx.lock_name("fenced-takeovers"));
    let ttl = Duration::from_millis(150);
    let rounds = cx.scale.count(6).max(2);
    let applied: Arc<Mutex<Vec<(Version, FencingToken)>>> = Arc::default();
    let mut workers = Vec::new();
    for worker in 0..4u64 {
        let (backend, key, name, applied) =
            (cx.backend.clone(), Arc::clone(&key), Arc::clone(&name), Arc::clone(&applied));
        workers.push(tokio::spawn(async move {
            for round in 0..rounds {
                // Waiting is not what this checks: a worker that loses
                // every race for a while sits the round out.
                let lease = match backend.locks.acquire(&name, ttl, Duration::from_secs(5)).await {
                    Ok(lease) => lease,
                    Err(StateError::Timeout { .. }) => continue,
                    Err(error) => return Err(error.into()),
                };
                match (worker + round as u64) % 4 {
                    // A stalled holder: its lease expires and another
                    // worker takes the lock before this one writes.
                    0 => tokio::time::sleep(ttl * 2).await,
                    // A holder writing at the edge of its lease: the write
                    // must land before the next holder's, or not at all.
                    1 | 3 => tokio::time::sleep(ttl.saturating_sub(Duration::from_millis(10))).await,
                    // A holder that writes at once.
                    _ => {}
                }
                let value = Bytes::from(lease.token().0.to_string());
                match backend.store.put_fenced(&key, value, Condition::Always, None, &lease.fence()).await {
                    Ok(PutOutcome::Written(version)) => applied.lock().push((version, lease.token())),
                    Ok(other) => return Err(Failure(format!("a fenced put(Always) answered {other:?}"))),
                    Err(StateError::LockLost { .. }) => {}
                    Err(error) => return Err(error.into()),
                }
                let _ = backend.locks.release(&lease).await;
            }
            Ok::<_, Failure>(())
        }));
    }
    for worker in workers {
        worker.await.map_err(|e| Failure(format!("a worker panicked: {e}")))??;
    }
    let mut applied = applied.lock().clone();
    applied.sort();
    let mut failures = Vec::new();
    for pair in applied.windows(2) {
        if pair[1].1 < pair[0].1 {
            failures.push(format!(
                "version {} was written with token {} after version {} with the newer token {}",
                pair[1].0.0, pair[1].1, pair[0].0.0, pair[0].1
            ));
        }
    }
    if applied.is_empty() {
        failures.push("no fenced write succeeded".to_owned());
    }
    cx.note(format!("{} fenced writes applied in {} tenures", applied.len(), rounds * 4));
    if failures.is_empty() { Ok(()) } else { Err(Failure(failures.join("; "))) }
}

/// A holder sends a fenced write just before its lease ends; once the lease
/// has expired a new holder takes the lock and writes at once. Whatever the
/// network does to the first write, it lands before the second or not at
/// all: the entry ends with the new holder's value, at the higher version.
/// Played on many locks at once, so that a store which checks the fence
/// apart from the write meets the unlucky timing.
async fn edge_writes(cx: &Context) -> Result<(), Failure> {
    let ttl = Duration::from_millis(200);
    let runs = cx.scale.count(16).max(4);
    let mut plays = Vec::new();
    for run in 0..runs {
        let (cx, label) = (cx.clone(), format!("fenced-edge-{run}"));
        plays.push(tokio::spawn(async move { edge_write(&cx, &label, ttl).await }));
    }
    let mut failures = Vec::new();
    for play in plays {
        match play.await {
            Ok(Ok(())) => {}
            Ok(Err(Failure(text))) => failures.push(text),
            Err(e) => failures.push(format!("a play panicked: {e}")),
        }
    }
    match failures.first() {
        None => Ok(()),
        Some(first) => Err(Failure(format!("{} of {runs} plays failed; the first: {first}", failures.len()))),
    }
}

async fn edge_write(cx: &Context, label: &str, ttl: Duration) -> Result<(), Failure> {
    let (store, locks) = (Arc::clone(&cx.backend.store), &cx.backend.locks);
    let key = Key::new(&cx.space(label), "value")?;
    let name = cx.lock_name(label);
    let first = acquire(cx, &name, ttl).await?;
    tokio::time::sleep(ttl.saturating_sub(Duration::from_millis(15))).await;
    let stale = {
        let (store, key, fence) = (Arc::clone(&store), key.clone(), first.fence());
        tokio::spawn(async move {
            store.put_fenced(&key, Bytes::from_static(b"first"), Condition::Always, None, &fence).await
        })
    };
    // The next holder, as soon as the lease has expired.
    let bound = tokio::time::Instant::now() + ttl * 20;
    let second = loop {
        if let Some(lease) = locks.try_acquire(&name, Duration::from_secs(10)).await? {
            break lease;
        }
        if tokio::time::Instant::now() > bound {
            return Err(Failure(format!("{name} never came free after its lease of {ttl:?}")));
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let fresh = store.put_fenced(&key, Bytes::from_static(b"second"), Condition::Always, None, &second.fence()).await;
    let stale = stale.await.map_err(|e| Failure(format!("the first write panicked: {e}")))?;
    locks.release(&second).await?;
    let Ok(PutOutcome::Written(fresh_version)) = fresh else {
        return Err(Failure(format!("the new holder's fenced put answered {fresh:?}")));
    };
    let found = store.get(&key).await?;
    let last = found.as_ref().map(|e| (e.value.clone(), e.version));
    if last != Some((Bytes::from_static(b"second"), fresh_version)) {
        return Err(Failure(format!(
            "the previous holder's fenced put, sent just before its lease ended, answered {stale:?} and left \
             {found:?} after the new holder's write (version {})",
            fresh_version.0
        )));
    }
    Ok(())
}
