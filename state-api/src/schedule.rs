//! Schedules: a time-ordered index of items per space, with exactly-one
//! claiming. Semantics in [`crate::contract`] ("Schedules").
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> state_api::Result<()> {
//! use std::time::Duration;
//! use state_api::{EpochMillis, Key, MemoryStore, ScheduleService};
//!
//! let store = MemoryStore::new();
//! let now = EpochMillis::now();
//! let key = Key::new("retries", "order-81")?;
//! store.schedule(&key, now, "charge card".into()).await?;
//!
//! for claim in store.claim("retries", EpochMillis::now(), 10, Duration::from_secs(30)).await? {
//!     // ... do the work, before claim.valid_until() ...
//!     store.complete(&claim).await?;
//! }
//! assert!(store.due("retries", EpochMillis::now(), 10).await?.is_empty());
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use crate::error::Result;
use crate::key::Key;
use crate::lock::saturating_add;

/// The most items one `due` or `claim` returns.
pub const MAX_SCHEDULE_LIMIT: usize = 1000;

/// The latest due time an item may have: 2^53 - 1 milliseconds after the
/// epoch (about the year 287,000), the largest every backend orders exactly
/// (Redis scores and DynamoDB numbers sort as doubles).
pub const MAX_DUE_AT: EpochMillis = EpochMillis((1 << 53) - 1);

/// A wall-clock instant, in whole milliseconds since the Unix epoch: when
/// an item is due, and the `now` that `due` and `claim` compare with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EpochMillis(pub u64);

impl EpochMillis {
    /// The caller's wall clock now (the epoch itself if the clock is set
    /// before it).
    pub fn now() -> EpochMillis {
        EpochMillis::from_system_time(SystemTime::now())
    }

    /// `time` in milliseconds since the epoch, rounded down; instants
    /// before the epoch are the epoch, and instants past `u64::MAX`
    /// milliseconds are `u64::MAX`.
    pub fn from_system_time(time: SystemTime) -> EpochMillis {
        let since = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
        EpochMillis(u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
    }

    /// The milliseconds since the epoch.
    pub fn millis(self) -> u64 {
        self.0
    }

    /// `span` later, saturating at `u64::MAX` milliseconds.
    pub fn saturating_add(self, span: Duration) -> EpochMillis {
        EpochMillis(self.0.saturating_add(u64::try_from(span.as_millis()).unwrap_or(u64::MAX)))
    }
}

impl fmt::Display for EpochMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One item of a schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledItem {
    /// The space (the schedule) and the item's id.
    pub key: Key,
    /// When the item is due.
    pub due_at: EpochMillis,
    /// What the scheduler stored with it.
    pub payload: Bytes,
}

/// An item handed to one claimer until its lease passes (see
/// [`ScheduleService::claim`]).
#[derive(Clone, PartialEq, Eq)]
pub struct Claim {
    item: ScheduledItem,
    owner: String,
    valid_until: Instant,
}

impl Claim {
    /// A claim of `item` by `owner`, for `lease` from `started` (an instant
    /// taken before the claiming request). Backend authors build these;
    /// applications get them from `claim`.
    pub fn new(item: ScheduledItem, owner: impl Into<String>, started: Instant, lease: Duration) -> Claim {
        Claim { item, owner: owner.into(), valid_until: saturating_add(started, lease) }
    }

    /// The claimed item.
    pub fn item(&self) -> &ScheduledItem {
        &self.item
    }

    /// The claimed item's key.
    pub fn key(&self) -> &Key {
        &self.item.key
    }

    /// The claim's owner id: a random secret naming this claim.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Local deadline: the lease measured from before the claiming request
    /// (shortened by the backend's declared clock skew). Finish or give the
    /// item up before it.
    pub fn valid_until(&self) -> Instant {
        self.valid_until
    }
}

impl fmt::Debug for Claim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The owner id is a bearer secret for this claim: keep it out of logs.
        f.debug_struct("Claim").field("key", &self.item.key).field("due_at", &self.item.due_at).finish_non_exhaustive()
    }
}

/// Time-ordered items with exactly-one claiming. Semantics in
/// [`crate::contract`]; object safe, held as `Arc<dyn ScheduleService>`.
#[async_trait]
pub trait ScheduleService: Send + Sync + 'static {
    /// Puts item `key` due at `due_at` with `payload`, or moves it there
    /// (replace by id: never a second copy). A live claim of the item ends.
    async fn schedule(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()>;

    /// Removes item `key`; whether it was there. A live claim of it ends.
    async fn cancel(&self, key: &Key) -> Result<bool>;

    /// The unclaimed items of `space` due at `now` (`due_at <= now`), in
    /// `(due_at, id)` order, at most `limit` (1 to
    /// [`MAX_SCHEDULE_LIMIT`]). Changes nothing.
    async fn due(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>>;

    /// Claims up to `limit` of the items `due` would list, each for `lease`
    /// on the backend's expiry clock: until then no other claim gets them.
    async fn claim(&self, space: &str, now: EpochMillis, limit: usize, lease: Duration) -> Result<Vec<Claim>>;

    /// Removes a claimed item: the work is done.
    ///
    /// # Errors
    /// [`StateError::ClaimLost`](crate::StateError::ClaimLost) if the claim
    /// no longer holds the item (its lease passed; the item was completed,
    /// released, cancelled or rescheduled); nothing changes.
    async fn complete(&self, claim: &Claim) -> Result<()>;

    /// Returns a claimed item, unchanged, to waiting (due again at once if
    /// its due time has passed).
    ///
    /// # Errors
    /// As for [`complete`](Self::complete).
    async fn release_claim(&self, claim: &Claim) -> Result<()>;
}

/// The schedules of a backend that has none: every call answers
/// [`StateError::Unsupported`](crate::StateError::Unsupported).
pub(crate) struct NoSchedules {
    pub(crate) backend: &'static str,
}

impl NoSchedules {
    fn unsupported(&self) -> crate::StateError {
        crate::StateError::Unsupported { backend: self.backend, feature: "schedules" }
    }
}

#[async_trait]
impl ScheduleService for NoSchedules {
    async fn schedule(&self, _: &Key, _: EpochMillis, _: Bytes) -> Result<()> {
        Err(self.unsupported())
    }

    async fn cancel(&self, _: &Key) -> Result<bool> {
        Err(self.unsupported())
    }

    async fn due(&self, _: &str, _: EpochMillis, _: usize) -> Result<Vec<ScheduledItem>> {
        Err(self.unsupported())
    }

    async fn claim(&self, _: &str, _: EpochMillis, _: usize, _: Duration) -> Result<Vec<Claim>> {
        Err(self.unsupported())
    }

    async fn complete(&self, _: &Claim) -> Result<()> {
        Err(self.unsupported())
    }

    async fn release_claim(&self, _: &Claim) -> Result<()> {
        Err(self.unsupported())
    }
}
