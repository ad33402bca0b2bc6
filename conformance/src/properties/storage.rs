//! Storage reclaim, for backends that report what they physically hold
//! ([`state_api::storage`]): expired entries and free locks are reclaimed
//! within the declared bound, a steady workload leaves no more behind than
//! its live data (and the declared per-name lock records), and reclaiming
//! never removes an entry rewritten after it expired.
//!
//! The reclaim bound is checked with the backend's own sweeper (the kit
//! only watches); the rewrite race with the kit forcing sweeps through
//! [`StateStore::reclaim_expired`] while writers rewrite expiring keys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use state_api::{DeleteCondition, Key, LockRetention, StateStore, StorageReporting, StorageScope, StorageUsage};
use tokio::time::Instant;

use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// The TTL of the entries and leases left to expire.
const SHORT_TTL: Duration = Duration::from_millis(100);

/// How often usage is polled while waiting for the reclaim.
const POLL: Duration = Duration::from_millis(25);

/// Keys written without a TTL: the live data the store must keep.
const KEPT: usize = 4;

/// Runs the three checks and reports every failure.
pub async fn run(cx: &Context) -> Outcome {
    let Some(declared) = cx.capabilities.storage else {
        return Err(Failure("the storage property ran on a backend that does not report storage".to_owned()));
    };
    // One after the other: the reclaims the kit forces in the second part
    // would otherwise do the work of a sweeper that has stopped, and hide it.
    let mut findings = reclaimed_within_bound(cx, declared).await?;
    findings.absorb(rewrites_survive_reclaim(cx).await?);
    findings.outcome()
}

/// Usage of one space and its lock prefix.
async fn usage(store: &dyn StateStore, space: &str, lock_prefix: &str) -> Result<StorageUsage, Failure> {
    Ok(store.storage_usage(StorageScope { spaces: &[space], lock_prefix }).await?)
}

/// A steady workload over a fixed set of keys and lock names, plus a fresh
/// lock name per round (a lock per job) and a fresh key per round deleted
/// as soon as it is written, all of it expiring, released or deleted; then,
/// within the declared bound of the last deadline, usage must come down to
/// the live data.
async fn reclaimed_within_bound(cx: &Context, declared: StorageReporting) -> Result<Findings, Failure> {
    let store = cx.backend.store.as_ref();
    let locks = cx.backend.locks.as_ref();
    let space = cx.space("storage");
    let prefix = cx.lock_name("storage-main-");
    let mut findings = Findings::new();
    let rounds = cx.scale.count(6).max(2);
    let expiring = cx.scale.count(16).max(4);

    for i in 0..KEPT {
        store.set(&Key::new(&space, &format!("kept-{i}"))?, Bytes::from_static(b"kept"), None).await?;
    }
    let seen = usage(store, &space, &prefix).await?;
    findings.check(seen.records == u64::try_from(KEPT).unwrap_or(u64::MAX), || {
        format!("right after writing {KEPT} entries to a fresh space, storage_usage reported {seen:?}")
    });
    let mut names = std::collections::BTreeSet::new();
    for round in 0..rounds {
        for i in 0..expiring {
            // The same keys every round: rewritten, not accumulated.
            let key = Key::new(&space, &format!("short-{i}"))?;
            store.set(&key, Bytes::from(format!("round {round}")), Some(SHORT_TTL)).await?;
        }
        store.increment(&Key::new(&space, "window")?, 1, Some(SHORT_TTL)).await?;
        // Deleted at once, without a TTL: nothing of it may stay (an index
        // entry left behind would never expire).
        let gone = Key::new(&space, &format!("deleted-{round}"))?;
        let version = store.set(&gone, Bytes::from_static(b"gone"), None).await?;
        let condition = if round % 2 == 0 { DeleteCondition::Always } else { DeleteCondition::IfVersion(version) };
        let deleted = store.delete(&gone, condition).await?;
        findings.check(deleted, || format!("deleting the live entry {gone:?} ({condition:?}) deleted nothing"));
        // A lock released at once, the same name every round, and a fresh
        // name per round left to expire.
        for name in [format!("{prefix}steady"), format!("{prefix}job-{round}")] {
            if let Some(lease) = locks.try_acquire(&name, SHORT_TTL).await? {
                if name.ends_with("steady") {
                    locks.release(&lease).await?;
                }
                names.insert(name);
            } else {
                findings.fail(format!("the free lock {name:?} could not be taken"));
            }
        }
        if round == 0 {
            let seen = usage(store, &space, &prefix).await?;
            findings.check(seen.lock_records >= 1, || {
                format!("right after taking a lock, storage_usage reported {seen:?}: it does not count lock records")
            });
        }
        tokio::time::sleep(SHORT_TTL / 4).await;
    }
    let last_deadline = Instant::now() + SHORT_TTL;
    let bound = last_deadline + declared.reclaim_within + cx.clock_tolerance() * 2;
    let allowed_locks = match declared.lock_records {
        LockRetention::Reclaimed => 0,
        LockRetention::OnePerName => u64::try_from(names.len()).unwrap_or(u64::MAX),
    };
    let kept = u64::try_from(KEPT).unwrap_or(u64::MAX);
    let reclaimed =
        |seen: &StorageUsage| seen.records <= kept && seen.index_entries <= kept && seen.lock_records <= allowed_locks;
    let mut seen = usage(store, &space, &prefix).await?;
    while !reclaimed(&seen) && Instant::now() < bound {
        tokio::time::sleep(POLL).await;
        seen = usage(store, &space, &prefix).await?;
    }
    findings.check(reclaimed(&seen), || {
        format!(
            "{:?} after the last entry and lease expired (declared reclaim within {:?}), storage_usage still \
             reported {seen:?}; the live data is {kept} entries and the declared lock retention ({:?}) allows \
             {allowed_locks} lock records for {} names",
            bound.saturating_duration_since(last_deadline),
            declared.reclaim_within,
            declared.lock_records,
            names.len()
        )
    });
    findings.check(seen.records >= kept, || {
        format!("storage_usage reported {seen:?} while {kept} entries without a TTL were live")
    });
    for i in 0..KEPT {
        let key = Key::new(&space, &format!("kept-{i}"))?;
        let found = store.get(&key).await?;
        findings.check(found.as_ref().is_some_and(|e| e.value == "kept"), || {
            format!("the entry {key:?}, written without a TTL, read {found:?} after the reclaim")
        });
    }
    Ok(findings)
}

/// Writers set keys with a TTL of a few milliseconds, let them expire,
/// and rewrite them without a TTL, while the kit forces reclaims: every
/// rewritten entry must stay, whatever the sweep saw before the rewrite.
async fn rewrites_survive_reclaim(cx: &Context) -> Result<Findings, Failure> {
    let store = Arc::clone(&cx.backend.store);
    let space = cx.space("storage-race");
    let writers = 4;
    let rounds = cx.scale.count(20).max(5);
    let mut findings = Findings::new();
    // Quietly first: an entry rewritten without a TTL after it expired
    // survives the next reclaim.
    let quiet = Key::new(&space, "quiet")?;
    store.set(&quiet, Bytes::from_static(b"expiring"), Some(Duration::from_millis(2))).await?;
    tokio::time::sleep(Duration::from_millis(5)).await;
    store.set(&quiet, Bytes::from_static(b"kept"), None).await?;
    store.reclaim_expired().await?;
    let found = store.get(&quiet).await?;
    findings.check(found.as_ref().is_some_and(|e| e.value == "kept"), || {
        format!("an entry rewritten without a TTL after it expired read {found:?} after reclaim_expired")
    });

    findings.absorb(reclaim_reports_what_it_freed(cx).await?);

    let done = Arc::new(AtomicBool::new(false));
    let sweeper = {
        let (store, done) = (Arc::clone(&store), Arc::clone(&done));
        tokio::spawn(async move {
            let mut sweeps = 0u64;
            while !done.load(Ordering::Relaxed) {
                store.reclaim_expired().await?;
                sweeps += 1;
                tokio::task::yield_now().await;
            }
            Ok::<u64, state_api::StateError>(sweeps)
        })
    };
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, space) = (Arc::clone(&store), space.clone());
        tasks.push(tokio::spawn(async move {
            let mut lost = Vec::new();
            for round in 0..rounds {
                let key = Key::new(&space, &format!("w{writer}-{round}"))?;
                let ttl = Duration::from_millis(1 + (round % 3) as u64);
                store.set(&key, Bytes::from_static(b"expiring"), Some(ttl)).await?;
                tokio::time::sleep(ttl).await;
                // Expired now, and perhaps already chosen by a sweep.
                let value = Bytes::from(format!("kept {round}"));
                store.set(&key, value.clone(), None).await?;
                tokio::task::yield_now().await;
                let found = store.get(&key).await?;
                if found.as_ref().map(|e| &e.value) != Some(&value) {
                    lost.push(format!("{key:?} rewritten without a TTL after it expired read {found:?}"));
                }
            }
            Ok::<Vec<String>, state_api::StateError>(lost)
        }));
    }
    for task in tasks {
        match task.await {
            Ok(Ok(lost)) => {
                findings.check(lost.is_empty(), || {
                    format!("reclaim_expired removed entries rewritten after they expired: {}", lost.join("; "))
                });
            }
            Ok(Err(error)) => findings.fail(format!("a writer failed: {error}")),
            Err(panic) => findings.fail(format!("a writer panicked: {panic}")),
        }
    }
    done.store(true, Ordering::Relaxed);
    match sweeper.await {
        Ok(Ok(sweeps)) => {
            findings.check(sweeps > 0, || "reclaim_expired never completed".to_owned());
        }
        Ok(Err(error)) => findings.fail(format!("reclaim_expired failed: {error}")),
        Err(panic) => findings.fail(format!("reclaim_expired panicked: {panic}")),
    }
    // One last, quiet check: nothing live goes away in a sweep.
    store.reclaim_expired().await?;
    for writer in 0..writers {
        let key = Key::new(&space, &format!("w{writer}-{}", rounds - 1))?;
        let found = store.get(&key).await?;
        findings.check(found.is_some(), || format!("{key:?}, live without a TTL, was gone after reclaim_expired"));
    }
    Ok(findings)
}

/// `reclaim_expired` answers how many records it freed: at least what
/// vanished from a scope where entries and a lease had just expired. (The
/// backend's own sweeper may free some of them just before; a correct
/// store then shows it on one of a few tries, a wrong count on none.)
async fn reclaim_reports_what_it_freed(cx: &Context) -> Result<Findings, Failure> {
    let store = cx.backend.store.as_ref();
    let locks = cx.backend.locks.as_ref();
    let mut findings = Findings::new();
    let mut tries = Vec::new();
    for attempt in 0..3 {
        let space = cx.space(&format!("storage-count{attempt}"));
        let prefix = cx.lock_name(&format!("storage-count{attempt}-"));
        for i in 0..3 {
            store
                .set(&Key::new(&space, &format!("k{i}"))?, Bytes::from_static(b"x"), Some(Duration::from_millis(2)))
                .await?;
        }
        let _lease = locks.try_acquire(&format!("{prefix}lock"), Duration::from_millis(2)).await?;
        tokio::time::sleep(Duration::from_millis(10)).await;
        let before = usage(store, &space, &prefix).await?;
        let freed = store.reclaim_expired().await?;
        let after = usage(store, &space, &prefix).await?;
        let vanished = (before.records + before.lock_records).saturating_sub(after.records + after.lock_records);
        if vanished > 0 && freed >= vanished {
            return Ok(findings);
        }
        tries.push(format!("usage {before:?} became {after:?}, and reclaim_expired answered {freed}"));
    }
    findings.fail(format!(
        "reclaim_expired did not report the records it freed (3 entries and a lease had expired): {}",
        tries.join("; ")
    ));
    Ok(findings)
}
