//! # state-api: the statekit contract
//!
//! One state-storage contract — get/set with TTL, set-if-absent,
//! compare-and-swap on versions, atomic counters, ordered prefix scans and
//! distributed locks with fencing tokens — that every statekit backend
//! (in-memory, Redis, PostgreSQL, DynamoDB) implements identically. The
//! traits are [`StateStore`] and [`LockService`]; their exact semantics are
//! written down once, in [`contract`], and encoded once, in the
//! `conformance` crate's model, which proves each backend against them.
//!
//! This crate also holds [`MemoryStore`], the in-process backend that is the
//! embedded default.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> state_api::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use state_api::{Key, LockService, MemoryStore, PutOutcome, StateStore};
//!
//! let store: Arc<dyn StateStore> = Arc::new(MemoryStore::new());
//! let key = Key::new("orders", "order:17")?;
//!
//! // Versions make optimistic concurrency explicit.
//! let v1 = store.set(&key, "pending".into(), None).await?;
//! let outcome = store.compare_and_swap(&key, v1, "paid".into(), None).await?;
//! assert!(matches!(outcome, PutOutcome::Written(v) if v.0 == 2));
//!
//! // A counter in a fixed one-minute window.
//! let hits = Key::new("rate", "client-9")?;
//! let counter = store.increment(&hits, 1, Some(Duration::from_secs(60))).await?;
//! assert_eq!(counter.value, 1);
//!
//! // A lock whose fencing token protects the resource from stale holders.
//! let locks = MemoryStore::new();
//! let lease = locks.try_acquire("nightly-report", Duration::from_secs(30)).await?.expect("free");
//! assert!(lease.token().0 >= 1);
//! locks.release(&lease).await?;
//! # Ok(()) }
//! ```

#![doc(html_no_source)]

pub mod capabilities;
pub mod counter;
pub mod driver;
pub mod entry;
pub mod error;
pub mod keep_alive;
pub mod key;
pub mod lock;
pub mod memory;
pub mod scan;
pub mod schedule;
pub mod storage;
pub mod store;
pub mod trace;

mod redact;

#[doc = include_str!("contract.md")]
pub mod contract {}

use std::sync::Arc;

pub use bytes::Bytes;

pub use capabilities::{Capabilities, Durability, ExpiryClock, Failover, Features};
pub use entry::{Condition, Counter, DeleteCondition, Entry, MAX_TTL, PutOutcome, Version};
pub use error::{BoxError, KeyError, KeyPart, Result, StateError};
pub use keep_alive::{KeepAlive, LeaseLost};
pub use key::{Key, MAX_ID_LEN, MAX_SPACE_LEN};
pub use lock::{Backoff, Fence, FencingToken, Lease, LockGuard, LockService};
pub use memory::{MemoryStore, MemoryStoreBuilder};
pub use redact::redact_url;
pub use scan::{Cursor, MAX_SCAN_LIMIT, ScanItem, ScanPage};
pub use schedule::{Claim, EpochMillis, MAX_DUE_AT, MAX_SCHEDULE_LIMIT, ScheduleService, ScheduledItem};
pub use storage::{LockRetention, StorageReporting, StorageScope, StorageUsage};
pub use store::{StateStore, StateStoreExt};

/// A connected backend: its store, lock service and schedules, as trait
/// objects. This is what `statekit::connect` returns and what the
/// conformance kit tests.
#[derive(Clone)]
pub struct Backend {
    /// The key-value side.
    pub store: Arc<dyn StateStore>,
    /// The lock side. A backend without locks answers every call with
    /// [`StateError::Unsupported`].
    pub locks: Arc<dyn LockService>,
    /// The schedules. A backend without them answers every call with
    /// [`StateError::Unsupported`].
    pub schedules: Arc<dyn ScheduleService>,
}

impl Backend {
    /// Pairs a store and a lock service; schedules answer `Unsupported`
    /// until [`with_schedules`](Self::with_schedules) gives some.
    pub fn new(store: Arc<dyn StateStore>, locks: Arc<dyn LockService>) -> Backend {
        let backend = store.capabilities().backend;
        Backend { store, locks, schedules: Arc::new(schedule::NoSchedules { backend }) }
    }

    /// The same backend with these schedules.
    pub fn with_schedules(mut self, schedules: Arc<dyn ScheduleService>) -> Backend {
        self.schedules = schedules;
        self
    }

    /// A fresh in-memory backend.
    pub fn memory() -> Backend {
        MemoryStore::new().into()
    }

    /// The store's capabilities.
    pub fn capabilities(&self) -> Capabilities {
        self.store.capabilities()
    }
}

impl From<MemoryStore> for Backend {
    fn from(store: MemoryStore) -> Backend {
        Backend { store: Arc::new(store.clone()), locks: Arc::new(store.clone()), schedules: Arc::new(store) }
    }
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("backend", &self.capabilities().backend).finish_non_exhaustive()
    }
}
