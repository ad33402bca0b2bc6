//! Property 8: TTL behaviour against the real clock.
//!
//! All checks start together and share one wait, so the property costs
//! about one TTL plus the tolerance. "Present before the deadline" is only
//! asserted when the read provably happened before it (minus tolerance),
//! and "absent after" only when provably after: a slow machine makes the
//! property weaker, never flaky.

use std::time::Duration;

use bytes::Bytes;
use state_api::{Condition, DeleteCondition, Key, PutOutcome, StateStore, Version};
use tokio::time::{Instant, sleep_until};

use crate::ensure;
use crate::exec::execute;
use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};
use crate::model::{Op, Outcome as ModelOutcome};

struct Clock {
    ttl: Duration,
    tolerance: Duration,
}

/// Runs property 8. Every check runs, and every failure is reported: a
/// store that rounds TTLs to seconds is still checked for clearing them.
pub async fn run(cx: &Context) -> Outcome {
    let tolerance = cx.clock_tolerance();
    let clock = Clock { ttl: (tolerance * 3).max(Duration::from_millis(400)), tolerance };
    let store = cx.backend.store.as_ref();
    let space = cx.space("ttl");
    let key = |id: &str| Key::new(&space, id);
    let window = key("window")?;
    let (expires, cleared, replaced, absent, window) = tokio::join!(
        expires_on_time(store, key("expires")?, &clock),
        ttl_less_write_clears(store, key("cleared")?, &clock),
        later_ttl_replaces(store, key("replaced")?, &clock),
        expired_is_absent_everywhere(cx, &space, &clock),
        async {
            match cx.capabilities.features.counters {
                true => Some(increment_keeps_window(store, window, &clock).await),
                false => None,
            }
        },
    );
    let mut findings = Findings::new();
    findings.record("expiry on time", expires);
    findings.record("a TTL-less write", cleared);
    findings.record("a later TTL", replaced);
    findings.record("an expired key", absent);
    if let Some(window) = window {
        findings.record("a counter's window", window);
    }
    findings.outcome()
}

/// The entry is live, with a TTL close to the one written, until the
/// deadline; absent after it (so never rounded up to whole seconds).
async fn expires_on_time(store: &dyn StateStore, key: Key, clock: &Clock) -> Result<(), Failure> {
    let called = Instant::now();
    store.set(&key, Bytes::from_static(b"v"), Some(clock.ttl)).await?;
    let returned = Instant::now();
    let entry = store.get(&key).await?;
    let read_at = Instant::now();
    if read_at < called + clock.ttl - clock.tolerance {
        let ttl = entry.as_ref().and_then(|e| e.ttl);
        ensure!(entry.is_some(), "an entry with TTL {:?} vanished at once", clock.ttl);
        let left = ttl.ok_or_else(|| Failure("an entry written with a TTL reports none".into()))?;
        let low = clock.ttl.saturating_sub(read_at - called + clock.tolerance);
        ensure!(
            low <= left && left <= clock.ttl,
            "TTL {:?} reported {left:?} remaining right after the write",
            clock.ttl
        );
    }
    sleep_until(returned + clock.ttl + clock.tolerance).await;
    let late = store.get(&key).await?;
    ensure!(late.is_none(), "the entry was still live {:?} after its {:?} TTL: {late:?}", clock.tolerance, clock.ttl);
    Ok(())
}

/// A write without TTL after one with a TTL never expires.
async fn ttl_less_write_clears(store: &dyn StateStore, key: Key, clock: &Clock) -> Result<(), Failure> {
    store.set(&key, Bytes::from_static(b"first"), Some(clock.ttl)).await?;
    store.set(&key, Bytes::from_static(b"second"), None).await?;
    let written = Instant::now();
    sleep_until(written + clock.ttl + clock.tolerance).await;
    let entry = store.get(&key).await?;
    ensure!(
        entry.as_ref().is_some_and(|e| e.value == "second" && e.ttl.is_none()),
        "a TTL-less write did not clear the earlier TTL: {entry:?}"
    );
    Ok(())
}

/// Increments keep the creation TTL (a fixed window), ignoring their own.
async fn increment_keeps_window(store: &dyn StateStore, key: Key, clock: &Clock) -> Result<(), Failure> {
    let called = Instant::now();
    store.increment(&key, 1, Some(clock.ttl)).await?;
    let returned = Instant::now();
    store.increment(&key, 1, Some(clock.ttl * 20)).await?;
    store.increment(&key, 1, None).await?;
    let entry = store.get(&key).await?;
    if Instant::now() < called + clock.ttl - clock.tolerance {
        let left = entry.as_ref().and_then(|e| e.ttl);
        ensure!(
            entry.as_ref().is_some_and(|e| e.value == "3") && left.is_some_and(|t| t <= clock.ttl),
            "increments changed the counter's window: {entry:?}"
        );
    }
    sleep_until(returned + clock.ttl + clock.tolerance).await;
    ensure!(store.get(&key).await?.is_none(), "the counter outlived its creation TTL");
    let fresh = store.increment(&key, 1, Some(clock.ttl)).await?;
    ensure!(fresh.value == 1 && fresh.version == Version(1), "a new window started at {fresh:?}");
    Ok(())
}

/// A shorter TTL written later replaces a longer one.
async fn later_ttl_replaces(store: &dyn StateStore, key: Key, clock: &Clock) -> Result<(), Failure> {
    store.set(&key, Bytes::from_static(b"long"), Some(clock.ttl * 50)).await?;
    store.set(&key, Bytes::from_static(b"short"), Some(clock.ttl)).await?;
    let written = Instant::now();
    sleep_until(written + clock.ttl + clock.tolerance).await;
    let entry = store.get(&key).await?;
    ensure!(entry.is_none(), "a later, shorter TTL did not replace the earlier one: {entry:?}");
    Ok(())
}

/// Once expired, a key is absent for every operation, atomically. Each
/// operation is checked on its own key, and every failure is reported.
async fn expired_is_absent_everywhere(cx: &Context, space: &str, clock: &Clock) -> Result<(), Failure> {
    let store = cx.backend.store.as_ref();
    let features = cx.capabilities.features;
    let ids = ["if-absent", "if-version", "delete", "increment", "get", "always", "delete-version"];
    let keys: Vec<Key> = ids.iter().map(|id| Key::new(space, &format!("gone-{id}"))).collect::<Result<_, _>>()?;
    for key in &keys {
        store.set(key, Bytes::from_static(b"doomed"), Some(clock.ttl)).await?;
    }
    let written = Instant::now();
    sleep_until(written + clock.ttl + clock.tolerance).await;
    let mut findings = Findings::new();
    let outcome = store.put(&keys[0], Bytes::from_static(b"new"), Condition::IfAbsent, None).await?;
    findings.check(outcome == PutOutcome::Written(Version(1)), || format!("check_and_set on it: {outcome:?}"));
    let outcome = store.put(&keys[1], Bytes::from_static(b"new"), Condition::IfVersion(Version(1)), None).await?;
    findings.check(outcome == PutOutcome::Rejected(None), || format!("compare_and_swap on it: {outcome:?}"));
    let deleted = store.delete(&keys[2], DeleteCondition::Always).await?;
    findings.check(!deleted, || "delete of it reported a live entry removed".into());
    let mut listed_ids = vec!["gone-always", "gone-if-absent"];
    if features.counters {
        let counter = store.increment(&keys[3], 5, None).await?;
        findings.check(counter.value == 5 && counter.version == Version(1), || format!("increment of it: {counter:?}"));
        listed_ids.push("gone-increment");
    }
    let got = store.get(&keys[4]).await?;
    findings.check(got.is_none(), || format!("get of it: {got:?}"));
    let outcome = store.put(&keys[5], Bytes::from_static(b"new"), Condition::Always, None).await?;
    findings.check(outcome == PutOutcome::Written(Version(1)), || {
        format!("set on it did not restart at version 1: {outcome:?}")
    });
    if features.conditional_delete {
        let deleted = store.delete(&keys[6], DeleteCondition::IfVersion(Version(1))).await?;
        findings.check(!deleted, || "a versioned delete of it reported a live entry removed".into());
    }
    if features.scan {
        let scan = Op::Scan { space: space.to_owned(), prefix: "gone-".into(), limit: 100 };
        let listed = match execute(store, &scan).await {
            ModelOutcome::Scanned(items) => items.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
            other => return Err(Failure(format!("scan after expiry failed: {other:?}"))),
        };
        findings
            .check(listed == listed_ids, || format!("scan after expiry listed {listed:?}, expected {listed_ids:?}"));
    }
    // An expired text, or an expired counter at the end of the range, is
    // absent to an increment too: it starts a new counter. A few rounds at
    // different moments, since a backend's reaper may delete an expired
    // row before the increment meets it (which hides a store that judges
    // the old value first).
    if features.counters {
        for round in 0..3 {
            for (label, doomed) in [("text", Bytes::from_static(b"doomed")), ("max", Bytes::from(i64::MAX.to_string()))]
            {
                let key = Key::new(space, &format!("expired-{label}-{round}"))?;
                store.set(&key, doomed, Some(clock.ttl)).await?;
                sleep_until(Instant::now() + clock.ttl + clock.tolerance).await;
                let counter = store.increment(&key, 1, None).await;
                findings.check(matches!(&counter, Ok(c) if c.value == 1 && c.version == Version(1)), || {
                    format!("increment of an expired {label} value: {counter:?}, expected a new counter at 1")
                });
            }
            tokio::time::sleep(Duration::from_millis(fastrand::u64(..200))).await;
        }
    }
    findings.outcome().map(|_| ())
}
