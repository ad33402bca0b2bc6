//! Property 2: concurrent histories of single-key operations are
//! linearizable.
//!
//! Several clients run random gets, conditional puts, deletes and
//! increments on three keys at once; the recorded history is checked per
//! key by the Wing–Gong checker against the statekit model. Every written
//! value is unique, which makes stale or lost writes visible. A failing
//! history is saved as JSON lines so that `statekit lincheck` can replay it,
//! with an HTML view of it beside.

use std::sync::Arc;

use bytes::Bytes;
use state_api::{Condition, DeleteCondition, Version};

use crate::history_model::{Recorder, StatekitModel};
use crate::kit::{Context, Failure, Outcome as PropertyOutcome};
use crate::model::{KeyName, Op};
use lincheck::{CheckOptions, CheckResult, check, formats::write_jsonl};

const KEYS: [&str; 3] = ["a", "b", "c"];

fn random_op(space: &str, client: u64, n: u64) -> Op {
    let key = KeyName::new(space, KEYS[fastrand::usize(..KEYS.len())]);
    let value = Bytes::from(format!("c{client}-{n}"));
    match fastrand::u8(..10) {
        0..=2 => Op::Get { key },
        3 => Op::Put { key, value, condition: Condition::Always, ttl_ms: None },
        4 => Op::Put { key, value, condition: Condition::IfAbsent, ttl_ms: None },
        5 | 6 => Op::Put { key, value, condition: Condition::IfVersion(Version(fastrand::u64(1..4))), ttl_ms: None },
        7 => Op::Delete {
            key,
            condition: if fastrand::bool() {
                DeleteCondition::Always
            } else {
                DeleteCondition::IfVersion(Version(fastrand::u64(1..4)))
            },
        },
        _ => Op::Increment { key, delta: 1, ttl_ms: None },
    }
}

/// Runs property 2.
pub async fn run(cx: &Context) -> PropertyOutcome {
    let rounds = cx.scale.of(8);
    let clients = 6u64;
    let ops_per_client = cx.scale.of(40).min(200);
    for round in 0..rounds {
        let space = cx.space(&format!("lin{round}"));
        let recorder = Recorder::new();
        let mut tasks = Vec::new();
        for client in 0..clients {
            let (recorder, store, space) = (recorder.clone(), Arc::clone(&cx.backend.store), space.clone());
            tasks.push(tokio::spawn(async move {
                for n in 0..ops_per_client {
                    recorder.run(client, store.as_ref(), random_op(&space, client, n)).await;
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|e| Failure(format!("a client task died: {e}")))?;
        }
        let history = recorder.history();
        let verdict = tokio::task::spawn_blocking(move || {
            let result = check(&StatekitModel, &history, &CheckOptions::default());
            (result, history)
        })
        .await
        .map_err(|e| Failure(format!("the checker died: {e}")))?;
        match verdict {
            (CheckResult::Linearizable, _) => {}
            (CheckResult::Unknown(why), _) => return Err(Failure(format!("round {round}: checker gave up: {why}"))),
            (CheckResult::NotLinearizable(explanation), history) => {
                let saved = save(&history, &explanation, round);
                return Err(Failure(format!("round {round}: {explanation}\n{saved}")));
            }
        }
    }
    Ok(rounds)
}

fn save(
    history: &lincheck::History<Op, crate::model::Outcome>,
    explanation: &lincheck::Explanation,
    round: u64,
) -> String {
    let path = std::env::temp_dir().join(format!("statekit-history-{}-{round}.jsonl", std::process::id()));
    match std::fs::File::create(&path).map(std::io::BufWriter::new) {
        Ok(file) => match write_jsonl(file, StatekitModel::NAME, history) {
            Ok(()) => format!(
                "history saved: replay with `cargo run -p statekit-cli -- lincheck --format jsonl {}`\n{}",
                path.display(),
                match lincheck::html_view::save_beside(&path, &StatekitModel, history, explanation) {
                    Ok(view) => format!("HTML view: {}", view.display()),
                    Err(e) => format!("(could not write the HTML view: {e})"),
                }
            ),
            Err(e) => format!("(could not save the history: {e})"),
        },
        Err(e) => format!("(could not save the history: {e})"),
    }
}
