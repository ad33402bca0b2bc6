//! # state-redis: the statekit contract on Redis
//!
//! [`RedisStore`] implements [`StateStore`](state_api::StateStore) and
//! [`LockService`](state_api::LockService) exactly as
//! [`state_api::contract`] specifies, over one multiplexed, automatically
//! reconnecting connection that every concurrent call shares (their
//! commands are pipelined on one socket). The conformance kit runs against
//! a real `redis-server` in this crate's tests.
//!
//! How the contract maps onto Redis:
//!
//! - **Atomicity.** Every operation is one Lua script (the files in
//!   `src/scripts/`), run by SHA1 and reloaded transparently after
//!   `SCRIPT FLUSH` or a restart. Redis runs a script alone, so each check
//!   and its write are one step.
//! - **Entries.** One string per key, `<version>:<value>`, so a write is
//!   one `SET` and a creation one `SET NX` (counters are hashes, below);
//!   values are arbitrary bytes passed as script arguments. TTLs are Redis key
//!   expiries in milliseconds (`PEXPIRE`), on the server's clock: Redis
//!   never returns an expired key, and a script sees one frozen clock, so an
//!   expired key is absent in the same step that checks it.
//! - **Keys.** `{prefix}:{<space>}:e:<id>`, with the space escaped inside a
//!   cluster hash tag so a space lives in one slot and the encoding is
//!   injective for any characters.
//! - **Counters.** Canonical decimal `i64` text in a hash
//!   `{v: value, ver: version}`, added by the server's 64-bit `HINCRBY`,
//!   which also checks the text, so the whole `i64` range is exact (Lua
//!   numbers are doubles and are never used). An increment turns a plain
//!   entry into such a hash, and a put turns it back; entries written by
//!   earlier versions (all hashes) need no migration.
//! - **Scans.** A per-space sorted set of ids (all scores 0), walked with
//!   `ZRANGEBYLEX` in byte order; a page costs `O(log n + limit)`. Ids of
//!   expired entries leave the index when a scan meets them, or sooner: a
//!   second sorted set schedules ids by deadline, and every creation
//!   unindexes a few that are due, so the index never grows past the live
//!   entries plus a shrinking backlog. Spaces declared never scanned
//!   ([`RedisConfig::with_unscanned_spaces`]: deduplication marks,
//!   rate-limit windows) skip both, and their scans answer `Unsupported`.
//! - **Locks.** One lease key per name, holding the fencing token and the
//!   owner id, that expires with the lease and, once released, keeps the
//!   token alone for the token memory (two sweeper intervals), then goes:
//!   no key is kept for good per name. Tokens are the server's clock in
//!   microseconds, or one more than the remembered token, whichever is
//!   higher. Waiters are woken by a pub/sub
//!   message published by the release script. In a cluster the message is
//!   sharded (`SPUBLISH` on the channel's slot, which is the lock's) and
//!   waiters subscribe (`SSUBSCRIBE`) on the master serving that slot,
//!   following it when the slot moves or the master fails over.
//!
//! Limits: values up to 16 MiB by default
//! ([`RedisConfig::with_max_value_len`]); Redis 6 or later (Valkey too),
//! Redis 7 or later in cluster mode.
//! Fencing tokens keep increasing across anything that does not step the
//! server's clock back by more than the token memory: a restart without
//! persistence forgets the leases along with the data, but the next tokens
//! are still higher. In a failover the new master's clock takes over, so
//! the masters' clocks must agree to within the time a failover takes.
//!
//! ```no_run
//! # async fn example() -> Result<(), state_api::StateError> {
//! use std::time::Duration;
//! use state_api::{Key, LockService, StateStore};
//! use state_redis::{RedisConfig, RedisStore};
//!
//! let config = RedisConfig::new("redis://127.0.0.1:6379").with_key_prefix("myapp");
//! let store = RedisStore::connect(config).await?;
//!
//! let key = Key::new("dedup", "message-81")?;
//! if store.check_and_set(&key, "seen".into(), Some(Duration::from_secs(3600))).await? {
//!     // The first delivery of this message.
//! }
//!
//! let lease = store.acquire("nightly-report", Duration::from_secs(30), Duration::from_secs(5)).await?;
//! // ... work, passing lease.token() to whatever the lock protects ...
//! store.release(&lease).await?;
//! # Ok(()) }
//! ```

#![doc(html_no_source)]

mod config;
mod connection;
mod error;
mod keys;
mod lock;
mod releases;
mod reply;
mod schedule;
mod sentinel;
mod shards;
mod statements;
mod store;
mod sweeper;

use std::sync::{Arc, OnceLock};

use state_api::trace::operation_span;
use state_api::{Backend, Durability, StateError};
use tracing::Instrument;

pub use config::RedisConfig;

use connection::Connection;
use keys::KeyLayout;
use releases::ReleaseFeed;
use statements::SCRIPTS;

/// The backend name in errors, spans and capabilities.
pub const BACKEND: &str = "redis";

/// The Redis store and lock service. Cloning is cheap and shares the
/// connection.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: RedisConfig,
    connection: Connection,
    keys: KeyLayout,
    /// What the server's persistence settings promised at connect.
    durability: Durability,
    /// The pub/sub connection that wakes lock waiters, opened by the first
    /// `acquire` that has to wait.
    releases: OnceLock<ReleaseFeed>,
    /// The background sweeper, when the configuration asks for one.
    sweeper: OnceLock<state_api::driver::Periodic>,
    /// How this client's tasks take turns on a contended lock or key.
    contention: state_api::driver::Contention,
}

impl Inner {
    fn releases(&self) -> &ReleaseFeed {
        self.releases.get_or_init(|| {
            ReleaseFeed::start(self.connection.clone(), self.config.connect_timeout(), self.config.command_timeout())
        })
    }
}

impl RedisStore {
    /// Validates `config`, connects, reads the server's persistence
    /// settings, and loads the scripts.
    ///
    /// The store declares [`Durability::Durable`] only when the server
    /// said, at connect, that it logs every write before answering
    /// (`appendonly yes` with `appendfsync always`); anything else, or a
    /// server that refuses `CONFIG GET`, is [`Durability::Volatile`]: with
    /// `appendfsync everysec` a crash loses up to a second of acknowledged
    /// writes, and without persistence it loses everything, fencing
    /// counters included.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] for a bad configuration;
    /// [`StateError::Unavailable`] when the server refuses or drops the
    /// connection and [`StateError::Timeout`] when it does not answer in
    /// time (both retryable); [`StateError::Backend`] when it refuses us
    /// (bad credentials, scripting not allowed). No error contains the
    /// URL's password.
    pub async fn connect(config: RedisConfig) -> Result<RedisStore, StateError> {
        async {
            config.validate()?;
            let connection = Connection::open(&config).await?;
            let keys = KeyLayout::new(config.key_prefix());
            let durability = connection::durability(&connection).await;
            let inner = Inner {
                config,
                connection,
                keys,
                durability,
                releases: OnceLock::new(),
                sweeper: OnceLock::new(),
                contention: state_api::driver::Contention::new(),
            };
            let store = RedisStore { inner: Arc::new(inner) };
            store.load_scripts().await?;
            if store.inner.config.is_cluster() {
                store.require_sharded_pubsub().await?;
            }
            if let Some(interval) = store.inner.config.sweep_interval() {
                let _ = store.inner.sweeper.set(sweeper::spawn(Arc::downgrade(&store.inner), interval));
            }
            Ok(store)
        }
        .instrument(operation_span(BACKEND, "connect", ""))
        .await
    }

    /// Loads every script now, so that a server that refuses scripting
    /// fails `connect` rather than the first operation. (Operations reload
    /// them on their own whenever the server has forgotten them.)
    async fn load_scripts(&self) -> Result<(), StateError> {
        let scripts = &*SCRIPTS;
        for script in [
            &scripts.get,
            &scripts.put,
            &scripts.delete,
            &scripts.increment,
            &scripts.scan,
            &scripts.put_fenced,
            &scripts.delete_fenced,
            &scripts.increment_fenced,
            &scripts.lock_acquire,
            &scripts.lock_extend,
            &scripts.lock_release,
            &scripts.sweep,
            &scripts.schedule_put,
            &scripts.schedule_cancel,
            &scripts.schedule_due,
            &scripts.schedule_finish,
        ] {
            self.inner.connection.load("connect", script).await?;
        }
        Ok(())
    }

    /// In a cluster the release script announces releases with
    /// `SPUBLISH` (Redis 7): an older server would fail every release, so
    /// it fails `connect` instead.
    async fn require_sharded_pubsub(&self) -> Result<(), StateError> {
        let mut info = redis::cmd("COMMAND");
        info.arg("INFO").arg("SPUBLISH");
        let answer = self.inner.connection.query("connect", &info).await?;
        if reply::names_a_command(&answer) {
            return Ok(());
        }
        Err(StateError::invalid_argument(
            "mode",
            "mode = \"cluster\" needs Redis 7 or later (Valkey 7.2 or later): lock wake-ups use sharded pub/sub, and this server has no SPUBLISH",
        ))
    }

    /// Unindexes, now, every id whose entry has expired, in every space
    /// (what the background sweeper does every
    /// [`sweep_interval`](RedisConfig::sweep_interval)); returns how many.
    /// Expired entries are already absent, so this changes nothing
    /// observable.
    ///
    /// # Errors
    /// As for any command.
    pub async fn sweep(&self) -> Result<u64, StateError> {
        self.inner.sweep().await
    }

    /// The configuration this store was connected with.
    pub fn config(&self) -> &RedisConfig {
        &self.inner.config
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// Connects a [`RedisStore`] and returns it as a [`Backend`]: the form
/// `statekit::connect` and the conformance kit use.
///
/// # Errors
/// As [`RedisStore::connect`].
pub async fn backend(config: RedisConfig) -> Result<Backend, StateError> {
    let store = RedisStore::connect(config).await?;
    Ok(Backend::new(Arc::new(store.clone()), Arc::new(store.clone())).with_schedules(Arc::new(store)))
}
