//! The [`StateStore`] trait.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::capabilities::Capabilities;
use crate::entry::{Condition, Counter, DeleteCondition, Entry, PutOutcome, Version};
use crate::error::Result;
use crate::key::Key;
use crate::lock::Fence;
use crate::scan::{Cursor, ScanPage};
use crate::storage::{StorageScope, StorageUsage};

/// A key-value store with versions, TTLs, conditional writes, counters and
/// ordered prefix scans. The semantics of every method are stated in
/// [`crate::contract`]; every backend behaves identically, which the
/// conformance kit proves.
///
/// The trait is object safe: applications hold an `Arc<dyn StateStore>` and
/// never name a backend.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    /// What this backend offers.
    fn capabilities(&self) -> Capabilities;

    /// Reads a live entry; `None` if the key is absent or expired.
    async fn get(&self, key: &Key) -> Result<Option<Entry>>;

    /// Writes `value` if `condition` holds, with `ttl` (`None`: never
    /// expires, clearing any earlier TTL). On success the version is 1 for a
    /// new key and the previous version + 1 otherwise. A failed condition
    /// changes nothing and returns the current entry, read atomically with
    /// the check.
    ///
    /// # Errors
    /// [`ValueTooLarge`](crate::StateError::ValueTooLarge) or
    /// [`InvalidArgument`](crate::StateError::InvalidArgument) (bad TTL)
    /// before any I/O; backend errors.
    async fn put(&self, key: &Key, value: Bytes, condition: Condition, ttl: Option<Duration>) -> Result<PutOutcome>;

    /// Removes the entry if `condition` holds; returns whether a live entry
    /// was removed (`false` for an absent, expired or other-version key).
    async fn delete(&self, key: &Key, condition: DeleteCondition) -> Result<bool>;

    /// Adds `delta` to the counter at `key`, creating it at 0 first when the
    /// key is absent; `ttl` applies only when the counter is created, and
    /// later increments keep the creation TTL (a fixed window).
    ///
    /// # Errors
    /// [`TypeMismatch`](crate::StateError::TypeMismatch) if the live value
    /// is not a canonical decimal `i64`; [`Overflow`](crate::StateError::Overflow)
    /// if the sum leaves `i64`. Neither changes anything.
    async fn increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter>;

    /// [`put`](Self::put), fenced: performed only if `fence`'s lock is held,
    /// at the instant of the write, by the acquisition that issued its
    /// token, checked atomically with the write. A holder whose lease
    /// expired, was released or was taken over cannot write, even before
    /// it learns so itself.
    ///
    /// # Errors
    /// [`LockLost`](crate::StateError::LockLost) naming the fence's lock
    /// when it is not so held (nothing changed; not retryable);
    /// [`Unsupported`](crate::StateError::Unsupported) unless the backend
    /// declares `fenced_writes`; otherwise as `put`.
    async fn put_fenced(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Duration>,
        fence: &Fence,
    ) -> Result<PutOutcome> {
        let _ = (key, value, condition, ttl, fence);
        Err(crate::driver::unsupported(self.capabilities().backend, "fenced_writes"))
    }

    /// [`delete`](Self::delete), fenced as [`put_fenced`](Self::put_fenced).
    ///
    /// # Errors
    /// As [`put_fenced`](Self::put_fenced) and `delete`.
    async fn delete_fenced(&self, key: &Key, condition: DeleteCondition, fence: &Fence) -> Result<bool> {
        let _ = (key, condition, fence);
        Err(crate::driver::unsupported(self.capabilities().backend, "fenced_writes"))
    }

    /// [`increment`](Self::increment), fenced as
    /// [`put_fenced`](Self::put_fenced).
    ///
    /// # Errors
    /// As [`put_fenced`](Self::put_fenced) and `increment`.
    async fn increment_fenced(&self, key: &Key, delta: i64, ttl: Option<Duration>, fence: &Fence) -> Result<Counter> {
        let _ = (key, delta, ttl, fence);
        Err(crate::driver::unsupported(self.capabilities().backend, "fenced_writes"))
    }

    /// One page of the live entries of `space` whose id starts with `prefix`
    /// (literally: no character is a wildcard), in ascending byte order of
    /// id. Pass the previous page's `next` as `cursor` to continue.
    ///
    /// # Errors
    /// [`Unsupported`](crate::StateError::Unsupported) if the backend does
    /// not declare the scan feature; `InvalidArgument` for a limit outside
    /// `1..=MAX_SCAN_LIMIT` or a cursor that does not belong to this scan.
    async fn scan(&self, space: &str, prefix: &str, cursor: Option<&Cursor>, limit: usize) -> Result<ScanPage>;

    /// What the backend physically holds for `scope` (its entries and the
    /// locks of the same backend), expired data not yet reclaimed included:
    /// the hook of [`crate::storage`] for the conformance kit's reclaim
    /// checks, not an application API.
    ///
    /// # Errors
    /// [`Unsupported`](crate::StateError::Unsupported) unless the backend
    /// declares [`Capabilities::storage`]; backend errors.
    async fn storage_usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        let _ = scope;
        Err(crate::StateError::Unsupported { backend: self.capabilities().backend, feature: "storage" })
    }

    /// Reclaims now what the backend would reclaim on its own within the
    /// declared [`reclaim_within`](crate::StorageReporting::reclaim_within)
    /// (expired entries and leases), and returns how many records it freed.
    /// It changes nothing observable: expired data is already absent.
    ///
    /// # Errors
    /// As [`StateStore::storage_usage`].
    async fn reclaim_expired(&self) -> Result<u64> {
        Err(crate::StateError::Unsupported { backend: self.capabilities().backend, feature: "storage" })
    }

    /// Writes unconditionally; returns the new version.
    async fn set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<Version> {
        match self.put(key, value, Condition::Always, ttl).await? {
            PutOutcome::Written(version) => Ok(version),
            // An `Always` put has no condition to fail.
            PutOutcome::Rejected(_) => Err(crate::StateError::unexpected_reply(
                self.capabilities().backend,
                "set",
                "an unconditional put was rejected",
            )),
        }
    }

    /// Writes only if the key is absent (set-if-absent); returns whether it
    /// wrote. Of any number of concurrent calls on an absent key, exactly
    /// one returns `true`.
    async fn check_and_set(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<bool> {
        Ok(self.put(key, value, Condition::IfAbsent, ttl).await?.written().is_some())
    }

    /// Writes only if the key is live at `expected`; a rejection carries the
    /// current entry so the caller can retry without another read.
    async fn compare_and_swap(
        &self,
        key: &Key,
        expected: Version,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> Result<PutOutcome> {
        self.put(key, value, Condition::IfVersion(expected), ttl).await
    }

    /// Reads the value and version of a live entry, the usual first step of
    /// a read-modify-[`compare_and_swap`](Self::compare_and_swap) loop.
    async fn get_versioned(&self, key: &Key) -> Result<Option<(Bytes, Version)>> {
        Ok(self.get(key).await?.map(|e| (e.value, e.version)))
    }
}

/// Typed helpers over any [`StateStore`]: strings and (with the `json`
/// feature) serde values. A blanket implementation covers every store,
/// including `dyn StateStore`.
#[async_trait]
pub trait StateStoreExt: StateStore {
    /// Writes a UTF-8 string unconditionally.
    async fn set_str(&self, key: &Key, value: &str, ttl: Option<Duration>) -> Result<Version> {
        self.set(key, Bytes::copy_from_slice(value.as_bytes()), ttl).await
    }

    /// Reads a value as a UTF-8 string.
    ///
    /// # Errors
    /// [`TypeMismatch`](crate::StateError::TypeMismatch) if it is not UTF-8.
    async fn get_str(&self, key: &Key) -> Result<Option<String>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(entry) => String::from_utf8(entry.value.to_vec())
                .map(Some)
                .map_err(|_| crate::StateError::TypeMismatch { key: key.to_string() }),
        }
    }

    /// Serializes `value` as JSON and writes it unconditionally.
    #[cfg(feature = "json")]
    async fn set_json<T: serde::Serialize + Sync>(
        &self,
        key: &Key,
        value: &T,
        ttl: Option<Duration>,
    ) -> Result<Version> {
        let bytes = serde_json::to_vec(value).map_err(|e| crate::StateError::InvalidArgument {
            name: "value",
            reason: format!("cannot be serialized as JSON: {e}"),
        })?;
        self.set(key, Bytes::from(bytes), ttl).await
    }

    /// Reads a JSON value.
    ///
    /// # Errors
    /// [`TypeMismatch`](crate::StateError::TypeMismatch) if the stored bytes
    /// are not JSON of type `T`.
    #[cfg(feature = "json")]
    async fn get_json<T: serde::de::DeserializeOwned + Send>(&self, key: &Key) -> Result<Option<T>> {
        match self.get(key).await? {
            None => Ok(None),
            Some(entry) => serde_json::from_slice(&entry.value)
                .map(Some)
                .map_err(|_| crate::StateError::TypeMismatch { key: key.to_string() }),
        }
    }
}

impl<S: StateStore + ?Sized> StateStoreExt for S {}
