//! Lock wake-ups in a cluster travel over sharded pub/sub: a waiter's
//! `SSUBSCRIBE` goes to the master serving its lock's slot, where the
//! release script's `SPUBLISH` is delivered. When the slot moves to another
//! master (`CLUSTER SETSLOT ... NODE`), the old master drops the
//! subscription on its own; the store must subscribe again on the new one,
//! or its waiters fall back to polling.
//!
//! The same goes when a master dies: its connection closes, and its
//! channels must be subscribed again on the replica that takes over.
//!
//! Each test moves (or kills) what serves the waited-on locks while the
//! waiters wait, checks on the servers that each channel's subscriber is
//! now on the master serving its slot (`PUBSUB SHARDNUMSUB`), and then
//! measures how long the waiters take to hold their locks after the
//! releases, against the kit's bound for "woken, not polling".
//!
//! With the same slot move, a plain read and write of a moved entry must
//! follow it without an error (the store re-sends a call answered `MOVED`).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use conformance::properties::wakeups::WAKE_BOUND;
use state_api::{Lease, LockService, StateStore};
use state_redis::{RedisConfig, RedisStore};
use test_servers::redis::{redis_cluster, redis_cluster_with_node_timeout};
use tokio::task::JoinHandle;
use tokio::time::Instant;

const PREFIX: &str = "wake";
/// Waiters, each on its own lock.
const WAITERS: usize = 12;
/// How long the waiters wait before the slots move: a polling waiter's
/// backoff has reached its cap by then.
const SETTLE: Duration = Duration::from_millis(1500);
/// How long the subscriptions may take to reach the new masters.
const RESUBSCRIBE_LIMIT: Duration = Duration::from_secs(10);

/// One master as `CLUSTER NODES` lists it.
struct Master {
    id: String,
    port: u16,
    slots: Vec<(u16, u16)>,
}

fn connection(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap().get_connection().unwrap()
}

fn masters(port: u16) -> Vec<Master> {
    let nodes: String = redis::cmd("CLUSTER").arg("NODES").query(&mut connection(port)).unwrap();
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            if !fields.get(2)?.contains("master") || fields.get(2)?.contains("fail") || fields.len() < 9 {
                return None;
            }
            let port = fields[1].split(['@', ':']).nth(1)?.parse().ok()?;
            let slots = fields[8..]
                .iter()
                .filter(|range| !range.starts_with('['))
                .filter_map(|range| match range.split_once('-') {
                    Some((low, high)) => Some((low.parse().ok()?, high.parse().ok()?)),
                    None => range.parse().ok().map(|slot| (slot, slot)),
                })
                .collect();
            Some(Master { id: fields[0].to_owned(), port, slots })
        })
        .collect()
}

fn slot_of(port: u16, key: &str) -> u16 {
    redis::cmd("CLUSTER").arg("KEYSLOT").arg(key).query(&mut connection(port)).unwrap()
}

/// Moves `slot` and its keys from `from` to `to`, the way `redis-cli
/// --cluster reshard` does, and tells every master.
fn move_slot(slot: u16, from: &Master, to: &Master, all: &[Master]) {
    let (mut source, mut target) = (connection(from.port), connection(to.port));
    let setslot = |connection: &mut redis::Connection, state: &str, node: &str| {
        let _: () = redis::cmd("CLUSTER").arg("SETSLOT").arg(slot).arg(state).arg(node).query(connection).unwrap();
    };
    setslot(&mut target, "IMPORTING", &from.id);
    setslot(&mut source, "MIGRATING", &to.id);
    loop {
        let keys: Vec<String> =
            redis::cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(100).query(&mut source).unwrap();
        if keys.is_empty() {
            break;
        }
        let mut migrate = redis::cmd("MIGRATE");
        migrate.arg("127.0.0.1").arg(to.port).arg("").arg(0).arg(5000).arg("KEYS").arg(&keys);
        let _: () = migrate.query(&mut source).unwrap();
    }
    setslot(&mut target, "NODE", &to.id);
    setslot(&mut source, "NODE", &to.id);
    for other in all.iter().filter(|m| m.id != from.id && m.id != to.id) {
        setslot(&mut connection(other.port), "NODE", &to.id);
    }
}

/// Waits until every node of the cluster says `slot` is served by the
/// master at `port`: moving the next slot before the cluster agreed on
/// the last one lets an older claim win back a slot (both masters then
/// answer `MOVED` to each other until the cluster settles).
async fn agreed(ports: &[u16], slot: u16, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    for &node in ports {
        loop {
            let owner = masters(node).into_iter().find(|m| m.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot)));
            if owner.is_some_and(|m| m.port == port) {
                break;
            }
            assert!(Instant::now() < deadline, "the node on port {node} does not agree that slot {slot} moved");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Subscribers of sharded `channel` on the master at `port`.
fn shard_subscribers(port: u16, channel: &str) -> i64 {
    let answer: (String, i64) =
        redis::cmd("PUBSUB").arg("SHARDNUMSUB").arg(channel).query(&mut connection(port)).unwrap();
    answer.1
}

/// Locks held for the whole test, each with a waiter waiting for it.
struct Waiting {
    holders: Vec<Lease>,
    waiters: Vec<JoinHandle<(state_api::Result<Lease>, Instant)>>,
    channels: Vec<String>,
}

const LEASE: Duration = Duration::from_secs(60);

/// Takes `WAITERS` locks and starts a waiter on each, then lets them
/// settle.
async fn waiting(store: &RedisStore) -> Waiting {
    let mut holders = Vec::new();
    let mut waiters = Vec::new();
    for i in 0..WAITERS {
        let name = format!("moving-{i}");
        holders.push(store.try_acquire(&name, LEASE).await.unwrap().expect("a fresh lock is free"));
        let store = store.clone();
        // As an application would: a wait cut short by a retryable error
        // (a master dying under it) is waited again.
        waiters.push(tokio::spawn(async move {
            let give_up = Instant::now() + Duration::from_secs(30);
            loop {
                let held = store.acquire(&name, LEASE, give_up.saturating_duration_since(Instant::now())).await;
                match held {
                    Err(e) if e.is_retryable() && Instant::now() < give_up => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                    held => return (held, Instant::now()),
                }
            }
        }));
    }
    tokio::time::sleep(SETTLE).await;
    let channels = (0..WAITERS).map(|i| format!("{PREFIX}:lock:{{moving-{i}}}:released")).collect();
    Waiting { holders, waiters, channels }
}

/// The master serving `slot`, as the node at `port` sees it.
fn owner(port: u16, slot: u16) -> Option<Master> {
    masters(port).into_iter().find(|m| m.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot)))
}

/// Waits until each channel has exactly one subscriber in the cluster: on
/// the master serving its slot, or on one of that master's replicas (a
/// replica takes sharded subscriptions for its master's slots, and the
/// master's `SPUBLISH` reaches it).
async fn subscribed_once(ports: &[u16], channels: &[String]) {
    let deadline = Instant::now() + RESUBSCRIBE_LIMIT;
    for channel in channels {
        loop {
            let everywhere: Vec<(u16, i64)> = ports.iter().map(|&p| (p, shard_subscribers(p, channel))).collect();
            if everywhere.iter().map(|(_, count)| count).sum::<i64>() == 1 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{channel} was not subscribed again in time; subscribers by port: {everywhere:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Releases every lock and checks that its waiter held it within the
/// kit's bound for "woken, not polling"; returns the mean delay.
async fn released_and_woken(store: &RedisStore, waiting: Waiting) -> Duration {
    // Long enough for a poller's backoff to be back at its cap.
    tokio::time::sleep(SETTLE).await;
    // Round trip of an attempt on a held lock, measured now.
    let mut round_trips = Vec::new();
    for holder in &waiting.holders {
        let started = Instant::now();
        assert!(store.try_acquire(holder.name(), LEASE).await.unwrap().is_none());
        round_trips.push(started.elapsed());
    }
    round_trips.sort();
    let round_trip = round_trips[round_trips.len() / 2];

    let mut released_at = Vec::new();
    for holder in &waiting.holders {
        store.release(holder).await.unwrap();
        released_at.push(Instant::now());
    }
    let mut total = Duration::ZERO;
    for (waiter, released) in waiting.waiters.into_iter().zip(released_at) {
        let (held, at) = waiter.await.unwrap();
        held.expect("the waiter got its lock");
        total += at.saturating_duration_since(released);
    }
    let mean = total / WAITERS as u32;
    assert!(
        mean <= WAKE_BOUND + round_trip,
        "waiters took {mean:?} on average after the release: polling, not woken (bound {WAKE_BOUND:?} + {round_trip:?})"
    );
    println!("mean wake-up after release: {mean:?} (round trip {round_trip:?})");
    mean
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_follow_their_locks_slot_to_another_master_and_are_woken_by_the_release() {
    let cluster = redis_cluster().unwrap();
    let ports: Vec<u16> = cluster.urls().iter().map(|url| cluster_port(url)).collect();
    let seed = ports[0];
    let store = RedisStore::connect(RedisConfig::cluster(cluster.urls()).with_key_prefix(PREFIX)).await.unwrap();
    let waiting = waiting(&store).await;

    // Move every lock's slot to the next master, while its waiter waits.
    for channel in &waiting.channels {
        let all = masters(seed);
        let slot = slot_of(seed, channel);
        let from = all.iter().position(|m| m.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))).unwrap();
        assert_eq!(shard_subscribers(all[from].port, channel), 1, "the waiter subscribed where its slot is");
        let to = (from + 1) % all.len();
        move_slot(slot, &all[from], &all[to], &all);
        agreed(&ports, slot, all[to].port).await;
        assert_eq!(shard_subscribers(all[from].port, channel), 0, "the old master dropped the subscription");
    }
    // The store hears the old masters drop the subscriptions and subscribes
    // again where the slots went.
    subscribed_once(&ports, &waiting.channels).await;
    released_and_woken(&store, waiting).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiters_follow_their_lock_to_the_promoted_replica_when_its_master_dies() {
    let mut cluster = redis_cluster_with_node_timeout(Duration::from_millis(1000)).unwrap();
    let ports: Vec<u16> = cluster.urls().iter().map(|url| cluster_port(url)).collect();
    // Leases must survive the failover for their holders to release them.
    let config = RedisConfig::cluster(cluster.urls()).with_key_prefix(PREFIX).with_min_replicas_acked(1);
    let store = RedisStore::connect(config).await.unwrap();
    let waiting = waiting(&store).await;

    let slot = slot_of(ports[0], &waiting.channels[0]);
    let victim = owner(ports[0], slot).unwrap().port;
    let index = ports.iter().position(|&p| p == victim).unwrap();
    cluster.nodes_mut()[index].kill();
    let survivors: Vec<u16> = ports.iter().copied().filter(|&p| p != victim).collect();
    // Until the replica takes over the dead master's slots.
    let deadline = Instant::now() + Duration::from_secs(20);
    while owner(survivors[0], slot).is_none_or(|m| m.port == victim) {
        assert!(Instant::now() < deadline, "no replica took over slot {slot}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let promoted = owner(survivors[0], slot).unwrap().port;
    agreed(&survivors, slot, promoted).await;
    // The promoted replica has no replica of its own until the dead master
    // comes back as one: until then every write waiting for a replica
    // times out (and the waiters, whose attempts are writes, wait again).
    cluster.nodes_mut()[index].restart(Duration::from_secs(10)).unwrap();
    // The dead master's channels, subscribed again in the shard that took
    // over its slots.
    subscribed_once(&ports, &waiting.channels).await;
    released_and_woken(&store, waiting).await;
}

/// A call to a key whose slot moved since the client read its slot map is
/// answered `MOVED` without running: the store sends it again where the
/// slot went, and the caller sees no error. (The cluster client itself no
/// longer re-sends anything: it would also re-send a write whose reply was
/// lost after it ran.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_moved_slot_follows_it_without_an_error() {
    let cluster = redis_cluster().unwrap();
    let ports: Vec<u16> = cluster.urls().iter().map(|url| cluster_port(url)).collect();
    let store = RedisStore::connect(RedisConfig::cluster(cluster.urls()).with_key_prefix(PREFIX)).await.unwrap();
    let key = state_api::Key::new("moving", "entry").unwrap();
    store.set(&key, bytes::Bytes::from_static(b"before"), None).await.unwrap();
    // The entry's key on the servers, and its slot.
    let all = masters(ports[0]);
    let stored = all
        .iter()
        .flat_map(|m| redis::cmd("KEYS").arg("*moving*entry*").query::<Vec<String>>(&mut connection(m.port)).unwrap())
        .next()
        .expect("the entry is on a master");
    let slot = slot_of(ports[0], &stored);
    let from = all.iter().position(|m| m.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))).unwrap();
    let to = (from + 1) % all.len();
    move_slot(slot, &all[from], &all[to], &all);
    agreed(&ports, slot, all[to].port).await;
    // The store's slot map still names the old master.
    let read = store.get(&key).await.expect("a read of the moved entry follows it");
    assert_eq!(read.map(|entry| entry.value), Some(bytes::Bytes::from_static(b"before")));
    store.set(&key, bytes::Bytes::from_static(b"after"), None).await.expect("a write follows it too");
}

fn cluster_port(url: &str) -> u16 {
    url.rsplit(':').next().unwrap().parse().unwrap()
}
