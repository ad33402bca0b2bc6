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

    /// Every node's port, in the order of [`urls`](Self::urls).
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(Process::port).collect()
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
    redis_cluster_with_node_timeout(Duration::from_millis(5000))
}

/// A private [`RedisCluster`] whose nodes call a silent peer failed (and
/// its replica takes over) after `node_timeout` (`cluster-node-timeout`),
/// for failover tests.
///
/// # Errors
/// As for [`redis_cluster`].
pub fn redis_cluster_with_node_timeout(node_timeout: Duration) -> Result<RedisCluster, String> {
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
            .args(["--cluster-node-timeout", &node_timeout.as_millis().to_string()])
            .args(["--repl-diskless-sync-delay", "0"])
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
            // And every master must hear back from its replica: until then
            // a write that waits for a replica (`WAIT 1`) waits for the
            // initial sync, up to seconds after the slots are assigned.
            let synced = !cli_output(&cli, *port, &["info", "replication"]).contains("role:master")
                || replica_confirms(&cli, *port, 1);
            if synced && matches!(&info, Ok(out) if String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok")) {
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

/// The name private sentinels monitor their master by.
pub const SENTINEL_MASTER: &str = "statekit";

/// How long a master may stay silent before the sentinels call it down and
/// fail over: short, so failover tests take seconds.
pub const SENTINEL_DOWN_AFTER: Duration = Duration::from_millis(1000);

/// How many sentinels watch a private master; two of them must agree that
/// it is down.
const SENTINELS: usize = 3;

/// How long a fresh replication group may take until every sentinel knows
/// the replica and the other sentinels (they announce themselves every 2 s).
const SENTINEL_STARTUP: Duration = Duration::from_secs(30);

/// A private Redis replication group watched by Sentinel on loopback: a
/// master, its replicas (`--replicaof`; one unless asked for more), and
/// three sentinels (`redis-server --sentinel`, quorum 2) that fail over to
/// a replica after the master has been silent for
/// [`SENTINEL_DOWN_AFTER`]. No persistence. Stopped (and its directories
/// removed) when dropped.
#[derive(Debug)]
pub struct RedisSentinel {
    /// The data nodes: the first master, then its replicas. Which one is
    /// the master now is for the sentinels to say.
    nodes: Vec<Process>,
    sentinels: Vec<Process>,
    cli: std::path::PathBuf,
}

impl RedisSentinel {
    /// The sentinels' URLs (`redis://127.0.0.1:PORT`): what a client asks
    /// for the master's address.
    pub fn urls(&self) -> Vec<String> {
        self.sentinels.iter().map(|sentinel| format!("redis://127.0.0.1:{}", sentinel.port())).collect()
    }

    /// The name the sentinels know the master by ([`SENTINEL_MASTER`]).
    pub fn master_name(&self) -> &'static str {
        SENTINEL_MASTER
    }

    /// The data nodes, first master first, to kill or pause one.
    pub fn nodes_mut(&mut self) -> &mut [Process] {
        &mut self.nodes
    }

    /// The port of the node the sentinels currently call the master, as
    /// the first sentinel that answers says.
    ///
    /// # Errors
    /// When no sentinel answers.
    pub fn master_port(&self) -> Result<u16, String> {
        for sentinel in &self.sentinels {
            let text = self.query(sentinel.port(), &["sentinel", "get-master-addr-by-name", SENTINEL_MASTER]);
            if let Some(port) = text.lines().nth(1).and_then(|line| line.trim().parse().ok()) {
                return Ok(port);
            }
        }
        Err("no sentinel named a master".to_owned())
    }

    /// Waits until every sentinel knows the replicas and the other
    /// sentinels (they announce themselves every 2 s), so that a failover
    /// can happen.
    ///
    /// # Errors
    /// When that takes longer than 30 s.
    pub fn wait_until_formed(&self) -> Result<(), String> {
        let deadline = std::time::Instant::now() + SENTINEL_STARTUP;
        for sentinel in &self.sentinels {
            loop {
                let state = self.query(sentinel.port(), &["sentinel", "master", SENTINEL_MASTER]);
                let field = |name: &str| {
                    let mut lines = state.lines();
                    lines.find(|line| line.trim() == name).and_then(|_| lines.next()).map(|v| v.trim().to_owned())
                };
                if field("num-slaves").as_deref() == Some(&(self.nodes.len() - 1).to_string())
                    && field("num-other-sentinels").as_deref() == Some(&(SENTINELS - 1).to_string())
                {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    return Err(format!("the sentinels did not find each other within {SENTINEL_STARTUP:?}"));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    fn query(&self, port: u16, args: &[&str]) -> String {
        cli_output(&self.cli, port, args)
    }
}

/// Whether `replicas` replicas of the (empty, fresh) master on `port`
/// confirm a write within 100 ms: `FLUSHALL` (a write to the replication
/// stream, harmless on a new server) and `WAIT replicas 100` on one
/// connection.
fn replica_confirms(cli: &std::path::Path, port: u16, replicas: usize) -> bool {
    use std::io::Write;
    let child = Command::new(cli)
        .args(["-p", &port.to_string()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(format!("FLUSHALL\nWAIT {replicas} 100\n").as_bytes());
    }
    let Ok(output) = child.wait_with_output() else { return false };
    let confirmed = String::from_utf8_lossy(&output.stdout).lines().nth(1).map(|line| line.trim().to_owned());
    confirmed == Some(replicas.to_string())
}

/// What `redis-cli -p port args...` prints (empty when it fails).
fn cli_output(cli: &std::path::Path, port: u16, args: &[&str]) -> String {
    Command::new(cli)
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default()
}

/// Starts a private [`RedisSentinel`] group with one replica, and waits
/// until the replica has synchronised and every sentinel names the master.
/// (Until the sentinels have also found each other, a few seconds later,
/// they cannot fail over: see [`RedisSentinel::wait_until_formed`].)
///
/// # Errors
/// A message saying what to install when `redis-server` or `redis-cli` is
/// missing, or why the group did not form.
pub fn redis_sentinel() -> Result<RedisSentinel, String> {
    redis_sentinel_with_replicas(1)
}

/// A private [`RedisSentinel`] group whose master has `replicas` replicas
/// (at least one), as [`redis_sentinel`] starts it.
///
/// # Errors
/// As for [`redis_sentinel`].
pub fn redis_sentinel_with_replicas(replicas: usize) -> Result<RedisSentinel, String> {
    redis_sentinel_with(replicas, &Ok)
}

/// A private [`RedisSentinel`] group whose replicas follow the master
/// through the port `follow` returns for the master's port: a fault proxy
/// in front of the master, say, to hold the replication stream back. The
/// sentinels watch the master directly, and after a failover point the
/// replicas at the new master directly.
///
/// # Errors
/// As for [`redis_sentinel`], or what `follow` returns.
pub fn redis_sentinel_with(
    replicas: usize,
    follow: &dyn Fn(u16) -> Result<u16, String>,
) -> Result<RedisSentinel, String> {
    let server = find_binary("redis-server", SEARCH_DIRS)
        .ok_or("redis-server was not found: install the Debian package `redis-server`")?;
    let cli = find_binary("redis-cli", SEARCH_DIRS)
        .ok_or("redis-cli was not found: install the Debian package `redis-tools` (or `redis-server`)")?;
    let start = |label: &'static str, extra: &[String], config: Option<String>| -> Result<Process, String> {
        let port = free_port()?;
        let dir = temp_dir("redis-sentinel")?;
        let mut command = Command::new(&server);
        if let Some(config) = config {
            // A sentinel rewrites its configuration file: it must be its own.
            let file = dir.join("sentinel.conf");
            std::fs::write(&file, format!("port {port}\nbind 127.0.0.1\ndir {}\n{config}", dir.display()))
                .map_err(|e| format!("cannot write {}: {e}", file.display()))?;
            command.arg(&file).arg("--sentinel");
        } else {
            command
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&dir)
                .args(extra);
        }
        let mut process = Process::spawn(label, command, dir, port)?;
        wait_for_port(port, STARTUP)?;
        if !process.is_running() {
            return Err(format!("{label} exited; port {port} was taken by another process"));
        }
        Ok(process)
    };
    // Without the default 5 s pause before a diskless full sync, a replica
    // is ready at once (every node: any of them may be promoted).
    let no_delay = ["--repl-diskless-sync-delay".to_owned(), "0".to_owned()];
    let master = start("redis-server (master)", &no_delay, None)?;
    let master_port = master.port();
    let upstream = follow(master_port)?;
    let mut nodes = vec![master];
    for _ in 0..replicas.max(1) {
        let follow = ["--replicaof".to_owned(), "127.0.0.1".to_owned(), upstream.to_string()];
        nodes.push(start("redis-server (replica)", &[&no_delay[..], &follow[..]].concat(), None)?);
    }
    let query = |port: u16, args: &[&str]| cli_output(&cli, port, args);
    let deadline = std::time::Instant::now() + SENTINEL_STARTUP;
    let wait_until = |what: &str, ready: &dyn Fn() -> bool| -> Result<(), String> {
        while !ready() {
            if std::time::Instant::now() > deadline {
                return Err(format!("the sentinel group did not form within {SENTINEL_STARTUP:?}: {what}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(())
    };
    for replica in &nodes[1..] {
        wait_until("a replica never synchronised", &|| {
            query(replica.port(), &["info", "replication"]).contains("master_link_status:up")
        })?;
    }
    // A synchronised replica may still take seconds to confirm its first
    // write (`WAIT`): until it does, a store that waits for replicas would.
    wait_until("the replicas never confirmed a write", &|| replica_confirms(&cli, master_port, nodes.len() - 1))?;
    let monitor = format!(
        "sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {master_port} 2\n\
         sentinel down-after-milliseconds {SENTINEL_MASTER} {}\n\
         sentinel failover-timeout {SENTINEL_MASTER} 10000\n\
         sentinel parallel-syncs {SENTINEL_MASTER} 1\n",
        SENTINEL_DOWN_AFTER.as_millis()
    );
    let mut sentinels = Vec::with_capacity(SENTINELS);
    for _ in 0..SENTINELS {
        sentinels.push(start("redis-server --sentinel", &[], Some(monitor.clone()))?);
    }
    for sentinel in &sentinels {
        let port = sentinel.port();
        wait_until("a sentinel did not name the master", &|| {
            query(port, &["sentinel", "get-master-addr-by-name", SENTINEL_MASTER]).contains(&master_port.to_string())
        })?;
    }
    Ok(RedisSentinel { nodes, sentinels, cli })
}
