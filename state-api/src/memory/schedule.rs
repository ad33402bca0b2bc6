//! Schedules in memory: per space, the waiting items ordered by
//! `(due_at, id)` and the claimed ones ordered by lease deadline, behind one
//! mutex, so every operation is one atomic step.
//!
//! A claimed item leaves the waiting order, so `due` and `claim` walk only
//! what they return; a claim whose lease has passed goes back to the
//! waiting order the next time the space is listed (the claims are ordered
//! by deadline, so that costs only the claims that expired). An emptied
//! space is dropped.

use std::collections::{BTreeSet, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::MemoryStore;
use crate::driver::{ScheduleDriver, Ttl};
use crate::error::Result;
use crate::key::Key;
use crate::lock::saturating_add;
use crate::schedule::{EpochMillis, ScheduledItem};

#[derive(Default)]
pub(super) struct ScheduleTable {
    spaces: Mutex<HashMap<String, Space>>,
}

#[derive(Default)]
struct Space {
    items: HashMap<String, Item>,
    /// Unclaimed items.
    waiting: BTreeSet<(EpochMillis, String)>,
    /// Claimed items, by the claim's deadline.
    claimed: BTreeSet<(Instant, String)>,
}

struct Item {
    due_at: EpochMillis,
    payload: Bytes,
    claim: Option<ItemClaim>,
}

struct ItemClaim {
    owner: String,
    until: Instant,
}

impl Space {
    fn remove(&mut self, id: &str) -> Option<Item> {
        let item = self.items.remove(id)?;
        match &item.claim {
            Some(claim) => self.claimed.remove(&(claim.until, id.to_owned())),
            None => self.waiting.remove(&(item.due_at, id.to_owned())),
        };
        Some(item)
    }

    /// Returns every claim whose lease has passed to waiting.
    fn expire_claims(&mut self, now: Instant) {
        while let Some((until, id)) = self.claimed.first().cloned() {
            if until > now {
                break;
            }
            self.claimed.pop_first();
            if let Some(item) = self.items.get_mut(&id) {
                item.claim = None;
                self.waiting.insert((item.due_at, id));
            }
        }
    }

    /// The first `limit` waiting ids due at `now`.
    fn due_ids(&self, now: EpochMillis, limit: usize) -> Vec<String> {
        self.waiting.iter().take_while(|(due_at, _)| *due_at <= now).take(limit).map(|(_, id)| id.clone()).collect()
    }

    /// `owner`'s claim of `id`, if it still holds at `now`.
    fn held_by(&self, id: &str, owner: &str, now: Instant) -> bool {
        self.items
            .get(id)
            .and_then(|item| item.claim.as_ref())
            .is_some_and(|claim| claim.owner == owner && claim.until > now)
    }

    fn item(&self, space: &str, id: &str) -> Option<ScheduledItem> {
        let item = self.items.get(id)?;
        let key = Key::new(space, id).ok()?;
        Some(ScheduledItem { key, due_at: item.due_at, payload: item.payload.clone() })
    }
}

impl ScheduleTable {
    fn with_space<T>(&self, space: &str, f: impl FnOnce(&mut Space) -> T) -> T {
        let mut spaces = self.spaces.lock();
        let entry = spaces.entry(space.to_owned()).or_default();
        let answer = f(entry);
        if entry.items.is_empty() {
            spaces.remove(space);
        }
        answer
    }
}

#[async_trait]
impl ScheduleDriver for MemoryStore {
    async fn enqueue(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()> {
        self.inner.schedules.with_space(key.space(), |space| {
            space.remove(key.id());
            space.items.insert(key.id().to_owned(), Item { due_at, payload, claim: None });
            space.waiting.insert((due_at, key.id().to_owned()));
        });
        Ok(())
    }

    async fn dequeue(&self, key: &Key) -> Result<bool> {
        Ok(self.inner.schedules.with_space(key.space(), |space| space.remove(key.id()).is_some()))
    }

    async fn peek(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>> {
        let instant = Instant::now();
        Ok(self.inner.schedules.with_space(space, |items| {
            items.expire_claims(instant);
            items.due_ids(now, limit).iter().filter_map(|id| items.item(space, id)).collect()
        }))
    }

    async fn take(
        &self,
        space: &str,
        now: EpochMillis,
        limit: usize,
        owner: &str,
        lease: Ttl,
    ) -> Result<Vec<ScheduledItem>> {
        let instant = Instant::now();
        let until = saturating_add(instant, lease.duration());
        Ok(self.inner.schedules.with_space(space, |items| {
            items.expire_claims(instant);
            let ids = items.due_ids(now, limit);
            let mut taken = Vec::with_capacity(ids.len());
            for id in ids {
                let Some(item) = items.items.get_mut(&id) else { continue };
                items.waiting.remove(&(item.due_at, id.clone()));
                item.claim = Some(ItemClaim { owner: owner.to_owned(), until });
                items.claimed.insert((until, id.clone()));
                taken.extend(items.item(space, &id));
            }
            taken
        }))
    }

    async fn finish(&self, key: &Key, owner: &str) -> Result<bool> {
        let now = Instant::now();
        Ok(self
            .inner
            .schedules
            .with_space(key.space(), |space| space.held_by(key.id(), owner, now) && space.remove(key.id()).is_some()))
    }

    async fn unclaim(&self, key: &Key, owner: &str) -> Result<bool> {
        let now = Instant::now();
        Ok(self.inner.schedules.with_space(key.space(), |space| {
            if !space.held_by(key.id(), owner, now) {
                return false;
            }
            let Some(item) = space.items.get_mut(key.id()) else { return false };
            if let Some(claim) = item.claim.take() {
                space.claimed.remove(&(claim.until, key.id().to_owned()));
            }
            space.waiting.insert((item.due_at, key.id().to_owned()));
            true
        }))
    }
}
