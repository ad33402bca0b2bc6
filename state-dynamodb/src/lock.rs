//! [`LockDriver`] for [`DynamoStore`]: one item per lock name, changed
//! only by conditional writes. DynamoDB cannot notify waiters of a
//! release, so the wait loop ([`state_api::driver::wait`]) polls with
//! backoff, never sleeping past the holder's deadline.
//!
//! A lock item lives in the entries' table under a partition key no entry
//! can have: `"\0lock\0" + name`. The contract forbids NUL in spaces, so no
//! space equals it (the same argument that makes `Key::joined` injective),
//! and each lock gets its own partition, so busy locks do not share
//! DynamoDB's per-partition throughput. The item holds:
//!
//! | attribute | meaning |
//! |---|---|
//! | `owner` | the holder's random owner id; absent when released |
//! | `exp` | the lease deadline, epoch milliseconds on the client's clock |
//! | `fence` | the last fencing token issued |
//!
//! The item has no `ttl` attribute, so DynamoDB's reaper never deletes it:
//! the fencing counter survives expiry and release, and tokens strictly
//! increase for as long as the table exists.

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use state_api::driver::{Attempt, LockDriver, Ttl};
use state_api::{FencingToken, Lease, Result};

use crate::DynamoStore;
use crate::clock::now_ms;
use crate::error::{Conditional, conditional};
use crate::item::{attr, key_of, number, optional_string, required_number, string};
use crate::statements::{self as expr, attribute_names, values};

/// The sort key of every lock item (the partition key names the lock).
const LEASE_ID: &str = "lease";

/// The primary key of the lock `name`.
pub(crate) fn lock_key(name: &str) -> HashMap<String, AttributeValue> {
    key_of(&format!("\0lock\0{name}"), LEASE_ID)
}

impl DynamoStore {
    /// Runs a conditional update on a lease that must still be held;
    /// `false` if it is not.
    async fn change_held(
        &self,
        operation: &'static str,
        lease: &Lease,
        update: &'static str,
        exp: Option<u64>,
    ) -> Result<bool> {
        let now = now_ms();
        let mut values = values([(":owner", string(lease.owner())), (":now", number(now))]);
        if let Some(exp) = exp {
            values.insert(":exp".to_owned(), number(exp));
        }
        // Extending to a fixed deadline is idempotent, so it may use the
        // retrying client; releasing twice would misreport, so it may not.
        let client = if exp.is_some() { self.reads() } else { self.writes() };
        let request = client
            .update_item()
            .table_name(self.table())
            .set_key(Some(lock_key(lease.name())))
            .update_expression(update)
            .condition_expression(expr::LOCK_HELD_BY)
            .set_expression_attribute_names(Some(attribute_names(&[update, expr::LOCK_HELD_BY])))
            .set_expression_attribute_values(Some(values));
        Ok(matches!(conditional(self.context(operation), request.send().await)?, Conditional::Applied(_)))
    }
}

#[async_trait]
impl LockDriver for DynamoStore {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        let now = now_ms();
        let request = self
            .writes()
            .update_item()
            .table_name(self.table())
            .set_key(Some(lock_key(name)))
            .update_expression(expr::LOCK_ACQUIRE)
            .condition_expression(expr::LOCK_FREE)
            .set_expression_attribute_names(Some(attribute_names(&[expr::LOCK_ACQUIRE, expr::LOCK_FREE])))
            .set_expression_attribute_values(Some(values([
                (":owner", string(owner)),
                (":exp", number(now.saturating_add(ttl.millis()))),
                (":zero", number(0)),
                (":one", number(1)),
                (":now", number(now)),
            ])))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        match conditional(self.context("try_acquire"), request.send().await)? {
            Conditional::Applied(output) => {
                let granted = output.attributes.unwrap_or_default();
                Ok(Attempt::Acquired(FencingToken(required_number(&granted, attr::FENCE)?)))
            }
            Conditional::Failed(item) => {
                let holder_exp = item.as_ref().and_then(|i| required_number(i, attr::EXPIRES).ok()).unwrap_or(now);
                Ok(Attempt::Held(Some(Duration::from_millis(holder_exp.saturating_sub(now)))))
            }
        }
    }

    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        let exp = now_ms().saturating_add(ttl.millis());
        self.change_held("extend", lease, expr::LOCK_EXTEND, Some(exp)).await
    }

    async fn free(&self, lease: &Lease) -> Result<bool> {
        self.change_held("release", lease, expr::LOCK_RELEASE, None).await
    }

    async fn holds(&self, lease: &Lease) -> Result<bool> {
        let now = now_ms();
        let output = self
            .reads()
            .get_item()
            .table_name(self.table())
            .set_key(Some(lock_key(lease.name())))
            .consistent_read(true)
            .projection_expression(expr::LOCK_PROJECTION)
            .set_expression_attribute_names(Some(attribute_names(&[expr::LOCK_PROJECTION])))
            .send()
            .await
            .map_err(|e| self.context("is_held").map(e))?;
        Ok(output.item.is_some_and(|item| {
            optional_string(&item, attr::OWNER) == Some(lease.owner())
                && required_number(&item, attr::EXPIRES).is_ok_and(|exp| exp > now)
        }))
    }
}
