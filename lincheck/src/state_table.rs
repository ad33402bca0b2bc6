//! Interning of model states: each distinct state is stored once and named
//! by a small integer.
//!
//! The search compares and memoizes states constantly; with interning, each
//! state the model returns is hashed once and from then on handled as an
//! integer, and a search node is just (linearized set, state id).

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

use super::hashing::FxBuildHasher;

/// The name of an interned state.
pub(crate) type StateId = usize;

/// Every distinct state seen by one search.
#[derive(Debug)]
pub(crate) struct StateTable<S> {
    states: Vec<S>,
    /// Hash → the most recent state with that hash; `same_hash` chains to
    /// the others, so colliding states cost no extra allocation.
    latest_with_hash: HashMap<u64, StateId, FxBuildHasher>,
    same_hash: Vec<Option<StateId>>,
    hasher: FxBuildHasher,
}

impl<S: Hash + Eq> StateTable<S> {
    /// A table holding only `initial`, which gets id 0.
    pub(crate) fn new(initial: S) -> Self {
        let mut table = StateTable {
            states: Vec::new(),
            latest_with_hash: HashMap::default(),
            same_hash: Vec::new(),
            hasher: FxBuildHasher::default(),
        };
        table.intern(initial);
        table
    }

    /// The id of `state`, adding it if it is new.
    pub(crate) fn intern(&mut self, state: S) -> StateId {
        let hash = self.hasher.hash_one(&state);
        let mut candidate = self.latest_with_hash.get(&hash).copied();
        while let Some(id) = candidate {
            if self.get(id) == Some(&state) {
                return id;
            }
            candidate = self.same_hash.get(id).copied().flatten();
        }
        let id = self.states.len();
        let previous = self.latest_with_hash.insert(hash, id);
        self.states.push(state);
        self.same_hash.push(previous);
        id
    }

    /// The state named `id`.
    pub(crate) fn get(&self, id: StateId) -> Option<&S> {
        self.states.get(id)
    }
}
