//! A self-contained HTML page that shows why a history is not
//! linearizable, after the visualisation of the Porcupine checker.
//!
//! The page shows the failing partition (one key, for a model partitioned
//! by key) as bars on a time axis, one row per client: the operations that
//! take effect in a linearization of the longest linearizable prefix are
//! numbered in their order, the region before the culprit returns is
//! shaded, and the culprit — the operation whose observed output no order
//! explains — stands out. Hovering a bar shows its instants, its operation
//! and the model state it leaves. A table lists the same. The other
//! partitions follow, folded, for context: the check stops at its first
//! failure, so they are drawn without a verdict.
//!
//! The page is one file with inline CSS and SVG: no scripts, no fonts, no
//! links, so it opens anywhere, offline, and can be attached to a bug
//! report.
//!
//! ```
//! use lincheck::{CheckOptions, CheckResult, History, Operation, Register, RegisterInput, RegisterOutput, check};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut history = History::new();
//! history.push(Operation::returned(0, RegisterInput::Write(1), RegisterOutput::Write, 0, 10))?;
//! history.push(Operation::returned(1, RegisterInput::Read, RegisterOutput::Read(None), 20, 30))?;
//! let CheckResult::NotLinearizable(explanation) = check(&Register, &history, &CheckOptions::default()) else {
//!     panic!("the read misses the write");
//! };
//! let page = lincheck::html_view::render(&Register, &history, &explanation);
//! assert!(page.contains("read: nil"));
//! # Ok(())
//! # }
//! ```

mod chart;

use std::collections::HashMap;
use std::fmt::Write;
use std::io;
use std::path::{Path, PathBuf};

use self::chart::{Bar, BarKind, chart};
use crate::checker::partitions;
use crate::{Explanation, History, Model, Operation};

/// The page for `explanation`, the result of checking `history` against
/// `model`.
///
/// `history` must be the history that was checked: operations are matched
/// to the explanation by their index in it. (An operation the explanation
/// names but the history lacks is left out of the drawing.)
pub fn render<M: Model>(model: &M, history: &History<M::Input, M::Output>, explanation: &Explanation) -> String {
    let mut groups = partitions(model, history, explanation.partition.is_some());
    let failing = groups.iter().position(|(name, _)| *name == explanation.partition);
    let failing = failing.map(|index| groups.remove(index));
    let title = match &explanation.partition {
        Some(name) => format!("Not linearizable: partition {name:?}"),
        None => "Not linearizable".to_owned(),
    };
    let mut page = String::new();
    let _ = write!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        escape(&title),
        escape(&title)
    );
    let summary = explanation.to_string();
    let summary = summary.lines().take(2).collect::<Vec<_>>().join(" ");
    let _ = writeln!(page, "<p class=\"summary\">{}</p>", escape(&summary));
    if let Some((_, indices)) = failing {
        failing_section(&mut page, model, history, explanation, &indices);
    }
    other_sections(&mut page, model, history, &groups);
    page.push_str("</body>\n</html>\n");
    page
}

/// Writes the page for `explanation` beside the saved history at
/// `history_path` — the same path with the extension `html` — and returns
/// the page's path.
///
/// # Errors
///
/// Any error creating or writing the file.
pub fn save_beside<M: Model>(
    history_path: &Path,
    model: &M,
    history: &History<M::Input, M::Output>,
    explanation: &Explanation,
) -> io::Result<PathBuf> {
    let path = history_path.with_extension("html");
    std::fs::write(&path, render(model, history, explanation))?;
    Ok(path)
}

/// The failing partition: legend, chart and table.
fn failing_section<M: Model>(
    page: &mut String,
    model: &M,
    history: &History<M::Input, M::Output>,
    explanation: &Explanation,
    indices: &[usize],
) {
    let roles = Roles::new(explanation);
    let bars: Vec<Bar> = indices
        .iter()
        .filter_map(|&index| Some((index, history.operations().get(index)?)))
        .map(|(index, operation)| roles.bar(model, index, operation))
        .collect();
    let cut = explanation.operations.get(explanation.culprit).and_then(|culprit| culprit.returned);
    let _ = writeln!(
        page,
        "<section class=\"failing\">\n<h2>{}: {} operations</h2>\n{LEGEND}\n<div class=\"scroll\">{}</div>",
        escape(&partition_name(&explanation.partition)),
        bars.len(),
        chart(&bars, cut)
    );
    prefix_table(page, explanation, &roles);
    page.push_str("</section>\n");
}

/// The other partitions, folded.
fn other_sections<M: Model>(
    page: &mut String,
    model: &M,
    history: &History<M::Input, M::Output>,
    groups: &[(Option<String>, Vec<usize>)],
) {
    if groups.is_empty() {
        return;
    }
    let _ = writeln!(
        page,
        "<section class=\"others\">\n<h2>Other partitions</h2>\n<p>The check stops at the first partition it finds \
         not linearizable, so these were not necessarily decided; they are shown for context.</p>"
    );
    for (name, indices) in groups {
        let bars: Vec<Bar> = indices
            .iter()
            .filter_map(|&index| Some((index, history.operations().get(index)?)))
            .map(|(index, operation)| plain_bar(model, index, operation, BarKind::Unjudged, String::new()))
            .collect();
        let _ = writeln!(
            page,
            "<details><summary>{}: {} operations</summary><div class=\"scroll\">{}</div></details>",
            escape(&partition_name(name)),
            bars.len(),
            chart(&bars, None)
        );
    }
    page.push_str("</section>\n");
}

/// The explanation's operations, as a table.
fn prefix_table(page: &mut String, explanation: &Explanation, roles: &Roles<'_>) {
    page.push_str(
        "<table>\n<caption>The shortest prefix that cannot be linearized (pending = not returned yet)</caption>\n\
         <tr><th>op</th><th>client</th><th>call</th><th>return</th><th>operation</th>\
         <th>linearized</th><th>state after</th></tr>\n",
    );
    for (position, operation) in explanation.operations.iter().enumerate() {
        let class = if position == explanation.culprit { " class=\"culprit\"" } else { "" };
        let returned = operation.returned.map_or_else(|| "pending".to_owned(), |at| at.to_string());
        let (order, state) = match roles.linearized.get(&position) {
            Some((order, state)) => (order.to_string(), *state),
            None => (String::new(), ""),
        };
        let _ = writeln!(
            page,
            "<tr{class}><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{order}</td><td>{}</td></tr>",
            position + 1,
            operation.client,
            operation.call,
            returned,
            escape(&operation.description),
            escape(state)
        );
    }
    page.push_str("</table>\n");
}

/// What each operation of the failing partition is in the explanation.
struct Roles<'e> {
    /// History index → position among the explanation's operations.
    position: HashMap<usize, usize>,
    /// Position → (1-based order in the linearization, state after).
    linearized: HashMap<usize, (usize, &'e str)>,
    culprit: usize,
}

impl<'e> Roles<'e> {
    fn new(explanation: &'e Explanation) -> Self {
        let position = explanation
            .operations
            .iter()
            .enumerate()
            .map(|(position, operation)| (operation.history_index, position))
            .collect();
        let linearized = explanation
            .linearization
            .iter()
            .flatten()
            .enumerate()
            .map(|(order, step)| (step.operation, (order + 1, step.state.as_str())))
            .collect();
        Roles { position, linearized, culprit: explanation.culprit }
    }

    /// The bar of the operation at `index` in the history.
    fn bar<M: Model>(&self, model: &M, index: usize, operation: &Operation<M::Input, M::Output>) -> Bar {
        let Some(&position) = self.position.get(&index) else {
            return plain_bar(model, index, operation, BarKind::Later, "called after the failing prefix".to_owned());
        };
        let linearized = self.linearized.get(&position);
        let (kind, note) = match linearized {
            _ if position == self.culprit => {
                (BarKind::Culprit, "the culprit: no linearization explains its output".to_owned())
            }
            Some((order, state)) => {
                (BarKind::Linearized, format!("step {order} of the linearization, leaving {state}"))
            }
            None => (BarKind::Unplaced, "not part of the linearization of the prefix".to_owned()),
        };
        let mut bar = plain_bar(model, index, operation, kind, format!("op {}: {note}", position + 1));
        if let (BarKind::Linearized, Some((order, _))) = (kind, linearized) {
            bar.label = format!("{order}. {}", bar.label);
        }
        bar
    }
}

/// The bar of the operation at `index` in the history, with `note` in its
/// tooltip.
fn plain_bar<M: Model>(
    model: &M,
    index: usize,
    operation: &Operation<M::Input, M::Output>,
    kind: BarKind,
    note: String,
) -> Bar {
    let description = model.describe(&operation.input, operation.output());
    let returned = operation.return_at().map_or_else(|| "never".to_owned(), |at| at.to_string());
    let mut tooltip = format!(
        "{description}\nclient {}, history index {index}, call {}, return {returned}",
        operation.client, operation.call
    );
    if !note.is_empty() {
        tooltip.push('\n');
        tooltip.push_str(&note);
    }
    Bar {
        client: operation.client,
        call: operation.call,
        returned: operation.return_at(),
        label: description,
        tooltip,
        kind,
    }
}

fn partition_name(name: &Option<String>) -> String {
    match name {
        Some(name) => format!("Partition {name:?}"),
        None => "The history".to_owned(),
    }
}

/// `text` with the characters HTML gives a meaning escaped, fit for both
/// element content and quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// The key to the colours of the bars.
const LEGEND: &str = "<p class=\"legend\">\
<span class=\"key linearized\"></span>takes effect in a linearization of the longest linearizable prefix (numbered in order) \
<span class=\"key culprit\"></span>the culprit: no order explains its output \
<span class=\"key unplaced\"></span>called in the failing prefix, left out \
<span class=\"key later\"></span>called later \
<span class=\"key prefix\"></span>the longest linearizable prefix (before the culprit returns)</p>";

const STYLE: &str = "
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; margin: 0 0 .3em; }
h2 { font-size: 1.1em; margin: 1.2em 0 .4em; }
.summary { max-width: 60em; }
.scroll { overflow-x: auto; border: 1px solid #ddd; margin: .5em 0; }
.chart { display: block; font: 11px ui-monospace, monospace; }
.row.even { fill: #fafafa; } .row.odd { fill: #f0f0f0; }
.client { fill: #555; }
.op { stroke-width: 1; }
.op.linearized { fill: #b7e1b0; stroke: #2e7d32; }
.op.unplaced { fill: #d6e4f5; stroke: #5b7fa8; }
.op.culprit { fill: #f4a4a0; stroke: #b71c1c; stroke-width: 2.5; }
.op.later { fill: #e8e8e8; stroke: #aaa; }
.op.unjudged { fill: #dde7f3; stroke: #7d97b8; }
.op.open { stroke-dasharray: 4 3; }
.label { fill: #111; pointer-events: none; }
.prefix { fill: #4caf50; fill-opacity: .13; }
.culprit-label { fill: #b71c1c; font-weight: bold; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
.cut { stroke: #b71c1c; stroke-width: 1.5; stroke-dasharray: 5 3; }
.cut-label { fill: #b71c1c; }
.axis { stroke: #888; } .axis-label { fill: #666; }
.legend .key { display: inline-block; width: 1.4em; height: .9em; margin: 0 .3em 0 1em; border: 1px solid #888; vertical-align: middle; }
.legend .key:first-child { margin-left: 0; }
.key.linearized { background: #b7e1b0; } .key.culprit { background: #f4a4a0; }
.key.unplaced { background: #d6e4f5; } .key.later { background: #e8e8e8; } .key.prefix { background: #dcefd9; }
table { border-collapse: collapse; margin: .8em 0; font: 12px ui-monospace, monospace; }
caption { text-align: left; font: bold 13px system-ui, sans-serif; padding-bottom: .3em; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; }
tr.culprit td { background: #fbd3d0; font-weight: bold; }
details { margin: .3em 0; }
";
