//! The kit's process faults against a durable configuration (PostgreSQL with `fsync`, `synchronous_commit` and `full_page_writes` on): killed
//! and restarted on its data, the server keeps every acknowledged write
//! and its fencing order, and the backend recovers without a reconnect.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use conformance::{Property, Scale, Subject, Verdict};

fn assert_passes(property: Property) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = Arc::new(Mutex::new(test_servers::postgres::postgres_durable().unwrap()));
        let target = support::fault_target(&server, true).unwrap();
        let (_proxy, backend) = target.through_proxy().await.unwrap();
        let subject = Subject::from(backend).with_faults(target);
        let report = subject.run(property, Scale::DEFAULT).await;
        for note in &report.notes {
            eprintln!("{}: {note}", property.name());
        }
        match report.verdict {
            Verdict::Passed => {}
            other => panic!("{} on a durable server: {other:?}", property.name()),
        }
    });
}

#[test]
fn a_durable_server_keeps_every_acknowledged_write_across_a_crash() {
    assert_passes(Property::ServerRestart);
}

#[test]
fn a_durable_server_paused_and_resumed_stays_linearizable() {
    assert_passes(Property::ServerPause);
}
