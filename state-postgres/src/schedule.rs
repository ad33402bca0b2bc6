//! [`ScheduleDriver`] for [`PostgresStore`]: one row per item, one
//! statement per call (see `queries/schedule_*.sql` for why each is
//! atomic). Claim leases run on the server's clock, like lock leases.

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;
use sqlx::postgres::PgRow;
use state_api::driver::{ScheduleDriver, Ttl};
use state_api::{EpochMillis, Key, Result, ScheduledItem, StateError};

use crate::error::unexpected;
use crate::store::PostgresStore;

/// A due time as bound: the facade keeps it at most 2^53 - 1.
fn due_param(due_at: EpochMillis) -> i64 {
    i64::try_from(due_at.millis()).unwrap_or(i64::MAX)
}

/// `now` as bound: an instant past `i64::MAX` ms is as late as any due time.
fn now_param(now: EpochMillis) -> i64 {
    i64::try_from(now.millis()).unwrap_or(i64::MAX)
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// Decodes `(id, due_at, payload)` rows.
fn items(
    operation: &'static str,
    space: &str,
    rows: Vec<PgRow>,
    map: impl Fn(sqlx::Error) -> StateError,
) -> Result<Vec<ScheduledItem>> {
    rows.into_iter()
        .map(|row| {
            let id: String = row.try_get("id").map_err(&map)?;
            let due_at: i64 = row.try_get("due_at").map_err(&map)?;
            let payload: Vec<u8> = row.try_get("payload").map_err(&map)?;
            let due_at = u64::try_from(due_at).map_err(|_| unexpected(operation, format!("due_at {due_at}")))?;
            let key = Key::new(space, &id).map_err(|_| unexpected(operation, "an id that breaks the key rules"))?;
            Ok(ScheduledItem { key, due_at: EpochMillis(due_at), payload: Bytes::from(payload) })
        })
        .collect()
}

#[async_trait]
impl ScheduleDriver for PostgresStore {
    async fn enqueue(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()> {
        self.inner
            .bounded("schedule", async {
                let query = sqlx::query(self.inner.sql.schedule_put.clone())
                    .bind(key.space())
                    .bind(key.id())
                    .bind(due_param(due_at))
                    .bind(payload.as_ref());
                self.inner.pool.fetch_optional(query).await.map_err(self.inner.map("schedule"))?;
                Ok(())
            })
            .await
    }

    async fn dequeue(&self, key: &Key) -> Result<bool> {
        self.inner
            .bounded("cancel", async {
                let query = sqlx::query(self.inner.sql.schedule_cancel.clone()).bind(key.space()).bind(key.id());
                Ok(self.inner.pool.fetch_optional(query).await.map_err(self.inner.map("cancel"))?.is_some())
            })
            .await
    }

    async fn peek(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>> {
        self.inner
            .bounded("due", async {
                let query = sqlx::query(self.inner.sql.schedule_due.clone())
                    .bind(space)
                    .bind(now_param(now))
                    .bind(limit_param(limit));
                let rows = self.inner.pool.fetch_all(query).await.map_err(self.inner.map("due"))?;
                items("due", space, rows, self.inner.map("due"))
            })
            .await
    }

    async fn take(
        &self,
        space: &str,
        now: EpochMillis,
        limit: usize,
        owner: &str,
        lease: Ttl,
    ) -> Result<Vec<ScheduledItem>> {
        self.inner
            .bounded("claim", async {
                let query = sqlx::query(self.inner.sql.schedule_claim.clone())
                    .bind(space)
                    .bind(now_param(now))
                    .bind(limit_param(limit))
                    .bind(owner)
                    .bind(lease.millis_i64());
                let rows = self.inner.pool.fetch_all(query).await.map_err(self.inner.map("claim"))?;
                let mut claimed = items("claim", space, rows, self.inner.map("claim"))?;
                // RETURNING follows no order: give them in due order.
                claimed.sort_by(|a, b| (a.due_at, a.key.id().as_bytes()).cmp(&(b.due_at, b.key.id().as_bytes())));
                Ok(claimed)
            })
            .await
    }

    async fn finish(&self, key: &Key, owner: &str) -> Result<bool> {
        self.settle("complete", key, owner).await
    }

    async fn unclaim(&self, key: &Key, owner: &str) -> Result<bool> {
        self.settle("release_claim", key, owner).await
    }
}

impl PostgresStore {
    async fn settle(&self, operation: &'static str, key: &Key, owner: &str) -> Result<bool> {
        let statement = if operation == "complete" {
            self.inner.sql.schedule_complete.clone()
        } else {
            self.inner.sql.schedule_release.clone()
        };
        self.inner
            .bounded(operation, async {
                let query = sqlx::query(statement).bind(key.space()).bind(key.id()).bind(owner);
                Ok(self.inner.pool.fetch_optional(query).await.map_err(self.inner.map(operation))?.is_some())
            })
            .await
    }
}
