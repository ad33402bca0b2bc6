//! Bench results as a markdown table and JSON.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

use super::workload::Workload;

/// One cell of the sweep.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    /// Backend name.
    pub backend: String,
    /// The workload.
    pub workload: Workload,
    /// Concurrent tasks.
    pub concurrency: usize,
    /// Successful operations in the measured window.
    pub ops: u64,
    /// Failed operations.
    pub errors: u64,
    /// Throughput.
    pub ops_per_sec: f64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// 99.9th percentile latency, µs.
    pub p999_us: u64,
}

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BenchReport {
    /// The command that produced it.
    pub command: String,
    /// Seconds measured per cell.
    pub seconds_per_cell: f64,
    /// Every cell.
    pub cells: Vec<Cell>,
}

impl BenchReport {
    /// The report as a markdown table: one row per workload and
    /// concurrency, one column group per backend.
    pub fn markdown(&self) -> String {
        let backends = unique(self.cells.iter().map(|c| c.backend.as_str()));
        let mut out = format!("`{}` ({} s per cell)\n\n| workload | tasks |", self.command, self.seconds_per_cell);
        for b in &backends {
            let _ = write!(out, " {b} ops/s | {b} p50/p99/p99.9 µs |");
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|---:|".repeat(backends.len()));
        out.push('\n');
        let rows = unique(self.cells.iter().map(|c| (c.workload, c.concurrency)));
        for (workload, concurrency) in rows {
            let _ = write!(out, "| {workload} | {concurrency} |");
            for b in &backends {
                match self
                    .cells
                    .iter()
                    .find(|c| c.backend == *b && c.workload == workload && c.concurrency == concurrency)
                {
                    Some(c) => {
                        let errors = if c.errors > 0 { format!(" ({} errors)", c.errors) } else { String::new() };
                        let _ =
                            write!(out, " {:.0}{errors} | {}/{}/{} |", c.ops_per_sec, c.p50_us, c.p99_us, c.p999_us);
                    }
                    None => out.push_str(" – | – |"),
                }
            }
            out.push('\n');
        }
        out
    }

    /// Reads a report saved as JSON, to render it again.
    ///
    /// # Errors
    /// A message if the text is not a bench report.
    pub fn from_json(text: &str) -> Result<BenchReport, String> {
        serde_json::from_str(text).map_err(|e| format!("not a statekit bench report: {e}"))
    }

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}

/// The distinct items in first-seen order.
pub(super) fn unique<T: PartialEq>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut seen = Vec::new();
    for item in items {
        if !seen.contains(&item) {
            seen.push(item);
        }
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(backend: &str, workload: Workload, concurrency: usize, ops_per_sec: f64) -> Cell {
        Cell {
            backend: backend.into(),
            workload,
            concurrency,
            ops: 1,
            errors: 0,
            ops_per_sec,
            p50_us: 1,
            p99_us: 2,
            p999_us: 3,
        }
    }

    #[test]
    fn the_table_has_one_row_per_workload_and_level_and_a_column_per_backend() {
        let cells = vec![
            cell("memory", Workload::Dedup, 1, 10.0),
            cell("memory", Workload::Dedup, 8, 20.0),
            cell("redis", Workload::Dedup, 1, 30.0),
            cell("redis", Workload::Dedup, 8, 40.0),
        ];
        let report = BenchReport { command: "statekit bench".into(), seconds_per_cell: 1.0, cells };
        let table = report.markdown();
        let rows: Vec<&str> = table.lines().filter(|l| l.starts_with("| dedup")).collect();
        assert_eq!(rows, ["| dedup | 1 | 10 | 1/2/3 | 30 | 1/2/3 |", "| dedup | 8 | 20 | 1/2/3 | 40 | 1/2/3 |"]);
        let again = BenchReport::from_json(&report.json()).unwrap();
        assert_eq!(again.markdown(), table);
    }
}
