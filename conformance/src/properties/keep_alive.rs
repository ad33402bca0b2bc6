//! Keep-alive ([`state_api::KeepAlive`]) over the backend's locks: a
//! kept-alive lease stays held for five TTLs and no one else is granted
//! it; stopping releases it; when the kit stalls every extension past the
//! TTL, the lost signal fires no later than the lease's local deadline and
//! before anyone else is granted the lock; when the lease is taken from
//! under it, the signal fires within a TTL; dropping it releases the lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use state_api::{KeepAlive, Lease, LeaseLost, LockService, Result};
use tokio::time::Instant;

use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// The TTL of the kept-alive leases: short enough for five of them to pass
/// quickly, long enough for extension round trips under load, and for the
/// declared clock skew, which shortens a lease's local validity.
fn lease_ttl(cx: &Context) -> Duration {
    Duration::from_millis(300) + cx.clock_tolerance() * 2
}

/// How late a timer may fire under load: the signal may come this long
/// after the instant it aimed at (the keep-alive aims a margin before the
/// deadline, so this only matters on a starved machine).
const TIMER_ALLOWANCE: Duration = Duration::from_millis(25);

/// Runs the property.
pub async fn run(cx: &Context) -> Outcome {
    let mut findings = Findings::new();
    findings.record("held for five ttls", held_for_five_ttls(cx).await);
    findings.record("extensions stalled", stalled(cx).await);
    findings.record("lease taken", taken(cx).await);
    findings.record("dropped", dropped(cx).await);
    findings.outcome()
}

fn start(service: Arc<dyn LockService>, lease: Lease, ttl: Duration) -> Result<KeepAlive> {
    KeepAlive::start(service, lease, ttl)
}

/// Another client polls the lock for five TTLs and is never granted it.
async fn held_for_five_ttls(cx: &Context) -> std::result::Result<(), Failure> {
    let ttl = lease_ttl(cx);
    let locks = &cx.backend.locks;
    let name = cx.lock_name("keep-alive-held");
    let lease = locks.try_acquire(&name, ttl).await?.ok_or_else(|| Failure(format!("{name} was not free")))?;
    let kept = start(Arc::clone(locks), lease, ttl)?;
    let until = Instant::now() + ttl * 5;
    while Instant::now() < until {
        tokio::time::sleep(ttl / 4).await;
        if let Some(other) = locks.try_acquire(&name, ttl).await? {
            let _ = locks.release(&other).await;
            return Err(Failure(format!(
                "another client was granted the lock {:?} into a kept-alive lease of TTL {ttl:?} ({:?})",
                (until - ttl * 5).elapsed(),
                kept.lost_reason()
            )));
        }
        if let Some(reason) = kept.lost_reason() {
            return Err(Failure(format!("the keep-alive signalled a loss while nothing failed: {reason}")));
        }
    }
    let lease = kept.lease().ok_or_else(|| Failure("the keep-alive holds no lease".to_owned()))?;
    crate::ensure!(locks.is_held(&lease).await?, "after five ttls the kept-alive lease is not held");
    kept.stop().await?;
    match locks.try_acquire(&name, ttl).await? {
        Some(next) => locks.release(&next).await?,
        None => return Err(Failure("stopping the keep-alive did not release the lock".to_owned())),
    }
    Ok(())
}

/// A lock service whose extensions hang once stalled, as a store that no
/// longer answers (or a keep-alive task starved of the network).
struct Stalling {
    inner: Arc<dyn LockService>,
    stalled: AtomicBool,
}

#[async_trait]
impl LockService for Stalling {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        self.inner.try_acquire(name, ttl).await
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.extend(lease, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        self.inner.release(lease).await
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        self.inner.is_held(lease).await
    }
}

/// Extensions stall after a TTL: the signal fires by the lease's local
/// deadline, before a contender polling the lock is granted it.
async fn stalled(cx: &Context) -> std::result::Result<(), Failure> {
    let ttl = lease_ttl(cx);
    let locks = &cx.backend.locks;
    let name = cx.lock_name("keep-alive-stalled");
    let lease = locks.try_acquire(&name, ttl).await?.ok_or_else(|| Failure(format!("{name} was not free")))?;
    let stalling = Arc::new(Stalling { inner: Arc::clone(locks), stalled: AtomicBool::new(false) });
    let kept = start(stalling.clone(), lease, ttl)?;
    tokio::time::sleep(ttl).await;
    stalling.stalled.store(true, Ordering::SeqCst);
    // An extension already past the stall check finishes within a round trip.
    tokio::time::sleep(ttl / 4).await;
    let Some(last) = kept.lease() else {
        return Err(Failure(format!("the lease was lost before the stall: {:?}", kept.lost_reason())));
    };
    let contender = async {
        let bound = Instant::now() + ttl * 20;
        while Instant::now() < bound {
            if let Some(other) = locks.try_acquire(&name, ttl).await? {
                let granted = Instant::now();
                locks.release(&other).await?;
                return Ok(Some(granted));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok::<_, state_api::StateError>(None)
    };
    let signal = async {
        let reason = kept.lost().await;
        (reason, Instant::now())
    };
    let (granted, (reason, signalled)) = tokio::join!(contender, signal);
    let granted = granted?.ok_or_else(|| Failure("the stalled lease never expired for a contender".to_owned()))?;
    let mut failures = Vec::new();
    if !matches!(reason, LeaseLost::Expired { .. }) {
        failures.push(format!("the stalled keep-alive signalled {reason:?}, expected Expired"));
    }
    if signalled > last.valid_until() + TIMER_ALLOWANCE {
        failures.push(format!(
            "the loss was signalled {:?} after the lease's local deadline",
            signalled - last.valid_until()
        ));
    }
    if signalled >= granted {
        failures
            .push(format!("a contender was granted the lock {:?} before the loss was signalled", signalled - granted));
    }
    if failures.is_empty() { Ok(()) } else { Err(Failure(failures.join("; "))) }
}

/// The lease is released from outside and taken by another client: the
/// next extension learns it, and the signal fires within a TTL.
async fn taken(cx: &Context) -> std::result::Result<(), Failure> {
    let ttl = lease_ttl(cx);
    let locks = &cx.backend.locks;
    let name = cx.lock_name("keep-alive-taken");
    let lease = locks.try_acquire(&name, ttl).await?.ok_or_else(|| Failure(format!("{name} was not free")))?;
    let kept = start(Arc::clone(locks), lease.clone(), ttl)?;
    tokio::time::sleep(ttl / 2).await;
    let current = kept.lease().unwrap_or(lease);
    locks.release(&current).await?;
    let taken_at = Instant::now();
    let thief = locks.try_acquire(&name, ttl * 10).await?;
    let bound = ttl + TIMER_ALLOWANCE;
    let outcome = tokio::time::timeout(bound, kept.lost()).await;
    if let Some(thief) = &thief {
        let _ = locks.release(thief).await;
    }
    match outcome {
        Ok(LeaseLost::Taken) => Ok(()),
        Ok(other) => Err(Failure(format!("a lease taken from under the keep-alive was signalled as {other:?}"))),
        Err(_) => Err(Failure(format!(
            "{:?} after the lease was taken over, the keep-alive had not signalled the loss",
            taken_at.elapsed()
        ))),
    }
}

/// Dropping the keep-alive releases the lease: a waiter gets the lock long
/// before its TTL would have freed it.
async fn dropped(cx: &Context) -> std::result::Result<(), Failure> {
    let locks = &cx.backend.locks;
    let name = cx.lock_name("keep-alive-dropped");
    let long = Duration::from_secs(10);
    let lease = locks.try_acquire(&name, long).await?.ok_or_else(|| Failure(format!("{name} was not free")))?;
    let kept = start(Arc::clone(locks), lease, long)?;
    drop(kept);
    let dropped_at = Instant::now();
    let bound = Duration::from_secs(2);
    match locks.acquire(&name, lease_ttl(cx), bound).await {
        Ok(next) => {
            locks.release(&next).await?;
            Ok(())
        }
        Err(error) => Err(Failure(format!(
            "{:?} after a keep-alive of a {long:?} lease was dropped the lock was still held: {error}",
            dropped_at.elapsed()
        ))),
    }
}
