//! Running the kit from a test binary: the `suite!` macro and what it calls.

use std::any::Any;
use std::fmt::Display;
use std::future::Future;

use state_api::Backend;

use crate::configured::Configured;
use crate::faults::FaultTarget;
use crate::kit::{Context, Property};
use crate::report::{PropertyReport, Verdict};
use crate::scale::Scale;
use crate::unreachable::Unreachable;

/// A backend under test, plus whatever must live as long as the test (a
/// disposable server, a temporary directory).
pub struct Subject {
    /// The backend.
    pub backend: Backend,
    unreachable: Option<Unreachable>,
    faults: Option<FaultTarget>,
    configured: Option<Configured>,
    peer: Option<Backend>,
    strict: Option<Vec<Property>>,
    keep_alive: Vec<Box<dyn Any + Send>>,
}

impl Subject {
    /// Gives the kit a way to connect the same backend to an endpoint
    /// where nothing listens, for the unreachable-endpoint property.
    pub fn with_unreachable(mut self, probe: Unreachable) -> Subject {
        self.unreachable = Some(probe);
        self
    }

    /// Gives the kit a way to reach the backend through its fault proxy,
    /// for the fault properties.
    pub fn with_faults(mut self, target: FaultTarget) -> Subject {
        self.faults = Some(target);
        self
    }

    /// Gives the kit a way to build the same backend from its `[state]`
    /// settings, for the configuration property.
    pub fn with_configured(mut self, configured: Configured) -> Subject {
        self.configured = Some(configured);
        self
    }

    /// Gives the kit a second client of the same store (connected on its
    /// own, as another process would be), for the property that checks
    /// fairness across clients.
    pub fn with_peer(mut self, peer: Backend) -> Subject {
        self.peer = Some(peer);
        self
    }

    /// Makes every property but those listed required: one that would be
    /// skipped (the backend stopped declaring a feature or its storage
    /// reporting, a probe went missing) fails instead, with the reason.
    /// Without it a backend that quietly declares less is checked less,
    /// and nothing says so but a note.
    pub fn strict(mut self, not_applicable: &[Property]) -> Subject {
        self.strict = Some(not_applicable.to_vec());
        self
    }

    /// Runs `property` against this subject.
    pub async fn run(&self, property: Property, scale: Scale) -> PropertyReport {
        let cx = Context::new(self.backend.clone(), scale)
            .with_unreachable(self.unreachable.clone())
            .with_faults(self.faults.clone())
            .with_configured(self.configured.clone())
            .with_peer(self.peer.clone());
        let mut report = property.run_in(&cx).await;
        if let (Some(not_applicable), Verdict::Skipped { reason }) = (&self.strict, &report.verdict)
            && !not_applicable.contains(&property)
        {
            let counterexample = format!("the suite requires this property, and it would have been skipped: {reason}");
            report.verdict = Verdict::Failed { counterexample };
        }
        report
    }

    /// Keeps `guard` alive until the test ends.
    pub fn keep_alive(mut self, guard: impl Any + Send) -> Subject {
        self.keep_alive.push(Box::new(guard));
        self
    }
}

impl From<Backend> for Subject {
    fn from(backend: Backend) -> Subject {
        Subject {
            backend,
            unreachable: None,
            faults: None,
            configured: None,
            peer: None,
            strict: None,
            keep_alive: Vec::new(),
        }
    }
}

/// What a `suite!` factory may return: a [`Backend`], a [`Subject`], or a
/// `Result` of either whose error explains why no backend could be made
/// (for example, which server binary to install).
pub trait IntoSubject {
    /// Converts, or explains the failure.
    fn into_subject(self) -> Result<Subject, String>;
}

impl IntoSubject for Backend {
    fn into_subject(self) -> Result<Subject, String> {
        Ok(self.into())
    }
}

impl IntoSubject for Subject {
    fn into_subject(self) -> Result<Subject, String> {
        Ok(self)
    }
}

impl<T: IntoSubject, E: Display> IntoSubject for Result<T, E> {
    fn into_subject(self) -> Result<Subject, String> {
        self.map_err(|e| e.to_string()).and_then(IntoSubject::into_subject)
    }
}

/// Runs one property as a test: builds a multi-threaded runtime, calls the
/// factory, runs the property at the scale from `STATEKIT_SCALE`, and
/// panics with the counterexample if it fails — this is test code, where a
/// panic is how failure is reported. A factory error fails the test too:
/// a missing server is a failure, never a silent skip.
#[allow(clippy::panic)]
pub fn run_test<F, S>(property: Property, factory: impl FnOnce() -> F)
where
    F: Future<Output = S>,
    S: IntoSubject,
{
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(runtime) => runtime,
        Err(e) => panic!("cannot start a tokio runtime: {e}"),
    };
    let scale = Scale::from_env().unwrap_or_else(|e| panic!("{e}"));
    let report = runtime.block_on(async {
        let subject = factory().await.into_subject().unwrap_or_else(|e| panic!("cannot create the backend: {e}"));
        let report = subject.run(property, scale).await;
        drop(subject);
        report
    });
    for note in &report.notes {
        eprintln!("{}: {note}", property.name());
    }
    match report.verdict {
        Verdict::Passed => {}
        Verdict::Skipped { reason } => eprintln!("{}: not applicable: {reason}", property.name()),
        Verdict::Failed { counterexample } => panic!("property {} failed:\n{counterexample}", property.name()),
    }
}

/// Expands to one `#[test]` per property of the kit (the list in
/// [`with_properties!`](crate::with_properties)), in a module named
/// `$name`, each running against a backend made by `$factory` — an
/// expression that evaluates to a future (typically an `async` block)
/// resolving to a [`Backend`], a [`Subject`], or a `Result` of either.
///
/// ```ignore
/// conformance::suite!(memory, async { state_api::Backend::memory() });
/// ```
#[macro_export]
macro_rules! suite {
    ($name:ident, $factory:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $crate::with_properties!($crate::__suite_tests { $factory; });
        }
    };
}

/// The `suite!` callback of [`with_properties!`](crate::with_properties):
/// one `#[test]` per property, named after it.
#[macro_export]
#[doc(hidden)]
macro_rules! __suite_tests {
    ($factory:expr; $($(#[doc = $doc:literal])* $test:ident => $variant:ident [$run:path] requires [$($feature:ident),*],)*) => {
        $(
            $(#[doc = $doc])*
            #[test]
            fn $test() {
                $crate::harness::run_test($crate::Property::$variant, || $factory);
            }
        )*
    };
}
