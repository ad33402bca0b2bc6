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
//! a node already seen is never explored again. States are interned (see
//! `state_table.rs`), so a node is a bitset and an integer.
//!
//! Indeterminate operations have no return entry, so nothing ever forces
//! them to be linearized: the search may linearize one at any point after its
//! call, or leave it out. The search succeeds once every determinate
//! operation is linearized.
//!
//! A search can be run in slices ([`Search::resume`]), so that the checker
//! can interleave the searches of several partitions and answer as soon as
//! any of them fails.

use std::collections::HashMap;

use super::bitset::Bitset;
use super::budget::{Budget, Limit};
use super::entries::Entries;
use super::hashing::FxBuildHasher;
use super::history::Operation;
use super::model::{Model, Window};
use super::state_table::{StateId, StateTable};
use super::timeline::{Event, EventKind};

/// What a search found out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// A linearization exists.
    Linearizable,
    /// No linearization exists. Still, some partial linearization covered
    /// every operation among the first `cleared` returns (and so the events
    /// up to the `cleared`-th return, on their own, can be linearized).
    NotLinearizable {
        /// How many leading returns some partial linearization covered.
        cleared: usize,
    },
    /// This limit of the budget ran out first.
    OutOfBudget(Limit),
}

/// Searches for a linearization of the operations called within `events`,
/// to the end or until `budget` runs out.
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
    previous: StateId,
    untried: Successors<S>,
}

/// One depth-first search for a linearization, which can be run in slices.
pub(crate) struct Search<'a, M: Model> {
    model: &'a M,
    operations: &'a [&'a Operation<M::Input, M::Output>],
    entries: Entries,
    /// Where the walk continues; `None` is the end of the list.
    cursor: Option<usize>,
    states: StateTable<M::State>,
    state: StateId,
    linearized: Bitset,
    /// Determinate operations not yet linearized; the search succeeds at 0.
    unlinearized: usize,
    choices: Vec<Choice<M::State>>,
    /// Every (linearized set, state) node reached so far.
    seen: HashMap<Bitset, Vec<StateId>, FxBuildHasher>,
    /// The most leading returns any dead end had linearized.
    cleared: usize,
    /// Steps taken so far.
    steps: u64,
    /// The verdict, once reached.
    verdict: Option<Verdict>,
}

impl<'a, M: Model> Search<'a, M> {
    /// A search of the operations called within `events`, as for [`search`];
    /// no step is taken yet.
    pub(crate) fn new(model: &'a M, operations: &'a [&'a Operation<M::Input, M::Output>], events: &[Event]) -> Self {
        let entries = Entries::new(events);
        let cursor = entries.first();
        // Exactly the determinate operations return within `events`.
        let unlinearized = events.iter().filter(|event| event.kind == EventKind::Return).count();
        Search {
            model,
            operations,
            entries,
            cursor,
            states: StateTable::new(model.init()),
            state: 0,
            linearized: Bitset::new(operations.len()),
            unlinearized,
            choices: Vec::new(),
            seen: HashMap::default(),
            cleared: 0,
            steps: 0,
            verdict: None,
        }
    }

    /// Runs the search to its verdict.
    pub(crate) fn run(mut self, budget: &mut Budget) -> Verdict {
        loop {
            if let Some(verdict) = self.resume(budget, u64::MAX) {
                return verdict;
            }
        }
    }

    /// Takes at most `slice` more steps, spending them from `budget`.
    /// Returns the verdict once there is one (and the same verdict on every
    /// later call), `None` if the slice ended first.
    pub(crate) fn resume(&mut self, budget: &mut Budget, slice: u64) -> Option<Verdict> {
        if self.verdict.is_none() {
            self.verdict = self.walk(budget, slice);
        }
        self.verdict
    }

    /// How many steps the search has taken.
    pub(crate) fn steps(&self) -> u64 {
        self.steps
    }

    /// The linearization found, once the verdict is
    /// [`Verdict::Linearizable`]: each linearized operation in order, with
    /// the model state it leaves behind. `None` before that, or if the
    /// verdict is another.
    pub(crate) fn linearization(&self) -> Option<Vec<(usize, &M::State)>> {
        if self.verdict != Some(Verdict::Linearizable) {
            return None;
        }
        // The state after choice `i` is the state the next choice started
        // from, or the current state after the last one.
        let after = self.choices.iter().skip(1).map(|choice| choice.previous).chain([self.state]);
        let steps = self.choices.iter().zip(after);
        Some(steps.filter_map(|(choice, state)| Some((choice.call.op, self.states.get(state)?))).collect())
    }

    /// The walk itself: at most `slice` steps.
    fn walk(&mut self, budget: &mut Budget, slice: u64) -> Option<Verdict> {
        // The hot loop works on locals, saved when the slice ends.
        let (mut cursor, mut taken) = (self.cursor, 0);
        let verdict = loop {
            if self.unlinearized == 0 {
                break Some(Verdict::Linearizable);
            }
            if taken == slice {
                break None;
            }
            if let Err(limit) = budget.spend() {
                break Some(Verdict::OutOfBudget(limit));
            }
            taken += 1;
            let call = cursor.and_then(|entry| {
                let (op, determinate) = self.entries.call(entry)?;
                Some(Call { entry, op, determinate })
            });
            cursor = match call {
                Some(call) => self.try_call(call),
                None => {
                    self.note_dead_end(cursor);
                    match self.backtrack() {
                        Some(cursor) => cursor,
                        None => break Some(Verdict::NotLinearizable { cleared: self.cleared }),
                    }
                }
            };
        };
        self.cursor = cursor;
        self.steps += taken;
        verdict
    }

    /// The walk reached `cursor`, the return of an operation not linearized
    /// yet (or the end of the list): this branch is dead. The walk stops at
    /// the first return it meets, so every earlier return is linearized.
    fn note_dead_end(&mut self, cursor: Option<usize>) {
        if let Some(ordinal) = cursor.and_then(|entry| self.entries.return_ordinal(entry)) {
            self.cleared = self.cleared.max(ordinal.saturating_sub(1));
        }
    }

    /// Tries to linearize `call` next. Returns where the walk continues: the
    /// front of the list on success, the next entry otherwise.
    fn try_call(&mut self, call: Call) -> Option<usize> {
        let (Some(operation), Some(state)) = (self.operations.get(call.op), self.states.get(self.state)) else {
            return self.entries.after(call.entry);
        };
        // An operation whose return lies beyond the events searched is
        // indeterminate here, its window open-ended.
        let window = Window { call: operation.call, returned: operation.return_at().filter(|_| call.determinate) };
        let successors = match operation.output().filter(|_| call.determinate) {
            Some(output) => match self.model.step_within(state, &operation.input, output, window) {
                Some(next) => Successors::One(Some(next)),
                // The common dead end; skip the bookkeeping of `choose`.
                None => return self.entries.after(call.entry),
            },
            None => Successors::Many(self.model.step_unknown_within(state, &operation.input, window).into_iter()),
        };
        self.choose(call, successors)
    }

    /// Moves to the first of `untried` (successors of the current state by
    /// `call`) that leads to a node not seen before, if any.
    fn choose(&mut self, call: Call, mut untried: Successors<M::State>) -> Option<usize> {
        self.linearized.insert(call.op);
        while let Some(next) = untried.next() {
            let next = self.states.intern(next);
            // Linearizing an indeterminate operation without changing the
            // state only narrows the future compared with leaving it out,
            // which the search explores anyway.
            if !call.determinate && next == self.state {
                continue;
            }
            if self.first_visit(next) {
                let previous = std::mem::replace(&mut self.state, next);
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
    fn first_visit(&mut self, state: StateId) -> bool {
        match self.seen.get_mut(&self.linearized) {
            Some(states) if states.contains(&state) => false,
            Some(states) => {
                states.push(state);
                true
            }
            None => {
                self.seen.insert(self.linearized.clone(), vec![state]);
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
