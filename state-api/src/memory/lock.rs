//! [`LockDriver`] for [`MemoryStore`].

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::MemoryStore;
use crate::driver::{Attempt, Delivery, LockDriver, ReleaseHub, Ttl, Watch};
use crate::error::{Result, StateError};
use crate::lock::{Fence, FencingToken, Lease, saturating_add};

/// The held locks, and the store's one fencing counter. A free lock has
/// no slot: tokens come from the counter shared by every name, so they
/// increase across releases and expiries of each name without a record
/// per name, and locking a new name per job leaves nothing behind.
pub(super) struct LockTable {
    slots: Mutex<Slots>,
    /// Releases are announced here in the same step that frees the slot;
    /// the table is its own feed, so the hub is always live.
    releases: ReleaseHub,
}

#[derive(Default)]
struct Slots {
    held: HashMap<String, Holder>,
    /// The last fencing token issued, for any name.
    last_token: u64,
}

impl Default for LockTable {
    fn default() -> Self {
        let releases = ReleaseHub::new(Delivery::AllNames);
        releases.set_live(true);
        LockTable { slots: Mutex::new(Slots::default()), releases }
    }
}

struct Holder {
    owner: String,
    token: u64,
    expires_at: Instant,
}

impl LockTable {
    fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Attempt {
        let now = Instant::now();
        let mut slots = self.slots.lock();
        if let Some(holder) = slots.held.get(name).filter(|h| now < h.expires_at) {
            return Attempt::Held(Some(holder.expires_at - now));
        }
        slots.last_token += 1;
        let holder = Holder {
            owner: owner.to_owned(),
            token: slots.last_token,
            expires_at: saturating_add(now, ttl.duration()),
        };
        slots.held.insert(name.to_owned(), holder);
        Attempt::Acquired(FencingToken(slots.last_token))
    }

    /// Runs `change` on the holder if `lease` still holds the lock at `now`
    /// (`false`, nothing run, if it does not); the lease is removed when
    /// `change` answers `false`.
    fn with_held(&self, lease: &Lease, now: Instant, change: impl FnOnce(&mut Holder) -> bool) -> bool {
        let mut slots = self.slots.lock();
        let Some(holder) = slots.held.get_mut(lease.name()) else { return false };
        if holder.owner != lease.owner() || now >= holder.expires_at {
            return false;
        }
        if !change(holder) {
            slots.held.remove(lease.name());
        }
        true
    }

    /// Runs `write` if `fence`'s lock is held at `now` by the acquisition
    /// that issued its token, with the table of held locks locked
    /// throughout, so that no acquisition, extension or release comes
    /// between the check and the write; `LockLost` without running it
    /// otherwise.
    pub(super) fn fenced<T>(&self, fence: &Fence, now: Instant, write: impl FnOnce() -> Result<T>) -> Result<T> {
        let slots = self.slots.lock();
        let holds = slots.held.get(fence.lock()).is_some_and(|h| h.token == fence.token().0 && now < h.expires_at);
        if !holds {
            return Err(StateError::LockLost { name: fence.lock().to_owned() });
        }
        write()
    }

    /// Removes leases expired at `now`; returns how many.
    pub(super) fn sweep_expired(&self, now: Instant) -> usize {
        let mut slots = self.slots.lock();
        let before = slots.held.len();
        slots.held.retain(|_, holder| now < holder.expires_at);
        before - slots.held.len()
    }

    /// Lease records whose names start with `prefix`, expired ones not yet
    /// swept included.
    pub(super) fn records(&self, prefix: &str) -> usize {
        self.slots.lock().held.keys().filter(|name| name.starts_with(prefix)).count()
    }
}

#[async_trait]
impl LockDriver for MemoryStore {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        Ok(self.inner.locks.attempt(name, owner, ttl))
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        let now = Instant::now();
        Ok(self.inner.locks.with_held(lease, now, |holder| {
            holder.expires_at = saturating_add(now, ttl.duration());
            true
        }))
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        let locks = &self.inner.locks;
        let freed = locks.with_held(lease, Instant::now(), |_| false);
        if freed {
            locks.releases.released(lease.name());
        }
        Ok(freed)
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        Ok(self.inner.locks.with_held(lease, Instant::now(), |_| true))
    }

    /// Waiters are woken by the release itself: no polling.
    async fn watch(&self, name: &str, _deadline: Instant) -> Option<Watch> {
        Some(self.inner.locks.releases.watch(name))
    }
}
