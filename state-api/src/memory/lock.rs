//! [`LockService`] for [`MemoryStore`].

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{BACKEND, MemoryStore};
use crate::error::{Result, StateError};
use crate::key::validate_lock_name;
use crate::lock::{FencingToken, Lease, LockService, deadline_after, validate_lease_ttl};
use crate::trace::operation_span;

/// Every lock name ever acquired, with its holder and fencing counter.
/// Slots are never removed: the counter must keep increasing across
/// releases and expiries, so forgetting it would reissue old tokens.
#[derive(Default)]
pub(super) struct LockTable {
    slots: Mutex<HashMap<String, Slot>>,
}

#[derive(Default)]
struct Slot {
    holder: Option<Holder>,
    last_token: u64,
    released: Arc<Notify>,
}

struct Holder {
    owner: String,
    expires_at: Instant,
}

enum Attempt {
    Acquired(Lease),
    /// Held by someone else until this instant, unless released earlier.
    HeldUntil(Instant),
}

impl LockTable {
    fn attempt(&self, name: &str, ttl: Duration) -> Result<Attempt> {
        let ttl = Duration::from_millis(validate_lease_ttl(ttl)?);
        let now = Instant::now();
        let mut slots = self.slots.lock();
        let slot = slots.entry(name.to_owned()).or_default();
        if let Some(holder) = slot.holder.as_ref().filter(|h| now < h.expires_at) {
            return Ok(Attempt::HeldUntil(holder.expires_at));
        }
        slot.last_token += 1;
        let owner = Lease::new_owner_id();
        slot.holder = Some(Holder { owner: owner.clone(), expires_at: now + ttl });
        Ok(Attempt::Acquired(Lease::new(name, owner, FencingToken(slot.last_token), now, ttl)))
    }

    /// The notifier that fires when `name` is released.
    fn release_signal(&self, name: &str) -> Arc<Notify> {
        Arc::clone(&self.slots.lock().entry(name.to_owned()).or_default().released)
    }

    /// Runs `change` on the holder if `lease` still holds the lock at `now`.
    fn with_held<T>(&self, lease: &Lease, now: Instant, change: impl FnOnce(&mut Slot) -> T) -> Result<T> {
        let mut slots = self.slots.lock();
        match slots.get_mut(lease.name()) {
            Some(slot) if slot.holder.as_ref().is_some_and(|h| h.owner == lease.owner() && now < h.expires_at) => {
                Ok(change(slot))
            }
            _ => Err(StateError::LockLost { name: lease.name().to_owned() }),
        }
    }
}

#[async_trait]
impl LockService for MemoryStore {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        let _span = operation_span(BACKEND, "try_acquire", "").entered();
        validate_lock_name(name)?;
        match self.inner.locks.attempt(name, ttl)? {
            Attempt::Acquired(lease) => Ok(Some(lease)),
            Attempt::HeldUntil(_) => Ok(None),
        }
    }

    /// Waits without polling: a waiter sleeps until the holder releases
    /// (woken by a notification) or the holder's lease expires, whichever
    /// comes first, then tries again.
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        validate_lock_name(name)?;
        let deadline = deadline_after(timeout);
        let signal = self.inner.locks.release_signal(name);
        loop {
            // Register for the release signal *before* trying, so a release
            // between the failed attempt and the wait is not missed.
            let mut released = std::pin::pin!(signal.notified());
            released.as_mut().enable();
            let held_until = {
                let _span = operation_span(BACKEND, "acquire", "").entered();
                match self.inner.locks.attempt(name, ttl)? {
                    Attempt::Acquired(lease) => return Ok(lease),
                    Attempt::HeldUntil(until) => until,
                }
            };
            if Instant::now() >= deadline {
                return Err(StateError::Timeout { operation: "acquire", after: timeout });
            }
            // Either outcome leads to another attempt; the timeout is not an error here.
            let _ = tokio::time::timeout_at(held_until.min(deadline), released).await;
        }
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        let _span = operation_span(BACKEND, "extend", "").entered();
        let ttl = Duration::from_millis(validate_lease_ttl(ttl)?);
        let now = Instant::now();
        self.inner.locks.with_held(lease, now, |slot| {
            if let Some(holder) = slot.holder.as_mut() {
                holder.expires_at = now + ttl;
            }
        })?;
        lease.renewed(now, ttl);
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let _span = operation_span(BACKEND, "release", "").entered();
        self.inner.locks.with_held(lease, Instant::now(), |slot| {
            slot.holder = None;
            slot.released.notify_waiters();
        })
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        let _span = operation_span(BACKEND, "is_held", "").entered();
        Ok(self.inner.locks.with_held(lease, Instant::now(), |_| ()).is_ok())
    }
}
