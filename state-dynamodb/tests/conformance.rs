//! The whole conformance kit against DynamoDB Local (or the endpoint in
//! `STATEKIT_DYNAMODB_URL`): one shared server, one fresh table per test.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod local;

use std::sync::Arc;
use std::time::Duration;

use conformance::{Subject, Unreachable};
use state_api::Backend;
use state_dynamodb::DynamoStore;

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
            Ok(Backend::new(store.clone(), store))
        }
    };
    Ok(Unreachable::new(timeout, connect).with_secret(SECRET))
}

async fn subject() -> Result<Subject, String> {
    let store = Arc::new(local::fresh_store("kit").await?);
    Ok(Subject::from(Backend::new(store.clone(), store)).with_unreachable(unreachable()?))
}

conformance::suite!(dynamodb, subject());
