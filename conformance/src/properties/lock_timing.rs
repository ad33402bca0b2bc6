//! Lock timing: `acquire` gives up when its timeout says, a cancelled
//! `acquire` leaves nothing behind, and an extended lease is held for
//! exactly its new TTL.
//!
//! Like every timed property, each check asserts only what the clock
//! proves: "still held" only when the check returned before the deadline
//! minus the tolerance, "free" only after the deadline plus it. A slow
//! machine makes these checks weaker, never flaky.

use std::time::Duration;

use state_api::driver::LINE_WINDOW;
use state_api::{Lease, LockService, StateError};
use tokio::time::{Instant, sleep_until};

use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};
use crate::properties::locks::short_lease;

/// How much later than its timeout an `acquire` may give up, beyond two
/// round trips of an attempt: its last attempt may start just before the
/// deadline, and the task needs a moment to be scheduled.
pub const TIMEOUT_SLACK: Duration = Duration::from_millis(150);

/// The timeouts tried on a held lock: none, short, and long enough for a
/// polling waiter's backoff to grow.
const TIMEOUTS: [Duration; 3] = [Duration::ZERO, Duration::from_millis(100), Duration::from_millis(400)];

/// Tries of one timeout before "gave up too late" counts as a failure.
const ATTEMPTS: usize = 3;

/// Takes a fresh lock or explains why not.
async fn take(locks: &dyn LockService, name: &str, ttl: Duration) -> Result<Lease, Failure> {
    locks.try_acquire(name, ttl).await?.ok_or_else(|| Failure(format!("the fresh lock {name:?} was not free")))
}

/// Whether someone else can take `name` now; hands it back if so.
async fn is_free(locks: &dyn LockService, name: &str) -> Result<bool, Failure> {
    match locks.try_acquire(name, Duration::from_secs(1)).await? {
        Some(lease) => {
            locks.release(&lease).await?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// `acquire` on a held lock fails with `Timeout` no sooner than its
/// timeout and no later than the timeout plus two round trips plus
/// [`TIMEOUT_SLACK`]; and a call that gave up leaves nothing behind: once
/// the holder releases, the lock is free to `try_acquire` at once (a
/// waiter that gave up has left the lock's line on the server, where
/// there is one, rather than holding newcomers back until it falls
/// silent).
pub async fn acquire_timeout(cx: &Context) -> Outcome {
    let locks = cx.backend.locks.as_ref();
    let name = cx.lock_name("timeout");
    let holder = take(locks, &name, Duration::from_secs(60)).await?;
    // The slowest of a few attempts on the held lock is the round trip the
    // bound allows for (twice: the last attempt, and the one before it).
    let mut round_trip = Duration::ZERO;
    for _ in 0..3 {
        let started = Instant::now();
        let attempt = locks.try_acquire(&name, Duration::from_secs(1)).await?;
        round_trip = round_trip.max(started.elapsed());
        if attempt.is_some() {
            return Err(Failure("try_acquire took a held lock".into()));
        }
    }
    let slack = TIMEOUT_SLACK + round_trip * 2;
    let mut findings = Findings::new();
    for timeout in TIMEOUTS {
        // A machine that stalls can make one wait overshoot; a store that
        // overshoots does so every time.
        let mut late = Vec::with_capacity(ATTEMPTS);
        for _ in 0..ATTEMPTS {
            let started = Instant::now();
            // The kit's own bound keeps a hanging acquire from hanging the run.
            let bound = timeout + Duration::from_secs(10);
            let answer = tokio::time::timeout(bound, locks.acquire(&name, Duration::from_secs(1), timeout)).await;
            let took = started.elapsed();
            let answer = answer.unwrap_or_else(|_| Err(StateError::timed_out("the kit's bound on acquire", bound)));
            if let Ok(lease) = &answer {
                locks.release(lease).await?;
            }
            let timed_out = findings.check(matches!(answer, Err(StateError::Timeout { .. })), || {
                format!("acquire of a held lock with a timeout of {timeout:?} answered {answer:?}, not Timeout")
            });
            let not_early = findings
                .check(took >= timeout, || format!("acquire with a timeout of {timeout:?} gave up after {took:?}"));
            if !(timed_out && not_early) || took <= timeout + slack {
                break;
            }
            late.push(took);
        }
        findings.check(late.len() < ATTEMPTS, || {
            format!(
                "acquire with a timeout of {timeout:?} gave up only after {late:?} in {ATTEMPTS} tries, over the \
                 timeout plus {slack:?} (two round trips of {round_trip:?} plus {TIMEOUT_SLACK:?})"
            )
        });
    }
    locks.release(&holder).await?;
    findings.check(is_free(locks, &name).await?, || {
        "after acquire calls on a held lock gave up and its holder released it, try_acquire was refused: a call \
         that gave up still stood in the lock's line"
            .to_owned()
    });
    findings.outcome()
}

/// An `acquire` cancelled while it waits (its future dropped) leaves no
/// lease behind beyond its TTL: the lock is free a TTL after the
/// cancellation, even though its holder released it only later — when a
/// waiter that lived on past its cancellation would have taken it. (Its
/// place in the lock's line on the server, where there is one, lapses
/// within [`LINE_WINDOW`], which the TTL exceeds.)
pub async fn cancelled_acquire(cx: &Context) -> Outcome {
    let locks = cx.backend.locks.as_ref();
    let tolerance = cx.clock_tolerance();
    let ttl = short_lease(cx).max(LINE_WINDOW + tolerance);
    let name = cx.lock_name("cancelled");
    let holder = take(locks, &name, Duration::from_secs(60)).await?;
    let mut findings = Findings::new();

    let waited = tokio::time::timeout(tolerance * 2, locks.acquire(&name, ttl, Duration::from_secs(60))).await;
    let cancelled = Instant::now();
    match waited {
        Err(_) => {} // Cancelled mid-wait, as intended.
        Ok(Ok(lease)) => {
            findings.fail("a waiter acquired a lock its holder still held");
            locks.release(&lease).await?;
        }
        Ok(Err(error)) => findings.fail(format!("a waiter on a held lock failed: {error}")),
    }
    // The holder keeps the lock a while longer, then lets it go.
    tokio::time::sleep(tolerance * 2).await;
    locks.release(&holder).await?;

    sleep_until(cancelled + ttl + tolerance).await;
    let free = is_free(locks, &name).await?;
    findings.check(free, || {
        format!(
            "the lock was held {:?} after an acquire (TTL {ttl:?}) was cancelled, though its holder had released \
             it: the cancelled acquire left a lease behind",
            ttl + tolerance
        )
    });
    findings.outcome()
}

/// An extended lease is held until `ttl` after the extend — past its
/// original deadline when the extension is longer, and no longer than that
/// when it is shorter (the deadline is "now + ttl", not the later of the
/// two, and certainly not "now - ttl").
pub async fn lease_extension(cx: &Context) -> Outcome {
    let (longer, shorter) = tokio::join!(extended_to_a_longer_ttl(cx), extended_to_a_shorter_ttl(cx));
    let mut findings = longer?;
    findings.absorb(shorter?);
    findings.outcome()
}

async fn extended_to_a_longer_ttl(cx: &Context) -> Result<Findings, Failure> {
    let locks = cx.backend.locks.as_ref();
    let (ttl, tolerance) = (short_lease(cx), cx.clock_tolerance());
    let name = cx.lock_name("extend-longer");
    let mut findings = Findings::new();
    let acquired = Instant::now();
    let mut lease = take(locks, &name, ttl).await?;
    sleep_until(acquired + ttl / 2).await;
    let (requested, longer) = (Instant::now(), ttl * 2);
    locks.extend(&mut lease, longer).await?;
    let extended = Instant::now();
    let held = locks.is_held(&lease).await?;
    if Instant::now() < requested + longer - tolerance {
        findings.check(held, || format!("right after an extend to {longer:?} the lease is not held"));
    }

    // Past the original deadline, well before the new one: still held.
    sleep_until(acquired + ttl + tolerance).await;
    let taken = !is_free(locks, &name).await?;
    if Instant::now() < requested + longer - tolerance {
        findings
            .check(taken, || format!("a lease of {ttl:?} extended to {longer:?} was free after its original deadline"));
    }
    // After the new deadline: free.
    sleep_until(extended + longer + tolerance).await;
    findings.check(is_free(locks, &name).await?, || {
        format!("a lease extended to {longer:?} was still held {tolerance:?} after that TTL")
    });
    Ok(findings)
}

async fn extended_to_a_shorter_ttl(cx: &Context) -> Result<Findings, Failure> {
    let locks = cx.backend.locks.as_ref();
    let (ttl, tolerance) = (short_lease(cx), cx.clock_tolerance());
    let name = cx.lock_name("extend-shorter");
    let mut findings = Findings::new();
    let mut lease = take(locks, &name, Duration::from_secs(60)).await?;
    let requested = Instant::now();
    locks.extend(&mut lease, ttl).await?;
    let extended = Instant::now();
    let held = locks.is_held(&lease).await?;
    if Instant::now() < requested + ttl - tolerance {
        findings.check(held, || format!("right after an extend to {ttl:?} the lease is not held"));
    }

    // Before the new deadline: still held.
    sleep_until(requested + ttl - tolerance).await;
    let taken = !is_free(locks, &name).await?;
    if Instant::now() < requested + ttl - tolerance / 2 {
        findings.check(taken, || format!("a lease extended to {ttl:?} was free before that TTL"));
    }
    // After it: free, though the lease was first taken for a minute.
    sleep_until(extended + ttl + tolerance).await;
    findings.check(is_free(locks, &name).await?, || {
        format!("a one-minute lease extended to {ttl:?} was still held {tolerance:?} after that TTL")
    });
    Ok(findings)
}
