//! The `lincheck` binary, as a user runs it: verdicts as exit statuses, and
//! a clear error for a JSON-lines model it does not know.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

fn lincheck(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lincheck")).args(args).output().expect("the lincheck binary runs")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn histories_dir() -> String {
    std::env::var("STATEKIT_HISTORIES_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/histories").to_owned())
}

#[test]
fn a_jepsen_log_gets_its_published_verdict_as_the_exit_status() {
    let dir = format!("{}/jepsen-etcd", histories_dir());
    let ok = lincheck(&["--format", "jepsen", &format!("{dir}/etcd_002.log")]);
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(text(&ok).starts_with("linearizable"), "{}", text(&ok));
    let bad = lincheck(&["--format", "jepsen", &format!("{dir}/etcd_000.log")]);
    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).starts_with("not linearizable"), "{}", text(&bad));
}

#[test]
fn html_writes_the_view_of_a_failing_history_and_nothing_for_a_linearizable_one() {
    let dir = format!("{}/jepsen-etcd", histories_dir());
    let out = std::env::temp_dir().join(format!("lincheck-binary-view-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let (bad_view, ok_view) = (out.join("bad.html"), out.join("ok.html"));

    let bad = lincheck(&["--format", "jepsen", "--html", bad_view.to_str().unwrap(), &format!("{dir}/etcd_000.log")]);
    let ok = lincheck(&["--format", "jepsen", "--html", ok_view.to_str().unwrap(), &format!("{dir}/etcd_002.log")]);
    let page = std::fs::read_to_string(&bad_view);
    let ok_view_written = ok_view.exists();
    std::fs::remove_dir_all(&out).unwrap();

    assert_eq!(bad.status.code(), Some(1), "{}", text(&bad));
    assert!(text(&bad).starts_with("not linearizable"), "{}", text(&bad));
    assert!(text(&bad).contains(&format!("HTML view: {}", bad_view.display())), "{}", text(&bad));
    let page = page.expect("the view is written");
    assert!(page.contains("<svg") && page.contains("class=\"op culprit"), "{page}");
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok));
    assert!(!ok_view_written, "a linearizable history has no view");
}

#[test]
fn a_jsonl_history_of_an_unknown_model_is_a_usage_error_naming_the_known_ones() {
    let path = std::env::temp_dir().join(format!("lincheck-binary-{}.jsonl", std::process::id()));
    std::fs::write(&path, "{\"format\":\"statekit-history\",\"version\":1,\"model\":\"statekit\"}\n").unwrap();
    let out = lincheck(&["--format", "jsonl", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("unsupported model \"statekit\"") && text(&out).contains("\"register\""),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unknown_format_is_a_usage_error() {
    let out = lincheck(&["--format", "edn", "whatever"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("jepsen, kv, jsonl"), "{}", text(&out));
}
