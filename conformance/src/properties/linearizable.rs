//! Property 2: concurrent histories of single-key operations are
//! linearizable, in several operation mixes, each its own property.
//!
//! Several clients run random operations of one mix on a few keys at once;
//! the recorded history is checked per key by the Wing–Gong checker
//! against the statekit model, expiry included (see
//! [`crate::history_model`]). Every written value is unique, which makes
//! stale or lost writes visible, and conditional writes use the version
//! the clients saw last, so they often succeed. A failing history is saved
//! as JSON lines so that `statekit lincheck` can replay it, with an HTML
//! view of it beside.
//!
//! Each mix is a property of its own because a defect is easiest to see
//! where nothing else is going on: a store whose counters are wrong would
//! otherwise hide a non-atomic `set` behind its first counter failure.
//! Mixes without TTLs run flat out. Mixes with TTLs pace their clients
//! over a round of a few TTLs, so that keys expire and are recreated while
//! other clients read and write them, and send many of them to a key just
//! before or just after its expected deadline: renewals there can straddle
//! it, reads and takeovers can land between another operation's read and
//! write, which is where a store that decides expiry in one step and
//! writes in another goes wrong.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use state_api::{Condition, DeleteCondition, Lease, LockService, StateError, Version};
use tokio::time::{Instant, sleep, sleep_until};

use crate::history_model::{Recorder, StatekitModel};
use crate::kit::{Context, Failure, Outcome as PropertyOutcome};
use crate::model::{ErrorKind, KeyName, Op, Outcome};
use lincheck::{CheckOptions, CheckResult, History, check, formats::write_jsonl};

/// Property 2a: `get`, `set` and `compare_and_swap`, no TTLs.
pub async fn get_set_cas(cx: &Context) -> PropertyOutcome {
    run(cx, &GET_SET_CAS).await
}

/// Property 2b: `get`, `set` and both kinds of `delete`, no TTLs.
pub async fn set_delete(cx: &Context) -> PropertyOutcome {
    run(cx, &SET_DELETE).await
}

/// Property 2c: counters in fixed windows that expire during the run.
pub async fn counters(cx: &Context) -> PropertyOutcome {
    run(cx, &COUNTERS).await
}

/// Property 2d: `check_and_set` with TTLs, among reads, writes, CAS and
/// deletes, on keys that expire during the run.
pub async fn expiry(cx: &Context) -> PropertyOutcome {
    run(cx, &EXPIRY).await
}

/// Property 2e: fenced writes, in one history with the acquisitions and
/// releases of the lock that fences them and with plain reads and writes
/// of the same keys: each client acquires and releases the lock of a
/// key, writes fenced by its lease (and by leases it released), and reads
/// and writes without a fence.
pub async fn fenced(cx: &Context) -> PropertyOutcome {
    let model = StatekitModel::for_backend(&cx.capabilities);
    let ops_per_client = cx.scale.of(40).min(200);
    let tally = Mutex::new(FencedTally::default());
    let record = |space| async {
        let history = fenced_round(cx, space, ops_per_client).await?;
        tally.lock().add(&history);
        Ok(history)
    };
    let rounds = check_rounds(cx, "fenced", model, record).await?;
    let FencedTally { grants, applied, refused } = *tally.lock();
    cx.note(format!("{applied} fenced writes applied and {refused} refused, in {grants} tenures"));
    // Histories without both kinds would check nothing about the fence.
    if applied == 0 || refused == 0 {
        return Err(Failure(format!("the fenced rounds exercised too little: {applied} applied, {refused} refused")));
    }
    Ok(rounds)
}

/// What the fenced rounds exercised.
#[derive(Debug, Default, Clone, Copy)]
struct FencedTally {
    grants: u64,
    applied: u64,
    refused: u64,
}

impl FencedTally {
    fn add(&mut self, history: &History<Op, Outcome>) {
        for operation in history.operations() {
            match (&operation.input, operation.output()) {
                (Op::Acquire { .. }, Some(Outcome::Acquired(_))) => self.grants += 1,
                (Op::Fenced { .. }, Some(Outcome::Failed(ErrorKind::LockLost))) => self.refused += 1,
                (Op::Fenced { .. }, Some(Outcome::Failed(_)) | None) => {}
                (Op::Fenced { .. }, Some(_)) => self.applied += 1,
                _ => {}
            }
        }
    }
}

/// A workload: which operations the clients run.
struct Mix {
    /// Names the mix's spaces and saved histories.
    label: &'static str,
    /// Whether the mix writes TTLs meant to expire during a round.
    expiring: bool,
    /// The keys of a round.
    keys: &'static [&'static str],
    /// How many clients share them.
    clients: u64,
    /// One random operation.
    op: fn(Draw) -> Op,
}

/// The ingredients of one operation: a key, a value no other write uses,
/// a TTL, the version clients last saw on the key (1 if none), and when
/// the client runs it.
struct Draw {
    key: KeyName,
    value: Bytes,
    ttl_ms: u64,
    version: u64,
    when: When,
}

/// When an operation runs, relative to its key's expected deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum When {
    /// Whenever: the key is not expected to expire soon.
    Anytime,
    /// Just before the deadline, as a lease holder renews.
    JustBefore,
    /// Just after it, as a contender takes over or looks.
    JustAfter,
}

const GET_SET_CAS: Mix = Mix {
    label: "get-set-cas",
    expiring: false,
    keys: &["a", "b"],
    clients: 6,
    op: |d| match fastrand::u8(..10) {
        0..=2 => Op::Get { key: d.key },
        3..=5 => Op::Put { key: d.key, value: d.value, condition: Condition::Always, ttl_ms: None },
        _ => Op::Put { key: d.key, value: d.value, condition: Condition::IfVersion(Version(d.version)), ttl_ms: None },
    },
};

const SET_DELETE: Mix = Mix {
    label: "set-delete",
    expiring: false,
    keys: &["a", "b"],
    clients: 6,
    op: |d| match fastrand::u8(..10) {
        0..=2 => Op::Get { key: d.key },
        3..=5 => Op::Put { key: d.key, value: d.value, condition: Condition::Always, ttl_ms: None },
        6 | 7 => Op::Delete { key: d.key, condition: DeleteCondition::Always },
        _ => Op::Delete { key: d.key, condition: DeleteCondition::IfVersion(Version(d.version)) },
    },
};

const COUNTERS: Mix = Mix {
    label: "counters",
    expiring: true,
    keys: &["a", "b", "c"],
    clients: 9,
    op: |d| match fastrand::u8(..10) {
        0..=5 => Op::Increment { key: d.key, delta: fastrand::i64(1..=3), ttl_ms: Some(d.ttl_ms) },
        // Ignored on a live counter; creates one that never expires.
        6 => Op::Increment { key: d.key, delta: 1, ttl_ms: None },
        7 | 8 => Op::Get { key: d.key },
        _ => Op::Delete { key: d.key, condition: DeleteCondition::Always },
    },
};

const EXPIRY: Mix = Mix {
    label: "expiry",
    expiring: true,
    keys: &["a", "b", "c"],
    clients: 9,
    op: |d| {
        let ttl_ms = Some(d.ttl_ms);
        // Around a deadline, as around a lease: renew before, look or
        // take over after.
        let pick = match d.when {
            When::Anytime => fastrand::u8(..20),
            When::JustBefore => 15,
            When::JustAfter => [9, 0][fastrand::usize(..2)],
        };
        match pick {
            // Most writes are set-if-absent: rejected while the key lives,
            // so it lives until its deadline, where the contenders meet.
            0..=8 => Op::Put { key: d.key, value: d.value, condition: Condition::IfAbsent, ttl_ms },
            9..=14 => Op::Get { key: d.key },
            // Renewals.
            15 | 16 => {
                Op::Put { key: d.key, value: d.value, condition: Condition::IfVersion(Version(d.version)), ttl_ms }
            }
            17 => Op::Put { key: d.key, value: d.value, condition: Condition::Always, ttl_ms },
            // A write without TTL clears it: the key lives until deleted.
            18 => Op::Put { key: d.key, value: d.value, condition: Condition::Always, ttl_ms: None },
            _ => Op::Delete { key: d.key, condition: DeleteCondition::Always },
        }
    },
};

/// TTLs and pacing of the expiring mixes, from the model's clock tolerance:
/// TTLs long against an operation's latency and the tolerance (so most
/// operations are clearly before or after a deadline) and short against a
/// round (so keys expire several times in one).
#[derive(Debug, Clone, Copy)]
struct Timing {
    shortest_ttl_ms: u64,
    longest_ttl_ms: u64,
    round: Duration,
}

impl Timing {
    fn new(tolerance: Duration) -> Timing {
        let tolerance_ms = u64::try_from(tolerance.as_millis()).unwrap_or(u64::MAX);
        let shortest_ttl_ms = tolerance_ms.saturating_mul(2).max(20);
        let longest_ttl_ms = tolerance_ms.saturating_mul(5).max(60);
        let round = Duration::from_millis(longest_ttl_ms.saturating_mul(5).max(300));
        Timing { shortest_ttl_ms, longest_ttl_ms, round }
    }

    fn ttl_ms(&self) -> u64 {
        fastrand::u64(self.shortest_ttl_ms..=self.longest_ttl_ms)
    }

    /// Waits before a client's next operation and picks its key. When a
    /// key is expected to expire soon, often waits until just before or
    /// just after that instant, where expiry races happen, and picks that
    /// key; otherwise pauses at random, spreading the client's operations
    /// over the round, and picks any key.
    async fn next_key(
        &self,
        keys: &'static [&'static str],
        board: &Board,
        ops_per_client: u64,
    ) -> (&'static str, When) {
        let now = Instant::now();
        let horizon = now + Duration::from_millis(self.shortest_ttl_ms);
        let soonest = board
            .lock()
            .iter()
            .filter_map(|(key, known)| known.deadline.filter(|at| now < *at && *at <= horizon).map(|at| (*key, at)))
            .min_by_key(|(_, at)| *at);
        if let Some((key, at)) = soonest.filter(|_| fastrand::u8(..10) < 7) {
            // Timers fire up to a millisecond late: aim 1 to 3 ms before
            // the deadline to run up to 2 ms before it, close enough for a
            // read and a write to straddle it; after it, aim within 3 ms.
            let (when, target) = if fastrand::u8(..3) == 0 {
                (When::JustBefore, at.checked_sub(Duration::from_micros(fastrand::u64(1_000..=3_000))).unwrap_or(at))
            } else {
                (When::JustAfter, at + Duration::from_micros(fastrand::u64(..=3_000)))
            };
            sleep_until(target).await;
            return (key, when);
        }
        let most = self.round.saturating_mul(2) / u32::try_from(ops_per_client.max(1)).unwrap_or(u32::MAX);
        sleep(most.mul_f64(fastrand::f64())).await;
        (keys[fastrand::usize(..keys.len())], When::Anytime)
    }
}

/// What the clients of a round last learnt about each key, shared among
/// them: its version, which conditional writes use, and when it is
/// expected to expire, which the expiring mixes pace their clients by.
type Board = Mutex<HashMap<&'static str, Known>>;

#[derive(Debug, Default, Clone, Copy)]
struct Known {
    version: Option<u64>,
    deadline: Option<Instant>,
}

impl Known {
    fn learn(&mut self, op: &Op, outcome: &Outcome) {
        if let Some(version) = seen_version(outcome) {
            self.version = version;
        }
        if let Some(expires) = expires_in(op, outcome) {
            self.deadline = expires.map(|ttl| Instant::now() + ttl);
        }
    }
}

async fn run(cx: &Context, mix: &'static Mix) -> PropertyOutcome {
    let model = StatekitModel::for_backend(&cx.capabilities);
    let timing = Timing::new(model.clock_tolerance());
    let ops_per_client = cx.scale.of(40).min(200);
    check_rounds(cx, mix.label, model, |space| record_round(cx, mix, space, ops_per_client, timing)).await
}

/// Records `cx.scale.of(8)` rounds with `record`, each on a space of its
/// own, and checks each history against `model`.
async fn check_rounds<F, R>(cx: &Context, label: &'static str, model: StatekitModel, record: F) -> PropertyOutcome
where
    F: Fn(String) -> R,
    R: Future<Output = Result<History<Op, Outcome>, Failure>>,
{
    let rounds = cx.scale.of(8);
    for round in 0..rounds {
        let history = record(cx.space(&format!("lin-{label}{round}"))).await?;
        let verdict = tokio::task::spawn_blocking(move || {
            let result = check(&model, &history, &CheckOptions::default());
            (result, history)
        })
        .await
        .map_err(|e| Failure(format!("the checker died: {e}")))?;
        match verdict {
            (CheckResult::Linearizable, _) => {}
            (CheckResult::Unknown(why), _) => return Err(Failure(format!("round {round}: checker gave up: {why}"))),
            (CheckResult::NotLinearizable(explanation), history) => {
                let mut saved = save(&model, &history, &explanation, round, label);
                if model != StatekitModel::default() {
                    // The replay checks against the default model.
                    saved.push_str(&format!(" (this check used {model:?})"));
                }
                return Err(Failure(format!("round {round}: {explanation}\n{saved}")));
            }
        }
    }
    Ok(rounds)
}

/// Runs one round of `mix` on `space` and returns its history. A mix
/// without TTLs runs `ops_per_client` operations per client as fast as
/// the store answers; an expiring one paces them over the round's time.
async fn record_round(
    cx: &Context,
    mix: &'static Mix,
    space: String,
    ops_per_client: u64,
    timing: Timing,
) -> Result<History<Op, Outcome>, Failure> {
    let recorder = Recorder::new();
    let ends = Instant::now() + timing.round;
    let board: Arc<Board> = Arc::default();
    let tasks: Vec<_> = (0..mix.clients)
        .map(|client| {
            let (recorder, store, space) = (recorder.clone(), Arc::clone(&cx.backend.store), space.to_owned());
            let board = Arc::clone(&board);
            tokio::spawn(async move {
                for n in 0..ops_per_client {
                    let (id, when) = if mix.expiring {
                        let next = timing.next_key(mix.keys, &board, ops_per_client).await;
                        if Instant::now() >= ends {
                            break;
                        }
                        next
                    } else {
                        (mix.keys[fastrand::usize(..mix.keys.len())], When::Anytime)
                    };
                    let draw = Draw {
                        key: KeyName::new(space.as_str(), id),
                        value: Bytes::from(format!("c{client}-{n}")),
                        ttl_ms: timing.ttl_ms(),
                        version: board.lock().get(id).and_then(|known| known.version).unwrap_or(1),
                        when,
                    };
                    let op = (mix.op)(draw);
                    let outcome = recorder.run(client, store.as_ref(), op.clone()).await;
                    board.lock().entry(id).or_default().learn(&op, &outcome);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| Failure(format!("a client task died: {e}")))?;
    }
    Ok(recorder.history())
}

/// The keys of a fenced round, each fenced by a lock of its own.
const FENCED_KEYS: &[&str] = &["a", "b"];

/// How many clients share them.
const FENCED_CLIENTS: u64 = 6;

/// The leases of a fenced round: far longer than a round, so that only
/// releases free a lock, as the model of these histories assumes.
const FENCED_LEASE: Duration = Duration::from_secs(120);

/// One round of fenced writes. Each client, on a random key of the round:
/// while it holds the key's lock, writes fenced with its token (mostly),
/// reads, or releases the lock; otherwise it tries to acquire the lock,
/// writes fenced with a token of a lease it released (which must be
/// refused), or reads and writes without a fence; at the end it releases
/// what it holds and writes once fenced by each lease it released, which
/// must be refused. Everything, the lock
/// operations included, goes into the key's history: the checker then
/// holds every fenced write to "applied as the plain write if the lease
/// holds the lock at that instant, `LockLost` and no change otherwise",
/// among all the other operations on the key.
async fn fenced_round(cx: &Context, space: String, ops_per_client: u64) -> Result<History<Op, Outcome>, Failure> {
    let recorder = Recorder::new();
    let board: Arc<Board> = Arc::default();
    let ttl_ms = u64::try_from(FENCED_LEASE.as_millis()).unwrap_or(u64::MAX);
    let tasks: Vec<_> = (0..FENCED_CLIENTS)
        .map(|client| {
            let (recorder, board, space) = (recorder.clone(), Arc::clone(&board), space.clone());
            let (store, locks) = (Arc::clone(&cx.backend.store), Arc::clone(&cx.backend.locks));
            tokio::spawn(async move {
                let mut held: HashMap<&'static str, Lease> = HashMap::new();
                let mut released: HashMap<&'static str, u64> = HashMap::new();
                for n in 0..ops_per_client {
                    let id = FENCED_KEYS[fastrand::usize(..FENCED_KEYS.len())];
                    let key = KeyName::new(space.as_str(), id);
                    let lock = format!("{space}-{id}");
                    let version = board.lock().get(id).and_then(|known| known.version).unwrap_or(1);
                    let write = random_write(key.clone(), Bytes::from(format!("c{client}-{n}")), version);
                    let fenced = |token: u64| Op::Fenced { lock: lock.clone(), token, op: Box::new(write.clone()) };
                    let (op, outcome) = match (held.get(id), fastrand::u8(..10)) {
                        (Some(lease), 0..=5) => {
                            let op = fenced(lease.token().0);
                            (op.clone(), recorder.run(client, store.as_ref(), op).await)
                        }
                        (Some(_), 6) | (None, 8 | 9) => {
                            let op = Op::Get { key };
                            (op.clone(), recorder.run(client, store.as_ref(), op).await)
                        }
                        (Some(_), _) => {
                            let Some(lease) = held.remove(id) else { continue };
                            let token = lease.token().0;
                            released.insert(id, token);
                            let op = Op::Release { key, lock, token };
                            (op.clone(), recorder.observe(client, op, release(locks.as_ref(), &lease)).await)
                        }
                        (None, 0..=3) => {
                            let op = Op::Acquire { key, lock: lock.clone(), ttl_ms };
                            let mut granted = None;
                            let outcome = recorder
                                .observe(client, op.clone(), async {
                                    match locks.try_acquire(&lock, FENCED_LEASE).await {
                                        Ok(Some(lease)) => {
                                            let token = lease.token().0;
                                            granted = Some(lease);
                                            Outcome::Acquired(token)
                                        }
                                        Ok(None) => Outcome::Busy,
                                        Err(error) => Outcome::Failed(ErrorKind::of(&error)),
                                    }
                                })
                                .await;
                            if let Some(lease) = granted {
                                held.insert(id, lease);
                            }
                            (op, outcome)
                        }
                        (None, 4 | 5) if released.contains_key(id) => {
                            let op = fenced(released[id]);
                            (op.clone(), recorder.run(client, store.as_ref(), op).await)
                        }
                        (None, _) => (write.clone(), recorder.run(client, store.as_ref(), write.clone()).await),
                    };
                    let learnt = match &op {
                        Op::Fenced { op, .. } => op.as_ref(),
                        op => op,
                    };
                    board.lock().entry(id).or_default().learn(learnt, &outcome);
                }
                for (id, lease) in held {
                    let op = Op::Release {
                        key: KeyName::new(space.as_str(), id),
                        lock: format!("{space}-{id}"),
                        token: lease.token().0,
                    };
                    recorder.observe(client, op, release(locks.as_ref(), &lease)).await;
                    released.insert(id, lease.token().0);
                }
                // Last, a write fenced by each lease this client released:
                // however short the round, every tenure it had ends with
                // one write the store must refuse.
                for (id, token) in released {
                    let key = KeyName::new(space.as_str(), id);
                    let write = Op::Put {
                        key,
                        value: Bytes::from(format!("c{client}-stale")),
                        condition: Condition::Always,
                        ttl_ms: None,
                    };
                    let op = Op::Fenced { lock: format!("{space}-{id}"), token, op: Box::new(write) };
                    recorder.run(client, store.as_ref(), op).await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.map_err(|e| Failure(format!("a client task died: {e}")))?;
    }
    Ok(recorder.history())
}

/// A random write of a fenced round, fenced or not.
fn random_write(key: KeyName, value: Bytes, version: u64) -> Op {
    match fastrand::u8(..10) {
        0..=2 => Op::Put { key, value, condition: Condition::Always, ttl_ms: None },
        3 | 4 => Op::Put { key, value, condition: Condition::IfVersion(Version(version)), ttl_ms: None },
        5 => Op::Put { key, value, condition: Condition::IfAbsent, ttl_ms: None },
        6 | 7 => Op::Increment { key, delta: fastrand::i64(1..=3), ttl_ms: None },
        8 => Op::Delete { key, condition: DeleteCondition::Always },
        _ => Op::Delete { key, condition: DeleteCondition::IfVersion(Version(version)) },
    }
}

/// Releases `lease` and reports it as the model does.
async fn release(locks: &dyn LockService, lease: &Lease) -> Outcome {
    match locks.release(lease).await {
        Ok(()) => Outcome::Released(true),
        Err(StateError::LockLost { .. }) => Outcome::Released(false),
        Err(error) => Outcome::Failed(ErrorKind::of(&error)),
    }
}

/// What an outcome says about the key's version: `Some(Some(v))` live at
/// `v`, `Some(None)` absent, `None` nothing.
fn seen_version(outcome: &Outcome) -> Option<Option<u64>> {
    match outcome {
        Outcome::Got(entry) | Outcome::Rejected(entry) => Some(entry.as_ref().map(|e| e.version)),
        Outcome::Written(version) | Outcome::Counted { version, .. } => Some(Some(*version)),
        Outcome::Deleted(true) => Some(None),
        Outcome::Deleted(false)
        | Outcome::Scanned(_)
        | Outcome::Failed(_)
        | Outcome::Acquired(_)
        | Outcome::Busy
        | Outcome::Released(_) => None,
    }
}

/// What `op` and its outcome say about when the key expires:
/// `Some(Some(d))` in about `d`, `Some(None)` never (or it is absent),
/// `None` nothing.
fn expires_in(op: &Op, outcome: &Outcome) -> Option<Option<Duration>> {
    let ms = |ttl_ms: &Option<u64>| ttl_ms.map(Duration::from_millis);
    match (op, outcome) {
        (Op::Put { ttl_ms, .. }, Outcome::Written(_)) => Some(ms(ttl_ms)),
        (Op::Increment { ttl_ms, .. }, Outcome::Counted { version: 1, .. }) => Some(ms(ttl_ms)),
        (_, Outcome::Got(entry) | Outcome::Rejected(entry)) => Some(entry.as_ref().and_then(|e| ms(&e.ttl_ms))),
        (_, Outcome::Deleted(true)) => Some(None),
        _ => None,
    }
}

fn save(
    model: &StatekitModel,
    history: &lincheck::History<Op, crate::model::Outcome>,
    explanation: &lincheck::Explanation,
    round: u64,
    mix: &str,
) -> String {
    let path = std::env::temp_dir().join(format!("statekit-history-{}-{mix}-{round}.jsonl", std::process::id()));
    match std::fs::File::create(&path).map(std::io::BufWriter::new) {
        Ok(file) => match write_jsonl(file, StatekitModel::NAME, history) {
            Ok(()) => format!(
                "history saved: replay with `cargo run -p statekit-cli -- lincheck --format jsonl {}`\n{}",
                path.display(),
                match lincheck::html_view::save_beside(&path, model, history, explanation) {
                    Ok(view) => format!("HTML view: {}", view.display()),
                    Err(e) => format!("(could not write the HTML view: {e})"),
                }
            ),
            Err(e) => format!("(could not save the history: {e})"),
        },
        Err(e) => format!("(could not save the history: {e})"),
    }
}
