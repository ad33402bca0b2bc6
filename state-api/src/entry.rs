//! Entries, versions, write conditions and TTLs.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::error::StateError;

/// The version of an entry: 1 when the key is created, +1 on every
/// successful write (put, increment). A deleted or expired key starts again
/// at 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
pub struct Version(pub u64);

impl Version {
    /// The version of a freshly created key.
    pub const FIRST: Version = Version(1);

    /// The version after one more write.
    ///
    /// # Errors
    /// [`StateError::Overflow`] after `u64::MAX` writes, which no real
    /// workload reaches; stated so that no backend has to panic.
    pub fn next(self, key: &crate::Key) -> Result<Version, StateError> {
        self.0.checked_add(1).map(Version).ok_or_else(|| StateError::Overflow { key: key.to_string(), delta: 1 })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

/// A live entry as read from a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The stored bytes.
    pub value: Bytes,
    /// Its version.
    pub version: Version,
    /// Time left before it expires, as seen by the expiry clock at the
    /// moment of the read, at millisecond resolution; `None` if it never
    /// expires.
    pub ttl: Option<Duration>,
}

/// The condition under which [`crate::StateStore::put`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
pub enum Condition {
    /// Write whatever is there.
    Always,
    /// Write only if the key is absent (never written, deleted, or expired).
    IfAbsent,
    /// Write only if the key is live with exactly this version.
    IfVersion(Version),
}

/// The condition under which [`crate::StateStore::delete`] removes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "json", derive(serde::Serialize, serde::Deserialize))]
pub enum DeleteCondition {
    /// Remove whatever is there.
    Always,
    /// Remove only if the key is live with exactly this version.
    IfVersion(Version),
}

/// The result of a conditional put.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutOutcome {
    /// The value was written and now has this version.
    Written(Version),
    /// The condition did not hold; nothing changed. Carries the entry that
    /// made it fail, read atomically with the check (`None` if the key is
    /// absent, which only an `IfVersion` condition can fail on).
    Rejected(Option<Entry>),
}

impl PutOutcome {
    /// The new version if the write happened.
    pub fn written(&self) -> Option<Version> {
        match self {
            PutOutcome::Written(v) => Some(*v),
            PutOutcome::Rejected(_) => None,
        }
    }
}

/// The state of a counter after [`crate::StateStore::increment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    /// The value after the increment.
    pub value: i64,
    /// The entry's version after the increment.
    pub version: Version,
}

/// The longest TTL any backend accepts: ten years.
pub const MAX_TTL: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// Converts a TTL to whole milliseconds, the contract's resolution, rounding
/// up so that an entry never expires before the requested time.
///
/// # Errors
/// [`StateError::InvalidArgument`] for a zero TTL or one over [`MAX_TTL`].
pub fn ttl_millis(ttl: Duration) -> Result<u64, StateError> {
    if ttl.is_zero() {
        return Err(StateError::invalid_argument("ttl", "a TTL must be positive; use None for no expiry"));
    }
    if ttl > MAX_TTL {
        return Err(StateError::invalid_argument("ttl", format!("{ttl:?} exceeds the maximum TTL of ten years")));
    }
    let millis = ttl.as_nanos().div_ceil(1_000_000);
    // MAX_TTL in milliseconds fits u64 with room to spare.
    Ok(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Checks a value's size against a backend's limit.
///
/// # Errors
/// [`StateError::ValueTooLarge`] if `len > max`.
pub fn check_value_len(len: usize, max: usize) -> Result<(), StateError> {
    if len > max { Err(StateError::ValueTooLarge { size: len, max }) } else { Ok(()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_rounds_up_to_the_millisecond() {
        assert_eq!(ttl_millis(Duration::from_micros(1)).unwrap(), 1);
        assert_eq!(ttl_millis(Duration::from_micros(1500)).unwrap(), 2);
        assert_eq!(ttl_millis(Duration::from_millis(250)).unwrap(), 250);
    }

    #[test]
    fn zero_and_huge_ttls_are_refused() {
        assert!(matches!(ttl_millis(Duration::ZERO), Err(StateError::InvalidArgument { name: "ttl", .. })));
        assert!(ttl_millis(MAX_TTL).is_ok());
        assert!(ttl_millis(MAX_TTL + Duration::from_millis(1)).is_err());
    }
}
