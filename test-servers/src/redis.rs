//! A disposable `redis-server`.
//!
//! The server is started without persistence (`--save ""`, no AOF) on a free
//! loopback port, in its own temporary directory, so nothing it does outlives
//! the test. It is a plain process: this crate never links a Redis client.

use std::process::Command;
use std::time::Duration;

use super::{Process, Server, find_binary, free_port, temp_dir, wait_for_port};

/// The environment variable naming an external Redis to use instead of a
/// private server, e.g. `redis://127.0.0.1:6379`.
pub const URL_VARIABLE: &str = "STATEKIT_REDIS_URL";

/// Where Debian and most distributions put `redis-server`, searched after `PATH`.
const SEARCH_DIRS: &[&str] = &["/usr/bin", "/usr/sbin", "/usr/local/bin"];

/// How long a fresh server may take to accept connections.
const STARTUP: Duration = Duration::from_secs(15);

/// A Redis for tests: the server named by `STATEKIT_REDIS_URL` when it is
/// set, otherwise a private `redis-server` on a free port of 127.0.0.1,
/// stopped (and its directory removed) when the returned [`Server`] is
/// dropped. The private server can be killed and restarted through
/// [`Server::process_mut`]; it keeps no data across a restart.
///
/// # Errors
/// A message saying what to install when `redis-server` is missing, or why
/// the server did not start.
pub fn redis() -> Result<Server, String> {
    if let Ok(url) = std::env::var(URL_VARIABLE)
        && !url.trim().is_empty()
    {
        return Ok(Server::external(url.trim()));
    }
    private(&["--save", "", "--appendonly", "no"])
}

/// A private `redis-server` that keeps every acknowledged write across a
/// crash (`appendonly yes`, `appendfsync always`, in its own directory), for
/// restart tests. Always private: the test kills and restarts it.
///
/// # Errors
/// As for [`redis`].
pub fn redis_durable() -> Result<Server, String> {
    private(&["--save", "", "--appendonly", "yes", "--appendfsync", "always"])
}

fn private(persistence: &[&str]) -> Result<Server, String> {
    let binary = find_binary("redis-server", SEARCH_DIRS).ok_or_else(|| {
        format!(
            "redis-server was not found on PATH or in {}: install the Debian package `redis-server` \
             (apt-get install redis-server), or set {URL_VARIABLE} to a Redis to test against",
            SEARCH_DIRS.join(", ")
        )
    })?;
    // A free port can be taken by someone else between the check and the
    // server's bind; a few attempts make that race harmless.
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let dir = temp_dir("redis")?;
        let mut command = Command::new(&binary);
        command.args(["--port", &port.to_string(), "--bind", "127.0.0.1"]).args(persistence).arg("--dir").arg(&dir);
        let mut process = Process::spawn("redis-server", command, dir, port)?;
        match wait_for_port(port, STARTUP) {
            Ok(()) if process.is_running() => {
                return Ok(Server::private(format!("redis://127.0.0.1:{port}"), process));
            }
            Ok(()) => last_error = format!("redis-server exited; port {port} was taken by another process"),
            Err(e) => {
                process.kill();
                last_error = e;
            }
        }
    }
    Err(format!("redis-server ({}) did not start: {last_error}", binary.display()))
}
