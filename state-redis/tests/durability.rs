//! The kit's process faults against the durability each server declares.
//! A durable configuration (Redis with `appendonly yes` and `appendfsync
//! always`) is declared durable, and killed and restarted on its data it
//! keeps every acknowledged write and its fencing order. A server without
//! persistence is declared volatile, and its loss is reported, not failed
//! (a store that claims durability over it is the fault mutant
//! `ClaimsDurable`, caught in `fault_mutants.rs`).

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use conformance::{Property, PropertyReport, Scale, Subject, Verdict};
use state_api::Durability;

/// Runs `property` through the fault proxy against `server`; returns what
/// the store declared and the report.
fn run(server: test_servers::Server, property: Property) -> (Durability, PropertyReport) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = Arc::new(Mutex::new(server));
        let target = support::fault_target(&server).unwrap();
        let (_proxy, backend) = target.through_proxy().await.unwrap();
        let declared = backend.capabilities().durability;
        let subject = Subject::from(backend).with_faults(target);
        let report = subject.run(property, Scale::DEFAULT).await;
        for note in &report.notes {
            eprintln!("{}: {note}", property.name());
        }
        (declared, report)
    })
}

fn assert_passes_durable(property: Property) {
    let (declared, report) = run(test_servers::redis::redis_durable().unwrap(), property);
    assert_eq!(declared, Durability::Durable, "appendonly yes, appendfsync always");
    assert_eq!(report.verdict, Verdict::Passed, "{} on a durable server", property.name());
}

#[test]
fn a_durable_server_keeps_every_acknowledged_write_across_a_crash() {
    assert_passes_durable(Property::ServerRestart);
}

#[test]
fn a_durable_server_paused_and_resumed_stays_linearizable() {
    assert_passes_durable(Property::ServerPause);
}

#[test]
fn a_server_without_persistence_is_declared_volatile_and_its_loss_reported() {
    // The suite's server keeps nothing on disk: everything acknowledged
    // before the crash is gone (fencing tokens, from the server's clock,
    // still increase).
    let (declared, report) = run(test_servers::redis::redis().unwrap(), Property::ServerRestart);
    assert_eq!(declared, Durability::Volatile);
    assert_eq!(report.verdict, Verdict::Passed);
    let notes = report.notes.join("\n");
    assert!(notes.contains("declared volatile") && notes.contains("21 of 21 acknowledged writes lost"), "{notes}");
}
