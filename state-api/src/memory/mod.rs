//! The in-memory backend: the embedded default, for development, tests and
//! single-process deployments.
//!
//! Entries live in a sharded ordered map (so writes to different keys rarely
//! contend, and a scan is a merge of ordered ranges). Expiry uses tokio's
//! monotonic clock, so tests can pause and advance time with
//! `tokio::time::pause` / `advance`. Expired entries count as absent from
//! the instant they expire; a background sweeper frees their memory within
//! one sweep interval, and re-checks expiry under the write lock so it can
//! never remove an entry rewritten after it expired. A free lock keeps no
//! record (fencing tokens come from one counter for the whole store), so
//! locking a new name per job does not grow memory. The store reports what
//! it holds ([`crate::storage`]) while its sweeper runs. Lock waiters are
//! woken on release instead of polling.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> state_api::Result<()> {
//! use state_api::{Key, MemoryStore, StateStore};
//! let store = MemoryStore::new();
//! let key = Key::new("jobs", "nightly")?;
//! assert!(store.check_and_set(&key, "running".into(), None).await?);
//! assert!(!store.check_and_set(&key, "again".into(), None).await?);
//! # Ok(()) }
//! ```

mod config;
mod lock;
mod schedule;
mod store;
mod table;

use std::sync::{Arc, Weak};
use std::time::Duration;

use crate::capabilities::{Capabilities, ExpiryClock};
use crate::driver::Contention;
use crate::storage::{LockRetention, StorageReporting};

pub use self::config::MemoryConfig;

use self::lock::LockTable;
use self::schedule::ScheduleTable;
use self::table::Table;

/// The backend name in errors, spans and capabilities.
pub const BACKEND: &str = "memory";

/// The in-memory store and lock service. Cloning is cheap and shares the
/// same data.
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
    /// This client's lines of lock waiters: shared by clones, not by
    /// [`peer`](MemoryStore::peer)s.
    contention: Contention,
}

struct Inner {
    table: Table,
    locks: LockTable,
    schedules: ScheduleTable,
    max_value_len: usize,
    /// The sweeper's interval, while one runs.
    sweep_interval: Option<Duration>,
}

/// Options for a [`MemoryStore`].
#[derive(Debug, Clone)]
pub struct MemoryStoreBuilder {
    max_value_len: usize,
    sweep_interval: Option<Duration>,
}

impl MemoryStoreBuilder {
    /// Largest value accepted, in bytes (default 16 MiB).
    pub fn max_value_len(mut self, bytes: usize) -> Self {
        self.max_value_len = bytes;
        self
    }

    /// How often the background sweeper frees expired entries (default one
    /// second); `None` disables it, leaving [`MemoryStore::sweep_expired`].
    pub fn sweep_interval(mut self, interval: Option<Duration>) -> Self {
        self.sweep_interval = interval;
        self
    }

    /// Builds the store. The sweeper starts only inside a tokio runtime and
    /// stops when the last clone of the store is dropped.
    pub fn build(self) -> MemoryStore {
        let store = MemoryStore {
            inner: Arc::new(Inner {
                table: Table::new(),
                locks: LockTable::default(),
                schedules: ScheduleTable::default(),
                max_value_len: self.max_value_len,
                sweep_interval: self.sweep_interval.filter(|_| tokio::runtime::Handle::try_current().is_ok()),
            }),
            contention: Contention::locks_only(),
        };
        if let (Some(interval), Ok(runtime)) = (store.inner.sweep_interval, tokio::runtime::Handle::try_current()) {
            runtime.spawn(sweep_forever(Arc::downgrade(&store.inner), interval));
        }
        store
    }
}

impl MemoryStore {
    /// Default maximum value size: 16 MiB.
    pub const DEFAULT_MAX_VALUE_LEN: usize = 16 * 1024 * 1024;

    /// A store with default options.
    pub fn new() -> MemoryStore {
        MemoryStore::builder().build()
    }

    /// Options for a new store.
    pub fn builder() -> MemoryStoreBuilder {
        MemoryStoreBuilder { max_value_len: Self::DEFAULT_MAX_VALUE_LEN, sweep_interval: Some(Duration::from_secs(1)) }
    }

    /// Another client of the same data, as a second process would be for
    /// a server: it sees the same entries and locks, but its lock waiters
    /// stand in their own line (a clone shares this one's), so the two
    /// meet only in the store's line of waiters, as clients of a server
    /// do. For testing fairness across clients.
    pub fn peer(&self) -> MemoryStore {
        MemoryStore { inner: Arc::clone(&self.inner), contention: Contention::locks_only() }
    }

    /// Frees the memory of entries and leases that have expired; returns
    /// how many records were removed. Expired entries and leases are
    /// already invisible, so this changes no observable state.
    pub fn sweep_expired(&self) -> usize {
        self.inner.sweep(tokio::time::Instant::now())
    }

    fn capabilities_value(&self) -> Capabilities {
        // Reclaiming is bounded only while the sweeper runs: one interval
        // after a deadline at most (ticks are delayed, never skipped, so a
        // busy runtime stretches this, which the kit's slack covers).
        let storage = self
            .inner
            .sweep_interval
            .map(|interval| StorageReporting { reclaim_within: interval, lock_records: LockRetention::Reclaimed });
        Capabilities::new(BACKEND, self.inner.max_value_len, ExpiryClock::Process).with_storage(storage)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore").field("max_value_len", &self.inner.max_value_len).finish_non_exhaustive()
    }
}

async fn sweep_forever(inner: Weak<Inner>, interval: Duration) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        // Holding only a weak reference lets the store be dropped while the
        // sweeper sleeps; the task ends at the next tick.
        let Some(inner) = inner.upgrade() else { return };
        inner.sweep(tokio::time::Instant::now());
    }
}

impl Inner {
    fn sweep(&self, now: tokio::time::Instant) -> usize {
        self.table.sweep_expired(now) + self.locks.sweep_expired(now)
    }
}
