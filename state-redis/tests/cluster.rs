//! The whole conformance kit against a private Redis Cluster: three masters
//! with a replica each, started on loopback for each test
//! (`test_servers::redis::redis_cluster`).
//!
//! What the cluster store declares differently from one server, and the kit
//! therefore skips: fenced writes (a fence's lock keys and the entry's keys
//! hash to different slots, and one script cannot touch both). The sweeper
//! walks every master, so storage is reported and its reclaiming checked.
//! The network-fault properties run with the kit's proxy in front of every
//! node: each node announces the proxy's port as its own, so the slot map
//! the client reads leads it through the proxy. The process faults (pause,
//! restart) need a single server and are not run here.

#![allow(missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use conformance::configured::Refusal;
use conformance::{Configured, FaultTarget, Subject, Unreachable};
use state_api::StateError;
use state_redis::RedisConfig;
use test_servers::redis::{RedisCluster, redis_cluster};

/// A password for the unreachable endpoint, which no error may reveal.
const SECRET: &str = "kit-hunter2";

/// A cluster whose only seed is a loopback port where nothing listens.
fn unreachable() -> Result<Unreachable, String> {
    let port = test_servers::free_port()?;
    let timeout = Duration::from_millis(500);
    let config = RedisConfig::cluster([format!("redis://:{SECRET}@127.0.0.1:{port}")]).with_connect_timeout(timeout);
    Ok(Unreachable::new(timeout, move || state_redis::backend(config.clone())).with_secret(SECRET))
}

/// The backend as `[state]` settings build it, on the test's cluster.
fn configured(urls: &[String]) -> Configured {
    Configured::new(format!("mode = \"cluster\"\nurls = {urls:?}"), |fields: String| async move {
        let config: RedisConfig = toml::from_str(&fields)?;
        Ok::<_, Refusal>(state_redis::backend(config).await?)
    })
    .refusing("url = \"redis://127.0.0.1:1\"", "url")
    .refusing("prefix = \"a{b\"", "prefix")
}

/// How long the nodes may take to agree on the ports they announce (they
/// tell each other in their heartbeats).
const ANNOUNCED_WITHIN: Duration = Duration::from_secs(20);

/// The cluster through the kit's fault proxy: the connector makes each
/// node announce the proxy's port for it (the cluster bus stays direct),
/// waits until every node's view of the cluster shows only those ports,
/// and connects with timeouts short enough for operations caught in a
/// fault to give up while it lasts.
fn fault_target(cluster: &RedisCluster) -> FaultTarget {
    let ports = cluster.ports();
    let upstreams = ports.iter().map(|port| SocketAddr::from(([127, 0, 0, 1], *port))).collect();
    FaultTarget::spread(upstreams, move |proxies: Vec<SocketAddr>| {
        let ports = ports.clone();
        async move {
            announce(&ports, &proxies).await.map_err(|e| StateError::invalid_argument("cluster", e))?;
            let config = RedisConfig::cluster(proxies.iter().map(|proxy| format!("redis://{proxy}")))
                .with_connect_timeout(Duration::from_millis(300))
                .with_command_timeout(Duration::from_millis(300));
            state_redis::backend(config).await
        }
    })
}

/// Makes the node on `ports[i]` announce `proxies[i]`'s port, and waits
/// until every node lists only the proxy's ports.
async fn announce(ports: &[u16], proxies: &[SocketAddr]) -> Result<(), String> {
    let mut connections = Vec::new();
    for (port, proxy) in ports.iter().zip(proxies) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
        let mut connection = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("cluster-announce-port")
            .arg(proxy.port())
            .arg("cluster-announce-bus-port")
            .arg(port + 10_000)
            .query_async::<()>(&mut connection)
            .await
            .map_err(|e| format!("CONFIG SET cluster-announce-port on {port}: {e}"))?;
        connections.push(connection);
    }
    let wanted: Vec<u16> = proxies.iter().map(SocketAddr::port).collect();
    let deadline = tokio::time::Instant::now() + ANNOUNCED_WITHIN;
    loop {
        let mut agreed = true;
        for connection in &mut connections {
            let nodes: String =
                redis::cmd("CLUSTER").arg("NODES").query_async(connection).await.map_err(|e| e.to_string())?;
            // `id host:port@bus[,hostname] flags ...`
            agreed &= nodes.lines().all(|line| {
                let address = line.split(' ').nth(1).unwrap_or("");
                let port = address.split('@').next().and_then(|a| a.rsplit(':').next());
                port.and_then(|p| p.parse::<u16>().ok()).is_some_and(|p| wanted.contains(&p))
            });
        }
        if agreed {
            return Ok(());
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!("the nodes did not all announce the proxy's ports within {ANNOUNCED_WITHIN:?}"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

conformance::suite!(redis_cluster, async {
    let cluster = redis_cluster()?;
    // Every write also waits for its slot's replica (`WAIT 1`, in the
    // script's pipeline, routed with it).
    let config = RedisConfig::cluster(cluster.urls())
        .with_min_replicas_acked(1)
        .with_sweep_interval(Some(Duration::from_millis(250)));
    let backend = state_redis::backend(config).await.map_err(|e| e.to_string())?;
    let subject = Subject::from(backend)
        .with_unreachable(unreachable()?)
        .with_configured(configured(&cluster.urls()))
        .with_faults(fault_target(&cluster));
    Ok::<_, String>(subject.keep_alive(cluster))
});
