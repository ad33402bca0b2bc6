//! Sentinel failover under load: kill -9 the master while writers and lock
//! holders run, and measure what the store's capability declaration
//! ([`state_api::Failover`]) speaks for: acknowledged writes lost, lock
//! tenures that overlapped, fencing tokens granted twice, and the time until
//! writes succeed again on the promoted replica. Once without and once with
//! `min_replicas_acked = 1`, each on its own group (a master, two replicas,
//! three sentinels): with one replica left after the promotion, writes that
//! need a confirmation can still get one.
//!
//! The figures are printed (`--nocapture`) and recorded in
//! `docs/RELIABILITY.md`. What is asserted is what the declaration
//! promises: with `KeepsAcknowledged`, nothing acknowledged is lost, no lock
//! tenure overlaps another and no token repeats; in either mode, the store
//! follows the new master and writes succeed again.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use conformance::{Fault, FaultProxy};
use state_api::{Failover, Key, LockService, StateError, StateStore};
use state_redis::{RedisConfig, RedisStore};
use test_servers::redis::{RedisCluster, RedisSentinel, redis_cluster_with_node_timeout, redis_sentinel_with};
use tokio::time::Instant;

/// Tasks incrementing a counter of their own.
const WRITERS: usize = 4;
/// Tasks taking turns on one lock.
const LOCKERS: usize = 3;
/// The lease each tenure takes.
const LEASE: Duration = Duration::from_millis(1500);
/// Load before the kill.
const WARM_UP: Duration = Duration::from_millis(1500);
/// Load after writes succeed again.
const COOL_DOWN: Duration = Duration::from_millis(1500);
/// How long the store may take to write again after the kill.
const RECOVERY_LIMIT: Duration = Duration::from_secs(30);

/// One writer's acknowledged counter values, in order.
struct Written {
    acked: Vec<i64>,
    /// When each acknowledged increment returned, since the start.
    first_ok_after: Option<Duration>,
}

/// One lock tenure as its holder saw it.
#[derive(Clone, Copy)]
struct Tenure {
    token: u64,
    /// When the grant was acknowledged.
    granted: Duration,
    /// Until when the holder surely held the lock: when it sent the
    /// release, if the release was acknowledged; otherwise the lease's end,
    /// counted from before the acquire was sent.
    held_until: Duration,
    /// Whether the release failed (it may still have happened).
    release_failed: bool,
}

impl Tenure {
    /// Whether `later`, granted after this tenure, was granted while this
    /// one still held the lock. A release that failed may have happened:
    /// a later grant with a higher token saw this grant (a script's effects
    /// replicate together), so the lock was freed by that release.
    fn overlapped_by(&self, later: &Tenure) -> bool {
        later.granted < self.held_until && !(self.release_failed && later.token > self.token)
    }
}

struct Figures {
    acked: usize,
    lost: i64,
    tenures: usize,
    overlaps: usize,
    repeated_tokens: usize,
    recovery: Duration,
    moved: bool,
}

/// What happens just before the master is killed.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Before {
    /// Nothing: replication keeps up, as it does on loopback.
    Nothing,
    /// The replication stream is held back (a fault proxy between the
    /// replicas and the master turns into a black hole) for this long: the
    /// master acknowledges writes its replicas never receive.
    ReplicationStalls(Duration),
}

/// The servers a run kills a master of.
enum Deployment {
    /// A Sentinel group (a master, two replicas), the replicas following
    /// through `proxy`.
    Sentinel { group: RedisSentinel, proxy: FaultProxy, first_master: u16 },
    /// A cluster (three masters, a replica each); `victim` is the index of
    /// the master serving the slot of the space and lock the load uses.
    Cluster { cluster: RedisCluster, victim: usize, victim_port: u16 },
}

/// The space of the writers' counters and the name of the lock: one hash
/// tag, so in a cluster both live on the master that is killed.
const TAG: &str = "failover";

impl Deployment {
    fn sentinel() -> Deployment {
        let proxy = Arc::new(parking_lot::Mutex::new(None::<FaultProxy>));
        let follow = |master: u16| {
            let started =
                tokio::runtime::Handle::current().block_on(FaultProxy::start(([127, 0, 0, 1], master).into()));
            let started = started.map_err(|e| e.to_string())?;
            let port = started.address().port();
            *proxy.lock() = Some(started);
            Ok(port)
        };
        let group = tokio::task::block_in_place(|| redis_sentinel_with(2, &follow))
            .unwrap_or_else(|e| panic!("cannot start the group: {e}"));
        group.wait_until_formed().unwrap();
        let first_master = group.master_port().unwrap();
        let proxy = proxy.lock().take().expect("the replicas follow through the proxy");
        Deployment::Sentinel { group, proxy, first_master }
    }

    fn cluster() -> Deployment {
        let cluster = redis_cluster_with_node_timeout(CLUSTER_NODE_TIMEOUT).unwrap_or_else(|e| panic!("{e}"));
        let ports: Vec<u16> =
            cluster.urls().iter().map(|url| url.rsplit(':').next().unwrap().parse().unwrap()).collect();
        let victim_port = slot_owner(&ports, TAG).expect("a master serves the slot");
        let victim = ports.iter().position(|port| *port == victim_port).unwrap();
        Deployment::Cluster { cluster, victim, victim_port }
    }

    fn config(&self) -> RedisConfig {
        match self {
            Deployment::Sentinel { group, .. } => RedisConfig::sentinel(group.urls(), group.master_name()),
            Deployment::Cluster { cluster, .. } => RedisConfig::cluster(cluster.urls()),
        }
    }

    fn stall_replication(&self) {
        match self {
            Deployment::Sentinel { proxy, .. } => proxy.set(Fault::Blackhole),
            Deployment::Cluster { .. } => panic!("replication is stalled in sentinel groups only"),
        }
    }

    fn kill_master(&mut self) {
        match self {
            Deployment::Sentinel { group, .. } => group.nodes_mut()[0].kill(),
            Deployment::Cluster { cluster, victim, .. } => cluster.nodes_mut()[*victim].kill(),
        }
    }

    /// The port of the master that took over, once one did.
    fn new_master(&self) -> Option<u16> {
        match self {
            Deployment::Sentinel { group, first_master, .. } => {
                group.master_port().ok().filter(|port| port != first_master)
            }
            Deployment::Cluster { cluster, victim_port, .. } => {
                let ports: Vec<u16> = cluster
                    .urls()
                    .iter()
                    .map(|url| url.rsplit(':').next().unwrap().parse().unwrap())
                    .filter(|port| port != victim_port)
                    .collect();
                slot_owner(&ports, TAG).filter(|port| port != victim_port)
            }
        }
    }

    /// After the failover: in a cluster the promoted replica has no replica
    /// of its own, so writes that wait for one wait until the killed node
    /// is back (it rejoins as the new master's replica).
    fn after_failover(&mut self, min_replicas_acked: u32) {
        if let Deployment::Cluster { cluster, victim, .. } = self
            && min_replicas_acked > 0
        {
            cluster.nodes_mut()[*victim].restart(Duration::from_secs(10)).unwrap();
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Deployment::Sentinel { .. } => "sentinel",
            Deployment::Cluster { .. } => "cluster",
        }
    }
}

/// The port of the master serving `tag`'s slot, as the first of `ports`
/// that answers says.
fn slot_owner(ports: &[u16], tag: &str) -> Option<u16> {
    for port in ports {
        let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else { continue };
        let Ok(mut connection) = client.get_connection_with_timeout(Duration::from_millis(300)) else { continue };
        let Ok(slot) = redis::cmd("CLUSTER").arg("KEYSLOT").arg(tag).query::<u16>(&mut connection) else { continue };
        let Ok(nodes) = redis::cmd("CLUSTER").arg("NODES").query::<String>(&mut connection) else { continue };
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2).copied().unwrap_or_default();
            if !flags.contains("master") || flags.contains("fail") {
                continue;
            }
            let serves = fields.iter().skip(8).any(|range| {
                let (low, high) = range.split_once('-').unwrap_or((range, range));
                matches!((low.parse::<u16>(), high.parse::<u16>()), (Ok(low), Ok(high)) if (low..=high).contains(&slot))
            });
            if serves {
                return fields.get(1)?.split('@').next()?.rsplit_once(':')?.1.parse().ok();
            }
        }
    }
    None
}

/// How long cluster nodes wait before calling a silent master failed.
const CLUSTER_NODE_TIMEOUT: Duration = Duration::from_millis(1000);

async fn run(mut deployment: Deployment, min_replicas_acked: u32, before: Before) -> Figures {
    let config = deployment
        .config()
        .with_min_replicas_acked(min_replicas_acked)
        .with_command_timeout(Duration::from_millis(500))
        .with_connect_timeout(Duration::from_millis(500));
    let store = RedisStore::connect(config).await.unwrap();
    let declared = state_api::Backend::new(Arc::new(store.clone()), Arc::new(store.clone())).capabilities().failover;
    let expected = if min_replicas_acked == 0 {
        Failover::MayLoseAcknowledged
    } else {
        Failover::KeepsAcknowledged { replicas: min_replicas_acked }
    };
    assert_eq!(declared, expected);

    let start = Instant::now();
    let killed_at = Arc::new(parking_lot::Mutex::new(None::<Duration>));
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (store, stop, killed_at) = (store.clone(), Arc::clone(&stop), Arc::clone(&killed_at));
        writers.push(tokio::spawn(async move {
            let key = Key::new(TAG, &format!("counter-{writer}")).unwrap();
            let mut written = Written { acked: Vec::new(), first_ok_after: None };
            while !stop.load(Ordering::Relaxed) {
                let sent = start.elapsed();
                match store.increment(&key, 1, None).await {
                    Ok(counter) => {
                        written.acked.push(counter.value);
                        let killed = *killed_at.lock();
                        if written.first_ok_after.is_none() && killed.is_some_and(|at| sent > at) {
                            written.first_ok_after = Some(start.elapsed());
                        }
                    }
                    Err(error) if error.is_retryable() => tokio::time::sleep(Duration::from_millis(20)).await,
                    Err(error) => panic!("a non-retryable error during the failover: {error}"),
                }
            }
            written
        }));
    }
    let mut lockers = Vec::new();
    for _ in 0..LOCKERS {
        let (store, stop) = (store.clone(), Arc::clone(&stop));
        lockers.push(tokio::spawn(async move {
            let mut tenures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let asked = start.elapsed();
                let lease = match store.try_acquire(TAG, LEASE).await {
                    Ok(Some(lease)) => lease,
                    Ok(None) => {
                        tokio::time::sleep(Duration::from_millis(2)).await;
                        continue;
                    }
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        continue;
                    }
                };
                let granted = start.elapsed();
                tokio::time::sleep(Duration::from_millis(5)).await;
                let releasing = start.elapsed();
                let (held_until, release_failed) = match store.release(&lease).await {
                    Ok(()) => (releasing, false),
                    Err(_) => (asked + LEASE, true),
                };
                tenures.push(Tenure { token: lease.token().0, granted, held_until, release_failed });
            }
            tenures
        }));
    }

    tokio::time::sleep(WARM_UP).await;
    if let Before::ReplicationStalls(stall) = before {
        deployment.stall_replication();
        tokio::time::sleep(stall).await;
    }
    deployment.kill_master();
    let kill = start.elapsed();
    *killed_at.lock() = Some(kill);
    // Load until some write sent after the kill succeeded, then a while more.
    let deadline = kill + RECOVERY_LIMIT;
    let moved_to = loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let Some(port) = tokio::task::block_in_place(|| deployment.new_master()) {
            break Some(port);
        }
        assert!(start.elapsed() < deadline, "no failover within {RECOVERY_LIMIT:?}");
    };
    tokio::task::block_in_place(|| deployment.after_failover(min_replicas_acked));
    let probe = Key::new(TAG, "probe").unwrap();
    let recovered = loop {
        if store.increment(&probe, 1, None).await.is_ok() {
            break start.elapsed();
        }
        assert!(start.elapsed() < deadline, "no write succeeded within {RECOVERY_LIMIT:?} of the kill");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(COOL_DOWN).await;
    stop.store(true, Ordering::Relaxed);

    let mut acked = 0;
    let mut lost = 0;
    let mut first_ok = recovered;
    for (writer, handle) in writers.into_iter().enumerate() {
        let written = handle.await.unwrap();
        acked += written.acked.len();
        first_ok = first_ok.min(written.first_ok_after.unwrap_or(recovered));
        // One writer per counter: each acknowledged value is above the
        // last. A value at or below an earlier one means the increments
        // acknowledged in between were lost.
        for pair in written.acked.windows(2) {
            if pair[1] <= pair[0] {
                lost += pair[0] - pair[1] + 1;
            }
        }
        // And the counter ends at the last value acknowledged.
        let key = Key::new(TAG, &format!("counter-{writer}")).unwrap();
        let last = written.acked.last().copied().unwrap_or(0);
        // A read queued behind a write's WAIT may time out while the
        // remaining replica resynchronises with the new master: retry.
        let mut attempts = 0;
        let entry = loop {
            match store.get(&key).await {
                Ok(entry) => break entry,
                Err(error) if error.is_retryable() && attempts < 20 => attempts += 1,
                Err(error) => panic!("reading counter {writer} back: {error}"),
            }
        };
        let now = entry.map_or(0, |entry| {
            std::str::from_utf8(&entry.value).ok().and_then(|text| text.parse::<i64>().ok()).unwrap_or(0)
        });
        lost += (last - now).max(0);
    }
    let mut tenures: Vec<Tenure> = Vec::new();
    for handle in lockers {
        tenures.extend(handle.await.unwrap());
    }
    tenures.sort_by_key(|tenure| tenure.granted);
    let overlaps = tenures
        .iter()
        .enumerate()
        .map(|(i, earlier)| tenures[i + 1..].iter().filter(|later| earlier.overlapped_by(later)).count())
        .sum();
    let mut tokens: Vec<u64> = tenures.iter().map(|tenure| tenure.token).collect();
    tokens.sort_unstable();
    let distinct = {
        let mut unique = tokens.clone();
        unique.dedup();
        unique.len()
    };
    let figures = Figures {
        acked,
        lost,
        tenures: tenures.len(),
        overlaps,
        repeated_tokens: tokens.len() - distinct,
        recovery: first_ok.saturating_sub(kill),
        moved: moved_to.is_some(),
    };
    println!(
        "{} failover after {before:?}, min_replicas_acked = {min_replicas_acked}: {} increments acknowledged, {} lost; {} lock tenures, \
         {} overlapping a tenure still believed held, {} fencing tokens granted twice; \
         writes succeeded again {} ms after the kill",
        deployment.name(),
        figures.acked,
        figures.lost,
        figures.tenures,
        figures.overlaps,
        figures.repeated_tokens,
        figures.recovery.as_millis()
    );
    figures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_replica_acknowledgement_the_store_follows_the_new_master() {
    let figures = run(Deployment::sentinel(), 0, Before::Nothing).await;
    assert!(figures.moved && figures.acked > 0 && figures.tenures > 0);
    // MayLoseAcknowledged: losses, overlaps and repeated tokens are
    // measured and reported, not ruled out.
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_one_replica_acknowledging_nothing_acknowledged_is_lost() {
    let figures = run(Deployment::sentinel(), 1, Before::Nothing).await;
    assert!(figures.moved && figures.acked > 0 && figures.tenures > 0);
    assert_keeps_acknowledged(&figures);
}

/// The measurement can fail: when the master acknowledges what its
/// replicas never got, the failover loses it, leases included, and the
/// figures show it. Fencing tokens come from the server's clock (one host
/// here), so even the lost leases' tokens are not granted again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replication_stream_loses_acknowledged_writes_but_repeats_no_token() {
    let figures = run(Deployment::sentinel(), 0, Before::ReplicationStalls(STALL)).await;
    assert!(figures.moved);
    assert!(figures.lost > 0, "nothing acknowledged during the stall was lost");
    assert_eq!(figures.repeated_tokens, 0, "a fencing token was granted twice");
}

/// The same stall with `min_replicas_acked = 1`: what the replicas did not
/// confirm was never acknowledged, so nothing acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_replication_stream_loses_nothing_acknowledged_with_one_replica_acknowledging() {
    let figures = run(Deployment::sentinel(), 1, Before::ReplicationStalls(STALL)).await;
    assert!(figures.moved && figures.acked > 0);
    assert_keeps_acknowledged(&figures);
}

/// A cluster master killed under load: its replica takes over its slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_under_load_is_replaced_by_its_replica() {
    let figures = run(Deployment::cluster(), 0, Before::Nothing).await;
    assert!(figures.moved && figures.acked > 0 && figures.tenures > 0);
}

/// The same with `min_replicas_acked = 1`: writes wait until the killed
/// node has rejoined as the new master's replica, and nothing acknowledged
/// is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_master_killed_under_load_loses_nothing_acknowledged_with_one_replica_acknowledging() {
    let figures = run(Deployment::cluster(), 1, Before::Nothing).await;
    assert!(figures.moved && figures.acked > 0);
    assert_keeps_acknowledged(&figures);
}

/// How long the replication stream stalls before the kill.
const STALL: Duration = Duration::from_millis(700);

/// What `Failover::KeepsAcknowledged` promises.
fn assert_keeps_acknowledged(figures: &Figures) {
    assert_eq!(figures.lost, 0, "an acknowledged increment was lost");
    assert_eq!(figures.overlaps, 0, "a lock was granted while an acknowledged lease was still held");
    assert_eq!(figures.repeated_tokens, 0, "a fencing token was granted twice");
}

/// A write that no replica confirms is not acknowledged: it fails with a
/// timeout (it may have happened), and the store stays usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_no_replica_confirms_is_a_timeout() {
    let server = test_servers::redis::redis().unwrap();
    let timeout = Duration::from_millis(300);
    let config = RedisConfig::new(server.url()).with_min_replicas_acked(1).with_command_timeout(timeout);
    let store = RedisStore::connect(config).await.unwrap();
    let key = Key::new("unconfirmed", "k").unwrap();
    let started = std::time::Instant::now();
    let error = store.set(&key, "v".into(), None).await.unwrap_err();
    assert!(matches!(error, StateError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < timeout * 4, "took {:?}", started.elapsed());
    // Indeterminate: here the master did apply it.
    assert_eq!(store.get(&key).await.unwrap().map(|entry| entry.value), Some("v".into()));
    let error = store.try_acquire("unconfirmed", Duration::from_secs(5)).await.unwrap_err();
    assert!(matches!(error, StateError::Timeout { .. }), "{error:?}");
}

/// A promoted replica has no scripts (they do not replicate), and neither
/// has a master after `SCRIPT FLUSH`: a write that waits for a replica
/// goes out as a pipeline, which the client does not reload on its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_waiting_for_a_replica_load_their_scripts_again_when_the_master_lost_them() {
    let group = test_servers::redis::redis_sentinel().unwrap();
    let config = RedisConfig::sentinel(group.urls(), group.master_name()).with_min_replicas_acked(1);
    let store = RedisStore::connect(config).await.unwrap();
    let master = format!("redis://127.0.0.1:{}", group.master_port().unwrap());
    let mut raw = redis::Client::open(master).unwrap().get_multiplexed_async_connection().await.unwrap();
    let key = Key::new("flushed", "k").unwrap();
    for round in 0..10 {
        let _: () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut raw).await.unwrap();
        // Concurrent writers all meet NOSCRIPT; each must load and resend.
        let writes: Vec<_> = (0..64)
            .map(|_| {
                let (store, key) = (store.clone(), key.clone());
                tokio::spawn(async move { store.increment(&key, 1, None).await })
            })
            .collect();
        for write in writes {
            write.await.unwrap().unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
        let lease = store.try_acquire("flushed", Duration::from_secs(5)).await.unwrap().expect("free");
        store.release(&lease).await.unwrap();
    }
    assert_eq!(store.get(&key).await.unwrap().map(|entry| entry.value), Some("640".into()));
}
