//! [`ScheduleDriver`] for [`RedisStore`]: one script per operation over a
//! space's five schedule keys, all under the space's hash tag, so each is
//! one atomic step on one slot (see `scripts/schedule_common.lua`). Claim
//! leases run on the server's clock, like lock leases.

use async_trait::async_trait;
use bytes::Bytes;
use redis::{Script, ScriptInvocation, Value};
use state_api::driver::{ScheduleDriver, Ttl};
use state_api::{EpochMillis, Key, Result, ScheduledItem};

use crate::RedisStore;
use crate::error::unexpected_reply;
use crate::reply;
use crate::statements::SCRIPTS;

impl RedisStore {
    /// `script` prepared with `space`'s schedule keys.
    fn timers<'a>(&self, script: &'a Script, space: &str) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        for key in self.inner.keys.timers(space) {
            invocation.key(key);
        }
        invocation
    }

    /// Lists (`owner` empty) or claims the due items.
    async fn due_items(
        &self,
        operation: &'static str,
        space: &str,
        now: EpochMillis,
        limit: usize,
        claim: Option<(&str, Ttl)>,
    ) -> Result<Vec<ScheduledItem>> {
        let mut invocation = self.timers(&SCRIPTS.schedule_due, space);
        let (owner, lease) =
            claim.map_or((String::new(), String::new()), |(o, l)| (o.to_owned(), l.millis().to_string()));
        invocation.arg(now.millis()).arg(limit).arg(owner).arg(lease);
        let answer = match claim {
            Some(_) => self.inner.connection.invoke_write(operation, &SCRIPTS.schedule_due, &invocation).await?,
            None => self.inner.connection.invoke(operation, &invocation).await?,
        };
        items(operation, space, reply::array(operation, answer)?)
    }
}

/// Decodes `{id, due time, payload, ...}`.
fn items(operation: &'static str, space: &str, flat: Vec<Value>) -> Result<Vec<ScheduledItem>> {
    if !flat.len().is_multiple_of(3) {
        return Err(unexpected_reply(operation, "a schedule listing that is not id, due time, payload triples"));
    }
    let mut items = Vec::with_capacity(flat.len() / 3);
    let mut values = flat.into_iter();
    while let (Some(id), Some(due_at), Some(payload)) = (values.next(), values.next(), values.next()) {
        let id = reply::text(operation, id)?;
        let due_at = reply::text(operation, due_at)?
            .parse::<u64>()
            .map_err(|_| unexpected_reply(operation, "a due time that is not a whole number"))?;
        let payload: Bytes = reply::bytes(operation, payload)?;
        let key = Key::new(space, &id).map_err(|_| unexpected_reply(operation, "an id that breaks the key rules"))?;
        items.push(ScheduledItem { key, due_at: EpochMillis(due_at), payload });
    }
    Ok(items)
}

#[async_trait]
impl ScheduleDriver for RedisStore {
    async fn enqueue(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()> {
        let mut invocation = self.timers(&SCRIPTS.schedule_put, key.space());
        invocation.arg(key.id()).arg(due_at.millis()).arg(payload.as_ref());
        self.inner.connection.invoke_write("schedule", &SCRIPTS.schedule_put, &invocation).await?;
        Ok(())
    }

    async fn dequeue(&self, key: &Key) -> Result<bool> {
        let mut invocation = self.timers(&SCRIPTS.schedule_cancel, key.space());
        invocation.arg(key.id());
        let answer = self.inner.connection.invoke_write("cancel", &SCRIPTS.schedule_cancel, &invocation).await?;
        Ok(reply::int("cancel", &answer)? == 1)
    }

    async fn peek(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>> {
        self.due_items("due", space, now, limit, None).await
    }

    async fn take(
        &self,
        space: &str,
        now: EpochMillis,
        limit: usize,
        owner: &str,
        lease: Ttl,
    ) -> Result<Vec<ScheduledItem>> {
        self.due_items("claim", space, now, limit, Some((owner, lease))).await
    }

    async fn finish(&self, key: &Key, owner: &str) -> Result<bool> {
        self.settle(key, owner, "complete").await
    }

    async fn unclaim(&self, key: &Key, owner: &str) -> Result<bool> {
        self.settle(key, owner, "release").await
    }
}

impl RedisStore {
    async fn settle(&self, key: &Key, owner: &str, how: &'static str) -> Result<bool> {
        let operation = if how == "complete" { "complete" } else { "release_claim" };
        let mut invocation = self.timers(&SCRIPTS.schedule_finish, key.space());
        invocation.arg(key.id()).arg(owner).arg(how);
        let answer = self.inner.connection.invoke_write(operation, &SCRIPTS.schedule_finish, &invocation).await?;
        Ok(reply::int(operation, &answer)? == 1)
    }
}
