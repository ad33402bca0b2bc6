//! [`LockDriver`] for [`MemoryStore`].

use std::collections::HashMap;

use async_trait::async_trait;
use parking_lot::Mutex;
use tokio::time::Instant;

use super::MemoryStore;
use crate::driver::{Attempt, Delivery, LockDriver, ReleaseHub, Ttl, Waiter, Watch};
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
    /// Each contended lock's line of waiters, in ticket order: a waiter's
    /// ticket, id and the instant it stops being live unless it asks again.
    /// A lock nobody waits for has no line.
    lines: HashMap<String, Vec<Standing>>,
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

/// A waiter in a lock's line.
struct Standing {
    ticket: u64,
    id: String,
    until: Instant,
}

impl Standing {
    fn place(&self) -> (u64, &str) {
        (self.ticket, &self.id)
    }
}

impl Slots {
    /// The place of the first live entry in `name`'s line other than
    /// `own`'s, and until when it is live, after forgetting the entries
    /// whose window passed.
    fn first_live(&mut self, name: &str, now: Instant, own: &str) -> Option<((u64, &str), Instant)> {
        let line = self.lines.get_mut(name)?;
        line.retain(|standing| now < standing.until);
        if line.is_empty() {
            self.lines.remove(name);
            return None;
        }
        let line = self.lines.get(name)?;
        line.iter().find(|standing| standing.id != own).map(|first| (first.place(), first.until))
    }

    /// Puts `waiter`'s entry in `name`'s line at the place of `ticket`,
    /// live until `until`.
    fn stand(&mut self, name: &str, id: &str, ticket: u64, until: Instant) {
        let line = self.lines.entry(name.to_owned()).or_default();
        line.retain(|standing| standing.id != id);
        let place = line.partition_point(|standing| standing.place() < (ticket, id));
        line.insert(place, Standing { ticket, id: id.to_owned(), until });
    }

    /// Takes `waiter` out of `name`'s line.
    fn leave(&mut self, name: &str, waiter: &str) {
        if let Some(line) = self.lines.get_mut(name) {
            line.retain(|standing| standing.id != waiter);
            if line.is_empty() {
                self.lines.remove(name);
            }
        }
    }
}

impl LockTable {
    /// One attempt: by `waiter` in the line where given (see
    /// [`LockDriver::attempt_in_line`]), else as `try_acquire`.
    fn attempt(&self, name: &str, owner: &str, ttl: Ttl, waiter: Option<&Waiter<'_>>) -> Attempt {
        let now = Instant::now();
        let mut slots = self.slots.lock();
        let holder = slots.held.get(name).filter(|h| now < h.expires_at).map(|h| h.expires_at - now);
        // A free lock is the first live waiter's: someone else's if anyone
        // in line comes before this caller (`try_acquire` comes last).
        let ahead = slots
            .first_live(name, now, waiter.map_or("", |w| w.id))
            .filter(|(first, _)| waiter.is_none_or(|w| *first < (w.ticket, w.id)))
            .map(|(_, until)| until);
        let refused = match (holder, ahead) {
            (Some(left), _) => Some(left),
            // Theirs until they fall silent.
            (None, Some(until)) => Some(until - now),
            (None, None) => None,
        };
        if let Some(hint) = refused {
            if let Some(waiter) = waiter {
                slots.stand(name, waiter.id, waiter.ticket, saturating_add(now, waiter.window.duration()));
            }
            return Attempt::Held(Some(hint));
        }
        match waiter {
            // The client's next call keeps its place.
            Some(waiter @ Waiter { next: Some(next), .. }) => {
                slots.stand(name, waiter.id, *next, saturating_add(now, waiter.window.duration()));
            }
            Some(waiter) => slots.leave(name, waiter.id),
            None => {}
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

    /// Removes leases expired at `now`, and waiters whose window passed;
    /// returns how many leases.
    pub(super) fn sweep_expired(&self, now: Instant) -> usize {
        let mut slots = self.slots.lock();
        let before = slots.held.len();
        slots.held.retain(|_, holder| now < holder.expires_at);
        slots.lines.retain(|_, line| {
            line.retain(|standing| now < standing.until);
            !line.is_empty()
        });
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
        Ok(self.inner.locks.attempt(name, owner, ttl, None))
    }

    async fn attempt_in_line(&self, name: &str, owner: &str, ttl: Ttl, waiter: &Waiter<'_>) -> Result<Attempt> {
        Ok(self.inner.locks.attempt(name, owner, ttl, Some(waiter)))
    }

    async fn leave_line(&self, name: &str, waiter: &str) -> Result<()> {
        self.inner.locks.slots.lock().leave(name, waiter);
        Ok(())
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::lock::LockService;

    fn ttl(ms: u64) -> Ttl {
        Ttl::new(Duration::from_millis(ms)).unwrap_or_else(|e| panic!("{e}"))
    }

    fn waiter(id: &str, ticket: u64, next: Option<u64>) -> Waiter<'_> {
        Waiter { id, ticket, window: ttl(1_000), next }
    }

    #[tokio::test(start_paused = true)]
    async fn a_free_lock_goes_to_the_first_live_entry_in_line_and_a_silent_one_is_skipped() {
        let store = MemoryStore::new();
        let held = store.try_acquire("job", Duration::from_secs(60)).await.unwrap_or_else(|e| panic!("{e}"));
        let held = held.unwrap_or_else(|| panic!("a free lock was refused"));
        // Two clients' entries stand in line behind the holder, the later
        // ticket first.
        let later = LockDriver::attempt_in_line(&store, "job", "o1", ttl(60_000), &waiter("b", 20, None)).await;
        let earlier = LockDriver::attempt_in_line(&store, "job", "o2", ttl(60_000), &waiter("a", 10, None)).await;
        assert!(matches!(later, Ok(Attempt::Held(_))) && matches!(earlier, Ok(Attempt::Held(_))));
        store.release(&held).await.unwrap_or_else(|e| panic!("{e}"));

        // Free, but "a" comes first: "b" and try_acquire are refused.
        let b = LockDriver::attempt_in_line(&store, "job", "o1", ttl(60_000), &waiter("b", 20, None)).await;
        assert!(matches!(b, Ok(Attempt::Held(_))), "{b:?}");
        assert!(store.try_acquire("job", Duration::from_secs(1)).await.unwrap_or_else(|e| panic!("{e}")).is_none());

        // "a" falls silent for its window: "b" is next.
        tokio::time::advance(Duration::from_millis(1_001)).await;
        let b = LockDriver::attempt_in_line(&store, "job", "o1", ttl(60_000), &waiter("b", 20, Some(30))).await;
        assert!(matches!(b, Ok(Attempt::Acquired(_))), "{b:?}");
        // "b" stays in line for its client's next call (ticket 30): a
        // newcomer with ticket 40 is behind it, one with ticket 25 ahead.
        LockDriver::free(&store, &Lease::new("job", "o1", FencingToken(0), Instant::now(), Duration::from_secs(60)))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let behind = LockDriver::attempt_in_line(&store, "job", "o3", ttl(60_000), &waiter("c", 40, None)).await;
        assert!(matches!(behind, Ok(Attempt::Held(_))), "{behind:?}");
        let ahead = LockDriver::attempt_in_line(&store, "job", "o4", ttl(60_000), &waiter("d", 25, None)).await;
        assert!(matches!(ahead, Ok(Attempt::Acquired(_))), "{ahead:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_that_leaves_the_line_holds_nobody_up() {
        let store = MemoryStore::new();
        let blocked = LockDriver::attempt_in_line(&store, "job", "o1", ttl(60_000), &waiter("a", 10, None)).await;
        assert!(matches!(blocked, Ok(Attempt::Acquired(_))), "an empty line and a free lock: {blocked:?}");
        let standing = LockDriver::attempt_in_line(&store, "job", "o2", ttl(60_000), &waiter("b", 20, None)).await;
        assert!(matches!(standing, Ok(Attempt::Held(_))));
        LockDriver::leave_line(&store, "job", "b").await.unwrap_or_else(|e| panic!("{e}"));
        let holder = Lease::new("job", "o1", FencingToken(0), Instant::now(), Duration::from_secs(60));
        assert!(LockDriver::free(&store, &holder).await.unwrap_or_else(|e| panic!("{e}")));
        assert!(store.try_acquire("job", Duration::from_secs(1)).await.unwrap_or_else(|e| panic!("{e}")).is_some());
        assert!(store.inner.locks.slots.lock().lines.is_empty(), "an empty line is forgotten");
    }
}
