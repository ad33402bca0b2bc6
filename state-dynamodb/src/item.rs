//! How entries are stored: attribute names, and item <-> entry conversion.
//!
//! One item per entry, keyed by the contract's key itself: partition key
//! `space` (S), sort key `id` (S). DynamoDB compares strings by their UTF-8
//! bytes, which is exactly the contract's scan order, and stores any
//! character, so the encoding is the identity — injective by construction.
//!
//! | attribute | type | meaning |
//! |---|---|---|
//! | `v` | B | the value, unless it is a counter (empty allowed: only key attributes must be non-empty) |
//! | `n` | N | the value when it is the canonical decimal text of an `i64` |
//! | `ver` | N | the version |
//! | `exp` | N | expiry deadline, epoch milliseconds ([`NEVER_MS`](crate::clock::NEVER_MS) if none) |
//! | `ttl` | N | the same deadline in epoch seconds, for DynamoDB's TTL reaper |
//!
//! A value that is the canonical text of an `i64` (`"42"`, `"-7"`; see
//! [`state_api::counter`]) is stored as the number `n` instead of the bytes
//! `v`. That spelling is unique, so the conversion is lossless both ways
//! (`get` returns exactly the bytes written), and it lets `increment` add
//! on the server in one conditional `UpdateItem` — `n` present means "is a
//! counter", `v` present means "is not" — with DynamoDB's exact 38-digit
//! decimal arithmetic and the `i64` bounds checked in the condition.

use std::collections::HashMap;

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use state_api::{Entry, Key, StateError, Version};

use crate::BACKEND;
use crate::clock::{Deadline, remaining};

/// Attribute names. Expressions refer to them through `#name` placeholders
/// (see [`crate::statements`]), so none can clash with DynamoDB's
/// reserved words.
pub(crate) mod attr {
    /// Partition key: the entry's space (or a lock's reserved partition).
    pub(crate) const SPACE: &str = "space";
    /// Sort key: the entry's id.
    pub(crate) const ID: &str = "id";
    /// The value as bytes.
    pub(crate) const VALUE: &str = "v";
    /// The value as a counter.
    pub(crate) const COUNTER: &str = "n";
    /// The version.
    pub(crate) const VERSION: &str = "ver";
    /// The deadline in epoch milliseconds (entries and leases).
    pub(crate) const EXPIRES: &str = "exp";
    /// The deadline in epoch seconds, for the TTL reaper (entries only).
    pub(crate) const REAP_AT: &str = "ttl";
    /// A lock's current owner id.
    pub(crate) const OWNER: &str = "owner";
    /// A lock's last fencing token.
    pub(crate) const FENCE: &str = "fence";
    /// The latest deadline a waiter in a lock's line was given (epoch ms):
    /// it changes whenever a waiter stands in line. (Named through the
    /// `#lined` placeholder; the statements' tests check the name.)
    #[cfg(test)]
    pub(crate) const LINED: &str = "lined";
    /// The id of the entry first in a lock's line, as the last grant saw
    /// it; valid while `headl` equals `lined` (nobody stood since).
    #[cfg(test)]
    pub(crate) const HEAD: &str = "head";
    /// `lined` when `head` was recorded.
    #[cfg(test)]
    pub(crate) const HEAD_LINED: &str = "headl";
    /// The earliest ticket of the other entries when `head` was recorded.
    #[cfg(test)]
    pub(crate) const HEAD_NEXT: &str = "headt";
}

/// The attributes read back for an entry (`space` and `ttl` are not needed).
pub(crate) const ENTRY_PROJECTION: &str = "#id, #v, #n, #ver, #exp";

/// Bytes of an item that are not the value, at most: attribute names, the
/// longest key the contract allows (128 + 512 bytes) and three numbers.
/// The largest value is DynamoDB's 400 KB item limit minus this.
pub(crate) const ITEM_OVERHEAD: usize = 1024;

/// DynamoDB's largest item, attribute names and key included.
pub(crate) const MAX_ITEM_SIZE: usize = 400 * 1024;

pub(crate) fn string(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

pub(crate) fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// The primary key of an entry.
pub(crate) fn key_of(space: &str, id: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(attr::SPACE.to_owned(), string(space)), (attr::ID.to_owned(), string(id))])
}

/// Where a value goes: `(attribute written, attribute removed, value)`.
pub(crate) fn value_attribute(value: &Bytes) -> (&'static str, &'static str, AttributeValue) {
    match state_api::counter::parse(value) {
        Some(n) => (attr::COUNTER, attr::VALUE, number(n)),
        None => (attr::VALUE, attr::COUNTER, AttributeValue::B(Blob::new(value.to_vec()))),
    }
}

/// A whole entry item, for `PutItem` (which replaces every attribute).
pub(crate) fn entry_item(
    key: &Key,
    value: &Bytes,
    version: u64,
    deadline: Deadline,
) -> HashMap<String, AttributeValue> {
    let (name, _, value) = value_attribute(value);
    HashMap::from([
        (attr::SPACE.to_owned(), string(key.space())),
        (attr::ID.to_owned(), string(key.id())),
        (name.to_owned(), value),
        (attr::VERSION.to_owned(), number(version)),
        (attr::EXPIRES.to_owned(), number(deadline.exp_ms)),
        (attr::REAP_AT.to_owned(), number(deadline.reap_at_seconds)),
    ])
}

/// An entry item as read, live or expired.
#[derive(Debug, Clone)]
pub(crate) struct StoredEntry {
    pub(crate) value: StoredValue,
    pub(crate) version: Version,
    pub(crate) exp_ms: u64,
}

/// The value of a stored entry, as stored.
#[derive(Debug, Clone)]
pub(crate) enum StoredValue {
    Bytes(Bytes),
    Counter(i64),
}

impl StoredEntry {
    /// Decodes an item returned by DynamoDB.
    ///
    /// # Errors
    /// A non-retryable [`StateError::Backend`] if the item was not written
    /// by this backend (missing or mistyped attributes).
    pub(crate) fn from_item(item: &HashMap<String, AttributeValue>) -> Result<StoredEntry, StateError> {
        let value = match (item.get(attr::VALUE), item.get(attr::COUNTER)) {
            (Some(AttributeValue::B(blob)), None) => StoredValue::Bytes(Bytes::copy_from_slice(blob.as_ref())),
            (None, Some(AttributeValue::N(n))) => StoredValue::Counter(parse_number(attr::COUNTER, n)?),
            _ => return Err(malformed("it has neither a binary `v` nor a numeric `n` value")),
        };
        Ok(StoredEntry {
            value,
            version: Version(required_number(item, attr::VERSION)?),
            exp_ms: required_number(item, attr::EXPIRES)?,
        })
    }

    /// Decodes an optional item (as `ReturnValuesOnConditionCheckFailure`
    /// gives it), keeping it only if it is live at `now`.
    pub(crate) fn live_from(
        item: Option<&HashMap<String, AttributeValue>>,
        now: u64,
    ) -> Result<Option<StoredEntry>, StateError> {
        match item.filter(|item| !item.is_empty()) {
            None => Ok(None),
            Some(item) => Ok(Some(StoredEntry::from_item(item)?).filter(|e| e.is_live(now))),
        }
    }

    /// Live means "not yet at its deadline", the same test every condition
    /// expression makes (`exp > :now`).
    pub(crate) fn is_live(&self, now: u64) -> bool {
        self.exp_ms > now
    }

    /// The entry as the contract shows it at `now`.
    pub(crate) fn into_entry(self, now: u64) -> Entry {
        let value = match self.value {
            StoredValue::Bytes(bytes) => bytes,
            StoredValue::Counter(n) => Bytes::from(state_api::counter::format(n)),
        };
        Entry { value, version: self.version, ttl: remaining(self.exp_ms, now) }
    }
}

/// Reads a numeric attribute as an unsigned integer.
pub(crate) fn required_number(item: &HashMap<String, AttributeValue>, name: &str) -> Result<u64, StateError> {
    match item.get(name) {
        Some(AttributeValue::N(text)) => parse_number(name, text),
        Some(_) => Err(malformed(&format!("`{name}` is not a number"))),
        None => Err(malformed(&format!("`{name}` is missing"))),
    }
}

/// Reads a string attribute.
pub(crate) fn optional_string<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(text)) => Some(text),
        _ => None,
    }
}

fn parse_number<T: std::str::FromStr>(name: &str, text: &str) -> Result<T, StateError> {
    text.parse().map_err(|_| malformed(&format!("`{name}` holds {text:?}, which is out of range")))
}

fn malformed(problem: &str) -> StateError {
    StateError::failed(BACKEND, format!("an item in the table was not written by statekit: {problem}"), false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::NEVER_MS;

    fn round_trip(value: &[u8]) -> Bytes {
        let key = Key::new("s", "i").unwrap();
        let item = entry_item(&key, &Bytes::copy_from_slice(value), 3, Deadline::at(NEVER_MS));
        StoredEntry::from_item(&item).unwrap().into_entry(0).value
    }

    #[test]
    fn canonical_integers_are_stored_as_numbers_and_read_back_exactly() {
        for text in ["0", "42", "-7", "9223372036854775807", "-9223372036854775808"] {
            let (name, _, _) = value_attribute(&Bytes::from(text));
            assert_eq!(name, attr::COUNTER, "{text}");
            assert_eq!(round_trip(text.as_bytes()), text);
        }
    }

    #[test]
    fn everything_else_is_stored_as_bytes_and_read_back_exactly() {
        for value in [&b""[..], b"007", b"+1", b"-0", b"1.0", b" 1", b"\xff\x00", b"9223372036854775808"] {
            let (name, _, _) = value_attribute(&Bytes::copy_from_slice(value));
            assert_eq!(name, attr::VALUE, "{value:?}");
            assert_eq!(round_trip(value), value);
        }
    }

    #[test]
    fn expiry_is_judged_at_the_millisecond() {
        let key = Key::new("s", "i").unwrap();
        let item = entry_item(&key, &Bytes::from("x"), 1, Deadline::at(1_000));
        let stored = StoredEntry::from_item(&item).unwrap();
        assert!(stored.is_live(999));
        assert!(!stored.is_live(1_000));
        assert!(StoredEntry::live_from(Some(&item), 1_000).unwrap().is_none());
        assert_eq!(stored.into_entry(999).ttl, Some(std::time::Duration::from_millis(1)));
    }

    #[test]
    fn foreign_items_are_reported_not_misread() {
        let mut item = key_of("s", "i");
        item.insert("v".into(), AttributeValue::S("text".into()));
        assert!(matches!(StoredEntry::from_item(&item), Err(StateError::Backend { retryable: false, .. })));
    }
}
