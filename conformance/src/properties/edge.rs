//! Property 10: edge inputs round-trip exactly; over-limit and wrong-type
//! inputs give the typed error and change nothing; keys never collide.
//! (TTL extremes — zero, sub-millisecond, over the maximum — are the
//! extreme-arguments property's, for every kind of write.)

use bytes::Bytes;
use state_api::{Key, MAX_ID_LEN, MAX_SPACE_LEN, StateError, StateStore, Version};

use crate::findings::Findings;
use crate::kit::{Context, Failure, Outcome};

/// Suffixes stores append to a key to name the records they keep beside
/// it (a hash's fields, a version, a lock, a directory entry). An id ending
/// in one must still name its own record.
const INTERNAL_SUFFIXES: [&str; 5] = [":h", ":v", "#", "~", "/"];

/// Pairs of keys that naive encodings (joining with a separator, dropping
/// braces, lowercasing, trimming, LIKE matching, suffixing) would map to
/// the same stored key.
fn confusable_keys(base: &str) -> Vec<(String, String)> {
    let s = |suffix: &str| format!("{base}{suffix}");
    let mut keys: Vec<(String, String)> = vec![
        (s("a:b"), "c".into()),
        (s("a"), "b:c".into()),
        (s("a"), "b/c".into()),
        (s("a/b"), "c".into()),
        (s("{a}"), "b".into()),
        (s("a"), "b".into()),
        (s("A"), "b".into()),
        (s("a"), "B".into()),
        (s("a"), " b".into()),
        (s("a"), "b ".into()),
        (s("a"), "*".into()),
        (s("a"), "?".into()),
        (s("a"), "%".into()),
        (s("a"), "_".into()),
        (s("a"), "\\".into()),
        (s("a"), "\n".into()),
        (s("a"), "\r\n".into()),
        (s("a"), "e\u{301}".into()),
        (s("a"), "é".into()),
        (s("a"), "🦀".into()),
        (s("ü"), "x".into()),
        (s("a "), "x".into()),
        // LIKE pairs: `_` and `%` match `a` and `b` under LIKE.
        (s("a"), "x_y".into()),
        (s("a"), "xay".into()),
        (s("a"), "a%".into()),
        (s("a"), "ab".into()),
    ];
    // An id, and the same id plus each internal suffix; a space likewise.
    keys.push((s("a"), "k".into()));
    for suffix in INTERNAL_SUFFIXES {
        keys.push((s("a"), format!("k{suffix}")));
        keys.push((s(&format!("a{suffix}")), "k".into()));
    }
    keys
}

/// Runs property 10.
pub async fn run(cx: &Context) -> Outcome {
    let store = cx.backend.store.as_ref();
    let space = cx.space("edge");
    let mut findings = Findings::new();
    values_round_trip(cx, store, &space, &mut findings).await?;
    keys_stay_apart(cx, store, &mut findings).await?;
    typed_errors(cx, store, &space, &mut findings).await?;
    findings.outcome()
}

async fn values_round_trip(
    cx: &Context,
    store: &dyn StateStore,
    space: &str,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let max = cx.capabilities.max_value_len;
    let binary = cx.capabilities.features.binary_values;
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    // Without binary values, the largest value is text.
    let filler = if binary { 0xA5u8 } else { b'a' };
    let mut values = vec![
        ("empty", Bytes::new()),
        ("unicode", Bytes::from("ünïcødé ✓ 🦀 \u{0} nul inside a value is fine")),
        ("maximum", Bytes::from(vec![filler; max])),
    ];
    if binary {
        values.push(("binary", Bytes::from(all_bytes)));
    }
    for (id, value) in &values {
        let key = Key::new(space, id)?;
        store.set(&key, value.clone(), None).await?;
        let got = store.get(&key).await?.map(|e| e.value);
        findings
            .check(got.as_ref() == Some(value), || format!("{id} value ({} bytes) did not round-trip", value.len()));
    }
    let key = Key::new(space, "maximum")?;
    let over = store.set(&key, Bytes::from(vec![filler; max + 1]), None).await;
    findings
        .check(matches!(over, Err(StateError::ValueTooLarge { size, max: m }) if size == max + 1 && m == max), || {
            format!("a value one byte over the declared maximum of {max} gave {:?}", over.map(|_| ()))
        });
    let kept = store.get(&key).await?;
    findings.check(kept.as_ref().is_some_and(|e| e.value.len() == max && e.version == Version(1)), || {
        "a refused oversized write changed the entry".into()
    });
    Ok(())
}

async fn keys_stay_apart(cx: &Context, store: &dyn StateStore, findings: &mut Findings) -> Result<(), Failure> {
    let base = cx.space("k");
    let confusable = confusable_keys(&base);
    write_and_read_back(store, &confusable, "another key's write reached it", findings).await?;
    // The longest keys the contract allows, alone: they must fit every
    // backend's encoding.
    let longest = vec![
        (format!("{base}{}", "s".repeat(MAX_SPACE_LEN - base.len())), "i".repeat(MAX_ID_LEN)),
        (base.clone(), "é".repeat(MAX_ID_LEN / 2)),
    ];
    write_and_read_back(store, &longest, "a maximum-length key did not round-trip", findings).await
}

/// Writes a distinct value to each key, then checks each reads its own.
async fn write_and_read_back(
    store: &dyn StateStore,
    keys: &[(String, String)],
    problem: &str,
    findings: &mut Findings,
) -> Result<(), Failure> {
    let value = |space: &str, id: &str| Bytes::from(format!("value of ({space:?}, {id:?})"));
    for (space, id) in keys {
        store.set(&Key::new(space, id)?, value(space, id), None).await?;
    }
    for (space, id) in keys {
        let got = store.get(&Key::new(space, id)?).await?.map(|e| (e.value, e.version));
        findings.check(got == Some((value(space, id), Version(1))), || {
            format!("key ({space:?}, {id:?}) read {got:?}: {problem}")
        });
    }
    Ok(())
}

async fn typed_errors(
    cx: &Context,
    store: &dyn StateStore,
    space: &str,
    findings: &mut Findings,
) -> Result<(), Failure> {
    for (s, i) in [("", "x"), ("x", ""), ("x\0", "y"), ("x", "y\0")] {
        findings.check(matches!(Key::new(s, i), Err(StateError::InvalidKey(_))), || {
            format!("key ({s:?}, {i:?}) was accepted")
        });
    }
    let long_space = "s".repeat(MAX_SPACE_LEN + 1);
    findings.check(matches!(Key::new(&long_space, "x"), Err(StateError::InvalidKey(_))), || {
        "an over-long space was accepted".into()
    });
    findings.check(matches!(Key::new("x", &"i".repeat(MAX_ID_LEN + 1)), Err(StateError::InvalidKey(_))), || {
        "an over-long id was accepted".into()
    });
    if cx.capabilities.features.scan {
        let scan = store.scan(space, "a\0", None, 10).await;
        findings.check(matches!(scan, Err(StateError::InvalidKey(_))), || {
            format!("a NUL in a scan prefix gave {:?}", scan.map(|_| ()))
        });
    }
    if cx.capabilities.features.counters {
        let big = Key::new(space, "big")?;
        store.set(&big, Bytes::from(i64::MAX.to_string()), None).await?;
        let overflow = store.increment(&big, 1, None).await;
        findings.check(matches!(overflow, Err(StateError::Overflow { .. })), || {
            format!("incrementing i64::MAX gave {overflow:?}")
        });
        let text = Key::new(space, "text")?;
        store.set(&text, Bytes::from_static(b"not a number"), None).await?;
        let mismatch = store.increment(&text, 1, None).await;
        findings.check(matches!(mismatch, Err(StateError::TypeMismatch { .. })), || {
            format!("incrementing text gave {mismatch:?}")
        });
        // Texts that look like numbers but are not the canonical decimal of
        // an i64: one past either end, 20 and 21 digits, a leading zero or
        // sign, a space, an exponent; and a long text. Each is a value, not
        // a counter.
        let not_counters = [
            "9223372036854775808",
            "-9223372036854775809",
            "19223372036854775807",
            "123456789012345678901",
            "007",
            "-0",
            "+5",
            " 5",
            "1e3",
            "a text longer than twenty bytes",
        ];
        for (i, looks_numeric) in not_counters.into_iter().enumerate() {
            let key = Key::new(space, &format!("not-counter-{i}"))?;
            store.set(&key, Bytes::from(looks_numeric), None).await?;
            let answer = store.increment(&key, 1, None).await;
            let after = store.get(&key).await?.map(|e| e.value);
            findings.check(matches!(answer, Err(StateError::TypeMismatch { .. })), || {
                format!("incrementing the value {looks_numeric:?} gave {answer:?}, not TypeMismatch")
            });
            findings.check(after.as_deref() == Some(looks_numeric.as_bytes()), || {
                format!("a failed increment of {looks_numeric:?} left {after:?}")
            });
        }
        for (key, value) in [(&big, Bytes::from(i64::MAX.to_string())), (&text, Bytes::from_static(b"not a number"))] {
            let entry = store.get(key).await?;
            findings.check(entry.as_ref().is_some_and(|e| e.value == value && e.version == Version(1)), || {
                format!("a failed increment changed {key}: {entry:?}")
            });
        }
        // Both ends themselves are counters.
        let least = Key::new(space, "least")?;
        store.set(&least, Bytes::from(i64::MIN.to_string()), None).await?;
        let up = store.increment(&least, 1, None).await;
        findings.check(matches!(&up, Ok(counter) if counter.value == i64::MIN + 1), || {
            format!("incrementing i64::MIN by 1 gave {up:?}")
        });
        let down = store.increment(&big, -1, None).await;
        findings.check(matches!(&down, Ok(counter) if counter.value == i64::MAX - 1), || {
            format!("decrementing i64::MAX by 1 gave {down:?}")
        });
    }
    if cx.capabilities.features.locks {
        let bad_name = cx.backend.locks.try_acquire("a\0", std::time::Duration::from_secs(1)).await;
        findings
            .check(matches!(bad_name, Err(StateError::InvalidKey(_))), || format!("a NUL lock name gave {bad_name:?}"));
    }
    Ok(())
}
