//! The statekit contract as a [`lincheck::Model`], with expiry, and a
//! recorder that turns concurrent calls into a checkable history.
//!
//! # Time in the linearizability model
//!
//! An operation takes effect at one instant `p` between its call and its
//! return; a write with a TTL of `t` sets the deadline `p + t`, and the
//! entry is absent from the deadline on. The checker never knows `p`,
//! only the operation's window, so the model keeps what it does know:
//!
//! - a deadline is an interval `[earliest, latest]` of instants on the
//!   recorder's clock: `[call + t, return + t]` widened by the backend's
//!   clock tolerance (deadlines truncated to the millisecond, a server or
//!   client clock that is not the recorder's);
//! - an operation may take effect at any instant from `max(call, floor)`
//!   to its return, where `floor` is the latest call among the operations
//!   linearized before it (a linearization orders the instants too);
//! - the clock a write starts its deadline from, and the clock behind a
//!   reported TTL, may be read at any instant of the operation's window,
//!   not only at its effect: a PostgreSQL statement reads the clock with
//!   the row locked and commits later, and an operation that started
//!   after that reading can still be linearized before the commit;
//! - the operation sees the current entry live if some instant of its
//!   window is before some possible deadline, expired if some instant is at
//!   or after one. Where both are possible its output decides (a get
//!   returns the entry or nothing, a conditional put writes or is
//!   rejected...), and what that side implies narrows the interval: seen
//!   live, the deadline is after the window's start; seen with `n` ms
//!   left, it is within a millisecond of `n` ms after some instant of the
//!   window; seen expired, the entry is gone for every later operation.
//!   An indeterminate operation branches into both sides.
//!
//! This is sound — it never rejects a linearizable history — because every
//! bound it keeps holds in every execution that explains the outputs so
//! far: the true deadline is always inside the interval, the true instant
//! inside the window, and a side is only ruled out when no instant and
//! deadline allowed by the bounds produce it. It is exact for operations
//! clearly before or after a deadline, and the narrowing keeps the
//! uncertain zone about one operation's latency wide.
//!
//! A store whose expiry clock is its clients' (DynamoDB) reads the clock
//! when a client sends the request, not when the store applies it, and
//! the contract allows that (exact "up to the skew plus the request's
//! latency"). For such a store ([`ClockReading::Own`]) each operation's
//! instant lies in its own window, without the floor, and an entry seen
//! expired stays in the state with its narrowed deadline, since an
//! operation applied later but stamped earlier may still find it live.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use state_api::StateStore;

use crate::exec::execute;
use crate::model::{Clock, ErrorKind, LockState, Observed, Op, Outcome, Stored, lock_step, matches, step};
use lincheck::{History, Model, Operation, Window};

/// Nanoseconds in a millisecond: the recorder counts nanoseconds, TTLs are
/// milliseconds.
const MS: u64 = 1_000_000;

/// The per-key contract for the linearizability checker, expiry included.
/// It applies every operation with [`crate::model::step`], so the
/// concurrent and sequential properties check the same semantics; see the
/// [module docs](self) for how it handles time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatekitModel {
    /// How far the backend's deadlines may be from the recorder's view of
    /// them, in nanoseconds.
    tolerance_ns: u64,
    /// When an operation reads the expiry clock.
    reads_clock: ClockReading,
}

/// When an operation reads the expiry clock, to decide whether the entry
/// it finds has expired and to start the deadline of the TTL it writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClockReading {
    /// At the instant it takes effect, as a server (or this process) does
    /// in the step that applies it: expiry decisions follow the order of
    /// the linearization, and an entry seen expired is gone for every
    /// later operation.
    AtEffect,
    /// At an instant of its own between its call and its return, as a
    /// client that stamps its request with its clock when it sends it: the
    /// store applies requests later, in an order their stamps need not
    /// follow, so an operation applied after one that saw an entry expire
    /// may still, by its own stamp, find it live. The contract allows this
    /// for [`ExpiryClock::Client`](state_api::ExpiryClock::Client).
    Own,
}

impl StatekitModel {
    /// The model's name in JSON-lines history headers.
    pub const NAME: &'static str = "statekit";

    /// The tolerance of [`StatekitModel::default`]: the 1 ms truncation of
    /// deadlines plus 2 ms for clocks that tick differently, enough for
    /// backends whose expiry clock is the process's or the server's.
    pub const DEFAULT_CLOCK_TOLERANCE: Duration = Duration::from_millis(3);

    /// The model for a backend whose deadlines may be `tolerance` away from
    /// where the recorder's clock puts them, and whose operations read the
    /// expiry clock as `reads_clock` says.
    pub fn new(tolerance: Duration, reads_clock: ClockReading) -> StatekitModel {
        StatekitModel { tolerance_ns: u64::try_from(tolerance.as_nanos()).unwrap_or(u64::MAX), reads_clock }
    }

    /// The model for a backend with these capabilities. The tolerance is
    /// the TTL resolution, 2 ms for clocks that tick differently, and the
    /// declared skew where clients' clocks decide expiry; those clients
    /// read the clock when they send a request, the others when it takes
    /// effect.
    pub fn for_backend(capabilities: &state_api::Capabilities) -> StatekitModel {
        let margin = capabilities.ttl_resolution + Duration::from_millis(2);
        match capabilities.expiry_clock {
            state_api::ExpiryClock::Client { max_skew } => StatekitModel::new(margin + max_skew, ClockReading::Own),
            state_api::ExpiryClock::Process | state_api::ExpiryClock::Server => {
                StatekitModel::new(margin, ClockReading::AtEffect)
            }
        }
    }

    /// How far the backend's deadlines may be from the recorder's view of
    /// them.
    pub fn clock_tolerance(&self) -> Duration {
        Duration::from_nanos(self.tolerance_ns)
    }
}

impl Default for StatekitModel {
    fn default() -> Self {
        StatekitModel::new(Self::DEFAULT_CLOCK_TOLERANCE, ClockReading::AtEffect)
    }
}

/// A deadline known to lie in `[earliest, latest]`, in nanoseconds on the
/// recorder's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Deadline {
    /// The earliest possible deadline.
    pub earliest: u64,
    /// The latest possible deadline.
    pub latest: u64,
}

impl Deadline {
    /// The deadline narrowed to `[earliest, latest]`, or `None` when no
    /// deadline is left.
    fn within(self, earliest: u64, latest: u64) -> Option<Deadline> {
        let narrowed = Deadline { earliest: self.earliest.max(earliest), latest: self.latest.min(latest) };
        (narrowed.earliest <= narrowed.latest).then_some(narrowed)
    }
}

/// One key's state during the search: its entry, if any, and the latest
/// call among the operations linearized so far (no later operation can
/// take effect before it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KeyState {
    /// The entry; `None` when absent or seen expired.
    pub entry: Option<Stored<Deadline>>,
    /// The floor of the next operation's instant.
    pub floor: u64,
    /// The lock paired with the key, for histories with lock and fenced
    /// operations (see [`lock_step`]).
    pub lock: LockState,
}

/// The instant of one operation as the model knows it: somewhere in
/// `[from, to]`, on a side of the current entry's deadline decided before
/// the step (`live`).
#[derive(Debug, Clone, Copy)]
struct Moment {
    /// The operation's call: the earliest instant its clock may be read.
    call: u64,
    from: u64,
    to: u64,
    live: bool,
    tolerance: u64,
}

impl Clock for Moment {
    type Deadline = Deadline;

    fn is_live(&self, _deadline: &Deadline) -> bool {
        // Only the current entry's deadline is ever asked about, and the
        // side was chosen (and shown possible) for exactly that one.
        self.live
    }

    fn deadline_in(&self, ttl_ms: u64) -> Deadline {
        let ttl = ttl_ms.saturating_mul(MS);
        Deadline {
            earliest: self.call.saturating_add(ttl).saturating_sub(self.tolerance),
            latest: self.to.saturating_add(ttl).saturating_add(self.tolerance),
        }
    }

    fn remaining_ms(&self, deadline: &Deadline) -> u64 {
        // Reported TTLs are compared by narrowing the deadline (see
        // `StatekitModel::side`), not with this estimate.
        deadline.latest.saturating_sub(self.from) / MS
    }
}

impl StatekitModel {
    /// The sides of the current entry's deadline an operation taking
    /// effect in `[from, to]` may fall on: `true` for live, `false` for
    /// expired (or absent).
    fn sides(entry: Option<&Stored<Deadline>>, from: u64, to: u64) -> impl Iterator<Item = bool> {
        let (live, expired) = match entry.map(|s| s.expires_at) {
            None => (false, true),
            Some(None) => (true, false),
            // Live needs an instant before some deadline, expired an
            // instant at or after some deadline.
            Some(Some(d)) => (from < d.latest, d.earliest <= to),
        };
        [live.then_some(true), expired.then_some(false)].into_iter().flatten()
    }

    /// Applies `op` on one side of the deadline. Returns the entry after it
    /// when that side is possible and explains `output` (any outcome when
    /// `output` is `None`), with what the side implies about the current
    /// entry's deadline already applied.
    fn side(
        &self,
        entry: Option<&Stored<Deadline>>,
        op: &Op,
        output: Option<&Outcome>,
        Span { call, from, to }: Span,
        live: bool,
    ) -> Option<Option<Stored<Deadline>>> {
        let mut current = entry.cloned();
        if !live && let Some(Stored { expires_at: Some(deadline), .. }) = &mut current {
            // Expired at an instant <= to: the deadline is no later.
            *deadline = deadline.within(0, to)?;
        }
        if live && let Some(Stored { expires_at: Some(deadline), .. }) = &mut current {
            // Live at an instant >= from: the deadline is after it.
            let mut narrowed = deadline.within(from.saturating_add(1), u64::MAX)?;
            if let Some(ttl_ms) = observed_ttl(output) {
                // `n` ms left, rounded up, read at an instant of the window.
                let left = ttl_ms.saturating_mul(MS);
                let earliest = call.saturating_add(left).saturating_sub(MS + self.tolerance_ns);
                let latest = to.saturating_add(left).saturating_add(self.tolerance_ns);
                narrowed = narrowed.within(earliest, latest)?;
            }
            *deadline = narrowed;
        }
        let moment = Moment { call, from, to, live, tolerance: self.tolerance_ns };
        let (after, expected) = step(current.as_ref(), op, moment);
        // Reported TTLs were checked by the narrowing; everything else
        // (values, versions, whether a TTL is reported) must match.
        if output.is_some_and(|output| !matches(&expected, output, u64::MAX)) {
            return None;
        }
        Some(match (after, self.reads_clock) {
            // Seen expired and not replaced: when operations read the clock
            // as they take effect, no later one can see it live again;
            // otherwise one that read the clock earlier still may.
            (None, ClockReading::Own) if !live => current,
            (after, _) => after,
        })
    }

    /// The instants `[from, to]` at which an operation with `window` may
    /// take effect in `state`, or `None` if there are none.
    fn span(&self, state: &KeyState, window: Window) -> Option<Span> {
        let from = match self.reads_clock {
            ClockReading::AtEffect => window.call.max(state.floor),
            ClockReading::Own => window.call,
        };
        let to = window.returned.unwrap_or(u64::MAX);
        (from <= to).then_some(Span { call: window.call, from, to })
    }
}

/// The instants of one operation: it takes effect in `[from, to]`, and
/// reads its clock at an instant of `[call, to]`.
#[derive(Debug, Clone, Copy)]
struct Span {
    call: u64,
    from: u64,
    to: u64,
}

impl StatekitModel {
    /// For a lock or fenced operation, the lock states it may leave, each
    /// with the write to check on the entry (a fenced write whose fence
    /// held); empty for any other operation, or when `output` is
    /// impossible.
    fn lock_effects<'a>(state: &KeyState, input: &'a Op, output: Option<&Outcome>) -> Vec<(LockState, Option<&'a Op>)> {
        if !is_lock_or_fenced(input) {
            return Vec::new();
        }
        let write = match input {
            Op::Fenced { op, .. } => Some(op.as_ref()),
            _ => None,
        };
        lock_step(state.lock, input, output)
            .into_iter()
            .map(|(lock, runs)| (lock, if runs { write } else { None }))
            .collect()
    }
}

fn is_lock_or_fenced(op: &Op) -> bool {
    matches!(op, Op::Acquire { .. } | Op::Release { .. } | Op::Fenced { .. })
}

/// The remaining TTL an outcome reports for the entry it observed, if any.
fn observed_ttl(output: Option<&Outcome>) -> Option<u64> {
    match output? {
        Outcome::Got(Some(Observed { ttl_ms, .. })) | Outcome::Rejected(Some(Observed { ttl_ms, .. })) => *ttl_ms,
        _ => None,
    }
}

impl Model for StatekitModel {
    type State = KeyState;
    type Input = Op;
    type Output = Outcome;

    fn init(&self) -> KeyState {
        KeyState { entry: None, floor: 0, lock: LockState::default() }
    }

    fn step(&self, state: &KeyState, input: &Op, output: &Outcome) -> Option<KeyState> {
        self.step_within(state, input, output, Window::ANY)
    }

    fn step_unknown(&self, state: &KeyState, input: &Op) -> Vec<KeyState> {
        self.step_unknown_within(state, input, Window::ANY)
    }

    fn step_within(&self, state: &KeyState, input: &Op, output: &Outcome, window: Window) -> Option<KeyState> {
        let span = self.span(state, window)?;
        // Only instants read as operations take effect follow the order.
        let floor = match self.reads_clock {
            ClockReading::AtEffect => state.floor.max(window.call),
            ClockReading::Own => state.floor,
        };
        let (lock, write) = match Self::lock_effects(state, input, Some(output)).first() {
            Some(effect) => *effect,
            None if is_lock_or_fenced(input) => return None,
            None => (state.lock, Some(input)),
        };
        let Some(write) = write else { return Some(KeyState { entry: state.entry.clone(), floor, lock }) };
        let entry = state.entry.as_ref();
        let mut explained =
            Self::sides(entry, span.from, span.to).filter_map(|live| self.side(entry, write, Some(output), span, live));
        let first = explained.next()?;
        let entry = match explained.next() {
            None => first,
            // Only a rejected conditional delete is explained on both sides
            // (see the test `outputs_tell_the_sides_apart_unless_nothing_is_written`):
            // neither side writes, so the key keeps its entry, and nothing
            // new is known about its deadline.
            Some(_) => state.entry.clone(),
        };
        Some(KeyState { entry, floor, lock })
    }

    fn step_unknown_within(&self, state: &KeyState, input: &Op, window: Window) -> Vec<KeyState> {
        let Some(span) = self.span(state, window) else { return Vec::new() };
        let mut effects = Self::lock_effects(state, input, None);
        if !is_lock_or_fenced(input) {
            effects.push((state.lock, Some(input)));
        }
        let entry = state.entry.as_ref();
        // The floor stays: leaving an indeterminate operation out must
        // remain the same state as linearizing it without effect.
        let mut states = Vec::new();
        for (lock, write) in effects {
            match write {
                None => states.push(KeyState { entry: state.entry.clone(), floor: state.floor, lock }),
                Some(write) => states.extend(
                    Self::sides(entry, span.from, span.to)
                        .filter_map(|live| self.side(entry, write, None, span, live))
                        .map(|entry| KeyState { entry, floor: state.floor, lock }),
                ),
            }
        }
        states
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
        self.record(client, op, call, &outcome);
        outcome
    }

    /// As [`Recorder::run`], but gives up on the operation after `bound`
    /// (dropping it) and records it as indeterminate; `None` then.
    pub async fn run_bounded(&self, client: u64, store: &dyn StateStore, op: Op, bound: Duration) -> Option<Outcome> {
        let call = self.now();
        match tokio::time::timeout(bound, execute(store, &op)).await {
            Ok(outcome) => {
                self.record(client, op, call, &outcome);
                Some(outcome)
            }
            Err(_) => {
                let _ = self.history.lock().push(Operation::indeterminate(client, op, call));
                None
            }
        }
    }

    /// Records `op` as run by `client` through `run`, a future the caller
    /// builds (for operations [`crate::exec::execute`] cannot run, such as
    /// lock operations, which need the lease), and returns its outcome.
    pub async fn observe(&self, client: u64, op: Op, run: impl std::future::Future<Output = Outcome>) -> Outcome {
        let call = self.now();
        let outcome = run.await;
        self.record(client, op, call, &outcome);
        outcome
    }

    fn record(&self, client: u64, op: Op, call: u64, outcome: &Outcome) {
        let returned = self.now();
        let operation = match outcome {
            Outcome::Failed(ErrorKind::Indeterminate) => Operation::indeterminate(client, op, call),
            known => Operation::returned(client, op, known.clone(), call, returned),
        };
        // Instants come from one clock with call <= return, so the history
        // accepts every operation; a refusal would be a recorder bug.
        let _ = self.history.lock().push(operation);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use bytes::Bytes;
    use lincheck::{CheckOptions, History, Model, Operation, Window, check};
    use state_api::{Condition, DeleteCondition, Version};

    use super::{ClockReading, Deadline, KeyState, MS, StatekitModel};
    use crate::model::{KeyName, Observed, Op, Outcome, Stored};

    fn key() -> KeyName {
        KeyName::new("s", "k")
    }

    fn put(value: &'static str, condition: Condition, ttl_ms: Option<u64>) -> Op {
        Op::Put { key: key(), value: Bytes::from_static(value.as_bytes()), condition, ttl_ms }
    }

    fn get() -> Op {
        Op::Get { key: key() }
    }

    fn got(value: &'static str, version: u64, ttl_ms: Option<u64>) -> Outcome {
        Outcome::Got(Some(Observed { value: Bytes::from_static(value.as_bytes()), version, ttl_ms }))
    }

    /// A history from `(client, op, outcome, call ms, return ms)`.
    fn history(ops: Vec<(u64, Op, Outcome, u64, u64)>) -> History<Op, Outcome> {
        let mut history = History::new();
        for (client, op, outcome, call, returned) in ops {
            history.push(Operation::returned(client, op, outcome, call * MS, returned * MS)).unwrap();
        }
        history
    }

    fn linearizable(ops: Vec<(u64, Op, Outcome, u64, u64)>) -> bool {
        check(&StatekitModel::default(), &history(ops), &CheckOptions::default()).is_linearizable()
    }

    #[test]
    fn an_entry_is_live_before_its_earliest_deadline_and_absent_after_its_latest() {
        let write = (0, put("v", Condition::Always, Some(100)), Outcome::Written(1), 0, 10);
        // Deadline within [100 - 3, 110 + 3] ms.
        assert!(linearizable(vec![write.clone(), (1, get(), got("v", 1, Some(50)), 50, 60)]));
        assert!(!linearizable(vec![write.clone(), (1, get(), Outcome::Got(None), 50, 60)]));
        assert!(linearizable(vec![write.clone(), (1, get(), Outcome::Got(None), 114, 120)]));
        assert!(!linearizable(vec![write, (1, get(), got("v", 1, Some(1)), 114, 120)]));
    }

    #[test]
    fn a_read_overlapping_the_uncertain_deadline_may_see_either_side() {
        let write = (0, put("v", Condition::Always, Some(100)), Outcome::Written(1), 0, 10);
        assert!(linearizable(vec![write.clone(), (1, get(), got("v", 1, Some(1)), 105, 106)]));
        assert!(linearizable(vec![write, (1, get(), Outcome::Got(None), 105, 106)]));
    }

    #[test]
    fn a_deadline_may_count_from_before_an_operation_linearized_ahead_of_its_write() {
        // PostgreSQL reads the clock with the row locked and commits later:
        // the write below read it near 0 ms (deadline ~50 ms), a get that
        // started at 95 ms read the snapshot before the commit, and a get
        // after the write's return finds the entry expired.
        let write = (0, put("v", Condition::Always, Some(50)), Outcome::Written(1), 0, 100);
        let before_commit = (1, get(), Outcome::Got(None), 95, 96);
        let expired = (2, get(), Outcome::Got(None), 101, 102);
        assert!(linearizable(vec![write, before_commit, expired]));
    }

    #[test]
    fn once_seen_expired_an_entry_stays_absent() {
        let write = (0, put("v", Condition::Always, Some(100)), Outcome::Written(1), 0, 10);
        let gone = (1, get(), Outcome::Got(None), 105, 106);
        assert!(!linearizable(vec![write, gone, (2, get(), got("v", 1, Some(1)), 107, 108)]));
    }

    #[test]
    fn two_set_if_absent_winners_need_the_first_ones_ttl_to_pass_between_them() {
        let first = (0, put("a", Condition::IfAbsent, Some(50)), Outcome::Written(1), 0, 2);
        let early = (1, put("b", Condition::IfAbsent, Some(50)), Outcome::Written(1), 1, 3);
        let late = (1, put("b", Condition::IfAbsent, Some(50)), Outcome::Written(1), 60, 61);
        assert!(!linearizable(vec![first.clone(), early]));
        assert!(linearizable(vec![first, late]));
    }

    #[test]
    fn a_reported_ttl_must_fit_the_deadline() {
        let write = (0, put("v", Condition::Always, Some(1000)), Outcome::Written(1), 0, 10);
        assert!(linearizable(vec![write.clone(), (1, get(), got("v", 1, Some(600)), 400, 410)]));
        assert!(!linearizable(vec![write.clone(), (1, get(), got("v", 1, Some(900)), 400, 410)]));
        // A read pins the deadline down for later operations.
        let pinned = (1, get(), got("v", 1, Some(600)), 400, 401);
        assert!(!linearizable(vec![write.clone(), pinned.clone(), (2, get(), Outcome::Got(None), 990, 991)]));
        assert!(linearizable(vec![write, pinned, (2, get(), Outcome::Got(None), 1005, 1006)]));
    }

    #[test]
    fn increments_keep_the_window_of_the_creating_one() {
        let inc = |ttl_ms| Op::Increment { key: key(), delta: 1, ttl_ms };
        let create = (0, inc(Some(100)), Outcome::Counted { value: 1, version: 1 }, 0, 1);
        let again = (0, inc(Some(1000)), Outcome::Counted { value: 2, version: 2 }, 50, 51);
        let expired = (1, inc(None), Outcome::Counted { value: 1, version: 1 }, 110, 111);
        let kept = (1, inc(None), Outcome::Counted { value: 3, version: 3 }, 110, 111);
        assert!(linearizable(vec![create.clone(), again.clone(), expired]));
        assert!(!linearizable(vec![create, again, kept]));
    }

    #[test]
    fn a_write_that_never_returned_may_have_set_its_ttl_at_any_later_instant() {
        let mut h = history(vec![(1, get(), got("v", 1, Some(20)), 500, 501)]);
        h.push(Operation::indeterminate(0, put("v", Condition::Always, Some(100)), 0)).unwrap();
        assert!(check(&StatekitModel::default(), &h, &CheckOptions::default()).is_linearizable());
    }

    #[test]
    fn a_ttl_less_write_clears_the_deadline() {
        let write = (0, put("v", Condition::Always, Some(100)), Outcome::Written(1), 0, 1);
        let clear = (0, put("w", Condition::Always, None), Outcome::Written(2), 10, 11);
        assert!(linearizable(vec![write.clone(), clear.clone(), (1, get(), got("w", 2, None), 500, 501)]));
        assert!(!linearizable(vec![write, clear, (1, get(), Outcome::Got(None), 500, 501)]));
    }

    #[test]
    fn with_clocks_read_per_request_an_operation_applied_after_an_expiry_may_still_see_the_entry_live() {
        // A CAS stamped before the deadline but applied after a read that
        // saw the entry expire, as a store that takes its clients' clocks
        // may do.
        let ops = vec![
            (0, put("v", Condition::Always, Some(100)), Outcome::Written(1), 0, 1),
            (1, get(), Outcome::Got(None), 110, 200),
            (2, put("w", Condition::IfVersion(Version(1)), None), Outcome::Written(2), 90, 300),
            (1, get(), got("w", 2, None), 350, 360),
        ];
        let own = StatekitModel::new(StatekitModel::DEFAULT_CLOCK_TOLERANCE, ClockReading::Own);
        assert!(!check(&StatekitModel::default(), &history(ops.clone()), &CheckOptions::default()).is_linearizable());
        assert!(check(&own, &history(ops), &CheckOptions::default()).is_linearizable());
    }

    #[test]
    fn with_clocks_read_per_request_an_entry_seen_expired_stays_expired_for_later_stamps() {
        let ops = vec![
            (0, put("v", Condition::Always, Some(100)), Outcome::Written(1), 0, 1),
            (1, get(), Outcome::Got(None), 110, 120),
            (2, get(), got("v", 1, Some(1)), 130, 140),
        ];
        let own = StatekitModel::new(StatekitModel::DEFAULT_CLOCK_TOLERANCE, ClockReading::Own);
        assert!(!check(&own, &history(ops), &CheckOptions::default()).is_linearizable());
    }

    fn acquire() -> Op {
        Op::Acquire { key: key(), lock: "l".into(), ttl_ms: 60_000 }
    }

    fn release(token: u64) -> Op {
        Op::Release { key: key(), lock: "l".into(), token }
    }

    fn fenced(token: u64, op: Op) -> Op {
        Op::Fenced { lock: "l".into(), token, op: Box::new(op) }
    }

    #[test]
    fn a_fenced_write_applies_while_its_lease_holds_the_lock_and_is_refused_after() {
        let write = |value| put(value, Condition::Always, None);
        let lost = Outcome::Failed(crate::model::ErrorKind::LockLost);
        let held = vec![
            (0, acquire(), Outcome::Acquired(3), 0, 1),
            (0, fenced(3, write("a")), Outcome::Written(1), 2, 3),
            (0, release(3), Outcome::Released(true), 4, 5),
            (1, acquire(), Outcome::Acquired(4), 6, 7),
        ];
        assert!(linearizable(held.clone()));
        // After the release, the old token is refused and changes nothing.
        let mut refused = held.clone();
        refused.push((0, fenced(3, write("b")), lost.clone(), 8, 9));
        refused.push((1, get(), got("a", 1, None), 10, 11));
        assert!(linearizable(refused));
        // Applied with a stale token: not linearizable.
        let mut applied = held.clone();
        applied.push((0, fenced(3, write("b")), Outcome::Written(2), 8, 9));
        assert!(!linearizable(applied));
        // Refused while its lease holds the lock: not linearizable.
        let early = vec![(0, acquire(), Outcome::Acquired(3), 0, 1), (0, fenced(3, write("a")), lost, 2, 3)];
        assert!(!linearizable(early));
        // A fenced write's outcome is the plain write's.
        let wrong =
            vec![(0, acquire(), Outcome::Acquired(3), 0, 1), (0, fenced(3, write("a")), Outcome::Written(2), 2, 3)];
        assert!(!linearizable(wrong));
    }

    #[test]
    fn grants_need_a_free_lock_and_a_higher_token() {
        let first = (0, acquire(), Outcome::Acquired(3), 0, 1);
        assert!(!linearizable(vec![first.clone(), (1, acquire(), Outcome::Acquired(4), 2, 3)]));
        assert!(linearizable(vec![first.clone(), (1, acquire(), Outcome::Busy, 2, 3)]));
        let freed = (0, release(3), Outcome::Released(true), 2, 3);
        assert!(!linearizable(vec![first.clone(), freed.clone(), (1, acquire(), Outcome::Acquired(3), 4, 5)]));
        assert!(!linearizable(vec![first.clone(), freed.clone(), (1, acquire(), Outcome::Busy, 4, 5)]));
        assert!(!linearizable(vec![first, freed, (0, release(3), Outcome::Released(true), 4, 5)]));
        // Overlapping calls may be ordered either way.
        let racing = vec![(0, acquire(), Outcome::Busy, 0, 10), (1, acquire(), Outcome::Acquired(1), 1, 2)];
        assert!(linearizable(racing));
    }

    #[test]
    fn an_acquisition_that_never_answered_may_hold_the_lock() {
        let mut h = history(vec![(1, acquire(), Outcome::Busy, 5, 6)]);
        h.push(Operation::indeterminate(0, acquire(), 0)).unwrap();
        assert!(check(&StatekitModel::default(), &h, &CheckOptions::default()).is_linearizable());
        // Without it, a busy lock that nobody acquired is not explained.
        assert!(!linearizable(vec![(1, acquire(), Outcome::Busy, 5, 6)]));
    }

    /// Every output the contract allows, for an entry at version 2 (a
    /// counter, so increments succeed) on each side of its deadline.
    #[test]
    fn outputs_tell_the_sides_apart_unless_nothing_is_written() {
        let model = StatekitModel::default();
        let entry = Stored {
            value: Bytes::from_static(b"7"),
            version: 2,
            expires_at: Some(Deadline { earliest: 10 * MS, latest: 20 * MS }),
        };
        let state = KeyState { entry: Some(entry), floor: 0, lock: Default::default() };
        let window = Window { call: 5 * MS, returned: Some(25 * MS) };
        let ops = [
            get(),
            put("v", Condition::Always, Some(5)),
            put("v", Condition::IfAbsent, None),
            put("v", Condition::IfVersion(Version(2)), None),
            put("v", Condition::IfVersion(Version(3)), None),
            Op::Delete { key: key(), condition: DeleteCondition::Always },
            Op::Delete { key: key(), condition: DeleteCondition::IfVersion(Version(2)) },
            Op::Delete { key: key(), condition: DeleteCondition::IfVersion(Version(3)) },
            Op::Increment { key: key(), delta: 1, ttl_ms: Some(5) },
        ];
        let span = model.span(&state, window).unwrap();
        let on_side = |op: &Op, live: bool| {
            let moment = super::Moment { call: span.call, from: span.from, to: span.to, live, tolerance: 0 };
            crate::model::step(state.entry.as_ref(), op, moment)
        };
        let mut ambiguous = Vec::new();
        for op in &ops {
            let ((live_after, live_output), (expired_after, expired_output)) = (on_side(op, true), on_side(op, false));
            if crate::model::matches(&live_output, &expired_output, u64::MAX) {
                // Neither side writes: the live side keeps the entry, the
                // expired side has none; the model keeps the entry.
                assert_eq!(live_after, state.entry, "{op:?}");
                assert_eq!(expired_after, None, "{op:?}");
                assert_eq!(model.step_within(&state, op, &live_output, window).unwrap().entry, state.entry);
                ambiguous.push(op.clone());
            }
        }
        assert_eq!(ambiguous, [Op::Delete { key: key(), condition: DeleteCondition::IfVersion(Version(3)) }]);
    }
}
