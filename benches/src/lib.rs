//! Backends for benchmarks, provisioned the way the tests provision them:
//! the in-memory store, and private Redis, PostgreSQL and DynamoDB Local
//! servers (or the endpoints named by `STATEKIT_*_URL`). A backend whose
//! server cannot be started is reported as skipped with the reason —
//! benchmarks, unlike CI tests, may skip.

use state_api::Backend;
use statekit::{BackendKind, Config, StateConfig};
use test_servers::Server;

/// A backend ready to measure, with the server it needs kept alive.
pub struct Provisioned {
    /// The backend's name.
    pub name: &'static str,
    /// The connected backend.
    pub backend: Backend,
    /// The server process, if one was started.
    pub server: Option<Server>,
}

/// Every backend that can be provisioned here, and the reasons for the
/// ones that cannot.
pub async fn provision_all() -> (Vec<Provisioned>, Vec<(&'static str, String)>) {
    let mut ready = vec![Provisioned { name: "memory", backend: Backend::memory(), server: None }];
    let mut skipped = Vec::new();
    type Start = fn() -> Result<Server, String>;
    let servers: [(&'static str, BackendKind, Start); 3] = [
        ("redis", BackendKind::Redis, test_servers::redis::redis),
        ("postgres", BackendKind::Postgres, test_servers::postgres::postgres),
        ("dynamodb", BackendKind::Dynamodb, test_servers::dynamodb::dynamodb),
    ];
    for (name, kind, start) in servers {
        match connect(kind, start).await {
            Ok((backend, server)) => ready.push(Provisioned { name, backend, server: Some(server) }),
            Err(reason) => skipped.push((name, reason)),
        }
    }
    (ready, skipped)
}

async fn connect(kind: BackendKind, start: fn() -> Result<Server, String>) -> Result<(Backend, Server), String> {
    let server = start()?;
    let state = StateConfig {
        backend: kind,
        url: Some(server.url().to_owned()),
        region: Some("us-east-1".to_owned()),
        table_name: Some(format!("statekit_bench_{:08x}", unique_suffix())),
        // DynamoDB Local takes any letters-and-digits keys; static ones keep
        // the SDK from looking for real AWS credentials.
        access_key_id: (kind == BackendKind::Dynamodb).then(|| "statekitlocal".to_owned()),
        secret_access_key: (kind == BackendKind::Dynamodb).then(|| "statekitlocal".to_owned()),
        ..StateConfig::default()
    };
    let config = Config { state };
    statekit::migrate(&config).await.map_err(|e| e.to_string())?;
    let backend = statekit::connect(&config).await.map_err(|e| e.to_string())?;
    Ok((backend, server))
}

/// A suffix that keeps tables of concurrent runs apart.
fn unique_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}
