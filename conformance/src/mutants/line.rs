//! A lock line that keeps a granted call's entry
//! ([`Mutation::GrantedStaysInLine`](super::Mutation::GrantedStaysInLine)).

use async_trait::async_trait;
use bytes::Bytes;
use state_api::driver::{Attempt, Contention, Listing, LockDriver, ScanRequest, StoreDriver, Ttl, Waiter, Watch};
use state_api::{
    Capabilities, Condition, Counter, DeleteCondition, Entry, Fence, Key, Lease, MemoryStore, PutOutcome, Result,
    StorageScope, StorageUsage,
};
use tokio::time::Instant;

/// The in-memory store, except that a call granted from the line leaves
/// its client's entry standing, live until it falls silent
/// ([`LINE_WINDOW`](state_api::driver::LINE_WINDOW)): the next client's
/// waiter is held back that long while the lock is free. Nothing else
/// changes, so every order is still first come, first served.
pub(crate) struct LineKept(pub(crate) MemoryStore);

#[async_trait]
impl StoreDriver for LineKept {
    fn declare(&self) -> Capabilities {
        self.0.declare()
    }

    async fn read(&self, key: &Key) -> Result<Option<Entry>> {
        self.0.read(key).await
    }

    async fn write(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        self.0.write(key, value, condition, ttl, fence).await
    }

    async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        self.0.remove(key, condition, fence).await
    }

    async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        self.0.add(key, delta, ttl, fence).await
    }

    async fn list(&self, request: ScanRequest<'_>) -> Result<Listing> {
        self.0.list(request).await
    }

    async fn usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        self.0.usage(scope).await
    }

    async fn reclaim(&self) -> Result<u64> {
        self.0.reclaim().await
    }

    fn contention(&self) -> Option<&Contention> {
        self.0.contention()
    }
}

#[async_trait]
impl LockDriver for LineKept {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        LockDriver::attempt(&self.0, name, owner, ttl).await
    }

    async fn attempt_in_line(&self, name: &str, owner: &str, ttl: Ttl, waiter: &Waiter<'_>) -> Result<Attempt> {
        let answer = LockDriver::attempt_in_line(&self.0, name, owner, ttl, waiter).await?;
        if matches!(answer, Attempt::Acquired(_)) {
            // Asking again, now that the lock is held, is refused, and
            // stands the client's entry at the granted call's ticket.
            LockDriver::attempt_in_line(&self.0, name, "line-kept", ttl, waiter).await?;
        }
        Ok(answer)
    }

    async fn leave_line(&self, name: &str, waiter: &str) -> Result<()> {
        self.0.leave_line(name, waiter).await
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        self.0.renew(lease, ttl).await
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        self.0.free(lease).await
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        self.0.holds(lease).await
    }

    async fn watch(&self, name: &str, deadline: Instant) -> Option<Watch> {
        self.0.watch(name, deadline).await
    }
}
