//! The configuration property can fail: each broken loader (the in-memory
//! backend's settings mishandled in one way) is caught, with a
//! counterexample that names what went wrong; the correct loader passes.

#![allow(missing_docs, clippy::panic, clippy::unwrap_used)]

use std::sync::Arc;

use conformance::{Configured, Property, Scale, Subject, Verdict};
use state_api::memory::MemoryConfig;
use state_api::{Backend, MemoryStore};

/// How a loader mishandles the settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Broken {
    /// None: the correct loader.
    Not,
    /// Drops fields it does not know instead of refusing them.
    IgnoresUnknownFields,
    /// Builds the default store whatever `max_value_len` says.
    IgnoresValueLimit,
    /// Takes `max_value_len` without validating it.
    SkipsValidation,
    /// Refuses with a message that names no field.
    Anonymous,
    /// Declares a fixed limit, yet takes `max_value_len`.
    FixedButTakesIt,
}

fn backend(store: MemoryStore) -> Backend {
    let store = Arc::new(store);
    Backend::new(store.clone(), store.clone()).with_schedules(store)
}

fn load(broken: Broken, fields: &str) -> Result<Backend, String> {
    let mut table: toml::Table = toml::from_str(fields).map_err(|e| e.to_string())?;
    if broken == Broken::IgnoresUnknownFields {
        table.retain(|name, _| name == "max_value_len");
    }
    let config = if broken == Broken::SkipsValidation {
        let len = table.get("max_value_len").and_then(toml::Value::as_integer).unwrap_or(16 << 20);
        MemoryConfig::new().with_max_value_len(usize::try_from(len).unwrap())
    } else {
        table.try_into().map_err(|e: toml::de::Error| match broken {
            Broken::Anonymous => "invalid settings".to_owned(),
            _ => e.to_string(),
        })?
    };
    let config = if broken == Broken::IgnoresValueLimit { MemoryConfig::new() } else { config };
    Ok(backend(config.builder().build()))
}

fn configured(broken: Broken) -> Configured {
    let configured = Configured::new("", move |fields: String| async move { load(broken, &fields) });
    if broken == Broken::FixedButTakesIt { configured.with_fixed_value_limit() } else { configured }
}

/// The configuration property's verdict on `broken`.
fn verdict(broken: Broken) -> Verdict {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let subject = {
        let _entered = runtime.enter();
        Subject::from(Backend::memory()).with_configured(configured(broken))
    };
    runtime.block_on(subject.run(Property::Configuration, Scale::DEFAULT)).verdict
}

/// The property fails on `broken`, and its counterexample contains `says`.
fn assert_caught(broken: Broken, says: &str) {
    match verdict(broken) {
        Verdict::Failed { counterexample } => {
            assert!(counterexample.contains(says), "{broken:?}: expected {says:?} in:\n{counterexample}");
        }
        other => panic!("{broken:?} was not caught: {other:?}"),
    }
}

#[test]
fn the_correct_loader_passes() {
    assert_eq!(verdict(Broken::Not), Verdict::Passed);
}

#[test]
fn unknown_fields_dropped_are_caught() {
    assert_caught(Broken::IgnoresUnknownFields, "an unknown field (`kit_unknown_field = 1`) was accepted");
}

#[test]
fn a_value_limit_ignored_is_caught() {
    assert_caught(
        Broken::IgnoresValueLimit,
        "built with max_value_len = 4096, the store declares max_value_len 16777216",
    );
}

#[test]
fn a_value_limit_unvalidated_is_caught() {
    assert_caught(Broken::SkipsValidation, "a value limit under the 1 KiB floor (`max_value_len = 1023`) was accepted");
}

#[test]
fn a_refusal_naming_nothing_is_caught() {
    assert_caught(Broken::Anonymous, "was refused without naming `kit_unknown_field`");
}

#[test]
fn a_fixed_limit_that_is_configurable_after_all_is_caught() {
    assert_caught(Broken::FixedButTakesIt, "max_value_len, which the backend declares it does not take");
}

#[test]
fn without_a_loader_the_property_is_skipped() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let subject = {
        let _entered = runtime.enter();
        Subject::from(Backend::memory())
    };
    let report = runtime.block_on(subject.run(Property::Configuration, Scale::DEFAULT));
    assert!(matches!(report.verdict, Verdict::Skipped { .. }), "{:?}", report.verdict);
}

#[test]
fn a_listed_invalid_setting_that_is_accepted_is_caught() {
    // 2048 is a valid limit: listed as invalid, its acceptance must fail
    // the property, as a backend that accepts a setting it should refuse.
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let subject = {
        let _entered = runtime.enter();
        let configured = configured(Broken::Not).refusing("max_value_len = 2048", "max_value_len");
        Subject::from(Backend::memory()).with_configured(configured)
    };
    match runtime.block_on(subject.run(Property::Configuration, Scale::DEFAULT)).verdict {
        Verdict::Failed { counterexample } => assert!(
            counterexample.contains("a setting the suite lists as invalid (`max_value_len = 2048`) was accepted"),
            "{counterexample}"
        ),
        other => panic!("an accepted listed setting was not caught: {other:?}"),
    }
}
