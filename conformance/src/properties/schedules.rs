//! Schedules: the model of a schedule and the properties checked against
//! it (contract, "Schedules").
//!
//! - [`model`]: random operation sequences (schedule, cancel, due, claim,
//!   complete, release) give exactly the model's answers: replace by id,
//!   due order and limits, claimed items hidden, `ClaimLost` exactly when
//!   the claim no longer holds. Leases are an hour long here; expiry is
//!   [`claim_expiry`]'s job.
//! - [`replace_by_id`]: concurrent `schedule` calls on the same ids leave
//!   each id once, as one of the writes made.
//! - [`exactly_once`]: concurrent claimers, while producers keep
//!   scheduling: no item is in two claims, and every item is completed
//!   exactly once.
//! - [`claim_expiry`]: a claim whose lease passed gives its item back (to
//!   `due` and to the next claimer) and can neither complete nor release.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use state_api::{Claim, EpochMillis, Key, ScheduleService, ScheduledItem, StateError};
use tokio::time::Instant;

use crate::ensure;
use crate::kit::{Context, Failure, Outcome};

const HOUR: Duration = Duration::from_secs(3600);

// ---------------------------------------------------------------------
// The model

/// One item as the model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelItem {
    due_at: u64,
    payload: Vec<u8>,
    /// The number of the claim holding it, if any.
    claim: Option<usize>,
}

/// A schedule (one space) as the contract describes it, leases never
/// passing.
#[derive(Debug, Default)]
pub struct ScheduleModel {
    items: BTreeMap<String, ModelItem>,
    claims: usize,
}

impl ScheduleModel {
    fn schedule(&mut self, id: &str, due_at: u64, payload: &[u8]) {
        self.items.insert(id.to_owned(), ModelItem { due_at, payload: payload.to_vec(), claim: None });
    }

    fn cancel(&mut self, id: &str) -> bool {
        self.items.remove(id).is_some()
    }

    /// `(id, due_at, payload)` of the unclaimed items due at `now`, in due
    /// order, at most `limit`.
    fn due(&self, now: u64, limit: usize) -> Vec<(String, u64, Vec<u8>)> {
        let mut due: Vec<(String, u64, Vec<u8>)> = self
            .items
            .iter()
            .filter(|(_, item)| item.claim.is_none() && item.due_at <= now)
            .map(|(id, item)| (id.clone(), item.due_at, item.payload.clone()))
            .collect();
        due.sort_by(|a, b| (a.1, a.0.as_bytes()).cmp(&(b.1, b.0.as_bytes())));
        due.truncate(limit);
        due
    }

    /// Claims what `due` lists; each item gets the next claim number.
    fn claim(&mut self, now: u64, limit: usize) -> Vec<(String, u64, Vec<u8>, usize)> {
        let mut claimed = Vec::new();
        for (id, due_at, payload) in self.due(now, limit) {
            let number = self.claims;
            self.claims += 1;
            if let Some(item) = self.items.get_mut(&id) {
                item.claim = Some(number);
            }
            claimed.push((id, due_at, payload, number));
        }
        claimed
    }

    /// Whether claim `number` of `id` still holds it.
    fn holds(&self, id: &str, number: usize) -> bool {
        self.items.get(id).is_some_and(|item| item.claim == Some(number))
    }

    fn complete(&mut self, id: &str, number: usize) -> bool {
        self.holds(id, number) && self.items.remove(id).is_some()
    }

    fn release(&mut self, id: &str, number: usize) -> bool {
        if !self.holds(id, number) {
            return false;
        }
        if let Some(item) = self.items.get_mut(id) {
            item.claim = None;
        }
        true
    }
}

// ---------------------------------------------------------------------
// Property: sequential model equivalence

/// One generated operation.
#[derive(Debug, Clone)]
enum SOp {
    Schedule { id: usize, due_at: u64, payload: u8 },
    Cancel { id: usize },
    Due { now: u64, limit: usize },
    Claim { now: u64, limit: usize },
    Complete { claim: usize },
    Release { claim: usize },
}

/// Ids that sort differently as bytes and as text would tempt, with a
/// shared prefix, a space and a non-ASCII character.
const IDS: [&str; 5] = ["a", "a b", "ab", "b", "é"];
/// Due times with ties, so `(due_at, id)` order matters.
const DUES: [u64; 4] = [100, 200, 200, 300];
/// Instants before, between and after the due times.
const NOWS: [u64; 5] = [0, 150, 200, 250, 10_000];

fn op_strategy() -> impl Strategy<Value = SOp> {
    prop_oneof![
        3 => (0..IDS.len(), 0..DUES.len(), any::<u8>()).prop_map(|(id, due, payload)| SOp::Schedule { id, due_at: DUES[due], payload }),
        1 => (0..IDS.len()).prop_map(|id| SOp::Cancel { id }),
        2 => (0..NOWS.len(), 1usize..4).prop_map(|(now, limit)| SOp::Due { now: NOWS[now], limit }),
        2 => (0..NOWS.len(), 1usize..4).prop_map(|(now, limit)| SOp::Claim { now: NOWS[now], limit }),
        2 => (0usize..8).prop_map(|claim| SOp::Complete { claim }),
        1 => (0usize..8).prop_map(|claim| SOp::Release { claim }),
    ]
}

fn listed(items: &[ScheduledItem]) -> Vec<(String, u64, Vec<u8>)> {
    items.iter().map(|item| (item.key.id().to_owned(), item.due_at.millis(), item.payload.to_vec())).collect()
}

/// Runs `ops` against the backend and the model, failing at the first
/// difference.
async fn check_sequence(schedules: &dyn ScheduleService, space: &str, ops: &[SOp]) -> Result<(), String> {
    let mut model = ScheduleModel::default();
    // Every claim handed out, with its model number.
    let mut claims: Vec<(Claim, usize)> = Vec::new();
    let key = |id: usize| Key::new(space, IDS[id]).map_err(|e| e.to_string());
    for (step, op) in ops.iter().enumerate() {
        let at = |what: String| format!("step {step} ({op:?}): {what}");
        match op {
            SOp::Schedule { id, due_at, payload } => {
                schedules
                    .schedule(&key(*id)?, EpochMillis(*due_at), Bytes::from(vec![*payload]))
                    .await
                    .map_err(|e| at(format!("failed: {e}")))?;
                model.schedule(IDS[*id], *due_at, &[*payload]);
            }
            SOp::Cancel { id } => {
                let got = schedules.cancel(&key(*id)?).await.map_err(|e| at(format!("failed: {e}")))?;
                let want = model.cancel(IDS[*id]);
                if got != want {
                    return Err(at(format!("answered {got}, the model {want}")));
                }
            }
            SOp::Due { now, limit } => {
                let got =
                    schedules.due(space, EpochMillis(*now), *limit).await.map_err(|e| at(format!("failed: {e}")))?;
                let want = model.due(*now, *limit);
                if listed(&got) != want {
                    return Err(at(format!("listed {:?}, the model {want:?}", listed(&got))));
                }
            }
            SOp::Claim { now, limit } => {
                let got = schedules
                    .claim(space, EpochMillis(*now), *limit, HOUR)
                    .await
                    .map_err(|e| at(format!("failed: {e}")))?;
                let want = model.claim(*now, *limit);
                let got_items: Vec<ScheduledItem> = got.iter().map(|c| c.item().clone()).collect();
                let want_items: Vec<(String, u64, Vec<u8>)> =
                    want.iter().map(|(id, due, payload, _)| (id.clone(), *due, payload.clone())).collect();
                if listed(&got_items) != want_items {
                    return Err(at(format!("claimed {:?}, the model {want_items:?}", listed(&got_items))));
                }
                claims.extend(got.into_iter().zip(want.into_iter().map(|(_, _, _, number)| number)));
            }
            SOp::Complete { claim } | SOp::Release { claim } => {
                let Some((claim, number)) = (!claims.is_empty()).then(|| claims[claim % claims.len()].clone()) else {
                    continue;
                };
                let completing = matches!(op, SOp::Complete { .. });
                let got =
                    if completing { schedules.complete(&claim).await } else { schedules.release_claim(&claim).await };
                let id = claim.key().id();
                let want = if completing { model.complete(id, number) } else { model.release(id, number) };
                match (got, want) {
                    (Ok(()), true) => {}
                    (Err(StateError::ClaimLost { .. }), false) => {}
                    (got, want) => {
                        let want = if want { "Ok".to_owned() } else { "ClaimLost".to_owned() };
                        return Err(at(format!("answered {got:?} for claim {number} of {id:?}, the model {want}")));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Random operation sequences give exactly the model's answers.
pub async fn model(cx: &Context) -> Outcome {
    let cases = u32::try_from(cx.scale.of(100)).unwrap_or(u32::MAX);
    let handle = tokio::runtime::Handle::current();
    let cx = cx.clone();
    let found = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
        let case = std::sync::atomic::AtomicU64::new(0);
        runner
            .run(&prop::collection::vec(op_strategy(), 1..40), |ops| {
                let n = case.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let space = cx.space(&format!("sched-{n}"));
                handle
                    .block_on(check_sequence(cx.backend.schedules.as_ref(), &space, &ops))
                    .map_err(TestCaseError::fail)
            })
            .map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| Failure(format!("the property's runner died: {e}")))?;
    found.map_err(|e| Failure(format!("a sequence diverged from the model (shrunk): {e}")))?;
    Ok(u64::from(cases))
}

// ---------------------------------------------------------------------
// Property: replace by id under concurrency

/// Concurrent `schedule` calls on the same ids leave each id once, as one
/// of the writes made.
pub async fn replace_by_id(cx: &Context) -> Outcome {
    let schedules = &cx.backend.schedules;
    let space = cx.space("sched-replace");
    let (tasks, rounds, ids) = (8usize, cx.scale.count(20), 6usize);
    let mut handles = Vec::new();
    for task in 0..tasks {
        let (schedules, space) = (Arc::clone(schedules), space.clone());
        handles.push(tokio::spawn(async move {
            let mut written = Vec::new();
            for round in 0..rounds {
                for id in 0..ids {
                    let key = Key::new(&space, &format!("job-{id}"))?;
                    let due_at = 1_000 + ((task * 7 + round * 3 + id) % 50) as u64;
                    let payload = format!("{task}/{round}");
                    schedules.schedule(&key, EpochMillis(due_at), Bytes::from(payload.clone())).await?;
                    written.push((key.id().to_owned(), due_at, payload));
                }
            }
            Ok::<_, StateError>(written)
        }));
    }
    let mut writes: HashSet<(String, u64, String)> = HashSet::new();
    for handle in handles {
        let written = handle.await.map_err(|e| Failure(format!("a scheduler died: {e}")))??;
        writes.extend(written);
    }
    let listed = schedules.due(&space, EpochMillis(u64::MAX), 1000).await?;
    let mut seen = HashSet::new();
    for item in &listed {
        let id = item.key.id().to_owned();
        ensure!(seen.insert(id.clone()), "{id:?} is listed twice: a schedule added a copy instead of replacing it");
        let payload = String::from_utf8_lossy(&item.payload).into_owned();
        ensure!(
            writes.contains(&(id.clone(), item.due_at.millis(), payload.clone())),
            "{id:?} is due at {} with {payload:?}, which no schedule call wrote together",
            item.due_at
        );
    }
    ensure!(seen.len() == ids, "{} of {ids} ids are listed after the schedulers finished", seen.len());
    Ok((tasks * rounds * ids) as u64)
}

// ---------------------------------------------------------------------
// Property: exactly-once claiming

/// Concurrent claimers, with producers scheduling meanwhile: no item is
/// claimed twice while its claim holds, none is completed twice, none is
/// lost.
pub async fn exactly_once(cx: &Context) -> Outcome {
    let schedules = &cx.backend.schedules;
    let space = cx.space("sched-once");
    let (producers, per_producer, claimers) = (3usize, cx.scale.count(60), 6usize);
    let total = producers * per_producer;
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Every claim handed out, by item: more than one is a double claim (the
    // leases are an hour long, so none passes during the run).
    let claimed: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    let completed: Arc<Mutex<HashMap<String, usize>>> = Arc::default();

    let mut producing = Vec::new();
    for producer in 0..producers {
        let (schedules, space) = (Arc::clone(schedules), space.clone());
        producing.push(tokio::spawn(async move {
            for n in 0..per_producer {
                let key = Key::new(&space, &format!("item-{producer}-{n:04}"))?;
                schedules.schedule(&key, EpochMillis(n as u64), Bytes::from_static(b"work")).await?;
                if n % 8 == 0 {
                    tokio::task::yield_now().await;
                }
            }
            Ok::<_, StateError>(())
        }));
    }
    let mut claiming = Vec::new();
    for _ in 0..claimers {
        let (schedules, space, done) = (Arc::clone(schedules), space.clone(), Arc::clone(&done));
        let (claimed, completed) = (Arc::clone(&claimed), Arc::clone(&completed));
        claiming.push(tokio::spawn(async move {
            loop {
                let finished = done.load(std::sync::atomic::Ordering::Acquire);
                let claims = schedules.claim(&space, EpochMillis(u64::MAX), 4, HOUR).await?;
                if claims.is_empty() {
                    if finished {
                        return Ok::<_, StateError>(());
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                for claim in claims {
                    *claimed.lock().entry(claim.key().id().to_owned()).or_default() += 1;
                    schedules.complete(&claim).await?;
                    *completed.lock().entry(claim.key().id().to_owned()).or_default() += 1;
                }
            }
        }));
    }
    for handle in producing {
        handle.await.map_err(|e| Failure(format!("a producer died: {e}")))??;
    }
    done.store(true, std::sync::atomic::Ordering::Release);
    for handle in claiming {
        match handle.await.map_err(|e| Failure(format!("a claimer died: {e}")))? {
            Ok(()) => {}
            Err(StateError::ClaimLost { space: _, id }) => {
                return Err(Failure(format!(
                    "completing a fresh claim of {id:?} answered ClaimLost: someone else held or finished it"
                )));
            }
            Err(e) => return Err(e.into()),
        }
    }
    if let Some((id, times)) = claimed.lock().iter().find(|(_, times)| **times > 1) {
        return Err(Failure(format!("{id:?} was handed to {times} claims while the first one held it")));
    }
    let completed = completed.lock().len();
    ensure!(completed == total, "{completed} of {total} items were completed; the rest were lost (or never claimed)");
    let left = schedules.due(&space, EpochMillis(u64::MAX), 10).await?;
    ensure!(
        left.is_empty(),
        "completed items are still due: {:?}",
        left.iter().map(|i| i.key.id()).collect::<Vec<_>>()
    );
    Ok(total as u64)
}

// ---------------------------------------------------------------------
// Property: claim expiry

/// A claim whose lease passed gives its item back, and can neither
/// complete nor release; one that holds cannot be had by anyone else.
pub async fn claim_expiry(cx: &Context) -> Outcome {
    let schedules = &cx.backend.schedules;
    let space = cx.space("sched-expiry");
    let lease = Duration::from_millis(400);
    let rounds = cx.scale.count(3).max(1);
    for round in 0..rounds {
        let key = Key::new(&space, &format!("timer-{round}"))?;
        schedules.schedule(&key, EpochMillis(10), Bytes::from_static(b"fire")).await?;
        let started = Instant::now();
        let mut first = schedules.claim(&space, EpochMillis(20), 10, lease).await?;
        ensure!(first.len() == 1, "the one due item was claimed {} times", first.len());
        let first = first.remove(0);
        ensure!(
            first.valid_until() <= Instant::now() + lease,
            "the claim's local deadline is later than its lease counted from after the claim returned"
        );
        // While the claim holds, nobody else sees the item.
        if Instant::now() + Duration::from_millis(100) < started + lease {
            let other = schedules.claim(&space, EpochMillis(20), 10, lease).await?;
            let due = schedules.due(&space, EpochMillis(20), 10).await?;
            // Judged only if both answered while the claim held (a loaded
            // machine may take longer); a later claim took the item
            // rightly, and gives it back.
            if Instant::now() < started + lease {
                ensure!(other.is_empty(), "an item was claimed again while its first claim held");
                ensure!(due.is_empty(), "a claimed item is listed as due");
            }
            for late in &other {
                schedules.release_claim(late).await?;
            }
        }
        // After the lease (and the clock tolerance), it is back, and the
        // stale claim can no longer finish it.
        tokio::time::sleep_until(started + lease + cx.clock_tolerance()).await;
        for (what, stale) in
            [("complete", schedules.complete(&first).await), ("release", schedules.release_claim(&first).await)]
        {
            ensure!(
                matches!(stale, Err(StateError::ClaimLost { .. })),
                "{what} of a claim whose lease passed answered {stale:?}, not ClaimLost"
            );
        }
        // Asked at exactly its due time: an item is due at `now` itself,
        // whether or not a claim on it ran out.
        let due = schedules.due(&space, EpochMillis(10), 10).await?;
        ensure!(
            due.len() == 1,
            "{} items are due at their due time after the claim's lease passed, not the one claimed",
            due.len()
        );
        let mut second = schedules.claim(&space, EpochMillis(10), 10, HOUR).await?;
        ensure!(second.len() == 1, "the item whose claim expired was claimed {} times", second.len());
        let second = second.remove(0);
        for (what, answer) in
            [("complete", schedules.complete(&first).await), ("release", schedules.release_claim(&first).await)]
        {
            ensure!(
                matches!(answer, Err(StateError::ClaimLost { .. })),
                "{what} of a claim whose lease passed, its item claimed again, answered {answer:?}, not ClaimLost"
            );
        }
        schedules.complete(&second).await?;
        let left = schedules.due(&space, EpochMillis(u64::MAX), 10).await?;
        ensure!(left.is_empty(), "the completed item is still due");
    }
    Ok(rounds as u64)
}

// ---------------------------------------------------------------------
// Property: cost proportional to the answer

/// How many times longer `due` may take from the large schedule.
const SCHEDULE_COST_BOUND: f64 = 5.0;
/// Items due, in both schedules: what `due` returns.
const DUE_NOW: usize = 10;
/// Items in the large schedule that `due` must not walk: due later, and
/// claimed (at the default scale; more at larger ones).
const NOT_DUE: usize = 2_000;
const CLAIMED: usize = 500;

/// Fills `space` with [`DUE_NOW`] items due at 1..=10, `later` items due far
/// later, and `claimed` due items then claimed for an hour.
async fn fill_schedule(
    schedules: &Arc<dyn ScheduleService>,
    space: &str,
    later: usize,
    claimed: usize,
) -> Result<(), Failure> {
    let writers: Vec<_> = (0..8)
        .map(|writer| {
            let (schedules, space) = (Arc::clone(schedules), space.to_owned());
            tokio::spawn(async move {
                for n in (writer..later + claimed).step_by(8) {
                    let (id, due_at) = if n < later {
                        (format!("later-{n:06}"), 1_000_000 + n as u64)
                    } else {
                        (format!("held-{n:06}"), 0)
                    };
                    schedules.schedule(&Key::new(&space, &id)?, EpochMillis(due_at), Bytes::from_static(b"x")).await?;
                }
                Ok::<(), StateError>(())
            })
        })
        .collect();
    for writer in writers {
        writer.await.map_err(|e| Failure(format!("a scheduler died: {e}")))??;
    }
    // Claim the items due at 0 (the held ones), a page at a time.
    let mut held = 0;
    while held < claimed {
        let claims = schedules.claim(space, EpochMillis(0), (claimed - held).min(1000), HOUR).await?;
        ensure!(!claims.is_empty(), "only {held} of {claimed} items due at 0 could be claimed");
        held += claims.len();
    }
    for n in 0..DUE_NOW {
        let key = Key::new(space, &format!("now-{n:02}"))?;
        schedules.schedule(&key, EpochMillis(1 + n as u64), Bytes::from_static(b"x")).await?;
    }
    Ok(())
}

async fn time_due(schedules: &dyn ScheduleService, space: &str) -> Result<Duration, Failure> {
    let started = Instant::now();
    for _ in 0..4 {
        let due = schedules.due(space, EpochMillis(100), DUE_NOW).await?;
        ensure!(due.len() == DUE_NOW, "due listed {} items, not the {DUE_NOW} due", due.len());
    }
    Ok(started.elapsed())
}

/// `due` from a schedule with thousands of items not due or claimed costs
/// about what it costs from a small one; and a claim from it returns the
/// due items past the claimed ones.
pub async fn cost(cx: &Context) -> Outcome {
    let schedules = &cx.backend.schedules;
    let (small, large) = (cx.space("sched-cost-small"), cx.space("sched-cost-large"));
    let (later, claimed) = (cx.scale.count(NOT_DUE).max(NOT_DUE), cx.scale.count(CLAIMED).max(CLAIMED));
    fill_schedule(schedules, &small, 10, 10).await?;
    fill_schedule(schedules, &large, later, claimed).await?;
    let mut ratios = Vec::new();
    for _ in 0..3 {
        let (mut of_small, mut of_large) = (Vec::new(), Vec::new());
        for _ in 0..9 {
            of_small.push(time_due(schedules.as_ref(), &small).await?);
            of_large.push(time_due(schedules.as_ref(), &large).await?);
        }
        of_small.sort_unstable();
        of_large.sort_unstable();
        let (of_small, of_large) = (of_small[4], of_large[4]);
        let ratio = of_large.as_secs_f64() / of_small.as_secs_f64().max(f64::MIN_POSITIVE);
        ratios.push(format!("{ratio:.1}x ({of_large:?} vs {of_small:?})"));
        if ratio <= SCHEDULE_COST_BOUND {
            return claim_past_claimed(schedules.as_ref(), &large, claimed).await;
        }
    }
    Err(Failure(format!(
        "due of {DUE_NOW} items took over {SCHEDULE_COST_BOUND}x as long from a schedule also holding {later} items \
         due later and {claimed} claimed as from one holding 20, in each of 3 measurements: {}; due must cost what \
         it returns, not what the schedule holds",
        ratios.join(", ")
    )))
}

/// A claim returns the due items however many claimed ones come before
/// them in due order (a claim that looked only at the first items due, and
/// then skipped the claimed ones, would return none).
async fn claim_past_claimed(schedules: &dyn ScheduleService, space: &str, claimed: usize) -> Outcome {
    let claims = schedules.claim(space, EpochMillis(100), DUE_NOW, HOUR).await?;
    ensure!(
        claims.len() == DUE_NOW,
        "claim of up to {DUE_NOW} items returned {}, where {DUE_NOW} are due and waiting behind {claimed} claimed \
         items due earlier",
        claims.len()
    );
    Ok(1)
}
