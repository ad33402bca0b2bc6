//! [`LockService`] for [`RedisStore`].
//!
//! Each lock name has two keys in one slot (see `keys.rs`): a lease that
//! holds the owner id and expires with the lease (`PX`, the server's
//! clock), and a fencing-token counter that never expires, so tokens keep
//! increasing across releases, expiries and takeovers. Acquire, extend and
//! release are each one script that checks and changes the lease in one
//! step; `is_held` is one `GET`.

use std::pin::pin;
use std::time::Duration;

use async_trait::async_trait;
use state_api::key::validate_lock_name;
use state_api::lock::validate_lease_ttl;
use state_api::trace::operation_span;
use state_api::{Backoff, FencingToken, Lease, LockService, Result, StateError};
use tokio::time::Instant;
use tracing::Instrument;

use crate::error::unexpected_reply;
use crate::reply;
use crate::scripts::SCRIPTS;
use crate::{BACKEND, RedisStore};

/// The outcome of one acquisition attempt.
enum Attempt {
    Acquired(Lease),
    /// Someone holds the lock for this long at most (`None`: a lease
    /// without deadline, which this crate never writes).
    Held(Option<Duration>),
}

impl RedisStore {
    /// One atomic attempt to take `name` for `ttl_ms`.
    async fn attempt(&self, operation: &'static str, name: &str, ttl_ms: u64) -> Result<Attempt> {
        let owner = Lease::new_owner_id();
        let keys = &self.inner.keys;
        let mut invocation = SCRIPTS.lock_acquire.prepare_invoke();
        invocation.key(keys.lock_token(name)).key(keys.lock_lease(name)).arg(&owner).arg(ttl_ms);
        // The lease's local deadline counts from before the request, so it
        // never outlasts the server's.
        let requested_at = Instant::now();
        let answer = self.inner.connection.invoke(operation, &invocation).await?;
        let [acquired, detail] = reply::exactly(operation, reply::array(operation, answer)?)?;
        let detail = reply::int(operation, &detail)?;
        if reply::int(operation, &acquired)? == 1 {
            let token = u64::try_from(detail).map_err(|_| unexpected_reply(operation, "a negative fencing token"))?;
            let ttl = Duration::from_millis(ttl_ms);
            return Ok(Attempt::Acquired(Lease::new(name, owner, FencingToken(token), requested_at, ttl)));
        }
        // PTTL reports whole milliseconds left and the lease lives through
        // the last of them: look again one millisecond later.
        Ok(Attempt::Held(u64::try_from(detail).ok().map(|ms| Duration::from_millis(ms + 1))))
    }
}

#[async_trait]
impl LockService for RedisStore {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        async {
            validate_lock_name(name)?;
            let ttl_ms = validate_lease_ttl(ttl)?;
            match self.attempt("try_acquire", name, ttl_ms).await? {
                Attempt::Acquired(lease) => Ok(Some(lease)),
                Attempt::Held(_) => Ok(None),
            }
        }
        .instrument(operation_span(BACKEND, "try_acquire", ""))
        .await
    }

    /// Waits without polling while notifications work: between attempts a
    /// waiter sleeps until the holder releases (a pub/sub message), the
    /// holder's lease runs out (its remaining time comes back with the
    /// failed attempt) or the timeout passes, whichever comes first. While
    /// the subscription is not confirmed it also wakes after a jittered
    /// exponential backoff, so a lost notification costs latency, never
    /// progress.
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        async {
            validate_lock_name(name)?;
            let ttl_ms = validate_lease_ttl(ttl)?;
            let deadline = Instant::now() + timeout;
            // A free lock costs one round trip: no subscription.
            if let Attempt::Acquired(lease) = self.attempt("acquire", name, ttl_ms).await? {
                return Ok(lease);
            }
            if Instant::now() >= deadline {
                return Err(StateError::Timeout { operation: "acquire", after: timeout });
            }
            // Subscribed before the next attempt: a release after any
            // failed attempt from here on is announced to this waiter.
            let watch = self.inner.releases().watch(self.inner.keys.lock_channel(name), deadline).await;
            let mut backoff = Backoff::new();
            loop {
                let mut released = pin!(watch.released().notified());
                released.as_mut().enable();
                let notified_on_release = watch.is_subscribed();
                let held_for = match self.attempt("acquire", name, ttl_ms).await? {
                    Attempt::Acquired(lease) => return Ok(lease),
                    Attempt::Held(held_for) => held_for,
                };
                let now = Instant::now();
                if now >= deadline {
                    return Err(StateError::Timeout { operation: "acquire", after: timeout });
                }
                let mut wait = deadline - now;
                if let Some(held_for) = held_for {
                    wait = wait.min(held_for);
                }
                if !notified_on_release || held_for.is_none() {
                    wait = wait.min(backoff.next_delay());
                }
                // Woken or timed out, the next step is another attempt.
                let _ = tokio::time::timeout(wait, released).await;
            }
        }
        .instrument(operation_span(BACKEND, "acquire", ""))
        .await
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        async {
            let ttl_ms = validate_lease_ttl(ttl)?;
            let mut invocation = SCRIPTS.lock_extend.prepare_invoke();
            invocation.key(self.inner.keys.lock_lease(lease.name())).arg(lease.owner()).arg(ttl_ms);
            let requested_at = Instant::now();
            let extended = self.inner.connection.invoke("extend", &invocation).await?;
            if reply::int("extend", &extended)? != 1 {
                return Err(StateError::LockLost { name: lease.name().to_owned() });
            }
            lease.renewed(requested_at, Duration::from_millis(ttl_ms));
            Ok(())
        }
        .instrument(operation_span(BACKEND, "extend", ""))
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        async {
            let keys = &self.inner.keys;
            let mut invocation = SCRIPTS.lock_release.prepare_invoke();
            invocation.key(keys.lock_lease(lease.name())).arg(lease.owner()).arg(keys.lock_channel(lease.name()));
            let released = self.inner.connection.invoke("release", &invocation).await?;
            if reply::int("release", &released)? != 1 {
                return Err(StateError::LockLost { name: lease.name().to_owned() });
            }
            Ok(())
        }
        .instrument(operation_span(BACKEND, "release", ""))
        .await
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        async {
            // One GET is atomic: the lease key exists only while unexpired,
            // and holds the owner id of the current holder.
            let mut command = redis::cmd("GET");
            command.arg(self.inner.keys.lock_lease(lease.name()));
            match self.inner.connection.query("is_held", &command).await? {
                redis::Value::Nil => Ok(false),
                owner => Ok(reply::bytes("is_held", owner)?.as_ref() == lease.owner().as_bytes()),
            }
        }
        .instrument(operation_span(BACKEND, "is_held", ""))
        .await
    }
}
