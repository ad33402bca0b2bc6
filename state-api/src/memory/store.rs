//! [`StoreDriver`] for [`MemoryStore`]: each operation is one closure run
//! under one shard lock, which is what makes it atomic. Arguments arrive
//! checked (see [`crate::driver`]).

use std::ops::Bound;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use super::MemoryStore;
use super::table::Record;
use crate::capabilities::Capabilities;
use crate::driver::{Contention, Listing, ScanRequest, StoreDriver, Ttl};
use crate::entry::{Condition, Counter, DeleteCondition, Entry, PutOutcome, Version};
use crate::error::{Result, StateError};
use crate::key::Key;
use crate::lock::{Fence, saturating_add};
use crate::scan::ScanItem;
use crate::storage::{StorageScope, StorageUsage};

/// The deadline of a TTL starting at `now`.
fn deadline(now: Instant, ttl: Option<Ttl>) -> Option<Instant> {
    ttl.map(|ttl| saturating_add(now, ttl.duration()))
}

#[async_trait]
impl StoreDriver for MemoryStore {
    fn declare(&self) -> Capabilities {
        self.capabilities_value()
    }

    fn contention(&self) -> Option<&Contention> {
        Some(&self.contention)
    }

    async fn read(&self, key: &Key) -> Result<Option<Entry>> {
        let now = Instant::now();
        Ok(self.inner.table.read(key, now, |record| record.to_entry(now)))
    }

    async fn write(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        self.behind(fence, |now| self.write_at(now, key, value, condition, ttl))
    }

    async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        self.behind(fence, |now| Ok(self.remove_at(now, key, condition)))
    }

    async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        self.behind(fence, |now| self.add_at(now, key, delta, ttl))
    }

    async fn usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        let records =
            scope.spaces.iter().map(|space| self.inner.table.count_prefixed(&format!("{space}\0"))).sum::<usize>();
        let lock_records = self.inner.locks.records(scope.lock_prefix);
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Ok(StorageUsage { records: count(records), index_entries: 0, lock_records: count(lock_records) })
    }

    async fn reclaim(&self) -> Result<u64> {
        Ok(u64::try_from(self.sweep_expired()).unwrap_or(u64::MAX))
    }

    async fn list(&self, request: ScanRequest<'_>) -> Result<Listing> {
        let ScanRequest { space, prefix, after, limit } = request;
        let scope = format!("{space}\0{prefix}");
        // The cursor is the last id returned; the next page starts after it.
        let after = after.map(|id| format!("{space}\0{id}"));
        let start = after.as_deref().map_or(Bound::Included(scope.as_str()), Bound::Excluded);
        let (found, more) = self.inner.table.range(start, &scope, limit, Instant::now());
        let id_offset = space.len() + 1;
        let items: Vec<ScanItem> =
            found.into_iter().map(|(joined, entry)| ScanItem { id: joined[id_offset..].to_owned(), entry }).collect();
        Ok(Listing::from_items(items, more))
    }
}

impl MemoryStore {
    /// Runs `write` now; behind `fence`, under the lock table's mutex and
    /// only while the fence holds.
    fn behind<T>(&self, fence: Option<&Fence>, write: impl FnOnce(Instant) -> Result<T>) -> Result<T> {
        let now = Instant::now();
        match fence {
            Some(fence) => self.inner.locks.fenced(fence, now, || write(now)),
            None => write(now),
        }
    }

    /// `write` at `now`: one closure under one shard lock.
    fn write_at(
        &self,
        now: Instant,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
    ) -> Result<PutOutcome> {
        let expires_at = deadline(now, ttl);
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

    /// `remove` at `now`.
    fn remove_at(&self, now: Instant, key: &Key, condition: DeleteCondition) -> bool {
        self.inner.table.update(key, now, |slot| {
            let holds = match (condition, slot.as_ref()) {
                (_, None) => false,
                (DeleteCondition::Always, Some(_)) => true,
                (DeleteCondition::IfVersion(expected), Some(current)) => current.version == expected,
            };
            if holds {
                *slot = None;
            }
            holds
        })
    }

    /// `add` at `now`.
    fn add_at(&self, now: Instant, key: &Key, delta: i64, ttl: Option<Ttl>) -> Result<Counter> {
        let expires_at = deadline(now, ttl);
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
}
