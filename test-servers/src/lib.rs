//! # test-servers: disposable servers for backend tests and benchmarks
//!
//! The statekit backend crates, the CLI's end-to-end tests and the
//! benchmarks all need a real server to talk to; this crate provides them,
//! so no test carries its own launcher and the conformance kit stays free
//! of any backend. It only spawns processes and never links a client
//! library: [`redis`], [`postgres`] and [`dynamodb`] (DynamoDB Local).
//!
//! A test first uses an endpoint from the environment
//! (`STATEKIT_REDIS_URL`, `STATEKIT_POSTGRES_URL`, `STATEKIT_DYNAMODB_URL`);
//! otherwise it starts a private server from local binaries on a free
//! loopback port, in a temporary directory, and stops it when the returned
//! [`Server`] is dropped. A watchdog process also stops it if the test
//! process dies without dropping it. A missing binary is an error that says
//! what to install — never a silent skip.
//!
//! ```no_run
//! # fn main() -> Result<(), String> {
//! // `STATEKIT_REDIS_URL` if set, else a private redis-server.
//! let server = test_servers::redis::redis()?;
//! println!("testing against {}", server.url());
//! drop(server); // stops a private server and removes its directory
//! # Ok(()) }
//! ```
//!
//! The helpers the launchers share work on their own too:
//!
//! ```
//! # fn main() -> Result<(), String> {
//! let port = test_servers::free_port()?;
//! let server = test_servers::Server::external(format!("http://127.0.0.1:{port}"));
//! assert!(!server.is_private());
//! assert!(test_servers::wait_for_port(port, std::time::Duration::from_millis(50)).is_err());
//! # Ok(()) }
//! ```

pub mod dynamodb;
pub mod postgres;
pub mod redis;

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A server the tests talk to: either one named by the environment, or a
/// private process that lives as long as this value.
#[derive(Debug)]
pub struct Server {
    url: String,
    process: Option<Process>,
}

impl Server {
    /// A server someone else runs.
    pub fn external(url: impl Into<String>) -> Server {
        Server { url: url.into(), process: None }
    }

    /// A private server process.
    pub fn private(url: impl Into<String>, process: Process) -> Server {
        Server { url: url.into(), process: Some(process) }
    }

    /// The URL to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's TCP address, from the URL's authority (`host:port`
    /// after any `user:password@`), resolved.
    ///
    /// # Errors
    /// When the URL names no host and port that resolve.
    pub fn socket_address(&self) -> Result<std::net::SocketAddr, String> {
        use std::net::ToSocketAddrs;
        let rest = self.url.split_once("://").map_or(self.url.as_str(), |(_, rest)| rest);
        let authority = rest.split(['/', '?']).next().unwrap_or(rest);
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
        host_port
            .to_socket_addrs()
            .map_err(|e| format!("the server URL {} names no address: {e}", self.url))?
            .next()
            .ok_or_else(|| format!("the server URL {} names no address", self.url))
    }

    /// The URL with its `host:port` replaced by `address` (a proxy's).
    pub fn url_via(&self, address: std::net::SocketAddr) -> String {
        let (scheme, rest) = self.url.split_once("://").unwrap_or(("", self.url.as_str()));
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let user = authority.rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
        let scheme = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
        format!("{scheme}{user}{address}{path}")
    }

    /// Whether this server was started by the test (so it may be stopped
    /// and restarted).
    pub fn is_private(&self) -> bool {
        self.process.is_some()
    }

    /// The private process, for tests that stop and restart it.
    pub fn process_mut(&mut self) -> Option<&mut Process> {
        self.process.as_mut()
    }
}

/// A child process with its working directory, killed and cleaned up on
/// drop.
#[derive(Debug)]
pub struct Process {
    name: &'static str,
    child: Child,
    watchdog: Option<Child>,
    dir: PathBuf,
    port: u16,
    restart: Command,
}

impl Process {
    /// Spawns `command` (quiet, in `dir`) and a watchdog that kills it if
    /// this test process exits without dropping the returned value.
    ///
    /// # Errors
    /// A message naming the program if it cannot be started.
    pub fn spawn(name: &'static str, command: Command, dir: PathBuf, port: u16) -> Result<Process, String> {
        let mut restart = Command::new(command.get_program());
        restart.args(command.get_args()).current_dir(&dir).stdin(Stdio::null()).stdout(Stdio::null());
        restart.stderr(Stdio::null());
        for (key, value) in command.get_envs() {
            if let Some(value) = value {
                restart.env(key, value);
            }
        }
        let mut process = Process { name, child: spawn_quiet(&mut restart, name)?, watchdog: None, dir, port, restart };
        process.watchdog = watchdog(process.child.id());
        Ok(process)
    }

    /// The loopback port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's working directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Whether the process is still running. After [`wait_for_port`]
    /// succeeds this tells a server that bound its port apart from one that
    /// died while someone else took the port.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Stops the server abruptly (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }

    /// Freezes the server (SIGSTOP to it and its children), as a stalled
    /// host or a long pause would: connections stay open, nothing answers.
    ///
    /// # Errors
    /// A message if the signal cannot be sent.
    pub fn pause(&self) -> Result<(), String> {
        self.signal("STOP")
    }

    /// Lets a [paused](Self::pause) server run again (SIGCONT).
    ///
    /// # Errors
    /// A message if the signal cannot be sent.
    pub fn resume(&self) -> Result<(), String> {
        self.signal("CONT")
    }

    /// Sends `signal` to the server and to its children (PostgreSQL serves
    /// each connection from a child of the postmaster).
    fn signal(&self, signal: &str) -> Result<(), String> {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(&pid).status();
        if !matches!(sent, Ok(status) if status.success()) {
            return Err(format!("cannot send SIG{signal} to {} (pid {pid})", self.name));
        }
        // pkill answers 1 when the server has no children: not an error.
        let _ = Command::new("pkill").arg(format!("-{signal}")).args(["-P", &pid]).status();
        Ok(())
    }

    /// Starts the server again with the same command, port and directory,
    /// and waits until it accepts connections.
    ///
    /// # Errors
    /// A message if it cannot be started or does not listen in time.
    pub fn restart(&mut self, timeout: Duration) -> Result<(), String> {
        self.kill();
        self.child = spawn_quiet(&mut self.restart, self.name)?;
        self.watchdog = watchdog(self.child.id());
        wait_for_port(self.port, timeout).map_err(|e| format!("{} did not come back: {e}", self.name))
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn spawn_quiet(command: &mut Command, name: &str) -> Result<Child, String> {
    command.spawn().map_err(|e| format!("cannot start {name} ({:?}): {e}", command.get_program()))
}

/// A shell loop that kills `child` once this process is gone, so a crashed
/// or aborted test run leaves no server behind.
fn watchdog(child: u32) -> Option<Child> {
    let parent = std::process::id();
    let script = format!("while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -9 {child} 2>/dev/null");
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// # Errors
/// A message if no port can be bound.
pub fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| format!("cannot bind a loopback port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

/// Waits until something accepts TCP connections on `127.0.0.1:port`.
///
/// # Errors
/// A message after `timeout`.
pub fn wait_for_port(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(format!("nothing listened on 127.0.0.1:{port} within {timeout:?}"))
}

/// A fresh private directory under the system temp dir.
///
/// # Errors
/// A message if it cannot be created.
pub fn temp_dir(label: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("statekit-{label}-{}-{:08x}", std::process::id(), fastrand::u32(..)));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// Finds an executable on `PATH`, then in `extra` directories (a trailing
/// `*` in an extra entry matches any subdirectory name, newest last).
pub fn find_binary(name: &str, extra: &[&str]) -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join(name)).collect::<Vec<_>>())
        .unwrap_or_default();
    let mut candidates = on_path;
    for pattern in extra {
        candidates.extend(expand(pattern).into_iter().rev().map(|d| d.join(name)));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// Expands one `*` path component into the sorted matching directories.
fn expand(pattern: &str) -> Vec<PathBuf> {
    let Some((head, tail)) = pattern.split_once('*') else { return vec![PathBuf::from(pattern)] };
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(head)
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join(tail.trim_start_matches('/'))).collect())
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// A blocking action on a shared test server's process (pause it, resume
/// it), as the kit's `ServerControl` takes it; nothing for an external
/// server.
pub fn on_process(
    server: &std::sync::Arc<std::sync::Mutex<Server>>,
    action: fn(&mut Process) -> Result<(), String>,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    on_server(server, move |server| server.process_mut().map_or(Ok(()), action))
}

/// A blocking action on a shared test server (a backend's `restart`), as
/// the kit's `ServerControl` takes it.
pub fn on_server(
    server: &std::sync::Arc<std::sync::Mutex<Server>>,
    action: impl Fn(&mut Server) -> Result<(), String> + Send + Sync + 'static,
) -> impl Fn() -> Result<(), String> + Send + Sync + 'static {
    let server = std::sync::Arc::clone(server);
    move || action(&mut *server.lock().map_err(|e| e.to_string())?)
}
