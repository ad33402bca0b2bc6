//! The schedule side of a backend, as a translation ([`ScheduleDriver`]),
//! and the one implementation of [`ScheduleService`] over it: argument
//! checks, the capability check, owner ids and local deadlines of claims,
//! `ClaimLost`, and spans.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::Instrument;

use super::{StoreDriver, Ttl, local_validity, unsupported};
use crate::capabilities::Capabilities;
use crate::error::{Result, StateError};
use crate::key::{Key, validate_space};
use crate::lock::Lease;
use crate::schedule::{Claim, EpochMillis, MAX_DUE_AT, MAX_SCHEDULE_LIMIT, ScheduleService, ScheduledItem};
use crate::trace::operation_span;

/// A backend's schedules, as a translation: every argument has been
/// checked and the span is open. Implementing it implements
/// [`ScheduleService`]. Every method has a default that answers
/// [`StateError::Unsupported`], so a backend without schedules writes an
/// empty `impl` (and does not declare the feature: the layer then never
/// calls it).
#[async_trait]
pub trait ScheduleDriver: StoreDriver {
    /// [`ScheduleService::schedule`]: puts or replaces the item, ending any
    /// claim of it, atomically.
    async fn enqueue(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()> {
        let _ = (key, due_at, payload);
        Err(unsupported(self.declare().backend, "schedules"))
    }

    /// [`ScheduleService::cancel`].
    async fn dequeue(&self, key: &Key) -> Result<bool> {
        let _ = key;
        Err(unsupported(self.declare().backend, "schedules"))
    }

    /// [`ScheduleService::due`]: the unclaimed items due at `now`, in
    /// `(due_at, id)` order, at most `limit`.
    async fn peek(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>> {
        let _ = (space, now, limit);
        Err(unsupported(self.declare().backend, "schedules"))
    }

    /// [`ScheduleService::claim`]: atomically marks up to `limit` of the
    /// items `peek` would return as claimed by `owner` until `lease` passes
    /// on the expiry clock, and returns them. An item whose claim's lease
    /// has passed counts as unclaimed.
    async fn take(
        &self,
        space: &str,
        now: EpochMillis,
        limit: usize,
        owner: &str,
        lease: Ttl,
    ) -> Result<Vec<ScheduledItem>> {
        let _ = (space, now, limit, owner, lease);
        Err(unsupported(self.declare().backend, "schedules"))
    }

    /// [`ScheduleService::complete`]: removes the item if `owner`'s claim
    /// of it still holds (lease not passed); `false` if not (nothing
    /// changed).
    async fn finish(&self, key: &Key, owner: &str) -> Result<bool> {
        let _ = (key, owner);
        Err(unsupported(self.declare().backend, "schedules"))
    }

    /// [`ScheduleService::release_claim`]: ends `owner`'s claim of the item
    /// if it still holds, leaving the item waiting; `false` if not.
    async fn unclaim(&self, key: &Key, owner: &str) -> Result<bool> {
        let _ = (key, owner);
        Err(unsupported(self.declare().backend, "schedules"))
    }
}

/// Checks that the schedules feature is declared.
fn schedules_declared(declared: &Capabilities) -> Result<()> {
    if declared.features.schedules { Ok(()) } else { Err(unsupported(declared.backend, "schedules")) }
}

/// Checks a `due`/`claim` space and limit.
fn listing_arguments(space: &str, limit: usize) -> Result<()> {
    validate_space(space)?;
    if limit == 0 || limit > MAX_SCHEDULE_LIMIT {
        return Err(StateError::invalid_argument(
            "limit",
            format!("must be between 1 and {MAX_SCHEDULE_LIMIT}, got {limit}"),
        ));
    }
    Ok(())
}

fn claim_lost(claim: &Claim) -> StateError {
    StateError::ClaimLost { space: claim.key().space().to_owned(), id: claim.key().id().to_owned() }
}

#[async_trait]
impl<D: ScheduleDriver> ScheduleService for D {
    async fn schedule(&self, key: &Key, due_at: EpochMillis, payload: Bytes) -> Result<()> {
        let declared = self.declare();
        async {
            schedules_declared(&declared)?;
            super::put_arguments(&declared, &payload, None)?;
            if due_at > MAX_DUE_AT {
                return Err(StateError::invalid_argument(
                    "due_at",
                    format!("must be at most {MAX_DUE_AT} ms since the epoch, got {due_at}"),
                ));
            }
            self.enqueue(key, due_at, payload).await
        }
        .instrument(operation_span(declared.backend, "schedule", key.space()))
        .await
    }

    async fn cancel(&self, key: &Key) -> Result<bool> {
        let declared = self.declare();
        async {
            schedules_declared(&declared)?;
            self.dequeue(key).await
        }
        .instrument(operation_span(declared.backend, "cancel", key.space()))
        .await
    }

    async fn due(&self, space: &str, now: EpochMillis, limit: usize) -> Result<Vec<ScheduledItem>> {
        let declared = self.declare();
        async {
            schedules_declared(&declared)?;
            listing_arguments(space, limit)?;
            self.peek(space, now, limit).await
        }
        .instrument(operation_span(declared.backend, "due", space))
        .await
    }

    async fn claim(&self, space: &str, now: EpochMillis, limit: usize, lease: Duration) -> Result<Vec<Claim>> {
        let declared = self.declare();
        async {
            schedules_declared(&declared)?;
            listing_arguments(space, limit)?;
            let lease = Ttl::new(lease)?;
            let owner = Lease::new_owner_id();
            // Taken before the request, so a claim's local deadline never
            // overstates the store's.
            let requested_at = Instant::now();
            let items = self.take(space, now, limit, &owner, lease).await?;
            let validity = local_validity(&declared, lease);
            Ok(items.into_iter().map(|item| Claim::new(item, owner.clone(), requested_at, validity)).collect())
        }
        .instrument(operation_span(declared.backend, "claim", space))
        .await
    }

    async fn complete(&self, claim: &Claim) -> Result<()> {
        let declared = self.declare();
        async {
            schedules_declared(&declared)?;
            if self.finish(claim.key(), claim.owner()).await? { Ok(()) } else { Err(claim_lost(claim)) }
        }
        .instrument(operation_span(declared.backend, "complete", claim.key().space()))
        .await
    }

    async fn release_claim(&self, claim: &Claim) -> Result<()> {
        let declared = self.declare();
        async {
            schedules_declared(&declared)?;
            if self.unclaim(claim.key(), claim.owner()).await? { Ok(()) } else { Err(claim_lost(claim)) }
        }
        .instrument(operation_span(declared.backend, "release_claim", claim.key().space()))
        .await
    }
}
