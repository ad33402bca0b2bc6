//! [`PostgresStore`]: connecting, migrating, and [`StoreDriver`] on one
//! table, each operation one statement from `queries/`. Arguments arrive
//! checked (see [`state_api::driver`]).

use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use sqlx::Row;
use sqlx::postgres::PgRow;
use state_api::driver::{Listing, Periodic, ScanRequest, StoreDriver, Ttl};
use state_api::trace::operation_span;
use state_api::{
    Capabilities, Condition, Counter, DeleteCondition, Durability, Entry, ExpiryClock, Fence, Key, LockRetention,
    PutOutcome, Result, ScanItem, StateError, StorageReporting, StorageScope, StorageUsage, Version,
};
use tracing::Instrument;

use crate::BACKEND;
use crate::config::PostgresConfig;
use crate::connection::{ConnectionPool, Statement};
use crate::error::{map_sqlx, unexpected};
use crate::keyset::prefix_successor;
use crate::releases::ReleaseFeed;
use crate::schema::{self, MigrationReport};
use crate::statements::{Names, Statements};

/// How many times a conditional write or increment re-runs its statement
/// when the entry that refused it could not be read atomically (see
/// `queries/put_if_absent.sql`). Each re-run sees a newer snapshot, so one
/// is almost always enough; the bound only stops a pathological churn.
const MAX_ATTEMPTS: usize = 64;

/// The PostgreSQL backend: a [`StateStore`](state_api::StateStore) and
/// [`LockService`](state_api::LockService) over a connection pool.
///
/// Cloning is cheap and shares the pool. The background reaper (and the
/// lock-release listener, when a waiter started it) stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct PostgresStore {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) pool: ConnectionPool,
    pub(crate) sql: Statements,
    pub(crate) names: Names,
    pub(crate) config: PostgresConfig,
    pub(crate) releases: ReleaseFeed,
    reaper: OnceLock<Periodic>,
    /// How this client's tasks take turns on a contended lock or key.
    contention: state_api::driver::Contention,
    /// What the server's settings promised at connect.
    durability: Durability,
}

/// What a server with these settings keeps across a crash: every commit
/// only when it flushes its WAL before answering a commit (`fsync` on,
/// `synchronous_commit` anything but `off`) and can repair torn pages
/// (`full_page_writes` on).
fn durability(fsync: &str, synchronous_commit: &str, full_page_writes: &str) -> Durability {
    if fsync == "on" && synchronous_commit != "off" && full_page_writes == "on" {
        Durability::Durable
    } else {
        Durability::Volatile
    }
}

impl PostgresStore {
    /// Connects to the server and checks that it is usable (one connection
    /// is opened and the database encoding must be UTF-8). Reads the
    /// server's crash-safety settings: the store declares
    /// [`Durability::Durable`] only with `fsync` and `full_page_writes` on
    /// and `synchronous_commit` not `off` (with it off, a crash loses the
    /// last commits). Does not create
    /// or change any table: call [`migrate`](Self::migrate) for that.
    /// Starts the background reaper if the config asks for one.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] for a bad config, before any I/O;
    /// [`StateError::Unavailable`] (retryable) if no connection could be
    /// made within the connect timeout; [`StateError::Backend`] if the
    /// server refused (bad credentials, unknown database, not UTF-8).
    pub async fn connect(config: PostgresConfig) -> Result<PostgresStore> {
        config.validate()?;
        let options = config.connect_options()?;
        let span = operation_span(BACKEND, "connect", "");
        let statement_timeout = config.statement_timeout();
        let connect_timeout = config.connect_timeout();
        let map = |e| map_sqlx("connect", statement_timeout, e);
        let pool = ConnectionPool::new(options.clone(), config.pool_size(), connect_timeout).map_err(map)?;
        let check = async {
            let query = sqlx::query(
                "SELECT current_setting('server_encoding'), current_setting('fsync'), \
                 current_setting('synchronous_commit'), current_setting('full_page_writes')",
            );
            let row = pool.fetch_one(query).await.map_err(map)?;
            let encoding: String = row.try_get(0).map_err(map)?;
            if encoding != "UTF8" {
                let message = format!("connect: the database encoding is {encoding}; statekit needs UTF8");
                return Err(StateError::failed(BACKEND, message, false));
            }
            let settings: (String, String, String) =
                (row.try_get(1).map_err(map)?, row.try_get(2).map_err(map)?, row.try_get(3).map_err(map)?);
            Ok(durability(&settings.0, &settings.1, &settings.2))
        };
        // The pool bounds the connection by the connect timeout;
        // this outer bound also covers the first query on a server that
        // accepts connections but never answers.
        let durability = match tokio::time::timeout(connect_timeout + statement_timeout, check).instrument(span).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(StateError::timed_out("connect", connect_timeout + statement_timeout));
            }
        };
        let names = Names::new(config.schema(), config.table_prefix());
        let inner = Arc::new(Inner {
            sql: Statements::new(&names),
            releases: ReleaseFeed::new(options, connect_timeout, names.lock_channel()),
            names,
            pool,
            reaper: OnceLock::new(),
            contention: state_api::driver::Contention::new(),
            config,
            durability,
        });
        if let Some(interval) = inner.config.reap_interval() {
            let reaper = Periodic::spawn(
                Arc::downgrade(&inner),
                interval,
                BACKEND,
                "reaping expired entries",
                |inner| async move { inner.reap_expired().await },
            );
            let _ = inner.reaper.set(reaper);
        }
        Ok(PostgresStore { inner })
    }

    /// Creates or upgrades the schema, the tables and their indexes: applies
    /// every embedded migration not yet applied to this schema and prefix.
    /// Idempotent, and safe to run from many instances at once (they queue
    /// on an advisory lock; see the crate docs).
    ///
    /// # Errors
    /// As for any statement; a `Backend` error if an applied migration was
    /// edited since.
    pub async fn migrate(&self) -> Result<MigrationReport> {
        let statement_timeout = self.inner.config.statement_timeout();
        let run = schema::run(&self.inner.pool, &self.inner.names, |e| map_sqlx("migrate", statement_timeout, e));
        run.instrument(operation_span(BACKEND, "migrate", "")).await
    }

    /// Deletes every row whose TTL has passed, in batches of the configured
    /// size, and returns how many it deleted. Expired rows are already
    /// invisible to every operation, so this frees space and changes no
    /// observable state; the background reaper calls it periodically. A row
    /// rewritten after it expired is never deleted.
    ///
    /// # Errors
    /// As for any statement.
    pub async fn reap_expired(&self) -> Result<u64> {
        self.inner.reap_expired().await
    }

    /// The configuration this store was connected with.
    pub fn config(&self) -> &PostgresConfig {
        &self.inner.config
    }

    fn capabilities_value(&self) -> Capabilities {
        // Reclaiming is bounded while the reaper runs: a row expired just
        // after a pass goes at the next one. A lock's row stays for good:
        // it keeps the name's fencing counter.
        let storage = self
            .inner
            .config
            .reap_interval()
            .map(|interval| StorageReporting { reclaim_within: interval, lock_records: LockRetention::OnePerName });
        Capabilities::new(BACKEND, self.inner.config.max_value_len(), ExpiryClock::Server)
            .with_storage(storage)
            .with_durability(self.inner.durability)
    }
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

impl Inner {
    /// Maps a sqlx error of `operation`.
    pub(crate) fn map(&self, operation: &'static str) -> impl Fn(sqlx::Error) -> StateError + use<> {
        let statement_timeout = self.config.statement_timeout();
        move |error| map_sqlx(operation, statement_timeout, error)
    }

    /// Runs one operation bounded on the client side too: the server's
    /// statement timeout cannot fire when the server has vanished without
    /// closing the connection.
    pub(crate) async fn bounded<T>(&self, operation: &'static str, work: impl Future<Output = Result<T>>) -> Result<T> {
        let limit = self.config.connect_timeout() + self.config.statement_timeout() * 2;
        tokio::time::timeout(limit, work).await.unwrap_or(Err(StateError::timed_out(operation, limit)))
    }

    pub(crate) async fn reap_expired(&self) -> Result<u64> {
        let batch = self.config.reap_batch();
        self.bounded("reap", async {
            let mut total = 0u64;
            let map = self.map("reap");
            loop {
                let query = sqlx::query(self.sql.reap.clone()).bind(i64::from(batch));
                let row = self.pool.fetch_one(query).await.map_err(&map)?;
                let reaped: i64 = row.try_get("reaped").map_err(&map)?;
                let reaped = u64::try_from(reaped).unwrap_or(0);
                total += reaped;
                // A short batch means nothing expired is left (or the rest is
                // locked by writers, who will rewrite or leave it for later).
                if reaped < u64::from(batch) {
                    return Ok(total);
                }
            }
        })
        .await
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.releases.stop();
    }
}

/// A TTL as the milliseconds bound to `ttl_ms` parameters.
fn ttl_param(ttl: Option<Ttl>) -> Option<i64> {
    ttl.map(Ttl::millis_i64)
}

/// A stored version (always positive) as the contract's type.
fn version(operation: &'static str, stored: i64) -> Result<Version> {
    u64::try_from(stored).map(Version).map_err(|_| unexpected(operation, format!("stored version {stored}")))
}

/// The remaining TTL from a `ttl_ms` column.
fn remaining(ttl_ms: Option<i64>) -> Option<Duration> {
    // A live entry has at least 1 ms left by construction (rounded up).
    ttl_ms.map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0).max(1)))
}

/// The entry in the `value`, `version`, `ttl_ms` columns of `row`.
fn decode_entry(operation: &'static str, row: &PgRow, map: impl Fn(sqlx::Error) -> StateError) -> Result<Entry> {
    let value: Vec<u8> = row.try_get("value").map_err(&map)?;
    let stored: i64 = row.try_get("version").map_err(&map)?;
    let ttl_ms: Option<i64> = row.try_get("ttl_ms").map_err(&map)?;
    Ok(Entry { value: Bytes::from(value), version: version(operation, stored)?, ttl: remaining(ttl_ms) })
}

/// What one run of a conditional put statement found.
enum Attempt<T> {
    Done(T),
    /// The statement could not justify its refusal atomically; nothing was
    /// written; run it again.
    Again,
}

impl PostgresStore {
    fn sql(&self) -> &Statements {
        &self.inner.sql
    }

    async fn put_with(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        let ttl_ms = ttl_param(ttl);
        self.inner
            .bounded("put", async {
                match condition {
                    Condition::Always => self.put_always(key, &value, ttl_ms, fence).await,
                    Condition::IfAbsent => {
                        Self::retrying("put", || self.put_if_absent(key, &value, ttl_ms, fence)).await
                    }
                    Condition::IfVersion(expected) => self.put_if_version(key, &value, ttl_ms, expected, fence).await,
                }
            })
            .await
    }

    async fn delete_with(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        let expected = match condition {
            DeleteCondition::Always => None,
            DeleteCondition::IfVersion(v) => Some(i64::try_from(v.0).unwrap_or(-1)),
        };
        self.inner
            .bounded("delete", async {
                let map = self.inner.map("delete");
                let query = sqlx::query(self.sql().delete.form(fence.is_some()))
                    .bind(key.space())
                    .bind(key.id())
                    .bind(expected);
                match self.run(query, fence, &map).await? {
                    Some(row) => row.try_get("was_live").map_err(&map),
                    None => Ok(false),
                }
            })
            .await
    }

    async fn increment_with(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        let ttl_ms = ttl_param(ttl);
        let attempt = || self.increment_once(key, delta, ttl_ms, fence);
        self.inner.bounded("increment", Self::retrying("increment", attempt)).await
    }

    /// Runs a write's statement, in its fenced form (built with
    /// [`Write::form`](crate::statements::Write::form)) with the fence's
    /// lock name and token as its last two parameters when `fence` is
    /// given. `LockLost` naming the fence's lock, with nothing written,
    /// when the statement says the fence does not hold (`held = false`).
    async fn run(
        &self,
        query: Statement<'_>,
        fence: Option<&Fence>,
        map: &impl Fn(sqlx::Error) -> StateError,
    ) -> Result<Option<PgRow>> {
        let Some(fence) = fence else { return self.inner.pool.fetch_optional(query).await.map_err(map) };
        // No issued token exceeds i64::MAX; -1 matches nothing.
        let token = i64::try_from(fence.token().0).unwrap_or(-1);
        let query = query.bind(fence.lock().to_owned()).bind(token);
        let row = self.inner.pool.fetch_optional(query).await.map_err(map)?;
        match &row {
            Some(row) if !row.try_get::<bool, _>("held").map_err(map)? => {
                Err(StateError::LockLost { name: fence.lock().to_owned() })
            }
            _ => Ok(row),
        }
    }

    /// Runs `attempt` until it is done, at most [`MAX_ATTEMPTS`] times.
    async fn retrying<T, F: Future<Output = Result<Attempt<T>>>>(
        operation: &'static str,
        mut attempt: impl FnMut() -> F,
    ) -> Result<T> {
        for _ in 0..MAX_ATTEMPTS {
            if let Attempt::Done(result) = attempt().await? {
                return Ok(result);
            }
        }
        Err(StateError::failed(
            BACKEND,
            format!("{operation}: the entry kept changing under {MAX_ATTEMPTS} attempts"),
            true,
        ))
    }

    async fn put_always(
        &self,
        key: &Key,
        value: &[u8],
        ttl_ms: Option<i64>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        let map = self.inner.map("put");
        let query = sqlx::query(self.sql().put_always.form(fence.is_some()))
            .bind(key.space())
            .bind(key.id())
            .bind(value)
            .bind(ttl_ms);
        let row = self.run(query, fence, &map).await?.ok_or_else(|| unexpected("put", "no row from the upsert"))?;
        Ok(PutOutcome::Written(version("put", row.try_get("version").map_err(&map)?)?))
    }

    async fn put_if_absent(
        &self,
        key: &Key,
        value: &[u8],
        ttl_ms: Option<i64>,
        fence: Option<&Fence>,
    ) -> Result<Attempt<PutOutcome>> {
        let map = self.inner.map("put");
        let query = sqlx::query(self.sql().put_if_absent.form(fence.is_some()))
            .bind(key.space())
            .bind(key.id())
            .bind(value)
            .bind(ttl_ms);
        let row = self.run(query, fence, &map).await?;
        let Some(row) = row else { return Ok(Attempt::Again) };
        if row.try_get::<bool, _>("written").map_err(&map)? {
            return Ok(Attempt::Done(PutOutcome::Written(version("put", row.try_get("version").map_err(&map)?)?)));
        }
        Ok(Attempt::Done(PutOutcome::Rejected(Some(decode_entry("put", &row, &map)?))))
    }

    async fn put_if_version(
        &self,
        key: &Key,
        value: &[u8],
        ttl_ms: Option<i64>,
        expected: Version,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        let map = self.inner.map("put");
        // No stored version exceeds i64::MAX; -1 matches nothing.
        let expected_param = i64::try_from(expected.0).unwrap_or(-1);
        let query = sqlx::query(self.sql().put_if_version.form(fence.is_some()))
            .bind(key.space())
            .bind(key.id())
            .bind(value)
            .bind(ttl_ms)
            .bind(expected_param);
        let row = self.run(query, fence, &map).await?;
        // No row: the key was absent at a moment inside this call.
        let Some(row) = row else { return Ok(PutOutcome::Rejected(None)) };
        if row.try_get::<bool, _>("written").map_err(&map)? {
            return Ok(PutOutcome::Written(version("put", row.try_get("version").map_err(&map)?)?));
        }
        // The statement decided on the row it held locked, and reports it.
        Ok(PutOutcome::Rejected(Some(decode_entry("put", &row, &map)?)))
    }

    async fn increment_once(
        &self,
        key: &Key,
        delta: i64,
        ttl_ms: Option<i64>,
        fence: Option<&Fence>,
    ) -> Result<Attempt<Counter>> {
        let map = self.inner.map("increment");
        let query = sqlx::query(self.sql().increment.form(fence.is_some()))
            .bind(key.space())
            .bind(key.id())
            .bind(delta)
            .bind(ttl_ms);
        let row = self.run(query, fence, &map).await?;
        let Some(row) = row else { return Ok(Attempt::Again) };
        if row.try_get::<bool, _>("written").map_err(&map)? {
            let text: Vec<u8> = row.try_get("value").map_err(&map)?;
            let value = state_api::counter::parse(&text)
                .ok_or_else(|| unexpected("increment", "the server wrote a counter that is not canonical"))?;
            let stored: i64 = row.try_get("version").map_err(&map)?;
            return Ok(Attempt::Done(Counter { value, version: version("increment", stored)? }));
        }
        let is_counter: bool = row.try_get("is_counter").map_err(&map)?;
        Err(if is_counter {
            StateError::Overflow { key: key.to_string(), delta }
        } else {
            StateError::TypeMismatch { key: key.to_string() }
        })
    }

    async fn list_page(&self, request: ScanRequest<'_>) -> Result<Listing> {
        let ScanRequest { space, prefix, after, limit } = request;
        let map = self.inner.map("scan");
        // Every id is non-empty, so all of them sort after "".
        let after = after.unwrap_or("");
        // One row more than the page says whether another page follows.
        let fetch = i64::try_from(limit + 1).unwrap_or(i64::MAX);
        let query = match prefix_successor(prefix) {
            Some(below) => {
                sqlx::query(self.sql().scan.clone()).bind(space).bind(prefix).bind(after).bind(below).bind(fetch)
            }
            None => sqlx::query(self.sql().scan_unbounded.clone()).bind(space).bind(prefix).bind(after).bind(fetch),
        };
        let rows = self.inner.pool.fetch_all(query).await.map_err(&map)?;
        let more = rows.len() > limit;
        let mut items = Vec::with_capacity(rows.len().min(limit));
        for row in rows.iter().take(limit) {
            items.push(ScanItem { id: row.try_get("id").map_err(&map)?, entry: decode_entry("scan", row, &map)? });
        }
        Ok(Listing::from_items(items, more))
    }
}

#[async_trait]
impl StoreDriver for PostgresStore {
    fn declare(&self) -> Capabilities {
        self.capabilities_value()
    }

    fn contention(&self) -> Option<&state_api::driver::Contention> {
        Some(&self.inner.contention)
    }

    async fn usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        self.inner
            .bounded("storage_usage", async {
                let map = self.inner.map("storage_usage");
                let query = sqlx::query(self.sql().usage.clone()).bind(scope.spaces).bind(scope.lock_prefix);
                let row = self.inner.pool.fetch_one(query).await.map_err(&map)?;
                let count = |column: &str| -> Result<u64> {
                    let n: i64 = row.try_get(column).map_err(&map)?;
                    Ok(u64::try_from(n).unwrap_or(0))
                };
                Ok(StorageUsage { records: count("records")?, index_entries: 0, lock_records: count("lock_records")? })
            })
            .await
    }

    async fn reclaim(&self) -> Result<u64> {
        self.inner.reap_expired().await
    }

    async fn read(&self, key: &Key) -> Result<Option<Entry>> {
        self.inner
            .bounded("get", async {
                let map = self.inner.map("get");
                let decided = |row: Option<PgRow>| -> Result<Option<Option<Entry>>> {
                    match row {
                        None => Ok(Some(None)),
                        Some(row) if row.try_get::<bool, _>("expired").map_err(&map)? => Ok(None),
                        Some(row) => decode_entry("get", &row, &map).map(|entry| Some(Some(entry))),
                    }
                };
                let query = sqlx::query(self.sql().get.clone()).bind(key.space()).bind(key.id());
                if let Some(found) = decided(self.inner.pool.fetch_optional(query).await.map_err(&map)?)? {
                    return Ok(found);
                }
                // Looks expired: read it again behind any writer holding it.
                let query = sqlx::query(self.sql().get_locked.clone()).bind(key.space()).bind(key.id());
                Ok(decided(self.inner.pool.fetch_optional(query).await.map_err(&map)?)?.flatten())
            })
            .await
    }

    async fn write(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        self.put_with(key, value, condition, ttl, fence).await
    }

    async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        self.delete_with(key, condition, fence).await
    }

    async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        self.increment_with(key, delta, ttl, fence).await
    }

    async fn list(&self, request: ScanRequest<'_>) -> Result<Listing> {
        self.inner.bounded("scan", self.list_page(request)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_server_that_flushes_every_commit_is_durable() {
        assert_eq!(durability("on", "on", "on"), Durability::Durable);
        assert_eq!(durability("on", "local", "on"), Durability::Durable);
        assert_eq!(durability("on", "remote_apply", "on"), Durability::Durable);
        assert_eq!(durability("on", "off", "on"), Durability::Volatile);
        assert_eq!(durability("off", "on", "on"), Durability::Volatile);
        assert_eq!(durability("on", "on", "off"), Durability::Volatile);
    }
}
