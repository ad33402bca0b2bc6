//! Recorded statekit histories round-trip through the JSON-lines format and
//! get the right verdict from the same code `statekit lincheck` runs.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use conformance::history_file::check_file;
use conformance::model::{KeyName, Observed, Op, Outcome};
use conformance::{Recorder, StatekitModel};
use lincheck::formats::write_jsonl;
use lincheck::history_file::HistoryFormat;
use lincheck::{CheckOptions, History, Operation};
use state_api::{Condition, MemoryStore};

fn save(history: &History<Op, Outcome>, name: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("statekit-test-{}-{name}.jsonl", std::process::id()));
    write_jsonl(std::fs::File::create(&path).unwrap(), StatekitModel::NAME, history).unwrap();
    path
}

fn put(id: &str, value: &'static str) -> Op {
    Op::Put {
        key: KeyName::new("s", id),
        value: Bytes::from_static(value.as_bytes()),
        condition: Condition::Always,
        ttl_ms: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_memory_history_is_linearizable_after_a_round_trip() {
    let store = MemoryStore::new();
    let recorder = Recorder::new();
    let tasks: Vec<_> = (0..4)
        .map(|client| {
            let (store, recorder) = (store.clone(), recorder.clone());
            tokio::spawn(async move {
                for n in 0..50 {
                    let op = if n % 3 == 0 { Op::Get { key: KeyName::new("s", "k") } } else { put("k", "v") };
                    recorder.run(client, &store, op).await;
                    recorder
                        .run(client, &store, Op::Increment { key: KeyName::new("s", "n"), delta: 1, ttl_ms: None })
                        .await;
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let path = save(&recorder.history(), "memory");
    let verdict = check_file(HistoryFormat::Jsonl, &path, &CheckOptions::default()).unwrap();
    assert!(verdict.is_linearizable(), "{verdict}");
}

#[test]
fn a_read_of_an_overwritten_value_is_not_linearizable() {
    let mut history = History::new();
    let observed = |v: &'static str, version| {
        Outcome::Got(Some(Observed { value: Bytes::from_static(v.as_bytes()), version, ttl_ms: None }))
    };
    history.push(Operation::returned(0, put("k", "old"), Outcome::Written(1), 0, 10)).unwrap();
    history.push(Operation::returned(0, put("k", "new"), Outcome::Written(2), 20, 30)).unwrap();
    // Starts after the second write returned, yet sees the first.
    history.push(Operation::returned(1, Op::Get { key: KeyName::new("s", "k") }, observed("old", 1), 40, 50)).unwrap();
    let path = save(&history, "stale");
    let verdict = check_file(HistoryFormat::Jsonl, &path, &CheckOptions::default()).unwrap();
    assert!(!verdict.is_linearizable(), "{verdict}");
    assert!(verdict.to_string().contains("s/k"), "the explanation names the key: {verdict}");
}
