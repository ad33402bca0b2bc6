//! The whole conformance kit against a private Sentinel group: a master, a
//! replica and three sentinels on loopback, started for each test
//! (`test_servers::redis::redis_sentinel`). The store finds the master
//! through the sentinels and asks one replica to confirm every write
//! (`min_replicas_acked = 1`), so the kit also runs every write through
//! `WAIT`. Failovers are in `failover.rs`.

#![allow(missing_docs)]

use std::time::Duration;

use conformance::configured::Refusal;
use conformance::{Configured, Subject, Unreachable};
use state_redis::RedisConfig;
use test_servers::redis::{SENTINEL_MASTER, redis_sentinel};

/// A password for the unreachable endpoint, which no error may reveal.
const SECRET: &str = "kit-hunter2";

/// Sentinels on a loopback port where nothing listens.
fn unreachable() -> Result<Unreachable, String> {
    let port = test_servers::free_port()?;
    let timeout = Duration::from_millis(500);
    let config = RedisConfig::sentinel([format!("redis://:{SECRET}@127.0.0.1:{port}")], SENTINEL_MASTER)
        .with_connect_timeout(timeout);
    Ok(Unreachable::new(timeout, move || state_redis::backend(config.clone())).with_secret(SECRET))
}

/// The backend as `[state]` settings build it, on the test's sentinels.
fn configured(urls: &[String]) -> Configured {
    let fields = format!("mode = \"sentinel\"\nurls = {urls:?}\nsentinel_master = {SENTINEL_MASTER:?}");
    Configured::new(fields, |fields: String| async move {
        let config: RedisConfig = toml::from_str(&fields)?;
        Ok::<_, Refusal>(state_redis::backend(config).await?)
    })
    .refusing("url = \"redis://127.0.0.1:1\"", "url")
    .refusing("min_replicas_acked = 101", "min_replicas_acked")
}

conformance::suite!(redis_sentinel, async {
    let group = redis_sentinel()?;
    let config = RedisConfig::sentinel(group.urls(), group.master_name())
        .with_min_replicas_acked(1)
        .with_sweep_interval(Some(Duration::from_millis(250)));
    let backend = state_redis::backend(config).await.map_err(|e| e.to_string())?;
    let subject = Subject::from(backend).with_unreachable(unreachable()?).with_configured(configured(&group.urls()));
    Ok::<_, String>(subject.keep_alive(group))
});
