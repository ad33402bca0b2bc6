//! The Wing–Gong–Lowe depth-first search for a linearization.
//!
//! The search walks the time-ordered list of pending calls and returns. At a
//! call it tries to linearize that operation next (apply it to the model
//! state); if the model accepts, the operation's call and return are lifted
//! out of the list and the walk restarts from the front. Reaching a return
//! means the operation that returns there was not linearized before it
//! returned, which no linearization allows, so the search backtracks to the
//! most recent choice and tries the next call instead.
//!
//! Lowe's memo table makes this practical: two search nodes with the same set
//! of linearized operations and the same model state have the same future, so
//! a node already seen is never explored again.
//!
//! Indeterminate operations have no return entry, so nothing ever forces
//! them to be linearized: the search may linearize one at any point after its
//! call, or leave it out. The search succeeds once every determinate
//! operation is linearized.

use std::collections::HashMap;
use std::mem;

use super::bitset::Bitset;
use super::budget::Budget;
use super::entries::Entries;
use super::history::Operation;
use super::model::Model;
use super::timeline::Event;

/// What a search found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists.
    NotLinearizable,
    /// The budget ran out first.
    OutOfBudget,
}

/// Searches for a linearization of the operations called within `events`.
///
/// `operations` are indexed by the events' `op`; an operation whose return is
/// not among `events` is treated as indeterminate, which is what lets the
/// caller check a prefix of a history by passing a prefix of its events.
pub(crate) fn search<M: Model>(
    model: &M,
    operations: &[&Operation<M::Input, M::Output>],
    events: &[Event],
    budget: &mut Budget,
) -> Verdict {
    Search::new(model, operations, events).run(budget)
}

/// The model states an operation may lead to from one search node, in the
/// order they are tried.
enum Successors<S> {
    /// A determinate operation: at most one successor.
    One(Option<S>),
    /// An indeterminate operation: whatever the model allows.
    Many(std::vec::IntoIter<S>),
}

impl<S> Iterator for Successors<S> {
    type Item = S;

    fn next(&mut self) -> Option<S> {
        match self {
            Successors::One(state) => state.take(),
            Successors::Many(states) => states.next(),
        }
    }
}

/// A call the search may linearize next.
#[derive(Debug, Clone, Copy)]
struct Call {
    /// The call's entry in the list.
    entry: usize,
    /// The operation called.
    op: usize,
    /// Whether the operation returns within the events searched.
    determinate: bool,
}

/// A choice the search made and may have to undo: `call` was linearized in
/// state `previous`; `untried` are the other successors it could lead to.
struct Choice<S> {
    call: Call,
    previous: S,
    untried: Successors<S>,
}

/// The state of one depth-first search.
struct Search<'a, M: Model> {
    model: &'a M,
    operations: &'a [&'a Operation<M::Input, M::Output>],
    entries: Entries,
    state: M::State,
    linearized: Bitset,
    /// Determinate operations not yet linearized; the search succeeds at 0.
    unlinearized: usize,
    choices: Vec<Choice<M::State>>,
    /// Every (linearized set, state) node reached so far.
    seen: HashMap<Bitset, Vec<M::State>>,
    entries_len: usize,
}

impl<'a, M: Model> Search<'a, M> {
    fn new(model: &'a M, operations: &'a [&'a Operation<M::Input, M::Output>], events: &[Event]) -> Self {
        let entries = Entries::new(events);
        let mut unlinearized = 0;
        let mut cursor = entries.first();
        while let Some(entry) = cursor {
            if let Some((_, true)) = entries.call(entry) {
                unlinearized += 1;
            }
            cursor = entries.after(entry);
        }
        Search {
            model,
            operations,
            entries,
            state: model.init(),
            linearized: Bitset::new(operations.len()),
            unlinearized,
            choices: Vec::new(),
            seen: HashMap::new(),
            entries_len: events.len(),
        }
    }

    fn run(mut self, budget: &mut Budget) -> Verdict {
        let mut cursor = self.entries.first();
        let mut steps = 0u64; let started = std::time::Instant::now();
        let r = loop { if self.unlinearized == 0 { break Verdict::Linearizable; }
            steps += 1;
            if !budget.spend() {
                break Verdict::OutOfBudget;
            }
            let call = cursor.and_then(|entry| {
                let (op, determinate) = self.entries.call(entry)?;
                Some(Call { entry, op, determinate })
            });
            cursor = match call {
                Some(call) => self.try_call(call),
                // A return of an operation not linearized yet, or the end of
                // the list: this branch is dead.
                None => match self.backtrack() {
                    Some(cursor) => cursor,
                    None => break Verdict::NotLinearizable,
                },
            };
        };
        if std::env::var_os("LINSTATS").is_some() { eprintln!("search: {} events {steps} steps {} memo bitsets {} states {:?} -> {r:?}", self.entries_len, self.seen.len(), self.seen.values().map(|v| v.len()).sum::<usize>(), started.elapsed()); }
        r
    }

    /// Tries to linearize `call` next. Returns where the walk continues: the
    /// front of the list on success, the next entry otherwise.
    fn try_call(&mut self, call: Call) -> Option<usize> {
        let Some(operation) = self.operations.get(call.op) else {
            return self.entries.after(call.entry);
        };
        let successors = match operation.output().filter(|_| call.determinate) {
            Some(output) => match self.model.step(&self.state, &operation.input, output) {
                Some(next) => Successors::One(Some(next)),
                // The common dead end; skip the bookkeeping of `choose`.
                None => return self.entries.after(call.entry),
            },
            None => Successors::Many(self.model.step_unknown(&self.state, &operation.input).into_iter()),
        };
        self.choose(call, successors)
    }

    /// Moves to the first of `untried` (successors of the current state by
    /// `call`) that leads to a node not seen before, if any.
    fn choose(&mut self, call: Call, mut untried: Successors<M::State>) -> Option<usize> {
        self.linearized.insert(call.op);
        while let Some(next) = untried.next() {
            // Linearizing an indeterminate operation without changing the
            // state only narrows the future compared with leaving it out,
            // which the search explores anyway.
            if !call.determinate && next == self.state {
                continue;
            }
            if self.first_visit(&next) {
                let previous = mem::replace(&mut self.state, next);
                self.entries.lift(call.entry);
                if call.determinate {
                    self.unlinearized -= 1;
                }
                self.choices.push(Choice { call, previous, untried });
                return self.entries.first();
            }
        }
        self.linearized.remove(call.op);
        self.entries.after(call.entry)
    }

    /// Records the node (current linearized set, `state`); returns whether it
    /// is new.
    fn first_visit(&mut self, state: &M::State) -> bool {
        match self.seen.get_mut(&self.linearized) {
            Some(states) if states.contains(state) => false,
            Some(states) => {
                states.push(state.clone());
                true
            }
            None => {
                self.seen.insert(self.linearized.clone(), vec![state.clone()]);
                true
            }
        }
    }

    /// Undoes the most recent choice and tries its remaining successors.
    /// Returns where the walk continues, or `None` if there is nothing left
    /// to undo (the search space is exhausted).
    fn backtrack(&mut self) -> Option<Option<usize>> {
        let Choice { call, previous, untried } = self.choices.pop()?;
        self.entries.unlift(call.entry);
        if call.determinate {
            self.unlinearized += 1;
        }
        self.state = previous;
        Some(self.choose(call, untried))
    }
}
