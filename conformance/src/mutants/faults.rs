//! Fault mutants: client-side defects that only show when the network
//! fails. Each wraps a real backend (the kit's fault properties need a
//! server to put the proxy in front of), passes every fair-weather
//! property, and is caught by one fault property.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use state_api::driver::{Step, acquire_loop};
use state_api::{
    Backend, Capabilities, Condition, Counter, Cursor, DeleteCondition, Durability, Entry, Fence, FencingToken, Key,
    Lease, LockService, PutOutcome, Result, ScanPage, StateError, StateStore, Version,
};

use crate::kit::Property;

/// The ways a fault mutant mishandles a failed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FaultMutation {
    /// An `increment` that failed with a retryable error is sent again
    /// until it succeeds: when the first one was applied and only its
    /// reply was lost, the counter moves twice.
    RetriesIncrement,
    /// A `put` whose reply was lost is reported written (as the version
    /// after the one this client saw last), as if no news were good news.
    SuccessWhenReplyLost,
    /// After its first failed request, every later request fails too, as
    /// a connection pool that never replaces a broken connection.
    NeverRecovers,
    /// An acquisition whose reply was lost is taken as granted, with the
    /// token after the last one this client saw.
    AcquiredWhenReplyLost,
    /// The store declares itself durable whatever its server keeps: run
    /// against a server without persistence, a crash loses acknowledged
    /// writes that the declaration promised.
    ClaimsDurable,
}

impl FaultMutation {
    /// Every fault mutation.
    pub const ALL: [FaultMutation; 5] = [
        FaultMutation::RetriesIncrement,
        FaultMutation::SuccessWhenReplyLost,
        FaultMutation::NeverRecovers,
        FaultMutation::AcquiredWhenReplyLost,
        FaultMutation::ClaimsDurable,
    ];

    /// The fault property meant to catch it.
    pub fn caught_by(&self) -> Property {
        match self {
            FaultMutation::RetriesIncrement | FaultMutation::SuccessWhenReplyLost => Property::FaultsLinearizable,
            FaultMutation::NeverRecovers => Property::FaultRecovery,
            FaultMutation::AcquiredWhenReplyLost => Property::FaultsLocks,
            FaultMutation::ClaimsDurable => Property::ServerRestart,
        }
    }

    /// `backend`, broken in this way.
    pub fn wrap(&self, backend: Backend) -> Backend {
        let mutant = Arc::new(FaultMutant { mutation: *self, inner: backend.store, wedged: AtomicBool::new(false) });
        let locks = Arc::new(FaultLocks { mutation: *self, inner: backend.locks, last_token: AtomicU64::new(0) });
        Backend::new(mutant, locks).with_schedules(backend.schedules)
    }
}

struct FaultMutant {
    mutation: FaultMutation,
    inner: Arc<dyn StateStore>,
    wedged: AtomicBool,
}

impl FaultMutant {
    /// Passes `result` on, wedging the mutant at its first retryable
    /// failure when that is the mutation; a wedged mutant fails at once.
    fn through<T>(&self, result: Result<T>) -> Result<T> {
        if self.mutation == FaultMutation::NeverRecovers {
            if matches!(&result, Err(e) if e.is_retryable()) {
                self.wedged.store(true, Ordering::Relaxed);
            }
            if self.wedged.load(Ordering::Relaxed) {
                return Err(StateError::unavailable("fault-mutant", "the pool's connection is broken", "wedged"));
            }
        }
        result
    }
}

#[async_trait]
impl StateStore for FaultMutant {
    fn capabilities(&self) -> Capabilities {
        let declared = self.inner.capabilities();
        match self.mutation {
            FaultMutation::ClaimsDurable => declared.with_durability(Durability::Durable),
            _ => declared,
        }
    }

    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        self.through(self.inner.get(key).await)
    }

    async fn put(&self, key: &Key, value: Bytes, condition: Condition, ttl: Option<Duration>) -> Result<PutOutcome> {
        let result = self.inner.put(key, value, condition, ttl).await;
        match (self.mutation, &result, condition) {
            (FaultMutation::SuccessWhenReplyLost, Err(e), Condition::IfVersion(seen)) if e.is_retryable() => {
                Ok(PutOutcome::Written(Version(seen.0.saturating_add(1))))
            }
            (FaultMutation::SuccessWhenReplyLost, Err(e), _) if e.is_retryable() => Ok(PutOutcome::Written(Version(1))),
            _ => self.through(result),
        }
    }

    async fn delete(&self, key: &Key, condition: DeleteCondition) -> Result<bool> {
        self.through(self.inner.delete(key, condition).await)
    }

    async fn put_fenced(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Duration>,
        fence: &Fence,
    ) -> Result<PutOutcome> {
        self.through(self.inner.put_fenced(key, value, condition, ttl, fence).await)
    }

    async fn delete_fenced(&self, key: &Key, condition: DeleteCondition, fence: &Fence) -> Result<bool> {
        self.through(self.inner.delete_fenced(key, condition, fence).await)
    }

    async fn increment_fenced(&self, key: &Key, delta: i64, ttl: Option<Duration>, fence: &Fence) -> Result<Counter> {
        self.through(self.inner.increment_fenced(key, delta, ttl, fence).await)
    }

    async fn increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter> {
        let mut result = self.inner.increment(key, delta, ttl).await;
        if self.mutation == FaultMutation::RetriesIncrement {
            for _ in 0..20 {
                match &result {
                    Err(e) if e.is_retryable() => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        result = self.inner.increment(key, delta, ttl).await;
                    }
                    _ => break,
                }
            }
        }
        self.through(result)
    }

    async fn scan(&self, space: &str, prefix: &str, cursor: Option<&Cursor>, limit: usize) -> Result<ScanPage> {
        self.through(self.inner.scan(space, prefix, cursor, limit).await)
    }
}

struct FaultLocks {
    mutation: FaultMutation,
    inner: Arc<dyn LockService>,
    /// The last token this client saw.
    last_token: AtomicU64,
}

#[async_trait]
impl LockService for FaultLocks {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        let requested_at = tokio::time::Instant::now();
        match self.inner.try_acquire(name, ttl).await {
            Ok(Some(lease)) => {
                self.last_token.fetch_max(lease.token().0, Ordering::Relaxed);
                Ok(Some(lease))
            }
            Err(e) if e.is_retryable() && self.mutation == FaultMutation::AcquiredWhenReplyLost => {
                let token = FencingToken(self.last_token.fetch_add(1, Ordering::Relaxed) + 1);
                Ok(Some(Lease::new(name, Lease::new_owner_id(), token, requested_at, ttl)))
            }
            other => other,
        }
    }

    // The one wait loop over this client's try_acquire, polling, where
    // that is what is broken.
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        if self.mutation != FaultMutation::AcquiredWhenReplyLost {
            return self.inner.acquire(name, ttl, timeout).await;
        }
        let attempt = || async {
            Ok(match self.try_acquire(name, ttl).await? {
                Some(lease) => Step::Acquired(lease),
                None => Step::Held(None),
            })
        };
        acquire_loop(timeout, None, attempt, |_| async { None }).await
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        self.inner.extend(lease, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.inner.release(lease).await
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        self.inner.is_held(lease).await
    }
}
