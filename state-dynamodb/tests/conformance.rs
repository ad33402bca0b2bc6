//! The whole conformance kit against DynamoDB Local (or the endpoint in
//! `STATEKIT_DYNAMODB_URL`): one shared server, one fresh table per test.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod local;

use std::sync::Arc;
use std::time::Duration;

use conformance::configured::Refusal;
use conformance::{Configured, FaultTarget, Property, Subject, Unreachable};
use state_api::Backend;
use state_dynamodb::{DynamoConfig, DynamoStore};

/// A secret access key for the unreachable endpoint, which no error may
/// reveal.
const SECRET: &str = "kithunter2secret";

/// The same backend aimed at a loopback port where nothing listens.
fn unreachable() -> Result<Unreachable, String> {
    let port = test_servers::free_port()?;
    let timeout = Duration::from_millis(500);
    let config = local::config(&format!("http://127.0.0.1:{port}"), "statekit_unreachable")
        .with_static_credentials(local::ACCESS_KEY_ID, SECRET)
        .with_connect_timeout(timeout);
    let connect = move || {
        let config = config.clone();
        async move {
            let store = Arc::new(DynamoStore::open(config).await?);
            Ok(Backend::new(store.clone(), store.clone()).with_schedules(store))
        }
    };
    Ok(Unreachable::new(timeout, connect).with_secret(SECRET))
}

/// The same table reached through the kit's fault proxy, with timeouts
/// short enough for operations caught in a fault to give up while it lasts.
fn faults(table: &str) -> Result<FaultTarget, String> {
    let server = test_servers::dynamodb::shared_dynamodb()?;
    Ok(local::fault_target(server.socket_address()?, table))
}

/// The backend as `[state]` settings build it, on the test's table. Its
/// value limit is DynamoDB's, not a setting.
fn configured(table: &str) -> Result<Configured, String> {
    let server = test_servers::dynamodb::shared_dynamodb()?;
    let base = format!(
        "url = {:?}\nregion = {:?}\ntable_name = {table:?}\naccess_key_id = {:?}\nsecret_access_key = {:?}",
        server.url(),
        local::REGION,
        local::ACCESS_KEY_ID,
        local::SECRET,
    );
    let configured = Configured::new(base, |fields: String| async move {
        let config: DynamoConfig = toml::from_str(&fields)?;
        let store = Arc::new(DynamoStore::open(config).await?);
        Ok::<_, Refusal>(Backend::new(store.clone(), store.clone()).with_schedules(store))
    });
    Ok(configured
        .with_fixed_value_limit()
        .refusing("max_attempts = 0", "max_attempts")
        .refusing("connect_timeout_ms = 0", "connect_timeout_ms")
        .refusing("command_timeout_ms = 0", "command_timeout_ms")
        .refusing("region = \"\"", "region")
        .refusing("max_clock_skew_ms = 60001", "max_clock_skew_ms")
        // The bounds themselves.
        .accepting("max_attempts = 1")
        .accepting("max_clock_skew_ms = 60000")
        .accepting("max_clock_skew_ms = 0"))
}

async fn subject() -> Result<Subject, String> {
    let store = Arc::new(local::fresh_store("kit").await?);
    let faults = faults(store.table_name())?;
    let configured = configured(store.table_name())?;
    // A second client of the same table, as another process would be.
    let server = test_servers::dynamodb::shared_dynamodb()?;
    let peer =
        Arc::new(DynamoStore::open(local::config(server.url(), store.table_name())).await.map_err(|e| e.to_string())?);
    Ok(Subject::from(Backend::new(store.clone(), store.clone()).with_schedules(store))
        .with_unreachable(unreachable()?)
        .with_faults(faults)
        .with_configured(configured)
        .with_peer(Backend::new(peer.clone(), peer))
        // Every property runs but those DynamoDB cannot offer (release
        // wake-ups, a storage report) or DynamoDB Local cannot be put
        // through (pausing or crashing the server).
        .strict(&[Property::ReleaseWakeups, Property::StorageReclaim, Property::ServerPause, Property::ServerRestart]))
}

conformance::suite!(dynamodb, subject());
