//! [`LockDriver`] for [`MemoryStore`].

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::MemoryStore;
use crate::driver::{Attempt, Delivery, LockDriver, ReleaseHub, Ttl, Watch};
use crate::error::Result;
use crate::lock::{FencingToken, Lease, saturating_add};

/// Every lock name ever acquired, with its holder and fencing counter.
/// Slots are never removed: the counter must keep increasing across
/// releases and expiries, so forgetting it would reissue old tokens.
pub(super) struct LockTable {
    slots: Mutex<HashMap<String, Slot>>,
    /// Releases are announced here in the same step that frees the slot;
    /// the table is its own feed, so the hub is always live.
    releases: ReleaseHub,
}

impl Default for LockTable {
    fn default() -> Self {
        let releases = ReleaseHub::new(Delivery::AllNames);
        releases.set_live(true);
        LockTable { slots: Mutex::new(HashMap::new()), releases }
    }
}

#[derive(Default)]
struct Slot {
    holder: Option<Holder>,
    last_token: u64,
}

struct Holder {
    owner: String,
    expires_at: Instant,
}

impl LockTable {
    fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Attempt {
        let now = Instant::now();
        let mut slots = self.slots.lock();
        let slot = slots.entry(name.to_owned()).or_default();
        if let Some(holder) = slot.holder.as_ref().filter(|h| now < h.expires_at) {
            return Attempt::Held(Some(holder.expires_at - now));
        }
        slot.last_token += 1;
        slot.holder = Some(Holder { owner: owner.to_owned(), expires_at: saturating_add(now, ttl.duration()) });
        Attempt::Acquired(FencingToken(slot.last_token))
    }

    /// Runs `change` on the holder if `lease` still holds the lock at `now`;
    /// `false` (nothing run) if it does not.
    fn with_held(&self, lease: &Lease, now: Instant, change: impl FnOnce(&mut Slot)) -> bool {
        let mut slots = self.slots.lock();
        match slots.get_mut(lease.name()) {
            Some(slot) if slot.holder.as_ref().is_some_and(|h| h.owner == lease.owner() && now < h.expires_at) => {
                change(slot);
                true
            }
            _ => false,
        }
    }
}

#[async_trait]
impl LockDriver for MemoryStore {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        Ok(self.inner.locks.attempt(name, owner, ttl))
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        let now = Instant::now();
        Ok(self.inner.locks.with_held(lease, now, |slot| {
            if let Some(holder) = slot.holder.as_mut() {
                holder.expires_at = saturating_add(now, ttl.duration());
            }
        }))
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        let locks = &self.inner.locks;
        let freed = locks.with_held(lease, Instant::now(), |slot| slot.holder = None);
        if freed {
            locks.releases.released(lease.name());
        }
        Ok(freed)
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        Ok(self.inner.locks.with_held(lease, Instant::now(), |_| ()))
    }

    /// Waiters are woken by the release itself: no polling.
    async fn watch(&self, name: &str, _deadline: Instant) -> Option<Watch> {
        Some(self.inner.locks.releases.watch(name))
    }
}
