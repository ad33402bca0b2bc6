//! The fault properties prove they can fail: each fault mutant, wrapped
//! around the real Redis backend, passes a fair-weather property and is
//! caught by its fault property once the proxy plays its schedule.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

mod support;

use std::sync::{Arc, Mutex};

use conformance::{FaultMutation, Property, Scale, Subject, Verdict};
use state_redis::RedisConfig;

fn assert_caught(mutation: FaultMutation) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let server = Arc::new(Mutex::new(test_servers::redis::redis().unwrap()));
        let target = support::fault_target(&server).unwrap().wrapped(move |backend| mutation.wrap(backend));
        let url = server.lock().unwrap().url().to_owned();
        let direct = state_redis::backend(RedisConfig::new(url)).await.unwrap();
        let subject = Subject::from(mutation.wrap(direct)).with_faults(target);
        // In fair weather the mutant is a correct store...
        let fair = subject.run(Property::LinearizabilityGetSetCas, Scale::SMALL).await;
        assert!(!fair.failed(), "{mutation:?} failed a fair-weather property: {:?}", fair.verdict);
        // ...and under faults it is caught.
        let report = subject.run(mutation.caught_by(), Scale::DEFAULT).await;
        match report.verdict {
            Verdict::Failed { counterexample } => {
                eprintln!("{mutation:?} caught by {}:\n{counterexample}", mutation.caught_by().name());
            }
            other => panic!("{mutation:?} was not caught by {}: {other:?}", mutation.caught_by().name()),
        }
    });
}

#[test]
fn an_increment_retried_after_a_lost_reply_is_caught() {
    assert_caught(FaultMutation::RetriesIncrement);
}

#[test]
fn a_lost_reply_reported_as_success_is_caught() {
    assert_caught(FaultMutation::SuccessWhenReplyLost);
}

#[test]
fn a_pool_that_never_recovers_is_caught() {
    assert_caught(FaultMutation::NeverRecovers);
}

#[test]
fn an_acquisition_assumed_when_its_reply_was_lost_is_caught() {
    assert_caught(FaultMutation::AcquiredWhenReplyLost);
}

#[test]
fn a_store_claiming_durability_over_a_server_without_persistence_is_caught() {
    assert_caught(FaultMutation::ClaimsDurable);
}
