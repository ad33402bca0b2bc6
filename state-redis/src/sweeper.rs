//! The background sweeper, and the storage the store reports.
//!
//! Redis forgets an expired entry by itself (lazily when a command meets
//! it, and by sampling in its active expiry cycle), but not the members
//! that index the entry for scans and expiry (see `scripts/index.lua`):
//! creations and scans remove a few each, and only in the spaces they
//! touch, so a space written with TTLs and never scanned again would keep
//! its index forever. A sweep pass ([`Inner::sweep`]) walks this store's
//! keys with `SCAN` and, in every space's expiry schedule, unindexes each
//! id whose entry has expired (`scripts/sweep.lua`). `SCAN` also makes
//! Redis drop each expired key it meets, leases included, so a pass
//! reclaims those too. One pass every [`RedisConfig::sweep_interval`]
//! bounds how long anything expired stays: an id expiring just after a
//! pass has started goes at the next one, within two intervals.
//!
//! Cost: `SCAN` visits the whole database, in steps of [`SCAN_COUNT`]
//! keys, so a pass costs one round trip per step; each step and each
//! script call is short, so the server stays responsive throughout. In a
//! cluster a pass walks each master that serves slots (as `CLUSTER NODES`
//! lists them when the pass starts) in turn; the sweep script of a space
//! goes wherever its slot is.
//!
//! [`RedisConfig::sweep_interval`]: crate::RedisConfig::sweep_interval

use std::sync::Weak;
use std::time::Duration;

use redis::Value;
use state_api::driver::Periodic;
use state_api::{LockRetention, StateError, StorageReporting, StorageScope, StorageUsage};

use crate::Inner;
use crate::connection::Node;
use crate::reply;
use crate::statements::SCRIPTS;

/// Keys `SCAN` examines per step.
const SCAN_COUNT: u64 = 1000;

/// Ids one call of the sweep script examines at most.
const SWEEP_BATCH: i64 = 256;

/// What the store promises while its sweeper runs every `interval`.
pub(crate) fn reporting(interval: Duration) -> StorageReporting {
    // A released lock's lease key keeps its token for the token memory,
    // which is this same bound (see `lock.rs`).
    StorageReporting { reclaim_within: interval.saturating_mul(2), lock_records: LockRetention::Reclaimed }
}

/// Starts a pass every `interval` (see [`Periodic`]).
pub(crate) fn spawn(store: Weak<Inner>, interval: Duration) -> Periodic {
    Periodic::spawn(
        store,
        interval,
        crate::BACKEND,
        "sweeping expired entries",
        |inner| async move { inner.sweep().await },
    )
}

impl Inner {
    /// One pass over every key of this store; returns how many ids of
    /// expired entries it unindexed.
    pub(crate) async fn sweep(&self) -> Result<u64, StateError> {
        let mut unindexed = 0;
        for node in self.connection.nodes("sweep").await? {
            let mut keys = self.scan_keys("sweep", node, self.keys.store_pattern());
            while let Some(step) = keys.next().await? {
                for key in step {
                    if let Some(space) = self.keys.schedule_keys(&key) {
                        unindexed += self.sweep_space(space).await?;
                    }
                }
            }
        }
        Ok(unindexed)
    }

    /// Sweeps one space's schedule until nothing in it is due.
    async fn sweep_space(&self, (index, schedule, entry_prefix): (String, String, String)) -> Result<u64, StateError> {
        let mut unindexed = 0;
        loop {
            let mut invocation = SCRIPTS.sweep.prepare_invoke();
            invocation.key(&index).key(&schedule).arg(&entry_prefix).arg(SWEEP_BATCH);
            let answer = self.connection.invoke("sweep", &invocation).await?;
            let [due, removed] = reply::exactly("sweep", reply::array("sweep", answer)?)?;
            unindexed += u64::try_from(reply::int("sweep", &removed)?).unwrap_or(0);
            if reply::int("sweep", &due)? < SWEEP_BATCH {
                return Ok(unindexed);
            }
        }
    }

    /// What the store holds for `scope`: for each space, the ids in its
    /// index (every live entry, and expired ones not yet unindexed; Redis
    /// drops the expired entry keys themselves) and the members of its
    /// expiry schedule; and the keys of the scope's locks (a lease while it
    /// is held and for the token memory after its release, and the line
    /// while waiters stand in it).
    pub(crate) async fn usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage, StateError> {
        let mut usage = StorageUsage::default();
        if scope.spaces.iter().any(|space| self.config.is_unscanned(space)) {
            return Err(state_api::driver::unsupported(crate::BACKEND, crate::store::UNSCANNED));
        }
        for space in scope.spaces {
            usage.records += self.count("storage_usage", redis::cmd("ZCARD").arg(self.keys.index(space))).await?;
            usage.index_entries +=
                self.count("storage_usage", redis::cmd("ZCARD").arg(self.keys.schedule(space))).await?;
        }
        for node in self.connection.nodes("storage_usage").await? {
            let mut keys = self.scan_keys("storage_usage", node, self.keys.locks_pattern(scope.lock_prefix));
            while let Some(step) = keys.next().await? {
                usage.lock_records += u64::try_from(step.len()).unwrap_or(u64::MAX);
            }
        }
        Ok(usage)
    }

    async fn count(&self, operation: &'static str, command: &redis::Cmd) -> Result<u64, StateError> {
        let answer = self.connection.query(operation, command).await?;
        Ok(u64::try_from(reply::int(operation, &answer)?).unwrap_or(0))
    }

    fn scan_keys(&self, operation: &'static str, node: Option<Node>, pattern: String) -> KeyScan<'_> {
        KeyScan { inner: self, operation, node, pattern, cursor: Some(0) }
    }
}

/// A `SCAN MATCH` walk over one server's keys, one step at a time.
struct KeyScan<'a> {
    inner: &'a Inner,
    operation: &'static str,
    /// The cluster node walked; `None` for the one server.
    node: Option<Node>,
    pattern: String,
    /// The next step's cursor; `None` once the walk is over.
    cursor: Option<u64>,
}

impl KeyScan<'_> {
    /// The keys of the next step (possibly none), or `None` when done.
    async fn next(&mut self) -> Result<Option<Vec<String>>, StateError> {
        let Some(cursor) = self.cursor else { return Ok(None) };
        let command =
            redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&self.pattern).arg("COUNT").arg(SCAN_COUNT).clone();
        let answer = self.inner.connection.query_at(self.operation, self.node.as_ref(), &command).await?;
        let [next, keys] = reply::exactly(self.operation, reply::array(self.operation, answer)?)?;
        let next = reply::text(self.operation, next)?;
        let next = next.parse::<u64>().map_err(|_| {
            crate::error::unexpected_reply(self.operation, &format!("a SCAN cursor that is not a number: {next:?}"))
        })?;
        self.cursor = (next != 0).then_some(next);
        let keys = reply::array(self.operation, keys)?;
        // Keys are UTF-8 (prefix, spaces, names and ids all are); anything
        // else is not this store's.
        Ok(Some(
            keys.into_iter()
                .filter_map(|key| match key {
                    Value::BulkString(bytes) => String::from_utf8(bytes).ok(),
                    _ => None,
                })
                .collect(),
        ))
    }
}
