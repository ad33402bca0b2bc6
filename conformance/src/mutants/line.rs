//! Broken lock lines: one that keeps the granted call's entry
//! ([`Mutation::GrantedStaysInLine`](super::Mutation::GrantedStaysInLine)),
//! and ones that delete the other clients' entries on a grant
//! ([`Mutation::GrantWipesLine`](super::Mutation::GrantWipesLine)) or when a
//! waiter gives up ([`Mutation::GiveUpWipesLine`](super::Mutation::GiveUpWipesLine)).

use std::collections::BTreeSet;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use state_api::driver::{Attempt, Contention, Listing, LockDriver, ScanRequest, StoreDriver, Ttl, Waiter, Watch};
use state_api::{
    Capabilities, Condition, Counter, DeleteCondition, Entry, Fence, Key, Lease, MemoryStore, PutOutcome, Result,
    StorageScope, StorageUsage,
};
use tokio::time::Instant;

/// What the line does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Defect {
    /// The granted call leaves its client's entry standing, live until it
    /// falls silent ([`LINE_WINDOW`](state_api::driver::LINE_WINDOW)): the
    /// next client's waiter is held back that long while the lock is free.
    /// Nothing else changes, so every order is still first come, first
    /// served.
    KeepsGranted,
    /// The grant deletes every other client's entry from the line (a
    /// PostgreSQL statement mutant the kit missed in session 10). They
    /// stand again at their next attempt, and until then a newcomer takes
    /// the lock, once it is free, ahead of those older waiters.
    WipesOthers,
    /// A waiter giving up deletes every client's entry from the line, not
    /// only its own (a PostgreSQL statement mutant, `AND` to `OR` in
    /// `lock_leave.sql`, that the kit missed in session 10).
    LeaveWipesOthers,
    /// A waiter giving up stays in the line: leaving it answers `Ok(())`
    /// and changes nothing (a `state-postgres` Rust mutant of `leave_line`
    /// that the kit missed in session 12). A free lock is then refused to
    /// every `try_acquire` until the entry falls silent
    /// ([`LINE_WINDOW`](state_api::driver::LINE_WINDOW)).
    LeaveIgnored,
}

/// The in-memory store with a lock line broken by `defect`. The clients
/// of one store share `seen`, the waiter ids that have stood in line.
pub(crate) struct LineMutant {
    pub(crate) store: MemoryStore,
    pub(crate) defect: Defect,
    pub(crate) seen: Arc<Mutex<BTreeSet<String>>>,
}

impl LineMutant {
    /// Deletes the entries of every waiter but `waiter` from the line.
    async fn wipe(&self, name: &str, waiter: &str) -> Result<()> {
        let others: Vec<String> = self.seen.lock().iter().filter(|id| *id != waiter).cloned().collect();
        for other in others {
            self.store.leave_line(name, &other).await?;
        }
        Ok(())
    }
}

#[async_trait]
impl StoreDriver for LineMutant {
    fn declare(&self) -> Capabilities {
        self.store.declare()
    }

    async fn read(&self, key: &Key) -> Result<Option<Entry>> {
        self.store.read(key).await
    }

    async fn write(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        self.store.write(key, value, condition, ttl, fence).await
    }

    async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        self.store.remove(key, condition, fence).await
    }

    async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        self.store.add(key, delta, ttl, fence).await
    }

    async fn list(&self, request: ScanRequest<'_>) -> Result<Listing> {
        self.store.list(request).await
    }

    async fn usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        self.store.usage(scope).await
    }

    async fn reclaim(&self) -> Result<u64> {
        self.store.reclaim().await
    }

    fn contention(&self) -> Option<&Contention> {
        self.store.contention()
    }
}

#[async_trait]
impl LockDriver for LineMutant {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        LockDriver::attempt(&self.store, name, owner, ttl).await
    }

    async fn attempt_in_line(&self, name: &str, owner: &str, ttl: Ttl, waiter: &Waiter<'_>) -> Result<Attempt> {
        self.seen.lock().insert(waiter.id.to_owned());
        let answer = LockDriver::attempt_in_line(&self.store, name, owner, ttl, waiter).await?;
        if !matches!(answer, Attempt::Acquired(_)) {
            return Ok(answer);
        }
        match self.defect {
            Defect::KeepsGranted => {
                // Asking again, now that the lock is held, is refused, and
                // stands the client's entry at the granted call's ticket.
                LockDriver::attempt_in_line(&self.store, name, "line-kept", ttl, waiter).await?;
            }
            Defect::WipesOthers => self.wipe(name, waiter.id).await?,
            Defect::LeaveWipesOthers | Defect::LeaveIgnored => {}
        }
        Ok(answer)
    }

    async fn leave_line(&self, name: &str, waiter: &str) -> Result<()> {
        match self.defect {
            Defect::LeaveWipesOthers => self.wipe(name, waiter).await?,
            Defect::LeaveIgnored => return Ok(()),
            Defect::KeepsGranted | Defect::WipesOthers => {}
        }
        self.store.leave_line(name, waiter).await
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        self.store.renew(lease, ttl).await
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        self.store.free(lease).await
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        self.store.holds(lease).await
    }

    async fn watch(&self, name: &str, deadline: Instant) -> Option<Watch> {
        self.store.watch(name, deadline).await
    }
}
