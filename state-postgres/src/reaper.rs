//! The background reaper: deletes expired rows in bounded batches so the
//! entries table does not grow without bound.
//!
//! Expired rows are already invisible (every statement treats them as
//! absent), so the reaper only frees space and can run at any moment; its
//! statement (`queries/reap.sql`) skips rows writers hold and re-checks the
//! deadline on the row it deletes, so it never removes an entry rewritten
//! after it expired.

use std::sync::Weak;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::store::Inner;

/// The running reaper task; stopped when the store is dropped.
pub(crate) struct Reaper {
    task: JoinHandle<()>,
}

impl Reaper {
    pub(crate) fn stop(&self) {
        self.task.abort();
    }
}

/// Starts reaping every `interval`. The task holds only a weak reference,
/// so it never keeps a dropped store (and its pool) alive.
pub(crate) fn spawn(store: Weak<Inner>, interval: Duration) -> Reaper {
    let task = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        // The first tick completes at once; the first pass waits an interval.
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(store) = store.upgrade() else { return };
            if let Err(error) = store.reap_expired().await {
                // Not fatal: the rows stay invisible and the next pass retries.
                tracing::warn!(backend = crate::BACKEND, %error, "reaping expired entries failed");
            }
        }
    });
    Reaper { task }
}
