//! [`LockService`] for [`PostgresStore`]: one row per lock name, one
//! statement per call (see `queries/lock_*.sql` for why each is atomic).

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use state_api::key::validate_lock_name;
use state_api::lock::validate_lease_ttl;
use state_api::{Backoff, FencingToken, Lease, LockService, Result, StateError};
use tokio::time::Instant;

use crate::error::unexpected;
use crate::store::PostgresStore;

/// While the release listener is up, waiters rely on notifications and
/// only re-check this often, as insurance.
const LISTENING_RECHECK: Duration = Duration::from_secs(1);

/// The longest wait `acquire` measures; longer timeouts wait this long.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// What one acquisition attempt found.
enum Attempt {
    Acquired(Lease),
    /// Held by another lease, which expires in about this long (unknown if
    /// `None`).
    Held(Option<Duration>),
}

/// The identity of an acquisition as bound to the statements. A token that
/// does not fit `i64` was never issued, so it matches nothing.
fn token_param(lease: &Lease) -> i64 {
    i64::try_from(lease.token().0).unwrap_or(-1)
}

impl PostgresStore {
    async fn attempt(&self, name: &str, ttl_ms: u64) -> Result<Attempt> {
        let map = self.inner.map("try_acquire");
        let owner = Lease::new_owner_id();
        // Taken before the request, so the lease's local deadline never
        // overstates the server's.
        let requested_at = Instant::now();
        let query = sqlx::query(self.inner.sql.lock_try_acquire.clone())
            .bind(name)
            .bind(owner.as_str())
            .bind(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
        let row = self.inner.pool.fetch_optional(query).await.map_err(&map)?;
        let Some(row) = row else { return Ok(Attempt::Held(None)) };
        let fencing: Option<i64> = row.try_get("fencing").map_err(&map)?;
        match fencing {
            Some(token) => {
                let token = u64::try_from(token).map_err(|_| unexpected("try_acquire", format!("fencing {token}")))?;
                let ttl = Duration::from_millis(ttl_ms);
                Ok(Attempt::Acquired(Lease::new(name, owner, FencingToken(token), requested_at, ttl)))
            }
            None => {
                let left: Option<i64> = row.try_get("holder_ttl_ms").map_err(&map)?;
                Ok(Attempt::Held(left.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))))
            }
        }
    }

    /// Waits for `name` to be released or for `wake_at`, whichever is first.
    async fn wait(subscription: &mut crate::wakeup::Subscription, name: &str, wake_at: Instant) {
        // Both outcomes lead to another attempt; timing out is not an error.
        let _ = tokio::time::timeout_at(wake_at, subscription.released(name)).await;
    }
}

#[async_trait]
impl LockService for PostgresStore {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        validate_lock_name(name)?;
        let ttl_ms = validate_lease_ttl(ttl)?;
        self.inner
            .operation("try_acquire", "", async {
                Ok(match self.attempt(name, ttl_ms).await? {
                    Attempt::Acquired(lease) => Some(lease),
                    Attempt::Held(_) => None,
                })
            })
            .await
    }

    /// Waits without polling while the release listener is up: a waiter
    /// sleeps until a release of `name` is notified, or until the holder's
    /// lease runs out (the failed attempt reports when), then tries again.
    /// Without the listener it polls with jittered exponential backoff,
    /// still bounded by the holder's lease.
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        validate_lock_name(name)?;
        let ttl_ms = validate_lease_ttl(ttl)?;
        // A timeout too large to add (Duration::MAX: "wait forever") must
        // not panic; a century is forever enough.
        let deadline = Instant::now() + timeout.min(FOREVER);
        let mut backoff = Backoff::new();
        // The first attempt goes without the listener: an uncontended
        // acquire costs one statement and no extra connection.
        let mut subscription = None;
        loop {
            let attempt = self.inner.operation("acquire", "", self.attempt(name, ttl_ms)).await?;
            let holder_left = match attempt {
                Attempt::Acquired(lease) => return Ok(lease),
                Attempt::Held(left) => left,
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(StateError::Timeout { operation: "acquire", after: timeout });
            }
            let Some(subscription) = subscription.as_mut() else {
                // Subscribe, then try again at once: a release between the
                // failed attempt and the subscription would be missed.
                subscription = Some(self.inner.wakeups.subscribe());
                continue;
            };
            let recheck = if subscription.is_listening() { LISTENING_RECHECK } else { backoff.next_delay() };
            let mut wake_at = deadline.min(now + recheck);
            if let Some(left) = holder_left {
                wake_at = wake_at.min(now + left);
            }
            Self::wait(subscription, name, wake_at).await;
        }
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        let ttl_ms = validate_lease_ttl(ttl)?;
        let requested_at = Instant::now();
        let extended = self
            .inner
            .operation("extend", "", async {
                let query = sqlx::query(self.inner.sql.lock_extend.clone())
                    .bind(lease.name())
                    .bind(lease.owner())
                    .bind(token_param(lease))
                    .bind(i64::try_from(ttl_ms).unwrap_or(i64::MAX));
                Ok(self.inner.pool.fetch_optional(query).await.map_err(self.inner.map("extend"))?.is_some())
            })
            .await?;
        if !extended {
            return Err(StateError::LockLost { name: lease.name().to_owned() });
        }
        lease.renewed(requested_at, Duration::from_millis(ttl_ms));
        Ok(())
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let released = self
            .inner
            .operation("release", "", async {
                let query = sqlx::query(self.inner.sql.lock_release.clone())
                    .bind(lease.name())
                    .bind(lease.owner())
                    .bind(token_param(lease))
                    .bind(self.inner.wakeups.channel());
                Ok(self.inner.pool.fetch_optional(query).await.map_err(self.inner.map("release"))?.is_some())
            })
            .await?;
        if released { Ok(()) } else { Err(StateError::LockLost { name: lease.name().to_owned() }) }
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        self.inner
            .operation("is_held", "", async {
                let map = self.inner.map("is_held");
                let query = sqlx::query(self.inner.sql.lock_is_held.clone())
                    .bind(lease.name())
                    .bind(lease.owner())
                    .bind(token_param(lease));
                self.inner.pool.fetch_one(query).await.map_err(&map)?.try_get("held").map_err(&map)
            })
            .await
    }
}
