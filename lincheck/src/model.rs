//! The sequential specification a history is checked against.

use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification: what one operation may return in a given
/// state, and which state it leaves behind.
///
/// The checker asks whether the operations of a concurrent history can be
/// put in one order, consistent with real time, in which every operation's
/// observed output is a possible output of this specification. A model only
/// describes single-threaded behaviour; all concurrency reasoning is the
/// checker's job.
///
/// States are memoized (hashed and compared) during the search, so keep them
/// small and canonical: two states that behave identically should be equal,
/// otherwise the search explores them twice. For example, a key/value map
/// whose keys start out empty should not store empty values at all.
///
/// # Implementing a deterministic model
///
/// Most stores are deterministic: applying an input in a state yields exactly
/// one output and one successor. Such a model computes the successor once and
/// uses it in both [`step`](Model::step) (after comparing the output) and
/// [`step_unknown`](Model::step_unknown) (returning it as the only
/// successor). See [`Register`](super::Register) for a short example.
pub trait Model {
    /// The abstract state of the object. Cloned whenever the search
    /// linearizes an operation, and hashed into the search's memo table.
    type State: Clone + Eq + Hash + Debug;
    /// What a client asked for (for example "write 3").
    type Input: Debug;
    /// What the client observed (for example "the write succeeded").
    type Output: Debug;

    /// The state before any operation took effect.
    fn init(&self) -> Self::State;

    /// Applies `input` in `state`, given that the client observed `output`.
    ///
    /// Returns the successor state if `output` is a possible result of
    /// applying `input` in `state`, and `None` if it is not (the operation
    /// cannot take effect at this point of a linearization).
    fn step(&self, state: &Self::State, input: &Self::Input, output: &Self::Output) -> Option<Self::State>;

    /// Applies `input` in `state` when its outcome was never observed (the
    /// client timed out, or the history ended first).
    ///
    /// Returns every state the operation may leave behind if it took effect
    /// here: at least every state [`step`](Model::step) returns for some
    /// output. A deterministic model returns exactly one. The checker
    /// separately considers that the operation never took effect, so the
    /// unchanged `state` need not be listed.
    fn step_unknown(&self, state: &Self::State, input: &Self::Input) -> Vec<Self::State>;

    /// As [`step`](Model::step), knowing when the operation may take
    /// effect: at some instant of `window`, and (since a linearization
    /// orders its operations' instants too) not before any operation
    /// linearized earlier was called.
    ///
    /// The checker always calls this method; the default ignores the
    /// window and calls `step`. Override it when what an operation returns
    /// depends on the time it takes effect, as with entries that expire:
    /// the model cannot know the instant, only the window, so it must
    /// accept an output possible at *some* instant of the window.
    fn step_within(
        &self,
        state: &Self::State,
        input: &Self::Input,
        output: &Self::Output,
        window: Window,
    ) -> Option<Self::State> {
        let _ = window;
        self.step(state, input, output)
    }

    /// As [`step_unknown`](Model::step_unknown), knowing the window (whose
    /// `returned` is then `None`); see [`step_within`](Model::step_within).
    fn step_unknown_within(&self, state: &Self::State, input: &Self::Input, window: Window) -> Vec<Self::State> {
        let _ = window;
        self.step_unknown(state, input)
    }

    /// Names the independent sub-history `input` belongs to, or `None` (the
    /// default) to check the history as a whole.
    ///
    /// Operations with the same name are checked together, each group from
    /// [`init`](Model::init). This is sound only when an operation can never
    /// affect or observe the part of the state another group works on, as
    /// with single-key operations on a key/value store (linearizability is
    /// compositional per object). It turns one exponential search into many
    /// small ones, so it matters a great deal for speed. A model with
    /// operations that span several keys must return `None`.
    fn partition(&self, _input: &Self::Input) -> Option<String> {
        None
    }

    /// A one-line, human-readable rendering of an operation for failure
    /// reports; `output` is `None` when the outcome is unknown.
    ///
    /// The default uses the `Debug` renderings.
    fn describe(&self, input: &Self::Input, output: Option<&Self::Output>) -> String {
        match output {
            Some(output) => format!("{input:?} -> {output:?}"),
            None => format!("{input:?} -> ?"),
        }
    }
}

/// When an operation may take effect, in instants of the history's clock:
/// at some instant from its call to its return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Window {
    /// The call instant.
    pub call: u64,
    /// The return instant, or `None` when the outcome is unknown (the
    /// operation may take effect at any instant after its call).
    pub returned: Option<u64>,
}

impl Window {
    /// Any instant at all: what a model knows of an operation whose
    /// instants it was not given.
    pub const ANY: Window = Window { call: 0, returned: None };
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{Model, Window};
    use crate::{CheckOptions, History, Operation, check};

    /// A clock that clients read: a reading must fall inside its operation's
    /// window and readings never go back, which only a model given the
    /// windows can check.
    struct Clock;

    impl Model for Clock {
        type State = u64;
        type Input = ();
        type Output = u64;

        fn init(&self) -> u64 {
            0
        }

        fn step(&self, state: &u64, _: &(), output: &u64) -> Option<u64> {
            self.step_within(state, &(), output, Window::ANY)
        }

        fn step_unknown(&self, state: &u64, _: &()) -> Vec<u64> {
            vec![*state]
        }

        fn step_within(&self, state: &u64, _: &(), reading: &u64, window: Window) -> Option<u64> {
            let inside = window.call <= *reading && window.returned.is_none_or(|r| *reading <= r);
            (inside && *state <= *reading).then_some(*reading)
        }
    }

    fn clock_history(readings: &[(u64, u64, u64)]) -> History<(), u64> {
        let mut history = History::new();
        for (client, &(call, reading, returned)) in readings.iter().enumerate() {
            history.push(Operation::returned(client as u64, (), reading, call, returned)).unwrap();
        }
        history
    }

    #[test]
    fn the_checker_gives_each_step_its_operations_window() {
        // Overlapping reads may be ordered either way: 4 before 5.
        let ordered = clock_history(&[(0, 5, 10), (3, 4, 8)]);
        assert!(check(&Clock, &ordered, &CheckOptions::default()).is_linearizable());
        // A reading outside its own window is impossible.
        let outside = clock_history(&[(0, 5, 10), (20, 15, 30)]);
        assert!(!check(&Clock, &outside, &CheckOptions::default()).is_linearizable());
    }
}
