//! [`StoreDriver`] for [`RedisStore`]: each operation runs exactly one
//! script (see `scripts/`), which is what makes it atomic on the server.
//! Arguments arrive checked (see [`state_api::driver`]).

use async_trait::async_trait;
use bytes::Bytes;
use redis::{Script, ScriptInvocation, Value};
use state_api::driver::{Listing, ScanRequest, StoreDriver, Ttl};
use state_api::{
    Capabilities, Condition, Counter, DeleteCondition, Entry, ExpiryClock, Failover, Fence, Key, PutOutcome, Result,
    ScanItem, StateError, StorageScope, StorageUsage, Version,
};

use crate::error::unexpected_reply;
use crate::reply;
use crate::statements::SCRIPTS;
use crate::{BACKEND, RedisStore};

/// How many index members a scan page may examine beyond `limit + 1`: room
/// to skip (and remove) a few members whose entries expired without making
/// the page come back short.
const STALE_ALLOWANCE: usize = 32;

/// What `scan` and `storage_usage` answer for a space declared never
/// scanned ([`RedisConfig::with_unscanned_spaces`](crate::RedisConfig::with_unscanned_spaces)).
pub(crate) const UNSCANNED: &str = "scans of a space listed in `unscanned_spaces` (its writes skip the scan index)";

/// A TTL as the scripts take it: milliseconds, or the empty string for
/// none.
fn ttl_arg(ttl: Option<Ttl>) -> String {
    ttl.map(|ttl| ttl.millis().to_string()).unwrap_or_default()
}

#[async_trait]
impl StoreDriver for RedisStore {
    fn contention(&self) -> Option<&state_api::driver::Contention> {
        Some(&self.inner.contention)
    }

    fn declare(&self) -> Capabilities {
        let config = &self.inner.config;
        // Storage is reported while the sweeper bounds how long expired
        // data stays.
        // A store whose every space is declared never scanned (`"*"`) can
        // neither scan nor report storage, and says so.
        let scans = !config.is_unscanned_everywhere();
        let storage = config.sweep_interval().filter(|_| scans).map(crate::sweeper::reporting);
        // Standalone, nothing fails over (a replica the operator promotes
        // by hand is outside the store's view).
        let failover = match config.min_replicas_acked() {
            _ if !config.is_cluster() && !config.is_sentinel() => Failover::NotApplicable,
            0 => Failover::MayLoseAcknowledged,
            replicas => Failover::KeepsAcknowledged { replicas },
        };
        let capabilities = Capabilities::new(BACKEND, config.max_value_len(), ExpiryClock::Server)
            .with_durability(self.inner.durability)
            .with_storage(storage)
            .with_failover(failover);
        // In a cluster a fence's lock keys and the entry's keys hash to
        // different slots, and one script cannot touch both.
        let features =
            state_api::Features { fenced_writes: !config.is_cluster(), scan: scans, ..capabilities.features };
        capabilities.with_features(features)
    }

    async fn usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        self.inner.usage(scope).await
    }

    async fn reclaim(&self) -> Result<u64> {
        self.inner.sweep().await
    }

    async fn read(&self, key: &Key) -> Result<Option<Entry>> {
        let mut invocation = SCRIPTS.get.prepare_invoke();
        invocation.key(self.inner.keys.entry(key.space(), key.id()));
        match self.inner.connection.invoke("get", &invocation).await? {
            Value::Nil => Ok(None),
            found => {
                let [value, version, pttl] = reply::exactly("get", reply::array("get", found)?)?;
                reply::entry("get", value, &version, &pttl).map(Some)
            }
        }
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
        let ScanRequest { space, prefix, after, limit } = request;
        if self.inner.config.is_unscanned(space) {
            return Err(state_api::driver::unsupported(BACKEND, UNSCANNED));
        }
        // The range of ids, as ZRANGEBYLEX bounds: from the prefix (or just
        // after the cursor, the last id the previous page examined) to just
        // before prefix + 0xFF, a byte no UTF-8 id contains.
        let lower = match after {
            None => [b"[", prefix.as_bytes()].concat(),
            Some(id) => [b"(", id.as_bytes()].concat(),
        };
        let upper = [b"(", prefix.as_bytes(), b"\xff"].concat();
        let keys = &self.inner.keys;
        let mut invocation = SCRIPTS.scan.prepare_invoke();
        invocation
            .key(keys.index(space))
            .key(keys.schedule(space))
            .arg(keys.entry_prefix(space))
            .arg(lower)
            .arg(upper)
            .arg(limit)
            .arg(limit + 1 + STALE_ALLOWANCE);
        let answer = self.inner.connection.invoke("scan", &invocation).await?;
        listing(reply::array("scan", answer)?, limit)
    }
}

impl RedisStore {
    async fn put_with(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        if condition == Condition::IfAbsent && fence.is_none() && self.inner.config.is_unscanned(key.space()) {
            return self.create_unindexed(key, value, ttl).await;
        }
        self.put_scripted(key, value, condition, ttl, fence).await
    }

    /// A put as one script (`scripts/put.lua`): check, write, TTL and index.
    async fn put_scripted(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        let ttl = ttl_arg(ttl);
        let (condition, expected) = match condition {
            Condition::Always => ("always", String::new()),
            Condition::IfAbsent => ("absent", String::new()),
            Condition::IfVersion(version) => ("version", version.0.to_string()),
        };
        let keys = &self.inner.keys;
        let script = if fence.is_some() { &SCRIPTS.put_fenced } else { &SCRIPTS.put };
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.entry(key.space(), key.id()))
            .key(keys.index(key.space()))
            .key(keys.schedule(key.space()))
            .arg(condition)
            .arg(expected)
            .arg(value.as_ref())
            .arg(ttl)
            .arg(key.id())
            .arg(self.indexed(key));
        let answer = self.invoke_behind("put", script, invocation, fence).await?;
        let mut items = reply::array("put", answer)?.into_iter();
        let written = items.next().map(|flag| reply::int("put", &flag)).transpose()?;
        let rest: Vec<Value> = items.collect();
        match (written, rest.len()) {
            (Some(1), 1) => Ok(PutOutcome::Written(reply::version("put", &rest[0])?)),
            (Some(0), 0) => Ok(PutOutcome::Rejected(None)),
            (Some(0), 3) => {
                let [value, version, pttl] = reply::exactly("put", rest)?;
                Ok(PutOutcome::Rejected(Some(reply::entry("put", value, &version, &pttl)?)))
            }
            _ => Err(unexpected_reply("put", "a reply that is neither written nor rejected")),
        }
    }

    /// A creation in a space never scanned is the entry alone (see
    /// `scripts/entry.lua` for its format), so it is one `SET NX`, with no
    /// script: what a hand-written deduplication mark costs. A rejection
    /// reads the live entry afterwards and takes effect at that read, where
    /// the key is live; should the entry be gone by then (it expired, or was
    /// deleted, in between), the put script decides in one step instead.
    async fn create_unindexed(&self, key: &Key, value: Bytes, ttl: Option<Ttl>) -> Result<PutOutcome> {
        let mut packed = Vec::with_capacity(2 + value.len());
        packed.extend_from_slice(b"1:");
        packed.extend_from_slice(&value);
        let mut command = redis::cmd("SET");
        command.arg(self.inner.keys.entry(key.space(), key.id())).arg(packed).arg("NX");
        if let Some(ttl) = ttl {
            command.arg("PX").arg(ttl.millis());
        }
        match self.inner.connection.write("put", &command).await? {
            Value::Okay => return Ok(PutOutcome::Written(Version(1))),
            Value::Nil => {}
            _ => return Err(unexpected_reply("put", "SET NX answered neither OK nor nil")),
        }
        if let Some(current) = self.read(key).await? {
            return Ok(PutOutcome::Rejected(Some(current)));
        }
        self.put_scripted(key, value, Condition::IfAbsent, ttl, None).await
    }

    async fn delete_with(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        let expected = match condition {
            DeleteCondition::Always => String::new(),
            DeleteCondition::IfVersion(version) => version.0.to_string(),
        };
        let keys = &self.inner.keys;
        let script = if fence.is_some() { &SCRIPTS.delete_fenced } else { &SCRIPTS.delete };
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.entry(key.space(), key.id()))
            .key(keys.index(key.space()))
            .key(keys.schedule(key.space()))
            .arg(expected)
            .arg(key.id())
            .arg(self.indexed(key));
        let removed = self.invoke_behind("delete", script, invocation, fence).await?;
        Ok(reply::int("delete", &removed)? == 1)
    }

    async fn increment_with(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        let ttl = ttl_arg(ttl);
        let keys = &self.inner.keys;
        let script = if fence.is_some() { &SCRIPTS.increment_fenced } else { &SCRIPTS.increment };
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.entry(key.space(), key.id()))
            .key(keys.index(key.space()))
            .key(keys.schedule(key.space()))
            .arg(state_api::counter::format(delta))
            .arg(ttl)
            .arg(key.id())
            .arg(self.indexed(key));
        let answer = self.invoke_behind("increment", script, invocation, fence).await?;
        let mut items = reply::array("increment", answer)?.into_iter();
        let (Some(flag), Some(second)) = (items.next(), items.next()) else {
            return Err(unexpected_reply("increment", "fewer than two items"));
        };
        if reply::int("increment", &flag)? == 1 {
            // Below 2^53 in magnitude the sum comes as an integer, else as
            // the stored text (see the script).
            let value = match second {
                Value::Int(value) => value,
                text => state_api::counter::parse(&reply::bytes("increment", text)?)
                    .ok_or_else(|| unexpected_reply("increment", "a counter that is not canonical i64 text"))?,
            };
            let version = items.next().ok_or_else(|| unexpected_reply("increment", "no version"))?;
            return Ok(Counter { value, version: reply::version("increment", &version)? });
        }
        match reply::bytes("increment", second)?.as_ref() {
            b"type" => Err(StateError::TypeMismatch { key: key.to_string() }),
            b"overflow" => Err(StateError::Overflow { key: key.to_string(), delta }),
            _ => Err(unexpected_reply("increment", "an unknown refusal")),
        }
    }

    /// The scripts' `indexed` argument for `key`'s space: `"1"` unless the
    /// space is declared never scanned.
    fn indexed(&self, key: &Key) -> &'static str {
        if self.inner.config.is_unscanned(key.space()) { "" } else { "1" }
    }

    /// Runs a write's invocation (see
    /// [`Connection::invoke_write`](crate::connection::Connection::invoke_write));
    /// behind a fence, appends the fence's key
    /// (the lock's lease) and token, and turns the script's refusal into
    /// `LockLost`.
    async fn invoke_behind(
        &self,
        operation: &'static str,
        script: &Script,
        mut invocation: ScriptInvocation<'_>,
        fence: Option<&Fence>,
    ) -> Result<Value> {
        let connection = &self.inner.connection;
        let Some(fence) = fence else { return connection.invoke_write(operation, script, &invocation).await };
        let keys = &self.inner.keys;
        invocation.key(keys.lock_lease(fence.lock())).arg(fence.token().0);
        let answer = connection.invoke_write(operation, script, &invocation).await?;
        if let Value::Array(items) = &answer
            && matches!(items.first(), Some(Value::Int(-1)))
        {
            return Err(StateError::LockLost { name: fence.lock().to_owned() });
        }
        Ok(answer)
    }
}

/// Decodes the scan script's `{more, last, id, value, version, pttl, ...}`.
fn listing(items: Vec<Value>, limit: usize) -> Result<Listing> {
    if items.len() < 2 || !(items.len() - 2).is_multiple_of(4) || (items.len() - 2) / 4 > limit {
        return Err(unexpected_reply("scan", "a page of the wrong shape"));
    }
    let mut items = items.into_iter();
    let (Some(more), Some(last)) = (items.next(), items.next()) else {
        return Err(unexpected_reply("scan", "a page without its header"));
    };
    let more = reply::int("scan", &more)? == 1;
    let last = reply::text("scan", last)?;
    let mut found = Vec::with_capacity(items.len() / 4);
    while let (Some(id), Some(value), Some(version), Some(pttl)) =
        (items.next(), items.next(), items.next(), items.next())
    {
        found.push(ScanItem { id: reply::text("scan", id)?, entry: reply::entry("scan", value, &version, &pttl)? });
    }
    let resume_after = match (more, last.is_empty()) {
        (true, false) => Some(last),
        (true, true) => return Err(unexpected_reply("scan", "more items without a position")),
        (false, _) => None,
    };
    Ok(Listing { items: found, resume_after })
}
