//! [`LockDriver`] for [`RedisStore`].
//!
//! Each lock name has one key (see `keys.rs`): a lease that holds
//! `<token>:<owner id>` and expires with the lease (`PX`, the server's
//! clock). A release leaves the token alone in it for the token memory
//! ([`token_memory`]), then it goes: nothing is kept for good per name.
//! Tokens are the server's clock in microseconds, or one more than the
//! remembered token, whichever is higher (`scripts/lock_acquire.lua`), so
//! they increase across releases, expiries and takeovers. While waiters
//! stand in line, two more keys in the same slot: the line, by ticket, and
//! until when each waiter is live (both expire a window after the last
//! waiter asked). Acquire, extend and release are each one script that
//! checks and changes the lease in one step; `is_held` is one `GET`. The
//! release script publishes on the lock's channel, which wakes waiters
//! (see `releases.rs`); the wait loop itself is the one in
//! [`state_api::driver::wait`].

use std::time::Duration;

use async_trait::async_trait;
use state_api::driver::{Attempt, LockDriver, Ttl, Waiter, Watch};
use state_api::{FencingToken, Lease, Result};
use tokio::time::Instant;

use crate::RedisStore;
use crate::error::unexpected_reply;
use crate::reply;
use crate::statements::SCRIPTS;

/// How long a released lock's lease key keeps its last token: the
/// store's reclaim bound while the sweeper runs (so a released lock leaves
/// nothing behind past it), else [`TOKEN_MEMORY_WITHOUT_SWEEPER`]. Tokens
/// come from the server's clock; the memory keeps them increasing even if
/// that clock steps back by up to this long.
pub(crate) fn token_memory(config: &crate::RedisConfig) -> Duration {
    config.sweep_interval().map_or(TOKEN_MEMORY_WITHOUT_SWEEPER, |interval| interval.saturating_mul(2))
}

/// The token memory of a store whose sweeper is off.
const TOKEN_MEMORY_WITHOUT_SWEEPER: Duration = Duration::from_secs(60);

/// What the lease key holds while `lease` is held.
fn lease_value(lease: &Lease) -> String {
    format!("{}:{}", lease.token().0, lease.owner())
}

impl RedisStore {
    /// One run of the acquire script, by `waiter` in the line where given.
    async fn acquire_script(&self, name: &str, owner: &str, ttl: Ttl, waiter: Option<&Waiter<'_>>) -> Result<Attempt> {
        let keys = &self.inner.keys;
        let mut invocation = SCRIPTS.lock_acquire.prepare_invoke();
        invocation
            .key(keys.lock_lease(name))
            .key(keys.lock_line(name))
            .key(keys.lock_live(name))
            .arg(owner)
            .arg(ttl.millis());
        match waiter {
            Some(waiter) => invocation
                .arg(waiter.id)
                .arg(waiter.ticket)
                .arg(waiter.window.millis())
                .arg(waiter.next.map_or_else(String::new, |next| next.to_string())),
            None => invocation.arg("").arg(0).arg(0).arg(""),
        };
        let answer = self.inner.connection.invoke_write("acquire", &SCRIPTS.lock_acquire, &invocation).await?;
        let [acquired, detail] = reply::exactly("acquire", reply::array("acquire", answer)?)?;
        let detail = reply::int("acquire", &detail)?;
        if reply::int("acquire", &acquired)? == 1 {
            let token = u64::try_from(detail).map_err(|_| unexpected_reply("acquire", "a negative fencing token"))?;
            return Ok(Attempt::Acquired(FencingToken(token)));
        }
        // The holder's PTTL: whole milliseconds left (negative: no deadline,
        // which this crate never writes).
        Ok(Attempt::Held(u64::try_from(detail).ok().map(Duration::from_millis)))
    }
}

#[async_trait]
impl LockDriver for RedisStore {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        self.acquire_script(name, owner, ttl, None).await
    }

    async fn attempt_in_line(&self, name: &str, owner: &str, ttl: Ttl, waiter: &Waiter<'_>) -> Result<Attempt> {
        self.acquire_script(name, owner, ttl, Some(waiter)).await
    }

    async fn leave_line(&self, name: &str, waiter: &str) -> Result<()> {
        let keys = &self.inner.keys;
        let mut invocation = SCRIPTS.lock_leave.prepare_invoke();
        invocation.key(keys.lock_line(name)).key(keys.lock_live(name)).arg(waiter);
        self.inner.connection.invoke_write("acquire", &SCRIPTS.lock_leave, &invocation).await?;
        Ok(())
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        let mut invocation = SCRIPTS.lock_extend.prepare_invoke();
        invocation.key(self.inner.keys.lock_lease(lease.name())).arg(lease_value(lease)).arg(ttl.millis());
        let extended = self.inner.connection.invoke_write("extend", &SCRIPTS.lock_extend, &invocation).await?;
        Ok(reply::int("extend", &extended)? == 1)
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        let keys = &self.inner.keys;
        let mut invocation = SCRIPTS.lock_release.prepare_invoke();
        invocation
            .key(keys.lock_lease(lease.name()))
            .arg(lease_value(lease))
            .arg(keys.lock_channel(lease.name()))
            .arg(self.inner.connection.publish_command())
            .arg(token_memory(&self.inner.config).as_millis().to_string())
            .arg(lease.token().0);
        let released = self.inner.connection.invoke_write("release", &SCRIPTS.lock_release, &invocation).await?;
        Ok(reply::int("release", &released)? == 1)
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        // One GET is atomic: the lease key exists only while unexpired, and
        // holds the token and owner id of the current holder.
        let mut command = redis::cmd("GET");
        command.arg(self.inner.keys.lock_lease(lease.name()));
        match self.inner.connection.query("is_held", &command).await? {
            redis::Value::Nil => Ok(false),
            held => Ok(reply::bytes("is_held", held)?.as_ref() == lease_value(lease).as_bytes()),
        }
    }

    /// Subscribes to the lock's release channel (see `releases.rs`).
    async fn watch(&self, name: &str, deadline: Instant) -> Option<Watch> {
        Some(self.inner.releases().watch(self.inner.keys.lock_channel(name), deadline).await)
    }
}
