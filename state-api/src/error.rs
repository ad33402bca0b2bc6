//! The one error type of the contract.

use std::fmt;
use std::time::Duration;

/// A boxed source error, kept so callers can inspect what went wrong below.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Shorthand for results of contract operations.
pub type Result<T, E = StateError> = std::result::Result<T, E>;

/// Every failure a contract operation can report.
///
/// Input errors ([`InvalidKey`](Self::InvalidKey),
/// [`InvalidArgument`](Self::InvalidArgument),
/// [`ValueTooLarge`](Self::ValueTooLarge)) are raised before any I/O and
/// change nothing. [`TypeMismatch`](Self::TypeMismatch) and
/// [`Overflow`](Self::Overflow) are raised by the same atomic step that would
/// have written, and also change nothing.
///
/// Messages name keys and backends but never values, and never secrets:
/// backends redact URLs (see [`crate::redact_url`]) before they reach an error.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A space, id, prefix or lock name breaks the key rules.
    #[error("invalid key: {0}")]
    InvalidKey(KeyError),
    /// Another argument is out of range (a zero TTL, a zero scan limit, a
    /// cursor from another scan).
    #[error("invalid argument `{name}`: {reason}")]
    InvalidArgument {
        /// Which argument.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The value is larger than the backend's declared maximum.
    #[error("value of {size} bytes exceeds the backend maximum of {max} bytes")]
    ValueTooLarge {
        /// Size of the refused value.
        size: usize,
        /// The backend's limit ([`crate::Capabilities::max_value_len`]).
        max: usize,
    },
    /// `increment` found a value that is not a canonical decimal `i64`.
    #[error("the value at {key} is not a counter (a canonical decimal i64)")]
    TypeMismatch {
        /// The key holding the value.
        key: String,
    },
    /// `increment` would leave the `i64` range.
    #[error("incrementing the counter at {key} by {delta} would overflow i64")]
    Overflow {
        /// The key holding the counter.
        key: String,
        /// The refused delta.
        delta: i64,
    },
    /// The lease is no longer held: it expired, was released, or was taken
    /// over. Nothing was changed.
    #[error("the lease on lock {name:?} is no longer held")]
    LockLost {
        /// The lock's name.
        name: String,
    },
    /// The claim no longer holds its schedule item: its lease passed, or
    /// the item was completed, released, cancelled or rescheduled. Nothing
    /// was changed.
    #[error("the claim on schedule item {id:?} in {space:?} is no longer held")]
    ClaimLost {
        /// The item's space.
        space: String,
        /// The item's id.
        id: String,
    },
    /// The operation did not complete in time. Its effect is unknown unless
    /// the operation says otherwise (`acquire` never holds a lock after it
    /// times out).
    #[error("{operation} timed out after {after:?}")]
    Timeout {
        /// Which operation.
        operation: &'static str,
        /// How long it waited.
        after: Duration,
    },
    /// The backend could not be reached or refused the connection; retrying
    /// later may succeed. The operation's effect is unknown.
    #[error("backend {backend} is unavailable: {message}")]
    Unavailable {
        /// Backend name.
        backend: &'static str,
        /// What failed, without secrets.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
    /// The backend does not offer this feature (see [`crate::Features`]).
    #[error("backend {backend} does not support {feature}")]
    Unsupported {
        /// Backend name.
        backend: &'static str,
        /// The missing feature.
        feature: &'static str,
    },
    /// Any other backend failure: a server error, a schema mismatch, bad
    /// credentials.
    #[error("backend {backend} failed: {message}")]
    Backend {
        /// Backend name.
        backend: &'static str,
        /// What failed, without secrets.
        message: String,
        /// Whether retrying the same call may succeed (throttling, conflicts).
        retryable: bool,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl StateError {
    /// Whether the same call may succeed if retried later: true for
    /// [`Unavailable`](Self::Unavailable), [`Timeout`](Self::Timeout) and
    /// retryable [`Backend`](Self::Backend) errors; false for input errors,
    /// type errors, lost leases and unsupported features, which fail again.
    pub fn is_retryable(&self) -> bool {
        match self {
            StateError::Unavailable { .. } | StateError::Timeout { .. } => true,
            StateError::Backend { retryable, .. } => *retryable,
            _ => false,
        }
    }

    /// A [`StateError::InvalidArgument`].
    pub fn invalid_argument(name: &'static str, reason: impl Into<String>) -> StateError {
        StateError::InvalidArgument { name, reason: reason.into() }
    }

    /// A [`StateError::Backend`] that keeps `source`.
    pub fn backend(
        backend: &'static str,
        message: impl Into<String>,
        retryable: bool,
        source: impl Into<BoxError>,
    ) -> StateError {
        StateError::Backend { backend, message: message.into(), retryable, source: Some(source.into()) }
    }

    /// A [`StateError::Backend`] without a source error: a failure the
    /// backend detected itself (a limit, a refused configuration).
    pub fn failed(backend: &'static str, message: impl Into<String>, retryable: bool) -> StateError {
        StateError::Backend { backend, message: message.into(), retryable, source: None }
    }

    /// A non-retryable [`StateError::Backend`] for a reply the backend did
    /// not expect from its service (a protocol or schema mismatch).
    pub fn unexpected_reply(backend: &'static str, operation: &'static str, what: impl fmt::Display) -> StateError {
        StateError::failed(backend, format!("{operation}: unexpected reply from the server: {what}"), false)
    }

    /// A [`StateError::Timeout`] of `operation` after `after`.
    pub fn timed_out(operation: &'static str, after: Duration) -> StateError {
        StateError::Timeout { operation, after }
    }

    /// A [`StateError::Unavailable`] that keeps `source`.
    pub fn unavailable(backend: &'static str, message: impl Into<String>, source: impl Into<BoxError>) -> StateError {
        StateError::Unavailable { backend, message: message.into(), source: Some(source.into()) }
    }
}

/// Which part of a key broke a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyPart {
    /// The space.
    Space,
    /// The id.
    Id,
    /// A scan prefix.
    Prefix,
    /// A lock name.
    LockName,
}

impl fmt::Display for KeyPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyPart::Space => "space",
            KeyPart::Id => "id",
            KeyPart::Prefix => "prefix",
            KeyPart::LockName => "lock name",
        })
    }
}

/// Why a key part was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The part is empty.
    #[error("{part} is empty")]
    Empty {
        /// Which part.
        part: KeyPart,
    },
    /// The part is longer than its limit.
    #[error("{part} is {len} bytes long, the maximum is {max}")]
    TooLong {
        /// Which part.
        part: KeyPart,
        /// Its length in UTF-8 bytes.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The part contains a NUL character.
    #[error("{part} contains NUL, which no backend accepts")]
    Nul {
        /// Which part.
        part: KeyPart,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_transient_failures_are_retryable() {
        assert!(StateError::Timeout { operation: "get", after: Duration::from_secs(1) }.is_retryable());
        assert!(StateError::unavailable("redis", "connection refused", "refused").is_retryable());
        assert!(StateError::backend("dynamodb", "throttled", true, "x").is_retryable());
        assert!(!StateError::backend("postgres", "syntax", false, "x").is_retryable());
        assert!(!StateError::LockLost { name: "l".into() }.is_retryable());
        assert!(!StateError::ValueTooLarge { size: 2, max: 1 }.is_retryable());
    }

    #[test]
    fn the_source_error_is_kept() {
        use std::error::Error;
        let err = StateError::unavailable("redis", "connect failed", std::io::Error::other("refused"));
        assert_eq!(err.source().map(ToString::to_string).as_deref(), Some("refused"));
    }
}
