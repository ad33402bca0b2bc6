//! Background passes over a store: a backend's reaper or sweeper.

use std::future::Future;
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::StateError;

/// A task that runs a pass over a store every interval; stopped when
/// dropped. It holds only a weak reference, so it never keeps a dropped
/// store (and its connections) alive: it ends at the next tick after the
/// store is gone.
#[derive(Debug)]
pub struct Periodic {
    task: JoinHandle<()>,
}

impl Periodic {
    /// Starts running `pass` on the store behind `store` every `interval`,
    /// the first one an interval from now; a pass that overruns delays the
    /// next tick rather than skipping it. A failed pass is logged as a
    /// warning naming `backend` and `what` it does, and the next one
    /// retries. Must be called inside a tokio runtime.
    pub fn spawn<T, F, R>(
        store: Weak<T>,
        interval: Duration,
        backend: &'static str,
        what: &'static str,
        pass: F,
    ) -> Periodic
    where
        T: Send + Sync + 'static,
        F: Fn(Arc<T>) -> R + Send + 'static,
        R: Future<Output = Result<u64, StateError>> + Send,
    {
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
            // The first tick completes at once; the first pass waits an interval.
            ticker.tick().await;
            loop {
                ticker.tick().await;
                let Some(store) = store.upgrade() else { return };
                if let Err(error) = pass(store).await {
                    // Not fatal: expired data is invisible, and the next pass retries.
                    tracing::warn!(backend, %error, "{what} failed");
                }
            }
        });
        Periodic { task }
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        self.task.abort();
    }
}
