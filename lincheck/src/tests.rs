//! Small hand-written histories that pin down what the checker accepts.

use super::{
    CheckOptions, CheckResult, History, KeyValue, KvInput, KvOutput, Limit, Model, Operation, Register, RegisterInput,
    RegisterOutput, check,
};

use std::time::{Duration, Instant};

use RegisterInput::{Read, Write};

fn read(client: u64, value: Option<i64>, call: u64, returned: u64) -> Operation<RegisterInput, RegisterOutput> {
    Operation::returned(client, Read, RegisterOutput::Read(value), call, returned)
}

fn write(client: u64, value: i64, call: u64, returned: u64) -> Operation<RegisterInput, RegisterOutput> {
    Operation::returned(client, Write(value), RegisterOutput::Write, call, returned)
}

fn history<I, O>(operations: impl IntoIterator<Item = Operation<I, O>>) -> History<I, O> {
    let mut history = History::new();
    for operation in operations {
        history.push(operation).unwrap();
    }
    history
}

fn check_register(operations: Vec<Operation<RegisterInput, RegisterOutput>>) -> CheckResult {
    check(&Register, &history(operations), &CheckOptions::default())
}

#[test]
fn an_empty_history_is_linearizable() {
    assert_eq!(check_register(vec![]), CheckResult::Linearizable);
}

#[test]
fn reading_a_value_never_written_is_not_linearizable() {
    let result = check_register(vec![read(0, Some(7), 0, 10)]);
    let CheckResult::NotLinearizable(explanation) = result else {
        panic!("expected a violation, got {result:?}");
    };
    assert_eq!(explanation.operations.len(), 1);
    assert_eq!(explanation.culprit, 0);
    assert!(explanation.shortest);
}

#[test]
fn a_read_concurrent_with_a_write_may_see_either_value() {
    let old = check_register(vec![write(0, 1, 10, 20), read(1, None, 0, 30)]);
    let new = check_register(vec![write(0, 1, 10, 20), read(1, Some(1), 0, 30)]);
    assert!(old.is_linearizable());
    assert!(new.is_linearizable());
}

#[test]
fn a_read_after_a_write_returned_must_see_it() {
    let result = check_register(vec![write(0, 1, 0, 10), write(1, 2, 20, 30), read(2, Some(1), 40, 50)]);
    let CheckResult::NotLinearizable(explanation) = result else {
        panic!("expected a violation, got {result:?}");
    };
    assert_eq!(explanation.partition, None);
    assert_eq!(explanation.operations.len(), 3);
    assert_eq!(explanation.culprit, 2, "the stale read is to blame");
    assert!(explanation.to_string().contains("read: 1"));
}

#[test]
fn operations_touching_at_the_same_instant_count_as_concurrent() {
    // The write returns at 10, the instant the read is called: the read may
    // still be ordered first.
    assert!(check_register(vec![write(0, 1, 0, 10), read(1, None, 10, 20)]).is_linearizable());
}

#[test]
fn an_indeterminate_write_is_assumed_to_have_happened_when_a_read_sees_it() {
    let result = check_register(vec![Operation::indeterminate(0, Write(1), 0), read(1, Some(1), 10, 20)]);
    assert!(result.is_linearizable());
}

#[test]
fn an_indeterminate_write_cannot_take_effect_before_its_call() {
    let result = check_register(vec![read(1, Some(1), 0, 10), Operation::indeterminate(0, Write(1), 20)]);
    assert!(!result.is_linearizable());
}

#[test]
fn an_indeterminate_write_is_assumed_not_to_have_happened_when_reads_never_see_it() {
    let result = check_register(vec![
        Operation::indeterminate(0, Write(1), 0),
        read(1, None, 10, 20),
        write(2, 2, 30, 40),
        read(1, Some(2), 50, 60),
    ]);
    assert!(result.is_linearizable());
}

/// A counter that cannot go below zero: a decrement in state 0 can never
/// take effect, whatever its outcome.
struct Floor;

impl Model for Floor {
    type State = u32;
    type Input = ();
    type Output = ();

    fn init(&self) -> u32 {
        0
    }

    fn step(&self, state: &u32, _: &(), _: &()) -> Option<u32> {
        state.checked_sub(1)
    }

    fn step_unknown(&self, state: &u32, _: &()) -> Vec<u32> {
        state.checked_sub(1).into_iter().collect()
    }
}

#[test]
fn an_indeterminate_operation_that_can_never_take_effect_is_left_out() {
    let never = history([Operation::indeterminate(0, (), 0)]);
    let impossible = history([Operation::returned(0, (), (), 0, 1)]);
    assert!(check(&Floor, &never, &CheckOptions::default()).is_linearizable());
    assert!(!check(&Floor, &impossible, &CheckOptions::default()).is_linearizable());
}

#[test]
fn the_explanation_is_the_shortest_failing_prefix_with_later_returns_pending() {
    // The read at [30, 40] cannot see 2 after 1 was written last; the write
    // called at 35 is still pending when the read returns.
    let result = check_register(vec![
        write(0, 2, 0, 10),
        write(1, 1, 15, 20),
        read(2, Some(2), 30, 40),
        write(0, 3, 35, 50),
        read(1, Some(9), 60, 70),
    ]);
    let CheckResult::NotLinearizable(explanation) = result else {
        panic!("expected a violation, got {result:?}");
    };
    assert_eq!(explanation.partition_len, 5);
    let returns: Vec<Option<u64>> = explanation.operations.iter().map(|op| op.returned).collect();
    assert_eq!(returns, vec![Some(10), Some(20), Some(40), None]);
    assert_eq!(explanation.culprit, 2);
    let linearization = explanation.linearization.expect("everything before the read returns is linearizable");
    let order: Vec<(usize, &str)> = linearization.iter().map(|step| (step.operation, step.state.as_str())).collect();
    assert_eq!(order, [(0, "Some(2)"), (1, "Some(1)")], "the pending write 3 need not take effect");
}

#[test]
fn the_culprit_is_linearized_pending_only_when_the_others_need_its_effect() {
    // The cas returned false, yet the read saw its effect: without the cas
    // the read is unexplained, with it the cas swapped.
    let cas = RegisterInput::Cas { expected: 1, new: 2 };
    let result = check_register(vec![
        write(0, 1, 0, 10),
        Operation::returned(1, cas, RegisterOutput::Cas(false), 20, 100),
        read(2, Some(2), 30, 40),
    ]);
    let CheckResult::NotLinearizable(explanation) = result else {
        panic!("expected a violation, got {result:?}");
    };
    assert_eq!(explanation.culprit, 1);
    let linearization = explanation.linearization.expect("a linearization with the cas pending");
    let order: Vec<usize> = linearization.iter().map(|step| step.operation).collect();
    assert_eq!(order, [0, 1, 2]);
}

#[test]
fn a_check_that_runs_out_of_steps_is_unknown() {
    let options = CheckOptions { step_limit: Some(1), ..CheckOptions::default() };
    let writes = (0..4).map(|client| write(client, 1, 0, 10));
    let result = check(&Register, &history(writes), &options);
    assert!(matches!(result, CheckResult::Unknown(ref why) if why.limit == Limit::Steps(1)));
}

fn get(client: u64, key: &str, value: &str, call: u64, returned: u64) -> Operation<KvInput, KvOutput> {
    let input = KvInput::Get { key: key.to_owned() };
    Operation::returned(client, input, KvOutput::Get(value.to_owned()), call, returned)
}

fn append(client: u64, key: &str, value: &str, call: u64, returned: u64) -> Operation<KvInput, KvOutput> {
    let input = KvInput::Append { key: key.to_owned(), value: value.to_owned() };
    Operation::returned(client, input, KvOutput::Append, call, returned)
}

#[test]
fn key_value_violations_name_their_partition_and_agree_with_an_unpartitioned_check() {
    let operations = history([
        append(0, "a", "x", 0, 10),
        append(1, "b", "y", 5, 15),
        get(2, "b", "y", 20, 30),
        get(3, "a", "", 40, 50),
    ]);
    let partitioned = check(&KeyValue, &operations, &CheckOptions::default());
    let whole = CheckOptions { partitioned: false, ..CheckOptions::default() };
    let unpartitioned = check(&KeyValue, &operations, &whole);
    let CheckResult::NotLinearizable(explanation) = partitioned else {
        panic!("expected a violation, got {partitioned:?}");
    };
    assert_eq!(explanation.partition.as_deref(), Some("a"));
    assert_eq!(explanation.operations.len(), 2, "only key a's operations");
    assert!(!unpartitioned.is_linearizable());
}

fn put(client: u64, key: &str, value: &str, call: u64, returned: u64) -> Operation<KvInput, KvOutput> {
    let input = KvInput::Put { key: key.to_owned(), value: value.to_owned() };
    Operation::returned(client, input, KvOutput::Put, call, returned)
}

/// Key "slow": `writers` puts, all concurrent, and a concurrent get of a
/// value none of them wrote. No order explains the get, but proving it
/// means trying every subset of the puts in every order the memo table
/// cannot merge: about `2^writers * writers` search nodes.
fn undecidable_in_time(writers: u64) -> Vec<Operation<KvInput, KvOutput>> {
    let mut operations: Vec<_> =
        (0..writers).map(|client| put(client, "slow", &format!("v{client}"), client, 1_000)).collect();
    operations.push(get(writers, "slow", "never written", 0, 2_000));
    operations
}

/// Key "fast": a get that misses a put which returned before it.
fn plainly_not_linearizable() -> Vec<Operation<KvInput, KvOutput>> {
    vec![put(100, "fast", "x", 3_000, 3_010), get(101, "fast", "", 3_020, 3_030)]
}

#[test]
fn the_slow_partition_of_the_tests_below_cannot_be_decided_in_their_limits() {
    let options = CheckOptions { step_limit: Some(200_000), ..CheckOptions::default() };
    let result = check(&KeyValue, &history(undecidable_in_time(24)), &options);
    assert!(matches!(result, CheckResult::Unknown(ref why) if why.partition.as_deref() == Some("slow")), "{result}");
}

#[test]
fn a_failing_partition_is_found_behind_one_that_cannot_be_decided_within_the_step_limit() {
    let options = CheckOptions { step_limit: Some(200_000), ..CheckOptions::default() };
    let operations = history(undecidable_in_time(24).into_iter().chain(plainly_not_linearizable()));
    let CheckResult::NotLinearizable(explanation) = check(&KeyValue, &operations, &options) else {
        panic!("expected the fast partition to fail");
    };
    assert_eq!(explanation.partition.as_deref(), Some("fast"));
    assert!(explanation.shortest);
    assert_eq!(explanation.operations[explanation.culprit].description, r#"get("fast") -> """#);
}

#[test]
fn a_failing_partition_is_found_long_before_the_time_limit_spent_on_an_undecidable_one() {
    let time_limit = Duration::from_secs(20);
    let options = CheckOptions { time_limit: Some(time_limit), ..CheckOptions::default() };
    let operations = history(undecidable_in_time(40).into_iter().chain(plainly_not_linearizable()));
    let started = Instant::now();
    let result = check(&KeyValue, &operations, &options);
    let elapsed = started.elapsed();
    assert!(
        matches!(result, CheckResult::NotLinearizable(ref why) if why.partition.as_deref() == Some("fast")),
        "{result}"
    );
    assert!(elapsed < time_limit / 4, "took {elapsed:?} of a {time_limit:?} limit");
}

#[test]
fn an_unknown_verdict_names_the_hardest_undecided_partition_and_counts_the_others() {
    let options = CheckOptions { step_limit: Some(200_000), ..CheckOptions::default() };
    let easy = [put(200, "easy", "y", 0, 10), get(201, "easy", "y", 20, 30)];
    let mut slow_too = undecidable_in_time(20);
    for operation in &mut slow_too {
        if let KvInput::Put { key, .. } | KvInput::Get { key } = &mut operation.input {
            "slow too".clone_into(key);
        }
    }
    let operations = history(easy.into_iter().chain(undecidable_in_time(24)).chain(slow_too));
    let CheckResult::Unknown(why) = check(&KeyValue, &operations, &options) else {
        panic!("expected the check to give up");
    };
    assert_eq!(why.limit, Limit::Steps(200_000));
    assert_eq!(why.undecided, 2, "the easy partition was decided");
    assert!(why.partition.is_some_and(|name| name.starts_with("slow")));
}

#[test]
fn a_history_refuses_an_operation_returning_before_its_call() {
    let mut history = History::new();
    assert!(history.push(write(0, 1, 10, 5)).is_err());
    assert!(history.is_empty());
}
