//! The statekit contract as a [`lincheck::Model`],
//! and a recorder that turns concurrent calls into a checkable history.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use state_api::StateStore;

use crate::exec::execute;
use crate::model::{ErrorKind, Op, Outcome, Stored, matches, step};
use lincheck::{History, Model, Operation};

/// The per-key contract for the linearizability checker. It reuses
/// [`crate::model::step`], so the concurrent and sequential properties check
/// the same semantics. It has no clock: histories checked with it must not
/// depend on expiry (use no TTLs, or TTLs far longer than the run), and
/// remaining TTLs are not compared.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatekitModel;

impl StatekitModel {
    /// The model's name in JSON-lines history headers.
    pub const NAME: &'static str = "statekit";
}

impl Model for StatekitModel {
    type State = Option<Stored>;
    type Input = Op;
    type Output = Outcome;

    fn init(&self) -> Self::State {
        None
    }

    fn step(&self, state: &Self::State, input: &Op, output: &Outcome) -> Option<Self::State> {
        let (after, expected) = step(state.as_ref(), input, 0);
        matches(&expected, output, u64::MAX).then_some(after)
    }

    fn step_unknown(&self, state: &Self::State, input: &Op) -> Vec<Self::State> {
        vec![step(state.as_ref(), input, 0).0]
    }

    fn partition(&self, input: &Op) -> Option<String> {
        // Every single-key operation touches one key; linearizability is
        // compositional, so each key is checked on its own.
        input.key().map(|k| format!("{}/{}", k.space, k.id))
    }
}

/// Records operations from many concurrent clients on one monotonic clock.
#[derive(Clone)]
pub struct Recorder {
    start: Instant,
    history: Arc<Mutex<History<Op, Outcome>>>,
}

impl Recorder {
    /// An empty recorder whose clock starts now.
    pub fn new() -> Recorder {
        Recorder { start: Instant::now(), history: Arc::new(Mutex::new(History::new())) }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// Runs `op` on `store` as `client`, records it (an indeterminate error
    /// as an operation of unknown outcome) and returns its outcome.
    pub async fn run(&self, client: u64, store: &dyn StateStore, op: Op) -> Outcome {
        let call = self.now();
        let outcome = execute(store, &op).await;
        let returned = self.now();
        let operation = match outcome {
            Outcome::Failed(ErrorKind::Indeterminate) => Operation::indeterminate(client, op, call),
            ref known => Operation::returned(client, op, known.clone(), call, returned),
        };
        // Instants come from one clock with call <= return, so the history
        // accepts every operation; a refusal would be a recorder bug.
        let _ = self.history.lock().push(operation);
        outcome
    }

    /// The history recorded so far.
    pub fn history(&self) -> History<Op, Outcome> {
        self.history.lock().clone()
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}
