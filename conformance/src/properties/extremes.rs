//! Extreme arguments: the largest and smallest values every argument can
//! take give the contract's typed answer — never a panic, never a write.
//!
//! Every write that takes a TTL (`put` with each condition, `increment`,
//! `try_acquire`, `acquire`, `extend`) is called with a zero TTL, one just
//! over [`MAX_TTL`] and `Duration::MAX`, which must be refused before any
//! I/O, and with sub-millisecond TTLs, which must be accepted and rounded
//! *up* to one millisecond: the entry or lease is gone a moment later — not
//! refused, not kept forever because the TTL was truncated to "0 = none".
//!
//! Each call runs in its own task, so a backend that panics (say, on
//! `Instant::now() + Duration::MAX`) is reported as a counterexample naming
//! the call instead of aborting the run. Every check runs even after one
//! fails, and all failures are reported together.

use std::time::Duration;

use bytes::Bytes;
use state_api::{Condition, DeleteCondition, Key, MAX_TTL, PutOutcome, Result, StateError, Version};

use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// The TTLs no write may accept.
const REFUSED_TTLS: [(&str, Duration); 3] = [
    ("Duration::MAX", Duration::MAX),
    ("MAX_TTL + 1 ms", MAX_TTL.saturating_add(Duration::from_millis(1))),
    ("zero", Duration::ZERO),
];

/// TTLs under a millisecond, which round up to exactly one.
const SUB_MILLISECOND_TTLS: [(&str, Duration); 2] =
    [("1 ns", Duration::from_nanos(1)), ("999 µs", Duration::from_micros(999))];

fn invalid_ttl<T>(answer: &Result<T>) -> bool {
    matches!(answer, Err(StateError::InvalidArgument { name: "ttl", .. }))
}

fn invalid_argument<T>(answer: &Result<T>) -> bool {
    matches!(answer, Err(StateError::InvalidArgument { .. }))
}

/// Entries and locks given a sub-millisecond TTL, to be found gone once
/// the clock tolerance has passed.
#[derive(Default)]
struct ShortLived {
    keys: Vec<(String, Key)>,
    locks: Vec<(String, String)>,
}

/// Runs the property.
pub async fn run(cx: &Context) -> Outcome {
    let mut findings = Findings::new();
    let mut short_lived = ShortLived::default();
    store_arguments(cx, &mut findings).await?;
    sub_millisecond_writes(cx, &mut findings, &mut short_lived).await?;
    if cx.capabilities.features.locks {
        lock_arguments(cx, &mut findings).await?;
        sub_millisecond_leases(cx, &mut findings, &mut short_lived).await;
    }
    // One millisecond after the last write every short-lived entry and
    // lease is gone; the tolerance covers clocks and round trips.
    tokio::time::sleep(cx.clock_tolerance()).await;
    short_lived_are_gone(cx, &mut findings, short_lived).await?;
    findings.outcome()
}

async fn store_arguments(cx: &Context, findings: &mut Findings) -> std::result::Result<(), Failure> {
    let store = &cx.backend.store;
    let features = cx.capabilities.features;
    let space = cx.space("extremes");
    let key = Key::new(&space, "untouched")?;
    for (label, ttl) in REFUSED_TTLS {
        for condition in [Condition::Always, Condition::IfAbsent, Condition::IfVersion(Version(1))] {
            let (s, k) = (store.clone(), key.clone());
            let what = format!("put({condition:?}) with a TTL of {label}");
            let call = async move { s.put(&k, Bytes::from_static(b"v"), condition, Some(ttl)).await };
            findings.expect(&what, call, "InvalidArgument(ttl)", invalid_ttl).await;
        }
        if features.counters {
            let (s, k) = (store.clone(), key.clone());
            let call = async move { s.increment(&k, 1, Some(ttl)).await };
            let what = format!("increment with a TTL of {label}");
            findings.expect(&what, call, "InvalidArgument(ttl)", invalid_ttl).await;
        }
    }
    for version in [Version(0), Version(u64::MAX)] {
        let (s, k) = (store.clone(), key.clone());
        let what = format!("put(IfVersion({})) on an absent key", version.0);
        let call = async move { s.put(&k, Bytes::from_static(b"v"), Condition::IfVersion(version), None).await };
        findings.expect(&what, call, "Rejected(None)", |a| matches!(a, Ok(PutOutcome::Rejected(None)))).await;
        if features.conditional_delete {
            let (s, k) = (store.clone(), key.clone());
            let what = format!("delete(IfVersion({})) on an absent key", version.0);
            let call = async move { s.delete(&k, DeleteCondition::IfVersion(version)).await };
            findings.expect(&what, call, "Ok(false)", |a| matches!(a, Ok(false))).await;
        }
    }
    // Nothing above may have written.
    let (s, k) = (store.clone(), key.clone());
    findings
        .expect("get after the refused writes", async move { s.get(&k).await }, "None", |a| matches!(a, Ok(None)))
        .await;

    if features.counters {
        let counter = Key::new(&space, "counter")?;
        for (delta, then) in [(i64::MAX, 1), (i64::MIN, -1)] {
            let (s, k) = (store.clone(), counter.clone());
            let _ = s.delete(&k, DeleteCondition::Always).await?;
            let call = async move { s.increment(&k, delta, None).await };
            let what = format!("increment by {delta} from absent");
            let expected = format!("the counter {delta}");
            findings.expect(&what, call, &expected, |a| matches!(a, Ok(c) if c.value == delta)).await;
            let (s, k) = (store.clone(), counter.clone());
            let call = async move { s.increment(&k, then, None).await };
            let what = format!("increment by {then} past {delta}");
            findings.expect(&what, call, "Overflow", |a| matches!(a, Err(StateError::Overflow { .. }))).await;
        }
    }

    if features.scan {
        for limit in [0, usize::MAX] {
            let (s, sp) = (store.clone(), space.clone());
            let call = async move { s.scan(&sp, "", None, limit).await };
            findings.expect(&format!("scan with limit {limit}"), call, "InvalidArgument", invalid_argument).await;
        }
    }
    Ok(())
}

/// Every kind of write with a sub-millisecond TTL: accepted, and recorded
/// in `short_lived` to be found expired later.
async fn sub_millisecond_writes(
    cx: &Context,
    findings: &mut Findings,
    short_lived: &mut ShortLived,
) -> std::result::Result<(), Failure> {
    let store = &cx.backend.store;
    let space = cx.space("extremes-short");
    for (label, ttl) in SUB_MILLISECOND_TTLS {
        for (kind, condition) in [
            ("always", Condition::Always),
            ("if-absent", Condition::IfAbsent),
            ("if-version", Condition::IfVersion(Version(1))),
        ] {
            let key = Key::new(&space, &format!("{kind}-{}", ttl.as_nanos()))?;
            if condition == Condition::IfVersion(Version(1)) {
                store.set(&key, Bytes::from_static(b"before"), None).await?;
            }
            let (s, k) = (store.clone(), key.clone());
            let what = format!("put({condition:?}) with a TTL of {label}");
            let call = async move { s.put(&k, Bytes::from_static(b"short"), condition, Some(ttl)).await };
            let written = |a: &Result<PutOutcome>| matches!(a, Ok(PutOutcome::Written(_)));
            if findings.expect(&what, call, "Written", written).await.is_some() {
                short_lived.keys.push((what, key));
            }
        }
        if cx.capabilities.features.counters {
            let key = Key::new(&space, &format!("increment-{}", ttl.as_nanos()))?;
            let (s, k) = (store.clone(), key.clone());
            let what = format!("increment with a TTL of {label}");
            let call = async move { s.increment(&k, 1, Some(ttl)).await };
            if findings.expect(&what, call, "the counter 1", |a| matches!(a, Ok(c) if c.value == 1)).await.is_some() {
                short_lived.keys.push((what, key));
            }
        }
    }
    Ok(())
}

async fn lock_arguments(cx: &Context, findings: &mut Findings) -> std::result::Result<(), Failure> {
    let locks = &cx.backend.locks;
    let name = cx.lock_name("extremes");
    let second = Duration::from_secs(1);

    // Each refused TTL on a lock of its own: one wrongly granted lease
    // must not make the other checks wait for it.
    for (number, (label, ttl)) in REFUSED_TTLS.into_iter().enumerate() {
        let (l, n) = (locks.clone(), cx.lock_name(&format!("extremes-refused-try-{number}")));
        let call = async move { l.try_acquire(&n, ttl).await };
        findings.expect(&format!("try_acquire with a TTL of {label}"), call, "InvalidArgument(ttl)", invalid_ttl).await;
        let (l, n) = (locks.clone(), cx.lock_name(&format!("extremes-refused-acquire-{number}")));
        let call = async move { l.acquire(&n, ttl, second).await };
        findings.expect(&format!("acquire with a TTL of {label}"), call, "InvalidArgument(ttl)", invalid_ttl).await;
    }

    // "Wait forever" is a valid timeout: on a free lock it acquires at once
    // (the kit's own bound keeps a wrong answer from hanging the run).
    let (l, n) = (locks.clone(), name.clone());
    let call = async move {
        let bound = Duration::from_secs(10);
        match tokio::time::timeout(bound, l.acquire(&n, Duration::from_secs(30), Duration::MAX)).await {
            Ok(answer) => answer,
            Err(_) => Err(StateError::timed_out("the kit's bound on acquiring a free lock", bound)),
        }
    };
    let Some(mut lease) =
        findings.expect("acquire with a timeout of Duration::MAX", call, "a lease", |a| a.is_ok()).await
    else {
        return Ok(());
    };

    // A held lock with no time to wait: a prompt Timeout, not a hang.
    let (l, n) = (locks.clone(), name.clone());
    let call = async move {
        let bound = Duration::from_secs(5);
        match tokio::time::timeout(bound, l.acquire(&n, second, Duration::ZERO)).await {
            Ok(answer) => answer,
            Err(_) => Err(StateError::timed_out("the kit's bound on a zero-timeout acquire", bound)),
        }
    };
    let timed_out = |a: &Result<_>| matches!(a, Err(StateError::Timeout { operation: "acquire", .. }));
    findings.expect("acquire of a held lock with a zero timeout", call, "Timeout", timed_out).await;

    for (label, ttl) in REFUSED_TTLS {
        let (l, mut held) = (locks.clone(), lease.clone());
        let call = async move { l.extend(&mut held, ttl).await };
        findings.expect(&format!("extend with a TTL of {label}"), call, "InvalidArgument(ttl)", invalid_ttl).await;
    }
    let (l, held) = (locks.clone(), lease.clone());
    let call = async move { l.is_held(&held).await };
    findings.expect("is_held after the refused extends", call, "true", |a| matches!(a, Ok(true))).await;

    let (l, mut held) = (locks.clone(), lease.clone());
    let call = async move { l.extend(&mut held, MAX_TTL).await.map(|()| held) };
    if let Some(extended) = findings.expect("extend with a TTL of MAX_TTL", call, "Ok", |a| a.is_ok()).await {
        lease = extended;
    }
    let (l, held) = (locks.clone(), lease.clone());
    let call = async move { l.release(&held).await };
    findings.expect("release after extending to MAX_TTL", call, "Ok", |a| a.is_ok()).await;
    Ok(())
}

/// `try_acquire`, `acquire` and `extend` with sub-millisecond TTLs: each
/// grants or extends, and the lock is recorded to be found free later.
async fn sub_millisecond_leases(cx: &Context, findings: &mut Findings, short_lived: &mut ShortLived) {
    let locks = &cx.backend.locks;
    for (label, ttl) in SUB_MILLISECOND_TTLS {
        let nanos = ttl.as_nanos();
        let (l, name) = (locks.clone(), cx.lock_name(&format!("extremes-try-{nanos}")));
        let (n, what) = (name.clone(), format!("try_acquire with a TTL of {label}"));
        let call = async move { l.try_acquire(&n, ttl).await };
        if findings.expect(&what, call, "a lease", |a| matches!(a, Ok(Some(_)))).await.is_some() {
            short_lived.locks.push((what, name));
        }

        let (l, name) = (locks.clone(), cx.lock_name(&format!("extremes-acquire-{nanos}")));
        let (n, what) = (name.clone(), format!("acquire with a TTL of {label}"));
        let call = async move { l.acquire(&n, ttl, Duration::from_secs(5)).await };
        if findings.expect(&what, call, "a lease", |a| a.is_ok()).await.is_some() {
            short_lived.locks.push((what, name));
        }

        let (l, name) = (locks.clone(), cx.lock_name(&format!("extremes-extend-{nanos}")));
        let (n, what) = (name.clone(), format!("extend with a TTL of {label}"));
        let call = async move {
            let Some(mut lease) = l.try_acquire(&n, Duration::from_secs(30)).await? else {
                return Err(StateError::invalid_argument("name", "the kit's fresh lock was not free"));
            };
            l.extend(&mut lease, ttl).await
        };
        if findings.expect(&what, call, "Ok", |a| a.is_ok()).await.is_some() {
            short_lived.locks.push((what, name));
        }
    }
}

/// Every short-lived entry has expired and every short-lived lock is free.
async fn short_lived_are_gone(
    cx: &Context,
    findings: &mut Findings,
    short_lived: ShortLived,
) -> std::result::Result<(), Failure> {
    let tolerance = cx.clock_tolerance();
    for (what, key) in short_lived.keys {
        let entry = cx.backend.store.get(&key).await?;
        findings.check(entry.is_none(), || {
            format!("{what}: still live {tolerance:?} later ({entry:?}); a TTL under 1 ms rounds up to 1 ms")
        });
    }
    for (what, name) in short_lived.locks {
        let lease = cx.backend.locks.try_acquire(&name, Duration::from_secs(1)).await?;
        let free = lease.is_some();
        if let Some(lease) = lease {
            cx.backend.locks.release(&lease).await?;
        }
        findings.check(free, || {
            format!("{what}: the lock was still held {tolerance:?} later; a TTL under 1 ms rounds up to 1 ms")
        });
    }
    Ok(())
}
