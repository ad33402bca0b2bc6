//! What the PostgreSQL suites share: the kit's fault target for a test
//! server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::{FaultTarget, ServerControl};
use state_postgres::PostgresConfig;

/// The same server reached through the kit's fault proxy, with timeouts
/// short enough for operations caught in a fault to give up while it lasts;
/// with control over the cluster when the test started it. What a crash
/// may lose, the store declares itself (from the server's settings: the
/// suite's throwaway clusters run with `synchronous_commit=off`, and the
/// store declares them volatile).
pub fn fault_target(server: &Arc<Mutex<test_servers::Server>>) -> Result<FaultTarget, String> {
    let guard = server.lock().map_err(|e| e.to_string())?;
    let server_url = test_servers::Server::external(guard.url());
    let target = FaultTarget::new(guard.socket_address()?, move |address| {
        let config = PostgresConfig::new(server_url.url_via(address))
            .with_connect_timeout(Duration::from_millis(300))
            .with_statement_timeout(Duration::from_millis(300))
            .with_reap_interval(None);
        state_postgres::backend(config)
    });
    if !guard.is_private() {
        return Ok(target);
    }
    let control = ServerControl::new(
        test_servers::on_process(server, |p| p.pause()),
        test_servers::on_process(server, |p| p.resume()),
        test_servers::on_server(server, test_servers::postgres::restart),
    );
    Ok(target.with_server(control))
}
