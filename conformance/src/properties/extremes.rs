//! Extreme arguments: the largest and smallest values every argument can
//! take give the contract's typed answer — never a panic, never a write.
//!
//! Each call runs in its own task, so a backend that panics (say, on
//! `Instant::now() + Duration::MAX`) is reported as a counterexample naming
//! the call instead of aborting the run. Every check runs even after one
//! fails, and all failures are reported together.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use state_api::{Condition, DeleteCondition, Key, MAX_TTL, PutOutcome, Result, StateError, Version};

use crate::kit::{Context, Failure, Outcome};

/// Runs `call` in its own task; a panic becomes a failure naming `what`.
async fn survives<T: Send + 'static>(
    what: &str,
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> std::result::Result<Result<T>, String> {
    match tokio::spawn(call).await {
        Ok(result) => Ok(result),
        Err(join) if join.is_panic() => Err(format!("{what} panicked instead of answering")),
        Err(join) => Err(format!("{what} did not complete: {join}")),
    }
}

/// The failures found so far; every check adds to it instead of stopping.
#[derive(Default)]
struct Findings {
    failures: Vec<String>,
    cases: u64,
}

impl Findings {
    /// Records whether `call`'s answer is the expected one.
    async fn expect<T: Send + std::fmt::Debug + 'static>(
        &mut self,
        what: &str,
        call: impl Future<Output = Result<T>> + Send + 'static,
        expected: &str,
        holds: impl FnOnce(&Result<T>) -> bool,
    ) -> Option<T> {
        self.cases += 1;
        match survives(what, call).await {
            Err(panicked) => {
                self.failures.push(panicked);
                None
            }
            Ok(answer) if holds(&answer) => answer.ok(),
            Ok(answer) => {
                self.failures.push(format!("{what}: expected {expected}, got {answer:?}"));
                None
            }
        }
    }

    fn outcome(self) -> Outcome {
        if self.failures.is_empty() {
            Ok(self.cases)
        } else {
            Err(Failure(format!(
                "{} of {} calls misbehaved:\n- {}",
                self.failures.len(),
                self.cases,
                self.failures.join("\n- ")
            )))
        }
    }
}

fn invalid_ttl<T>(answer: &Result<T>) -> bool {
    matches!(answer, Err(StateError::InvalidArgument { name: "ttl", .. }))
}

fn invalid_argument<T>(answer: &Result<T>) -> bool {
    matches!(answer, Err(StateError::InvalidArgument { .. }))
}

/// Runs the property.
pub async fn run(cx: &Context) -> Outcome {
    let mut findings = Findings::default();
    store_arguments(cx, &mut findings).await?;
    if cx.capabilities.features.locks {
        lock_arguments(cx, &mut findings).await?;
    }
    findings.outcome()
}

async fn store_arguments(cx: &Context, findings: &mut Findings) -> std::result::Result<(), Failure> {
    let store = &cx.backend.store;
    let space = cx.space("extremes");
    let key = Key::new(&space, "untouched")?;
    let too_long = MAX_TTL + Duration::from_millis(1);
    for (label, ttl) in [("Duration::MAX", Duration::MAX), ("MAX_TTL + 1 ms", too_long), ("zero", Duration::ZERO)] {
        for condition in [Condition::Always, Condition::IfAbsent, Condition::IfVersion(Version(1))] {
            let (s, k) = (store.clone(), key.clone());
            let what = format!("put({condition:?}) with a TTL of {label}");
            let call = async move { s.put(&k, Bytes::from_static(b"v"), condition, Some(ttl)).await };
            findings.expect(&what, call, "InvalidArgument(ttl)", invalid_ttl).await;
        }
        let (s, k) = (store.clone(), key.clone());
        let call = async move { s.increment(&k, 1, Some(ttl)).await };
        findings.expect(&format!("increment with a TTL of {label}"), call, "InvalidArgument(ttl)", invalid_ttl).await;
    }
    for version in [Version(0), Version(u64::MAX)] {
        let (s, k) = (store.clone(), key.clone());
        let what = format!("put(IfVersion({})) on an absent key", version.0);
        let call = async move { s.put(&k, Bytes::from_static(b"v"), Condition::IfVersion(version), None).await };
        findings.expect(&what, call, "Rejected(None)", |a| matches!(a, Ok(PutOutcome::Rejected(None)))).await;
        let (s, k) = (store.clone(), key.clone());
        let what = format!("delete(IfVersion({})) on an absent key", version.0);
        let call = async move { s.delete(&k, DeleteCondition::IfVersion(version)).await };
        findings.expect(&what, call, "Ok(false)", |a| matches!(a, Ok(false))).await;
    }
    // Nothing above may have written.
    let (s, k) = (store.clone(), key.clone());
    findings
        .expect("get after the refused writes", async move { s.get(&k).await }, "None", |a| matches!(a, Ok(None)))
        .await;

    let counter = Key::new(&space, "counter")?;
    for (delta, then) in [(i64::MAX, 1), (i64::MIN, -1)] {
        let (s, k) = (store.clone(), counter.clone());
        let _ = s.delete(&k, DeleteCondition::Always).await?;
        let call = async move { s.increment(&k, delta, None).await };
        let what = format!("increment by {delta} from absent");
        findings
            .expect(&what, call, format!("the counter {delta}").as_str(), |a| matches!(a, Ok(c) if c.value == delta))
            .await;
        let (s, k) = (store.clone(), counter.clone());
        let call = async move { s.increment(&k, then, None).await };
        let what = format!("increment by {then} past {delta}");
        findings.expect(&what, call, "Overflow", |a| matches!(a, Err(StateError::Overflow { .. }))).await;
    }

    if cx.capabilities.features.scan {
        for limit in [0, usize::MAX] {
            let (s, sp) = (store.clone(), space.clone());
            let call = async move { s.scan(&sp, "", None, limit).await };
            findings.expect(&format!("scan with limit {limit}"), call, "InvalidArgument", invalid_argument).await;
        }
    }
    Ok(())
}

async fn lock_arguments(cx: &Context, findings: &mut Findings) -> std::result::Result<(), Failure> {
    let locks = &cx.backend.locks;
    let name = cx.lock_name("extremes");
    let second = Duration::from_secs(1);

    let (l, n) = (locks.clone(), name.clone());
    let call = async move { l.try_acquire(&n, Duration::MAX).await };
    findings.expect("try_acquire with a TTL of Duration::MAX", call, "InvalidArgument(ttl)", invalid_ttl).await;
    let (l, n) = (locks.clone(), name.clone());
    let call = async move { l.acquire(&n, Duration::MAX, second).await };
    findings.expect("acquire with a TTL of Duration::MAX", call, "InvalidArgument(ttl)", invalid_ttl).await;

    // "Wait forever" is a valid timeout: on a free lock it acquires at once.
    let (l, n) = (locks.clone(), name.clone());
    let call = async move { l.acquire(&n, Duration::from_secs(30), Duration::MAX).await };
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

    let (l, mut held) = (locks.clone(), lease.clone());
    let call = async move { l.extend(&mut held, Duration::MAX).await };
    findings.expect("extend with a TTL of Duration::MAX", call, "InvalidArgument(ttl)", invalid_ttl).await;
    let (l, held) = (locks.clone(), lease.clone());
    let call = async move { l.is_held(&held).await };
    findings.expect("is_held after a refused extend", call, "true", |a| matches!(a, Ok(true))).await;

    let (l, mut held) = (locks.clone(), lease.clone());
    let call = async move { l.extend(&mut held, MAX_TTL).await.map(|()| held) };
    if let Some(extended) = findings.expect("extend with a TTL of MAX_TTL", call, "Ok", |a| a.is_ok()).await {
        lease = extended;
    }
    locks.release(&lease).await?;
    Ok(())
}
