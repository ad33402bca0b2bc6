//! The checker against histories recorded by others, with the verdicts an
//! established checker (Porcupine) gives them; see
//! `shared/data/histories/README.md`.
//!
//! The directory is `../shared/data/histories` next to the workspace, or
//! `$STATEKIT_HISTORIES_DIR`. A missing directory fails the tests: a checker
//! that is silently never validated is worse than a failing build.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};

use lincheck::formats::{JsonlReader, read_etcd_log, read_kv_edn, write_jsonl};
use lincheck::{CheckOptions, CheckResult, KeyValue, Register, check};

fn histories_dir() -> PathBuf {
    let dir = std::env::var_os("STATEKIT_HISTORIES_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/histories")),
        PathBuf::from,
    );
    assert!(
        dir.is_dir(),
        "the published histories are missing: {} is not a directory \
         (set STATEKIT_HISTORIES_DIR to the shared/data/histories directory)",
        dir.display()
    );
    dir
}

/// The files of `dir` whose names end in `suffix`, sorted.
fn files_ending_in(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap_or_else(|error| panic!("cannot list {}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no *{suffix} files in {}", dir.display());
    files
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// The etcd logs with the verdict `VERDICTS` gives each (`true` =
/// linearizable); every log must have one and every verdict a log.
fn etcd_logs_with_verdicts() -> Vec<(PathBuf, bool)> {
    let dir = histories_dir().join("jepsen-etcd");
    let verdicts = fs::read_to_string(dir.join("VERDICTS")).expect("jepsen-etcd/VERDICTS");
    let logs: Vec<(PathBuf, bool)> = verdicts
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let (file, verdict) = line.split_once(char::is_whitespace).unwrap();
            let linearizable = match verdict.trim() {
                "linearizable" => true,
                "not-linearizable" => false,
                other => panic!("unknown verdict {other:?} in VERDICTS"),
            };
            (dir.join(file), linearizable)
        })
        .collect();
    let listed: Vec<&PathBuf> = logs.iter().map(|(path, _)| path).collect();
    for log in files_ending_in(&dir, ".log") {
        assert!(listed.contains(&&log), "{} has no verdict", name(&log));
    }
    logs
}

/// The kv histories with the verdict their names give (`-ok` = linearizable).
fn kv_files_with_verdicts() -> Vec<(PathBuf, bool)> {
    let dir = histories_dir().join("kv");
    files_ending_in(&dir, ".txt")
        .into_iter()
        .map(|path| {
            let file = name(&path);
            let linearizable = match () {
                () if file.ends_with("-ok.txt") => true,
                () if file.ends_with("-bad.txt") => false,
                () => panic!("{file} is neither -ok nor -bad"),
            };
            (path, linearizable)
        })
        .collect()
}

fn open(path: &Path) -> BufReader<File> {
    BufReader::new(File::open(path).unwrap_or_else(|error| panic!("{}: {error}", path.display())))
}

/// The verdict as `Some(linearizable)`, `None` if the check gave up.
fn verdict(result: &CheckResult) -> Option<bool> {
    match result {
        CheckResult::Linearizable => Some(true),
        CheckResult::NotLinearizable(_) => Some(false),
        CheckResult::Unknown(_) => None,
    }
}

/// Panics listing every file whose verdict differs from the expected one
/// (giving up counts as wrong).
fn assert_verdicts(results: Vec<(String, bool, CheckResult)>) {
    let wrong: Vec<String> = results
        .into_iter()
        .filter(|(_, expected, result)| verdict(result) != Some(*expected))
        .map(|(file, expected, result)| {
            let expected = if expected { "linearizable" } else { "not linearizable" };
            format!("{file}: expected {expected}, got {result}")
        })
        .collect();
    assert!(wrong.is_empty(), "wrong verdicts:\n{}", wrong.join("\n"));
}

#[test]
fn every_etcd_log_gets_its_published_verdict() {
    let results = etcd_logs_with_verdicts()
        .into_iter()
        .map(|(path, expected)| {
            let history = read_etcd_log(open(&path)).unwrap();
            (name(&path), expected, check(&Register, &history, &CheckOptions::default()))
        })
        .collect();
    assert_verdicts(results);
}

fn check_kv_files(options: &CheckOptions) {
    let results = kv_files_with_verdicts()
        .into_iter()
        .map(|(path, expected)| {
            let history = read_kv_edn(open(&path)).unwrap();
            (name(&path), expected, check(&KeyValue, &history, options))
        })
        .collect();
    assert_verdicts(results);
}

#[test]
fn every_kv_history_gets_its_verdict_when_partitioned_by_key() {
    check_kv_files(&CheckOptions::default());
}

#[test]
fn every_kv_history_gets_the_same_verdict_when_checked_whole() {
    check_kv_files(&CheckOptions { partitioned: false, ..CheckOptions::default() });
}

#[test]
fn a_failing_kv_history_is_explained_within_one_key() {
    let (path, _) = kv_files_with_verdicts().into_iter().find(|(_, linearizable)| !linearizable).unwrap();
    let history = read_kv_edn(open(&path)).unwrap();
    let CheckResult::NotLinearizable(explanation) = check(&KeyValue, &history, &CheckOptions::default()) else {
        panic!("{} should not be linearizable", name(&path));
    };
    let key = explanation.partition.clone().expect("a partition name");
    let culprit = &explanation.operations[explanation.culprit];
    assert!(explanation.shortest);
    assert!(culprit.description.contains(&format!("{key:?}")), "{explanation}");
    assert!(culprit.returned.is_some(), "the culprit is an operation that returned");
}

#[test]
fn etcd_logs_separated_by_runs_of_spaces_read_as_the_tab_separated_originals() {
    for (path, _) in etcd_logs_with_verdicts() {
        let original = fs::read_to_string(&path).unwrap();
        // Published logs separate fields by runs of spaces as often as by
        // tabs; vary the run length so no fixed width is assumed.
        let mut width = 0;
        let spaced: String = original
            .chars()
            .map(|c| match c {
                '\t' => {
                    width = width % 3 + 1;
                    " ".repeat(width)
                }
                c => c.to_string(),
            })
            .collect();
        assert!(!spaced.contains('\t'));
        let history = read_etcd_log(spaced.as_bytes()).unwrap();
        assert_eq!(history, read_etcd_log(original.as_bytes()).unwrap(), "{}", name(&path));
        assert!(!history.is_empty(), "{}", name(&path));
    }
}

#[test]
fn the_view_of_every_failing_kv_history_draws_each_operation_once_and_one_culprit() {
    for (path, _) in kv_files_with_verdicts().into_iter().filter(|(_, linearizable)| !linearizable) {
        let history = read_kv_edn(open(&path)).unwrap();
        let CheckResult::NotLinearizable(explanation) = check(&KeyValue, &history, &CheckOptions::default()) else {
            panic!("{} should not be linearizable", name(&path));
        };
        let page = lincheck::html_view::render(&KeyValue, &history, &explanation);
        assert_eq!(page.matches("<rect class=\"op ").count(), history.len(), "{}", name(&path));
        assert_eq!(page.matches("<rect class=\"op culprit").count(), 1, "{}", name(&path));
        let culprit = &explanation.operations[explanation.culprit].description;
        let escaped = culprit.replace('&', "&amp;").replace('"', "&quot;").replace('>', "&gt;");
        assert!(page.contains(&escaped), "{}: {culprit}", name(&path));
    }
}

#[test]
fn etcd_histories_keep_their_verdicts_through_a_jsonl_round_trip() {
    for (path, expected) in etcd_logs_with_verdicts().into_iter().take(8) {
        let history = read_etcd_log(open(&path)).unwrap();
        let mut bytes = Vec::new();
        write_jsonl(&mut bytes, Register::NAME, &history).unwrap();
        let reader = JsonlReader::new(bytes.as_slice()).unwrap();
        assert_eq!(reader.model(), Register::NAME);
        let reread = reader.read_history().unwrap();
        assert_eq!(reread, history, "{}", name(&path));
        let result = check(&Register, &reread, &CheckOptions::default());
        assert_eq!(verdict(&result), Some(expected), "{}", name(&path));
    }
}
