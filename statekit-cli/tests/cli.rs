//! End-to-end: the built `statekit` binary, as a user runs it.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::{Command, Output};

use conformance::Property;

fn statekit(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_statekit"))
        .args(args)
        .env_remove("STATEKIT_BACKEND")
        .env_remove("STATEKIT_URL")
        .env_remove("STATEKIT_MAX_VALUE_LEN")
        .env_remove("STATEKIT_MIGRATE_ON_CONNECT")
        .output()
        .expect("the statekit binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn config_file(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("statekit-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn check_without_arguments_passes_on_the_embedded_backend() {
    let out = statekit(&["check", "--scale", "small"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    let all = Property::ALL.len();
    let summary = format!("{all} properties: ");
    assert!(report.contains("backend `memory`") && report.contains(&summary), "{report}");
    assert!(report.contains(" 0 failed") && !report.contains("FAILED"), "{report}");
}

#[test]
fn check_faults_needs_a_backend_with_a_server() {
    let out = statekit(&["check", "--faults"]);
    assert!(!out.status.success());
    let text = text(&out);
    assert!(text.contains("--faults needs a backend with a server") && text.contains("memory"), "{text}");
}

#[cfg(feature = "redis")]
#[test]
fn check_faults_refuses_a_cluster_config_one_proxy_cannot_front() {
    let path = config_file(
        "cluster-faults.toml",
        "[state]\nbackend = \"redis\"\nmode = \"cluster\"\nurls = [\"redis://127.0.0.1:1\", \"redis://127.0.0.1:2\"]\n",
    );
    let out = statekit(&["check", "--faults", "-c", path.to_str().unwrap()]);
    assert!(!out.status.success());
    let text = text(&out);
    assert!(text.contains("reaches several") && text.contains("FaultTarget::spread"), "{text}");
}

#[test]
fn the_property_choices_are_the_kits_properties() {
    let help = text(&statekit(&["check", "--help"]));
    for property in Property::ALL {
        assert!(help.contains(property.name()), "{} missing from the help:\n{help}", property.name());
    }
    let out = statekit(&["check", "-p", "no_such_property"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("no_such_property") && text(&out).contains(Property::ALL[0].name()), "{}", text(&out));
}

#[test]
fn check_reports_json_with_one_entry_per_property() {
    let out = statekit(&["check", "--scale", "small", "--json", "-p", "one_winner", "-p", "scan"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> =
        report["properties"].as_array().unwrap().iter().map(|p| p["property"].as_str().unwrap()).collect();
    assert_eq!(names, ["one_winner", "scan"]);
    assert!(report["properties"].as_array().unwrap().iter().all(|p| p["verdict"] == "passed"));
}

#[test]
fn an_unknown_key_is_named_with_the_file() {
    let path = config_file("unknown.toml", "[state]\nbackend = \"memory\"\nurll = \"redis://x\"\n");
    let out = statekit(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("urll") && text(&out).contains("unknown.toml"), "{}", text(&out));
}

#[test]
fn a_wrong_type_is_named() {
    let path = config_file("wrong-type.toml", "[state]\nbackend = \"memory\"\nmax_value_len = \"lots\"\n");
    let out = statekit(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("`max_value_len`") && text(&out).contains("line 3"), "{}", text(&out));
}

#[test]
fn a_field_of_another_backend_is_named_with_the_backend() {
    let path = config_file("misplaced.toml", "[state]\nbackend = \"memory\"\nschema = \"app\"\n");
    let out = statekit(&["migrate", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`schema`") && text(&out).contains("backend memory"), "{}", text(&out));
}

/// An application keeps `[state]` in its own file, beside its own tables:
/// the example the README shows.
const GATEWAY: &str = include_str!("../../examples/gateway.toml");

#[test]
fn migrate_and_check_read_state_from_an_application_config_file() {
    let path = config_file("gateway.toml", GATEWAY);
    let out = statekit(&["migrate", "-c", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("memory: nothing to create"), "{}", text(&out));
    let out = statekit(&["check", "--scale", "small", "-p", "one_winner", "-c", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn an_unknown_key_inside_state_of_an_application_file_is_still_an_error() {
    let path =
        config_file("gateway-typo.toml", &GATEWAY.replace("backend = \"memory\"", "backend = \"memory\"\nurll = 1"));
    let out = statekit(&["migrate", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("`urll`") && text(&out).contains("gateway-typo.toml"), "{}", text(&out));
}

/// Runs where the binary was built without the DynamoDB feature
/// (`scripts/test` runs this file once with default features for that).
#[cfg(not(feature = "dynamodb"))]
#[test]
fn a_backend_that_is_not_compiled_in_names_the_feature() {
    let path = config_file("dynamo.toml", "[state]\nbackend = \"dynamodb\"\nurl = \"http://127.0.0.1:1\"\n");
    let out = statekit(&["check", "-c", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("cargo feature `dynamodb`"), "{}", text(&out));
}

#[test]
fn get_set_incr_scan_and_lock_work_by_hand() {
    // Each command is its own process, so only the lock and in-process
    // results can be checked on the memory backend.
    let out = statekit(&["set", "s", "k", "v"]);
    assert!(out.status.success() && text(&out).contains("version 1"), "{}", text(&out));
    let out = statekit(&["incr", "s", "n", "--", "-5"]);
    assert!(out.status.success() && text(&out).starts_with("-5"), "{}", text(&out));
    let out = statekit(&["get", "s", "absent"]);
    assert_eq!(out.status.code(), Some(1));
    let out = statekit(&["lock", "job"]);
    assert!(out.status.success() && text(&out).contains("fencing token 1"), "{}", text(&out));
    let long_id = "x".repeat(513);
    let out = statekit(&["set", "s", &long_id, "v"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("513 bytes long"), "{}", text(&out));
}

#[test]
fn lincheck_gives_the_published_verdicts() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/histories/jepsen-etcd");
    let ok = statekit(&["lincheck", "--format", "jepsen", &format!("{dir}/etcd_002.log")]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).starts_with("linearizable"));
    let bad = statekit(&["lincheck", "--format", "jepsen", &format!("{dir}/etcd_000.log")]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).starts_with("not linearizable"));
}

#[test]
fn check_schedules_runs_the_schedule_properties_alone() {
    let out = statekit(&["check", "--scale", "small", "-p", "schedules"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = text(&out);
    let schedule_properties: Vec<&str> =
        Property::ALL.iter().filter(|p| p.required_features().contains(&"schedules")).map(|p| p.name()).collect();
    assert!(schedule_properties.len() >= 4, "{schedule_properties:?}");
    for name in &schedule_properties {
        assert!(report.contains(name), "{name} did not run:\n{report}");
    }
    let summary = format!("{} properties: {} passed", schedule_properties.len(), schedule_properties.len());
    assert!(report.contains(&summary), "{report}");
}

#[test]
fn due_lists_nothing_on_a_fresh_embedded_store_and_refuses_a_bad_space() {
    let out = statekit(&["due", "jobs", "--now", "1000", "--limit", "5"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "");
    let out = statekit(&["due", "", "--limit", "5"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("space"), "{}", text(&out));
    let out = statekit(&["due", "jobs", "--limit", "0"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("limit"), "{}", text(&out));
}
