//! The whole conformance kit against a private Redis Cluster: three masters
//! with a replica each, started on loopback for each test
//! (`test_servers::redis::redis_cluster`).
//!
//! What the cluster store declares differently from one server, and the kit
//! therefore skips: fenced writes (a fence's lock keys and the entry's keys
//! hash to different slots, and one script cannot touch both). The sweeper
//! walks every master, so storage is reported and its reclaiming checked.
//! Fault properties need a single server to pause or restart and are not
//! run here.

#![allow(missing_docs)]

use std::time::Duration;

use conformance::configured::Refusal;
use conformance::{Configured, Subject, Unreachable};
use state_redis::RedisConfig;
use test_servers::redis::redis_cluster;

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

conformance::suite!(redis_cluster, async {
    let cluster = redis_cluster()?;
    // Every write also waits for its slot's replica (`WAIT 1`, in the
    // script's pipeline, routed with it).
    let config = RedisConfig::cluster(cluster.urls())
        .with_min_replicas_acked(1)
        .with_sweep_interval(Some(Duration::from_millis(250)));
    let backend = state_redis::backend(config).await.map_err(|e| e.to_string())?;
    let subject = Subject::from(backend).with_unreachable(unreachable()?).with_configured(configured(&cluster.urls()));
    Ok::<_, String>(subject.keep_alive(cluster))
});
