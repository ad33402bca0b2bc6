//! [`ScheduleDriver`] for [`DynamoStore`].
//!
//! A space's schedule is one partition of the entries' table, under a
//! partition key no entry can have (`"\0sched\0" + space`: the contract
//! forbids NUL in spaces, as for locks). In it, per item:
//!
//! | sort key | holds |
//! |---|---|
//! | `r\0<id>` | the record: `due`, `p` (payload), `ver`, `slot` (the sort key of its index entry), and while claimed `owner` and `until` (the lease's deadline, epoch ms on the client's clock) |
//! | `w\0<due, 20 digits>\0<id>` | the index entry of a waiting item |
//! | `c\0<until, 20 digits>\0<id>` | the index entry of a claimed item |
//!
//! Index entries carry the id, due time, payload and the record's `ver`.
//! Fixed-width due times sort by number, and the id after them by its
//! bytes, so a `Query` of the `w` range up to `now` reads waiting items in
//! the contract's `(due_at, id)` order, and one of the `c` range up to the
//! client's now reads the claims whose lease has passed: `due` and `claim`
//! read what they return (plus expired claims), not the schedule.
//!
//! Every change is one `TransactWriteItems` over the record and its index
//! entries, conditioned on the record's `ver` as read: an index entry whose
//! `ver` is the record's is current, and a claim whose transaction finds
//! another `ver` lost the race and skips the item. Schedule, cancel,
//! complete and release read the record first and start again when the
//! condition fails.
//!
//! A schedule is not sharded: one space's items share a partition (by
//! DynamoDB's published limits, about 1,000 writes and 3,000 reads a second
//! and 10 GB). Spreading a space over N partitions would make every `due`
//! a merge of N queries; a space that outgrows one partition is better
//! split by the application into several spaces.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::error::{DisplayErrorContext, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use bytes::Bytes;
use state_api::driver::{ScheduleDriver, Ttl};
use state_api::{EpochMillis, Key, Result, ScheduledItem, StateError};

use crate::clock::now_ms;
use crate::item::{attr, number, optional_string, required_number, string};
use crate::statements::{attribute_names, values};
use crate::store::MAX_BRANCH_SWITCHES;
use crate::{BACKEND, DynamoStore};

type Item = HashMap<String, AttributeValue>;

/// Attribute names of schedule items.
mod name {
    pub(super) const DUE: &str = "due";
    pub(super) const PAYLOAD: &str = "p";
    pub(super) const SLOT: &str = "slot";
    pub(super) const UNTIL: &str = "until";
    pub(super) const ITEM_ID: &str = "i";
}

fn partition(space: &str) -> String {
    format!("\0sched\0{space}")
}

fn record_sk(id: &str) -> String {
    format!("r\0{id}")
}

fn waiting_sk(due: u64, id: &str) -> String {
    format!("w\0{due:020}\0{id}")
}

fn claimed_sk(until: u64, id: &str) -> String {
    format!("c\0{until:020}\0{id}")
}

fn key(space: &str, sort: String) -> Item {
    HashMap::from([(attr::SPACE.to_owned(), string(partition(space))), (attr::ID.to_owned(), string(sort))])
}

/// An item's record, as read.
struct Record {
    due: u64,
    ver: u64,
    payload: Bytes,
    slot: String,
    owner: Option<String>,
    until: u64,
}

/// An index entry, as a `Query` returned it.
struct Entry {
    id: String,
    due: u64,
    ver: u64,
    payload: Bytes,
    sort: String,
}

fn payload(item: &Item) -> Bytes {
    match item.get(name::PAYLOAD) {
        Some(AttributeValue::B(blob)) => Bytes::copy_from_slice(blob.as_ref()),
        _ => Bytes::new(),
    }
}

fn unexpected(operation: &'static str, what: &str) -> StateError {
    StateError::failed(BACKEND, format!("{operation}: a schedule item {what}"), false)
}

/// What an index entry carries.
#[derive(Clone, Copy)]
struct Indexed<'a> {
    id: &'a str,
    due: u64,
    ver: u64,
    payload: &'a Bytes,
}

/// How one transaction ended.
enum Outcome {
    Applied,
    /// A condition failed or another transaction got in the way: read
    /// again (or skip the item).
    Conflict,
}

impl DynamoStore {
    async fn record(&self, operation: &'static str, key: &Key) -> Result<Option<Record>> {
        let output = self
            .reads()
            .get_item()
            .table_name(self.table())
            .set_key(Some(self::key(key.space(), record_sk(key.id()))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| self.context(operation).map(e))?;
        let Some(item) = output.item else { return Ok(None) };
        Ok(Some(Record {
            due: required_number(&item, name::DUE)?,
            ver: required_number(&item, attr::VERSION)?,
            payload: payload(&item),
            slot: optional_string(&item, name::SLOT)
                .ok_or_else(|| unexpected(operation, "record has no slot"))?
                .to_owned(),
            owner: optional_string(&item, attr::OWNER).map(str::to_owned),
            until: required_number(&item, name::UNTIL).unwrap_or(0),
        }))
    }

    /// The index entries of `space` in the sort-key range `[low, high]`,
    /// at most `limit` of them.
    async fn entries(
        &self,
        operation: &'static str,
        space: &str,
        low: String,
        high: String,
        limit: Option<usize>,
    ) -> Result<Vec<Entry>> {
        let condition = "#space = :space AND #id BETWEEN :low AND :high";
        let mut entries = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut request = self
                .reads()
                .query()
                .table_name(self.table())
                .key_condition_expression(condition)
                .set_expression_attribute_names(Some(attribute_names(&[condition])))
                .set_expression_attribute_values(Some(values([
                    (":space", string(partition(space))),
                    (":low", string(low.clone())),
                    (":high", string(high.clone())),
                ])))
                .consistent_read(true)
                .set_exclusive_start_key(start.take());
            if let Some(limit) = limit {
                request = request.limit(i32::try_from(limit - entries.len()).unwrap_or(i32::MAX));
            }
            let output = request.send().await.map_err(|e| self.context(operation).map(e))?;
            for item in output.items() {
                let sort = optional_string(item, attr::ID).unwrap_or_default().to_owned();
                entries.push(Entry {
                    id: optional_string(item, name::ITEM_ID)
                        .ok_or_else(|| unexpected(operation, "entry has no id"))?
                        .to_owned(),
                    due: required_number(item, name::DUE)?,
                    ver: required_number(item, attr::VERSION)?,
                    payload: payload(item),
                    sort,
                });
            }
            start = output.last_evaluated_key;
            if start.is_none() || limit.is_some_and(|limit| entries.len() >= limit) {
                return Ok(entries);
            }
        }
    }

    /// The entries `due` would list: waiting ones due at `now`, and claims
    /// whose lease has passed, in `(due, id)` order, at most `limit`.
    async fn due_entries(
        &self,
        operation: &'static str,
        space: &str,
        now: EpochMillis,
        limit: usize,
    ) -> Result<Vec<Entry>> {
        let waiting = self.entries(operation, space, "w\0".into(), format!("w\0{:020}\x01", now.millis()), Some(limit));
        let expired = self.entries(operation, space, "c\0".into(), format!("c\0{:020}\x01", now_ms()), None);
        let (waiting, expired) = tokio::try_join!(waiting, expired)?;
        let mut due: Vec<Entry> =
            waiting.into_iter().chain(expired.into_iter().filter(|e| e.due <= now.millis())).collect();
        due.sort_by(|a, b| (a.due, a.id.as_bytes()).cmp(&(b.due, b.id.as_bytes())));
        due.truncate(limit);
        Ok(due)
    }

    /// Sends one transaction.
    async fn transact(&self, operation: &'static str, actions: Vec<TransactWriteItem>) -> Result<Outcome> {
        let request = self.writes().transact_write_items().set_transact_items(Some(actions));
        let service = match request.send().await {
            Ok(_) => return Ok(Outcome::Applied),
            Err(SdkError::ServiceError(service)) => service,
            Err(error) => return Err(self.context(operation).map(error)),
        };
        let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err() else {
            return Err(self.context(operation).map(SdkError::ServiceError(service)));
        };
        let codes: Vec<&str> = cancelled.cancellation_reasons().iter().map(|r| r.code().unwrap_or("None")).collect();
        if codes.iter().all(|code| RETRY_CODES.contains(code)) {
            return Ok(Outcome::Conflict);
        }
        Err(StateError::failed(
            BACKEND,
            format!("{operation}: the schedule transaction was cancelled ({codes:?})"),
            false,
        ))
    }

    fn contended(operation: &'static str, key: &Key) -> StateError {
        StateError::failed(
            BACKEND,
            format!("{operation} on {key} lost {MAX_BRANCH_SWITCHES} races in a row; retry"),
            true,
        )
    }

    /// A `Put` of the index entry `sort` of `item`.
    fn put_entry(
        &self,
        operation: &'static str,
        space: &str,
        sort: String,
        item: Indexed<'_>,
    ) -> Result<TransactWriteItem> {
        let mut entry = key(space, sort);
        entry.insert(name::ITEM_ID.to_owned(), string(item.id));
        entry.insert(name::DUE.to_owned(), number(item.due));
        entry.insert(attr::VERSION.to_owned(), number(item.ver));
        entry.insert(name::PAYLOAD.to_owned(), AttributeValue::B(Blob::new(item.payload.to_vec())));
        let put =
            Put::builder().table_name(self.table()).set_item(Some(entry)).build().map_err(|e| build(operation, &e))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    fn delete_entry(&self, operation: &'static str, space: &str, sort: String) -> Result<TransactWriteItem> {
        let delete = Delete::builder()
            .table_name(self.table())
            .set_key(Some(key(space, sort)))
            .build()
            .map_err(|e| build(operation, &e))?;
        Ok(TransactWriteItem::builder().delete(delete).build())
    }

    /// Settles a claim: removes the item (`complete`) or returns it to
    /// waiting, if `owner`'s claim still holds it.
    async fn settle(&self, operation: &'static str, key: &Key, owner: &str, complete: bool) -> Result<bool> {
        let (space, id) = (key.space(), key.id());
        for _ in 0..MAX_BRANCH_SWITCHES {
            let now = now_ms();
            let Some(record) = self.record(operation, key).await? else { return Ok(false) };
            if record.owner.as_deref() != Some(owner) || record.until <= now {
                return Ok(false);
            }
            let held = "#ver = :ver AND #owner = :owner AND #until > :now";
            let held_values = values([(":ver", number(record.ver)), (":owner", string(owner)), (":now", number(now))]);
            let mut actions = vec![self.delete_entry(operation, space, record.slot.clone())?];
            if complete {
                let delete = Delete::builder()
                    .table_name(self.table())
                    .set_key(Some(self::key(space, record_sk(id))))
                    .condition_expression(held)
                    .set_expression_attribute_names(Some(attribute_names(&[held])))
                    .set_expression_attribute_values(Some(held_values))
                    .build()
                    .map_err(|e| build(operation, &e))?;
                actions.push(TransactWriteItem::builder().delete(delete).build());
            } else {
                let ver = record.ver + 1;
                let slot = waiting_sk(record.due, id);
                let update_expression = "SET #ver = :next, #slot = :slot REMOVE #owner, #until";
                let mut update_values = held_values;
                update_values.insert(":next".to_owned(), number(ver));
                update_values.insert(":slot".to_owned(), string(slot.clone()));
                let update = Update::builder()
                    .table_name(self.table())
                    .set_key(Some(self::key(space, record_sk(id))))
                    .update_expression(update_expression)
                    .condition_expression(held)
                    .set_expression_attribute_names(Some(attribute_names(&[update_expression, held])))
                    .set_expression_attribute_values(Some(update_values))
                    .build()
                    .map_err(|e| build(operation, &e))?;
                actions.push(TransactWriteItem::builder().update(update).build());
                actions.push(self.put_entry(
                    operation,
                    space,
                    slot,
                    Indexed { id, due: record.due, ver, payload: &record.payload },
                )?);
            }
            if let Outcome::Applied = self.transact(operation, actions).await? {
                return Ok(true);
            }
        }
        Err(Self::contended(operation, key))
    }
}

/// Cancellation reasons after which the change starts again (or the claim
/// skips the item): a condition on the record failed (it changed), a
/// transaction or throttling got in the way, or the action was fine and
/// another one failed.
const RETRY_CODES: &[&str] =
    &["None", "ConditionalCheckFailed", "TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"];

fn build(operation: &'static str, error: &aws_sdk_dynamodb::error::BuildError) -> StateError {
    StateError::failed(
        BACKEND,
        format!("{operation}: a schedule request could not be built: {}", DisplayErrorContext(error)),
        false,
    )
}

#[async_trait]
impl ScheduleDriver for DynamoStore {
    async fn enqueue(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()> {
        let (space, id, due) = (key.space(), key.id(), due_at.millis());
        for _ in 0..MAX_BRANCH_SWITCHES {
            let record = self.record("schedule", key).await?;
            let ver = record.as_ref().map_or(1, |r| r.ver + 1);
            let slot = waiting_sk(due, id);
            let (condition, condition_values) = match &record {
                None => ("attribute_not_exists(#ver)", None),
                Some(record) => ("#ver = :ver", Some(values([(":ver", number(record.ver))]))),
            };
            let mut item = self::key(space, record_sk(id));
            item.insert(name::DUE.to_owned(), number(due));
            item.insert(attr::VERSION.to_owned(), number(ver));
            item.insert(name::PAYLOAD.to_owned(), AttributeValue::B(Blob::new(payload.to_vec())));
            item.insert(name::SLOT.to_owned(), string(slot.clone()));
            let put = Put::builder()
                .table_name(self.table())
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(attribute_names(&[condition])))
                .set_expression_attribute_values(condition_values)
                .build()
                .map_err(|e| build("schedule", &e))?;
            let mut actions = vec![TransactWriteItem::builder().put(put).build()];
            // The old index entry goes, unless the new one replaces it in
            // place (one transaction may not touch an item twice).
            if let Some(old) = record.as_ref().map(|r| r.slot.clone()).filter(|old| *old != slot) {
                actions.push(self.delete_entry("schedule", space, old)?);
            }
            actions.push(self.put_entry("schedule", space, slot, Indexed { id, due, ver, payload: &payload })?);
            if let Outcome::Applied = self.transact("schedule", actions).await? {
                return Ok(());
            }
        }
        Err(Self::contended("schedule", key))
    }

    async fn dequeue(&self, key: &Key) -> Result<bool> {
        for _ in 0..MAX_BRANCH_SWITCHES {
            let Some(record) = self.record("cancel", key).await? else { return Ok(false) };
            let condition = "#ver = :ver";
            let delete = Delete::builder()
                .table_name(self.table())
                .set_key(Some(self::key(key.space(), record_sk(key.id()))))
                .condition_expression(condition)
                .set_expression_attribute_names(Some(attribute_names(&[condition])))
                .set_expression_attribute_values(Some(values([(":ver", number(record.ver))])))
                .build()
                .map_err(|e| build("cancel", &e))?;
            let actions = vec![
                TransactWriteItem::builder().delete(delete).build(),
                self.delete_entry("cancel", key.space(), record.slot)?,
            ];
            if let Outcome::Applied = self.transact("cancel", actions).await? {
                return Ok(true);
            }
        }
        Err(Self::contended("cancel", key))
    }

    async fn peek(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>> {
        self.due_entries("due", space, now, limit)
            .await?
            .into_iter()
            .map(|entry| {
                let key = Key::new(space, &entry.id).map_err(|_| unexpected("due", "id breaks the key rules"))?;
                Ok(ScheduledItem { key, due_at: EpochMillis(entry.due), payload: entry.payload })
            })
            .collect()
    }

    async fn take(
        &self,
        space: &str,
        now: EpochMillis,
        limit: usize,
        owner: &str,
        lease: Ttl,
    ) -> Result<Vec<ScheduledItem>> {
        let mut claimed = Vec::new();
        // More candidates than asked for: claimers racing for the first
        // ones skip the ones they lose, in due order.
        let candidates = limit.saturating_mul(4).saturating_add(8).min(state_api::MAX_SCHEDULE_LIMIT);
        for entry in self.due_entries("claim", space, now, candidates).await? {
            if claimed.len() == limit {
                break;
            }
            let until = now_ms().saturating_add(lease.millis());
            let (ver, slot) = (entry.ver + 1, claimed_sk(until, &entry.id));
            // The entry is current only while the record's `ver` is its.
            let condition = "#ver = :ver";
            let update_expression = "SET #owner = :owner, #until = :until, #ver = :next, #slot = :slot";
            let update = Update::builder()
                .table_name(self.table())
                .set_key(Some(key(space, record_sk(&entry.id))))
                .update_expression(update_expression)
                .condition_expression(condition)
                .set_expression_attribute_names(Some(attribute_names(&[update_expression, condition])))
                .set_expression_attribute_values(Some(values([
                    (":ver", number(entry.ver)),
                    (":owner", string(owner)),
                    (":until", number(until)),
                    (":next", number(ver)),
                    (":slot", string(slot.clone())),
                ])))
                .build()
                .map_err(|e| build("claim", &e))?;
            let actions = vec![
                TransactWriteItem::builder().update(update).build(),
                self.delete_entry("claim", space, entry.sort.clone())?,
                self.put_entry(
                    "claim",
                    space,
                    slot,
                    Indexed { id: &entry.id, due: entry.due, ver, payload: &entry.payload },
                )?,
            ];
            // Lost to another claimer (or a change): that item is theirs.
            if let Outcome::Applied = self.transact("claim", actions).await? {
                let key = Key::new(space, &entry.id).map_err(|_| unexpected("claim", "id breaks the key rules"))?;
                claimed.push(ScheduledItem { key, due_at: EpochMillis(entry.due), payload: entry.payload });
            }
        }
        Ok(claimed)
    }

    async fn finish(&self, key: &Key, owner: &str) -> Result<bool> {
        self.settle("complete", key, owner, true).await
    }

    async fn unclaim(&self, key: &Key, owner: &str) -> Result<bool> {
        self.settle("release_claim", key, owner, false).await
    }
}
