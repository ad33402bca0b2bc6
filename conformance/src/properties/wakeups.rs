//! Release wake-ups: where a backend declares that lock waiters are woken
//! by a release, a waiter acquires promptly after the holder releases —
//! not at its next poll.
//!
//! Many waiters wait at once, each on its own lock held by a long lease,
//! long enough for a polling waiter's backoff to reach its cap (250 ms).
//! Then every holder releases and the kit measures how long each waiter
//! took to hold the lock after the release returned. A woken waiter needs
//! one attempt's round trip; a polling one also waits out the rest of its
//! current backoff, a third of the cap on average. The mean over all
//! waiters is compared with [`WAKE_BOUND`] plus the median round trip of an
//! attempt on a held lock, measured in the same run (so a slow server or a
//! busy machine does not pass for polling): with this many waiters, a
//! poller's mean lands below it with a probability under one percent.

use std::time::Duration;

use tokio::time::Instant;

use crate::ensure;
use crate::kit::{Context, Failure, Outcome};

/// How many waiters wait at once.
const WAITERS: usize = 32;

/// The longest mean delay between a release and the waiter holding the
/// lock that counts as "woken by the release", beyond one round trip.
pub const WAKE_BOUND: Duration = Duration::from_millis(50);

/// How long waiters wait before the releases: a polling waiter's backoff
/// is at its cap by then.
const SETTLE: Duration = Duration::from_millis(1500);

/// Runs the property.
pub async fn run(cx: &Context) -> Outcome {
    let locks = &cx.backend.locks;
    let lease_ttl = Duration::from_secs(30);
    let mut holders = Vec::with_capacity(WAITERS);
    let mut waiters = Vec::with_capacity(WAITERS);
    for i in 0..WAITERS {
        let name = cx.lock_name(&format!("wake-{i}"));
        let Some(holder) = locks.try_acquire(&name, lease_ttl).await? else {
            return Err(Failure(format!("the fresh lock {name:?} was not free")));
        };
        holders.push(holder);
        let locks = locks.clone();
        waiters.push(tokio::spawn(async move {
            let lease = locks.acquire(&name, lease_ttl, Duration::from_secs(20)).await;
            (lease, Instant::now())
        }));
    }
    let settled = Instant::now() + SETTLE;
    // While the waiters settle: the round trip of an attempt on a held lock.
    let mut round_trips = Vec::with_capacity(WAITERS);
    for holder in &holders {
        let started = Instant::now();
        if locks.try_acquire(holder.name(), lease_ttl).await?.is_some() {
            return Err(Failure(format!("try_acquire took the held lock {:?}", holder.name())));
        }
        round_trips.push(started.elapsed());
    }
    round_trips.sort_unstable();
    let round_trip = round_trips[WAITERS / 2];
    tokio::time::sleep_until(settled).await;
    let mut released_at = Vec::with_capacity(WAITERS);
    for holder in &holders {
        locks.release(holder).await?;
        // From here the lock is certainly free.
        released_at.push(Instant::now());
    }
    let mut delays = Vec::with_capacity(WAITERS);
    for (waiter, released) in waiters.into_iter().zip(released_at) {
        let (lease, acquired) = waiter.await.map_err(|e| Failure(format!("a waiter task failed: {e}")))?;
        let lease = lease.map_err(|e| Failure(format!("a waiter did not get the released lock: {e}")))?;
        delays.push(acquired.saturating_duration_since(released));
        locks.release(&lease).await?;
    }
    let total: Duration = delays.iter().sum();
    let mean = total / u32::try_from(WAITERS).unwrap_or(u32::MAX);
    let bound = WAKE_BOUND + round_trip;
    ensure!(
        mean < bound,
        "the backend declares release wake-ups, but waiters took {mean:?} on average (bound {bound:?}: \
         {WAKE_BOUND:?} plus a round trip of {round_trip:?}) to hold a released lock, as a poller would; \
         delays: {delays:?}"
    );
    Ok(WAITERS as u64)
}
