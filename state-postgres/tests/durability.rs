//! The kit's process faults against a durable configuration (PostgreSQL with `fsync`, `synchronous_commit` and `full_page_writes` on): killed
//! and restarted on its data, the server keeps every acknowledged write
//! and its fencing order, and the backend recovers without a reconnect.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use conformance::{Property, Scale, Subject, Verdict};
use state_api::Durability;

fn assert_passes(property: Property) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = Arc::new(Mutex::new(test_servers::postgres::postgres_durable().unwrap()));
        let target = support::fault_target(&server).unwrap();
        let (_proxy, backend) = target.through_proxy().await.unwrap();
        assert_eq!(backend.capabilities().durability, Durability::Durable, "fsync, synchronous_commit on");
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

#[test]
fn a_cluster_that_may_lose_commits_is_declared_volatile() {
    // The suite's throwaway clusters run with `synchronous_commit=off`.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = test_servers::postgres::postgres().unwrap();
        let backend = state_postgres::backend(state_postgres::PostgresConfig::new(server.url())).await.unwrap();
        assert_eq!(backend.capabilities().durability, Durability::Volatile);
    });
}
