//! Collecting every failure of a property run, not just the first.
//!
//! A property that stops at its first failure hides everything after it:
//! a store whose fencing tokens are wrong would never have its mutual
//! exclusion checked. Properties therefore record each failed check in
//! [`Findings`] and go on with every check that still makes sense, and the
//! run reports all of them together.

use std::fmt::Debug;
use std::future::Future;

use state_api::Result;

use crate::kit::{Failure, Outcome};

/// The failures a property has found so far, and how many checks it made.
#[derive(Debug, Default)]
pub struct Findings {
    failures: Vec<String>,
    cases: u64,
}

impl Findings {
    /// No checks made yet.
    pub fn new() -> Findings {
        Findings::default()
    }

    /// Counts one check; records `failure()` unless `holds`. Returns
    /// `holds`, so a caller can skip what depends on it.
    pub fn check(&mut self, holds: bool, failure: impl FnOnce() -> String) -> bool {
        self.cases += 1;
        if !holds {
            self.failures.push(failure());
        }
        holds
    }

    /// Counts one check that ran to its own conclusion; records its failure,
    /// if any, prefixed by `label`, and returns its value otherwise.
    pub fn record<T>(&mut self, label: &str, result: std::result::Result<T, Failure>) -> Option<T> {
        self.cases += 1;
        match result {
            Ok(value) => Some(value),
            Err(Failure(text)) => {
                self.failures.push(format!("{label}: {text}"));
                None
            }
        }
    }

    /// Adds the checks and failures of `other`, found by a part of the
    /// property that ran on its own (concurrently, say).
    pub fn absorb(&mut self, other: Findings) {
        self.cases += other.cases;
        self.failures.extend(other.failures);
    }

    /// Records a failure found without a check of its own.
    pub fn fail(&mut self, failure: impl Into<String>) {
        self.failures.push(failure.into());
    }

    /// Runs `call` in its own task and records whether its answer is the
    /// expected one. A panic becomes a failure naming `what`, so one
    /// misbehaving call cannot abort the run. Returns the answer's value
    /// when it was expected and `Ok`.
    pub async fn expect<T: Send + Debug + 'static>(
        &mut self,
        what: &str,
        call: impl Future<Output = Result<T>> + Send + 'static,
        expected: &str,
        holds: impl FnOnce(&Result<T>) -> bool,
    ) -> Option<T> {
        self.cases += 1;
        match survives(what, call).await {
            Err(panicked) => {
                self.failures.push(panicked);
                None
            }
            Ok(answer) if holds(&answer) => answer.ok(),
            Ok(answer) => {
                self.failures.push(format!("{what}: expected {expected}, got {answer:?}"));
                None
            }
        }
    }

    /// Whether nothing failed so far.
    pub fn is_clean(&self) -> bool {
        self.failures.is_empty()
    }

    /// The property's outcome: the number of checks, or every failure.
    pub fn outcome(self) -> Outcome {
        match self.failures.len() {
            0 => Ok(self.cases),
            1 => Err(Failure(self.failures.concat())),
            n => {
                let listed: Vec<String> = self.failures.iter().map(|f| format!("- {}", indent(f))).collect();
                Err(Failure(format!("{n} of {} checks failed:\n{}", self.cases, listed.join("\n"))))
            }
        }
    }
}

/// Runs `call` in its own task; a panic becomes a message naming `what`.
pub async fn survives<T: Send + 'static>(
    what: &str,
    call: impl Future<Output = Result<T>> + Send + 'static,
) -> std::result::Result<Result<T>, String> {
    match tokio::spawn(call).await {
        Ok(result) => Ok(result),
        Err(join) if join.is_panic() => Err(format!("{what} panicked instead of answering")),
        Err(join) => Err(format!("{what} did not complete: {join}")),
    }
}

/// Indents the continuation lines of a multi-line failure under its bullet.
fn indent(text: &str) -> String {
    text.replace('\n', "\n  ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_failure_is_reported_with_the_count_of_checks() {
        let mut findings = Findings::new();
        findings.check(true, || "never".into());
        findings.check(false, || "first".into());
        findings.record::<()>("second", Err(Failure("broken\ndetail".into())));
        let Err(Failure(text)) = findings.outcome() else { panic!("two failures passed") };
        assert_eq!(text, "2 of 3 checks failed:\n- first\n- second: broken\n  detail");
    }

    #[test]
    fn a_single_failure_is_reported_as_it_is() {
        let mut findings = Findings::new();
        findings.check(false, || "only".into());
        assert_eq!(findings.outcome(), Err(Failure("only".into())));
        assert_eq!(Findings::new().outcome(), Ok(0));
    }
}
