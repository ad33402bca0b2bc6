//! Backends for benchmarks, provisioned the way the tests provision them:
//! the in-memory store, and private Redis, PostgreSQL and DynamoDB Local
//! servers (or the endpoints named by `STATEKIT_*_URL`). A backend whose
//! server cannot be started is reported as skipped with the reason —
//! benchmarks, unlike CI tests, may skip.

use state_api::Backend;
use statekit::Config;
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
    let servers: [(&'static str, Start); 3] = [
        ("redis", test_servers::redis::redis),
        ("postgres", test_servers::postgres::postgres),
        ("dynamodb", test_servers::dynamodb::dynamodb),
    ];
    for (name, start) in servers {
        match connect(name, start).await {
            Ok((backend, server)) => ready.push(Provisioned { name, backend, server: Some(server) }),
            Err(reason) => skipped.push((name, reason)),
        }
    }
    (ready, skipped)
}

async fn connect(name: &str, start: fn() -> Result<Server, String>) -> Result<(Backend, Server), String> {
    let server = start()?;
    let mut state = format!("[state]\nbackend = \"{name}\"\nurl = \"{}\"\n", server.url());
    if name == "dynamodb" {
        // DynamoDB Local takes any letters-and-digits keys; static ones keep
        // the SDK from looking for real AWS credentials.
        state += &format!(
            "region = \"us-east-1\"\ntable_name = \"statekit_bench_{:08x}\"\n\
             access_key_id = \"statekitlocal\"\nsecret_access_key = \"statekitlocal\"\n",
            unique_suffix()
        );
    }
    let config = Config::from_toml(&state, "bench.toml".as_ref()).map_err(|e| e.to_string())?;
    // Connecting creates the PostgreSQL tables and the DynamoDB table.
    let backend = statekit::connect(&config).await.map_err(|e| e.to_string())?;
    Ok((backend, server))
}

/// A suffix that keeps tables of concurrent runs apart.
fn unique_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}
