//! Property 1: sequential model equivalence.
//!
//! proptest generates operation sequences over a small key space (two
//! spaces whose names differ by one character, ids with wildcard
//! characters, every operation, condition and TTL kind, counters near the
//! `i64` limits) and runs each against the backend and the model. The first
//! divergence fails the case and proptest shrinks it to a minimal sequence.
//! TTLs here are long (an hour) so nothing expires mid-sequence; expiry
//! itself is property 8's job.

use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use state_api::{Condition, DeleteCondition, Version};

use crate::exec::execute;
use crate::kit::{Context, Failure, Outcome as PropertyOutcome};
use crate::model::{KeyName, Op, StoreModel, matches};

const HOUR_MS: u64 = 3_600_000;

/// Generates one operation on the space labels `a`/`ab`; the caller maps
/// labels to this run's real spaces.
fn op_strategy() -> impl Strategy<Value = Op> {
    let space = prop_oneof![Just("a".to_owned()), Just("ab".to_owned())];
    let id = prop_oneof![Just("k"), Just("k2"), Just("k%"), Just("x_y"), Just("k*")].prop_map(str::to_owned);
    let key = (space.clone(), id).prop_map(|(s, i)| KeyName::new(s, i));
    let value = prop_oneof![
        Just(Bytes::from_static(b"")),
        Just(Bytes::from_static(b"v1")),
        Just(Bytes::from_static(b"v2")),
        Just(Bytes::from_static(b"7")),
        Just(Bytes::from_static(b"-3")),
        Just(Bytes::from(i64::MAX.to_string())),
        Just(Bytes::from_static(b"+1")),
        Just(Bytes::from_static(&[0, 255, 10])),
    ];
    let condition = prop_oneof![
        Just(Condition::Always),
        Just(Condition::IfAbsent),
        (1u64..4).prop_map(|v| Condition::IfVersion(Version(v))),
    ];
    let ttl = prop_oneof![Just(None), Just(Some(HOUR_MS))];
    let delta = prop_oneof![Just(1i64), Just(-1), Just(5), Just(i64::MAX), Just(i64::MIN)];
    prop_oneof![
        3 => key.clone().prop_map(|key| Op::Get { key }),
        4 => (key.clone(), value, condition, ttl.clone())
            .prop_map(|(key, value, condition, ttl_ms)| Op::Put { key, value, condition, ttl_ms }),
        1 => (key.clone(), prop_oneof![Just(DeleteCondition::Always), (1u64..4).prop_map(|v| DeleteCondition::IfVersion(Version(v)))])
            .prop_map(|(key, condition)| Op::Delete { key, condition }),
        3 => (key, delta, ttl).prop_map(|(key, delta, ttl_ms)| Op::Increment { key, delta, ttl_ms }),
        1 => (space, prop_oneof![Just(""), Just("k"), Just("k%"), Just("x_")], 1usize..4)
            .prop_map(|(space, prefix, limit)| Op::Scan { space, prefix: prefix.to_owned(), limit }),
    ]
}

/// Maps the generated labels to spaces unique to this case.
fn place(op: &Op, case_space: &dyn Fn(&str) -> String) -> Op {
    let mut op = op.clone();
    match &mut op {
        Op::Get { key } | Op::Put { key, .. } | Op::Delete { key, .. } | Op::Increment { key, .. } => {
            key.space = case_space(&key.space);
        }
        Op::Scan { space, .. } => *space = case_space(space),
    }
    op
}

/// Runs property 1.
pub async fn run(cx: &Context) -> PropertyOutcome {
    let cases = u32::try_from(cx.scale.of(100)).unwrap_or(u32::MAX);
    let scan_supported = cx.capabilities.features.scan;
    let tolerance_ms = u64::try_from(cx.clock_tolerance().as_millis()).unwrap_or(u64::MAX);
    let handle = tokio::runtime::Handle::current();
    let cx = cx.clone();
    // proptest's runner is synchronous: run it on a blocking thread that
    // drives each case on the runtime.
    let result = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        let counter = std::sync::atomic::AtomicU64::new(0);
        let strategy = proptest::collection::vec(op_strategy(), 1..40).prop_map(move |ops| {
            ops.into_iter().filter(|op| scan_supported || !matches!(op, Op::Scan { .. })).collect::<Vec<_>>()
        });
        runner
            .run(&strategy, |ops| {
                let case = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let case_space = |label: &str| cx.space(&format!("seq{case}-{label}"));
                handle.block_on(check_sequence(&cx, &ops, &case_space, tolerance_ms))
            })
            .map(|()| u64::from(cases))
    })
    .await
    .map_err(|e| Failure(format!("the property's runner died: {e}")))?;
    result.map_err(|error| match error {
        TestError::Fail(reason, ops) => {
            let listing: Vec<String> = ops.iter().enumerate().map(|(i, op)| format!("  {i:>2}: {op:?}")).collect();
            Failure(format!("{reason}\nminimal failing sequence (space labels a/ab):\n{}", listing.join("\n")))
        }
        TestError::Abort(reason) => Failure(format!("aborted: {reason}")),
    })
}

async fn check_sequence(
    cx: &Context,
    ops: &[Op],
    case_space: &dyn Fn(&str) -> String,
    tolerance_ms: u64,
) -> Result<(), TestCaseError> {
    let mut model = StoreModel::new();
    let started = Instant::now();
    for (index, op) in ops.iter().enumerate() {
        let placed = place(op, case_space);
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let expected = model.apply(&placed, now);
        let observed = execute(cx.backend.store.as_ref(), &placed).await;
        if !matches(&expected, &observed, tolerance_ms) {
            return Err(TestCaseError::fail(format!(
                "operation {index} ({op:?}) returned {observed:?}, the contract says {expected:?}"
            )));
        }
    }
    Ok(())
}
