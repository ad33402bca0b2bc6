//! [`StoreDriver`] for [`DynamoStore`]: each operation is one conditional
//! request on one item (two alternating branches for the cases a single
//! expression cannot express, each branch itself one atomic request).
//!
//! Why this is linearizable: DynamoDB evaluates a request's condition and
//! applies its write atomically on the item, and strongly consistent reads
//! see every write acknowledged before them. An operation whose request
//! succeeds takes effect at that request's instant, with exactly the
//! contract's result for the state it saw (the condition *is* the
//! contract's precondition). A request whose condition fails changes
//! nothing, so an operation that tries a second branch after a failed first
//! one is as if only the successful branch had run.

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use bytes::Bytes;
use state_api::driver::{Listing, ScanRequest, StoreDriver, Ttl};
use state_api::{
    Capabilities, Condition, Counter, DeleteCondition, Entry, Fence, Key, PutOutcome, Result, ScanItem, StateError,
    Version,
};

use crate::clock::{Deadline, deadline, now_ms};
use crate::error::{Conditional, conditional};
use crate::item::{ENTRY_PROJECTION, StoredEntry, StoredValue, attr, entry_item, key_of, number, optional_string};
use crate::item::{required_number, string, value_attribute};
use crate::statements::{self as expr, attribute_names, values};
use crate::{BACKEND, DynamoStore};

/// How many times an operation may switch between its two branches
/// before giving up. Each switch means another client changed the key's
/// liveness in between (an entry expiring, then being rewritten with a
/// short TTL, over and over); in practice one switch is the most seen.
pub(crate) const MAX_BRANCH_SWITCHES: usize = 16;

impl DynamoStore {
    pub(crate) fn contention(operation: &'static str, key: &Key) -> StateError {
        let message = format!("{operation} on {key} lost {MAX_BRANCH_SWITCHES} races in a row; retry");
        StateError::failed(BACKEND, message, true)
    }

    async fn put_always(&self, key: &Key, value: &Bytes, ttl: Option<Ttl>) -> Result<PutOutcome> {
        for _ in 0..MAX_BRANCH_SWITCHES {
            let now = now_ms();
            let deadline = deadline(now, ttl);
            if let Some(version) = self.update_missing_or_live(key, value, now, deadline).await? {
                return Ok(PutOutcome::Written(version));
            }
            // The item is expired: replace it, restarting at version 1.
            if self.create(key, value, now, deadline).await?.is_none() {
                return Ok(PutOutcome::Written(Version::FIRST));
            }
            // Someone made the key live again in between: update it.
        }
        Err(Self::contention("put", key))
    }

    /// The first branch of `put(Always)`: writes over a missing or live
    /// item and returns the new version; `None` if the item is expired.
    async fn update_missing_or_live(
        &self,
        key: &Key,
        value: &Bytes,
        now: u64,
        deadline: Deadline,
    ) -> Result<Option<Version>> {
        let (attribute, _, value) = value_attribute(value);
        let update = if attribute == attr::COUNTER { expr::PUT_UPDATE_COUNTER } else { expr::PUT_UPDATE_BYTES };
        let request = self
            .writes()
            .update_item()
            .table_name(self.table())
            .set_key(Some(key_of(key.space(), key.id())))
            .update_expression(update)
            .condition_expression(expr::MISSING_OR_LIVE)
            .set_expression_attribute_names(Some(attribute_names(&[update, expr::MISSING_OR_LIVE])))
            .set_expression_attribute_values(Some(values([
                (":value", value),
                (":zero", number(0)),
                (":one", number(1)),
                (":exp", number(deadline.exp_ms)),
                (":ttl", number(deadline.reap_at_seconds)),
                (":now", number(now)),
            ])))
            // The new version is computed by DynamoDB, so it has to come
            // back; UPDATED_NEW is the smallest answer that carries it.
            .return_values(ReturnValue::UpdatedNew);
        match conditional(self.context("put"), request.send().await)? {
            Conditional::Applied(output) => {
                let attributes = output.attributes.unwrap_or_default();
                Ok(Some(Version(required_number(&attributes, attr::VERSION)?)))
            }
            Conditional::Failed(_) => Ok(None),
        }
    }

    /// Creates `key` at version 1 if it is absent or expired. `None` if it
    /// did; otherwise the live entry that prevented it, read atomically with
    /// the check (`ReturnValuesOnConditionCheckFailure`, no second read).
    async fn create(&self, key: &Key, value: &Bytes, now: u64, deadline: Deadline) -> Result<Option<StoredEntry>> {
        let request = self
            .writes()
            .put_item()
            .table_name(self.table())
            .set_item(Some(entry_item(key, value, Version::FIRST.0, deadline)))
            .condition_expression(expr::ABSENT)
            .set_expression_attribute_names(Some(attribute_names(&[expr::ABSENT])))
            .set_expression_attribute_values(Some(values([(":now", number(now))])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match conditional(self.context("put"), request.send().await)? {
            Conditional::Applied(_) => Ok(None),
            Conditional::Failed(item) => match StoredEntry::live_from(item.as_ref(), now)? {
                Some(current) => Ok(Some(current)),
                // DynamoDB judged it live at `now` but sent no item back:
                // not something it does; treat it as a protocol error.
                None => {
                    Err(StateError::failed(BACKEND, format!("a failed create of {key} returned no live item"), true))
                }
            },
        }
    }

    async fn put_if_absent(&self, key: &Key, value: &Bytes, ttl: Option<Ttl>) -> Result<PutOutcome> {
        let now = now_ms();
        let deadline = deadline(now, ttl);
        Ok(match self.create(key, value, now, deadline).await? {
            None => PutOutcome::Written(Version::FIRST),
            Some(current) => PutOutcome::Rejected(Some(current.into_entry(now))),
        })
    }

    async fn put_if_version(
        &self,
        key: &Key,
        value: &Bytes,
        expected: Version,
        ttl: Option<Ttl>,
    ) -> Result<PutOutcome> {
        let now = now_ms();
        let deadline = deadline(now, ttl);
        let Some(next) = expected.0.checked_add(1) else {
            // No write can follow version u64::MAX: answer from one read.
            return match self.read_item(key, now).await? {
                Some(current) if current.version == expected => {
                    Err(StateError::Overflow { key: key.to_string(), delta: 1 })
                }
                current => Ok(PutOutcome::Rejected(current.map(|c| c.into_entry(now)))),
            };
        };
        let request = self
            .writes()
            .put_item()
            .table_name(self.table())
            .set_item(Some(entry_item(key, value, next, deadline)))
            .condition_expression(expr::LIVE_AT_VERSION)
            .set_expression_attribute_names(Some(attribute_names(&[expr::LIVE_AT_VERSION])))
            .set_expression_attribute_values(Some(values([(":expected", number(expected.0)), (":now", number(now))])))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        Ok(match conditional(self.context("put"), request.send().await)? {
            Conditional::Applied(_) => PutOutcome::Written(Version(next)),
            // Absent or expired: `Rejected(None)`; live at another version:
            // that entry.
            Conditional::Failed(item) => {
                PutOutcome::Rejected(StoredEntry::live_from(item.as_ref(), now)?.map(|c| c.into_entry(now)))
            }
        })
    }

    /// One strongly consistent read of the live entry at `key`.
    async fn read_item(&self, key: &Key, now: u64) -> Result<Option<StoredEntry>> {
        let output = self
            .reads()
            .get_item()
            .table_name(self.table())
            .set_key(Some(key_of(key.space(), key.id())))
            // Eventually consistent reads could miss an acknowledged write.
            .consistent_read(true)
            .projection_expression(ENTRY_PROJECTION)
            .set_expression_attribute_names(Some(attribute_names(&[ENTRY_PROJECTION])))
            .send()
            .await
            .map_err(|e| self.context("get").map(e))?;
        match output.item {
            Some(item) => Ok(Some(StoredEntry::from_item(&item)?).filter(|e| e.is_live(now))),
            None => Ok(None),
        }
    }

    /// `increment`: one `UpdateItem` adds to a live counter or creates a
    /// missing one; only an expired item needs the second branch, a
    /// create conditioned on [`expr::ABSENT`].
    async fn add_to(&self, key: &Key, delta: i64, ttl: Option<Ttl>) -> Result<Counter> {
        // The i64 bounds shifted by the delta: `n + delta` stays in i64
        // exactly when `n` is in [low, high]. Neither subtraction can wrap.
        let (low, high) = if delta >= 0 { (i64::MIN, i64::MAX - delta) } else { (i64::MIN - delta, i64::MAX) };
        for _ in 0..MAX_BRANCH_SWITCHES {
            let now = now_ms();
            let deadline = deadline(now, ttl);
            let request = self
                .writes()
                .update_item()
                .table_name(self.table())
                .set_key(Some(key_of(key.space(), key.id())))
                .update_expression(expr::INCREMENT)
                .condition_expression(expr::INCREMENT_CONDITION)
                .set_expression_attribute_names(Some(attribute_names(&[expr::INCREMENT, expr::INCREMENT_CONDITION])))
                .set_expression_attribute_values(Some(values([
                    (":zero", number(0)),
                    (":delta", number(delta)),
                    (":one", number(1)),
                    (":exp", number(deadline.exp_ms)),
                    (":ttl", number(deadline.reap_at_seconds)),
                    (":now", number(now)),
                    (":low", number(low)),
                    (":high", number(high)),
                ])))
                .return_values(ReturnValue::UpdatedNew)
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
            let item = match conditional(self.context("increment"), request.send().await)? {
                Conditional::Applied(output) => {
                    let attributes = output.attributes.unwrap_or_default();
                    let version = required_number(&attributes, attr::VERSION).map(Version)?;
                    let counter = match attributes.get(attr::COUNTER) {
                        Some(AttributeValue::N(n)) => n.parse::<i64>().ok(),
                        _ => None,
                    };
                    return counter.map(|value| Counter { value, version }).ok_or_else(|| {
                        StateError::unexpected_reply(BACKEND, "increment", format!("no counter for {key}"))
                    });
                }
                Conditional::Failed(item) => item,
            };
            // The returned item says why the condition failed.
            match StoredEntry::live_from(item.as_ref(), now)? {
                None => {
                    let created = Bytes::from(state_api::counter::format(delta));
                    if self.create(key, &created, now, deadline).await?.is_none() {
                        return Ok(Counter { value: delta, version: Version::FIRST });
                    }
                }
                Some(StoredEntry { value: StoredValue::Bytes(_), .. }) => {
                    return Err(StateError::TypeMismatch { key: key.to_string() });
                }
                Some(StoredEntry { value: StoredValue::Counter(n), .. }) if n.checked_add(delta).is_none() => {
                    return Err(StateError::Overflow { key: key.to_string(), delta });
                }
                // A live counter in range: it was changed between the check
                // and our reading of the answer; try again.
                Some(_) => {}
            }
        }
        Err(Self::contention("increment", key))
    }

    async fn remove_item(&self, key: &Key, condition: DeleteCondition) -> Result<bool> {
        let now = now_ms();
        let (condition, values) = match condition {
            DeleteCondition::Always => (expr::LIVE, values([(":now", number(now))])),
            DeleteCondition::IfVersion(expected) => {
                (expr::LIVE_AT_VERSION, values([(":expected", number(expected.0)), (":now", number(now))]))
            }
        };
        // An expired item fails the condition and stays for the TTL reaper:
        // it is already absent, and the answer must be `false`.
        let request = self
            .writes()
            .delete_item()
            .table_name(self.table())
            .set_key(Some(key_of(key.space(), key.id())))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(attribute_names(&[condition])))
            .set_expression_attribute_values(Some(values));
        Ok(matches!(conditional(self.context("delete"), request.send().await)?, Conditional::Applied(_)))
    }

    async fn list_page(&self, request: ScanRequest<'_>) -> Result<Listing> {
        let ScanRequest { space, prefix, after, limit } = request;
        // The cursor is the last id a page covered.
        let start = after.map(|id| key_of(space, id));
        let now = now_ms();
        let mut values = values([(":space", string(space)), (":now", number(now))]);
        let key_condition = if prefix.is_empty() {
            expr::SCAN_SPACE
        } else {
            values.insert(":prefix".to_owned(), string(prefix));
            expr::SCAN_PREFIX
        };
        // One item more than the page: if it comes back, there is a next
        // page and its cursor is the page's last id; otherwise the page
        // ends the scan unless DynamoDB stopped early (1 MB) and says so.
        let evaluate = i32::try_from(limit + 1).unwrap_or(i32::MAX);
        let output = self
            .reads()
            .query()
            .table_name(self.table())
            .key_condition_expression(key_condition)
            // Expired items are filtered on the server; `Limit` counts them
            // before the filter, so a page may be short, even empty, with a
            // next cursor — which the contract allows.
            .filter_expression(expr::LIVE)
            .projection_expression(ENTRY_PROJECTION)
            .set_expression_attribute_names(Some(attribute_names(&[key_condition, expr::LIVE, ENTRY_PROJECTION])))
            .set_expression_attribute_values(Some(values))
            .consistent_read(true)
            .limit(evaluate)
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| self.context("scan").map(e))?;
        let mut items = Vec::with_capacity(limit.min(output.items().len()));
        for item in output.items() {
            let id = optional_string(item, attr::ID).unwrap_or_default().to_owned();
            let entry = StoredEntry::from_item(item)?;
            if entry.is_live(now) {
                items.push(ScanItem { id, entry: entry.into_entry(now) });
            }
        }
        let resume_after = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|last| last.id.clone())
        } else {
            output.last_evaluated_key().and_then(|key| optional_string(key, attr::ID)).map(str::to_owned)
        };
        Ok(Listing { items, resume_after })
    }
}

#[async_trait]
impl StoreDriver for DynamoStore {
    fn declare(&self) -> Capabilities {
        self.capabilities_value()
    }

    fn contention(&self) -> Option<&state_api::driver::Contention> {
        Some(&self.inner.contention)
    }

    async fn read(&self, key: &Key) -> Result<Option<Entry>> {
        let now = now_ms();
        Ok(self.read_item(key, now).await?.map(|entry| entry.into_entry(now)))
    }

    async fn write(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        if let Some(fence) = fence {
            return self.put_fenced(key, &value, condition, ttl, fence).await;
        }
        match condition {
            Condition::Always => self.put_always(key, &value, ttl).await,
            Condition::IfAbsent => self.put_if_absent(key, &value, ttl).await,
            Condition::IfVersion(expected) => self.put_if_version(key, &value, expected, ttl).await,
        }
    }

    async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        match fence {
            Some(fence) => self.delete_fenced(key, condition, fence).await,
            None => self.remove_item(key, condition).await,
        }
    }

    async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        match fence {
            Some(fence) => self.increment_fenced(key, delta, ttl, fence).await,
            None => self.add_to(key, delta, ttl).await,
        }
    }

    async fn list(&self, request: ScanRequest<'_>) -> Result<Listing> {
        self.list_page(request).await
    }
}
