//! Fenced writes: a write that happens only while its fence holds (the
//! lock is held, now, by the acquisition that issued the fence's token:
//! etcd's IsOwner rule, as the contract's "Fenced writes" says).
//!
//! The lock and the entry are two items, so one conditional request cannot
//! decide both; a transaction can. A fenced write is:
//!
//! 1. **A snapshot** (`TransactGetItems`): the entry and the lock item, read
//!    at one instant. If the fence does not hold there, the answer is
//!    `LockLost`. If the contract's answer needs no write (a rejected
//!    condition, a delete of nothing, `TypeMismatch`, `Overflow`), that
//!    instant is the operation's, and the answer is given from it.
//! 2. **A commit** (`TransactWriteItems`) of two actions applied together
//!    or not at all: a `ConditionCheck` that the fence still holds, and the
//!    write, conditioned on the entry being as the snapshot saw it in every
//!    respect the answer depends on (absent or expired; or live at the
//!    version seen, with the deadline seen, and for a counter the value
//!    seen). Its answer was computed from the snapshot, and the condition
//!    makes it the answer at the commit's instant too: a transaction
//!    returns no new version, so it is computed, not read back.
//!
//! A commit refused for the fence is `LockLost`; refused for the entry
//! (another client wrote in between) or for a conflicting transaction, the
//! write starts again from a new snapshot. Either way a refused commit
//! changed nothing.

use std::collections::HashMap;

use aws_sdk_dynamodb::error::{BuildError, DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Get, Put, TransactGetItem, TransactWriteItem};
use bytes::Bytes;
use state_api::driver::Ttl;
use state_api::{Condition, Counter, DeleteCondition, Fence, Key, PutOutcome, Result, StateError, Version};

use crate::clock::{Deadline, deadline, now_ms};
use crate::error::Item;
use crate::item::{ENTRY_PROJECTION, StoredEntry, StoredValue, attr, entry_item, key_of, number, optional_string};
use crate::lock::lock_key;
use crate::statements::{self as expr, attribute_names, values};
use crate::store::MAX_BRANCH_SWITCHES;
use crate::{BACKEND, DynamoStore};

/// What a fenced write does, decided from its snapshot.
enum Plan<T> {
    /// The answer needs no write; the snapshot is the operation's instant.
    Answer(Result<T>),
    /// Write this whole item, then answer.
    Put(Item, T),
    /// Delete the entry, then answer.
    Delete(T),
}

/// What the snapshot found.
enum Snapshot {
    /// The fence holds; the entry live at the snapshot's instant, if any.
    Held(Option<StoredEntry>),
    /// The lock is not held by the fence's acquisition.
    Lost,
    /// A transaction on one of the items was in progress: read again.
    Conflict,
}

/// How a commit ended.
enum Commit {
    Applied,
    Lost,
    /// The entry changed since the snapshot, or a transaction conflicted.
    Again,
}

impl DynamoStore {
    pub(crate) async fn put_fenced(
        &self,
        key: &Key,
        value: &Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: &Fence,
    ) -> Result<PutOutcome> {
        self.fenced("put", key, fence, |seen, now| {
            let written = |version: u64| {
                Plan::Put(entry_item(key, value, version, deadline(now, ttl)), PutOutcome::Written(Version(version)))
            };
            match (condition, seen) {
                (Condition::Always, None) | (Condition::IfAbsent, None) => written(1),
                (Condition::Always, Some(current)) => {
                    next_version(key, &current).map_or_else(|e| Plan::Answer(Err(e)), written)
                }
                (Condition::IfVersion(expected), Some(current)) if current.version == expected => {
                    next_version(key, &current).map_or_else(|e| Plan::Answer(Err(e)), written)
                }
                (_, current) => Plan::Answer(Ok(PutOutcome::Rejected(current.map(|c| c.into_entry(now))))),
            }
        })
        .await
    }

    pub(crate) async fn delete_fenced(&self, key: &Key, condition: DeleteCondition, fence: &Fence) -> Result<bool> {
        self.fenced("delete", key, fence, |seen, _| match (condition, seen) {
            (DeleteCondition::Always, Some(_)) => Plan::Delete(true),
            (DeleteCondition::IfVersion(expected), Some(current)) if current.version == expected => Plan::Delete(true),
            _ => Plan::Answer(Ok(false)),
        })
        .await
    }

    pub(crate) async fn increment_fenced(
        &self,
        key: &Key,
        delta: i64,
        ttl: Option<Ttl>,
        fence: &Fence,
    ) -> Result<Counter> {
        self.fenced("increment", key, fence, |seen, now| {
            let counted = |value: i64, version: u64, at: Deadline| {
                let item = entry_item(key, &Bytes::from(state_api::counter::format(value)), version, at);
                Plan::Put(item, Counter { value, version: Version(version) })
            };
            let Some(current) = seen else { return counted(delta, 1, deadline(now, ttl)) };
            let StoredValue::Counter(n) = current.value else {
                return Plan::Answer(Err(StateError::TypeMismatch { key: key.to_string() }));
            };
            match (n.checked_add(delta), next_version(key, &current)) {
                (None, _) => Plan::Answer(Err(StateError::Overflow { key: key.to_string(), delta })),
                (_, Err(error)) => Plan::Answer(Err(error)),
                // A live counter keeps its deadline, as `increment` does.
                (Some(value), Ok(version)) => counted(value, version, Deadline::stored(current.exp_ms)),
            }
        })
        .await
    }

    /// Runs a fenced write whose answer `plan` decides from the entry live
    /// at a snapshot (and that snapshot's clock reading).
    async fn fenced<T>(
        &self,
        operation: &'static str,
        key: &Key,
        fence: &Fence,
        plan: impl Fn(Option<StoredEntry>, u64) -> Plan<T>,
    ) -> Result<T> {
        let lost = || StateError::LockLost { name: fence.lock().to_owned() };
        for _ in 0..MAX_BRANCH_SWITCHES {
            let now = now_ms();
            let seen = match self.snapshot(operation, key, fence, now).await? {
                Snapshot::Held(seen) => seen,
                Snapshot::Lost => return Err(lost()),
                Snapshot::Conflict => continue,
            };
            let (write, answer) = match plan(seen.clone(), now) {
                Plan::Answer(answer) => return answer,
                Plan::Put(item, answer) => (Some(item), answer),
                Plan::Delete(answer) => (None, answer),
            };
            match self.commit(operation, key, fence, seen.as_ref(), write).await? {
                Commit::Applied => return Ok(answer),
                Commit::Lost => return Err(lost()),
                Commit::Again => {}
            }
        }
        Err(Self::contention(operation, key))
    }

    /// The entry and the lock item, read at one instant.
    async fn snapshot(&self, operation: &'static str, key: &Key, fence: &Fence, now: u64) -> Result<Snapshot> {
        let get = |key, projection: &'static str| {
            Get::builder()
                .table_name(self.table())
                .set_key(Some(key))
                .projection_expression(projection)
                .set_expression_attribute_names(Some(attribute_names(&[projection])))
                .build()
                .map(|get| TransactGetItem::builder().get(get).build())
                .map_err(|e| build_error(operation, &e))
        };
        let request = self
            .reads()
            .transact_get_items()
            .transact_items(get(key_of(key.space(), key.id()), ENTRY_PROJECTION)?)
            .transact_items(get(lock_key(fence.lock()), expr::FENCE_PROJECTION)?);
        let output = match request.send().await {
            Ok(output) => output,
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), TransactGetItemsError::TransactionCanceledException(_)) =>
            {
                return Ok(Snapshot::Conflict);
            }
            Err(error) => return Err(self.context(operation).map(error)),
        };
        let item = |index: usize| output.responses().get(index).and_then(|response| response.item());
        if !fence_holds(item(1), fence, now) {
            return Ok(Snapshot::Lost);
        }
        Ok(Snapshot::Held(StoredEntry::live_from(item(0), now)?))
    }

    /// Writes `item` (or deletes the entry when `None`) if the fence still
    /// holds and the entry is still as `seen`.
    async fn commit(
        &self,
        operation: &'static str,
        key: &Key,
        fence: &Fence,
        seen: Option<&StoredEntry>,
        item: Option<Item>,
    ) -> Result<Commit> {
        let now = now_ms();
        let check = ConditionCheck::builder()
            .table_name(self.table())
            .set_key(Some(lock_key(fence.lock())))
            .condition_expression(expr::FENCE_HOLDS)
            .set_expression_attribute_names(Some(attribute_names(&[expr::FENCE_HOLDS])))
            .set_expression_attribute_values(Some(values([(":now", number(now)), (":token", number(fence.token().0))])))
            .build()
            .map_err(|e| build_error(operation, &e))?;
        let (condition, condition_values) = unchanged(seen, now);
        let names = Some(attribute_names(&[condition]));
        let write = match item {
            Some(item) => Put::builder()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(Some(condition_values))
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build()),
            None => Delete::builder()
                .table_name(self.table())
                .set_key(Some(key_of(key.space(), key.id())))
                .condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(Some(condition_values))
                .build()
                .map(|delete| TransactWriteItem::builder().delete(delete).build()),
        }
        .map_err(|e| build_error(operation, &e))?;
        let request = self
            .writes()
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(write);
        let service = match request.send().await {
            Ok(_) => return Ok(Commit::Applied),
            Err(SdkError::ServiceError(service)) => service,
            Err(error) => return Err(self.context(operation).map(error)),
        };
        let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
            return Err(self.context(operation).map(SdkError::ServiceError(service)));
        };
        // One reason per action, in order: the fence's check, then the write.
        let codes: Vec<&str> = cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
        match codes.as_slice() {
            ["ConditionalCheckFailed", ..] => Ok(Commit::Lost),
            codes if codes.iter().all(|code| RETRY_CODES.contains(code)) => Ok(Commit::Again),
            codes => {
                let message = format!("{operation}: the fenced write's transaction was cancelled ({codes:?})");
                Err(StateError::failed(BACKEND, message, false))
            }
        }
    }
}

/// Cancellation reasons after which the write starts again from a new
/// snapshot: the entry changed (`ConditionalCheckFailed` on the write), a
/// transaction or throttling got in the way, or the action was fine
/// (`None`) and another one failed.
const RETRY_CODES: &[&str] =
    &["None", "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];

/// The condition (and its values) that the entry is still as `seen`, in
/// every respect a fenced write's answer depends on.
fn unchanged(seen: Option<&StoredEntry>, now: u64) -> (&'static str, HashMap<String, AttributeValue>) {
    let Some(seen) = seen else { return (expr::ABSENT, values([(":now", number(now))])) };
    let mut condition_values =
        values([(":ver", number(seen.version.0)), (":seen", number(seen.exp_ms)), (":now", number(now))]);
    match seen.value {
        StoredValue::Counter(n) => {
            condition_values.insert(":n".to_owned(), number(n));
            (expr::SEEN_COUNTER, condition_values)
        }
        StoredValue::Bytes(_) => (expr::SEEN_LIVE, condition_values),
    }
}

/// Whether the lock item shows the fence's acquisition holding the lock
/// at `now`: an owner, a deadline after `now`, and the fence's token as the
/// last one issued (a later acquisition would have issued a higher one).
fn fence_holds(lock: Option<&Item>, fence: &Fence, now: u64) -> bool {
    let Some(lock) = lock else { return false };
    let number = |name: &str| match lock.get(name) {
        Some(AttributeValue::N(text)) => text.parse::<u64>().ok(),
        _ => None,
    };
    optional_string(lock, attr::OWNER).is_some()
        && number(attr::EXPIRES).is_some_and(|exp| exp > now)
        && number(attr::FENCE) == Some(fence.token().0)
}

/// The version after `current`'s; `Overflow` past `u64::MAX`.
fn next_version(key: &Key, current: &StoredEntry) -> Result<u64> {
    current.version.0.checked_add(1).ok_or_else(|| StateError::Overflow { key: key.to_string(), delta: 1 })
}

fn build_error(operation: &'static str, error: &BuildError) -> StateError {
    let message = format!("{operation}: the fenced write's request could not be built: {}", DisplayErrorContext(error));
    StateError::failed(BACKEND, message, false)
}
