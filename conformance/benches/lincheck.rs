//! How long the checker takes on the published histories (see
//! `shared/data/histories/README.md`; `$STATEKIT_HISTORIES_DIR` overrides
//! the directory). Run with `cargo bench -p conformance --bench lincheck`.
//!
//! Parsing is timed separately from checking; checking includes building
//! the explanation of every non-linearizable history, as `lincheck` does.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conformance::linearizability::History;
use conformance::linearizability::formats::{read_etcd_log, read_kv_edn};
use conformance::linearizability::{CheckOptions, KeyValue, Model, Register, check};

fn histories_dir() -> PathBuf {
    let dir = std::env::var_os("STATEKIT_HISTORIES_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/histories")),
        PathBuf::from,
    );
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
    dir
}

fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    files.sort();
    files
}

/// Checks every history once; returns the total time and prints the slowest.
fn time_set<M: Model>(
    label: &str,
    model: &M,
    histories: &[(String, History<M::Input, M::Output>)],
    options: &CheckOptions,
) -> Duration {
    let mut slowest = (Duration::ZERO, "");
    let started = Instant::now();
    for (name, history) in histories {
        let one = Instant::now();
        let result = check(model, history, options);
        assert!(!matches!(result, conformance::linearizability::CheckResult::Unknown(_)), "{name}: {result}");
        slowest = slowest.max((one.elapsed(), name));
    }
    let total = started.elapsed();
    println!(
        "{label:<28} {:>3} histories  {:>10.3} ms  (slowest {} {:.3} ms)",
        histories.len(),
        total.as_secs_f64() * 1e3,
        slowest.1,
        slowest.0.as_secs_f64() * 1e3
    );
    total
}

fn main() {
    let dir = histories_dir();
    let parsing = Instant::now();
    let etcd: Vec<_> = files(&dir.join("jepsen-etcd"), ".log")
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, read_etcd_log(BufReader::new(File::open(&path).unwrap())).unwrap())
        })
        .collect();
    let kv: Vec<_> = files(&dir.join("kv"), ".txt")
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, read_kv_edn(BufReader::new(File::open(&path).unwrap())).unwrap())
        })
        .collect();
    println!("parsing all files: {:.3} ms", parsing.elapsed().as_secs_f64() * 1e3);

    let options = CheckOptions::default();
    let whole = CheckOptions { partitioned: false, ..CheckOptions::default() };
    let total = time_set("jepsen-etcd (register)", &Register, &etcd, &options)
        + time_set("kv (partitioned by key)", &KeyValue, &kv, &options)
        + time_set("kv (unpartitioned)", &KeyValue, &kv, &whole);
    println!("{:<28} {:>3} checks     {:>10.3} ms", "total", etcd.len() + 2 * kv.len(), total.as_secs_f64() * 1e3);
}
