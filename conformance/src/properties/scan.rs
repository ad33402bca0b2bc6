//! Property 9: scans list exactly the live matching entries, in id byte
//! order, on every page size, with no duplicates; prefixes are literal.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use state_api::{Cursor, DeleteCondition, Key, StateError, StateStore, Version};
use tokio::time::{Instant, sleep_until};

use crate::ensure;
use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// Ids chosen to trip every naive implementation: glob, LIKE and regex
/// metacharacters, separators, whitespace, multi-byte characters, ids that
/// are prefixes of one another, LIKE pairs (`x_y` beside `xay`, `a%`
/// beside `ab`) that a LIKE-based prefix would confuse, and ids of the last
/// code point, U+10FFFF, whose prefixes have no successor to bound a scan.
#[rustfmt::skip]
const ODD_IDS: &[&str] = &[
    "a", "a%b", "a%", "a_b", "axb", "a*", "a*b", "a?", "a[1]", "a[", "a]", "a\\b", "a\\", "a b", "a\nb", "a:b", "a{b}",
    "a.b", "a^", "a$", "a|b", "aa", "ab", "b", "x_y", "xay", "x%", "xy", "é", "éa", "z", "~",
    "\u{10FFFF}", "\u{10FFFF}a", "\u{10FFFF}\u{10FFFF}",
];

#[rustfmt::skip]
const PREFIXES: &[&str] = &[
    "", "a", "a%", "a_", "a*", "a?", "a[", "a\\", "a.", "a{", "x_", "x%", "é", "n0", "n01", "none", "w", "\u{10FFFF}",
];

/// An entry as a scan lists it: id, value and version.
type Listed = (String, Bytes, Version);

async fn full_scan(store: &dyn StateStore, space: &str, prefix: &str, limit: usize) -> Result<Vec<Listed>, Failure> {
    let mut items: Vec<Listed> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for page_number in 0.. {
        ensure!(page_number < 10_000, "scan of {prefix:?} did not end after 10000 pages");
        let page = store.scan(space, prefix, cursor.as_ref(), limit).await?;
        ensure!(page.items.len() <= limit, "a page of limit {limit} held {} items", page.items.len());
        for item in page.items {
            if let Some((last, _, _)) = items.last() {
                ensure!(
                    *last < item.id,
                    "prefix {prefix:?}, limit {limit}: id {:?} came after {last:?} (out of order or repeated)",
                    item.id
                );
            }
            items.push((item.id, item.entry.value, item.entry.version));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(items)
}

/// Writes one entry with each kind of write — `set`, `check_and_set`,
/// `compare_and_swap` on an existing key, `increment` — and returns what a
/// scan must list for them. A store may keep entries of different writes
/// in different physical forms (another record, another attribute type);
/// a scan must list them all alike, with no storage prefix.
async fn write_every_kind(cx: &Context, space: &str) -> Result<Vec<Listed>, Failure> {
    let store = cx.backend.store.as_ref();
    let mut written = Vec::new();
    let key = Key::new(space, "w-check-and-set")?;
    ensure!(
        store.check_and_set(&key, Bytes::from_static(b"created"), None).await?,
        "check_and_set on a fresh key did not write"
    );
    written.push(("w-check-and-set".to_owned(), Bytes::from_static(b"created"), Version(1)));

    let key = Key::new(space, "w-compare-and-swap")?;
    let first = store.set(&key, Bytes::from_static(b"first"), None).await?;
    let swapped = store.compare_and_swap(&key, first, Bytes::from_static(b"swapped"), None).await?;
    let version = swapped.written().ok_or_else(|| Failure(format!("compare_and_swap on {first} gave {swapped:?}")))?;
    written.push(("w-compare-and-swap".to_owned(), Bytes::from_static(b"swapped"), version));

    if cx.capabilities.features.counters {
        let key = Key::new(space, "w-counter")?;
        let mut counter = store.increment(&key, 40, None).await?;
        for _ in 0..2 {
            counter = store.increment(&key, 1, None).await?;
        }
        written.push(("w-counter".to_owned(), Bytes::from(counter.value.to_string()), counter.version));
        let key = Key::new(space, "w-counter-with-ttl")?;
        let counter = store.increment(&key, -7, Some(Duration::from_secs(3600))).await?;
        written.push(("w-counter-with-ttl".to_owned(), Bytes::from(counter.value.to_string()), counter.version));
    }
    Ok(written)
}

fn ids(items: &[Listed]) -> Vec<&str> {
    items.iter().map(|(id, _, _)| id.as_str()).collect()
}

/// Runs property 9. Every prefix and page size is checked, and every
/// wrong listing is reported.
pub async fn run(cx: &Context) -> Outcome {
    let store = cx.backend.store.as_ref();
    let space = cx.space("scan");
    // A neighbouring space whose name extends this one: its entries must
    // never show up.
    let neighbour = format!("{space}a");
    let mut expected: BTreeMap<String, (Bytes, Version)> = BTreeMap::new();
    let numbered = cx.scale.count(40);
    let ids_written = ODD_IDS.iter().map(|s| s.to_string()).chain((0..numbered).map(|n| format!("n{n:03}")));
    for id in ids_written {
        let value = Bytes::from(format!("value of {id}"));
        let version = store.set(&Key::new(&space, &id)?, value.clone(), None).await?;
        store.set(&Key::new(&neighbour, &id)?, Bytes::from_static(b"neighbour"), None).await?;
        expected.insert(id, (value, version));
    }
    for (id, value, version) in write_every_kind(cx, &space).await? {
        expected.insert(id, (value, version));
    }
    // Deleted and expired entries must not be listed.
    for id in ["a%b", "n001"] {
        store.delete(&Key::new(&space, id)?, DeleteCondition::Always).await?;
        expected.remove(id);
    }
    let ttl = cx.clock_tolerance().max(Duration::from_millis(100));
    for id in ["a_b", "n002", "a-expiring"] {
        store.set(&Key::new(&space, id)?, Bytes::from_static(b"expiring"), Some(ttl)).await?;
        expected.remove(id);
    }
    // Measured after the last write returned: every deadline is before it.
    let written = Instant::now();
    sleep_until(written + ttl + cx.clock_tolerance()).await;

    let mut findings = Findings::new();
    for prefix in PREFIXES {
        let want: Vec<Listed> = expected
            .iter()
            .filter(|(id, _)| id.starts_with(prefix))
            .map(|(id, (value, version))| (id.clone(), value.clone(), *version))
            .collect();
        for limit in [1, 2, 7, 1000] {
            let got = match full_scan(store, &space, prefix, limit).await {
                Ok(got) => got,
                Err(Failure(failure)) => {
                    findings.fail(failure);
                    continue;
                }
            };
            findings.check(got == want, || {
                let (got_ids, want_ids) = (ids(&got), ids(&want));
                let detail = if got_ids == want_ids {
                    let differ: Vec<_> = got.iter().zip(&want).filter(|(g, w)| g != w).collect();
                    format!("\n  same ids; listed (id, value, version) vs expected: {differ:?}")
                } else {
                    String::new()
                };
                format!("scan of prefix {prefix:?} with limit {limit}\n  listed   {got_ids:?}\n  expected {want_ids:?}{detail}")
            });
        }
    }
    let foreign = store.scan(&space, "a", None, 1).await?.next;
    if let Some(cursor) = foreign {
        let reused = store.scan(&space, "n0", Some(&cursor), 10).await;
        findings.check(matches!(reused, Err(StateError::InvalidArgument { .. })), || {
            format!("a cursor from a scan of prefix \"a\" was accepted for prefix \"n0\": {reused:?}")
        });
    }
    let zero = store.scan(&space, "", None, 0).await;
    findings.check(matches!(zero, Err(StateError::InvalidArgument { .. })), || {
        format!("a scan with limit 0 returned {zero:?}")
    });
    findings.outcome()
}
