//! Capabilities: declared limits are sane, and every optional feature is
//! checked both ways — declared, it works; undeclared, its operations
//! answer `Unsupported` and change nothing.

use std::time::Duration;

use bytes::Bytes;
use state_api::{DeleteCondition, FencingToken, Key, StateError, Version};

use crate::findings::Findings;
use crate::kit::{Context, Outcome};

fn unsupported<T>(answer: &state_api::Result<T>) -> bool {
    matches!(answer, Err(StateError::Unsupported { .. }))
}

/// Explains a wrong answer of a declared or undeclared feature's operation.
fn verdict(declared: bool, answer: impl std::fmt::Debug, what: &str) -> String {
    if declared {
        format!("{what} is declared but answered {answer:?}")
    } else {
        format!("{what} is not declared but answered {answer:?} instead of Unsupported, changing nothing")
    }
}

/// Runs the capabilities property.
pub async fn run(cx: &Context) -> Outcome {
    let caps = &cx.capabilities;
    let features = caps.features;
    let store = cx.backend.store.as_ref();
    let space = cx.space("caps");
    let mut findings = Findings::new();
    findings.check(caps.max_value_len >= 1024, || {
        format!("max_value_len {} is below the contract's 1 KiB floor", caps.max_value_len)
    });
    findings.check(caps.ttl_resolution <= Duration::from_millis(1), || {
        format!("TTL resolution {:?} is coarser than the contract's millisecond", caps.ttl_resolution)
    });

    let scan = store.scan(&space, "", None, 1).await.map(|_| ());
    let holds = if features.scan { scan.is_ok() } else { unsupported(&scan) };
    findings.check(holds, || verdict(features.scan, &scan, "scan"));

    // A versioned delete of a live entry at its version: removes it when
    // declared; otherwise Unsupported, and the entry stays.
    let key = Key::new(&space, "conditional-delete")?;
    store.set(&key, Bytes::from_static(b"kept"), None).await?;
    let deleted = store.delete(&key, DeleteCondition::IfVersion(Version(1))).await;
    let holds = if features.conditional_delete {
        matches!(deleted, Ok(true))
    } else {
        unsupported(&deleted) && store.get(&key).await?.is_some()
    };
    findings.check(holds, || verdict(features.conditional_delete, &deleted, "delete(IfVersion)"));

    let key = Key::new(&space, "counter")?;
    let counted = store.increment(&key, 2, None).await;
    let holds = if features.counters {
        matches!(counted, Ok(c) if c.value == 2)
    } else {
        unsupported(&counted) && store.get(&key).await?.is_none()
    };
    findings.check(holds, || verdict(features.counters, &counted, "increment"));

    // Bytes that are not UTF-8: stored exactly when declared; otherwise
    // Unsupported, and nothing stored (not a lossy copy).
    let key = Key::new(&space, "binary")?;
    let binary = Bytes::from_static(&[0xff, 0xfe, 0x00, 0x80]);
    let put = store.set(&key, binary.clone(), None).await;
    let read = store.get(&key).await?.map(|e| e.value);
    let holds = if features.binary_values {
        put.is_ok() && read.as_ref() == Some(&binary)
    } else {
        unsupported(&put) && read.is_none()
    };
    findings.check(holds, || {
        let answer = format!("{put:?}, then reads {read:?}");
        verdict(features.binary_values, answer, "a non-UTF-8 value")
    });

    let lock = cx.backend.locks.try_acquire(&cx.lock_name("caps"), Duration::from_secs(1)).await;
    let holds = if features.locks { matches!(lock, Ok(Some(_))) } else { unsupported(&lock) };
    findings.check(holds, || verdict(features.locks, &lock, "locks (try_acquire)"));
    if let Ok(Some(lease)) = &lock {
        // Fencing tokens start at 1; a backend without them gives NONE.
        let token = lease.token();
        let holds = (token != FencingToken::NONE) == features.fencing_tokens;
        findings.check(holds, || match features.fencing_tokens {
            true => format!("fencing tokens are declared but a lease carries {token}, the token of no fencing"),
            false => format!("fencing tokens are not declared but a lease carries {token} instead of NONE (0)"),
        });
        cx.backend.locks.release(lease).await?;
    }

    // Schedules: declared, a scheduled item is listed; otherwise every call
    // answers Unsupported.
    let space = cx.space("caps-schedule");
    let item = state_api::Key::new(&space, "timer")?;
    let scheduled = cx.backend.schedules.schedule(&item, state_api::EpochMillis(1), "x".into()).await;
    let listed = cx.backend.schedules.due(&space, state_api::EpochMillis(2), 10).await;
    let holds = if features.schedules {
        scheduled.is_ok() && matches!(&listed, Ok(items) if items.len() == 1)
    } else {
        unsupported(&scheduled) && unsupported(&listed)
    };
    findings.check(holds, || {
        verdict(features.schedules, format!("{scheduled:?}, then due lists {listed:?}"), "schedules (schedule, due)")
    });
    if features.schedules {
        cx.backend.schedules.cancel(&item).await?;
    }
    findings.outcome()
}
