//! The list of properties and the functions that run them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use state_api::{Backend, Capabilities, ExpiryClock, Features, StateError};

use crate::configured::Configured;
use crate::faults::FaultTarget;
use crate::report::{PropertyReport, RunReport, Verdict};
use crate::scale::Scale;
use crate::unreachable::Unreachable;

/// Why a property failed: a counterexample a person can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure(pub String);

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<StateError> for Failure {
    fn from(error: StateError) -> Failure {
        Failure(format!("unexpected error: {error} ({error:?})"))
    }
}

impl From<String> for Failure {
    fn from(text: String) -> Failure {
        Failure(text)
    }
}

/// What a property returns: the number of cases it ran, or a failure.
pub type Outcome = Result<u64, Failure>;

/// Fails the property with a formatted message unless `cond` holds.
#[macro_export]
#[doc(hidden)]
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::kit::Failure(format!($($msg)+)));
        }
    };
}

/// Everything a property needs: the backend, the scale, and a namespace
/// that keeps this run's keys apart from other runs on the same server.
#[derive(Debug, Clone)]
pub struct Context {
    /// The backend under test.
    pub backend: Backend,
    /// Its capabilities, read once.
    pub capabilities: Capabilities,
    /// The run's size.
    pub scale: Scale,
    namespace: String,
    unreachable: Option<Unreachable>,
    faults: Option<FaultTarget>,
    configured: Option<Configured>,
    peer: Option<Backend>,
    notes: std::sync::Arc<parking_lot::Mutex<Vec<String>>>,
}

impl Context {
    /// A context with a fresh random namespace.
    pub fn new(backend: Backend, scale: Scale) -> Context {
        let capabilities = backend.capabilities();
        let namespace = format!("ck{:08x}", fastrand::u32(..));
        Context {
            backend,
            capabilities,
            scale,
            namespace,
            unreachable: None,
            faults: None,
            configured: None,
            peer: None,
            notes: Default::default(),
        }
    }

    /// The same context with a target for the fault properties.
    pub fn with_faults(mut self, target: Option<FaultTarget>) -> Context {
        self.faults = target;
        self
    }

    /// Records what a property measured beyond its verdict; the report of
    /// the property running now carries it.
    pub fn note(&self, text: impl Into<String>) {
        self.notes.lock().push(text.into());
    }

    /// The fault target, if the test gave one.
    pub fn faults(&self) -> Option<&FaultTarget> {
        self.faults.as_ref()
    }

    /// The same context with a probe for the unreachable-endpoint property.
    pub fn with_unreachable(mut self, probe: Option<Unreachable>) -> Context {
        self.unreachable = probe;
        self
    }

    /// The unreachable-endpoint probe, if the test gave one.
    pub fn unreachable(&self) -> Option<&Unreachable> {
        self.unreachable.as_ref()
    }

    /// The same context with a loader for the configuration property.
    pub fn with_configured(mut self, configured: Option<Configured>) -> Context {
        self.configured = configured;
        self
    }

    /// The configuration loader, if the test gave one.
    pub fn configured(&self) -> Option<&Configured> {
        self.configured.as_ref()
    }

    /// The same context with a second client of the store under test.
    pub fn with_peer(mut self, peer: Option<Backend>) -> Context {
        self.peer = peer;
        self
    }

    /// The second client, if the test gave one.
    pub fn peer(&self) -> Option<&Backend> {
        self.peer.as_ref()
    }

    /// A space name unique to this run and `label`.
    pub fn space(&self, label: &str) -> String {
        format!("{}-{label}", self.namespace)
    }

    /// A lock name unique to this run and `label`.
    pub fn lock_name(&self, label: &str) -> String {
        format!("{}-{label}", self.namespace)
    }

    /// How far apart two clocks' views of one deadline may be: a fixed
    /// allowance for scheduling and round trips, plus the declared skew
    /// where clients' clocks decide expiry.
    pub fn clock_tolerance(&self) -> Duration {
        let base = Duration::from_millis(150);
        match self.capabilities.expiry_clock {
            ExpiryClock::Client { max_skew } => base + max_skew,
            ExpiryClock::Process | ExpiryClock::Server => base,
        }
    }
}

type PropertyFuture<'a> = Pin<Box<dyn Future<Output = Outcome> + Send + 'a>>;

/// The kit's properties, declared once: the [`Property`] enum, its
/// [`ALL`](Property::ALL), [`name`](Property::name), capability checks and
/// runners, and the tests [`suite!`](crate::suite) generates all come from
/// this list. Adding a property is one entry here and its function.
///
/// `with_properties!(callback { args })` expands to `callback! { args
/// entries }`, where each entry is
///
/// ```text
/// /// docs
/// test_name => Variant [path::to::run] requires [feature, ...],
/// ```
///
/// `test_name` is the property's name (on the command line, in reports and
/// as its test's name), `run` the async function that checks it, and
/// `requires` the [`state_api::Features`] it needs: where the backend lacks
/// one, the property is skipped. Invoke it where items go (the callback
/// is named by a path, which expression position does not accept). The
/// callback may ignore what it does not need, as this one does:
///
/// ```
/// macro_rules! names {
///     ($($(#[doc = $doc:literal])* $test:ident => $variant:ident [$run:path] requires [$($feature:ident),*],)*) => {
///         const NAMES: &[&str] = &[$(stringify!($test)),*];
///     };
/// }
/// conformance::with_properties!(names {});
///
/// fn main() {
///     let all: Vec<&str> = conformance::Property::ALL.iter().map(|p| p.name()).collect();
///     assert_eq!(NAMES, all);
/// }
/// ```
#[macro_export]
macro_rules! with_properties {
    ($callback:path { $($args:tt)* }) => {
        $callback! { $($args)*
            /// 1. Random operation sequences give exactly the model's results.
            sequential_model => SequentialModel [$crate::properties::sequential::run] requires [],
            /// 2a. Concurrent `get`/`set`/`compare_and_swap` histories are
            ///     linearizable.
            linearizability_get_set_cas => LinearizabilityGetSetCas [$crate::properties::linearizable::get_set_cas] requires [],
            /// 2b. Concurrent `get`/`set`/`delete` histories are linearizable.
            linearizability_set_delete => LinearizabilitySetDelete [$crate::properties::linearizable::set_delete] requires [conditional_delete],
            /// 2c. Concurrent increments of counters whose windows expire during
            ///     the run are linearizable.
            linearizability_counters => LinearizabilityCounters [$crate::properties::linearizable::counters] requires [counters],
            /// 2d. Concurrent `check_and_set`s with TTLs, among reads, writes and
            ///     deletes of keys that expire during the run, are linearizable.
            linearizability_expiry => LinearizabilityExpiry [$crate::properties::linearizable::expiry] requires [],
            /// 3. Of concurrent `check_and_set` calls on one key, never written or
            ///    just expired, exactly one wins.
            one_winner => OneWinner [$crate::properties::races::one_winner] requires [],
            /// 4. Read-then-CAS increments (and atomic increments) lose nothing.
            no_lost_update => NoLostUpdate [$crate::properties::races::no_lost_update] requires [counters],
            /// 5. Valid leases never overlap; a lock-protected counter ends exact.
            mutual_exclusion => MutualExclusion [$crate::properties::locks::mutual_exclusion] requires [locks],
            /// 6. Fencing tokens strictly increase across acquisitions and takeovers.
            fencing_tokens => FencingTokens [$crate::properties::locks::fencing_tokens] requires [locks, fencing_tokens],
            /// 7. An abandoned lease frees at its TTL, not before; the stale holder
            ///    cannot disturb the new one.
            lease_expiry => LeaseExpiry [$crate::properties::locks::lease_expiry] requires [locks],
            /// 8. Expiry within tolerance; TTL-less writes clear TTLs; increments
            ///    keep the creation TTL; expired keys are absent for every operation.
            ttl => Ttl [$crate::properties::ttl::run] requires [],
            /// 9. Scans list exactly the live matching entries, ordered, once.
            scan => Scan [$crate::properties::scan::run] requires [scan],
            /// 10. Edge inputs: empty, binary, maximal values; odd keys; typed errors.
            edge_inputs => EdgeInputs [$crate::properties::edge::run] requires [],
            /// Undeclared optional features answer `Unsupported`.
            capabilities => Capabilities [$crate::properties::capabilities::run] requires [],
            /// The largest and smallest arguments (`Duration::MAX` timeouts and
            /// TTLs, `u64::MAX` versions, `i64` bounds, scan limits) give the
            /// typed answer: never a panic, never a write.
            extreme_arguments => ExtremeArguments [$crate::properties::extremes::run] requires [],
            /// A release wakes a waiter promptly where the backend declares
            /// release wake-ups.
            release_wakeups => ReleaseWakeups [$crate::properties::wakeups::run] requires [locks, lock_wakeups],
            /// A client's lock waiters are served in arrival order: under a
            /// steady stream of newcomers none is overtaken more than
            /// [`MAX_OVERTAKES`](crate::properties::fairness::MAX_OVERTAKES) (by calls starting 10 ms or more later)
            /// times, where the backend declares fair waiting.
            bounded_waiting => BoundedWaiting [$crate::properties::fairness::run] requires [locks, fair_waiting],
            /// Lock waiters of two clients are served in the order they
            /// called: a client whose task re-acquires as soon as it releases
            /// overtakes none of the other client's waiters more than
            /// [`MAX_OVERTAKES`](crate::properties::fairness::MAX_OVERTAKES)
            /// times, where the backend declares fairness across clients. Runs
            /// when the test gives the kit a second client (`Subject::with_peer`).
            fair_across_clients => FairAcrossClients [$crate::properties::fairness::across_clients] requires [locks, fair_across_clients],
            /// An unreachable endpoint fails with a retryable `Unavailable` within
            /// the connect timeout, and no error reveals a secret. Runs when the
            /// test gives the kit an [`Unreachable`](crate::Unreachable) probe.
            unreachable_endpoint => UnreachableEndpoint [$crate::properties::unreachable::run] requires [],
            /// Built from its `[state]` settings, the backend refuses an
            /// unknown field naming it, and `max_value_len` is declared and
            /// enforced, its 1 KiB floor accepted and anything under it refused.
            /// Runs when the test gives the kit a
            /// [`Configured`](crate::Configured) loader.
            configuration => Configuration [$crate::properties::configuration::run] requires [],
            /// `acquire` on a held lock gives up with `Timeout` no sooner than
            /// its timeout, and not much later.
            acquire_timeout => AcquireTimeout [$crate::properties::lock_timing::acquire_timeout] requires [locks],
            /// A cancelled `acquire` (its future dropped mid-wait) leaves no
            /// lease beyond its TTL.
            cancelled_acquire => CancelledAcquire [$crate::properties::lock_timing::cancelled_acquire] requires [locks],
            /// An extended lease is held for its new TTL from the extend, and
            /// not longer.
            lease_extension => LeaseExtension [$crate::properties::lock_timing::lease_extension] requires [locks],
            /// Fenced writes: the holder's succeed; a lease that expired, was
            /// released or was taken over cannot write, even stalled and
            /// unaware; under takeovers the applied writes follow token order.
            fenced_writes => FencedWrites [$crate::properties::fenced::run] requires [locks, fencing_tokens, fenced_writes],
            /// Fenced writes among acquisitions and releases of their lock
            /// and plain operations on their keys are linearizable: each is
            /// the plain write while its lease holds the lock, `LockLost`
            /// with no change otherwise.
            linearizability_fenced => LinearizabilityFenced [$crate::properties::linearizable::fenced] requires [locks, fencing_tokens, fenced_writes, counters, conditional_delete],
            /// A kept-alive lease stays held for five TTLs; when its
            /// extensions stall, the loss is signalled by its local deadline
            /// and before anyone else is granted the lock; a lease taken from
            /// under it is signalled within a TTL; stopping or dropping it
            /// releases the lock.
            keep_alive => KeepAlive [$crate::properties::keep_alive::run] requires [locks],
            /// A short scan page from a large space costs about what it costs
            /// from a small one.
            scan_cost => ScanCost [$crate::properties::scan_cost::run] requires [scan],
            /// Expired entries and free locks are physically reclaimed within
            /// the declared bound, a steady workload leaves only its live data,
            /// and a reclaim never removes an entry rewritten after it expired.
            /// Runs where the backend reports its storage
            /// ([`Capabilities::storage`](state_api::Capabilities::storage)).
            storage_reclaim => StorageReclaim [$crate::properties::storage::run] requires [],
            /// Schedules: random operation sequences give exactly the model's
            /// answers (replace by id, due order and limits, claimed items
            /// hidden, `ClaimLost` exactly when a claim no longer holds).
            schedule_model => ScheduleModel [$crate::properties::schedules::model] requires [schedules],
            /// Concurrent `schedule` calls on the same ids leave each id once,
            /// as one of the writes made.
            schedule_replace_by_id => ScheduleReplaceById [$crate::properties::schedules::replace_by_id] requires [schedules],
            /// Concurrent claimers while producers schedule: no item is in two
            /// live claims, and every item is completed exactly once.
            schedule_exactly_once => ScheduleExactlyOnce [$crate::properties::schedules::exactly_once] requires [schedules],
            /// A claim whose lease passed gives its item back and can neither
            /// complete nor release it.
            schedule_claim_expiry => ScheduleClaimExpiry [$crate::properties::schedules::claim_expiry] requires [schedules],
            /// `due` from a schedule with thousands of items due later or
            /// claimed costs about what it costs from a small one.
            schedule_cost => ScheduleCost [$crate::properties::schedules::cost] requires [schedules],
            /// Under network faults (latency, resets, cut replies, a black
            /// hole, low bandwidth, refused connections) concurrent histories
            /// stay linearizable, with failed operations as indeterminate, and
            /// every error is a retryable `Timeout` or `Unavailable`. Runs when
            /// the test gives the kit a [`FaultTarget`](crate::faults::FaultTarget).
            faults_linearizable => FaultsLinearizable [$crate::properties::faults::linearizable] requires [],
            /// After each network fault heals, an operation succeeds within a
            /// second, with no reconnect by the application. Runs with a
            /// fault target.
            fault_recovery => FaultRecovery [$crate::properties::faults::recovery] requires [],
            /// Under network faults, with holders that stall past their lease
            /// and then extend or release, no two holders ever believe they
            /// hold a lock at once, and fencing tokens follow the tenures.
            /// Runs with a fault target.
            faults_locks => FaultsLocks [$crate::properties::faults::locks] requires [locks],
            /// The server frozen (SIGSTOP) past the client's timeouts and the
            /// leases' TTL, then resumed: histories stay linearizable, no two
            /// lock holders believe they hold the lock at once, and operations
            /// succeed within a second. Runs when the fault target controls
            /// the server.
            server_pause => ServerPause [$crate::properties::faults::server_pause] requires [],
            /// The server killed and restarted on its data: operations succeed
            /// within a second of its return, and a store declared durable keeps every
            /// acknowledged write and its fencing order. Runs when the fault
            /// target controls the server.
            server_restart => ServerRestart [$crate::properties::faults::server_restart] requires [],
        }
    };
}

/// Generates [`Property`] and its list-shaped methods from
/// [`with_properties!`].
macro_rules! declare_properties {
    ($($(#[doc = $doc:literal])* $test:ident => $variant:ident [$run:path] requires [$($feature:ident),*],)*) => {
        /// One property of the kit (declared in [`with_properties!`]).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Property {
            $($(#[doc = $doc])* $variant,)*
        }

        impl Property {
            /// Every property, in kit order.
            pub const ALL: [Property; [$(stringify!($variant)),*].len()] = [$(Property::$variant),*];

            /// The property's name (also its test name in `suite!`).
            pub fn name(&self) -> &'static str {
                match self {
                    $(Property::$variant => stringify!($test),)*
                }
            }

            /// The optional features of [`state_api::Features`] the
            /// property needs, by field name.
            pub fn required_features(&self) -> &'static [&'static str] {
                match self {
                    $(Property::$variant => &[$(stringify!($feature)),*],)*
                }
            }

            /// The required features `features` lacks.
            fn missing_features(&self, features: &Features) -> Vec<&'static str> {
                match self {
                    $(Property::$variant => {
                        #[allow(unused_mut)]
                        let mut missing = Vec::new();
                        $(if !features.$feature { missing.push(stringify!($feature)); })*
                        missing
                    })*
                }
            }

            fn start<'a>(&self, cx: &'a Context) -> PropertyFuture<'a> {
                match self {
                    $(Property::$variant => Box::pin($run(cx)),)*
                }
            }
        }
    };
}

crate::with_properties!(declare_properties {});

impl Property {
    /// Looks a property up by name.
    pub fn from_name(name: &str) -> Option<Property> {
        Property::ALL.into_iter().find(|p| p.name() == name)
    }

    /// `Some(reason)` when the backend's capabilities say the property does
    /// not apply: it lacks a feature the property requires.
    pub fn skip_reason(&self, capabilities: &Capabilities) -> Option<String> {
        let missing = self.missing_features(&capabilities.features);
        (!missing.is_empty()).then(|| format!("the backend does not declare the {} feature", missing.join(" and ")))
    }

    /// `Some(reason)` when the context lacks what the property needs
    /// beyond features: the unreachable-endpoint property needs a probe,
    /// the storage property a backend that reports its storage.
    fn context_skip(&self, cx: &Context) -> Option<String> {
        match self {
            Property::UnreachableEndpoint if cx.unreachable().is_none() => Some(
                "no unreachable endpoint was given to the kit (tests give one with Subject::with_unreachable)"
                    .to_owned(),
            ),
            Property::FairAcrossClients if cx.peer().is_none() => {
                Some("no second client was given to the kit (tests give one with Subject::with_peer)".to_owned())
            }
            Property::Configuration if cx.configured().is_none() => Some(
                "no configuration loader was given to the kit (tests give one with Subject::with_configured)"
                    .to_owned(),
            ),
            Property::FaultsLinearizable | Property::FaultRecovery | Property::FaultsLocks if cx.faults().is_none() => {
                Some("no fault target was given to the kit (tests give one with Subject::with_faults)".to_owned())
            }
            Property::ServerPause | Property::ServerRestart if cx.faults().and_then(|t| t.server()).is_none() => Some(
                "no control over the server was given to the kit (tests that start their own server give one \
                     with FaultTarget::with_server)"
                    .to_owned(),
            ),
            Property::StorageReclaim if cx.capabilities.storage.is_none() => {
                Some("the backend does not report its storage (Capabilities::storage)".to_owned())
            }
            _ => None,
        }
    }

    /// Runs this property against `backend` and reports. Must be called
    /// inside a multi-threaded tokio runtime.
    pub async fn run(&self, backend: &Backend, scale: Scale) -> PropertyReport {
        self.run_in(&Context::new(backend.clone(), scale)).await
    }

    /// Runs this property in an existing context.
    pub async fn run_in(&self, cx: &Context) -> PropertyReport {
        cx.notes.lock().clear();
        let started = Instant::now();
        let (verdict, cases) = match self.skip_reason(&cx.capabilities).or_else(|| self.context_skip(cx)) {
            Some(reason) => (Verdict::Skipped { reason }, 0),
            None => match self.start(cx).await {
                Ok(cases) => (Verdict::Passed, cases),
                Err(Failure(counterexample)) => (Verdict::Failed { counterexample }, 0),
            },
        };
        let notes = std::mem::take(&mut *cx.notes.lock());
        PropertyReport { property: self.name(), verdict, cases, duration: started.elapsed(), notes }
    }
}

/// Runs every property against `backend`, calling `progress` before each,
/// and returns the report. Must be called inside a multi-threaded runtime.
pub async fn run_all(backend: &Backend, scale: Scale, mut progress: impl FnMut(Property)) -> RunReport {
    run_selected(backend, scale, &Property::ALL, |_, property| progress(property)).await
}

/// Runs `properties`, in order, against `backend` in one context, calling
/// `progress` with each one's position before it starts.
pub async fn run_selected(
    backend: &Backend,
    scale: Scale,
    properties: &[Property],
    mut progress: impl FnMut(usize, Property),
) -> RunReport {
    let cx = Context::new(backend.clone(), scale);
    let mut reports = Vec::with_capacity(properties.len());
    for (position, property) in properties.iter().enumerate() {
        progress(position, *property);
        reports.push(property.run_in(&cx).await);
    }
    RunReport { backend: cx.capabilities.backend.to_owned(), scale: scale.to_string(), properties: reports }
}

#[cfg(test)]
mod tests {
    use super::Property;

    #[test]
    fn every_property_is_found_by_its_own_name_and_names_are_unique() {
        for property in Property::ALL {
            assert_eq!(Property::from_name(property.name()), Some(property));
        }
        let mut names: Vec<&str> = Property::ALL.iter().map(Property::name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Property::ALL.len());
    }

    #[test]
    fn a_property_is_skipped_exactly_when_a_required_feature_is_missing() {
        let mut capabilities = state_api::Backend::memory().capabilities();
        assert!(Property::ALL.iter().all(|p| p.skip_reason(&capabilities).is_none()));
        capabilities.features.locks = false;
        let reason = Property::FencingTokens.skip_reason(&capabilities);
        assert_eq!(reason.as_deref(), Some("the backend does not declare the locks feature"));
        assert_eq!(Property::Scan.skip_reason(&capabilities), None);
    }
}
