//! The kit's process faults against a durable configuration (Redis with `appendonly yes` and `appendfsync always`): killed
//! and restarted on its data, the server keeps every acknowledged write
//! and its fencing order, and the backend recovers without a reconnect.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use conformance::{Property, Scale, Subject, Verdict};

fn assert_passes(property: Property) {
    match run(test_servers::redis::redis_durable().unwrap(), property) {
        Verdict::Passed => {}
        other => panic!("{} on a durable server: {other:?}", property.name()),
    }
}

fn run(server: test_servers::Server, property: Property) -> Verdict {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = Arc::new(Mutex::new(server));
        let target = support::fault_target(&server, true).unwrap();
        let (_proxy, backend) = target.through_proxy().await.unwrap();
        let subject = Subject::from(backend).with_faults(target);
        let report = subject.run(property, Scale::DEFAULT).await;
        for note in &report.notes {
            eprintln!("{}: {note}", property.name());
        }
        report.verdict
    })
}

#[test]
fn a_durable_server_keeps_every_acknowledged_write_across_a_crash() {
    assert_passes(Property::ServerRestart);
}

#[test]
fn a_durable_server_paused_and_resumed_stays_linearizable() {
    assert_passes(Property::ServerPause);
}

#[test]
fn a_server_without_persistence_declared_durable_is_caught() {
    // The suite's server keeps nothing on disk: everything acknowledged
    // before the crash is gone, and fencing tokens start again at 1.
    match run(test_servers::redis::redis().unwrap(), Property::ServerRestart) {
        Verdict::Failed { counterexample } => {
            assert!(counterexample.contains("acknowledged writes lost"), "{counterexample}");
            assert!(counterexample.contains("fencing tokens went back"), "{counterexample}");
        }
        other => panic!("a volatile server declared durable was not caught: {other:?}"),
    }
}
