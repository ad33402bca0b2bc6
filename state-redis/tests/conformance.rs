//! The whole conformance kit against a real `redis-server`: a private one on
//! a free port per test, or the server named by `STATEKIT_REDIS_URL` (the
//! kit's random namespaces keep runs apart there).

#![allow(missing_docs)]

use std::time::Duration;

mod support;

use std::sync::{Arc, Mutex};

use conformance::configured::Refusal;
use conformance::{Configured, Property, Subject, Unreachable};
use state_redis::RedisConfig;
use test_servers::redis::redis;

/// A password for the unreachable endpoint, which no error may reveal.
const SECRET: &str = "kit-hunter2";

/// The same backend aimed at a loopback port where nothing listens, and at
/// the test's server as a user that does not exist there.
fn unreachable(server: &test_servers::Server) -> Result<Unreachable, String> {
    let port = test_servers::free_port()?;
    let timeout = Duration::from_millis(500);
    let config = RedisConfig::new(format!("redis://:{SECRET}@127.0.0.1:{port}")).with_connect_timeout(timeout);
    let rejected = format!("redis://kit-nobody:{SECRET}@{}", server.socket_address()?);
    let rejected = RedisConfig::new(rejected).with_connect_timeout(timeout);
    Ok(Unreachable::new(timeout, move || state_redis::backend(config.clone()))
        .with_rejected_credentials(move || state_redis::backend(rejected.clone()))
        .with_secret(SECRET))
}

/// The backend as `[state]` settings build it, on the test's server.
fn configured(url: &str) -> Configured {
    Configured::new(format!("url = {url:?}"), |fields: String| async move {
        let config: RedisConfig = toml::from_str(&fields)?;
        Ok::<_, Refusal>(state_redis::backend(config).await?)
    })
    .refusing("prefix = \"\"", "prefix")
    .refusing(format!("prefix = \"{}\"", "p".repeat(65)), "prefix")
    .refusing("prefix = \"a{b\"", "prefix")
    .refusing("connect_timeout_ms = 0", "connect_timeout_ms")
    .refusing("command_timeout_ms = 0", "command_timeout_ms")
    .refusing("sweep_interval_ms = 86400001", "sweep_interval_ms")
    .refusing("unscanned_spaces = [\"\"]", "unscanned_spaces")
    // The bounds themselves, and the documented "off".
    .accepting(format!("prefix = \"{}\"", "p".repeat(64)))
    .accepting("sweep_interval_ms = 86400000")
    .accepting("sweep_interval_ms = 0")
}

conformance::suite!(redis, async {
    let server = redis()?;
    // A short sweeper interval, so that storage_reclaim sees it at work
    // within a test's time.
    let config = RedisConfig::new(server.url()).with_sweep_interval(Some(Duration::from_millis(250)));
    let backend = state_redis::backend(config.clone()).await.map_err(|e| e.to_string())?;
    // A second client of the same server, as another process would be.
    let peer = state_redis::backend(config).await.map_err(|e| e.to_string())?;
    let configured = configured(server.url());
    let unreachable = unreachable(&server)?;
    let server = Arc::new(Mutex::new(server));
    let subject = Subject::from(backend)
        .with_unreachable(unreachable)
        .with_faults(support::fault_target(&server)?)
        .with_configured(configured)
        .with_peer(peer)
        // Every property runs: a declaration the store dropped (its
        // storage reporting, say) fails the suite instead of skipping.
        .strict(&[]);
    Ok::<_, String>(subject.keep_alive(server))
});

/// Every space declared never scanned: entries are written alone, without
/// scan index or expiry schedule, and a creation is one `SET NX` with no
/// script (the deduplication mark's path). The whole kit but its scans and
/// storage reports, which such a store declares it cannot do.
fn unscanned(config: RedisConfig) -> RedisConfig {
    config.with_unscanned_spaces(["*"])
}

conformance::suite!(redis_unscanned, async {
    let server = redis()?;
    let config = unscanned(RedisConfig::new(server.url()));
    let backend = state_redis::backend(config.clone()).await.map_err(|e| e.to_string())?;
    let peer = state_redis::backend(config).await.map_err(|e| e.to_string())?;
    let server = Arc::new(Mutex::new(server));
    let subject = Subject::from(backend)
        .with_faults(support::configured_fault_target(&server, unscanned)?)
        .with_peer(peer)
        // What such a store cannot do, and the probes the unscanned suite
        // leaves to the main one.
        .strict(&[
            Property::Scan,
            Property::ScanCost,
            Property::StorageReclaim,
            Property::Configuration,
            Property::UnreachableEndpoint,
        ]);
    Ok::<_, String>(subject.keep_alive(server))
});
