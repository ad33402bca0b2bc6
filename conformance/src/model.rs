//! The contract as a pure, deterministic model with explicit time.
//!
//! This is the executable form of `state_api::contract`: every property of
//! the kit compares a backend with it, and the linearizability checker uses
//! its per-key step function. Time is a number of milliseconds on the
//! model's own clock, passed to every operation, so the model never sleeps
//! and never reads a clock.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::Hash;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use state_api::{Condition, DeleteCondition, StateError, Version};

/// A key as plain strings, so operations can be saved in histories.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct KeyName {
    /// The space.
    pub space: String,
    /// The id.
    pub id: String,
}

impl KeyName {
    /// A key name.
    pub fn new(space: impl Into<String>, id: impl Into<String>) -> KeyName {
        KeyName { space: space.into(), id: id.into() }
    }

    /// The validated key.
    ///
    /// # Errors
    /// `InvalidKey` as [`state_api::Key::new`].
    pub fn key(&self) -> Result<state_api::Key, StateError> {
        state_api::Key::new(&self.space, &self.id)
    }
}

/// One operation of the contract on a store.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Op {
    /// `get`.
    Get {
        /// The key.
        key: KeyName,
    },
    /// `put` with a condition and TTL (milliseconds).
    Put {
        /// The key.
        key: KeyName,
        /// The value.
        value: Bytes,
        /// The condition.
        condition: Condition,
        /// TTL in milliseconds; `None` never expires.
        ttl_ms: Option<u64>,
    },
    /// `delete`.
    Delete {
        /// The key.
        key: KeyName,
        /// The condition.
        condition: DeleteCondition,
    },
    /// `increment`.
    Increment {
        /// The key.
        key: KeyName,
        /// The delta.
        delta: i64,
        /// TTL in milliseconds if the counter is created.
        ttl_ms: Option<u64>,
    },
    /// `try_acquire` of the lock paired with `key` in a history (one whose
    /// leases outlive it, so only releases free the lock).
    Acquire {
        /// The key whose history the lock belongs to.
        key: KeyName,
        /// The lock's name.
        lock: String,
        /// The lease's TTL in milliseconds.
        ttl_ms: u64,
    },
    /// `release` of the lease with `token` on the lock paired with `key`.
    Release {
        /// The key whose history the lock belongs to.
        key: KeyName,
        /// The lock's name.
        lock: String,
        /// The lease's fencing token.
        token: u64,
    },
    /// A `put`, `delete` or `increment` fenced by the lease with `token` on
    /// `lock` (`put_fenced`, `delete_fenced`, `increment_fenced`).
    Fenced {
        /// The lock's name.
        lock: String,
        /// The fencing token.
        token: u64,
        /// The write.
        op: Box<Op>,
    },
    /// A whole scan: every page, concatenated.
    Scan {
        /// The space.
        space: String,
        /// The prefix.
        prefix: String,
        /// The page size used.
        limit: usize,
    },
}

impl Op {
    /// The single key the operation touches, if it touches exactly one.
    pub fn key(&self) -> Option<&KeyName> {
        match self {
            Op::Get { key }
            | Op::Put { key, .. }
            | Op::Delete { key, .. }
            | Op::Increment { key, .. }
            | Op::Acquire { key, .. }
            | Op::Release { key, .. } => Some(key),
            Op::Fenced { op, .. } => op.key(),
            Op::Scan { .. } => None,
        }
    }
}

/// What an operation returned, in a form that can be compared and saved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// `get`: the live entry, if any.
    Got(Option<Observed>),
    /// `put` wrote this version.
    Written(u64),
    /// `put` was rejected; the current entry, if any.
    Rejected(Option<Observed>),
    /// `delete`: whether a live entry was removed.
    Deleted(bool),
    /// `increment`: value and version after.
    Counted {
        /// The counter's value.
        value: i64,
        /// The entry's version.
        version: u64,
    },
    /// `try_acquire` granted the lease with this fencing token.
    Acquired(u64),
    /// `try_acquire` found the lock held.
    Busy,
    /// `release`: `true` if the lease was held and is now released, `false`
    /// if it was no longer held (`LockLost`).
    Released(bool),
    /// A whole scan's items in order: id and entry.
    Scanned(Vec<(String, Observed)>),
    /// A typed error.
    Failed(ErrorKind),
}

/// An entry as observed: value, version and remaining TTL in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Observed {
    /// The value.
    pub value: Bytes,
    /// The version.
    pub version: u64,
    /// Remaining TTL in milliseconds; `None` never expires.
    pub ttl_ms: Option<u64>,
}

impl From<state_api::Entry> for Observed {
    fn from(entry: state_api::Entry) -> Observed {
        Observed {
            value: entry.value,
            version: entry.version.0,
            ttl_ms: entry.ttl.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        }
    }
}

/// The kind of a [`StateError`], which is what the contract fixes (the
/// messages are free).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorKind {
    /// `InvalidKey`.
    InvalidKey,
    /// `InvalidArgument`.
    InvalidArgument,
    /// `ValueTooLarge`.
    ValueTooLarge,
    /// `TypeMismatch`.
    TypeMismatch,
    /// `Overflow`.
    Overflow,
    /// `LockLost`.
    LockLost,
    /// `Unsupported`.
    Unsupported,
    /// `Timeout`, `Unavailable` or a retryable `Backend` error: the
    /// operation may or may not have taken effect.
    Indeterminate,
    /// A non-retryable `Backend` error.
    Backend,
}

impl ErrorKind {
    /// Classifies an error.
    pub fn of(error: &StateError) -> ErrorKind {
        match error {
            StateError::InvalidKey(_) => ErrorKind::InvalidKey,
            StateError::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            StateError::ValueTooLarge { .. } => ErrorKind::ValueTooLarge,
            StateError::TypeMismatch { .. } => ErrorKind::TypeMismatch,
            StateError::Overflow { .. } => ErrorKind::Overflow,
            StateError::LockLost { .. } => ErrorKind::LockLost,
            StateError::Unsupported { .. } => ErrorKind::Unsupported,
            e if e.is_retryable() => ErrorKind::Indeterminate,
            _ => ErrorKind::Backend,
        }
    }
}

/// What the per-key step needs to know about the instant it runs at:
/// whether the current entry's deadline has passed, the deadline of a TTL
/// set now, and the TTL a read reports.
///
/// The sequential model knows its instant exactly (a `u64` of
/// milliseconds). The linearizability model knows only a window of
/// instants, and decides beforehand on which side of the current entry's
/// deadline the operation falls (see [`crate::history_model`]); both run
/// the same [`step`], so both check the same semantics.
pub trait Clock {
    /// A deadline on this clock.
    type Deadline: Clone + PartialEq + Eq + Hash + fmt::Debug;

    /// Whether an entry expiring at `deadline` is live at this instant.
    fn is_live(&self, deadline: &Self::Deadline) -> bool;

    /// The deadline of a TTL of `ttl_ms` milliseconds set at this instant.
    fn deadline_in(&self, ttl_ms: u64) -> Self::Deadline;

    /// The remaining TTL, in milliseconds, that a read of a live entry
    /// expiring at `deadline` reports at this instant.
    fn remaining_ms(&self, deadline: &Self::Deadline) -> u64;
}

/// An exact instant: milliseconds on the model's own clock.
impl Clock for u64 {
    type Deadline = u64;

    fn is_live(&self, deadline: &u64) -> bool {
        // An entry expires at its deadline exactly.
        *self < *deadline
    }

    fn deadline_in(&self, ttl_ms: u64) -> u64 {
        self.saturating_add(ttl_ms)
    }

    fn remaining_ms(&self, deadline: &u64) -> u64 {
        deadline.saturating_sub(*self)
    }
}

/// The stored state of one key in the model, with a deadline of clock `D`
/// (by default exact milliseconds on the model clock).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Stored<D = u64> {
    /// The value.
    pub value: Bytes,
    /// The version.
    pub version: u64,
    /// Deadline; `None` never expires.
    pub expires_at: Option<D>,
}

impl<D> Stored<D> {
    fn is_live<C: Clock<Deadline = D>>(&self, now: &C) -> bool {
        self.expires_at.as_ref().is_none_or(|at| now.is_live(at))
    }

    fn observe<C: Clock<Deadline = D>>(&self, now: &C) -> Observed {
        Observed {
            value: self.value.clone(),
            version: self.version,
            ttl_ms: self.expires_at.as_ref().map(|at| now.remaining_ms(at)),
        }
    }
}

/// The contract's single-key step: applies `op` at instant `now` to the
/// entry `current` (`None` if absent; an expired entry counts as absent)
/// and returns the entry after it and the outcome. This function *is* the
/// per-key semantics; both the sequential model and the linearizability
/// model call it.
///
/// Scans are not single-key and return `Failed(Unsupported)` here.
pub fn step<C: Clock>(
    current: Option<&Stored<C::Deadline>>,
    op: &Op,
    now: C,
) -> (Option<Stored<C::Deadline>>, Outcome) {
    let current = current.filter(|s| s.is_live(&now));
    let unchanged = || current.cloned();
    // The contract's `0 < ttl <= MAX_TTL`: anything else is refused before
    // the write, changing nothing.
    if let Op::Put { ttl_ms: Some(ttl), .. } | Op::Increment { ttl_ms: Some(ttl), .. } = op
        && (*ttl == 0 || u128::from(*ttl) > state_api::MAX_TTL.as_millis())
    {
        return (unchanged(), Outcome::Failed(ErrorKind::InvalidArgument));
    }
    match op {
        Op::Get { .. } => (unchanged(), Outcome::Got(current.map(|s| s.observe(&now)))),
        Op::Put { value, condition, ttl_ms, .. } => {
            let holds = match condition {
                Condition::Always => true,
                Condition::IfAbsent => current.is_none(),
                Condition::IfVersion(Version(v)) => current.is_some_and(|s| s.version == *v),
            };
            if !holds {
                return (unchanged(), Outcome::Rejected(current.map(|s| s.observe(&now))));
            }
            let version = current.map_or(1, |s| s.version + 1);
            let stored = Stored { value: value.clone(), version, expires_at: ttl_ms.map(|t| now.deadline_in(t)) };
            (Some(stored), Outcome::Written(version))
        }
        Op::Delete { condition, .. } => {
            let holds = match (condition, current) {
                (_, None) => false,
                (DeleteCondition::Always, Some(_)) => true,
                (DeleteCondition::IfVersion(Version(v)), Some(s)) => s.version == *v,
            };
            if holds { (None, Outcome::Deleted(true)) } else { (unchanged(), Outcome::Deleted(false)) }
        }
        Op::Increment { delta, ttl_ms, .. } => {
            let (base, version, expires_at) = match current {
                None => (0, 1, ttl_ms.map(|t| now.deadline_in(t))),
                Some(s) => match state_api::counter::parse(&s.value) {
                    Some(n) => (n, s.version + 1, s.expires_at.clone()),
                    None => return (unchanged(), Outcome::Failed(ErrorKind::TypeMismatch)),
                },
            };
            match base.checked_add(*delta) {
                None => (unchanged(), Outcome::Failed(ErrorKind::Overflow)),
                Some(value) => {
                    let stored = Stored { value: Bytes::from(value.to_string()), version, expires_at };
                    (Some(stored), Outcome::Counted { value, version })
                }
            }
        }
        // Not single-key operations: scans are checked by the store model,
        // lock and fenced operations by [`lock_step`] around this step.
        Op::Scan { .. } | Op::Acquire { .. } | Op::Release { .. } | Op::Fenced { .. } => {
            (unchanged(), Outcome::Failed(ErrorKind::Unsupported))
        }
    }
}

/// The lock paired with a key in a history whose leases outlive it: the
/// token of the lease holding it, if any, and the last token issued.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct LockState {
    /// The holder's token; [`LockState::UNKNOWN_HOLDER`] for a lease whose
    /// acquisition never answered.
    pub holder: Option<u64>,
    /// The highest token issued so far (0 before any).
    pub issued: u64,
}

impl LockState {
    /// The holder of a lease granted by an acquisition that never answered:
    /// its token is unknown, and no fence carries it (tokens start at 1).
    pub const UNKNOWN_HOLDER: u64 = 0;
}

/// What a lock or fenced operation does to the lock paired with its key,
/// per the contract, when it returned `output` (`None`: it never answered).
/// Returns every lock state it may leave and, for a fenced write, whether
/// the write itself ran (`true`: the fence held, and the write is the
/// unfenced one, checked by [`step`]; `false`: it must have answered
/// `LockLost` and changed nothing). Empty when `output` is impossible.
pub fn lock_step(lock: LockState, op: &Op, output: Option<&Outcome>) -> Vec<(LockState, bool)> {
    let free = lock.holder.is_none();
    match (op, output) {
        // A grant takes a free lock with a token above every earlier one.
        (Op::Acquire { .. }, Some(Outcome::Acquired(token))) if free && *token > lock.issued => {
            vec![(LockState { holder: Some(*token), issued: *token }, false)]
        }
        (Op::Acquire { .. }, Some(Outcome::Busy)) if !free => vec![(lock, false)],
        (Op::Acquire { .. }, None) if free => {
            vec![(lock, false), (LockState { holder: Some(LockState::UNKNOWN_HOLDER), ..lock }, false)]
        }
        (Op::Acquire { .. }, None) => vec![(lock, false)],
        (Op::Release { token, .. }, Some(Outcome::Released(released))) => {
            let held = lock.holder == Some(*token);
            if *released != held {
                return Vec::new();
            }
            vec![(LockState { holder: if held { None } else { lock.holder }, ..lock }, false)]
        }
        (Op::Release { token, .. }, None) if lock.holder == Some(*token) => {
            vec![(lock, false), (LockState { holder: None, ..lock }, false)]
        }
        (Op::Release { .. }, None) => vec![(lock, false)],
        (Op::Fenced { token, .. }, output) => {
            if lock.holder == Some(*token) {
                vec![(lock, true)]
            } else if output.is_none_or(|o| *o == Outcome::Failed(ErrorKind::LockLost)) {
                vec![(lock, false)]
            } else {
                Vec::new()
            }
        }
        _ => Vec::new(),
    }
}

/// The whole store as a model: a map of keys to stored entries.
#[derive(Debug, Clone, Default)]
pub struct StoreModel {
    entries: BTreeMap<KeyName, Stored>,
}

impl StoreModel {
    /// An empty store.
    pub fn new() -> StoreModel {
        StoreModel::default()
    }

    /// Applies `op` at model time `now` (milliseconds) and returns what the
    /// contract says it returns.
    pub fn apply(&mut self, op: &Op, now: u64) -> Outcome {
        if let Op::Scan { space, prefix, .. } = op {
            let items = self
                .entries
                .range(KeyName::new(space.clone(), prefix.clone())..)
                .take_while(|(k, _)| k.space == *space && k.id.starts_with(prefix.as_str()))
                .filter(|(_, s)| s.is_live(&now))
                .map(|(k, s)| (k.id.clone(), s.observe(&now)))
                .collect();
            return Outcome::Scanned(items);
        }
        let Some(key) = op.key() else { return Outcome::Failed(ErrorKind::Unsupported) };
        let (after, outcome) = step(self.entries.get(key), op, now);
        match after {
            Some(stored) => self.entries.insert(key.clone(), stored),
            None => self.entries.remove(key),
        };
        outcome
    }
}

/// Whether an observed outcome matches the model's, with remaining TTLs
/// allowed to differ by `ttl_tolerance_ms` (clocks move between the model's
/// instant and the backend's) and everything else exact.
pub fn matches(expected: &Outcome, observed: &Outcome, ttl_tolerance_ms: u64) -> bool {
    let entry = |e: &Observed, o: &Observed| {
        e.value == o.value
            && e.version == o.version
            && match (e.ttl_ms, o.ttl_ms) {
                (None, None) => true,
                (Some(e), Some(o)) => e.abs_diff(o) <= ttl_tolerance_ms,
                _ => false,
            }
    };
    let maybe = |e: &Option<Observed>, o: &Option<Observed>| match (e, o) {
        (None, None) => true,
        (Some(e), Some(o)) => entry(e, o),
        _ => false,
    };
    match (expected, observed) {
        (Outcome::Got(e), Outcome::Got(o)) | (Outcome::Rejected(e), Outcome::Rejected(o)) => maybe(e, o),
        (Outcome::Scanned(e), Outcome::Scanned(o)) => {
            e.len() == o.len() && e.iter().zip(o).all(|((ei, ee), (oi, oe))| ei == oi && entry(ee, oe))
        }
        (e, o) => e == o,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(condition: Condition, ttl_ms: Option<u64>) -> Op {
        Op::Put { key: KeyName::new("s", "k"), value: Bytes::from_static(b"v"), condition, ttl_ms }
    }

    #[test]
    fn an_expired_entry_is_absent_for_if_absent_and_restarts_versions() {
        let mut m = StoreModel::new();
        assert_eq!(m.apply(&put(Condition::Always, Some(10)), 0), Outcome::Written(1));
        assert!(matches!(m.apply(&put(Condition::IfAbsent, None), 9), Outcome::Rejected(Some(_))));
        assert_eq!(m.apply(&put(Condition::IfAbsent, None), 10), Outcome::Written(1));
    }

    #[test]
    fn increments_keep_the_creation_deadline() {
        let mut m = StoreModel::new();
        let inc = |ttl| Op::Increment { key: KeyName::new("s", "c"), delta: 1, ttl_ms: ttl };
        m.apply(&inc(Some(100)), 0);
        m.apply(&inc(Some(1000)), 50);
        let got = m.apply(&Op::Get { key: KeyName::new("s", "c") }, 60);
        assert!(matches!(got, Outcome::Got(Some(Observed { ttl_ms: Some(40), version: 2, .. }))), "{got:?}");
        assert_eq!(m.apply(&Op::Get { key: KeyName::new("s", "c") }, 100), Outcome::Got(None));
    }

    #[test]
    fn ttl_tolerance_applies_only_to_ttls() {
        let e = Outcome::Got(Some(Observed { value: Bytes::from_static(b"a"), version: 1, ttl_ms: Some(1000) }));
        let close = Outcome::Got(Some(Observed { value: Bytes::from_static(b"a"), version: 1, ttl_ms: Some(990) }));
        let other = Outcome::Got(Some(Observed { value: Bytes::from_static(b"b"), version: 1, ttl_ms: Some(1000) }));
        assert!(matches(&e, &close, 20));
        assert!(!matches(&e, &close, 5));
        assert!(!matches(&e, &other, 1000));
    }
}
