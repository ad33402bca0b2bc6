//! [`StateStore`] for [`MemoryStore`]: each operation is one closure run
//! under one shard lock, which is what makes it atomic.

use std::ops::Bound;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use super::table::Record;
use super::{BACKEND, MemoryStore};
use crate::capabilities::Capabilities;
use crate::entry::{Condition, Counter, DeleteCondition, Entry, PutOutcome, Version, check_value_len, ttl_millis};
use crate::error::{Result, StateError};
use crate::key::{Key, validate_id, validate_prefix, validate_space};
use crate::scan::{Cursor, ScanItem, ScanPage, validate_limit};
use crate::store::StateStore;
use crate::trace::operation_span;

/// The deadline for a TTL starting at `now`, validated and rounded up to
/// whole milliseconds like every backend does.
fn deadline(now: Instant, ttl: Option<Duration>) -> Result<Option<Instant>> {
    ttl.map(|ttl| ttl_millis(ttl).map(|ms| now + Duration::from_millis(ms))).transpose()
}

#[async_trait]
impl StateStore for MemoryStore {
    fn capabilities(&self) -> Capabilities {
        self.capabilities_value()
    }

    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let _span = operation_span(BACKEND, "get", key.space()).entered();
        let now = Instant::now();
        Ok(self.inner.table.read(key, now, |record| record.to_entry(now)))
    }

    async fn put(&self, key: &Key, value: Bytes, condition: Condition, ttl: Option<Duration>) -> Result<PutOutcome> {
        let _span = operation_span(BACKEND, "put", key.space()).entered();
        check_value_len(value.len(), self.inner.max_value_len)?;
        let now = Instant::now();
        let expires_at = deadline(now, ttl)?;
        self.inner.table.update(key, now, |slot| {
            let holds = match (&condition, slot.as_ref()) {
                (Condition::Always, _) => true,
                (Condition::IfAbsent, current) => current.is_none(),
                (Condition::IfVersion(expected), current) => current.is_some_and(|r| r.version == *expected),
            };
            if !holds {
                return Ok(PutOutcome::Rejected(slot.as_ref().map(|r| r.to_entry(now))));
            }
            let version = match slot.as_ref() {
                Some(current) => current.version.next(key)?,
                None => Version::FIRST,
            };
            *slot = Some(Record { value, version, expires_at });
            Ok(PutOutcome::Written(version))
        })
    }

    async fn delete(&self, key: &Key, condition: DeleteCondition) -> Result<bool> {
        let _span = operation_span(BACKEND, "delete", key.space()).entered();
        let now = Instant::now();
        Ok(self.inner.table.update(key, now, |slot| {
            let holds = match (condition, slot.as_ref()) {
                (_, None) => false,
                (DeleteCondition::Always, Some(_)) => true,
                (DeleteCondition::IfVersion(expected), Some(current)) => current.version == expected,
            };
            if holds {
                *slot = None;
            }
            holds
        }))
    }

    async fn increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter> {
        let _span = operation_span(BACKEND, "increment", key.space()).entered();
        let now = Instant::now();
        let expires_at = deadline(now, ttl)?;
        self.inner.table.update(key, now, |slot| {
            let (current, version, expires_at) = match slot.as_ref() {
                None => (0, Version::FIRST, expires_at),
                Some(record) => {
                    let current = crate::counter::parse(&record.value)
                        .ok_or_else(|| StateError::TypeMismatch { key: key.to_string() })?;
                    // A live counter keeps its creation deadline: fixed window.
                    (current, record.version.next(key)?, record.expires_at)
                }
            };
            let value =
                current.checked_add(delta).ok_or_else(|| StateError::Overflow { key: key.to_string(), delta })?;
            *slot = Some(Record { value: Bytes::from(crate::counter::format(value)), version, expires_at });
            Ok(Counter { value, version })
        })
    }

    async fn scan(&self, space: &str, prefix: &str, cursor: Option<&Cursor>, limit: usize) -> Result<ScanPage> {
        let _span = operation_span(BACKEND, "scan", space).entered();
        validate_space(space)?;
        validate_prefix(prefix)?;
        validate_limit(limit)?;
        let scope = format!("{space}\0{prefix}");
        // The cursor is the last id returned; the next page starts after it.
        let after = match cursor {
            None => None,
            Some(cursor) => {
                let id = cursor.as_str();
                if validate_id(id).is_err() || !id.starts_with(prefix) {
                    return Err(StateError::invalid_argument("cursor", "it does not belong to this space and prefix"));
                }
                Some(format!("{space}\0{id}"))
            }
        };
        let start = after.as_deref().map_or(Bound::Included(scope.as_str()), Bound::Excluded);
        let (found, more) = self.inner.table.range(start, &scope, limit, Instant::now());
        let id_offset = space.len() + 1;
        let items: Vec<ScanItem> =
            found.into_iter().map(|(joined, entry)| ScanItem { id: joined[id_offset..].to_owned(), entry }).collect();
        let next = match items.last() {
            Some(last) if more => Some(Cursor::new(last.id.clone())),
            _ => None,
        };
        Ok(ScanPage { items, next })
    }
}
