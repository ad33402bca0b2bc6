//! What both test binaries need to talk to DynamoDB Local.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use state_dynamodb::{DynamoConfig, DynamoStore};

/// DynamoDB Local accepts any credentials whose key id is letters and
/// digits, and keeps one database per key id and region: every client of
/// the tests uses these, so they all see the same tables.
pub const ACCESS_KEY_ID: &str = "statekitlocal";
pub const SECRET: &str = "statekitlocal";
pub const REGION: &str = "us-east-1";

/// A table name no other test (or test run) uses.
pub fn unique_table(label: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    format!("statekit_{label}_{}_{nanos:09}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// A configuration for `table` on the endpoint `url`, with test credentials.
pub fn config(url: &str, table: &str) -> DynamoConfig {
    DynamoConfig::new()
        .with_endpoint_url(url)
        .with_region(REGION)
        .with_static_credentials(ACCESS_KEY_ID, SECRET)
        .with_table_name(table)
}

/// A migrated store on a fresh table of the shared DynamoDB Local.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub async fn fresh_store(label: &str) -> Result<DynamoStore, String> {
    let server = test_servers::dynamodb::shared_dynamodb()?;
    let store = DynamoStore::open(config(server.url(), &unique_table(label))).await.map_err(|e| e.to_string())?;
    store.migrate().await.map_err(|e| format!("migrate failed: {e}"))?;
    Ok(store)
}

/// `table` on the server at `upstream`, reached through the kit's fault
/// proxy, with timeouts short enough for operations caught in a fault to
/// give up while it lasts.
#[allow(dead_code)] // not every test binary that includes this module uses it
pub fn fault_target(upstream: std::net::SocketAddr, table: &str) -> conformance::FaultTarget {
    let table = table.to_owned();
    conformance::FaultTarget::new(upstream, move |address| {
        let config = config(&format!("http://{address}"), &table)
            .with_connect_timeout(std::time::Duration::from_millis(300))
            .with_operation_timeout(std::time::Duration::from_millis(500));
        async move {
            let store = std::sync::Arc::new(DynamoStore::open(config).await?);
            Ok(state_api::Backend::new(store.clone(), store))
        }
    })
}
