//! One partition's operations drawn as bars on a time axis, as inline SVG.
//!
//! Only the order of instants matters to linearizability, and real instants
//! are often far apart (one slow operation stretches the axis until every
//! other bar is a sliver), so the axis is compressed: each distinct call or
//! return instant gets the same width, in time order. Bars keep their real
//! instants in their tooltips. An operation that never returned runs to the
//! end of the axis with an open (dashed) end.
//!
//! Each client gets a row; a client with overlapping operations (one that
//! timed out, then went on) gets as many rows as it needs.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::escape;

/// Height of one row, and of a bar within it.
const ROW: u64 = 24;
const BAR: u64 = 18;
/// Width of the client labels on the left, and the margin around the plot.
const GUTTER: u64 = 90;
const MARGIN: u64 = 8;
/// Height of the band above the rows (cut label) and below them (axis).
const HEADER: u64 = 20;
const FOOTER: u64 = 24;
/// The plot aims at about this width; each instant gets 12 to 160 pixels.
const TARGET_WIDTH: u64 = 1200;
const MIN_STEP: u64 = 12;
const MAX_STEP: u64 = 160;
/// Approximate width of one character of bar text, in pixels.
const CHAR_WIDTH: f64 = 6.5;

/// How a bar is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BarKind {
    /// Takes effect in the linearization of the longest linearizable prefix.
    Linearized,
    /// Called within the failing prefix, but not part of that linearization.
    Unplaced,
    /// The operation whose return no linearization can explain.
    Culprit,
    /// Called after the failing prefix ends.
    Later,
    /// In a partition the check did not report on.
    Unjudged,
}

impl BarKind {
    /// The CSS class of such bars.
    fn class(self) -> &'static str {
        match self {
            BarKind::Linearized => "linearized",
            BarKind::Unplaced => "unplaced",
            BarKind::Culprit => "culprit",
            BarKind::Later => "later",
            BarKind::Unjudged => "unjudged",
        }
    }
}

/// One operation to draw.
#[derive(Debug, Clone)]
pub(crate) struct Bar {
    /// The client, which picks the row.
    pub(crate) client: u64,
    /// Call instant.
    pub(crate) call: u64,
    /// Return instant, `None` if it never returned.
    pub(crate) returned: Option<u64>,
    /// Text inside the bar, cut to fit.
    pub(crate) label: String,
    /// Text shown when hovering the bar.
    pub(crate) tooltip: String,
    /// How it is drawn.
    pub(crate) kind: BarKind,
}

/// The SVG drawing of `bars`; with `cut`, the instants up to `cut` are
/// shaded as the longest linearizable prefix and a line marks `cut`.
pub(crate) fn chart(bars: &[Bar], cut: Option<u64>) -> String {
    let axis = Axis::new(bars);
    let lanes = Lanes::new(bars, &axis);
    let plot_width = axis.x(axis.end()) + MARGIN;
    let height = HEADER + lanes.rows() * ROW + FOOTER;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" width="{plot_width}" height="{height}" viewBox="0 0 {plot_width} {height}" role="img">"#
    );
    draw_rows(&mut svg, &lanes, plot_width);
    if let Some(cut) = cut {
        draw_prefix(&mut svg, &axis, cut, height);
    }
    // Text drawn over the bars, after them, so that no bar hides it.
    let mut overlay = String::new();
    for (bar, row) in bars.iter().zip(&lanes.row_of_bar) {
        draw_bar(&mut svg, &mut overlay, &axis, bar, *row);
    }
    svg.push_str(&overlay);
    draw_axis(&mut svg, plot_width, height);
    svg.push_str("</svg>");
    svg
}

/// The compressed time axis: distinct instants, in order.
struct Axis {
    instants: Vec<u64>,
    step: u64,
}

impl Axis {
    fn new(bars: &[Bar]) -> Self {
        let mut instants: Vec<u64> = bars.iter().flat_map(|bar| [Some(bar.call), bar.returned]).flatten().collect();
        instants.sort_unstable();
        instants.dedup();
        let slots = instants.len() as u64 + 1;
        let step = (TARGET_WIDTH / slots).clamp(MIN_STEP, MAX_STEP);
        Axis { instants, step }
    }

    /// The rank of `instant` among the distinct instants.
    fn rank(&self, instant: u64) -> u64 {
        self.instants.partition_point(|&known| known < instant) as u64
    }

    /// The rank past every instant, where open bars end.
    fn end(&self) -> u64 {
        self.instants.len() as u64
    }

    /// The horizontal position of rank `rank`.
    fn x(&self, rank: u64) -> u64 {
        GUTTER + MARGIN + rank * self.step
    }

    /// The span of `bar`, as ranks.
    fn span(&self, bar: &Bar) -> (u64, u64) {
        let start = self.rank(bar.call);
        let end = bar.returned.map_or(self.end(), |returned| self.rank(returned));
        (start, end)
    }
}

/// The row of every bar: clients in ascending order, each in as many rows
/// as its overlapping operations need.
struct Lanes {
    /// `(client, lane within the client)` of each row, in drawing order.
    rows: Vec<(u64, usize)>,
    row_of_bar: Vec<u64>,
}

impl Lanes {
    fn new(bars: &[Bar], axis: &Axis) -> Self {
        // Per client: the rank where each of its lanes is free again.
        let mut free_from: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut order: Vec<usize> = (0..bars.len()).collect();
        order.sort_by_key(|&index| bars.get(index).map(|bar| (bar.client, bar.call)));
        let mut lane_of_bar = vec![(0, 0); bars.len()];
        for index in order {
            let Some(bar) = bars.get(index) else { continue };
            let (start, end) = axis.span(bar);
            let lanes = free_from.entry(bar.client).or_default();
            let lane = lanes.iter().position(|&free| free < start).unwrap_or(lanes.len());
            match lanes.get_mut(lane) {
                Some(free) => *free = end,
                None => lanes.push(end),
            }
            if let Some(slot) = lane_of_bar.get_mut(index) {
                *slot = (bar.client, lane);
            }
        }
        let rows: Vec<(u64, usize)> =
            free_from.iter().flat_map(|(&client, lanes)| (0..lanes.len()).map(move |lane| (client, lane))).collect();
        let row_of_bar =
            lane_of_bar.iter().map(|lane| rows.iter().position(|row| row == lane).unwrap_or(0) as u64).collect();
        Lanes { rows, row_of_bar }
    }

    fn rows(&self) -> u64 {
        self.rows.len() as u64
    }
}

/// The shaded longest linearizable prefix and the line where it ends.
fn draw_prefix(svg: &mut String, axis: &Axis, cut: u64, height: u64) {
    let x = axis.x(axis.rank(cut));
    let left = GUTTER;
    let _ = write!(
        svg,
        r#"<rect class="prefix" x="{left}" y="0" width="{}" height="{height}"><title>the longest prefix that can be linearized: everything before the culprit returns (instant {cut})</title></rect>"#,
        x.saturating_sub(left),
    );
    let _ = write!(svg, r#"<line class="cut" x1="{x}" y1="0" x2="{x}" y2="{height}"/>"#);
    let _ = write!(svg, r#"<text class="cut-label" x="{}" y="14">culprit returns</text>"#, x + 4);
}

/// Row backgrounds and client labels.
fn draw_rows(svg: &mut String, lanes: &Lanes, plot_width: u64) {
    for (row, (client, lane)) in lanes.rows.iter().enumerate() {
        let y = HEADER + row as u64 * ROW;
        let stripe = if row % 2 == 0 { "even" } else { "odd" };
        let _ = write!(svg, r#"<rect class="row {stripe}" x="0" y="{y}" width="{plot_width}" height="{ROW}"/>"#);
        if *lane == 0 {
            let _ = write!(svg, r#"<text class="client" x="4" y="{}">client {client}</text>"#, y + ROW - 8);
        }
    }
}

/// Draws `bar` into `svg`, and any text that must stay on top into
/// `overlay`.
fn draw_bar(svg: &mut String, overlay: &mut String, axis: &Axis, bar: &Bar, row: u64) {
    let (start, end) = axis.span(bar);
    let x = axis.x(start);
    let width = (axis.x(end).saturating_sub(x)).max(axis.step / 2).max(4);
    let y = HEADER + row * ROW + (ROW - BAR) / 2;
    let open = if bar.returned.is_none() { " open" } else { "" };
    let _ = write!(
        svg,
        r#"<g><rect class="op {}{open}" x="{x}" y="{y}" width="{width}" height="{BAR}" rx="3"/>"#,
        bar.kind.class()
    );
    let fitting = ((width as f64 - 6.0) / CHAR_WIDTH).floor().max(0.0) as usize;
    let label = fit(&bar.label, fitting);
    if bar.kind == BarKind::Culprit && label != bar.label {
        // The operation the reader looks for must be readable however
        // short its bar: its text goes beside the bar.
        let (text, y) = (escape(&bar.label), y + BAR - 5);
        let _ = write!(overlay, r#"<text class="culprit-label" x="{}" y="{y}">{text}</text>"#, x + width + 4);
    } else if !label.is_empty() {
        let _ = write!(svg, r#"<text class="label" x="{}" y="{}">{}</text>"#, x + 3, y + BAR - 5, escape(&label));
    }
    let _ = write!(svg, "<title>{}</title></g>", escape(&bar.tooltip));
}

/// `text` cut to at most `chars` characters, with an ellipsis if cut.
fn fit(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        return text.to_owned();
    }
    if chars < 2 {
        return String::new();
    }
    let mut cut: String = text.chars().take(chars - 1).collect();
    cut.push('…');
    cut
}

fn draw_axis(svg: &mut String, plot_width: u64, height: u64) {
    let y = height - FOOTER + 4;
    let _ = write!(svg, r#"<line class="axis" x1="{GUTTER}" y1="{y}" x2="{plot_width}" y2="{y}"/>"#);
    let _ = write!(
        svg,
        r#"<text class="axis-label" x="{GUTTER}" y="{}">time → (calls and returns in order; hover a bar for its instants)</text>"#,
        y + 16
    );
}

#[cfg(test)]
mod tests {
    use super::{Bar, BarKind, chart, fit};

    fn bar(client: u64, call: u64, returned: Option<u64>) -> Bar {
        Bar { client, call, returned, label: "op".to_owned(), tooltip: "tip".to_owned(), kind: BarKind::Unjudged }
    }

    #[test]
    fn overlapping_operations_of_one_client_get_rows_of_their_own() {
        let one_row = chart(&[bar(0, 0, Some(10)), bar(0, 20, Some(30)), bar(1, 5, Some(25))], None);
        let two_rows_for_client_0 = chart(&[bar(0, 0, None), bar(0, 20, Some(30)), bar(1, 5, Some(25))], None);
        assert_eq!(one_row.matches(r#"<rect class="row"#).count(), 2);
        assert_eq!(two_rows_for_client_0.matches(r#"<rect class="row"#).count(), 3);
        assert_eq!(two_rows_for_client_0.matches("client 0").count(), 1, "a client is labelled once");
    }

    #[test]
    fn an_operation_that_never_returned_is_drawn_open() {
        let svg = chart(&[bar(0, 0, None)], None);
        assert!(svg.contains(r#"class="op unjudged open""#), "{svg}");
    }

    #[test]
    fn text_too_long_for_its_bar_is_cut_with_an_ellipsis() {
        assert_eq!(fit("get(a) -> 1", 20), "get(a) -> 1");
        assert_eq!(fit("get(a) -> 1", 5), "get(…");
        assert_eq!(fit("get(a) -> 1", 1), "");
    }
}
