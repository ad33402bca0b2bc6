//! Explaining a failed check: the shortest prefix of the failing partition
//! that already cannot be linearized.
//!
//! A prefix here is the history as it stood at some instant: the operations
//! called so far, where those that had not returned yet count as pending
//! (indeterminate). Every prefix of a linearizable history is linearizable,
//! so the prefixes that cannot be linearized are exactly those from some
//! instant on. That instant is always a return: a call only adds a pending
//! operation, which a linearization may leave out. The operation returning
//! there is the one whose output nothing can explain.
//!
//! Failing searches are the expensive ones (they must exhaust the search
//! space), so the search for that return avoids them: the failed check of
//! the whole partition already tells how many leading returns some partial
//! linearization covered, so the prefix up to there is known to pass, and
//! the first failing prefix is usually the very next one. The search gallops
//! forward from there and bisects once it has overshot.
//!
//! Everything before the culprit's return is then the longest prefix that
//! can be linearized; one more search finds a linearization of it, which
//! shows how far the operations can be explained and in which states.

use std::fmt;

use super::budget::Budget;
use super::model::Model;
use super::search::{Search, Verdict, search};
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
    /// A linearization of the longest prefix that can be linearized
    /// (everything before the culprit returns): the operations that take
    /// effect in it, in their order. Operations still pending there appear
    /// only where taking effect helps explain the others. The culprit is left
    /// out if the others can be explained without it; otherwise it appears
    /// taking effect with an output other than the one observed. `None` when
    /// the prefix is not known to be the shortest, or the check's limits ran
    /// out before a linearization was found.
    pub linearization: Option<Vec<LinearizationStep>>,
}

/// One operation of an [`Explanation`]'s linearization.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LinearizationStep {
    /// The operation, an index into [`Explanation::operations`].
    pub operation: usize,
    /// The model state it leaves behind (its `Debug` rendering).
    pub state: String,
}

/// One operation of an [`Explanation`]'s prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
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

/// Explains why the partition `timeline` is not linearizable, given that
/// its failed search covered the first `cleared` returns; spends from
/// `budget`.
pub(crate) fn explain<M: Model>(
    model: &M,
    timeline: &Timeline<'_, M::Input, M::Output>,
    partition: Option<String>,
    cleared: usize,
    budget: &mut Budget,
) -> Explanation {
    let events = timeline.events();
    let prefixes = Prefixes::new(events);
    let (returns, shortest) = prefixes.shortest_failing(model, timeline, cleared, budget);
    let prefix = prefixes.up_to(returns);
    let culprit = prefix.last().map_or(0, |event| event.op);
    let linearization = shortest.then(|| linearize_before(model, timeline, prefix, budget)).flatten();
    let operations = describe_prefix(model, timeline, prefix);
    let partition_len = timeline.operations().len();
    Explanation { partition, partition_len, operations, culprit, shortest, linearization }
}

/// A linearization of `prefix` without its last event, the culprit's
/// return: without the culprit if possible, else with it pending.
fn linearize_before<M: Model>(
    model: &M,
    timeline: &Timeline<'_, M::Input, M::Output>,
    prefix: &[Event],
    budget: &mut Budget,
) -> Option<Vec<LinearizationStep>> {
    let (culprit_return, before) = prefix.split_last()?;
    let without_culprit: Vec<Event> = before.iter().filter(|event| event.op != culprit_return.op).copied().collect();
    linearize(model, timeline, &without_culprit, budget).or_else(|| linearize(model, timeline, before, budget))
}

/// A linearization of the operations called within `events`, or `None` if
/// there is none or the budget runs out first.
fn linearize<M: Model>(
    model: &M,
    timeline: &Timeline<'_, M::Input, M::Output>,
    events: &[Event],
    budget: &mut Budget,
) -> Option<Vec<LinearizationStep>> {
    let mut search = Search::new(model, timeline.operations(), events);
    search.resume(budget, u64::MAX);
    let steps = search.linearization()?;
    Some(
        steps
            .into_iter()
            .map(|(operation, state)| LinearizationStep { operation, state: format!("{state:?}") })
            .collect(),
    )
}

/// The prefixes of a partition's events that end just after a return.
struct Prefixes<'e> {
    events: &'e [Event],
    /// `ends[k - 1]` is the length of the prefix ending at the `k`-th return.
    ends: Vec<usize>,
}

impl<'e> Prefixes<'e> {
    fn new(events: &'e [Event]) -> Self {
        let ends = events
            .iter()
            .enumerate()
            .filter(|(_, event)| event.kind == EventKind::Return)
            .map(|(position, _)| position + 1)
            .collect();
        Prefixes { events, ends }
    }

    /// The events up to and including the `returns`-th return (all events
    /// if there are fewer returns).
    fn up_to(&self, returns: usize) -> &'e [Event] {
        let end = returns.checked_sub(1).and_then(|index| self.ends.get(index).copied()).unwrap_or(self.events.len());
        self.events.get(..end).unwrap_or(self.events)
    }

    /// The number of returns in the shortest failing prefix, and whether it
    /// is known to be the shortest (it is not if the budget ran out).
    ///
    /// Known on entry: the prefix up to return `cleared` passes, and the
    /// whole partition fails, as does the prefix up to its last return (the
    /// operations called after it are all pending).
    fn shortest_failing<M: Model>(
        &self,
        model: &M,
        timeline: &Timeline<'_, M::Input, M::Output>,
        cleared: usize,
        budget: &mut Budget,
    ) -> (usize, bool) {
        // Invariant: prefix `good` passes, prefix `bad` fails.
        let (mut good, mut bad) = (cleared, self.ends.len());
        let mut stride = Some(1);
        while bad > good + 1 {
            // Gallop (strides 1, 2, 4, ...) until a prefix fails, then bisect.
            let probe = match stride {
                Some(stride) => (good + stride).min(bad - 1),
                None => good + (bad - good) / 2,
            };
            match search(model, timeline.operations(), self.up_to(probe), budget) {
                Verdict::Linearizable => {
                    good = probe;
                    stride = stride.map(|stride| stride * 2);
                }
                Verdict::NotLinearizable { cleared } => {
                    bad = probe;
                    good = good.max(cleared);
                    stride = None;
                }
                Verdict::OutOfBudget(_) => return (bad, false),
            }
        }
        (bad, true)
    }
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
