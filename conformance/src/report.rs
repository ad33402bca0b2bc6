//! Results of a run: per property, a verdict, the cases run, the time taken
//! and, on failure, a counterexample. Printable as a table and as JSON.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// The verdict on one property.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Every case held.
    Passed,
    /// A case broke the property.
    Failed {
        /// The smallest failing case found, explained.
        counterexample: String,
    },
    /// The property does not apply to this backend's capabilities.
    Skipped {
        /// Why.
        reason: String,
    },
}

/// One property's result.
#[derive(Debug, Clone, Serialize)]
pub struct PropertyReport {
    /// The property's name.
    pub property: &'static str,
    /// The verdict.
    #[serde(flatten)]
    pub verdict: Verdict,
    /// How many cases (sequences, rounds, histories) ran.
    pub cases: u64,
    /// Wall time.
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
    /// What the property measured beyond its verdict (the fault
    /// properties' operations, faults and recovery times), one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl PropertyReport {
    /// Whether the property failed.
    pub fn failed(&self) -> bool {
        matches!(self.verdict, Verdict::Failed { .. })
    }
}

/// The results of a run over a backend.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The backend's name.
    pub backend: String,
    /// The scale, as text.
    pub scale: String,
    /// One report per property, in kit order.
    pub properties: Vec<PropertyReport>,
}

impl RunReport {
    /// Whether every property passed or was skipped.
    pub fn passed(&self) -> bool {
        !self.properties.iter().any(PropertyReport::failed)
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "conformance of backend `{}` (scale {})", self.backend, self.scale)?;
        writeln!(f, "{:<34} {:<8} {:>7} {:>9}", "property", "verdict", "cases", "time")?;
        for p in &self.properties {
            let verdict = match &p.verdict {
                Verdict::Passed => "pass",
                Verdict::Failed { .. } => "FAIL",
                Verdict::Skipped { .. } => "skip",
            };
            writeln!(f, "{:<34} {:<8} {:>7} {:>8.2}s", p.property, verdict, p.cases, p.duration.as_secs_f64())?;
        }
        for p in &self.properties {
            for note in &p.notes {
                writeln!(f, "\n{}: {note}", p.property)?;
            }
            match &p.verdict {
                Verdict::Failed { counterexample } => writeln!(f, "\n{} FAILED:\n{counterexample}", p.property)?,
                Verdict::Skipped { reason } => writeln!(f, "\n{} skipped: {reason}", p.property)?,
                Verdict::Passed => {}
            }
        }
        let failed = self.properties.iter().filter(|p| p.failed()).count();
        let skipped = self.properties.iter().filter(|p| matches!(p.verdict, Verdict::Skipped { .. })).count();
        let all = self.properties.len();
        write!(f, "\n{all} properties: {} passed, {skipped} skipped, {failed} failed", all - failed - skipped)
    }
}
