//! A store that declares only part of the optional features is checked on
//! everything else: no property fails on an operation the store does not
//! declare, and the properties that apply still run.

#![allow(missing_docs, clippy::unwrap_used)]

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use conformance::{Property, RunReport, Scale, Verdict};
use state_api::driver::{Attempt, Listing, LockDriver, ScanRequest, StoreDriver, Ttl, Watch};
use state_api::{
    Backend, Capabilities, Condition, Counter, DeleteCondition, Entry, Features, Fence, Key, Lease, MemoryStore,
    PutOutcome, Result,
};
use tokio::time::Instant;

/// The in-memory store declaring only `features`, and no storage
/// reporting: the support layer then answers `Unsupported` for the rest,
/// as for any third-party driver.
struct Limited {
    inner: MemoryStore,
    features: Features,
}

#[async_trait]
impl StoreDriver for Limited {
    fn declare(&self) -> Capabilities {
        self.inner.declare().with_features(self.features).with_storage(None)
    }
    async fn read(&self, key: &Key) -> Result<Option<Entry>> {
        self.inner.read(key).await
    }
    async fn write(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome> {
        self.inner.write(key, value, condition, ttl, fence).await
    }
    async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
        self.inner.remove(key, condition, fence).await
    }
    async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
        self.inner.add(key, delta, ttl, fence).await
    }
    async fn list(&self, request: ScanRequest<'_>) -> Result<Listing> {
        self.inner.list(request).await
    }
}

#[async_trait]
impl LockDriver for Limited {
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        LockDriver::attempt(&self.inner, name, owner, ttl).await
    }
    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        self.inner.renew(lease, ttl).await
    }
    async fn free(&self, lease: &Lease) -> Result<bool> {
        self.inner.free(lease).await
    }
    async fn holds(&self, lease: &Lease) -> Result<bool> {
        self.inner.holds(lease).await
    }
    async fn watch(&self, name: &str, deadline: Instant) -> Option<Watch> {
        if self.features.lock_wakeups { self.inner.watch(name, deadline).await } else { None }
    }
}

fn run_kit(features: Features) -> RunReport {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let store = Arc::new(Limited { inner: MemoryStore::new(), features });
        let mut backend = Backend::new(store.clone(), store.clone());
        if features.schedules {
            backend = backend.with_schedules(Arc::new(store.inner.clone()));
        }
        conformance::run_all(&backend, Scale::DEFAULT, |_| {}).await
    })
}

fn ran(report: &RunReport, property: Property) -> bool {
    report.properties.iter().any(|p| p.property == property.name() && p.verdict == Verdict::Passed)
}

#[test]
fn a_store_with_locks_and_no_other_optional_feature_passes_what_applies() {
    let report = run_kit(Features { locks: true, ..Features::NONE });
    assert!(report.passed(), "{report}");
    for property in [
        Property::SequentialModel,
        Property::Ttl,
        Property::EdgeInputs,
        Property::ExtremeArguments,
        Property::Capabilities,
        Property::MutualExclusion,
        Property::LeaseExpiry,
        Property::LeaseExtension,
        Property::CancelledAcquire,
    ] {
        assert!(ran(&report, property), "{} did not run:\n{report}", property.name());
    }
    for property in [
        Property::Scan,
        Property::ScanCost,
        Property::FencingTokens,
        Property::ReleaseWakeups,
        Property::BoundedWaiting,
        Property::FairAcrossClients,
        Property::ScheduleModel,
    ] {
        assert!(!ran(&report, property), "{} ran without its feature:\n{report}", property.name());
    }
}

#[test]
fn a_store_without_locks_passes_what_applies() {
    let report = run_kit(Features { locks: false, lock_wakeups: false, fencing_tokens: false, ..Features::ALL });
    assert!(report.passed(), "{report}");
    for property in [
        Property::SequentialModel,
        Property::Scan,
        Property::ScanCost,
        Property::Capabilities,
        Property::ScheduleModel,
        Property::ScheduleExactlyOnce,
    ] {
        assert!(ran(&report, property), "{} did not run:\n{report}", property.name());
    }
    assert!(!ran(&report, Property::MutualExclusion), "a lock property ran without locks:\n{report}");
}
