//! End-to-end against every compiled-in backend on a real server: the
//! built binary's `migrate` and `check` through a config file, and the
//! example application, unchanged, through `statekit::connect`.

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

/// `migrate` twice (idempotent), then the whole kit at small scale.
#[allow(dead_code)]
fn migrate_and_check(config: &str) {
    let path = write_config(&format!("{:08x}.toml", fastrand_u32()), config);
    let path = path.to_str().unwrap();
    statekit_ok(&["migrate", "-c", path]);
    statekit_ok(&["migrate", "-c", path]);
    let report = statekit_ok(&["check", "--scale", "small", "-c", path]);
    let all = conformance::Property::ALL.len();
    assert!(report.contains(&format!("{all} properties: {all} passed, 0 failed")), "{report}");
}

#[allow(dead_code)]
async fn run_app(config: &str) {
    let config = statekit::Config::from_toml(config, "inline.toml".as_ref()).unwrap();
    let backend = statekit::connect(&config).await.unwrap();
    app::app(backend).await.unwrap();
}

#[allow(dead_code)]
fn fastrand_u32() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_app_runs_in_memory() {
    run_app("[state]\nbackend = \"memory\"\n").await;
}

#[cfg(feature = "redis")]
mod redis {
    use super::*;

    fn config(server: &test_servers::Server) -> String {
        format!("[state]\nbackend = \"redis\"\nurl = \"{}\"\nprefix = \"e2e{:x}\"\n", server.url(), fastrand_u32())
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
}

#[cfg(feature = "postgres")]
mod postgres {
    use super::*;

    fn config(server: &test_servers::Server) -> String {
        format!("[state]\nbackend = \"postgres\"\nurl = \"{}\"\nprefix = \"e2e{:x}\"\n", server.url(), fastrand_u32())
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
}

#[cfg(feature = "dynamodb")]
mod dynamodb {
    use super::*;

    /// DynamoDB Local takes any letters-and-digits credentials; a region and
    /// static keys keep the SDK from probing for AWS credentials.
    fn config(server: &test_servers::Server) -> String {
        format!(
            "[state]\nbackend = \"dynamodb\"\nurl = \"{}\"\nregion = \"us-east-1\"\ntable_name = \"e2e{:x}\"\n\
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
        let config = config(server);
        let parsed = statekit::Config::from_toml(&config, "inline.toml".as_ref()).unwrap();
        statekit::migrate(&parsed).await.unwrap();
        run_app(&config).await;
    }
}
