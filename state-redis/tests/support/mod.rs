//! What the Redis suites share: the kit's fault target for a test server.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::{FaultTarget, ServerControl};
use state_redis::RedisConfig;

/// The same server reached through the kit's fault proxy, with timeouts
/// short enough for operations caught in a fault to give up while it lasts;
/// with control over the process when the test started it. What a crash
/// may lose, the store declares itself (from the server's settings).
pub fn fault_target(server: &Arc<Mutex<test_servers::Server>>) -> Result<FaultTarget, String> {
    configured_fault_target(server, |config| config)
}

/// [`fault_target`] with the suite's own settings applied to each client.
pub fn configured_fault_target(
    server: &Arc<Mutex<test_servers::Server>>,
    configure: fn(RedisConfig) -> RedisConfig,
) -> Result<FaultTarget, String> {
    let guard = server.lock().map_err(|e| e.to_string())?;
    let target = FaultTarget::new(guard.socket_address()?, move |address| {
        let config = RedisConfig::new(format!("redis://{address}"))
            .with_connect_timeout(Duration::from_millis(300))
            .with_command_timeout(Duration::from_millis(300));
        state_redis::backend(configure(config))
    });
    if !guard.is_private() {
        return Ok(target);
    }
    let control = ServerControl::new(
        test_servers::on_process(server, |p| p.pause()),
        test_servers::on_process(server, |p| p.resume()),
        test_servers::on_process(server, |p| p.restart(Duration::from_secs(10))),
    );
    Ok(target.with_server(control))
}
