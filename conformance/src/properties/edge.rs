//! Property 10: edge inputs round-trip exactly; over-limit and wrong-type
//! inputs give the typed error and change nothing; keys never collide.

use std::time::Duration;

use bytes::Bytes;
use state_api::{Key, MAX_ID_LEN, MAX_SPACE_LEN, StateError, StateStore, Version};

use crate::ensure;
use crate::kit::{Context, Failure, Outcome};

/// Pairs of keys that naive encodings (joining with a separator, dropping
/// braces, lowercasing, trimming) would map to the same stored key.
fn confusable_keys(base: &str) -> Vec<(String, String)> {
    let s = |suffix: &str| format!("{base}{suffix}");
    vec![
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
    ]
}

/// Runs property 10.
pub async fn run(cx: &Context) -> Outcome {
    let store = cx.backend.store.as_ref();
    let space = cx.space("edge");
    let mut cases = 0;
    cases += values_round_trip(cx, store, &space).await?;
    cases += keys_stay_apart(cx, store).await?;
    cases += typed_errors(cx, store, &space).await?;
    Ok(cases)
}

async fn values_round_trip(cx: &Context, store: &dyn StateStore, space: &str) -> Result<u64, Failure> {
    let max = cx.capabilities.max_value_len;
    let all_bytes: Vec<u8> = (0..=255u8).collect();
    let values = [
        ("empty", Bytes::new()),
        ("binary", Bytes::from(all_bytes)),
        ("unicode", Bytes::from("ünïcødé ✓ 🦀 \u{0} nul inside a value is fine")),
        ("maximum", Bytes::from(vec![0xA5u8; max])),
    ];
    for (id, value) in &values {
        let key = Key::new(space, id)?;
        store.set(&key, value.clone(), None).await?;
        let got = store.get(&key).await?.map(|e| e.value);
        ensure!(got.as_ref() == Some(value), "{id} value ({} bytes) did not round-trip", value.len());
    }
    let key = Key::new(space, "maximum")?;
    let over = store.set(&key, Bytes::from(vec![0u8; max + 1]), None).await;
    ensure!(
        matches!(over, Err(StateError::ValueTooLarge { size, max: m }) if size == max + 1 && m == max),
        "a value one byte over the declared maximum of {max} gave {:?}",
        over.map(|_| ())
    );
    let kept = store.get(&key).await?;
    ensure!(
        kept.as_ref().is_some_and(|e| e.value.len() == max && e.version == Version(1)),
        "a refused oversized write changed the entry"
    );
    Ok(values.len() as u64 + 1)
}

async fn keys_stay_apart(cx: &Context, store: &dyn StateStore) -> Result<u64, Failure> {
    let base = cx.space("k");
    let confusable = confusable_keys(&base);
    write_and_read_back(store, &confusable, "another key's write reached it").await?;
    // The longest keys the contract allows, alone: they must fit every
    // backend's encoding.
    let longest = vec![
        (format!("{base}{}", "s".repeat(MAX_SPACE_LEN - base.len())), "i".repeat(MAX_ID_LEN)),
        (base.clone(), "é".repeat(MAX_ID_LEN / 2)),
    ];
    write_and_read_back(store, &longest, "a maximum-length key did not round-trip").await?;
    Ok((confusable.len() + longest.len()) as u64)
}

/// Writes a distinct value to each key, then checks each reads its own.
async fn write_and_read_back(store: &dyn StateStore, keys: &[(String, String)], problem: &str) -> Result<(), Failure> {
    for (n, (space, id)) in keys.iter().enumerate() {
        store.set(&Key::new(space, id)?, Bytes::from(n.to_string()), None).await?;
    }
    for (n, (space, id)) in keys.iter().enumerate() {
        let got = store.get(&Key::new(space, id)?).await?.map(|e| (e.value, e.version));
        ensure!(
            got == Some((Bytes::from(n.to_string()), Version(1))),
            "key ({space:?}, {id:?}) read {got:?}: {problem}"
        );
    }
    Ok(())
}

async fn typed_errors(cx: &Context, store: &dyn StateStore, space: &str) -> Result<u64, Failure> {
    for (s, i) in [("", "x"), ("x", ""), ("x\0", "y"), ("x", "y\0")] {
        ensure!(matches!(Key::new(s, i), Err(StateError::InvalidKey(_))), "key ({s:?}, {i:?}) was accepted");
    }
    let long_space = "s".repeat(MAX_SPACE_LEN + 1);
    ensure!(matches!(Key::new(&long_space, "x"), Err(StateError::InvalidKey(_))), "an over-long space was accepted");
    ensure!(
        matches!(Key::new("x", &"i".repeat(MAX_ID_LEN + 1)), Err(StateError::InvalidKey(_))),
        "an over-long id was accepted"
    );
    ensure!(
        matches!(store.scan(space, "a\0", None, 10).await, Err(StateError::InvalidKey(_))),
        "a NUL in a scan prefix was accepted"
    );
    let big = Key::new(space, "big")?;
    store.set(&big, Bytes::from(i64::MAX.to_string()), None).await?;
    let overflow = store.increment(&big, 1, None).await;
    ensure!(matches!(overflow, Err(StateError::Overflow { .. })), "incrementing i64::MAX gave {overflow:?}");
    let text = Key::new(space, "text")?;
    store.set(&text, Bytes::from_static(b"not a number"), None).await?;
    let mismatch = store.increment(&text, 1, None).await;
    ensure!(matches!(mismatch, Err(StateError::TypeMismatch { .. })), "incrementing text gave {mismatch:?}");
    for (key, value) in [(&big, Bytes::from(i64::MAX.to_string())), (&text, Bytes::from_static(b"not a number"))] {
        let entry = store.get(key).await?;
        ensure!(
            entry.as_ref().is_some_and(|e| e.value == value && e.version == Version(1)),
            "a failed increment changed {key}: {entry:?}"
        );
    }
    let zero_ttl = store.set(&Key::new(space, "zero")?, Bytes::new(), Some(Duration::ZERO)).await;
    ensure!(matches!(zero_ttl, Err(StateError::InvalidArgument { .. })), "a zero TTL gave {zero_ttl:?}");
    ensure!(store.get(&Key::new(space, "zero")?).await?.is_none(), "a write with a zero TTL stored something");
    if cx.capabilities.features.locks {
        let zero_lease = cx.backend.locks.try_acquire(&cx.lock_name("zero"), Duration::ZERO).await;
        ensure!(matches!(zero_lease, Err(StateError::InvalidArgument { .. })), "a zero lease TTL gave {zero_lease:?}");
        let bad_name = cx.backend.locks.try_acquire("a\0", Duration::from_secs(1)).await;
        ensure!(matches!(bad_name, Err(StateError::InvalidKey(_))), "a NUL lock name gave {bad_name:?}");
    }
    Ok(12)
}
