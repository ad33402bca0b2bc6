//! Property 1: sequential model equivalence.
//!
//! proptest generates operation sequences over a small key space (two
//! spaces whose names differ by one character, ids with wildcard
//! characters and a LIKE pair, every operation, condition and TTL kind,
//! versions 0 and `u64::MAX` on live keys too, counters near the `i64`
//! limits) and runs each against the backend and the model. The first
//! divergence fails the case and proptest shrinks it to a minimal sequence.
//! TTLs here are long (an hour) so nothing expires mid-sequence; expiry
//! itself is property 8's job.
//!
//! One counterexample must not hide the others: a store whose every
//! increment reports a wrong version would fail almost every sequence on
//! that alone. So after a counterexample the search goes on with the
//! [kind](OpKind) of its failing operation left out (the other operations
//! in it only set the stage, and stay), until a search finds nothing more
//! or every kind is out, and each counterexample is reported.
//! Operations of features the backend does not declare are never generated.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};
use state_api::{Condition, DeleteCondition, Features, Version};

use crate::exec::execute;
use crate::kit::{Context, Failure, Outcome as PropertyOutcome};
use crate::model::{KeyName, Op, StoreModel, matches};
use crate::supported::supports;

const HOUR_MS: u64 = 3_600_000;

/// The kinds of operation; after a counterexample, the kind of its
/// failing operation is left out of the next search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum OpKind {
    /// `get`.
    Get,
    /// `put(Always)`.
    PutAlways,
    /// `put(IfAbsent)`.
    PutIfAbsent,
    /// `put(IfVersion(_))`.
    PutIfVersion,
    /// `delete(Always)`.
    DeleteAlways,
    /// `delete(IfVersion(_))`.
    DeleteIfVersion,
    /// `increment`.
    Increment,
    /// A whole scan.
    Scan,
    /// A lock operation (never generated here; histories record them).
    Lock,
}

impl OpKind {
    /// How many kinds there are.
    const COUNT: usize = 9;

    /// The kind of `op`.
    pub fn of(op: &Op) -> OpKind {
        match op {
            Op::Get { .. } => OpKind::Get,
            Op::Put { condition: Condition::Always, .. } => OpKind::PutAlways,
            Op::Put { condition: Condition::IfAbsent, .. } => OpKind::PutIfAbsent,
            Op::Put { condition: Condition::IfVersion(_), .. } => OpKind::PutIfVersion,
            Op::Delete { condition: DeleteCondition::Always, .. } => OpKind::DeleteAlways,
            Op::Delete { condition: DeleteCondition::IfVersion(_), .. } => OpKind::DeleteIfVersion,
            Op::Increment { .. } => OpKind::Increment,
            Op::Scan { .. } => OpKind::Scan,
            // A fenced write is that write with a fence.
            Op::Fenced { op, .. } => OpKind::of(op),
            Op::Acquire { .. } | Op::Release { .. } => OpKind::Lock,
        }
    }
}

/// Versions a condition names: the ones a short sequence reaches, and the
/// extremes no write produces — 0 (a store that reads "absent" as version
/// 0 would create the key) and `u64::MAX` (one used as "any version").
fn version() -> impl Strategy<Value = Version> {
    prop_oneof![4 => (1u64..4).prop_map(Version), 1 => Just(Version(0)), 1 => Just(Version(u64::MAX))]
}

/// Generates one operation on the space labels `a`/`ab`; the caller maps
/// labels to this run's real spaces.
fn op_strategy() -> impl Strategy<Value = Op> {
    let space = prop_oneof![Just("a".to_owned()), Just("ab".to_owned())];
    let id =
        prop_oneof![Just("k"), Just("k2"), Just("k%"), Just("x_y"), Just("xay"), Just("k*")].prop_map(str::to_owned);
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
    let condition =
        prop_oneof![Just(Condition::Always), Just(Condition::IfAbsent), version().prop_map(Condition::IfVersion)];
    let delete_condition = prop_oneof![Just(DeleteCondition::Always), version().prop_map(DeleteCondition::IfVersion)];
    let ttl = prop_oneof![Just(None), Just(Some(HOUR_MS))];
    let delta = prop_oneof![Just(1i64), Just(-1), Just(5), Just(i64::MAX), Just(i64::MIN)];
    prop_oneof![
        3 => key.clone().prop_map(|key| Op::Get { key }),
        4 => (key.clone(), value, condition, ttl.clone())
            .prop_map(|(key, value, condition, ttl_ms)| Op::Put { key, value, condition, ttl_ms }),
        1 => (key.clone(), delete_condition).prop_map(|(key, condition)| Op::Delete { key, condition }),
        3 => (key, delta, ttl).prop_map(|(key, delta, ttl_ms)| Op::Increment { key, delta, ttl_ms }),
        1 => (space, prop_oneof![Just(""), Just("k"), Just("k%"), Just("x_")], 1usize..4)
            .prop_map(|(space, prefix, limit)| Op::Scan { space, prefix: prefix.to_owned(), limit }),
    ]
}

/// Sequences of operations the backend's features allow, without the
/// kinds in `excluded`.
fn sequences(features: Features, excluded: BTreeSet<OpKind>) -> impl Strategy<Value = Vec<Op>> {
    proptest::collection::vec(op_strategy(), 1..40).prop_map(move |ops| {
        ops.into_iter().filter(|op| supports(&features, op) && !excluded.contains(&OpKind::of(op))).collect()
    })
}

/// Maps the generated labels to spaces unique to this case.
fn place(op: &Op, case_space: &dyn Fn(&str) -> String) -> Op {
    let mut op = op.clone();
    match &mut op {
        Op::Get { key }
        | Op::Put { key, .. }
        | Op::Delete { key, .. }
        | Op::Increment { key, .. }
        | Op::Acquire { key, .. }
        | Op::Release { key, .. } => {
            key.space = case_space(&key.space);
        }
        Op::Fenced { op: inner, .. } => **inner = place(inner, case_space),
        Op::Scan { space, .. } => *space = case_space(space),
    }
    op
}

/// Runs property 1.
pub async fn run(cx: &Context) -> PropertyOutcome {
    let cases = u32::try_from(cx.scale.of(100)).unwrap_or(u32::MAX);
    let handle = tokio::runtime::Handle::current();
    let cx = cx.clone();
    // proptest's runner is synchronous: run it on a blocking thread that
    // drives each case on the runtime.
    let (counterexamples, searches) = tokio::task::spawn_blocking(move || search_all(&cx, &handle, cases))
        .await
        .map_err(|e| Failure(format!("the property's runner died: {e}")))?;
    match counterexamples.len() {
        0 => Ok(u64::from(cases)),
        1 => Err(Failure(counterexamples.concat())),
        n => Err(Failure(format!(
            "{n} distinct counterexamples in {searches} searches (after each, the kind of its failing operation \
             was left out of the next search):\n\n{}",
            counterexamples.iter().enumerate().map(|(i, c)| format!("{}. {c}", i + 1)).collect::<Vec<_>>().join("\n\n")
        ))),
    }
}

/// Searches for counterexamples until a search of `cases` sequences finds
/// none or every kind of operation has been left out; returns each
/// counterexample, described, and the number of searches.
fn search_all(cx: &Context, handle: &tokio::runtime::Handle, cases: u32) -> (Vec<String>, usize) {
    let tolerance_ms = u64::try_from(cx.clock_tolerance().as_millis()).unwrap_or(u64::MAX);
    // Numbers every case across searches, so each runs in spaces of its own.
    let counter = AtomicU64::new(0);
    let mut excluded = BTreeSet::new();
    let mut counterexamples = Vec::new();
    let mut search = 0;
    loop {
        search += 1;
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        let strategy = sequences(cx.capabilities.features, excluded.clone());
        let result = runner.run(&strategy, |ops| {
            let case = counter.fetch_add(1, Ordering::Relaxed);
            let case_space = |label: &str| cx.space(&format!("seq{case}-{label}"));
            handle.block_on(check_sequence(cx, &ops, &case_space, tolerance_ms))
        });
        match result {
            Ok(()) => return (counterexamples, search),
            Err(TestError::Abort(reason)) => {
                counterexamples.push(format!("the search was aborted: {reason}"));
                return (counterexamples, search);
            }
            Err(TestError::Fail(reason, ops)) => {
                let listing: Vec<String> = ops.iter().enumerate().map(|(i, op)| format!("  {i:>2}: {op:?}")).collect();
                counterexamples
                    .push(format!("{reason}\nminimal failing sequence (space labels a/ab):\n{}", listing.join("\n")));
                // A minimal sequence ends with its failing operation:
                // shrinking drops every operation after the first
                // divergence. Its kind was not excluded yet (it was
                // generated), so every search leaves out one kind more.
                match ops.last().map(OpKind::of) {
                    Some(failing) if excluded.insert(failing) && excluded.len() < OpKind::COUNT => {}
                    _ => return (counterexamples, search),
                }
            }
        }
    }
}

async fn check_sequence(
    cx: &Context,
    ops: &[Op],
    case_space: &dyn Fn(&str) -> String,
    tolerance_ms: u64,
) -> Result<(), TestCaseError> {
    let mut model = StoreModel::new();
    let started = Instant::now();
    // The model places each operation at its call; the store applies it
    // somewhere before its return. A remaining TTL read back can differ
    // from the model's by up to the duration of the write that set it or
    // of the read, so the slowest operation so far widens the tolerance:
    // a stalled machine makes the check weaker, never wrong.
    let mut slowest_ms = 0;
    for (index, op) in ops.iter().enumerate() {
        let placed = place(op, case_space);
        let now = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let expected = model.apply(&placed, now);
        let observed = execute(cx.backend.store.as_ref(), &placed).await;
        let took = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX).saturating_sub(now);
        slowest_ms = slowest_ms.max(took.saturating_add(1));
        if !matches(&expected, &observed, tolerance_ms.saturating_add(slowest_ms)) {
            return Err(TestCaseError::fail(format!(
                "operation {index} ({op:?}) returned {observed:?}, the contract says {expected:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Outcome;

    #[test]
    fn the_model_refuses_ttls_outside_the_contract_and_changes_nothing() {
        let key = KeyName::new("s", "k");
        let put = |ttl_ms| Op::Put {
            key: key.clone(),
            value: Bytes::from_static(b"v"),
            condition: Condition::Always,
            ttl_ms,
        };
        let too_long = u64::try_from(state_api::MAX_TTL.as_millis()).unwrap_or(u64::MAX) + 1;
        let mut model = StoreModel::new();
        for ttl_ms in [Some(0), Some(too_long)] {
            assert_eq!(model.apply(&put(ttl_ms), 0), Outcome::Failed(crate::model::ErrorKind::InvalidArgument));
            let increment = Op::Increment { key: key.clone(), delta: 1, ttl_ms };
            assert_eq!(model.apply(&increment, 0), Outcome::Failed(crate::model::ErrorKind::InvalidArgument));
        }
        assert_eq!(model.apply(&Op::Get { key: key.clone() }, 0), Outcome::Got(None));
        assert_eq!(model.apply(&put(Some(1)), 0), Outcome::Written(1));
    }
}
