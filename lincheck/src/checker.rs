//! The checker's entry point: split a history into partitions, search them
//! all at once, and turn the first failure into an explanation.
//!
//! The partitions' searches take turns, a slice of steps each, all spending
//! from one budget. Searching them one after another would let a partition
//! that is hard to decide use up the whole budget while a later one, plainly
//! not linearizable, waits: the answer would be "unknown" where "not
//! linearizable" was there to be found. Taking turns finds a failure that
//! needs `s` steps within about `k * max(s, turn)` steps when `k` partitions
//! are undecided, and the check stays deterministic (the same history and
//! step limit give the same verdict, naming the same partition), which
//! threads racing for one budget would not be. Only the partitions' memo
//! tables live side by side; together they hold no more nodes than the
//! steps spent, as before.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::time::Duration;

use super::budget::{Budget, Limit};
use super::explanation::{Explanation, explain};
use super::history::History;
use super::model::Model;
use super::search::{Search, Verdict};
use super::timeline::Timeline;

/// Steps a partition's search takes before the next partition's turn: small
/// enough that a failure is not kept waiting long behind hard partitions,
/// large enough that switching costs nothing measurable.
const STEPS_PER_TURN: u64 = 1 << 12;

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

/// Why a check could not reach a verdict: no partition was found not
/// linearizable before a limit ran out, and some were still undecided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconclusive {
    /// The undecided partition whose search had taken the most steps, the
    /// likeliest reason the check gave up (`None` when the history was
    /// checked whole).
    pub partition: Option<String>,
    /// How many partitions were still undecided, `partition` included.
    pub undecided: usize,
    /// The limit that ran out.
    pub limit: Limit,
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.partition {
            Some(name) => write!(f, "the {} ran out checking partition {name:?}", self.limit)?,
            None => write!(f, "the {} ran out checking the history", self.limit)?,
        }
        match self.undecided.saturating_sub(1) {
            0 => Ok(()),
            1 => write!(f, " (and 1 other partition still undecided)"),
            others => write!(f, " (and {others} other partitions still undecided)"),
        }
    }
}

/// Checks whether `history` is linearizable with respect to `model`.
///
/// The partitions are searched together, taking turns (see the module
/// documentation), so the verdict does not wait for partitions that are
/// hard to decide: the first partition found not linearizable is explained
/// (see [`Explanation`]) and the others are dropped. The answer is
/// [`CheckResult::Unknown`] only when a limit ran out before any partition
/// failed and while some were still undecided.
pub fn check<M: Model>(model: &M, history: &History<M::Input, M::Output>, options: &CheckOptions) -> CheckResult {
    let mut budget = Budget::new(options.time_limit, options.step_limit);
    let all: Vec<Partition<'_, M>> = partitions(model, history, options.partitioned)
        .into_iter()
        .map(|(name, indices)| Partition { name, timeline: Timeline::new(history, &indices) })
        .collect();
    let mut undecided: VecDeque<(&Partition<'_, M>, Search<'_, M>)> = all
        .iter()
        .map(|partition| {
            let timeline = &partition.timeline;
            (partition, Search::new(model, timeline.operations(), timeline.events()))
        })
        .collect();
    while let Some((partition, mut search)) = undecided.pop_front() {
        match search.resume(&mut budget, STEPS_PER_TURN) {
            None => undecided.push_back((partition, search)),
            Some(Verdict::Linearizable) => {}
            Some(Verdict::NotLinearizable { cleared }) => {
                // The other searches' memo tables are no longer needed;
                // free them before explaining.
                drop(undecided);
                let name = partition.name.clone();
                return CheckResult::NotLinearizable(explain(model, &partition.timeline, name, cleared, &mut budget));
            }
            Some(Verdict::OutOfBudget(limit)) => {
                // The budget is shared, so every other search is stopped too.
                undecided.push_back((partition, search));
                let hardest = undecided.iter().max_by_key(|(_, search)| search.steps());
                let partition = hardest.and_then(|(hardest, _)| hardest.name.clone());
                return CheckResult::Unknown(Inconclusive { partition, undecided: undecided.len(), limit });
            }
        }
    }
    CheckResult::Linearizable
}

/// One partition of a history, ready to be searched.
struct Partition<'h, M: Model> {
    name: Option<String>,
    timeline: Timeline<'h, M::Input, M::Output>,
}

/// The history's operation indices grouped by partition name, groups in
/// order of first appearance.
pub(crate) fn partitions<M: Model>(
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
