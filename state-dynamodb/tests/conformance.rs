//! The whole conformance kit against DynamoDB Local (or the endpoint in
//! `STATEKIT_DYNAMODB_URL`): one shared server, one fresh table per test.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod local;

use std::sync::Arc;

use state_api::Backend;

async fn backend() -> Result<Backend, String> {
    let store = Arc::new(local::fresh_store("kit").await?);
    Ok(Backend::new(store.clone(), store))
}

conformance::suite!(dynamodb, backend());
