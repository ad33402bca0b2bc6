//! [`StateStore`] for [`RedisStore`]: each operation validates its input,
//! then runs exactly one script (see `scripts/`), which is what makes it
//! atomic on the server.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use redis::Value;
use state_api::entry::{check_value_len, ttl_millis};
use state_api::key::{validate_id, validate_prefix, validate_space};
use state_api::scan::validate_limit;
use state_api::trace::operation_span;
use state_api::{
    Capabilities, Condition, Counter, Cursor, DeleteCondition, Entry, ExpiryClock, Key, PutOutcome, Result, ScanItem,
    ScanPage, StateError, StateStore,
};
use tracing::Instrument;

use crate::error::unexpected_reply;
use crate::reply;
use crate::scripts::SCRIPTS;
use crate::{BACKEND, RedisStore};

/// How many index members a scan page may examine beyond `limit + 1`: room
/// to skip (and remove) a few members whose entries expired without making
/// the page come back short.
const STALE_ALLOWANCE: usize = 32;

/// A TTL as the scripts take it: milliseconds (rounded up, validated), or
/// the empty string for none.
fn ttl_arg(ttl: Option<Duration>) -> Result<String> {
    Ok(ttl.map(ttl_millis).transpose()?.map(|ms| ms.to_string()).unwrap_or_default())
}

#[async_trait]
impl StateStore for RedisStore {
    fn capabilities(&self) -> Capabilities {
        Capabilities::new(BACKEND, self.inner.config.max_value_len(), ExpiryClock::Server)
    }

    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        async {
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
        .instrument(operation_span(BACKEND, "get", key.space()))
        .await
    }

    async fn put(&self, key: &Key, value: Bytes, condition: Condition, ttl: Option<Duration>) -> Result<PutOutcome> {
        async {
            check_value_len(value.len(), self.inner.config.max_value_len())?;
            let ttl = ttl_arg(ttl)?;
            let (condition, expected) = match condition {
                Condition::Always => ("always", String::new()),
                Condition::IfAbsent => ("absent", String::new()),
                Condition::IfVersion(version) => ("version", version.0.to_string()),
            };
            let keys = &self.inner.keys;
            let mut invocation = SCRIPTS.put.prepare_invoke();
            invocation
                .key(keys.entry(key.space(), key.id()))
                .key(keys.index(key.space()))
                .key(keys.schedule(key.space()))
                .arg(condition)
                .arg(expected)
                .arg(value.as_ref())
                .arg(ttl)
                .arg(key.id());
            let mut items = reply::array("put", self.inner.connection.invoke("put", &invocation).await?)?.into_iter();
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
        .instrument(operation_span(BACKEND, "put", key.space()))
        .await
    }

    async fn delete(&self, key: &Key, condition: DeleteCondition) -> Result<bool> {
        async {
            let expected = match condition {
                DeleteCondition::Always => String::new(),
                DeleteCondition::IfVersion(version) => version.0.to_string(),
            };
            let keys = &self.inner.keys;
            let mut invocation = SCRIPTS.delete.prepare_invoke();
            invocation
                .key(keys.entry(key.space(), key.id()))
                .key(keys.index(key.space()))
                .key(keys.schedule(key.space()))
                .arg(expected)
                .arg(key.id());
            let removed = self.inner.connection.invoke("delete", &invocation).await?;
            Ok(reply::int("delete", &removed)? == 1)
        }
        .instrument(operation_span(BACKEND, "delete", key.space()))
        .await
    }

    async fn increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter> {
        async {
            let ttl = ttl_arg(ttl)?;
            let keys = &self.inner.keys;
            let mut invocation = SCRIPTS.increment.prepare_invoke();
            invocation
                .key(keys.entry(key.space(), key.id()))
                .key(keys.index(key.space()))
                .key(keys.schedule(key.space()))
                .arg(state_api::counter::format(delta))
                .arg(ttl)
                .arg(key.id());
            let answer = self.inner.connection.invoke("increment", &invocation).await?;
            let mut items = reply::array("increment", answer)?.into_iter();
            let (Some(flag), Some(second)) = (items.next(), items.next()) else {
                return Err(unexpected_reply("increment", "fewer than two items"));
            };
            if reply::int("increment", &flag)? == 1 {
                let text = reply::bytes("increment", second)?;
                let value = state_api::counter::parse(&text)
                    .ok_or_else(|| unexpected_reply("increment", "a counter that is not canonical i64 text"))?;
                let version = items.next().ok_or_else(|| unexpected_reply("increment", "no version"))?;
                return Ok(Counter { value, version: reply::version("increment", &version)? });
            }
            match reply::bytes("increment", second)?.as_ref() {
                b"type" => Err(StateError::TypeMismatch { key: key.to_string() }),
                b"overflow" => Err(StateError::Overflow { key: key.to_string(), delta }),
                _ => Err(unexpected_reply("increment", "an unknown refusal")),
            }
        }
        .instrument(operation_span(BACKEND, "increment", key.space()))
        .await
    }

    async fn scan(&self, space: &str, prefix: &str, cursor: Option<&Cursor>, limit: usize) -> Result<ScanPage> {
        async {
            validate_space(space)?;
            validate_prefix(prefix)?;
            validate_limit(limit)?;
            // The range of ids, as ZRANGEBYLEX bounds: from the prefix (or
            // just after the cursor, the last id the previous page examined)
            // to just before prefix + 0xFF, a byte no UTF-8 id contains.
            let lower = match cursor {
                None => [b"[", prefix.as_bytes()].concat(),
                Some(cursor) => {
                    let id = cursor.as_str();
                    if validate_id(id).is_err() || !id.starts_with(prefix) {
                        return Err(StateError::invalid_argument(
                            "cursor",
                            "it does not belong to this space and prefix",
                        ));
                    }
                    [b"(", id.as_bytes()].concat()
                }
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
            page(reply::array("scan", answer)?, limit)
        }
        .instrument(operation_span(BACKEND, "scan", space))
        .await
    }
}

/// Decodes the scan script's `{more, last, id, value, version, pttl, ...}`.
fn page(items: Vec<Value>, limit: usize) -> Result<ScanPage> {
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
    let next = match (more, last.is_empty()) {
        (true, false) => Some(Cursor::new(last)),
        (true, true) => return Err(unexpected_reply("scan", "more items without a position")),
        (false, _) => None,
    };
    Ok(ScanPage { items: found, next })
}
