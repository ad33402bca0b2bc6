//! End-to-end against every compiled-in backend on a real server: the
//! built binary's `migrate` and `check` through an application's config
//! file, the example application, unchanged, through `statekit::connect`,
//! and the one rule for schema creation: `connect` creates what is
//! missing, and with `migrate_on_connect = false` creates nothing.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../statekit/examples/app.rs"]
#[allow(dead_code)]
mod app;

use std::path::PathBuf;
use std::process::Command;

fn write_config(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("statekit-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

/// Runs the binary and returns its combined output, asserting success.
fn statekit_ok(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_statekit")).args(args).output().expect("the binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "statekit {args:?} failed:\n{text}");
    text
}

/// A config file laid out as an application's: its own tables around
/// statekit's `[state]`, whose body is `state`.
fn app_file(state: &str) -> String {
    format!(
        "[server]\nlisten = \"0.0.0.0:8080\"\n\n[state]\n{state}\n[rules]\ndeny = [\"admin/*\"]\n\
         [rules.limits]\nper_minute = 600\n"
    )
}

fn parse(state: &str) -> statekit::Config {
    statekit::Config::from_toml(&app_file(state), "app.toml".as_ref()).unwrap()
}

/// `migrate` twice (idempotent), then the whole kit at small scale, all
/// through an application's config file.
#[allow(dead_code)]
fn migrate_and_check(state: &str) {
    let path = write_config(&format!("{:08x}.toml", fastrand_u32()), &app_file(state));
    let path = path.to_str().unwrap();
    statekit_ok(&["migrate", "-c", path]);
    statekit_ok(&["migrate", "-c", path]);
    let report = statekit_ok(&["check", "--scale", "small", "-c", path]);
    let all = conformance::Property::ALL.len();
    assert!(report.contains(&format!("{all} properties: ")), "{report}");
    assert!(report.contains(" 0 failed") && !report.contains("FAILED"), "{report}");
}

/// The example application on a fresh connection: no `migrate` first,
/// since connecting creates what is missing.
#[allow(dead_code)]
async fn run_app(state: &str) {
    let backend = statekit::connect(&parse(state)).await.unwrap();
    app::app(backend).await.unwrap();
}

/// A number that differs between calls, to name fresh tables and prefixes.
#[allow(dead_code)]
fn fastrand_u32() -> u32 {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    nanos ^ CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed).rotate_right(8)
}

/// Writes one entry and reads it back.
#[allow(dead_code)]
async fn usable(backend: &statekit::Backend) -> Result<(), statekit::StateError> {
    let key = statekit::Key::new("e2e-schema", "probe")?;
    backend.store.set(&key, "x".into(), None).await?;
    assert!(backend.store.get(&key).await?.is_some());
    Ok(())
}

/// The schema-creation rule on a backend that has something to create;
/// `fresh` returns a `[state]` body naming a namespace (table, prefix) that
/// does not exist yet. With `migrate_on_connect` on (the default), connect
/// creates it, so a later `migrate` has nothing to do; with it off,
/// connect creates nothing (it fails, or the first write does), `migrate`
/// creates it, and connecting again works.
#[allow(dead_code)]
async fn connect_creates_what_is_missing(fresh: impl Fn() -> String, nothing_to_do: &str, created: &str) {
    let on = parse(&fresh());
    assert!(on.migrate_on_connect());
    usable(&statekit::connect(&on).await.unwrap()).await.unwrap();
    let report = statekit::migrate(&on).await.unwrap();
    assert!(report.contains(nothing_to_do), "connect left something to create: {report}");

    let off = parse(&format!("{}migrate_on_connect = false\n", fresh()));
    let first = match statekit::connect(&off).await {
        Ok(backend) => usable(&backend).await,
        Err(statekit::Error::State(error)) => Err(error),
        Err(other) => panic!("{other}"),
    };
    let error = first.expect_err("with migrate_on_connect = false, connect must not create anything");
    assert!(error.to_string().contains("migrate"), "the error should say to run migrate: {error}");
    let report = statekit::migrate(&off).await.unwrap();
    assert!(report.contains(created), "{report}");
    usable(&statekit::connect(&off).await.unwrap()).await.unwrap();
}

/// Where there is nothing to create, both settings connect and `migrate`
/// says so.
#[allow(dead_code)]
async fn nothing_to_create(state: &str, report: &str) {
    for migrate in ["true", "false"] {
        let config = parse(&format!("{state}migrate_on_connect = {migrate}\n"));
        usable(&statekit::connect(&config).await.unwrap()).await.unwrap();
        assert!(statekit::migrate(&config).await.unwrap().contains(report));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_runs_in_memory() {
    run_app("backend = \"memory\"\n").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_has_nothing_to_create() {
    nothing_to_create("backend = \"memory\"\n", "memory: nothing to create").await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    fn config(server: &test_servers::Server) -> String {
        format!("backend = \"redis\"\nurl = \"{}\"\nprefix = \"e2e{:x}\"\n", server.url(), fastrand_u32())
    }

    #[test]
    fn migrate_and_check_pass_through_a_config_file() {
        let server = test_servers::redis::redis().unwrap();
        migrate_and_check(&config(&server));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_example_app_runs_unchanged() {
        let server = test_servers::redis::redis().unwrap();
        run_app(&config(&server)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis_has_nothing_to_create() {
        let server = test_servers::redis::redis().unwrap();
        nothing_to_create(&config(&server), "redis: nothing to create").await;
    }

    /// `scripts/servers start <topology>` with `ports` (its port
    /// variables), then `statekit check` on the example file for it, its
    /// `urls` pointed at those ports through `STATEKIT_URLS`; the servers
    /// are stopped whatever happens.
    fn check_example_on_scripted_servers(topology: &str, ports: &[(&str, u16)], urls: &str, example: &str) {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let dir = std::env::temp_dir().join(format!("statekit-servers-{topology}-{:08x}", fastrand_u32()));
        let servers = |action: &str| {
            let mut command = Command::new("bash");
            command.current_dir(root).args(["scripts/servers", action, topology]);
            command.env("STATEKIT_SERVERS_DIR", &dir).envs(ports.iter().map(|(name, port)| (name, port.to_string())));
            command.output().expect("bash runs")
        };
        struct Stop<F: Fn()>(F);
        impl<F: Fn()> Drop for Stop<F> {
            fn drop(&mut self) {
                (self.0)();
            }
        }
        let _stop = Stop(|| {
            servers("stop");
            let _ = std::fs::remove_dir_all(&dir);
        });
        let started = servers("start");
        assert!(started.status.success(), "{}", String::from_utf8_lossy(&started.stderr));
        let out = Command::new(env!("CARGO_BIN_EXE_statekit"))
            .current_dir(root)
            .args(["check", "--scale", "small", "-c", example])
            .env("STATEKIT_URLS", urls)
            .env("STATEKIT_PREFIX", format!("e2e{:x}", fastrand_u32()))
            .output()
            .expect("the binary runs");
        let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "statekit check -c {example} failed:\n{report}");
        assert!(report.contains(" 0 failed") && !report.contains("FAILED"), "{report}");
    }

    /// Two free loopback ports `base` and `base + 10000`... for `count`
    /// consecutive bases (a cluster node's port and its bus port).
    fn free_run(count: u16, bus: bool) -> u16 {
        use std::net::TcpListener;
        let free = |port: u16| TcpListener::bind(("127.0.0.1", port)).is_ok();
        for _ in 0..500 {
            let base = 20_000 + (fastrand_u32() % 25_000) as u16;
            if (0..count).all(|i| free(base + i) && (!bus || free(base + i + 10_000))) {
                return base;
            }
        }
        panic!("no run of {count} free ports");
    }

    #[test]
    fn check_passes_on_the_example_cluster_started_by_the_servers_script() {
        let base = free_run(6, true);
        let urls = (0..3).map(|i| format!("redis://127.0.0.1:{}", base + i)).collect::<Vec<_>>().join(",");
        check_example_on_scripted_servers(
            "redis-cluster",
            &[("REDIS_CLUSTER_PORT", base)],
            &urls,
            "examples/redis-cluster.toml",
        );
    }

    #[test]
    fn check_passes_on_the_example_sentinel_group_started_by_the_servers_script() {
        let (sentinels, master) = (free_run(3, false), free_run(2, false));
        let urls = (0..3).map(|i| format!("redis://127.0.0.1:{}", sentinels + i)).collect::<Vec<_>>().join(",");
        check_example_on_scripted_servers(
            "redis-sentinel",
            &[("REDIS_SENTINEL_PORT", sentinels), ("REDIS_SENTINEL_MASTER_PORT", master)],
            &urls,
            "examples/redis-sentinel.toml",
        );
    }

    #[test]
    fn check_faults_puts_a_proxy_in_front_of_the_configured_server() {
        let server = test_servers::redis::redis().unwrap();
        let path = write_config(&format!("{:08x}.toml", fastrand_u32()), &app_file(&config(&server)));
        let report = statekit_ok(&["check", "--faults", "-c", path.to_str().unwrap()]);
        assert!(report.contains("3 properties: 3 passed, 0 skipped, 0 failed"), "{report}");
        // The notes show that the faults reached the traffic.
        assert!(report.contains("indeterminate") && report.contains("broke"), "{report}");
        assert!(report.contains("recovery after 6 faults"), "{report}");
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    fn config(server: &test_servers::Server) -> String {
        format!("backend = \"postgres\"\nurl = \"{}\"\nprefix = \"e2e{:x}\"\n", server.url(), fastrand_u32())
    }

    #[test]
    fn migrate_and_check_pass_through_a_config_file() {
        let server = test_servers::postgres::postgres().unwrap();
        migrate_and_check(&config(&server));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_example_app_runs_unchanged() {
        let server = test_servers::postgres::postgres().unwrap();
        run_app(&config(&server)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_creates_the_tables_unless_told_not_to() {
        let server = test_servers::postgres::postgres().unwrap();
        connect_creates_what_is_missing(|| config(&server), "nothing to do", "applied migrations [1, 2, 3, 4]").await;
    }
}

#[cfg(feature = "dynamodb")]
mod dynamodb {
    use super::*;

    /// DynamoDB Local takes any letters-and-digits credentials; a region and
    /// static keys keep the SDK from probing for AWS credentials.
    fn config(server: &test_servers::Server) -> String {
        format!(
            "backend = \"dynamodb\"\nurl = \"{}\"\nregion = \"us-east-1\"\ntable_name = \"e2e{:x}\"\n\
             access_key_id = \"statekitlocal\"\nsecret_access_key = \"statekitlocal\"\n",
            server.url(),
            fastrand_u32()
        )
    }

    #[test]
    fn migrate_and_check_pass_through_a_config_file() {
        let server = test_servers::dynamodb::shared_dynamodb().unwrap();
        migrate_and_check(&config(server));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_example_app_runs_unchanged() {
        let server = test_servers::dynamodb::shared_dynamodb().unwrap();
        run_app(&config(server)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn connect_creates_the_table_unless_told_not_to() {
        let server = test_servers::dynamodb::shared_dynamodb().unwrap();
        connect_creates_what_is_missing(|| config(server), "up to date, nothing to do", "created the table").await;
    }
}
