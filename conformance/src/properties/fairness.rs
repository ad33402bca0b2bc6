//! Bounded waiting: where a backend declares `fair_waiting`, a client's
//! lock waiters are served in the order they arrived, so a steady stream
//! of newcomers cannot starve anyone.
//!
//! Several tasks of one client take one lock in a loop: each acquires,
//! holds it for a millisecond, releases, and at once asks again, so the
//! releaser is always the best-placed newcomer. Each call is numbered when
//! it starts (its arrival) and each grant when it happens (counted inside
//! the critical section, which mutual exclusion orders). A call is
//! *overtaken* by every call that arrived after it and was granted before
//! it, having started at least [`TOGETHER`] after it (calls closer than
//! that count as arriving together: a thread descheduled between taking
//! its number and joining the line is a busy machine, not a lock letting
//! newcomers ahead). A FIFO line overtakes nobody else; a lock whose
//! waiters race for each
//! release (or poll) lets the releaser take it again and again, and its
//! waiters are overtaken dozens of times.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::{Instant, sleep};

use state_api::driver::{LINE_REFRESH, LINE_WINDOW};
use state_api::{LockService, StateError};

use crate::kit::{Context, Failure, Outcome};

/// The most times a waiter may be overtaken by calls that started after
/// its own, with every task of the client asking again as soon as it
/// released.
pub const MAX_OVERTAKES: usize = 3;

/// Calls that start closer together than this arrived together.
pub const TOGETHER: Duration = Duration::from_millis(10);

/// How many tasks contend.
const TASKS: usize = 8;

/// How many tasks of the client under test contend across clients.
const FIRST_TASKS: usize = 2;

/// How many tasks of the second client contend with the first's.
const PEER_TASKS: usize = 5;

/// How long each holder keeps the lock.
const HOLD: Duration = Duration::from_millis(1);

/// How long each holder keeps the lock across clients: long enough that a
/// waiter of the second client, behind its four others, has waited more
/// than [`TOGETHER`] when the first client's task asks again. (With
/// [`HOLD`], hand-overs as quick as Redis's pub/sub made every wait shorter
/// than [`TOGETHER`], and a server without one line for both clients
/// passed.)
const HOLD_ACROSS: Duration = Duration::from_millis(4);

/// One served call.
#[derive(Debug, Clone, Copy)]
struct Served {
    task: usize,
    started: Instant,
    arrival: u64,
    grant: u64,
    waited: Duration,
}

/// Runs the property: eight tasks of one client.
pub async fn run(cx: &Context) -> Outcome {
    let served = contend(cx, "fair", HOLD, &[(Arc::clone(&cx.backend.locks), TASKS)]).await?;
    judge(cx, &served, &format!("{TASKS} tasks"), "fair_waiting")
}

/// Across clients: where a backend declares `fair_across_clients`, two
/// tasks of the client under test and five of a second client (the test's
/// peer) take one lock in turn, each asking again as soon as it released.
/// Without one line for both clients on the server, the first client's
/// next attempt beats the other client's waiters, which hear of the
/// release a moment later, and they are overtaken at nearly every
/// release. Two tasks, not one, so that the first client too always has
/// a call waiting when one of its calls is granted: its entry must stay in
/// line at that call's ticket (the contract's rule for a client with
/// several waiting calls), and the other client's calls must still not
/// be overtaken.
///
/// Before that round, two checks. The hand-over from a granted waiter to
/// the other client's: a granted call must leave the line, or the next
/// client's waiter is held back until the entry falls silent
/// ([`LINE_WINDOW`]), and a lock stays free with a waiter in line. And the
/// other client's waiter keeps its place while a call of this client is
/// granted ahead of it or gives up (`place_kept`).
pub async fn across_clients(cx: &Context) -> Outcome {
    let Some(peer) = cx.peer() else {
        return Err(Failure("the property ran without a second client".to_owned()));
    };
    let mut delays = Vec::new();
    for attempt in 0..HAND_OVERS {
        delays.push(hand_over_delay(cx, &peer.locks, attempt).await?);
    }
    let mut probes = Vec::new();
    for round in 0..PLACE_ROUNDS {
        for loss in [Loss::Grant, Loss::GiveUp] {
            probes.push((loss, place_kept(cx, &peer.locks, loss, round).await?));
        }
    }
    cx.note(format!(
        "the other client's waiter kept its place while this client's calls were granted ahead of it or gave up; \
         try_acquire refused {probes:?} after its call started (its next refresh: {LINE_REFRESH:?}; None: the round \
         could not be set up in time)"
    ));
    let quickest = delays.iter().min().copied().unwrap_or_default();
    cx.note(format!("hand-overs from a granted waiter to the other client's: {delays:?} after the release"));
    if quickest > HAND_OVER_BOUND {
        return Err(Failure(format!(
            "a waiter of the second client got the lock {delays:?} after the first client's granted waiter \
             released it, each time more than {HAND_OVER_BOUND:?}: a granted call that stays in the line holds \
             the next client back until it falls silent ({LINE_WINDOW:?})"
        )));
    }
    let clients = [(Arc::clone(&cx.backend.locks), FIRST_TASKS), (Arc::clone(&peer.locks), PEER_TASKS)];
    let served = contend(cx, "fair-clients", HOLD_ACROSS, &clients).await?;
    let who = format!("{FIRST_TASKS} tasks of one client and {PEER_TASKS} of another");
    judge(cx, &served, &who, "fair_across_clients")
}

/// How many times each way of losing a place is tried.
const PLACE_ROUNDS: usize = 2;

/// Time for a spawned call to reach the server and stand in line.
const STAND: Duration = Duration::from_millis(50);

/// How long the call ahead of the peer's waiter waits for its grant: a
/// refresh and a margin.
const AHEAD_WAIT: Duration = Duration::from_secs(2);

/// The lease of the call granted ahead of the peer's waiter, and the wait
/// of the call that gives up: short, so that the probe runs well within
/// [`LINE_REFRESH`] of the peer's waiter standing in line.
const BRIEF: Duration = Duration::from_millis(30);

/// What happens, in the client under test, while the peer's waiter stands
/// in line.
#[derive(Debug, Clone, Copy)]
enum Loss {
    /// A call standing ahead of it is granted.
    Grant,
    /// A call waiting behind a lease of the same client gives up (and
    /// takes its client out of the line).
    GiveUp,
}

/// The peer's waiter keeps its place in the line while the client under
/// test is granted a call ahead of it, or gives one up: a grant or a
/// leave removes the caller's own entry and no other.
///
/// The peer's call stands in line behind a lease of the client under test
/// (and, for [`Loss::Grant`], behind a call of that client standing
/// earlier, which asks again at its refresh). Then the lock falls free
/// *without a release*: the lease is extended to 1 ms (for
/// [`Loss::Grant`], the call ahead is then granted a brief lease, which
/// runs out too). No notification wakes the peer's waiter: it asks again
/// at its next refresh ([`LINE_REFRESH`] after it stood), and until then
/// only its entry says it waits. A `try_acquire` of the client under test
/// (a newcomer, which comes after every live waiter) must be refused;
/// where the grant or the leave deleted the peer's entry, it takes the
/// lock. A waiter that asked again before the probe (a slow machine) makes
/// the round miss, never fail wrongly: the probe is refused either way.
/// The peer's call starts after a refused `try_acquire` (so its
/// connection is warm) and has [`STAND`] to reach the server before
/// anything else happens. A grant round whose call ahead was not in line
/// when its client's first call was granted cannot be set up (the peer's
/// waiter may then take the lock first): it answers `None`. Otherwise,
/// how long after the peer's call started the probe ran.
async fn place_kept(
    cx: &Context,
    peer: &Arc<dyn LockService>,
    loss: Loss,
    round: usize,
) -> Result<Option<Duration>, Failure> {
    let locks = &cx.backend.locks;
    let name = cx.lock_name(&format!("fair-place-{loss:?}-{round}"));
    let (ttl, wait) = (Duration::from_secs(30), Duration::from_secs(20));
    let spawn_acquire = |locks: &Arc<dyn LockService>, ttl: Duration, wait: Duration| {
        let (locks, name) = (Arc::clone(locks), name.clone());
        tokio::spawn(async move { locks.acquire(&name, ttl, wait).await })
    };
    let died = |e: tokio::task::JoinError| Failure(format!("a waiter on {name:?} died: {e}"));
    // The lease the peer's waiter stands behind, and for a grant, the call
    // of the same client standing ahead of it.
    let (mut held, ahead) = match loss {
        Loss::GiveUp => match locks.try_acquire(&name, ttl).await? {
            Some(lease) => (lease, None),
            None => return Err(Failure(format!("the fresh lock {name:?} was not free"))),
        },
        Loss::Grant => {
            let Some(first) = peer.try_acquire(&name, ttl).await? else {
                return Err(Failure(format!("the fresh lock {name:?} was not free")));
            };
            let granted = spawn_acquire(locks, ttl, wait);
            sleep(STAND).await;
            // Its wait is short: if it joined the line only after the
            // first call was granted, its client's entry left the line,
            // and the peer's waiter may legitimately take the lock first.
            let ahead = spawn_acquire(locks, BRIEF, AHEAD_WAIT);
            sleep(STAND).await;
            peer.release(&first).await?;
            let granted = granted.await.map_err(died)??;
            // The call ahead now waits behind a lease of its own client and
            // asks the server again at its refresh, LINE_REFRESH from now:
            // the peer's waiter stands in line in between, so that its own
            // refresh comes well after that.
            sleep(LINE_REFRESH / 2).await;
            (granted, Some(ahead))
        }
    };
    // The peer's call, with the time it started: after a try_acquire
    // (refused: the lock is held), so that its connection is warm and the
    // call reaches the server at once.
    let (started_tx, started) = tokio::sync::oneshot::channel();
    let behind = {
        let (peer, name) = (Arc::clone(peer), name.clone());
        tokio::spawn(async move {
            if let Some(lease) = peer.try_acquire(&name, ttl).await? {
                peer.release(&lease).await?;
                return Err(Failure(format!("{name:?} was free while a lease held it")));
            }
            let _ = started_tx.send(Instant::now());
            Ok::<_, Failure>(peer.acquire(&name, ttl, wait).await?)
        })
    };
    let Ok(stood) = started.await else {
        return Err(behind.await.map_err(died)?.err().unwrap_or_else(|| Failure(format!("{name:?}: no waiter"))));
    };
    sleep(STAND).await;
    if let Loss::GiveUp = loss {
        match locks.acquire(&name, ttl, BRIEF).await {
            Err(StateError::Timeout { .. }) => {}
            Ok(_) => return Err(Failure(format!("{name:?} was granted while a lease of the same client held it"))),
            Err(e) => return Err(e.into()),
        }
    }
    locks.extend(&mut held, Duration::from_millis(1)).await?;
    let mut set_up = true;
    match ahead {
        Some(ahead) => match ahead.await.map_err(died)? {
            Ok(_) => sleep(BRIEF + Duration::from_millis(5)).await,
            // Not in line in time (see above): the peer's waiter took it.
            Err(StateError::Timeout { .. }) => set_up = false,
            Err(e) => return Err(e.into()),
        },
        None => sleep(Duration::from_millis(5)).await,
    }
    let probed_after = stood.elapsed();
    let probe = if set_up { locks.try_acquire(&name, ttl).await? } else { None };
    if let Some(lease) = &probe {
        locks.release(lease).await?;
    }
    let lease = behind.await.map_err(died)??;
    peer.release(&lease).await?;
    if !set_up {
        return Ok(None);
    }
    if probe.is_some() {
        let how = match loss {
            Loss::Grant => "a call of this client standing ahead of it was granted",
            Loss::GiveUp => "a call of this client gave up waiting",
        };
        return Err(Failure(format!(
            "on {name:?}, a try_acquire went ahead of the other client's waiter {probed_after:?} after its call \
             started: {how}, and its entry was gone from the line (a grant or a leave may remove only the \
             caller's own entry)"
        )));
    }
    Ok(Some(probed_after))
}

/// How many hand-overs are timed; the quickest is judged.
const HAND_OVERS: usize = 3;

/// The longest a waiter of the second client may take to get the lock
/// after the first client's granted waiter released it: a polling waiter's
/// backoff cap (250 ms) and a round trip fit, an entry left in the line
/// for [`LINE_WINDOW`] does not.
const HAND_OVER_BOUND: Duration = Duration::from_millis(500);

/// One hand-over: the peer holds a fresh lock; a call of the client under
/// test waits in line (on the server: another client holds the lock), then
/// a second call of the peer behind it; the peer releases, the first
/// waiter is granted, holds briefly and releases. Answers how long after
/// that release the peer's waiter held the lock.
async fn hand_over_delay(cx: &Context, peer: &Arc<dyn LockService>, attempt: usize) -> Result<Duration, Failure> {
    let locks = &cx.backend.locks;
    let name = cx.lock_name(&format!("fair-hand-over-{attempt}"));
    let ttl = Duration::from_secs(30);
    let wait = Duration::from_secs(20);
    let Some(holder) = peer.try_acquire(&name, ttl).await? else {
        return Err(Failure(format!("the fresh lock {name:?} was not free")));
    };
    let first = {
        let (locks, name) = (Arc::clone(locks), name.clone());
        tokio::spawn(async move { locks.acquire(&name, ttl, wait).await })
    };
    sleep(STAND).await;
    let second = {
        let (peer, name) = (Arc::clone(peer), name.clone());
        tokio::spawn(async move {
            let lease = peer.acquire(&name, ttl, wait).await;
            (lease, Instant::now())
        })
    };
    sleep(STAND).await;
    peer.release(&holder).await?;
    if second.is_finished() {
        return Err(Failure(format!("on {name:?}, the second client's waiter was served before the first's")));
    }
    let granted = first.await.map_err(|e| Failure(format!("the first waiter died: {e}")))??;
    sleep(HOLD_ACROSS).await;
    locks.release(&granted).await?;
    let released = Instant::now();
    let (lease, at) = second.await.map_err(|e| Failure(format!("the second waiter died: {e}")))?;
    peer.release(&lease?).await?;
    Ok(at.saturating_duration_since(released))
}

/// Each client's tasks take the lock `label` [`Scale::of`](crate::Scale)(20)
/// times each, holding it for `hold` and asking again as soon as they
/// release.
async fn contend(
    cx: &Context,
    label: &str,
    hold: Duration,
    clients: &[(Arc<dyn LockService>, usize)],
) -> Result<Vec<Served>, Failure> {
    let rounds = cx.scale.of(20);
    let name = cx.lock_name(label);
    let arrivals = Arc::new(AtomicU64::new(0));
    let grants = Arc::new(AtomicU64::new(0));
    let tasks: Vec<_> = clients
        .iter()
        .flat_map(|(locks, tasks)| std::iter::repeat_n(locks, *tasks))
        .enumerate()
        .map(|(task, locks)| {
            let locks = Arc::clone(locks);
            let (name, arrivals, grants) = (name.clone(), Arc::clone(&arrivals), Arc::clone(&grants));
            tokio::spawn(async move {
                let mut served = Vec::new();
                for _ in 0..rounds {
                    let started = Instant::now();
                    let arrival = arrivals.fetch_add(1, Ordering::SeqCst);
                    let lease = locks
                        .acquire(&name, Duration::from_secs(30), Duration::from_secs(60))
                        .await
                        .map_err(|e| Failure(format!("task {task}: acquire failed: {e}")))?;
                    let grant = grants.fetch_add(1, Ordering::SeqCst);
                    let waited = started.elapsed();
                    sleep(hold).await;
                    locks.release(&lease).await?;
                    served.push(Served { task, started, arrival, grant, waited });
                }
                Ok::<_, Failure>(served)
            })
        })
        .collect();
    let mut served = Vec::new();
    for (task, handle) in tasks.into_iter().enumerate() {
        match handle.await {
            Ok(Ok(done)) => served.extend(done),
            Ok(Err(failure)) => return Err(failure),
            Err(died) => return Err(Failure(format!("task {task} died: {died}"))),
        }
    }
    Ok(served)
}

/// Fails if a call was overtaken more than [`MAX_OVERTAKES`] times.
fn judge(cx: &Context, served: &[Served], who: &str, feature: &str) -> Outcome {
    let (worst, overtaken) = most_overtaken(served);
    let longest = served.iter().map(|s| s.waited).max().unwrap_or_default();
    cx.note(format!(
        "{} acquisitions by {who}: a waiter was overtaken at most {overtaken} times (bound {MAX_OVERTAKES}); \
         longest wait {longest:?}",
        served.len()
    ));
    if overtaken > MAX_OVERTAKES {
        let worst = worst.map_or_else(String::new, |s| {
            format!(
                " (task {}'s call number {}, granted {}th after waiting {:?})",
                s.task, s.arrival, s.grant, s.waited
            )
        });
        return Err(Failure(format!(
            "a waiter was overtaken {overtaken} times by calls that started {TOGETHER:?} or more after it{worst}; the bound for a \
             backend declaring {feature} is {MAX_OVERTAKES}"
        )));
    }
    Ok(served.len() as u64)
}

/// The call overtaken most often, and how often.
fn most_overtaken(served: &[Served]) -> (Option<Served>, usize) {
    served
        .iter()
        .map(|s| {
            let later = |o: &&Served| o.arrival > s.arrival && o.started >= s.started + TOGETHER && o.grant < s.grant;
            (Some(*s), served.iter().filter(later).count())
        })
        .max_by_key(|(_, n)| *n)
        .unwrap_or((None, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(arrival: u64, grant: u64) -> Served {
        let started = Instant::now() + TOGETHER * u32::try_from(arrival).unwrap_or(u32::MAX);
        Served { task: 0, started, arrival, grant, waited: Duration::ZERO }
    }

    #[test]
    fn overtakes_count_later_arrivals_served_earlier() {
        let fifo: Vec<_> = (0..5).map(|n| served(n, n)).collect();
        assert_eq!(most_overtaken(&fifo).1, 0);
        // Call 0 is served last, after four later arrivals.
        let starved = [served(0, 4), served(1, 0), served(2, 1), served(3, 2), served(4, 3)];
        let (worst, n) = most_overtaken(&starved);
        assert_eq!(n, 4);
        assert_eq!(worst.map(|s| s.arrival), Some(0));
        // Calls that started together are not overtakers.
        let mut together = starved;
        for call in &mut together {
            call.started = starved[0].started;
        }
        assert_eq!(most_overtaken(&together).1, 0);
    }
}
