//! How long the checker takes on the published histories (see
//! `shared/data/histories/README.md`; `$STATEKIT_HISTORIES_DIR` overrides
//! the directory). Run with `cargo bench -p lincheck --bench lincheck`.
//!
//! Parsing is timed separately from checking; checking includes building
//! the explanation of every non-linearizable history, as `lincheck` does.
//! Each set is checked a few times and the fastest pass reported, which
//! filters out noise from other processes on a shared machine.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::{self, File};
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lincheck::formats::{FormatError, read_etcd_log, read_kv_edn};
use lincheck::{CheckOptions, CheckResult, History, KeyValue, Model, Register, check};

/// Passes per set; the fastest counts.
const PASSES: usize = 3;

/// A history of model `M` and the name of its file.
type NamedHistory<M> = (String, History<<M as Model>::Input, <M as Model>::Output>);

fn histories_dir() -> PathBuf {
    let dir = std::env::var_os("STATEKIT_HISTORIES_DIR").map_or_else(
        || PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/data/histories")),
        PathBuf::from,
    );
    assert!(dir.is_dir(), "{} is not a directory", dir.display());
    dir
}

/// Reads every file of `dir` ending in `suffix` with `read`, sorted by name.
fn load<M: Model>(
    dir: &Path,
    suffix: &str,
    read: impl Fn(BufReader<File>) -> Result<History<M::Input, M::Output>, FormatError>,
) -> Vec<NamedHistory<M>> {
    let mut paths: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.to_string_lossy().ends_with(suffix))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let history = read(BufReader::new(File::open(&path).unwrap())).unwrap();
            (name, history)
        })
        .collect()
}

/// Checks every history once; returns the time taken and the slowest file.
fn check_all<M: Model>(
    model: &M,
    histories: &[NamedHistory<M>],
    options: &CheckOptions,
) -> (Duration, Duration, String) {
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for (name, history) in histories {
        let one = Instant::now();
        let result = check(model, history, options);
        assert!(!matches!(result, CheckResult::Unknown(_)), "{name}: {result}");
        slowest = slowest.max((one.elapsed(), name.clone()));
    }
    (started.elapsed(), slowest.0, slowest.1)
}

/// Times a set (fastest of [`PASSES`]), prints a line and returns the time.
fn time_set<M: Model>(label: &str, model: &M, histories: &[NamedHistory<M>], options: &CheckOptions) -> Duration {
    let (total, slowest, name) = (0..PASSES).map(|_| check_all(model, histories, options)).min().unwrap();
    println!(
        "{label:<26} {:>3} histories {:>10.3} ms   (slowest: {name}, {:.3} ms)",
        histories.len(),
        total.as_secs_f64() * 1e3,
        slowest.as_secs_f64() * 1e3
    );
    total
}

fn main() {
    let dir = histories_dir();
    let parsing = Instant::now();
    let etcd = load::<Register>(&dir.join("jepsen-etcd"), ".log", read_etcd_log);
    let kv = load::<KeyValue>(&dir.join("kv"), ".txt", read_kv_edn);
    println!("parsing all files: {:.3} ms", parsing.elapsed().as_secs_f64() * 1e3);

    let partitioned = CheckOptions::default();
    let whole = CheckOptions { partitioned: false, ..CheckOptions::default() };
    let etcd_time = time_set("jepsen-etcd (register)", &Register, &etcd, &partitioned);
    let kv_time = time_set("kv (partitioned by key)", &KeyValue, &kv, &partitioned);
    let kv_whole_time = time_set("kv (unpartitioned)", &KeyValue, &kv, &whole);
    let every_history = etcd_time + kv_time;
    println!(
        "{:<26} {:>3} histories {:>10.3} ms",
        "all, as lincheck checks",
        etcd.len() + kv.len(),
        every_history.as_secs_f64() * 1e3
    );
    println!(
        "{:<26} {:>3} checks    {:>10.3} ms",
        "all, incl. unpartitioned kv",
        etcd.len() + 2 * kv.len(),
        (every_history + kv_whole_time).as_secs_f64() * 1e3
    );
}
