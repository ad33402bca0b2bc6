//! The HTML view of a failing history, as a reader of a bug report sees it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use lincheck::{CheckOptions, CheckResult, Explanation, History, KeyValue, KvInput, KvOutput, Operation, check};

fn put(client: u64, key: &str, value: &str, call: u64, returned: u64) -> Operation<KvInput, KvOutput> {
    let input = KvInput::Put { key: key.to_owned(), value: value.to_owned() };
    Operation::returned(client, input, KvOutput::Put, call, returned)
}

fn get(client: u64, key: &str, value: &str, call: u64, returned: u64) -> Operation<KvInput, KvOutput> {
    let input = KvInput::Get { key: key.to_owned() };
    Operation::returned(client, input, KvOutput::Get(value.to_owned()), call, returned)
}

/// Key "a": x is put, then a read still sees the empty value — after a
/// write that returned. Key "b" is fine. Key "a" has one more operation
/// after the failure, and one that never returns.
fn failing_history() -> History<KvInput, KvOutput> {
    let mut history = History::new();
    let operations = [
        put(0, "a", "x", 0, 10),
        put(1, "b", "y", 5, 15),
        get(2, "b", "y", 20, 30),
        get(1, "a", "", 40, 50),
        Operation::indeterminate(0, KvInput::Put { key: "a".to_owned(), value: "z".to_owned() }, 45),
        get(2, "a", "x", 60, 70),
    ];
    for operation in operations {
        history.push(operation).unwrap();
    }
    history
}

fn explanation(history: &History<KvInput, KvOutput>) -> Explanation {
    match check(&KeyValue, history, &CheckOptions::default()) {
        CheckResult::NotLinearizable(explanation) => explanation,
        other => panic!("expected a violation, got {other}"),
    }
}

#[test]
fn the_view_draws_one_bar_per_operation_and_singles_out_the_culprit() {
    let history = failing_history();
    let explanation = explanation(&history);
    let page = lincheck::html_view::render(&KeyValue, &history, &explanation);

    assert_eq!(page.matches("<rect class=\"op ").count(), history.len(), "one bar per operation");
    assert_eq!(page.matches("<rect class=\"op culprit").count(), 1);
    let culprit = r#"get(&quot;a&quot;) -&gt; &quot;&quot;"#;
    let culprit_bar = page.split("<rect class=\"op culprit").nth(1).unwrap();
    let culprit_tooltip = culprit_bar.split("<title>").nth(1).unwrap();
    assert!(culprit_tooltip.starts_with(culprit), "{culprit_tooltip}");
    assert!(page.contains("<tr class=\"culprit\"><td>2</td><td>1</td><td>40</td><td>50</td><td>get(&quot;a&quot;)"));
}

#[test]
fn the_view_marks_the_longest_linearizable_prefix_and_numbers_its_linearization() {
    let history = failing_history();
    let explanation = explanation(&history);
    let page = lincheck::html_view::render(&KeyValue, &history, &explanation);

    assert_eq!(page.matches("<rect class=\"prefix\"").count(), 1, "one shaded prefix, in the failing partition");
    assert_eq!(page.matches("<rect class=\"op linearized").count(), 1, "the put of x takes effect");
    let linearized_bar = page.split("<rect class=\"op linearized").nth(1).unwrap();
    assert!(linearized_bar.contains(">1. put("), "numbered label: {linearized_bar}");
    assert!(linearized_bar.contains("step 1 of the linearization, leaving"), "{linearized_bar}");
    assert_eq!(page.matches("<rect class=\"op unplaced open").count(), 1, "the put of z, pending when the get returns");
    assert_eq!(page.matches("<rect class=\"op later").count(), 1, "the get called after the failing prefix");
    assert_eq!(page.matches("<rect class=\"op unjudged").count(), 2, "key b, shown for context");
}

#[test]
fn the_view_is_self_contained_and_escapes_what_the_history_says() {
    let mut history = History::new();
    history.push(put(0, "<k>", "</svg><script>alert('x')</script>", 0, 10)).unwrap();
    history.push(get(1, "<k>", "&", 20, 30)).unwrap();
    let explanation = explanation(&history);
    let page = lincheck::html_view::render(&KeyValue, &history, &explanation);

    assert!(!page.contains("<script"), "no script, not even one the history smuggles in");
    assert!(!page.contains("<k>") && page.contains("&lt;k&gt;"));
    assert!(page.contains("&amp;"));
    for external in ["http:", "https:", "src=", "href=", "@import", "url("] {
        assert!(!page.contains(external), "the page refers to something outside it: {external}");
    }
}

#[test]
fn the_view_is_saved_beside_the_history_file() {
    let history = failing_history();
    let explanation = explanation(&history);
    let dir = std::env::temp_dir().join(format!("lincheck-html-view-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let saved =
        lincheck::html_view::save_beside(&dir.join("round-3.jsonl"), &KeyValue, &history, &explanation).unwrap();
    let page = std::fs::read_to_string(&saved).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(saved, dir.join("round-3.html"));
    assert!(page.starts_with("<!DOCTYPE html>"));
}
