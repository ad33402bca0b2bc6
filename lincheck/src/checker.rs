//! The checker's entry point: split a history into partitions, search each,
//! and turn the first failure into an explanation.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use super::budget::{Budget, Limit};
use super::explanation::{Explanation, explain};
use super::history::History;
use super::model::Model;
use super::search::{Verdict, search};
use super::timeline::Timeline;

/// How a check is run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOptions {
    /// Wall-clock time the whole check (all partitions and the search for an
    /// explanation) may take before it answers [`CheckResult::Unknown`];
    /// `None` for no limit. Defaults to 60 seconds: far more than any
    /// realistic test history needs, little enough that a pathological one
    /// cannot hang CI.
    pub time_limit: Option<Duration>,
    /// Search steps the whole check may take before it answers
    /// [`CheckResult::Unknown`]; `None` (the default) for no limit. Unlike
    /// the time limit this is deterministic, which suits tests.
    pub step_limit: Option<u64>,
    /// Whether to split the history with [`Model::partition`] (the default).
    /// Turning it off checks the history as a whole, which gives the same
    /// verdict for a correctly partitioned model, only slower.
    pub partitioned: bool,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions { time_limit: Some(Duration::from_secs(60)), step_limit: None, partitioned: true }
    }
}

/// The verdict of a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Some order of the operations, consistent with real time, explains
    /// every observed output.
    Linearizable,
    /// No such order exists; the explanation shows where it breaks.
    NotLinearizable(Explanation),
    /// A limit of [`CheckOptions`] ran out before the search finished.
    Unknown(Inconclusive),
}

impl CheckResult {
    /// Whether the verdict is [`CheckResult::Linearizable`].
    pub fn is_linearizable(&self) -> bool {
        matches!(self, CheckResult::Linearizable)
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Linearizable => write!(f, "linearizable"),
            CheckResult::NotLinearizable(explanation) => {
                write!(f, "not linearizable\n{explanation}")
            }
            CheckResult::Unknown(inconclusive) => write!(f, "unknown: {inconclusive}"),
        }
    }
}

/// Why a check could not reach a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconclusive {
    /// The partition being searched when the limit ran out (`None` when the
    /// history was checked whole).
    pub partition: Option<String>,
    /// The limit that ran out.
    pub limit: Limit,
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.partition {
            Some(name) => write!(f, "the {} ran out checking partition {name:?}", self.limit),
            None => write!(f, "the {} ran out checking the history", self.limit),
        }
    }
}

/// Checks whether `history` is linearizable with respect to `model`.
///
/// Partitions are searched in the order their first operation appears in
/// the history; the first one found not linearizable is explained (see
/// [`Explanation`]) and the rest are not searched.
pub fn check<M: Model>(model: &M, history: &History<M::Input, M::Output>, options: &CheckOptions) -> CheckResult {
    let mut budget = Budget::new(options.time_limit, options.step_limit);
    for (partition, indices) in partitions(model, history, options.partitioned) {
        let timeline = Timeline::new(history, &indices);
        match search(model, timeline.operations(), timeline.events(), &mut budget) {
            Verdict::Linearizable => {}
            Verdict::NotLinearizable { cleared } => {
                let explanation = explain(model, &timeline, partition, cleared, &mut budget);
                return CheckResult::NotLinearizable(explanation);
            }
            Verdict::OutOfBudget(limit) => return CheckResult::Unknown(Inconclusive { partition, limit }),
        }
    }
    CheckResult::Linearizable
}

/// The history's operation indices grouped by partition name, groups in
/// order of first appearance.
fn partitions<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    partitioned: bool,
) -> Vec<(Option<String>, Vec<usize>)> {
    let mut groups: Vec<(Option<String>, Vec<usize>)> = Vec::new();
    let mut group_of_name: HashMap<Option<String>, usize> = HashMap::new();
    for (index, operation) in history.operations().iter().enumerate() {
        let name = if partitioned { model.partition(&operation.input) } else { None };
        let group = *group_of_name.entry(name.clone()).or_insert_with(|| {
            groups.push((name, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, indices)) = groups.get_mut(group) {
            indices.push(index);
        }
    }
    groups
}
