//! Decoding the replies of this crate's scripts into contract types.
//!
//! Each script documents the shape it returns; a reply of any other shape
//! means something that is not this crate wrote to its keys (or the server
//! is not Redis), and is reported as a non-retryable backend error rather
//! than guessed at.

use std::time::Duration;

use bytes::Bytes;
use redis::Value;
use state_api::{Entry, StateError, Version};

use crate::error::unexpected_reply;

/// An integer reply.
pub(crate) fn int(operation: &'static str, value: &Value) -> Result<i64, StateError> {
    match value {
        Value::Int(n) => Ok(*n),
        other => Err(unexpected_reply(operation, &format!("expected an integer, got {}", shape(other)))),
    }
}

/// A bulk-string reply, moved out without copying.
pub(crate) fn bytes(operation: &'static str, value: Value) -> Result<Bytes, StateError> {
    match value {
        Value::BulkString(data) => Ok(Bytes::from(data)),
        other => Err(unexpected_reply(operation, &format!("expected a string, got {}", shape(&other)))),
    }
}

/// A UTF-8 bulk-string reply.
pub(crate) fn text(operation: &'static str, value: Value) -> Result<String, StateError> {
    match value {
        Value::BulkString(data) => {
            String::from_utf8(data).map_err(|_| unexpected_reply(operation, "a string that is not UTF-8"))
        }
        other => Err(unexpected_reply(operation, &format!("expected a string, got {}", shape(&other)))),
    }
}

/// An array reply.
pub(crate) fn array(operation: &'static str, value: Value) -> Result<Vec<Value>, StateError> {
    match value {
        Value::Array(items) => Ok(items),
        other => Err(unexpected_reply(operation, &format!("expected an array, got {}", shape(&other)))),
    }
}

/// A version: an integer, or its decimal text (from an entry's head or a
/// counter's `ver` field). Versions start at 1.
pub(crate) fn version(operation: &'static str, value: &Value) -> Result<Version, StateError> {
    let number = match value {
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(text) => std::str::from_utf8(text).ok().and_then(|t| t.parse::<u64>().ok()),
        _ => None,
    };
    match number {
        Some(n) if n >= 1 => Ok(Version(n)),
        _ => Err(unexpected_reply(operation, &format!("expected a version, got {}", shape(value)))),
    }
}

/// What `PTTL` answered for a live key, as the contract's remaining TTL:
/// `None` for no expiry (-1); otherwise whole milliseconds, at least 1. A
/// key is live through the millisecond of its deadline, when PTTL says 0.
pub(crate) fn remaining_ttl(operation: &'static str, value: &Value) -> Result<Option<Duration>, StateError> {
    match int(operation, value)? {
        -1 => Ok(None),
        ms if ms >= 0 => Ok(Some(Duration::from_millis(ms.unsigned_abs().max(1)))),
        ms => Err(unexpected_reply(operation, &format!("a live entry with PTTL {ms}"))),
    }
}

/// An entry from its value, version and PTTL replies.
pub(crate) fn entry(operation: &'static str, value: Value, version: &Value, pttl: &Value) -> Result<Entry, StateError> {
    Ok(Entry {
        value: bytes(operation, value)?,
        version: self::version(operation, version)?,
        ttl: remaining_ttl(operation, pttl)?,
    })
}

/// Splits an array reply into exactly `N` items.
pub(crate) fn exactly<const N: usize>(operation: &'static str, items: Vec<Value>) -> Result<[Value; N], StateError> {
    let len = items.len();
    <[Value; N]>::try_from(items).map_err(|_| unexpected_reply(operation, &format!("expected {N} items, got {len}")))
}

/// A short description of a reply's type, for error messages: never its
/// content, which may be a stored value.
fn shape(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) => "a string",
        Value::Array(_) => "an array",
        Value::SimpleString(_) | Value::Okay | Value::VerbatimString { .. } => "a status",
        Value::ServerError(_) => "an error",
        _ => "another type",
    }
}

/// Whether a `COMMAND INFO <name>` reply describes a command: the server
/// answers `[nil]` for a name it does not know.
pub(crate) fn names_a_command(value: &Value) -> bool {
    matches!(value, Value::Array(items) if matches!(items.first(), Some(Value::Array(_))))
}

#[cfg(test)]
mod command_info {
    use super::*;

    #[test]
    fn a_known_command_is_described_and_an_unknown_one_is_nil() {
        let described = Value::Array(vec![Value::Array(vec![Value::BulkString(b"spublish".to_vec())])]);
        assert!(names_a_command(&described));
        assert!(!names_a_command(&Value::Array(vec![Value::Nil])));
        assert!(!names_a_command(&Value::Nil));
    }
}
