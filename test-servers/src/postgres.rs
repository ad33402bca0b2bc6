//! A disposable PostgreSQL cluster: `initdb` in a temporary directory, then
//! `postgres` on a free loopback port with a private socket directory,
//! tuned for tests (no fsync), stopped and deleted when the [`Server`] is
//! dropped.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (a CI
//! container), the cluster belongs to the unprivileged `postgres` user that
//! the Debian package creates: the directory is handed to it, and `initdb`
//! and `postgres` are started through `setpriv`, which switches user and
//! then *executes* the program in the same process. That matters: the
//! process this crate kills (and its watchdog) is then `postgres` itself, not
//! a `su`/`runuser` parent that would die and leave the server running.
//!
//! This module only spawns processes; it knows nothing of any client
//! library. Readiness is checked with `pg_isready`, because an open port is
//! not enough: the server accepts connections while still starting up and
//! refuses them with "the database system is starting up".

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::{Process, Server, find_binary, free_port, temp_dir};

/// Where Debian's `postgresql` package installs the server binaries.
const DEBIAN_BIN_DIRS: &[&str] = &["/usr/lib/postgresql/*/bin"];

/// How long a fresh or restarted cluster may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

const INSTALL_HINT: &str = "install the Debian package `postgresql` (binaries under /usr/lib/postgresql/<version>/bin), \
     or set STATEKIT_POSTGRES_URL to a server to use";

/// A PostgreSQL server for tests: the one named by `STATEKIT_POSTGRES_URL`
/// if set, else a private cluster on a free loopback port, whose URL is
/// `postgres://postgres@127.0.0.1:PORT/postgres` (trust authentication).
///
/// # Errors
/// A message saying what to install when the binaries are missing, or why
/// the cluster could not be created or started.
pub fn postgres() -> Result<Server, String> {
    if let Some(url) = std::env::var("STATEKIT_POSTGRES_URL").ok().filter(|u| !u.trim().is_empty()) {
        return Ok(Server::external(url));
    }
    private(Durability::Throwaway)
}

/// A private cluster configured to keep every acknowledged commit across a
/// crash (`fsync`, `synchronous_commit` and `full_page_writes` on), for
/// restart tests. Always private: the test kills and restarts it.
///
/// # Errors
/// As for [`postgres`].
pub fn postgres_durable() -> Result<Server, String> {
    private(Durability::Durable)
}

/// Whether a private cluster trades durability for speed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Durability {
    Throwaway,
    Durable,
}

fn private(durability: Durability) -> Result<Server, String> {
    let binaries = Binaries::find()?;
    let user = RunAs::for_this_process()?;
    let dir = temp_dir("postgres")?;
    // Until the Process owns the directory, remove it ourselves on failure.
    let started = start(&binaries, &user, &dir, durability);
    if started.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    started
}

/// Kills a private server abruptly (SIGKILL, as a crash would), waits for
/// its orphaned backends to exit, starts it again on the same port and data
/// directory, and waits until it accepts connections again (after crash
/// recovery). An external server is left alone.
///
/// Use this rather than [`Process::restart`]: PostgreSQL refuses to start
/// while processes of the killed server still hold its shared memory, and
/// an open port does not mean it is ready.
///
/// # Errors
/// A message if the server does not come back within a minute.
pub fn restart(server: &mut Server) -> Result<(), String> {
    let Some(process) = server.process_mut() else { return Ok(()) };
    let port = process.port();
    let data = process.dir().join("data");
    process.kill();
    wait_for_orphans(&data, Duration::from_secs(20));
    process.restart(READY_TIMEOUT)?;
    let binaries = Binaries::find()?;
    wait_until_ready(&binaries, port, READY_TIMEOUT)
}

/// The binaries of one PostgreSQL installation.
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
    pg_isready: Option<PathBuf>,
}

impl Binaries {
    /// Finds `postgres`, then takes `initdb` and `pg_isready` from the same
    /// directory (after resolving symlinks), so the two never come from
    /// different major versions.
    fn find() -> Result<Binaries, String> {
        let postgres = find_binary("postgres", DEBIAN_BIN_DIRS)
            .ok_or_else(|| format!("the PostgreSQL server binary `postgres` was not found: {INSTALL_HINT}"))?;
        let postgres = std::fs::canonicalize(&postgres).unwrap_or(postgres);
        let sibling = |name: &str| postgres.parent().map(|dir| dir.join(name)).filter(|p| p.is_file());
        let initdb = sibling("initdb")
            .or_else(|| find_binary("initdb", DEBIAN_BIN_DIRS))
            .ok_or_else(|| format!("`initdb` was not found: {INSTALL_HINT}"))?;
        let pg_isready = sibling("pg_isready").or_else(|| find_binary("pg_isready", DEBIAN_BIN_DIRS));
        Ok(Binaries { initdb, postgres, pg_isready })
    }
}

/// Whom the server runs as: this process's user, or — when that is root —
/// the `postgres` user.
enum RunAs {
    Me,
    Postgres { uid: u32, gid: u32, setpriv: PathBuf },
}

impl RunAs {
    fn for_this_process() -> Result<RunAs, String> {
        if !running_as_root() {
            return Ok(RunAs::Me);
        }
        let (uid, gid) = postgres_user().ok_or_else(|| {
            format!(
                "the tests run as root, which PostgreSQL refuses, and there is no `postgres` user to run it as: \
                 {INSTALL_HINT} (the package creates the user), or run the tests as another user"
            )
        })?;
        let setpriv = find_binary("setpriv", &["/usr/bin", "/bin"]).ok_or_else(|| {
            "the tests run as root and `setpriv` (util-linux) is needed to start PostgreSQL as `postgres`".to_owned()
        })?;
        Ok(RunAs::Postgres { uid, gid, setpriv })
    }

    /// A command running `program` as this user, in the same process.
    fn command(&self, program: &Path) -> Command {
        match self {
            RunAs::Me => Command::new(program),
            RunAs::Postgres { uid, gid, setpriv } => {
                let mut command = Command::new(setpriv);
                command
                    .arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program)
                    // The server resolves its own paths and ignores $HOME, but
                    // libraries look at these; keep them pointing at its home.
                    .env("HOME", "/var/lib/postgresql")
                    .env("USER", "postgres")
                    .env("LOGNAME", "postgres");
                command
            }
        }
    }

    /// Gives `path` to this user (a directory the server must own).
    fn hand_over(&self, path: &Path) -> Result<(), String> {
        match self {
            RunAs::Me => Ok(()),
            RunAs::Postgres { uid, gid, .. } => std::os::unix::fs::chown(path, Some(*uid), Some(*gid))
                .map_err(|e| format!("cannot hand {} to the postgres user: {e}", path.display())),
        }
    }
}

fn start(binaries: &Binaries, user: &RunAs, dir: &Path, durability: Durability) -> Result<Server, String> {
    let data = dir.join("data");
    let sockets = dir.join("sockets");
    std::fs::create_dir_all(&sockets).map_err(|e| format!("cannot create {}: {e}", sockets.display()))?;
    user.hand_over(dir)?;
    user.hand_over(&sockets)?;
    init_cluster(binaries, user, &data)?;
    let port = free_port()?;
    let mut command = user.command(&binaries.postgres);
    command.arg("-D").arg(&data).arg("-p").arg(port.to_string()).arg("-k").arg(&sockets);
    // Tests run in parallel, each with its own pool.
    let mut settings = vec!["listen_addresses=127.0.0.1", "max_connections=300"];
    if durability == Durability::Throwaway {
        // A throwaway cluster: durability only costs time here.
        settings.extend(["fsync=off", "synchronous_commit=off", "full_page_writes=off"]);
    }
    for setting in settings {
        command.arg("-c").arg(setting);
    }
    let process = Process::spawn("postgres", command, dir.to_path_buf(), port)?;
    // From here the Process owns the directory and removes it on drop.
    wait_until_ready(binaries, port, READY_TIMEOUT)?;
    Ok(Server::private(format!("postgres://postgres@127.0.0.1:{port}/postgres"), process))
}

/// Creates the cluster: superuser `postgres`, trust authentication (only
/// this machine's loopback and the private socket directory can reach
/// it), UTF-8, byte-order collation.
fn init_cluster(binaries: &Binaries, user: &RunAs, data: &Path) -> Result<(), String> {
    let mut initdb = user.command(&binaries.initdb);
    initdb
        .arg("-D")
        .arg(data)
        .args(["-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync"])
        .stdin(Stdio::null());
    let output = initdb.output().map_err(|e| format!("cannot run {}: {e}", binaries.initdb.display()))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "initdb failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim().lines().last().unwrap_or("no message")
    ))
}

/// Waits until the server on `port` accepts connections: `pg_isready`
/// exits 0 only then (1 while starting up, 2 while nothing answers).
fn wait_until_ready(binaries: &Binaries, port: u16, timeout: Duration) -> Result<(), String> {
    let Some(pg_isready) = &binaries.pg_isready else {
        // Without pg_isready, an open port is the best available sign; the
        // clients' own connection retries cover the start-up window.
        return super::wait_for_port(port, timeout);
    };
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let ready = Command::new(pg_isready)
            .args(["-q", "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres", "-d", "postgres", "-t", "2"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run {}: {e}", pg_isready.display()))?;
        if ready.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("PostgreSQL did not accept connections on 127.0.0.1:{port} within {timeout:?}"))
}

/// After the postmaster is killed, its backends notice and exit within
/// moments; until they have, a new postmaster refuses to start ("shared
/// memory block is still in use"). Every server process's working
/// directory is the data directory, which identifies them exactly.
fn wait_for_orphans(data: &Path, timeout: Duration) {
    let data = std::fs::canonicalize(data).unwrap_or_else(|_| data.to_path_buf());
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && processes_in(&data) {
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether any process has `dir` as its working directory (Linux `/proc`;
/// elsewhere this reports none and the restart relies on timing).
fn processes_in(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else { return false };
    entries.filter_map(Result::ok).any(|entry| {
        let is_pid = entry.file_name().to_str().is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()));
        is_pid && std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == dir)
    })
}

fn running_as_root() -> bool {
    // `id -u` rather than a libc binding: this crate has no unsafe code and
    // no libc dependency. A failure to tell means "not root".
    Command::new("id")
        .arg("-u")
        .stderr(Stdio::null())
        .output()
        .ok()
        .is_some_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// The uid and gid of the `postgres` user, from `/etc/passwd`.
fn postgres_user() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        if fields.next()? != "postgres" {
            return None;
        }
        let _password = fields.next()?;
        Some((fields.next()?.parse().ok()?, fields.next()?.parse().ok()?))
    })
}
