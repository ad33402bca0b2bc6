//! The whole conformance kit against a real PostgreSQL: a private cluster
//! per test (or the server named by `STATEKIT_POSTGRES_URL`).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use state_postgres::PostgresConfig;

conformance::suite!(postgres, async {
    let server = test_servers::postgres::postgres()?;
    // A short reaper interval so the reaper runs during the properties,
    // concurrently with their writes.
    let config = PostgresConfig::new(server.url()).with_reap_interval(Some(Duration::from_millis(500)));
    let backend = state_postgres::backend(config).await.map_err(|e| e.to_string())?;
    Ok::<_, String>(conformance::Subject::from(backend).keep_alive(server))
});
