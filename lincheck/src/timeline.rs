//! The operations of one partition, numbered in call order, and their calls
//! and returns merged into one time-ordered list of events.

use super::history::{History, Operation};

/// Whether an event is the start or the end of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum EventKind {
    // Declared before `Return` so that, at equal instants, calls sort first:
    // an operation returning at the instant another is called then counts as
    // concurrent with it, the reading that rejects fewer histories.
    /// The client issued the operation.
    Call,
    /// The client received the operation's output.
    Return,
}

/// A call or return of operation `op` (an index into [`Timeline::operations`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Event {
    /// Which operation.
    pub(crate) op: usize,
    /// Call or return.
    pub(crate) kind: EventKind,
}

/// One partition of a history, ready for the search.
///
/// Operations are numbered in call order, so the operations called within
/// any prefix of [`events`](Timeline::events) are exactly `0..k` for some `k`.
/// Indeterminate operations have a call event and no return event.
#[derive(Debug)]
pub(crate) struct Timeline<'h, I, O> {
    operations: Vec<&'h Operation<I, O>>,
    history_indices: Vec<usize>,
    events: Vec<Event>,
}

impl<'h, I, O> Timeline<'h, I, O> {
    /// The timeline of the operations of `history` at `indices`.
    /// Out-of-range indices are skipped.
    pub(crate) fn new(history: &'h History<I, O>, indices: &[usize]) -> Self {
        let all = history.operations();
        let mut numbered: Vec<(usize, &'h Operation<I, O>)> =
            indices.iter().filter_map(|&index| all.get(index).map(|op| (index, op))).collect();
        numbered.sort_by_key(|(index, op)| (op.call, *index));
        let events = sorted_events(numbered.iter().map(|(_, op)| *op));
        let (history_indices, operations) = numbered.into_iter().unzip();
        Timeline { operations, history_indices, events }
    }

    /// The operations, in call order.
    pub(crate) fn operations(&self) -> &[&'h Operation<I, O>] {
        &self.operations
    }

    /// Where operation `op` sits in the original history.
    pub(crate) fn history_index(&self, op: usize) -> Option<usize> {
        self.history_indices.get(op).copied()
    }

    /// All calls and returns, in time order.
    pub(crate) fn events(&self) -> &[Event] {
        &self.events
    }
}

/// The calls and returns of `operations` (already numbered in call order),
/// sorted by instant, calls before returns at equal instants, then by number.
fn sorted_events<'h, I: 'h, O: 'h>(operations: impl Iterator<Item = &'h Operation<I, O>>) -> Vec<Event> {
    let mut timed = Vec::new();
    for (op, operation) in operations.enumerate() {
        timed.push((operation.call, EventKind::Call, op));
        if let Some(returned) = operation.return_at() {
            timed.push((returned, EventKind::Return, op));
        }
    }
    timed.sort_unstable();
    timed.into_iter().map(|(_, kind, op)| Event { op, kind }).collect()
}
