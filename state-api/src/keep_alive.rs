//! Keeping a lease alive in the background, with a signal when it is lost.
//!
//! A [`KeepAlive`] extends its lease every third of the TTL (sooner when
//! the lease's local validity is shorter than its TTL) and publishes
//! the lease's latest local deadline. It signals loss ([`KeepAlive::lost`])
//! as soon as the store says the lease is gone (`LockLost`), and otherwise
//! no later than the lease's local deadline
//! ([`Lease::valid_until`](crate::Lease::valid_until)) when no extension got
//! through in time (the store unreachable, slow or refusing): a holder that
//! stops working when the signal fires never works past its lease.
//! Stopping it or dropping it releases the lease.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

use crate::error::{Result, StateError};
use crate::lock::{Lease, LockService};

/// Why a kept-alive lease is no longer held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseLost {
    /// The store answered [`StateError::LockLost`]: the lease expired, was
    /// released or was taken over.
    Taken,
    /// No extension got through before the lease's local deadline: the
    /// store did not answer in time, or answered only with retryable
    /// errors (the last one is kept).
    Expired {
        /// The last error an extension met, if any.
        last_error: Option<String>,
    },
    /// An extension failed with an error that retrying cannot fix.
    Failed {
        /// That error.
        error: String,
    },
    /// The keep-alive was stopped (or dropped), and released the lease.
    Stopped,
}

impl fmt::Display for LeaseLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LeaseLost::Taken => f.write_str("the store says the lease is no longer held"),
            LeaseLost::Expired { last_error: Some(error) } => {
                write!(f, "no extension got through before the lease's deadline (last error: {error})")
            }
            LeaseLost::Expired { last_error: None } => {
                f.write_str("no extension got through before the lease's deadline")
            }
            LeaseLost::Failed { error } => write!(f, "an extension failed: {error}"),
            LeaseLost::Stopped => f.write_str("the keep-alive was stopped"),
        }
    }
}

/// The state a keep-alive publishes.
#[derive(Debug, Clone)]
enum Status {
    Held(Lease),
    Lost(LeaseLost),
}

/// A lease extended in the background until it is lost or stopped. Made by
/// [`KeepAlive::start`]; see the [module docs](self).
pub struct KeepAlive {
    status: watch::Receiver<Status>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<()>>>,
}

impl KeepAlive {
    /// How long before the lease's local deadline the loss is signalled
    /// when no extension got through: a tenth of the TTL, at most 100 ms,
    /// so that timer lateness cannot carry the signal past the deadline.
    pub fn margin(ttl: Duration) -> Duration {
        (ttl / 10).min(Duration::from_millis(100))
    }

    /// Starts keeping `lease` (which `service` granted) alive: every third
    /// of `ttl` it is extended to `ttl` from then.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] when `ttl` is under 3 ms (too short
    /// to extend in time) or when called outside a tokio runtime.
    pub fn start<S: LockService + ?Sized>(service: Arc<S>, lease: Lease, ttl: Duration) -> Result<KeepAlive> {
        if ttl < Duration::from_millis(3) {
            return Err(StateError::invalid_argument("ttl", "a kept-alive lease needs a TTL of at least 3 ms"));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StateError::invalid_argument("keep_alive", "must be started inside a tokio runtime"))?;
        let (publish, status) = watch::channel(Status::Held(lease.clone()));
        let (stop, stopped) = oneshot::channel();
        let task = runtime.spawn(keep_extending(service, lease, ttl, publish, stopped));
        Ok(KeepAlive { status, stop: Some(stop), task: Some(task) })
    }

    /// The lease as last extended (its latest local deadline), while held.
    pub fn lease(&self) -> Option<Lease> {
        match &*self.status.borrow() {
            Status::Held(lease) => Some(lease.clone()),
            Status::Lost(_) => None,
        }
    }

    /// Why the lease was lost, once it was.
    pub fn lost_reason(&self) -> Option<LeaseLost> {
        match &*self.status.borrow() {
            Status::Held(_) => None,
            Status::Lost(reason) => Some(reason.clone()),
        }
    }

    /// Completes when the lease is lost (at once if it already was): stop
    /// the protected work then.
    pub async fn lost(&self) -> LeaseLost {
        let mut status = self.status.clone();
        let lost = status.wait_for(|s| matches!(s, Status::Lost(_))).await;
        match lost.as_deref() {
            Ok(Status::Lost(reason)) => reason.clone(),
            // The task ended without saying why: it can only have been
            // stopped.
            Ok(Status::Held(_)) | Err(_) => LeaseLost::Stopped,
        }
    }

    /// Stops extending and releases the lease if it is still held.
    ///
    /// # Errors
    /// As [`LockService::release`]. When the lease was already lost there
    /// is nothing to release, and the answer is `Ok`.
    pub async fn stop(mut self) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or_else(|e| Err(StateError::failed("keep_alive", e.to_string(), false))),
            None => Ok(()),
        }
    }
}

impl Drop for KeepAlive {
    fn drop(&mut self) {
        // The task sees the stop (or the dropped sender) and releases.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl fmt::Debug for KeepAlive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeepAlive").field("status", &*self.status.borrow()).finish_non_exhaustive()
    }
}

/// The keep-alive's task: extend, publish, and stop at the first loss.
async fn keep_extending<S: LockService + ?Sized>(
    service: Arc<S>,
    mut lease: Lease,
    ttl: Duration,
    publish: watch::Sender<Status>,
    mut stopped: oneshot::Receiver<()>,
) -> Result<()> {
    let period = ttl / 3;
    let retry = period.min(Duration::from_millis(50));
    let margin = KeepAlive::margin(ttl);
    // The next attempt: after `wait`, but always with two thirds of the
    // time left before the deadline still ahead (a lease that arrives with
    // little of its local validity left, after a slow acquire, or whose
    // validity the declared clock skew shortens, is extended early).
    let schedule = |lease: &Lease, wait: Duration| {
        let now = Instant::now();
        let deadline = lease.valid_until().checked_sub(margin).unwrap_or(now);
        now + wait.min(deadline.saturating_duration_since(now) / 3)
    };
    let mut next = schedule(&lease, period);
    let mut last_error: Option<StateError> = None;
    let lose = |reason: LeaseLost| {
        publish.send_replace(Status::Lost(reason));
    };
    loop {
        let deadline = lease.valid_until().checked_sub(margin).unwrap_or_else(Instant::now);
        tokio::select! {
            _ = &mut stopped => {
                lose(LeaseLost::Stopped);
                return service.release(&lease).await;
            }
            () = tokio::time::sleep_until(next.min(deadline)) => {}
        }
        if Instant::now() >= deadline {
            lose(LeaseLost::Expired { last_error: last_error.map(|e| e.to_string()) });
            release_quietly(service, lease);
            return Ok(());
        }
        let mut extended = lease.clone();
        let attempt = tokio::time::timeout_at(deadline, service.extend(&mut extended, ttl));
        tokio::select! {
            _ = &mut stopped => {
                lose(LeaseLost::Stopped);
                return service.release(&lease).await;
            }
            answer = attempt => match answer {
                Ok(Ok(())) => {
                    lease = extended;
                    last_error = None;
                    next = schedule(&lease, period);
                    publish.send_replace(Status::Held(lease.clone()));
                }
                Ok(Err(StateError::LockLost { .. })) => {
                    lose(LeaseLost::Taken);
                    return Ok(());
                }
                Ok(Err(error)) if error.is_retryable() => {
                    last_error = Some(error);
                    next = schedule(&lease, retry);
                }
                Ok(Err(error)) => {
                    lose(LeaseLost::Failed { error: error.to_string() });
                    release_quietly(service, lease);
                    return Ok(());
                }
                // The deadline came first; the loop reports it.
                Err(_) => {
                    last_error = Some(StateError::timed_out("extend", ttl));
                    next = deadline;
                }
            }
        }
    }
}

/// Releases in the background, ignoring the outcome: after a loss the
/// lease may or may not still be held, and if it is this frees it before
/// its TTL.
fn release_quietly<S: LockService + ?Sized>(service: Arc<S>, lease: Lease) {
    tokio::spawn(async move {
        let _ = service.release(&lease).await;
    });
}
