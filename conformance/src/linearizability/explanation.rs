//! Explaining a failed check: the shortest prefix of the failing partition
//! that already cannot be linearized.
//!
//! A prefix here is the history as it stood at some instant: the operations
//! called so far, where those that had not returned yet count as pending
//! (indeterminate). Every prefix of a linearizable history is linearizable,
//! so the prefixes that cannot be linearized are exactly those from some
//! instant on, and a binary search over the partition's return events finds
//! the first such instant. That instant is always a return: a call only adds
//! a pending operation, which a linearization may leave out. The operation
//! returning there is the one whose output nothing can explain.

use std::fmt;

use super::budget::Budget;
use super::model::Model;
use super::search::{Verdict, search};
use super::timeline::{Event, EventKind, Timeline};

/// Why a partition is not linearizable: its shortest failing prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Explanation {
    /// The failing partition's name, `None` when the history was checked
    /// whole.
    pub partition: Option<String>,
    /// How many operations the whole partition has.
    pub partition_len: usize,
    /// The operations of the prefix, in call order.
    pub operations: Vec<ExplainedOperation>,
    /// Index into `operations` of the operation whose return makes the
    /// prefix impossible to linearize.
    pub culprit: usize,
    /// Whether the prefix is known to be the shortest. It is not when the
    /// check's limits ran out while shortening it; it is then still a prefix
    /// that cannot be linearized.
    pub shortest: bool,
}

/// One operation of an [`Explanation`]'s prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExplainedOperation {
    /// Its index in the checked [`History`](super::History)'s operations.
    pub history_index: usize,
    /// The client that issued it.
    pub client: u64,
    /// The model's rendering of its input and, unless it is pending, output.
    pub description: String,
    /// Its call instant.
    pub call: u64,
    /// Its return instant, or `None` if it is pending at the end of the
    /// prefix (it returned later, or never).
    pub returned: Option<u64>,
}

/// Explains why the partition `timeline` (already known not to be
/// linearizable) is not, spending from `budget`.
pub(crate) fn explain<M: Model>(
    model: &M,
    timeline: &Timeline<'_, M::Input, M::Output>,
    partition: Option<String>,
    budget: &mut Budget,
) -> Explanation {
    let events = timeline.events();
    let (prefix_len, shortest) = shortest_failing_prefix(model, timeline, budget);
    let prefix = events.get(..prefix_len).unwrap_or(events);
    let culprit = prefix.last().map_or(0, |event| event.op);
    let operations = describe_prefix(model, timeline, prefix);
    Explanation { partition, partition_len: timeline.operations().len(), operations, culprit, shortest }
}

/// The length, in events, of the shortest prefix of the timeline's events
/// that cannot be linearized, and whether it is known to be the shortest.
fn shortest_failing_prefix<M: Model>(
    model: &M,
    timeline: &Timeline<'_, M::Input, M::Output>,
    budget: &mut Budget,
) -> (usize, bool) {
    let events = timeline.events();
    // Candidate prefixes end just after a return.
    let ends: Vec<usize> = events
        .iter()
        .enumerate()
        .filter(|(_, event)| event.kind == EventKind::Return)
        .map(|(position, _)| position + 1)
        .collect();
    // Invariant: the prefix ending at `ends[good - 1]` (or the empty prefix
    // when `good` is 0) can be linearized; the one ending at `ends[bad - 1]`
    // cannot. The whole timeline is known to fail, and it is equivalent to
    // the prefix ending at its last return (later calls are all pending).
    let (mut good, mut bad) = (0, ends.len());
    while bad - good > 1 {
        let middle = good + (bad - good) / 2;
        let end = ends.get(middle - 1).copied().unwrap_or(events.len());
        let prefix = events.get(..end).unwrap_or(events);
        match search(model, timeline.operations(), prefix, budget) {
            Verdict::Linearizable => good = middle,
            Verdict::NotLinearizable => bad = middle,
            Verdict::OutOfBudget => return (end_of(&ends, bad, events), false),
        }
    }
    (end_of(&ends, bad, events), true)
}

/// The event count of the prefix ending at the `count`-th return.
fn end_of(ends: &[usize], count: usize, events: &[Event]) -> usize {
    count.checked_sub(1).and_then(|index| ends.get(index).copied()).unwrap_or(events.len())
}

/// The operations called within `prefix`, as the prefix sees them.
fn describe_prefix<M: Model>(
    model: &M,
    timeline: &Timeline<'_, M::Input, M::Output>,
    prefix: &[Event],
) -> Vec<ExplainedOperation> {
    let called = prefix.iter().filter(|event| event.kind == EventKind::Call).count();
    let mut returned = vec![None; called];
    for event in prefix.iter().filter(|event| event.kind == EventKind::Return) {
        let at = timeline.operations().get(event.op).and_then(|op| op.return_at());
        if let Some(slot) = returned.get_mut(event.op) {
            *slot = at;
        }
    }
    // Operations are numbered in call order, so those called within the
    // prefix are exactly the first `called`.
    let operations = timeline.operations().iter().take(called);
    operations
        .zip(returned)
        .enumerate()
        .map(|(op, (operation, returned))| {
            let output = returned.and(operation.output());
            ExplainedOperation {
                history_index: timeline.history_index(op).unwrap_or(op),
                client: operation.client,
                description: model.describe(&operation.input, output),
                call: operation.call,
                returned,
            }
        })
        .collect()
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let subject = match &self.partition {
            Some(name) => format!("partition {name:?}"),
            None => "the history".to_owned(),
        };
        let culprit = self.culprit + 1;
        writeln!(
            f,
            "{subject}: its first {} of {} operations (in call order) cannot be \
             linearized once operation {culprit} returns;",
            self.operations.len(),
            self.partition_len,
        )?;
        if self.shortest {
            writeln!(f, "every shorter prefix can be (pending = not returned yet).")?;
        } else {
            writeln!(
                f,
                "(a shorter prefix may fail too: the check's limits ran out while \
                 shortening it; pending = not returned yet)"
            )?;
        }
        writeln!(f, "      op  client              call            return  operation")?;
        for (index, operation) in self.operations.iter().enumerate() {
            let marker = if index == self.culprit { "->" } else { "  " };
            let returned = operation.returned.map_or_else(|| "pending".to_owned(), |at| at.to_string());
            writeln!(
                f,
                "  {marker}{:>4}  {:>6}  {:>16}  {:>16}  {}",
                index + 1,
                operation.client,
                operation.call,
                returned,
                operation.description
            )?;
        }
        Ok(())
    }
}
