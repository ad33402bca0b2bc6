//! An SVG chart of a bench report: per workload, throughput against
//! concurrency (one line per backend) above p99 latency against concurrency.

use std::fmt::Write;

use super::report::BenchReport;
use super::workload::Workload;

const PANEL_W: f64 = 260.0;
const PANEL_H: f64 = 170.0;
const MARGIN: f64 = 48.0;
const COLORS: [&str; 6] = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf"];

/// Renders `report` as a standalone SVG document.
pub fn svg_chart(report: &BenchReport) -> String {
    let workloads = super::report::unique(report.cells.iter().map(|c| c.workload));
    let backends = super::report::unique(report.cells.iter().map(|c| c.backend.as_str()));
    let width = MARGIN + workloads.len() as f64 * (PANEL_W + MARGIN);
    let height = 2.0 * (PANEL_H + MARGIN) + MARGIN + 20.0 * backends.len() as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" \
         font-family=\"sans-serif\" font-size=\"11\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
    );
    for (column, workload) in workloads.iter().enumerate() {
        let x0 = MARGIN + column as f64 * (PANEL_W + MARGIN);
        panel(&mut svg, report, *workload, &backends, x0, MARGIN, "ops/s", |c| c.ops_per_sec);
        panel(&mut svg, report, *workload, &backends, x0, 2.0 * MARGIN + PANEL_H, "p99 µs", |c| c.p99_us as f64);
    }
    let legend_y = 2.0 * (PANEL_H + MARGIN) + MARGIN;
    for (i, backend) in backends.iter().enumerate() {
        let y = legend_y + 20.0 * i as f64;
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            svg,
            "<line x1=\"{MARGIN}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{color}\" stroke-width=\"3\"/>\
             <text x=\"{}\" y=\"{}\">{backend}</text>",
            MARGIN + 24.0,
            MARGIN + 30.0,
            y + 4.0
        );
    }
    svg.push_str("</svg>\n");
    svg
}

#[allow(clippy::too_many_arguments)]
fn panel(
    svg: &mut String,
    report: &BenchReport,
    workload: Workload,
    backends: &[&str],
    x0: f64,
    y0: f64,
    label: &str,
    value: impl Fn(&super::report::Cell) -> f64,
) {
    let cells: Vec<_> = report.cells.iter().filter(|c| c.workload == workload).collect();
    let mut levels: Vec<usize> = cells.iter().map(|c| c.concurrency).collect();
    levels.sort_unstable();
    levels.dedup();
    // Backends differ by orders of magnitude: a log scale keeps every line
    // readable.
    let max = cells.iter().map(|c| value(c)).fold(0.0, f64::max).max(1.0);
    let min = cells.iter().map(|c| value(c)).filter(|v| *v > 0.0).fold(max, f64::min).max(1.0);
    let (log_min, log_max) = (min.log10().floor(), max.log10().ceil().max(min.log10().floor() + 1.0));
    // Concurrency levels are evenly spaced (they are usually powers).
    let x_of = |level: usize| {
        let i = levels.iter().position(|l| *l == level).unwrap_or(0) as f64;
        x0 + if levels.len() > 1 { i * PANEL_W / (levels.len() - 1) as f64 } else { PANEL_W / 2.0 }
    };
    let y_of = |v: f64| y0 + PANEL_H - (v.max(1.0).log10() - log_min) / (log_max - log_min) * PANEL_H;
    let _ = writeln!(
        svg,
        "<rect x=\"{x0}\" y=\"{y0}\" width=\"{PANEL_W}\" height=\"{PANEL_H}\" fill=\"none\" stroke=\"#ccc\"/>\
         <text x=\"{x0}\" y=\"{}\" font-weight=\"bold\">{workload} — {label} (log)</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        y0 - 6.0,
        x0 - 4.0,
        y0 + 10.0,
        human(10f64.powf(log_max)),
        x0 - 4.0,
        y0 + PANEL_H,
        human(10f64.powf(log_min))
    );
    for level in &levels {
        let _ = writeln!(
            svg,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{level}</text>",
            x_of(*level),
            y0 + PANEL_H + 14.0
        );
    }
    for (i, backend) in backends.iter().enumerate() {
        let mut points: Vec<(usize, f64)> =
            cells.iter().filter(|c| c.backend == *backend).map(|c| (c.concurrency, value(c))).collect();
        points.sort_by_key(|p| p.0);
        let path: Vec<String> = points.iter().map(|(l, v)| format!("{:.1},{:.1}", x_of(*l), y_of(*v))).collect();
        let color = COLORS[i % COLORS.len()];
        let _ = writeln!(
            svg,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{color}\" stroke-width=\"2\"/>",
            path.join(" ")
        );
    }
}

fn human(v: f64) -> String {
    match v {
        v if v >= 1e6 => format!("{:.1}M", v / 1e6),
        v if v >= 1e3 => format!("{:.0}k", v / 1e3),
        v => format!("{v:.0}"),
    }
}
