//! The list of properties and the functions that run them.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use state_api::{Backend, Capabilities, ExpiryClock, StateError};

use crate::properties;
use crate::report::{PropertyReport, RunReport, Verdict};
use crate::scale::Scale;

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
}

impl Context {
    /// A context with a fresh random namespace.
    pub fn new(backend: Backend, scale: Scale) -> Context {
        let capabilities = backend.capabilities();
        let namespace = format!("ck{:08x}", fastrand::u32(..));
        Context { backend, capabilities, scale, namespace }
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

/// One property of the kit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Property {
    /// 1. Random operation sequences give exactly the model's results.
    SequentialModel,
    /// 2. Concurrent histories of single-key operations are linearizable.
    Linearizability,
    /// 3. Of concurrent `check_and_set` calls on one key, exactly one wins.
    OneWinner,
    /// 4. Read-then-CAS increments (and atomic increments) lose nothing.
    NoLostUpdate,
    /// 5. Valid leases never overlap; a lock-protected counter ends exact.
    MutualExclusion,
    /// 6. Fencing tokens strictly increase across acquisitions and takeovers.
    FencingTokens,
    /// 7. An abandoned lease frees at its TTL, not before; the stale holder
    ///    cannot disturb the new one.
    LeaseExpiry,
    /// 8. Expiry within tolerance; TTL-less writes clear TTLs; increments
    ///    keep the creation TTL; expired keys are absent for every operation.
    Ttl,
    /// 9. Scans list exactly the live matching entries, ordered, once.
    Scan,
    /// 10. Edge inputs: empty, binary, maximal values; odd keys; typed errors.
    EdgeInputs,
    /// Undeclared optional features answer `Unsupported`.
    Capabilities,
}

impl Property {
    /// Every property, in kit order.
    pub const ALL: [Property; 11] = [
        Property::SequentialModel,
        Property::Linearizability,
        Property::OneWinner,
        Property::NoLostUpdate,
        Property::MutualExclusion,
        Property::FencingTokens,
        Property::LeaseExpiry,
        Property::Ttl,
        Property::Scan,
        Property::EdgeInputs,
        Property::Capabilities,
    ];

    /// The property's name (also its test name in `suite!`).
    pub fn name(&self) -> &'static str {
        match self {
            Property::SequentialModel => "sequential_model",
            Property::Linearizability => "linearizability",
            Property::OneWinner => "one_winner",
            Property::NoLostUpdate => "no_lost_update",
            Property::MutualExclusion => "mutual_exclusion",
            Property::FencingTokens => "fencing_tokens",
            Property::LeaseExpiry => "lease_expiry",
            Property::Ttl => "ttl",
            Property::Scan => "scan",
            Property::EdgeInputs => "edge_inputs",
            Property::Capabilities => "capabilities",
        }
    }

    /// Looks a property up by name.
    pub fn from_name(name: &str) -> Option<Property> {
        Property::ALL.into_iter().find(|p| p.name() == name)
    }

    /// `Some(reason)` when the backend's capabilities say the property does
    /// not apply.
    pub fn skip_reason(&self, capabilities: &Capabilities) -> Option<String> {
        let locks = matches!(self, Property::MutualExclusion | Property::FencingTokens | Property::LeaseExpiry);
        if locks && !capabilities.features.locks {
            return Some("the backend does not declare the locks feature".into());
        }
        if *self == Property::Scan && !capabilities.features.scan {
            return Some("the backend does not declare the scan feature".into());
        }
        None
    }

    fn start<'a>(&self, cx: &'a Context) -> PropertyFuture<'a> {
        match self {
            Property::SequentialModel => Box::pin(properties::sequential::run(cx)),
            Property::Linearizability => Box::pin(properties::linearizable::run(cx)),
            Property::OneWinner => Box::pin(properties::races::one_winner(cx)),
            Property::NoLostUpdate => Box::pin(properties::races::no_lost_update(cx)),
            Property::MutualExclusion => Box::pin(properties::locks::mutual_exclusion(cx)),
            Property::FencingTokens => Box::pin(properties::locks::fencing_tokens(cx)),
            Property::LeaseExpiry => Box::pin(properties::locks::lease_expiry(cx)),
            Property::Ttl => Box::pin(properties::ttl::run(cx)),
            Property::Scan => Box::pin(properties::scan::run(cx)),
            Property::EdgeInputs => Box::pin(properties::edge::run(cx)),
            Property::Capabilities => Box::pin(properties::capabilities::run(cx)),
        }
    }

    /// Runs this property against `backend` and reports. Must be called
    /// inside a multi-threaded tokio runtime.
    pub async fn run(&self, backend: &Backend, scale: Scale) -> PropertyReport {
        self.run_in(&Context::new(backend.clone(), scale)).await
    }

    /// Runs this property in an existing context.
    pub async fn run_in(&self, cx: &Context) -> PropertyReport {
        let started = Instant::now();
        let (verdict, cases) = match self.skip_reason(&cx.capabilities) {
            Some(reason) => (Verdict::Skipped { reason }, 0),
            None => match self.start(cx).await {
                Ok(cases) => (Verdict::Passed, cases),
                Err(Failure(counterexample)) => (Verdict::Failed { counterexample }, 0),
            },
        };
        PropertyReport { property: self.name(), verdict, cases, duration: started.elapsed() }
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
