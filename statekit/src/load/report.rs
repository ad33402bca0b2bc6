//! Bench results as a markdown table and JSON.

use std::fmt::Write;

use serde::Serialize;

use super::workload::Workload;

/// One cell of the sweep.
#[derive(Debug, Clone, Serialize)]
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
#[derive(Debug, Clone, Serialize)]
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
        let mut backends: Vec<&str> = self.cells.iter().map(|c| c.backend.as_str()).collect();
        backends.dedup();
        let mut out = format!("`{}` ({} s per cell)\n\n| workload | tasks |", self.command, self.seconds_per_cell);
        for b in &backends {
            let _ = write!(out, " {b} ops/s | {b} p50/p99/p99.9 µs |");
        }
        out.push_str("\n|---|---:|");
        out.push_str(&"---:|---:|".repeat(backends.len()));
        out.push('\n');
        let mut rows: Vec<(Workload, usize)> = self.cells.iter().map(|c| (c.workload, c.concurrency)).collect();
        rows.dedup();
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

    /// The report as pretty JSON.
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
    }
}
