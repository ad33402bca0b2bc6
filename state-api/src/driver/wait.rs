//! The one `acquire` wait loop, shared by every backend.
//!
//! It owns the deadline arithmetic (saturating: `Duration::MAX` means "as
//! long as representable", never a panic), the order of subscribing and
//! attempting, and the choice between sleeping until a release is heard
//! and polling with jittered backoff.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::contention::{Line, Place};
use super::hub::Watch;
use crate::error::{Result, StateError};
use crate::lock::{Backoff, Lease, deadline_after};

/// While release notifications are live, a waiter still looks again this
/// often, as insurance against a notification lost on the way.
pub const LIVE_RECHECK: Duration = Duration::from_secs(5);

/// How long a waiter in a lock's line on the server stays live after its
/// last attempt (see
/// [`fair_across_clients`](crate::Features::fair_across_clients)): a waiter
/// that died, or whose `acquire` was dropped, holds up the waiters behind
/// it at most this long.
pub const LINE_WINDOW: Duration = Duration::from_secs(1);

/// How often a waiter in a lock's line on the server asks again at the
/// least, whatever the holder's lease: well within [`LINE_WINDOW`], so a
/// live waiter is never skipped.
pub const LINE_REFRESH: Duration = Duration::from_millis(250);

/// What one acquisition attempt found.
#[derive(Debug)]
pub enum Step {
    /// The lock is ours.
    Acquired(Lease),
    /// Someone else holds it, for at most this long if known (unless they
    /// release it sooner).
    Held(Option<Duration>),
}

/// Acquires by calling `attempt` until it succeeds or `timeout` passes.
///
/// - With a [`Contention`](super::Contention) (the client's lines of waiters), the caller
///   first joins the line for the lock: a newcomer does not go ahead of
///   it.
/// - The first attempt runs alone: a free lock costs one round trip and no
///   subscription. With a line, it runs only if the caller is first in
///   line and no lease of this client holds the lock.
/// - Then `watch` is called once (with the
///   deadline, to bound its own subscribing); from there on, a release
///   notification is registered *before* every attempt, so a release right
///   after a failed attempt wakes the waiter.
/// - Only the first in line makes attempts; the others wait for their
///   turn. While a lease of this client holds the lock, the first in line
///   does not ask the server until a release is heard (the backend's
///   notification, or this client's release where the backend has no
///   notifications: [`Line::wakes`]), a wait runs out, or the lease's local
///   deadline passes.
/// - Between attempts the waiter sleeps until the earliest of: a release
///   notification, a release through this client, the holder's lease
///   running out (plus 1 ms, since servers report whole milliseconds
///   left), the deadline, and either [`LIVE_RECHECK`] (notifications live)
///   or the next backoff delay (no notifications, or not live right now);
///   and where the client's entry stands in the lock's line on the server
///   ([`Line::refresh`]), at most [`LINE_REFRESH`], even while a lease of
///   this client holds the lock, so that the entry stays live.
///
/// On success the lease is recorded in the [`Contention`](super::Contention) before the
/// waiter leaves the line, so the next in line waits for its release.
///
/// # Errors
/// [`StateError::Timeout`] when the deadline passes (the lock is then not
/// held by this caller); any error of `attempt`.
pub async fn acquire_loop<A, AF, W, WF>(
    timeout: Duration,
    line: Option<Line<'_>>,
    mut attempt: A,
    watch: W,
) -> Result<Lease>
where
    A: FnMut() -> AF,
    AF: Future<Output = Result<Step>>,
    W: FnOnce(Instant) -> WF,
    WF: Future<Output = Option<Watch>>,
{
    let deadline = deadline_after(timeout);
    let acquired = |lease: Lease| {
        if let Some(line) = line {
            line.contention.held(line.name, lease.owner(), lease.valid_until());
        }
        Ok(lease)
    };
    // Joined before anything else, so that callers arriving together are
    // served in the order they arrived, not in the order their first
    // attempts return.
    let place = line.map(|line| line.contention.join(line.name));
    if place.as_ref().is_none_or(|place| place.is_first() && place.held_locally_for().is_none()) {
        if let Step::Acquired(lease) = attempt().await? {
            return acquired(lease);
        }
        if Instant::now() >= deadline {
            return Err(timed_out(timeout));
        }
    }
    let wakes_locally = line.is_some_and(|line| line.wakes);
    let watch = watch(deadline).await;
    let mut backoff = Backoff::new();
    // Set when the feed heard a release, or a wait ran out: whatever this
    // client believes it holds (a lease may have been released through
    // another client), the next step asks the server.
    let mut heard = false;
    loop {
        if let Some(place) = &place {
            wait_to_be_first(place, deadline).await.map_err(|()| timed_out(timeout))?;
        }
        let mut released = watch.as_ref().map(|w| Box::pin(w.released()));
        if let Some(released) = released.as_mut() {
            released.as_mut().enable();
        }
        let mut turn = place.as_ref().map(|p| Box::pin(p.turn()));
        if let Some(turn) = turn.as_mut() {
            turn.as_mut().enable();
        }
        let live = watch.as_ref().is_some_and(Watch::is_live);
        let held_locally = if heard { None } else { place.as_ref().and_then(Place::held_locally_for) };
        let held_for = match held_locally {
            // Held by a lease of this client: its release wakes us.
            Some(left) => Some(left),
            None => match attempt().await? {
                Step::Acquired(lease) => return acquired(lease),
                Step::Held(held_for) => held_for,
            },
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(timed_out(timeout));
        }
        let mut wait = deadline - now;
        if let Some(held_for) = held_for {
            wait = wait.min(held_for.saturating_add(Duration::from_millis(1)));
        }
        // Looked at again (not masked by `heard`): after an insurance
        // attempt, a lease of this client that still holds the lock is
        // still waited for, not polled.
        let held_here = place.as_ref().and_then(Place::held_locally_for).is_some();
        let woken_by_release = live || (held_here && wakes_locally);
        wait = wait.min(if woken_by_release { LIVE_RECHECK } else { backoff.next_delay() });
        // Where the first in line also stands in the server's line, it asks
        // again within the refresh interval even while a lease of this
        // client holds the lock, so that its client's entry stays live.
        if let Some(refresh) = line.and_then(|line| line.refresh) {
            wait = wait.min(refresh);
        }
        // Woken or timed out, the next step is another attempt.
        let woken = async {
            match (released, turn) {
                (Some(released), Some(turn)) => {
                    tokio::select! {
                        () = released => true,
                        () = turn => false,
                    }
                }
                (Some(released), None) => {
                    released.await;
                    true
                }
                (None, Some(turn)) => {
                    turn.await;
                    false
                }
                (None, None) => std::future::pending().await,
            }
        };
        // A release heard, or no word at all until the wait ran out: ask
        // the server next, even if a lease of this client seems to hold
        // the lock (insurance against a release made elsewhere).
        heard = tokio::time::timeout(wait, woken).await.unwrap_or(true);
    }
}

/// Waits until `place` is first in line; `Err` at the deadline.
async fn wait_to_be_first(place: &Place, deadline: Instant) -> std::result::Result<(), ()> {
    loop {
        let mut turn = Box::pin(place.turn());
        turn.as_mut().enable();
        if place.is_first() {
            return Ok(());
        }
        if tokio::time::timeout_at(deadline, turn).await.is_err() {
            return Err(());
        }
    }
}

fn timed_out(timeout: Duration) -> StateError {
    StateError::Timeout { operation: "acquire", after: timeout }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::driver::hub::{Delivery, ReleaseHub};
    use crate::lock::FencingToken;

    fn lease() -> Lease {
        Lease::new("job", "owner", FencingToken(1), Instant::now(), Duration::from_secs(1))
    }

    #[tokio::test(start_paused = true)]
    async fn the_largest_timeout_waits_without_panicking() {
        let tries = AtomicUsize::new(0);
        let result = acquire_loop(
            Duration::MAX,
            None,
            || async {
                Ok(if tries.fetch_add(1, Ordering::SeqCst) < 3 { Step::Held(None) } else { Step::Acquired(lease()) })
            },
            |_| async { None },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(tries.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_in_line_waits_for_a_lease_of_its_client_instead_of_polling() {
        // No notifications (as DynamoDB): the client's own release wakes
        // the first in line. While the client's lease holds the lock, the
        // waiter asks the server only as insurance, once per LIVE_RECHECK.
        let contention = crate::driver::Contention::new();
        contention.held("job", "holder", Instant::now() + Duration::from_secs(60));
        let line = Line { contention: &contention, name: "job", wakes: true, refresh: None };
        let tries = AtomicUsize::new(0);
        let result = acquire_loop(
            Duration::from_secs(30),
            Some(line),
            || async {
                tries.fetch_add(1, Ordering::SeqCst);
                Ok(Step::Held(Some(Duration::from_secs(30))))
            },
            |_| async { None },
        )
        .await;
        assert!(matches!(result, Err(StateError::Timeout { .. })), "{result:?}");
        let tries = tries.load(Ordering::SeqCst);
        let most = usize::try_from(30 / LIVE_RECHECK.as_secs()).unwrap_or(usize::MAX);
        assert!(tries <= most, "{tries} attempts in 30 s while a lease of this client held the lock");
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_lock_times_out_at_the_deadline() {
        let started = Instant::now();
        let result =
            acquire_loop(Duration::from_millis(300), None, || async { Ok(Step::Held(None)) }, |_| async { None }).await;
        assert!(matches!(result, Err(StateError::Timeout { .. })), "{result:?}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(300) && waited < Duration::from_millis(310), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_live_watch_is_woken_by_a_release_not_by_polling() {
        let hub = ReleaseHub::new(Delivery::AllNames);
        hub.set_live(true);
        let tries = Arc::new(AtomicUsize::new(0));
        let releaser = hub.clone();
        let counted = Arc::clone(&tries);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            counted.store(100, Ordering::SeqCst);
            releaser.released("job");
        });
        let started = Instant::now();
        let result = acquire_loop(
            Duration::from_secs(60),
            None,
            || async {
                Ok(if tries.fetch_add(1, Ordering::SeqCst) >= 100 { Step::Acquired(lease()) } else { Step::Held(None) })
            },
            |_| async { Some(hub.watch("job")) },
        )
        .await;
        assert!(result.is_ok());
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        assert_eq!(tries.load(Ordering::SeqCst), 101, "one attempt before watching, one after, one after the release");
    }
}
