//! Property 9: scans list exactly the live matching entries, in id byte
//! order, on every page size, with no duplicates; prefixes are literal.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use state_api::{Cursor, DeleteCondition, Key, StateError, StateStore};
use tokio::time::{Instant, sleep_until};

use crate::ensure;
use crate::kit::{Context, Failure, Outcome};

/// Ids chosen to trip every naive implementation: glob, LIKE and regex
/// metacharacters, separators, whitespace, multi-byte characters, and ids
/// that are prefixes of one another.
const ODD_IDS: &[&str] = &[
    "a", "a%b", "a%", "a_b", "axb", "a*", "a*b", "a?", "a[1]", "a[", "a]", "a\\b", "a\\", "a b", "a\nb", "a:b", "a{b}",
    "a.b", "a^", "a$", "a|b", "aa", "ab", "b", "é", "éa", "z", "~",
];

const PREFIXES: &[&str] = &["", "a", "a%", "a_", "a*", "a?", "a[", "a\\", "a.", "a{", "é", "n0", "n01", "none"];

async fn full_scan(
    store: &dyn StateStore,
    space: &str,
    prefix: &str,
    limit: usize,
) -> Result<Vec<(String, Bytes)>, Failure> {
    let mut items: Vec<(String, Bytes)> = Vec::new();
    let mut cursor: Option<Cursor> = None;
    for page_number in 0.. {
        ensure!(page_number < 10_000, "scan of {prefix:?} did not end after 10000 pages");
        let page = store.scan(space, prefix, cursor.as_ref(), limit).await?;
        ensure!(page.items.len() <= limit, "a page of limit {limit} held {} items", page.items.len());
        for item in page.items {
            if let Some((last, _)) = items.last() {
                ensure!(
                    *last < item.id,
                    "prefix {prefix:?}, limit {limit}: id {:?} came after {last:?} (out of order or repeated)",
                    item.id
                );
            }
            items.push((item.id, item.entry.value));
        }
        match page.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    Ok(items)
}

/// Runs property 9.
pub async fn run(cx: &Context) -> Outcome {
    let store = cx.backend.store.as_ref();
    let space = cx.space("scan");
    // A neighbouring space whose name extends this one: its entries must
    // never show up.
    let neighbour = format!("{space}a");
    let mut expected: BTreeMap<String, Bytes> = BTreeMap::new();
    let numbered = cx.scale.count(40);
    let ids = ODD_IDS.iter().map(|s| s.to_string()).chain((0..numbered).map(|n| format!("n{n:03}")));
    for id in ids {
        let value = Bytes::from(format!("value of {id}"));
        store.set(&Key::new(&space, &id)?, value.clone(), None).await?;
        store.set(&Key::new(&neighbour, &id)?, Bytes::from_static(b"neighbour"), None).await?;
        expected.insert(id, value);
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

    let mut cases = 0;
    for prefix in PREFIXES {
        let want: Vec<(String, Bytes)> =
            expected.iter().filter(|(id, _)| id.starts_with(prefix)).map(|(id, v)| (id.clone(), v.clone())).collect();
        for limit in [1, 2, 7, 1000] {
            let got = full_scan(store, &space, prefix, limit).await?;
            if got != want {
                let got_ids: Vec<&str> = got.iter().map(|(id, _)| id.as_str()).collect();
                let want_ids: Vec<&str> = want.iter().map(|(id, _)| id.as_str()).collect();
                return Err(Failure(format!(
                    "scan of prefix {prefix:?} with limit {limit}\n  listed   {got_ids:?}\n  expected {want_ids:?}{}",
                    if got_ids == want_ids { "\n  (same ids, different values)" } else { "" }
                )));
            }
            cases += 1;
        }
    }
    let foreign = store.scan(&space, "a", None, 1).await?.next;
    if let Some(cursor) = foreign {
        let reused = store.scan(&space, "n0", Some(&cursor), 10).await;
        ensure!(
            matches!(reused, Err(StateError::InvalidArgument { .. })),
            "a cursor from a scan of prefix \"a\" was accepted for prefix \"n0\": {reused:?}"
        );
    }
    let zero = store.scan(&space, "", None, 0).await;
    ensure!(matches!(zero, Err(StateError::InvalidArgument { .. })), "a scan with limit 0 returned {zero:?}");
    Ok(cases)
}
