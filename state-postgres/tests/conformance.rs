//! The whole conformance kit against a real PostgreSQL: a private cluster
//! per test (or the server named by `STATEKIT_POSTGRES_URL`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

mod support;

use std::sync::{Arc, Mutex};

use conformance::configured::Refusal;
use conformance::{Configured, Subject, Unreachable};
use state_postgres::PostgresConfig;

/// A password for the unreachable endpoint, which no error may reveal.
const SECRET: &str = "kit-hunter2";

/// The same backend aimed at a loopback port where nothing listens, and at
/// the test's server as a user that does not exist there.
fn unreachable(server: &test_servers::Server) -> Result<Unreachable, String> {
    let port = test_servers::free_port()?;
    let timeout = Duration::from_millis(500);
    let url = format!("postgres://statekit:{SECRET}@127.0.0.1:{port}/statekit");
    let config = PostgresConfig::new(url).with_connect_timeout(timeout);
    let rejected = format!("postgres://kit_nobody:{SECRET}@{}/postgres", server.socket_address()?);
    let rejected = PostgresConfig::new(rejected).with_connect_timeout(timeout);
    Ok(Unreachable::new(timeout, move || state_postgres::backend(config.clone()))
        .with_rejected_credentials(move || state_postgres::backend(rejected.clone()))
        .with_secret(SECRET))
}

/// The backend as `[state]` settings build it, on the test's server.
fn configured(url: &str) -> Configured {
    Configured::new(format!("url = {url:?}"), |fields: String| async move {
        let config: PostgresConfig = toml::from_str(&fields)?;
        Ok::<_, Refusal>(state_postgres::backend(config).await?)
    })
    .refusing("pool_size = 0", "pool_size")
    .refusing("reap_batch = 0", "reap_batch")
    .refusing("connect_timeout_ms = 0", "connect_timeout_ms")
    .refusing("command_timeout_ms = 0", "command_timeout_ms")
    .refusing("schema = \"pg_catalog\"", "schema")
    // The upper bounds (mutants of `validate`'s bounds survived the kit
    // without them), and a name outside the identifiers' alphabet.
    .refusing("pool_size = 10001", "pool_size")
    .refusing("connect_timeout_ms = 86400001", "connect_timeout_ms")
    .refusing("command_timeout_ms = 86400001", "command_timeout_ms")
    .refusing("reap_interval_ms = 86400001", "reap_interval_ms")
    .refusing("prefix = \"Kit-1\"", "prefix")
    .refusing("prefix = \"1kit\"", "prefix")
    .refusing(format!("prefix = \"{}\"", "k".repeat(state_postgres::MAX_IDENTIFIER_LEN + 1)), "prefix")
    // The bounds themselves, and the documented "off".
    .accepting("pool_size = 10000")
    .accepting("connect_timeout_ms = 86400000")
    .accepting("command_timeout_ms = 86400000")
    .accepting("reap_interval_ms = 86400000")
    .accepting("reap_interval_ms = 0")
    .accepting(format!("prefix = \"{}\"", "k".repeat(state_postgres::MAX_IDENTIFIER_LEN)))
    .accepting("prefix = \"_kit_9\"")
}

conformance::suite!(postgres, async {
    let server = test_servers::postgres::postgres()?;
    // A short reaper interval so the reaper runs during the properties,
    // concurrently with their writes.
    let config = PostgresConfig::new(server.url()).with_reap_interval(Some(Duration::from_millis(500)));
    let backend = state_postgres::backend(config.clone()).await.map_err(|e| e.to_string())?;
    // A second client of the same server, as another process would be.
    let peer = state_postgres::backend(config).await.map_err(|e| e.to_string())?;
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
