//! [`LockDriver`] for [`PostgresStore`]: one row per lock name, one
//! statement per call (see `queries/lock_*.sql` for why each is atomic).
//! Releases are announced with NOTIFY and heard by `releases.rs`; the wait
//! loop is the one in [`state_api::driver::wait`].

use std::time::Duration;

use async_trait::async_trait;
use sqlx::Row;
use state_api::driver::{Attempt, LockDriver, Ttl, Waiter, Watch};
use state_api::{FencingToken, Lease, Result};
use tokio::time::Instant;

use crate::error::unexpected;
use crate::store::PostgresStore;

/// The identity of an acquisition as bound to the statements. A token that
/// does not fit `i64` was never issued, so it matches nothing.
fn token_param(lease: &Lease) -> i64 {
    i64::try_from(lease.token().0).unwrap_or(-1)
}

impl PostgresStore {
    /// One run of the acquire statement, by `waiter` in the line where given.
    async fn acquire_statement(
        &self,
        name: &str,
        owner: &str,
        ttl: Ttl,
        waiter: Option<&Waiter<'_>>,
    ) -> Result<Attempt> {
        self.inner
            .bounded("acquire", async {
                let map = self.inner.map("acquire");
                // A ticket past i64 (the year 294247) sorts last.
                let ticket_param = |ticket: u64| i64::try_from(ticket).unwrap_or(i64::MAX);
                let (id, ticket, window, next) = match waiter {
                    Some(w) => (w.id, ticket_param(w.ticket), w.window.millis_i64(), w.next.map(ticket_param)),
                    None => ("", 0, 0, None),
                };
                let query = sqlx::query(self.inner.sql.lock_try_acquire.clone())
                    .bind(name)
                    .bind(owner)
                    .bind(ttl.millis_i64())
                    .bind(id)
                    .bind(ticket)
                    .bind(window)
                    .bind(next);
                let row = self.inner.pool.fetch_optional(query).await.map_err(&map)?;
                let Some(row) = row else { return Ok(Attempt::Held(None)) };
                let fencing: Option<i64> = row.try_get("fencing").map_err(&map)?;
                if let Some(token) = fencing {
                    let token = u64::try_from(token).map_err(|_| unexpected("acquire", format!("fencing {token}")))?;
                    return Ok(Attempt::Acquired(FencingToken(token)));
                }
                let left: Option<i64> = row.try_get("holder_ttl_ms").map_err(&map)?;
                Ok(Attempt::Held(left.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))))
            })
            .await
    }
}

#[async_trait]
impl LockDriver for PostgresStore {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        self.acquire_statement(name, owner, ttl, None).await
    }

    async fn attempt_in_line(&self, name: &str, owner: &str, ttl: Ttl, waiter: &Waiter<'_>) -> Result<Attempt> {
        self.acquire_statement(name, owner, ttl, Some(waiter)).await
    }

    async fn leave_line(&self, name: &str, waiter: &str) -> Result<()> {
        self.inner
            .bounded("acquire", async {
                let query = sqlx::query(self.inner.sql.lock_leave.clone()).bind(name).bind(waiter);
                self.inner.pool.fetch_optional(query).await.map_err(self.inner.map("acquire"))?;
                Ok(())
            })
            .await
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        self.inner
            .bounded("extend", async {
                let query = sqlx::query(self.inner.sql.lock_extend.clone())
                    .bind(lease.name())
                    .bind(lease.owner())
                    .bind(token_param(lease))
                    .bind(ttl.millis_i64());
                Ok(self.inner.pool.fetch_optional(query).await.map_err(self.inner.map("extend"))?.is_some())
            })
            .await
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        self.inner
            .bounded("release", async {
                let query = sqlx::query(self.inner.sql.lock_release.clone())
                    .bind(lease.name())
                    .bind(lease.owner())
                    .bind(token_param(lease))
                    .bind(self.inner.releases.channel());
                Ok(self.inner.pool.fetch_optional(query).await.map_err(self.inner.map("release"))?.is_some())
            })
            .await
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        self.inner
            .bounded("is_held", async {
                let map = self.inner.map("is_held");
                let query = sqlx::query(self.inner.sql.lock_is_held.clone())
                    .bind(lease.name())
                    .bind(lease.owner())
                    .bind(token_param(lease));
                self.inner.pool.fetch_one(query).await.map_err(&map)?.try_get("held").map_err(&map)
            })
            .await
    }

    /// Watches through the LISTEN task (started on first use).
    async fn watch(&self, name: &str, _deadline: Instant) -> Option<Watch> {
        Some(self.inner.releases.watch(name))
    }
}
