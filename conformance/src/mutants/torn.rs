//! Torn operations: mutants whose one defect is a read and a write done in
//! separate steps, where the contract wants one. Alone, each behaves like
//! the correct store; only a race in the gap shows the defect, so only
//! the concurrent properties can catch them.
//!
//! Four of them tear an operation around expiry. A real store that does so
//! still holds the expired item when it reads it; these mutants keep the
//! same knowledge in `Memory::deadlines` (the version and deadline of each
//! entry they wrote with a TTL), since the in-memory store they wrap hides
//! expired entries. Every step is a call to that store, and [`GAP`]
//! between the read and the write stands for a round trip.

use std::time::Duration;

use bytes::Bytes;
use state_api::driver::Ttl;
use state_api::{Condition, Counter, DeleteCondition, Entry, Key, PutOutcome, Result, StateError, Version};
use tokio::time::{Instant, sleep};

use super::{Mutant, Mutation};

/// The pause between a torn operation's read and its write.
const GAP: Duration = Duration::from_millis(2);

impl Mutant {
    /// Whether this mutant's store operations are the torn ones here.
    pub(super) fn is_torn(&self) -> bool {
        matches!(
            self.mutation,
            Mutation::ExpiredCheckAndSetRace
                | Mutation::GetDeletesFreshWrite
                | Mutation::IncrementAcrossExpiryLosesUpdates
                | Mutation::CasOnExpiredEntry
                | Mutation::SetReadModifyWrite
        )
    }

    pub(super) async fn torn_get(&self, key: &Key) -> Result<Option<Entry>> {
        let current = self.inner.get(key).await?;
        if current.is_none() && self.is(Mutation::GetDeletesFreshWrite) && self.expired_version(key).is_some() {
            // Cleaning up the expired item is a second step, which deletes
            // whatever the key holds by then.
            sleep(GAP).await;
            self.inner.delete(key, DeleteCondition::Always).await?;
            self.forget(key);
        }
        Ok(current)
    }

    pub(super) async fn torn_put(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Duration>,
    ) -> Result<PutOutcome> {
        // Arguments are checked before the first step, as the store does.
        self.check_arguments(&value, ttl)?;
        let outcome = match (self.mutation, condition) {
            (Mutation::ExpiredCheckAndSetRace, Condition::IfAbsent) => self.put_if_absent_torn(key, value, ttl).await?,
            (Mutation::CasOnExpiredEntry, Condition::IfVersion(expected)) => {
                self.compare_and_swap_torn(key, value, expected, ttl).await?
            }
            (Mutation::SetReadModifyWrite, Condition::Always) => self.set_torn(key, value, ttl).await?,
            _ => self.inner.put(key, value, condition, ttl).await?,
        };
        if let PutOutcome::Written(version) = outcome {
            self.note_write(key, version, ttl);
        }
        Ok(outcome)
    }

    pub(super) async fn torn_delete(&self, key: &Key, condition: DeleteCondition) -> Result<bool> {
        let deleted = self.inner.delete(key, condition).await?;
        if deleted {
            self.forget(key);
        }
        Ok(deleted)
    }

    pub(super) async fn torn_increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter> {
        self.check_arguments(&Bytes::new(), ttl)?;
        if self.is(Mutation::IncrementAcrossExpiryLosesUpdates)
            && self.inner.get(key).await?.is_none()
            && self.expired_version(key).is_some()
        {
            // A new window replaces the expired one: delete, then write the
            // delta, each its own step.
            sleep(GAP).await;
            self.inner.delete(key, DeleteCondition::Always).await?;
            let written = self.inner.put(key, Bytes::from(delta.to_string()), Condition::Always, ttl).await?;
            let version = match written {
                PutOutcome::Written(version) => version,
                PutOutcome::Rejected(_) => return Err(StateError::failed("mutant", "put rejected", false)),
            };
            self.note_write(key, version, ttl);
            return Ok(Counter { value: delta, version });
        }
        let counter = self.inner.increment(key, delta, ttl).await?;
        if counter.version == Version::FIRST {
            self.note_write(key, counter.version, ttl);
        } else if let Some((version, _)) = self.memory.lock().deadlines.get_mut(key) {
            // A live counter keeps its window.
            *version = counter.version;
        }
        Ok(counter)
    }

    /// `check_and_set` that finds an expired item deletes it and writes,
    /// each its own step: contenders that all read the expired item all
    /// delete and write, and all win.
    async fn put_if_absent_torn(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<PutOutcome> {
        if self.inner.get(key).await?.is_none() && self.expired_version(key).is_some() {
            sleep(GAP).await;
            self.inner.delete(key, DeleteCondition::Always).await?;
            return self.inner.put(key, value, Condition::Always, ttl).await;
        }
        self.inner.put(key, value, Condition::IfAbsent, ttl).await
    }

    /// `compare_and_swap` that checks the version on a read and writes in
    /// a second step conditioned on the version alone: an item that
    /// expired in between still holds that version, so the write succeeds
    /// on it, bringing it back at the next version.
    async fn compare_and_swap_torn(
        &self,
        key: &Key,
        value: Bytes,
        expected: Version,
        ttl: Option<Duration>,
    ) -> Result<PutOutcome> {
        match self.inner.get(key).await? {
            None => return Ok(PutOutcome::Rejected(None)),
            Some(entry) if entry.version != expected => return Ok(PutOutcome::Rejected(Some(entry))),
            Some(_) => {}
        }
        sleep(GAP).await;
        let outcome = self.inner.put(key, value.clone(), Condition::IfVersion(expected), ttl).await?;
        if !matches!(outcome, PutOutcome::Rejected(None)) || self.expired_version(key) != Some(expected) {
            return Ok(outcome);
        }
        // The wrapped store cannot write a chosen version: write until it
        // reaches the next one (versions in the kit's histories are small).
        let mut written = PutOutcome::Rejected(None);
        for _ in 0..=expected.0.min(64) {
            written = self.inner.put(key, value.clone(), Condition::Always, ttl).await?;
        }
        Ok(written)
    }

    /// `set` as a read, then a write of the version read plus one. If
    /// another write lands in between, a store that writes the version it
    /// computed acknowledges both with one version, and the earlier of the
    /// two is lost; here the other write stays and this one is lost, which
    /// looks the same from outside.
    async fn set_torn(&self, key: &Key, value: Bytes, ttl: Option<Duration>) -> Result<PutOutcome> {
        let read = self.inner.get(key).await?;
        sleep(GAP).await;
        let condition = read.as_ref().map_or(Condition::IfAbsent, |e| Condition::IfVersion(e.version));
        Ok(match self.inner.put(key, value, condition, ttl).await? {
            PutOutcome::Written(version) => PutOutcome::Written(version),
            PutOutcome::Rejected(_) => {
                PutOutcome::Written(read.map_or(Version::FIRST, |e| Version(e.version.0.saturating_add(1))))
            }
        })
    }

    /// The checks the wrapped store makes before any I/O: a valid TTL and
    /// a value within the limit.
    fn check_arguments(&self, value: &Bytes, ttl: Option<Duration>) -> Result<()> {
        Ttl::optional(ttl)?;
        let limit = self.inner.capabilities().max_value_len;
        if value.len() > limit {
            return Err(StateError::ValueTooLarge { size: value.len(), max: limit });
        }
        Ok(())
    }

    /// The version of the item at `key` if it has expired: what a store
    /// that does not drop expired items at once would still hold.
    fn expired_version(&self, key: &Key) -> Option<Version> {
        let memory = self.memory.lock();
        memory.deadlines.get(key).filter(|(_, deadline)| *deadline <= Instant::now()).map(|(version, _)| *version)
    }

    /// Records a write: with a TTL, the entry's version and deadline;
    /// without, that it never expires.
    fn note_write(&self, key: &Key, version: Version, ttl: Option<Duration>) {
        let mut memory = self.memory.lock();
        match ttl.and_then(|ttl| Instant::now().checked_add(ttl)) {
            Some(deadline) => memory.deadlines.insert(key.clone(), (version, deadline)),
            None => memory.deadlines.remove(key),
        };
    }

    fn forget(&self, key: &Key) {
        self.memory.lock().deadlines.remove(key);
    }
}
