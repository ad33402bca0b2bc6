//! The kit under network faults (see [`crate::faults`]): with a fault
//! proxy between the backend's client and its server, playing every fault
//! kind of [`schedule`] in turn,
//!
//! - concurrent histories stay linearizable, with every operation that
//!   failed with a retryable error (or hung past the kit's bound) given to
//!   the checker as indeterminate: it may or may not have taken effect;
//! - a write whose reply alone is lost applies at most once (a client
//!   that sends it again is caught by one client's history on one key);
//! - every error is the contract's retryable `Timeout` or `Unavailable`
//!   (never a panic, never a wrong success, never a permanent error for a
//!   passing fault);
//! - after each fault heals, an operation succeeds again within
//!   [`RECOVERY_BOUND`], with no reconnect by the application.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::Bytes;
use state_api::{Backend, Condition, Durability, Key, StateError, StateStore, Version};
use tokio::time::Instant;

use crate::faults::{Fault, FaultProxy, Phase, schedule};
use crate::findings::Findings;
use crate::history_model::{Recorder, StatekitModel};
use crate::kit::{Context, Failure, Outcome as PropertyOutcome};
use crate::model::{ErrorKind, KeyName, Op, Outcome};
use lincheck::{CheckOptions, CheckResult, check};

/// How soon after a fault heals an operation must succeed again.
pub const RECOVERY_BOUND: Duration = Duration::from_secs(1);

/// The kit's bound on one operation: past it, the operation is taken as
/// hung (a failure of its own) and recorded as indeterminate.
const OPERATION_BOUND: Duration = Duration::from_secs(10);

/// Keys holding registers, and the one holding a counter.
const REGISTERS: [&str; 2] = ["a", "b"];
const COUNTER: &str = "n";

/// Clients of the linearizability workload.
const CLIENTS: u64 = 6;

/// How long the workload uses one set of keys.
const EPOCH: Duration = Duration::from_millis(250);

/// How long a client pauses after an operation failed.
const BACKOFF: Duration = Duration::from_millis(20);

fn connect_failure(error: String) -> Failure {
    Failure(error)
}

/// Concurrent get/set/CAS/increment histories stay linearizable while the
/// schedule plays, and every error is a retryable one.
pub async fn linearizable(cx: &Context) -> PropertyOutcome {
    let Some(target) = cx.faults() else {
        return Err(Failure("the fault properties ran without a fault target".to_owned()));
    };
    let (proxy, backend) = target.through_proxy().await.map_err(connect_failure)?;
    let mut findings = Findings::new();
    let rounds = cx.scale.of(1).max(1);
    for round in 0..rounds {
        let label = format!("round {round}");
        let seen = workload_during(cx, &backend, &label, &mut findings, async {
            play(&proxy, &schedule()).await;
            Ok(())
        })
        .await?;
        let stats = proxy.stats();
        cx.note(format!(
            "{label}: {seen} under {} fault phases; the proxy took {} connections and broke {}",
            schedule().iter().filter(|p| p.fault != Fault::None || p.reset).count(),
            stats.connections.load(Ordering::Relaxed),
            stats.broken.load(Ordering::Relaxed),
        ));
    }
    let lost = reply_lost_once(cx, &proxy, &backend, &mut findings).await;
    cx.note(format!(
        "writes whose reply alone was cut: {lost} of {LOST_REPLY_PROBES} probes saw their write fail (a probe \
         whose cut met another reply misses)"
    ));
    findings.outcome()
}

/// Probes of [`reply_lost_once`], alternately an increment and an
/// unconditional put: the cut may meet another reply of the backend's (a
/// health check, a script load), which only makes a probe miss.
const LOST_REPLY_PROBES: usize = 4;

/// A write whose reply is lost is applied at most once. One client, one
/// key, nothing else running: the proxy cuts exactly one reply and heals
/// as soon as it has, and a read after that must agree with what the write
/// answered (or, if it failed, with it having applied once or not at all).
/// A client that sends the write again after the lost reply, and has the
/// second reply arrive, shows a counter at 2 for one increment, or a
/// version two past the read before one put: no other client's operation
/// can account for it, as it could in the busy workload. Returns how many
/// probes saw their write fail.
async fn reply_lost_once(cx: &Context, proxy: &FaultProxy, backend: &Backend, findings: &mut Findings) -> usize {
    let model = StatekitModel::for_backend(&cx.capabilities);
    let space = cx.space("faults-lostreply");
    let store = backend.store.as_ref();
    let mut failed = 0;
    for probe in 0..LOST_REPLY_PROBES {
        let key = KeyName::new(&space, format!("k-{probe}"));
        let (read, write, what) = if probe % 2 == 0 {
            let increment = |delta| Op::Increment { key: key.clone(), delta, ttl_ms: None };
            (increment(0), increment(1), "an increment")
        } else {
            let put = Op::Put {
                key: key.clone(),
                value: Bytes::from_static(b"once"),
                condition: Condition::Always,
                ttl_ms: None,
            };
            (Op::Get { key: key.clone() }, put, "a put")
        };
        let recorder = Recorder::new();
        // A warm connection, so the next reply on it is the write's.
        read_until_healed(&recorder, store, read.clone()).await;
        let before = proxy.stats().broken.load(Ordering::Relaxed);
        proxy.set(Fault::CutReply { after: 3 });
        let heal = async {
            let give_up = Instant::now() + OPERATION_BOUND;
            while proxy.stats().broken.load(Ordering::Relaxed) == before && Instant::now() < give_up {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            proxy.set(Fault::None);
        };
        let (outcome, ()) = tokio::join!(recorder.run_bounded(0, store, write, OPERATION_BOUND), heal);
        match &outcome {
            Some(Outcome::Failed(kind)) => {
                failed += 1;
                findings.check(*kind == ErrorKind::Indeterminate, || {
                    format!("lost-reply probe {probe}: {what} failed with {kind:?}, not Timeout or Unavailable")
                });
            }
            None => {
                failed += 1;
                findings
                    .fail(format!("lost-reply probe {probe}: {what} hung past the kit's bound of {OPERATION_BOUND:?}"));
            }
            Some(_) => {}
        }
        read_until_healed(&recorder, store, read).await;
        let history = recorder.history();
        let checked = tokio::task::spawn_blocking(move || check(&model, &history, &CheckOptions::default())).await;
        match checked {
            Ok(CheckResult::Linearizable) => {}
            Ok(CheckResult::NotLinearizable(explanation)) => findings.fail(format!(
                "lost-reply probe {probe}: {what}, its reply cut once, and the reads around it do not agree \
                 with it having applied at most once:\n{explanation}"
            )),
            Ok(CheckResult::Unknown(why)) => {
                findings.fail(format!("lost-reply probe {probe}: the checker gave up: {why}"))
            }
            Err(e) => findings.fail(format!("lost-reply probe {probe}: the checker died: {e}")),
        }
    }
    failed
}

/// Runs `op` (a read) until it succeeds, for a few recovery bounds: every
/// try is in the history, the failed ones as indeterminate.
async fn read_until_healed(recorder: &Recorder, store: &dyn StateStore, op: Op) {
    let give_up = Instant::now() + RECOVERY_BOUND * 5;
    while let Some(Outcome::Failed(_)) | None = recorder.run_bounded(0, store, op.clone(), OPERATION_BOUND).await {
        if Instant::now() >= give_up {
            return;
        }
        tokio::time::sleep(BACKOFF).await;
    }
}

/// Runs the linearizability workload on `backend` while `faults` plays,
/// checks the history, records what fails in `findings`, and describes
/// what ran.
async fn workload_during(
    cx: &Context,
    backend: &state_api::Backend,
    label: &str,
    findings: &mut Findings,
    faults: impl std::future::Future<Output = Result<(), String>>,
) -> Result<String, Failure> {
    let model = StatekitModel::for_backend(&cx.capabilities);
    let space = cx.space(&format!("faults-{}", label.replace(' ', "")));
    let recorder = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (recorder, store, space, stop) =
                (recorder.clone(), Arc::clone(&backend.store), space.clone(), Arc::clone(&stop));
            tokio::spawn(async move { client_loop(client, &recorder, store.as_ref(), &space, &stop).await })
        })
        .collect();
    if let Err(error) = faults.await {
        findings.fail(format!("{label}: the faults could not be injected: {error}"));
    }
    stop.store(true, Ordering::Relaxed);
    let mut ops = 0;
    for client in clients {
        match client.await {
            Ok(report) => {
                ops += report.ops;
                findings.check(report.hung == 0, || {
                    format!("{label}: {} operations hung past the kit's bound of {OPERATION_BOUND:?}", report.hung)
                });
                findings.check(report.wrong_errors.is_empty(), || {
                    format!("{label}: errors that are not Timeout or Unavailable: {:?}", report.wrong_errors)
                });
            }
            Err(e) => findings.fail(format!("{label}: a client task died: {e}")),
        }
    }
    let history = recorder.history();
    let indeterminate = history.operations().iter().filter(|o| o.output().is_none()).count();
    let checked = tokio::task::spawn_blocking(move || check(&model, &history, &CheckOptions::default()))
        .await
        .map_err(|e| Failure(format!("the checker died: {e}")))?;
    let verdict = match checked {
        CheckResult::Linearizable => {
            findings.check(ops > 0, || format!("{label}: no operation ran"));
            "linearizable"
        }
        CheckResult::Unknown(why) => {
            findings.fail(format!("{label}: the checker gave up: {why}"));
            "undecided"
        }
        CheckResult::NotLinearizable(explanation) => {
            findings.fail(format!(
                "{label}: {ops} operations ({indeterminate} indeterminate) are not linearizable:\n{explanation}"
            ));
            "NOT linearizable"
        }
    };
    Ok(format!("{ops} operations by {CLIENTS} clients ({indeterminate} indeterminate), {verdict}"))
}

/// What one client saw.
struct ClientReport {
    ops: u64,
    hung: u64,
    wrong_errors: Vec<String>,
}

async fn client_loop(
    client: u64,
    recorder: &Recorder,
    store: &dyn StateStore,
    space: &str,
    stop: &AtomicBool,
) -> ClientReport {
    let mut report = ClientReport { ops: 0, hung: 0, wrong_errors: Vec::new() };
    let mut versions: HashMap<String, u64> = HashMap::new();
    let started = Instant::now();
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // Keys change every epoch: an operation left indeterminate by a
        // fault still shows (or not) in the reads after it heals, while
        // each key's history stays small enough to check exhaustively.
        let epoch = started.elapsed().as_millis() / EPOCH.as_millis();
        let op = if fastrand::u8(..4) == 0 {
            Op::Increment { key: KeyName::new(space, format!("{COUNTER}-{epoch}")), delta: 1, ttl_ms: None }
        } else {
            let id = format!("{}-{epoch}", REGISTERS[fastrand::usize(..REGISTERS.len())]);
            let version = Version(versions.get(&id).copied().unwrap_or(1));
            let key = KeyName::new(space, id.as_str());
            let value = Bytes::from(format!("c{client}-{n}"));
            match fastrand::u8(..3) {
                0 => Op::Get { key },
                1 => Op::Put { key, value, condition: Condition::Always, ttl_ms: None },
                _ => Op::Put { key, value, condition: Condition::IfVersion(version), ttl_ms: None },
            }
        };
        report.ops += 1;
        let Some(outcome) = recorder.run_bounded(client, store, op.clone(), OPERATION_BOUND).await else {
            report.hung += 1;
            continue;
        };
        let seen = match &outcome {
            Outcome::Failed(ErrorKind::Indeterminate) => {
                // The fault at work: back off, as a client does.
                tokio::time::sleep(BACKOFF).await;
                None
            }
            Outcome::Failed(kind) => {
                report.wrong_errors.push(format!("{op:?}: {kind:?}"));
                None
            }
            Outcome::Got(Some(entry)) | Outcome::Rejected(Some(entry)) => Some(entry.version),
            Outcome::Written(version) => Some(*version),
            _ => None,
        };
        if let (Some(version), Some(key)) = (seen, op.key()) {
            versions.insert(key.id.clone(), version);
        }
    }
    report
}

/// Plays `phases` on `proxy`, then heals it.
async fn play(proxy: &FaultProxy, phases: &[Phase]) {
    for phase in phases {
        proxy.set(phase.fault);
        if phase.reset {
            proxy.reset_all();
        }
        tokio::time::sleep(phase.lasts).await;
    }
    proxy.set(Fault::None);
}

/// After each fault of the schedule heals, an operation succeeds within
/// [`RECOVERY_BOUND`]; errors during the fault are retryable ones.
pub async fn recovery(cx: &Context) -> PropertyOutcome {
    let Some(target) = cx.faults() else {
        return Err(Failure("the fault properties ran without a fault target".to_owned()));
    };
    let (proxy, backend) = target.through_proxy().await.map_err(connect_failure)?;
    let store = Arc::clone(&backend.store);
    let key = Key::new(&cx.space("faults-recovery"), "probe")?;
    store.set(&key, Bytes::from_static(b"probe"), None).await?;
    let mut findings = Findings::new();
    let mut recoveries = Vec::new();
    let mut by_kind: std::collections::BTreeMap<String, Vec<Duration>> = Default::default();
    // One round of the schedule by default, ten at large scale: enough
    // recoveries of each kind for a p99 over them all.
    let rounds = cx.scale.count(1).max(1);
    let phases = schedule().into_iter().filter(|p| p.fault != Fault::None || p.reset).collect::<Vec<_>>();
    for phase in (0..rounds).flat_map(|_| phases.iter().cloned()) {
        proxy.set(phase.fault);
        if phase.reset {
            proxy.reset_all();
        }
        // Traffic during the fault, so the client meets it.
        let during = Instant::now() + phase.lasts;
        while Instant::now() < during {
            match tokio::time::timeout(OPERATION_BOUND, store.get(&key)).await {
                Err(_) => findings.fail(format!("a get hung past {OPERATION_BOUND:?} under {}", describe(&phase))),
                Ok(Err(error)) => {
                    findings.check(error.is_retryable(), || {
                        format!("under {} a get failed with a permanent error: {error}", describe(&phase))
                    });
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Ok(Ok(found)) => {
                    findings.check(found.is_some_and(|e| e.value == "probe"), || {
                        format!("under {} a get answered something else than the probe", describe(&phase))
                    });
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
        proxy.set(Fault::None);
        let healed = Instant::now();
        let recovered = first_success(store.as_ref(), &key).await;
        let took = healed.elapsed();
        if rounds == 1 {
            cx.note(format!("recovered from {} in {:.1} ms", describe(&phase), took.as_secs_f64() * 1000.0));
        }
        recoveries.push(took);
        by_kind.entry(describe(&phase)).or_default().push(took);
        if let Err(error) = recovered {
            findings.fail(format!("after {} healed, no get succeeded: {error}", describe(&phase)));
        }
        findings.check(took <= RECOVERY_BOUND, || {
            format!(
                "after {:?} healed, the first successful get came {took:?} later (bound {RECOVERY_BOUND:?})",
                phase.fault
            )
        });
    }
    if rounds > 1 {
        for (kind, mut times) in by_kind {
            times.sort();
            cx.note(format!(
                "recovered from {kind} ({} times): p50 {:.1} ms, max {:.1} ms",
                times.len(),
                quantile(&times, 0.5).as_secs_f64() * 1000.0,
                quantile(&times, 1.0).as_secs_f64() * 1000.0
            ));
        }
    }
    recoveries.sort();
    cx.note(format!(
        "recovery after {} faults: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        recoveries.len(),
        quantile(&recoveries, 0.5).as_secs_f64() * 1000.0,
        quantile(&recoveries, 0.99).as_secs_f64() * 1000.0,
        quantile(&recoveries, 1.0).as_secs_f64() * 1000.0
    ));
    findings.outcome()
}

/// The `q` quantile of sorted `times` (nearest rank).
fn quantile(times: &[Duration], q: f64) -> Duration {
    times.get(((times.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or_default()
}

/// The phase as a reader names it.
fn describe(phase: &Phase) -> String {
    match (phase.fault, phase.reset) {
        (Fault::None, true) => "a reset of every connection".to_owned(),
        (fault, true) => format!("{fault:?} after a reset of every connection"),
        (fault, false) => format!("{fault:?}"),
    }
}

/// Retries a get until one succeeds, for at most a few recovery bounds.
async fn first_success(store: &dyn StateStore, key: &Key) -> Result<(), StateError> {
    let give_up = Instant::now() + RECOVERY_BOUND * 5;
    loop {
        match tokio::time::timeout(OPERATION_BOUND, store.get(key)).await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(error)) if Instant::now() >= give_up => return Err(error),
            Err(_) => return Err(StateError::timed_out("get after the fault healed", OPERATION_BOUND)),
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// What a client believed about one lease: it held the lock from `start`
/// (when `acquire` returned) until `end` (when it released, or its last
/// known local deadline, whichever came first).
#[derive(Debug, Clone, Copy)]
struct Belief {
    client: u64,
    start: Instant,
    end: Instant,
    token: state_api::FencingToken,
}

/// Lock holders contend through the proxy while the schedule plays, and
/// some stall past their lease before they extend or release: no two
/// holders ever believe they hold the lock at once, and fencing tokens
/// increase in the order of the tenures.
pub async fn locks(cx: &Context) -> PropertyOutcome {
    let Some(target) = cx.faults() else {
        return Err(Failure("the fault properties ran without a fault target".to_owned()));
    };
    let (proxy, backend) = target.through_proxy().await.map_err(connect_failure)?;
    let rounds = cx.scale.of(1).max(1);
    let disruption = async {
        for _ in 0..rounds {
            play(&proxy, &schedule()).await;
        }
        Ok(())
    };
    let (findings, summary) = contend(cx, &backend, "faults-lock", disruption).await?;
    cx.note(format!("{summary} under {rounds} rounds of the fault schedule"));
    findings.outcome()
}

/// Four holders contend for one lock while `disruption` runs, a quarter of
/// their tenures stalling past the lease before they extend and release.
/// Checks that no two holders believed they held the lock at once (a
/// belief runs from `acquire`'s return to the release or the last known
/// `valid_until`), that fencing tokens follow the tenures, and that every
/// error is retryable or `LockLost`. Returns the findings and a summary.
async fn contend(
    cx: &Context,
    backend: &Backend,
    label: &str,
    disruption: impl Future<Output = Result<(), String>>,
) -> Result<(Findings, String), Failure> {
    let name = cx.lock_name(label);
    let ttl = Duration::from_millis(400).max(cx.clock_tolerance() * 2);
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4u64)
        .map(|client| {
            let (locks, name, stop) = (Arc::clone(&backend.locks), name.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut beliefs = Vec::new();
                let mut wrong_errors = Vec::new();
                let mut stalled = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let mut lease = match locks.acquire(&name, ttl, Duration::from_secs(2)).await {
                        Ok(lease) => lease,
                        Err(e) if e.is_retryable() => {
                            tokio::time::sleep(BACKOFF).await;
                            continue;
                        }
                        Err(e) => {
                            wrong_errors.push(format!("acquire: {e}"));
                            continue;
                        }
                    };
                    let start = Instant::now();
                    let mut until = lease.valid_until();
                    if fastrand::u8(..4) == 0 {
                        // A stall: the holder stops for longer than its
                        // lease, then resumes and tries to extend.
                        stalled += 1;
                        tokio::time::sleep(ttl + Duration::from_millis(100)).await;
                        match locks.extend(&mut lease, ttl).await {
                            Ok(()) => until = lease.valid_until(),
                            Err(e) if e.is_retryable() || matches!(e, StateError::LockLost { .. }) => {}
                            Err(e) => wrong_errors.push(format!("extend: {e}")),
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(..30))).await;
                    let released_at = Instant::now();
                    match locks.release(&lease).await {
                        Ok(()) => {}
                        Err(e) if e.is_retryable() || matches!(e, StateError::LockLost { .. }) => {}
                        Err(e) => wrong_errors.push(format!("release: {e}")),
                    }
                    let end = released_at.min(until);
                    if end > start {
                        beliefs.push(Belief { client, start, end, token: lease.token() });
                    }
                }
                (beliefs, stalled, wrong_errors)
            })
        })
        .collect();
    let disrupted = disruption.await;
    stop.store(true, Ordering::Relaxed);
    let mut findings = Findings::new();
    if let Err(error) = disrupted {
        findings.fail(format!("the disruption failed: {error}"));
    }
    let mut beliefs = Vec::new();
    let mut stalls = 0u64;
    for client in clients {
        match client.await {
            Ok((held, stalled, wrong_errors)) => {
                beliefs.extend(held);
                stalls += stalled;
                findings.check(wrong_errors.is_empty(), || {
                    format!("errors that are not retryable or LockLost under faults: {wrong_errors:?}")
                });
            }
            Err(e) => findings.fail(format!("a lock client died: {e}")),
        }
    }
    beliefs.sort_by_key(|b| b.start);
    let summary = format!("{} tenures by 4 clients ({stalls} of them stalled past the lease)", beliefs.len());
    findings.check(beliefs.len() > 1, || format!("only {} tenures under faults", beliefs.len()));
    let overlaps: Vec<String> = beliefs
        .windows(2)
        .filter(|pair| pair[0].end > pair[1].start)
        .map(|pair| {
            format!(
                "client {} believed it held the lock (token {:?}) until {:?} after client {} acquired it (token \
                 {:?})",
                pair[0].client,
                pair[0].token,
                pair[0].end - pair[1].start,
                pair[1].client,
                pair[1].token
            )
        })
        .collect();
    findings.check(overlaps.is_empty(), || {
        format!("{} of {} tenures overlapped under faults, first: {}", overlaps.len(), beliefs.len(), overlaps[0])
    });
    if cx.capabilities.features.fencing_tokens {
        let disorder = beliefs.windows(2).find(|pair| pair[0].token >= pair[1].token);
        findings.check(disorder.is_none(), || {
            format!("fencing tokens out of tenure order under faults: {:?}", disorder.map(|p| (p[0], p[1])))
        });
    }
    Ok((findings, summary))
}

/// How long the server stays paused.
const PAUSE: Duration = Duration::from_millis(700);

/// The server is frozen (SIGSTOP) for longer than the client's timeouts
/// and then resumed while clients run: the history stays linearizable
/// (requests the paused server still held are applied late, after their
/// clients gave up on them), and an operation succeeds within
/// [`RECOVERY_BOUND`] of the resume.
pub async fn server_pause(cx: &Context) -> PropertyOutcome {
    let Some((target, control)) = cx.faults().and_then(|t| t.server().map(|c| (t, Arc::clone(c)))) else {
        return Err(Failure("the process faults ran without control over the server".to_owned()));
    };
    let (_proxy, backend) = target.through_proxy().await.map_err(connect_failure)?;
    let probe = Key::new(&cx.space("faults-pause"), "probe")?;
    backend.store.set(&probe, Bytes::from_static(b"probe"), None).await?;
    let mut findings = Findings::new();
    let mut recovered_in = None;
    for round in 0..cx.scale.of(1).max(1) {
        let store = Arc::clone(&backend.store);
        let (probe, control) = (probe.clone(), Arc::clone(&control));
        let recovered = &mut recovered_in;
        let seen = workload_during(cx, &backend, &format!("pause {round}"), &mut findings, async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            control.pause().await?;
            tokio::time::sleep(PAUSE).await;
            let resumed = control.resume().await;
            let healed = Instant::now();
            resumed?;
            let first = first_success(store.as_ref(), &probe).await;
            *recovered = Some((healed.elapsed(), first.map_err(|e| e.to_string())));
            tokio::time::sleep(Duration::from_millis(300)).await;
            Ok(())
        })
        .await?;
        match recovered_in.take() {
            Some((took, Ok(()))) => {
                cx.note(format!(
                    "pause {round}: {seen}; recovered {:.1} ms after the resume",
                    took.as_secs_f64() * 1e3
                ));
                findings.check(took <= RECOVERY_BOUND, || {
                    format!(
                        "the first successful get came {took:?} after the server resumed (bound {RECOVERY_BOUND:?})"
                    )
                });
            }
            Some((_, Err(error))) => findings.fail(format!("no get succeeded after the server resumed: {error}")),
            None => findings.fail("the pause did not complete"),
        }
    }
    if cx.capabilities.features.locks {
        // Lock holders through a pause longer than their leases: the
        // leases run out on the frozen server's clock, and no two holders
        // may believe they hold the lock at once.
        let disruption = async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            control.pause().await?;
            tokio::time::sleep(PAUSE).await;
            control.resume().await?;
            tokio::time::sleep(Duration::from_millis(600)).await;
            Ok(())
        };
        let (locked, summary) = contend(cx, &backend, "faults-pause-lock", disruption).await?;
        cx.note(format!("locks through a pause of {PAUSE:?}: {summary}"));
        findings.absorb(locked);
    }
    findings.outcome()
}

/// Acknowledged writes, then the server process is killed (SIGKILL) and
/// started again on the same data: an operation succeeds within
/// [`RECOVERY_BOUND`] of the server accepting connections again, with no
/// reconnect by the application; on a store that declares itself
/// [`Durability::Durable`] every acknowledged write is still there and
/// fencing tokens keep increasing. On one that declares itself volatile
/// the loss is reported, not failed.
pub async fn server_restart(cx: &Context) -> PropertyOutcome {
    let Some((target, control)) = cx.faults().and_then(|t| t.server().map(|c| (t, Arc::clone(c)))) else {
        return Err(Failure("the process faults ran without control over the server".to_owned()));
    };
    let (_proxy, backend) = target.through_proxy().await.map_err(connect_failure)?;
    let (store, locks) = (backend.store.as_ref(), backend.locks.as_ref());
    let durable = backend.capabilities().durability == Durability::Durable;
    let space = cx.space("faults-restart");
    let writes = 20;
    for i in 0..writes {
        store.set(&Key::new(&space, &format!("k{i}"))?, Bytes::from(format!("v{i}")), None).await?;
    }
    let counter = Key::new(&space, "counter")?;
    for _ in 0..5 {
        store.increment(&counter, 1, None).await?;
    }
    let lock = cx.lock_name("faults-restart");
    let before = if cx.capabilities.features.locks {
        let lease = locks.try_acquire(&lock, Duration::from_secs(30)).await?;
        if let Some(lease) = &lease {
            locks.release(lease).await?;
        }
        lease.map(|l| l.token())
    } else {
        None
    };
    let mut findings = Findings::new();
    if let Err(error) = control.crash_and_restart().await {
        return Err(Failure(format!("the server could not be restarted: {error}")));
    }
    let back = Instant::now();
    let probe = Key::new(&space, "k0")?;
    let first = first_success(store, &probe).await;
    let took = back.elapsed();
    if let Err(error) = first {
        findings.fail(format!("no get succeeded after the server restarted: {error}"));
        return findings.outcome();
    }
    findings.check(took <= RECOVERY_BOUND, || {
        format!("the first successful get came {took:?} after the server was back (bound {RECOVERY_BOUND:?})")
    });
    let mut lost = Vec::new();
    for i in 0..writes {
        let key = Key::new(&space, &format!("k{i}"))?;
        let found = store.get(&key).await?;
        if found.as_ref().map(|e| e.value.clone()) != Some(Bytes::from(format!("v{i}"))) {
            lost.push(format!("{}={found:?}", key.id()));
        }
    }
    let counted = store.get(&counter).await?.map(|e| e.value);
    if counted != Some(Bytes::from_static(b"5")) {
        lost.push(format!("counter={counted:?} (5 acknowledged increments)"));
    }
    let after = match before {
        Some(_) => locks.try_acquire(&lock, Duration::from_secs(1)).await?.map(|l| l.token()),
        None => None,
    };
    let tokens_back = matches!((before, after), (Some(b), Some(a)) if a <= b);
    cx.note(format!(
        "{} server: recovered {:.1} ms after it was back; {} of {} acknowledged writes lost; fencing token {:?} \
         before the crash, {:?} after",
        if durable { "declared durable" } else { "declared volatile" },
        took.as_secs_f64() * 1e3,
        lost.len(),
        writes + 1,
        before,
        after
    ));
    if durable {
        findings.check(lost.is_empty(), || {
            format!("acknowledged writes lost across a crash of a store declared durable: {}", lost.join(", "))
        });
        findings.check(!tokens_back, || {
            format!("fencing tokens went back across a crash of a store declared durable: {before:?} then {after:?}")
        });
    }
    findings.outcome()
}
