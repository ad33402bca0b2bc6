//! The load generator behind `statekit bench`: realistic workloads at a
//! sweep of concurrency levels against any configured backend, reporting
//! throughput and latency percentiles from an HDR histogram.

mod chart;
mod report;
mod runner;
mod workload;

pub use chart::svg_chart;
pub use report::BenchReport;
pub use runner::{Sweep, run_cell};
pub use workload::Workload;
