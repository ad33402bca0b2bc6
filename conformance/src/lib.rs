//! # conformance: the statekit contract made executable
//!
//! One property-based suite that proves a backend behaves exactly like the
//! contract in `state_api::contract` — sequentially against a pure model,
//! and under concurrency: every single-key operation linearizable, locks
//! mutually exclusive with increasing fencing tokens. The kit proves it can
//! fail: [`mutants`] holds deliberately broken stores, and the kit's own
//! tests assert each is caught by the property meant to catch it.
//!
//! ## Running the kit against your backend
//!
//! In your backend crate's `tests/conformance.rs`, one line gives one
//! `#[test]` per property (so `cargo test` lists and filters them):
//!
//! ```ignore
//! conformance::suite!(my_store, async {
//!     let store = std::sync::Arc::new(MyStore::connect("...").await?);
//!     Ok::<_, state_api::StateError>(state_api::Backend::new(store.clone(), store.clone()).with_schedules(store))
//! });
//! ```
//!
//! For a custom harness, call the async functions directly; a
//! [`RunReport`] prints as a table or JSON:
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)] async fn main() {
//! use conformance::{Property, Scale};
//! let backend = state_api::Backend::memory();
//! let report = Property::OneWinner.run(&backend, Scale::SMALL).await;
//! assert!(!report.failed());
//! let all = conformance::run_all(&backend, Scale::SMALL, |_| {}).await;
//! assert!(all.passed(), "{all}");
//! # }
//! ```
//!
//! The same kit runs from the command line as `statekit check`. The run's
//! size comes from `STATEKIT_SCALE` (`small`, `default`, `large` or a
//! factor); the default keeps the whole kit on the in-memory backend well
//! under a minute.
//!
//! ## Properties
//!
//! See [`Property`]: sequential model equivalence (proptest, shrinking),
//! linearizability (the Wing–Gong checker of the [`lincheck`] crate, per key),
//! exactly one `check_and_set` winner, no lost update, lock mutual
//! exclusion, fencing tokens, lease expiry and takeover, TTL, scan, edge
//! inputs, capabilities, extreme arguments, release wake-ups, unreachable
//! endpoints, the configuration surface, acquire timeouts, cancelled
//! acquires, lease extension, scan cost, storage reclaim and faults. A property runs exactly when the backend's
//! [`state_api::Capabilities`] say it applies, and leaves out exactly the
//! operations of undeclared features ([`supported`]).
//!
//! A property reports every failure it finds in a run, not just the first
//! ([`Findings`]): one defect must not hide another.

pub mod configured;
pub mod exec;
pub mod faults;
pub mod findings;
pub mod harness;
pub mod history_file;
pub mod history_model;
pub mod kit;
pub mod model;
pub mod mutants;
pub mod properties;
pub mod report;
pub mod scale;
pub mod supported;
pub mod unreachable;

pub use configured::Configured;
pub use faults::{Fault, FaultProxy, FaultTarget, ServerControl};
pub use findings::Findings;
pub use harness::{IntoSubject, Subject};
pub use history_model::{Recorder, StatekitModel};
pub use kit::{Context, Failure, Property, run_all, run_selected};
pub use mutants::Mutation;
pub use mutants::faults::FaultMutation;
pub use report::{PropertyReport, RunReport, Verdict};
pub use scale::Scale;
pub use unreachable::Unreachable;
