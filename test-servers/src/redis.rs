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

/// How many nodes a private cluster has: three masters, one replica each.
const CLUSTER_NODES: usize = 6;

/// How long a fresh cluster may take to agree that every slot is served.
const CLUSTER_STARTUP: Duration = Duration::from_secs(30);

/// A private Redis Cluster on loopback: three masters with a replica each,
/// every node a plain `redis-server --cluster-enabled yes` in its own
/// directory, without persistence; joined by `redis-cli --cluster create`.
/// Stopped (and its directories removed) when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<Process>,
}

impl RedisCluster {
    /// Every node's URL (`redis://127.0.0.1:PORT`): the seed list a client
    /// starts from.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|node| format!("redis://127.0.0.1:{}", node.port())).collect()
    }

    /// The nodes, to pause or kill one.
    pub fn nodes_mut(&mut self) -> &mut [Process] {
        &mut self.nodes
    }
}

/// Starts a private [`RedisCluster`].
///
/// Each node also listens on its port + 10000 (the cluster bus), so ports
/// are picked below 55536 with both free.
///
/// # Errors
/// A message saying what to install when `redis-server` or `redis-cli` is
/// missing, or why the cluster did not form.
pub fn redis_cluster() -> Result<RedisCluster, String> {
    let server = find_binary("redis-server", SEARCH_DIRS)
        .ok_or("redis-server was not found: install the Debian package `redis-server`")?;
    let cli = find_binary("redis-cli", SEARCH_DIRS)
        .ok_or("redis-cli was not found: install the Debian package `redis-tools` (or `redis-server`)")?;
    let mut nodes = Vec::with_capacity(CLUSTER_NODES);
    let mut ports = Vec::with_capacity(CLUSTER_NODES);
    while nodes.len() < CLUSTER_NODES {
        let port = cluster_port(&ports)?;
        let dir = temp_dir("redis-cluster")?;
        let mut command = Command::new(&server);
        command
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"])
            .args(["--cluster-node-timeout", "5000"])
            .arg("--dir")
            .arg(&dir);
        let mut process = Process::spawn("redis-server (cluster node)", command, dir, port)?;
        wait_for_port(port, STARTUP)?;
        if !process.is_running() {
            return Err(format!("a cluster node exited; port {port} was taken by another process"));
        }
        ports.push(port);
        nodes.push(process);
    }
    let mut create = Command::new(&cli);
    create.arg("--cluster").arg("create");
    for port in &ports {
        create.arg(format!("127.0.0.1:{port}"));
    }
    create.args(["--cluster-replicas", "1", "--cluster-yes"]);
    let output = create.output().map_err(|e| format!("cannot run {}: {e}", cli.display()))?;
    if !output.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    // Every node must see every slot served before a client can rely on
    // the slot map it reads from any of them.
    let deadline = std::time::Instant::now() + CLUSTER_STARTUP;
    for port in &ports {
        loop {
            let info = Command::new(&cli).args(["-p", &port.to_string(), "cluster", "info"]).output();
            if matches!(&info, Ok(out) if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")) {
                break;
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "the cluster node on port {port} did not reach cluster_state:ok within {CLUSTER_STARTUP:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(RedisCluster { nodes })
}

/// A port below 55536 whose cluster-bus port (+10000) is free too, and not
/// one of `taken`.
fn cluster_port(taken: &[u16]) -> Result<u16, String> {
    use std::net::{Ipv4Addr, SocketAddrV4, TcpListener};
    let free = |port: u16| TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok();
    for _ in 0..200 {
        let port = fastrand::u16(20_000..45_000);
        if !taken.contains(&port) && !taken.contains(&(port - 10_000)) && free(port) && free(port + 10_000) {
            return Ok(port);
        }
    }
    Err("no free pair of loopback ports (port, port + 10000) below 55536".to_owned())
}
