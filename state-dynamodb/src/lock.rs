//! [`LockService`] for [`DynamoStore`]: one item per lock name, changed
//! only by conditional writes.
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
use state_api::key::validate_lock_name;
use state_api::lock::{Backoff, deadline_after, validate_lease_ttl};
use state_api::trace::operation_span;
use state_api::{FencingToken, Lease, LockService, Result, StateError};
use tokio::time::{Instant, sleep};
use tracing::Instrument;

use crate::clock::now_ms;
use crate::error::{Conditional, conditional};
use crate::expressions::{self as expr, attribute_names, values};
use crate::item::{attr, key_of, number, optional_string, required_number, string};
use crate::{BACKEND, DynamoStore};

/// The sort key of every lock item (the partition key names the lock).
const LEASE_ID: &str = "lease";

/// The primary key of the lock `name`.
fn lock_key(name: &str) -> HashMap<String, AttributeValue> {
    key_of(&format!("\0lock\0{name}"), LEASE_ID)
}

/// The result of one acquisition attempt.
enum Attempt {
    Acquired(Lease),
    /// Someone holds the lock for about this long (unless they release).
    HeldFor(Duration),
}

impl DynamoStore {
    /// The local validity of a lease of `ttl`: shortened by the declared
    /// clock skew and the 1 ms truncation of deadlines, because another
    /// client whose clock runs ahead sees the lease expire that much
    /// sooner. `Lease::valid_until` must never overstate the lease.
    fn local_validity(&self, ttl: Duration) -> Duration {
        ttl.saturating_sub(self.max_clock_skew() + Duration::from_millis(1))
    }

    async fn attempt(&self, name: &str, ttl: Duration) -> Result<Attempt> {
        validate_lock_name(name)?;
        let ttl_ms = validate_lease_ttl(ttl)?;
        let owner = Lease::new_owner_id();
        // Taken before the request, so the local deadline is conservative.
        let requested_at = Instant::now();
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
                (":owner", string(owner.as_str())),
                (":exp", number(now.saturating_add(ttl_ms))),
                (":zero", number(0)),
                (":one", number(1)),
                (":now", number(now)),
            ])))
            .return_values(ReturnValue::UpdatedNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let granted = match conditional(self.context("try_acquire"), request.send().await)? {
            Conditional::Applied(output) => output.attributes.unwrap_or_default(),
            Conditional::Failed(item) => {
                let holder_exp = item.as_ref().and_then(|i| required_number(i, attr::EXPIRES).ok()).unwrap_or(now);
                return Ok(Attempt::HeldFor(Duration::from_millis(holder_exp.saturating_sub(now))));
            }
        };
        let token = FencingToken(required_number(&granted, attr::FENCE)?);
        let validity = self.local_validity(Duration::from_millis(ttl_ms));
        Ok(Attempt::Acquired(Lease::new(name, owner, token, requested_at, validity)))
    }

    /// Runs a conditional update on a lease that must still be held;
    /// `LockLost` if it is not.
    async fn change_held(
        &self,
        operation: &'static str,
        lease: &Lease,
        update: &'static str,
        exp: Option<u64>,
    ) -> Result<()> {
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
        match conditional(self.context(operation), request.send().await)? {
            Conditional::Applied(_) => Ok(()),
            Conditional::Failed(_) => Err(StateError::LockLost { name: lease.name().to_owned() }),
        }
    }
}

#[async_trait]
impl LockService for DynamoStore {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        async {
            match self.attempt(name, ttl).await? {
                Attempt::Acquired(lease) => Ok(Some(lease)),
                Attempt::HeldFor(_) => Ok(None),
            }
        }
        .instrument(operation_span(BACKEND, "try_acquire", ""))
        .await
    }

    /// DynamoDB cannot notify waiters of a release, so this polls with
    /// exponential backoff and full jitter — but never sleeps past the
    /// holder's deadline, so an abandoned lease is taken over as soon as it
    /// expires.
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        async {
            // Saturating: `Duration::MAX` means "wait forever", not a panic.
            let deadline = deadline_after(timeout);
            let mut backoff = Backoff::new();
            loop {
                let held_for = match self.attempt(name, ttl).await? {
                    Attempt::Acquired(lease) => return Ok(lease),
                    Attempt::HeldFor(left) => left,
                };
                let now = Instant::now();
                if now >= deadline {
                    return Err(StateError::Timeout { operation: "acquire", after: timeout });
                }
                let until_expiry = held_for + Duration::from_millis(1);
                sleep(backoff.next_delay().min(until_expiry).min(deadline - now)).await;
            }
        }
        .instrument(operation_span(BACKEND, "acquire", ""))
        .await
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        async {
            let ttl_ms = validate_lease_ttl(ttl)?;
            let requested_at = Instant::now();
            let exp = now_ms().saturating_add(ttl_ms);
            self.change_held("extend", lease, expr::LOCK_EXTEND, Some(exp)).await?;
            lease.renewed(requested_at, self.local_validity(Duration::from_millis(ttl_ms)));
            Ok(())
        }
        .instrument(operation_span(BACKEND, "extend", ""))
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        self.change_held("release", lease, expr::LOCK_RELEASE, None)
            .instrument(operation_span(BACKEND, "release", ""))
            .await
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        async {
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
        .instrument(operation_span(BACKEND, "is_held", ""))
        .await
    }
}
