//! Distributed locks with fencing tokens.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::driver::{Step, acquire_loop};
use crate::error::{Result, StateError};

/// A number that strictly increases across every acquisition of one lock
/// name, takeovers after expiry included. Pass it to the resource the lock
/// protects, which rejects writes carrying a token lower than one it has
/// seen: a paused stale holder then cannot corrupt it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FencingToken(pub u64);

impl FencingToken {
    /// The token of every lease of a backend that does not declare
    /// [`fencing_tokens`](crate::Features::fencing_tokens): tokens that
    /// fence start at 1, so a resource seeing 0 knows it is unprotected.
    pub const NONE: FencingToken = FencingToken(0);
}

impl fmt::Display for FencingToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Proof of one acquisition of a lock: its name, the random owner id that
/// the backend checks on `extend` and `release`, and its fencing token.
///
/// A `Lease` is plain data: cloning it does not duplicate the lock, and a
/// clone kept after the lease is lost can only fail with
/// [`StateError::LockLost`].
#[derive(Clone, PartialEq, Eq)]
pub struct Lease {
    name: String,
    owner: String,
    token: FencingToken,
    valid_until: Instant,
}

impl Lease {
    /// Builds a lease. Backend authors call this; `requested_at` must be an
    /// instant taken *before* the acquiring request was sent, so that
    /// [`valid_until`](Self::valid_until) never overstates the lease.
    pub fn new(
        name: impl Into<String>,
        owner: impl Into<String>,
        token: FencingToken,
        requested_at: Instant,
        ttl: Duration,
    ) -> Lease {
        Lease { name: name.into(), owner: owner.into(), token, valid_until: saturating_add(requested_at, ttl) }
    }

    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The owner id the backend stored for this acquisition.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The fencing token of this acquisition.
    pub fn token(&self) -> FencingToken {
        self.token
    }

    /// A conservative local deadline: the lease is certainly valid before
    /// this instant (measured from before the request that acquired or last
    /// extended it), unless it was released. Do protected work only while
    /// `Instant::now() < valid_until()`, with a margin for clock drift.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }

    /// Moves the local deadline after a successful extend.
    pub fn renewed(&mut self, requested_at: Instant, ttl: Duration) {
        self.valid_until = saturating_add(requested_at, ttl);
    }

    /// The fence of this lease, for [fenced writes](crate::StateStore::put_fenced).
    pub fn fence(&self) -> Fence {
        Fence { lock: self.name.clone(), token: self.token }
    }

    /// A fresh random owner id, for backends to store with an acquisition.
    pub fn new_owner_id() -> String {
        format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The owner id is a bearer secret for this lease: keep it out of logs.
        f.debug_struct("Lease").field("name", &self.name).field("token", &self.token).finish_non_exhaustive()
    }
}

/// What a [fenced write](crate::StateStore::put_fenced) carries: a lock's
/// name and the fencing token of the acquisition it claims to hold. The
/// store performs the write only if, at that instant, the lock is held
/// (its lease not expired by the store's clock) by the acquisition that
/// issued `token`; otherwise it answers
/// [`LockLost`](StateError::LockLost) and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence {
    lock: String,
    token: FencingToken,
}

impl Fence {
    /// The fence of the acquisition of `lock` that issued `token` (usually
    /// [`Lease::fence`]).
    pub fn new(lock: impl Into<String>, token: FencingToken) -> Fence {
        Fence { lock: lock.into(), token }
    }

    /// The lock's name.
    pub fn lock(&self) -> &str {
        &self.lock
    }

    /// The fencing token.
    pub fn token(&self) -> FencingToken {
        self.token
    }
}

/// Mutual exclusion with leases and fencing tokens. Semantics in
/// [`crate::contract`]; object safe, held as `Arc<dyn LockService>`.
#[async_trait]
pub trait LockService: Send + Sync + 'static {
    /// Acquires `name` for `ttl` if it is free (never held, released, or its
    /// lease expired); `None` if someone else holds it.
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>>;

    /// Acquires `name`, waiting up to `timeout` for it to become free.
    /// The default waits with exponential backoff and full jitter; backends
    /// that can be told of a release override it to wake waiters at once.
    ///
    /// # Errors
    /// [`StateError::Timeout`] when `timeout` passes; the lock is then not
    /// held by this caller.
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        // The one wait loop, fed by `try_acquire` alone: without a holder's
        // deadline or release notifications it polls with backoff.
        let attempt = || async {
            Ok(match self.try_acquire(name, ttl).await? {
                Some(lease) => Step::Acquired(lease),
                None => Step::Held(None),
            })
        };
        acquire_loop(timeout, None, attempt, |_| async { None }).await
    }

    /// Extends a held lease to expire `ttl` from now.
    ///
    /// # Errors
    /// [`StateError::LockLost`] if the lease expired, was released or was
    /// taken over; the current holder's lease is untouched.
    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()>;

    /// Releases a held lease, waking waiters.
    ///
    /// # Errors
    /// [`StateError::LockLost`] if the lease is no longer held; the current
    /// holder's lease is untouched.
    async fn release(&self, lease: &Lease) -> Result<()>;

    /// Whether the lease is still held: same owner, not expired.
    async fn is_held(&self, lease: &Lease) -> Result<bool>;
}

/// The instant `timeout` from now, saturating far in the future instead of
/// overflowing, so `acquire(.., Duration::MAX)` means "wait forever" rather
/// than a panic.
pub fn deadline_after(timeout: Duration) -> Instant {
    saturating_add(Instant::now(), timeout)
}

/// `start + span`, or a century after `start` when that is not
/// representable: the one place instants are added to caller-given
/// durations.
pub fn saturating_add(start: Instant, span: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    start.checked_add(span).or_else(|| start.checked_add(CENTURY)).unwrap_or(start)
}

/// Exponential backoff with full jitter, from 2 ms to 250 ms.
#[derive(Debug, Clone)]
pub struct Backoff {
    ceiling: Duration,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(2);
    const MAX: Duration = Duration::from_millis(250);

    /// A backoff at its first step.
    pub fn new() -> Backoff {
        Backoff { ceiling: Self::FIRST }
    }

    /// The next delay: uniform in `[0, ceiling]`, then the ceiling doubles.
    /// Full jitter keeps contenders from retrying in lockstep.
    pub fn next_delay(&mut self) -> Duration {
        let ceiling_us = u64::try_from(self.ceiling.as_micros()).unwrap_or(u64::MAX);
        self.ceiling = (self.ceiling * 2).min(Self::MAX);
        Duration::from_micros(fastrand::u64(0..=ceiling_us))
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// A held lease that releases itself when dropped (best effort: the release
/// is spawned on the current tokio runtime and its failure ignored). Call
/// [`release`](Self::release) to release and see the result.
pub struct LockGuard {
    service: Arc<dyn LockService>,
    lease: Option<Lease>,
}

impl LockGuard {
    /// Guards `lease`, which `service` acquired.
    pub fn new(service: Arc<dyn LockService>, lease: Lease) -> LockGuard {
        LockGuard { service, lease: Some(lease) }
    }

    /// The guarded lease.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Extends the guarded lease.
    ///
    /// # Errors
    /// As [`LockService::extend`].
    pub async fn extend(&mut self, ttl: Duration) -> Result<()> {
        match self.lease.as_mut() {
            Some(lease) => self.service.extend(lease, ttl).await,
            None => Err(StateError::invalid_argument("lease", "the guard was already released")),
        }
    }

    /// Releases now and reports the outcome.
    ///
    /// # Errors
    /// As [`LockService::release`].
    pub async fn release(mut self) -> Result<()> {
        match self.lease.take() {
            Some(lease) => self.service.release(&lease).await,
            None => Ok(()),
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        let Some(lease) = self.lease.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let service = Arc::clone(&self.service);
            runtime.spawn(async move {
                // Best effort by design: if the release fails the lease
                // expires on its own at its TTL.
                let _ = service.release(&lease).await;
            });
        }
    }
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").field("lease", &self.lease).finish_non_exhaustive()
    }
}
