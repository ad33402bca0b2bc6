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
