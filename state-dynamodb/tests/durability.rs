//! The kit's process faults against a private DynamoDB Local that keeps
//! its tables on disk (`-dbPath`): frozen (SIGSTOP) past the clients'
//! timeouts and resumed, histories stay linearizable; killed (SIGKILL) and
//! restarted on its files, it keeps every acknowledged write and its
//! fencing order, as the store's declaration (durable) promises, and the
//! backend recovers without a reconnect. The suites' shared in-memory
//! server is never paused or killed: other tests use it.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

mod local;

use std::sync::{Arc, Mutex};

use conformance::{FaultTarget, Property, Scale, ServerControl, Subject, Verdict};
use state_api::Durability;
use state_dynamodb::DynamoStore;

/// The server behind the kit's fault proxy, with control over its process.
fn fault_target(server: &Arc<Mutex<test_servers::Server>>, table: &str) -> Result<FaultTarget, String> {
    let target = local::fault_target(server.lock().map_err(|e| e.to_string())?.socket_address()?, table);
    let restart = test_servers::on_server(server, test_servers::dynamodb::restart);
    let control = ServerControl::new(
        test_servers::on_process(server, |p| p.pause()),
        test_servers::on_process(server, |p| p.resume()),
        restart,
    );
    Ok(target.with_server(control))
}

fn assert_passes(property: Property) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = test_servers::dynamodb::dynamodb_durable().unwrap();
        let table = local::unique_table("durable");
        let store = DynamoStore::open(local::config(server.url(), &table)).await.unwrap();
        store.migrate().await.unwrap();
        // A fresh DynamoDB Local answers its first writes slowly (class
        // loading and JIT, SQLite on disk): warm it up directly, so that the
        // property's short timeouts (500 ms through the proxy) time faults,
        // not a cold JVM.
        for i in 0..50 {
            let key = state_api::Key::new("warm-up", &format!("k{i}")).unwrap();
            state_api::StateStore::set(&store, &key, state_api::Bytes::from_static(b"x"), None).await.unwrap();
        }
        let server = Arc::new(Mutex::new(server));
        let target = fault_target(&server, &table).unwrap();
        let (_proxy, backend) = target.through_proxy().await.unwrap();
        assert_eq!(backend.capabilities().durability, Durability::Durable);
        let subject = Subject::from(backend).with_faults(target);
        let report = subject.run(property, Scale::DEFAULT).await;
        for note in &report.notes {
            eprintln!("{}: {note}", property.name());
        }
        match report.verdict {
            Verdict::Passed => {}
            other => panic!("{} on DynamoDB Local with -dbPath: {other:?}", property.name()),
        }
    });
}

#[test]
fn a_server_on_disk_keeps_every_acknowledged_write_across_a_crash() {
    assert_passes(Property::ServerRestart);
}

#[test]
fn a_server_paused_and_resumed_stays_linearizable() {
    assert_passes(Property::ServerPause);
}
