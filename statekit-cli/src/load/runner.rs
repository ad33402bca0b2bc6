//! Running one cell of the sweep: a workload at a concurrency for a fixed
//! duration.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use statekit::Backend;

use super::report::Cell;
use super::workload::Workload;

/// What to run: workloads × concurrency levels, each for `duration`.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The workloads.
    pub workloads: Vec<Workload>,
    /// Concurrent tasks per cell.
    pub concurrency: Vec<usize>,
    /// Measured time per cell (after a short warm-up).
    pub duration: Duration,
    /// The space (and lock name) every cell uses, so that several bench
    /// processes contend for one key or lock; `None`: a fresh one per cell.
    pub space: Option<String>,
}

impl Default for Sweep {
    fn default() -> Self {
        Sweep {
            workloads: Workload::ALL.to_vec(),
            concurrency: vec![1, 8, 64, 256],
            duration: Duration::from_secs(3),
            space: None,
        }
    }
}

/// Runs `workload` on `backend` with `concurrency` tasks for `duration` and
/// returns throughput and latency percentiles. Each task records into its
/// own histogram (microsecond precision, no shared lock on the hot path);
/// they are merged at the end. Errors are counted, not fatal.
///
/// # Errors
/// Only if a histogram cannot be created, which constant bounds rule out.
pub async fn run_cell(
    backend: &Backend,
    workload: Workload,
    concurrency: usize,
    duration: Duration,
    space: Option<&str>,
) -> Result<Cell, String> {
    let space = space.map_or_else(|| format!("bench-{}-{:08x}", workload.name(), fastrand::u32(..)), str::to_owned);
    let prepared = workload.prepare(backend, &space).await;
    let warm_up = (duration / 10).min(Duration::from_millis(500));
    let start = Instant::now() + warm_up;
    let deadline = start + duration;
    let space = Arc::new(space);
    let tasks: Vec<_> = (0..concurrency)
        .map(|task| {
            let (backend, space) = (backend.clone(), Arc::clone(&space));
            tokio::spawn(async move {
                let mut histogram = new_histogram()?;
                let (mut ops, mut errors) = (0u64, 0u64);
                for n in 0.. {
                    let began = Instant::now();
                    if began >= deadline {
                        break;
                    }
                    let result = workload.once(&backend, &space, task, n).await;
                    if began < start {
                        continue; // warm-up: connections, caches, JIT of the server
                    }
                    match result {
                        Ok(()) => {
                            ops += 1;
                            let micros = u64::try_from(began.elapsed().as_micros()).unwrap_or(u64::MAX);
                            let _ = histogram.record(micros.max(1));
                        }
                        Err(_) => errors += 1,
                    }
                }
                Ok::<_, String>((histogram, ops, errors))
            })
        })
        .collect();
    let mut histogram = new_histogram()?;
    let (mut ops, mut errors) = (0, u64::from(prepared.is_err()));
    for task in tasks {
        if let Ok(Ok((h, o, e))) = task.await {
            let _ = histogram.add(&h);
            ops += o;
            errors += e;
        } else {
            errors += 1;
        }
    }
    let elapsed = duration.as_secs_f64();
    let quantile = |q: f64| if histogram.is_empty() { 0 } else { histogram.value_at_quantile(q) };
    Ok(Cell {
        backend: backend.capabilities().backend.to_owned(),
        workload,
        concurrency,
        ops,
        errors,
        ops_per_sec: ops as f64 / elapsed,
        p50_us: quantile(0.50),
        p99_us: quantile(0.99),
        p999_us: quantile(0.999),
    })
}

/// 1 µs to 60 s at 3 significant digits.
fn new_histogram() -> Result<Histogram<u64>, String> {
    Histogram::new_with_bounds(1, 60_000_000, 3).map_err(|e| format!("cannot create a histogram: {e:?}"))
}
