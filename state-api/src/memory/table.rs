//! The sharded, ordered map behind the in-memory store.

use std::collections::BTreeMap;
use std::ops::Bound;

use bytes::Bytes;
use parking_lot::{RwLock, RwLockReadGuard};
use tokio::time::Instant;

use crate::entry::{Entry, Version};
use crate::key::Key;

/// Power of two, so a shard is picked with a mask. 32 shards make two
/// writers on different keys collide rarely while keeping a scan's merge
/// cheap.
const SHARDS: usize = 32;

/// One stored entry, live or expired.
#[derive(Debug, Clone)]
pub(super) struct Record {
    pub value: Bytes,
    pub version: Version,
    pub expires_at: Option<Instant>,
}

impl Record {
    /// Stands in for a record while an update holds it.
    const PLACEHOLDER: Record = Record { value: Bytes::new(), version: Version(0), expires_at: None };

    /// Whether the entry still exists at `now`. An entry expires at its
    /// deadline exactly: at `now == expires_at` it is gone.
    pub fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|at| now < at)
    }

    pub fn to_entry(&self, now: Instant) -> Entry {
        Entry {
            value: self.value.clone(),
            version: self.version,
            // Rounded up to whole milliseconds: a live entry reports at
            // least 1 ms, never a misleading zero.
            ttl: self.expires_at.map(|at| {
                let left = at.saturating_duration_since(now);
                std::time::Duration::from_millis(u64::try_from(left.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX))
            }),
        }
    }
}

type Map = BTreeMap<Box<str>, Record>;

pub(super) struct Table {
    shards: Box<[RwLock<Map>]>,
}

impl Table {
    pub fn new() -> Table {
        Table { shards: (0..SHARDS).map(|_| RwLock::new(Map::new())).collect() }
    }

    fn shard(&self, key: &Key) -> &RwLock<Map> {
        // The fingerprint is avalanche-mixed, so its low bits are uniform.
        let index = (key.fingerprint() as usize) & (SHARDS - 1);
        &self.shards[index]
    }

    /// Runs `read` on the live record at `key`, if any, under a read lock.
    pub fn read<T>(&self, key: &Key, now: Instant, read: impl FnOnce(&Record) -> T) -> Option<T> {
        let map = self.shard(key).read();
        map.get(key.joined()).filter(|r| r.is_live(now)).map(read)
    }

    /// Runs `update` on the slot at `key` under the shard's write lock: the
    /// whole read-check-write is one atomic step. The slot holds the live
    /// record, or `None` if the key is absent or expired (an expired record
    /// is treated as absent here, in the same step, never read-then-delete).
    pub fn update<T>(&self, key: &Key, now: Instant, update: impl FnOnce(&mut Option<Record>) -> T) -> T {
        let mut map = self.shard(key).write();
        let joined = key.joined();
        let Some(stored) = map.get_mut(joined) else {
            let mut slot = None;
            let result = update(&mut slot);
            if let Some(record) = slot {
                map.insert(joined.into(), record);
            }
            return result;
        };
        // Move the live record out (no clone, no key allocation) and put
        // back whatever the update leaves; an expired record is dropped.
        let mut slot = stored.is_live(now).then(|| std::mem::replace(stored, Record::PLACEHOLDER));
        let result = update(&mut slot);
        match slot {
            Some(record) => *stored = record,
            None => {
                map.remove(joined);
            }
        }
        result
    }

    /// Up to `limit` live entries whose joined key is in `(start, ..)` and
    /// starts with `prefix`, in order, plus whether more remain.
    pub fn range(&self, start: Bound<&str>, prefix: &str, limit: usize, now: Instant) -> (Vec<(String, Entry)>, bool) {
        let guards: Vec<RwLockReadGuard<'_, Map>> = self.shards.iter().map(|s| s.read()).collect();
        let mut cursors: Vec<_> = guards
            .iter()
            .map(|map| {
                map.range::<str, _>((start, Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .filter(|(_, r)| r.is_live(now))
                    .peekable()
            })
            .collect();
        let mut items = Vec::new();
        loop {
            // The smallest head among the shards is the next key in order;
            // a linear pick beats a heap at 32 shards.
            let mut next: Option<(usize, &str)> = None;
            for (i, cursor) in cursors.iter_mut().enumerate() {
                if let Some(&(head, _)) = cursor.peek()
                    && next.is_none_or(|(_, best)| &**head < best)
                {
                    next = Some((i, head));
                }
            }
            let next = next.map(|(i, _)| i);
            let Some(index) = next else { return (items, false) };
            if items.len() == limit {
                return (items, true);
            }
            if let Some((joined, record)) = cursors[index].next() {
                items.push((joined.to_string(), record.to_entry(now)));
            }
        }
    }

    /// Removes records expired at `now`. Candidates are found under read
    /// locks and re-checked under the write lock: an entry rewritten in
    /// between has a new deadline (or none) and is kept.
    pub fn sweep_expired(&self, now: Instant) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let expired: Vec<Box<str>> =
                shard.read().iter().filter(|(_, r)| !r.is_live(now)).map(|(k, _)| k.clone()).collect();
            if expired.is_empty() {
                continue;
            }
            let mut map = shard.write();
            for key in expired {
                if map.get(&key).is_some_and(|r| !r.is_live(now)) {
                    map.remove(&key);
                    removed += 1;
                }
            }
        }
        removed
    }

    /// Records (live or expired) whose joined key starts with `prefix`.
    pub fn count_prefixed(&self, prefix: &str) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .count()
            })
            .sum()
    }
}
