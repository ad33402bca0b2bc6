//! The semantics document, pinned rule by rule on the in-memory backend.
//! Expiry tests run on tokio's paused clock, so they are exact and instant.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Duration;

use state_api::{
    Condition, DeleteCondition, Key, KeyError, KeyPart, LockRetention, LockService, MemoryStore, PutOutcome,
    StateError, StateStore, StorageScope, StorageUsage, Version,
};
use tokio::time::advance;

fn key(id: &str) -> Key {
    Key::new("test", id).unwrap()
}

fn store() -> MemoryStore {
    MemoryStore::builder().sweep_interval(None).build()
}

const MS: Duration = Duration::from_millis(1);

// ---- versions ----------------------------------------------------------

#[tokio::test]
async fn versions_start_at_one_and_every_write_adds_one() {
    let s = store();
    let k = key("v");
    assert_eq!(s.set(&k, "a".into(), None).await.unwrap(), Version(1));
    assert_eq!(s.set(&k, "b".into(), None).await.unwrap(), Version(2));
    assert_eq!(s.compare_and_swap(&k, Version(2), "c".into(), None).await.unwrap(), PutOutcome::Written(Version(3)));
    let counter_key = key("n");
    s.set(&counter_key, "5".into(), None).await.unwrap();
    assert_eq!(s.increment(&counter_key, 1, None).await.unwrap().version, Version(2));
    assert_eq!(s.get(&k).await.unwrap().unwrap().version, Version(3));
}

#[tokio::test]
async fn a_deleted_key_starts_again_at_version_one() {
    let s = store();
    let k = key("d");
    s.set(&k, "a".into(), None).await.unwrap();
    s.set(&k, "b".into(), None).await.unwrap();
    assert!(s.delete(&k, DeleteCondition::Always).await.unwrap());
    assert_eq!(s.set(&k, "c".into(), None).await.unwrap(), Version(1));
}

#[tokio::test(start_paused = true)]
async fn an_expired_key_starts_again_at_version_one() {
    let s = store();
    let k = key("e");
    s.set(&k, "a".into(), Some(10 * MS)).await.unwrap();
    s.set(&k, "b".into(), Some(10 * MS)).await.unwrap();
    advance(10 * MS).await;
    assert_eq!(s.set(&k, "c".into(), None).await.unwrap(), Version(1));
}

// ---- conditional puts -------------------------------------------------

#[tokio::test]
async fn if_absent_on_a_live_key_is_rejected_with_the_current_entry() {
    let s = store();
    let k = key("c");
    assert!(s.check_and_set(&k, "first".into(), None).await.unwrap());
    let outcome = s.put(&k, "second".into(), Condition::IfAbsent, None).await.unwrap();
    let PutOutcome::Rejected(Some(current)) = outcome else { panic!("expected rejection, got {outcome:?}") };
    assert_eq!((current.value.as_ref(), current.version), (&b"first"[..], Version(1)));
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, "first");
}

#[tokio::test(start_paused = true)]
async fn if_absent_on_an_expired_key_writes_a_new_entry() {
    let s = store();
    let k = key("x");
    s.set(&k, "old".into(), Some(5 * MS)).await.unwrap();
    advance(5 * MS).await;
    assert_eq!(s.put(&k, "new".into(), Condition::IfAbsent, None).await.unwrap(), PutOutcome::Written(Version(1)));
}

#[tokio::test]
async fn if_version_on_an_absent_key_is_rejected_without_an_entry() {
    let s = store();
    let outcome = s.put(&key("none"), "v".into(), Condition::IfVersion(Version(1)), None).await.unwrap();
    assert_eq!(outcome, PutOutcome::Rejected(None));
    assert!(s.get(&key("none")).await.unwrap().is_none());
}

#[tokio::test]
async fn if_version_with_a_stale_version_changes_nothing() {
    let s = store();
    let k = key("cas");
    s.set(&k, "a".into(), None).await.unwrap();
    s.set(&k, "b".into(), None).await.unwrap();
    let outcome = s.compare_and_swap(&k, Version(1), "c".into(), None).await.unwrap();
    let PutOutcome::Rejected(Some(current)) = outcome else { panic!("{outcome:?}") };
    assert_eq!(current.version, Version(2));
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, "b");
}

// ---- TTL ---------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn an_entry_is_live_until_its_deadline_and_absent_from_it() {
    let s = store();
    let k = key("ttl");
    s.set(&k, "v".into(), Some(100 * MS)).await.unwrap();
    advance(99 * MS).await;
    assert_eq!(s.get(&k).await.unwrap().unwrap().ttl, Some(MS));
    advance(MS).await;
    assert!(s.get(&k).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn ttls_are_rounded_up_to_the_millisecond_never_to_seconds() {
    let s = store();
    let k = key("round");
    s.set(&k, "v".into(), Some(Duration::from_micros(1500))).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().ttl, Some(2 * MS));
    advance(Duration::from_micros(1999)).await;
    assert!(s.get(&k).await.unwrap().is_some());
    advance(Duration::from_micros(1)).await;
    assert!(s.get(&k).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn a_write_without_ttl_clears_the_earlier_ttl() {
    let s = store();
    let k = key("clear");
    s.set(&k, "v".into(), Some(10 * MS)).await.unwrap();
    s.set(&k, "w".into(), None).await.unwrap();
    advance(Duration::from_secs(3600)).await;
    let entry = s.get(&k).await.unwrap().unwrap();
    assert_eq!((entry.value.as_ref(), entry.ttl), (&b"w"[..], None));
}

#[tokio::test(start_paused = true)]
async fn a_write_with_ttl_replaces_the_earlier_ttl() {
    let s = store();
    let k = key("replace");
    s.set(&k, "v".into(), Some(10 * MS)).await.unwrap();
    s.set(&k, "w".into(), Some(1000 * MS)).await.unwrap();
    advance(500 * MS).await;
    assert_eq!(s.get(&k).await.unwrap().unwrap().ttl, Some(500 * MS));
}

#[tokio::test]
async fn zero_ttl_is_an_invalid_argument_and_writes_nothing() {
    let s = store();
    let err = s.set(&key("z"), "v".into(), Some(Duration::ZERO)).await.unwrap_err();
    assert!(matches!(err, StateError::InvalidArgument { name: "ttl", .. }), "{err:?}");
    assert!(s.get(&key("z")).await.unwrap().is_none());
}

// ---- increment ---------------------------------------------------------

#[tokio::test]
async fn increment_creates_at_zero_and_get_reads_the_decimal_text() {
    let s = store();
    let k = key("count");
    let c = s.increment(&k, 5, None).await.unwrap();
    assert_eq!((c.value, c.version), (5, Version(1)));
    assert_eq!(s.increment(&k, -7, None).await.unwrap().value, -2);
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, "-2");
}

#[tokio::test(start_paused = true)]
async fn increment_keeps_the_creation_ttl_as_a_fixed_window() {
    let s = store();
    let k = key("window");
    s.increment(&k, 1, Some(100 * MS)).await.unwrap();
    advance(60 * MS).await;
    // A later TTL argument is ignored: the window stays fixed.
    s.increment(&k, 1, Some(100 * MS)).await.unwrap();
    s.increment(&k, 1, None).await.unwrap();
    assert_eq!(s.get(&k).await.unwrap().unwrap().ttl, Some(40 * MS));
    advance(40 * MS).await;
    assert!(s.get(&k).await.unwrap().is_none());
    // The next increment opens a new window.
    let fresh = s.increment(&k, 1, Some(100 * MS)).await.unwrap();
    assert_eq!((fresh.value, fresh.version), (1, Version(1)));
}

#[tokio::test]
async fn overflow_is_typed_and_changes_nothing() {
    let s = store();
    let k = key("big");
    s.set(&k, i64::MAX.to_string().into(), None).await.unwrap();
    let err = s.increment(&k, 1, None).await.unwrap_err();
    assert!(matches!(err, StateError::Overflow { delta: 1, .. }), "{err:?}");
    let entry = s.get(&k).await.unwrap().unwrap();
    assert_eq!((entry.value, entry.version), (i64::MAX.to_string().into(), Version(1)));
    let low = key("low");
    s.increment(&low, i64::MIN, None).await.unwrap();
    assert!(matches!(s.increment(&low, -1, None).await, Err(StateError::Overflow { .. })));
}

#[tokio::test]
async fn a_non_counter_value_is_a_type_mismatch_and_changes_nothing() {
    let s = store();
    for (id, value) in [("text", &b"abc"[..]), ("plus", b"+1"), ("zeros", b"007"), ("bin", &[0xff, 0x00])] {
        let k = key(id);
        s.set(&k, bytes::Bytes::copy_from_slice(value), None).await.unwrap();
        let err = s.increment(&k, 1, None).await.unwrap_err();
        assert!(matches!(err, StateError::TypeMismatch { .. }), "{id}: {err:?}");
        let entry = s.get(&k).await.unwrap().unwrap();
        assert_eq!((entry.value.as_ref(), entry.version), (value, Version(1)));
    }
}

#[tokio::test]
async fn a_value_set_as_canonical_text_is_a_counter() {
    let s = store();
    let k = key("seeded");
    s.set(&k, "41".into(), None).await.unwrap();
    assert_eq!(s.increment(&k, 1, None).await.unwrap().value, 42);
}

// ---- delete ------------------------------------------------------------

#[tokio::test]
async fn delete_reports_whether_a_live_entry_was_removed() {
    let s = store();
    let k = key("del");
    assert!(!s.delete(&k, DeleteCondition::Always).await.unwrap());
    s.set(&k, "a".into(), None).await.unwrap();
    s.set(&k, "b".into(), None).await.unwrap();
    assert!(!s.delete(&k, DeleteCondition::IfVersion(Version(1))).await.unwrap());
    assert!(s.get(&k).await.unwrap().is_some());
    assert!(s.delete(&k, DeleteCondition::IfVersion(Version(2))).await.unwrap());
    assert!(s.get(&k).await.unwrap().is_none());
}

#[tokio::test(start_paused = true)]
async fn deleting_an_expired_entry_reports_false() {
    let s = store();
    let k = key("gone");
    s.set(&k, "a".into(), Some(MS)).await.unwrap();
    advance(MS).await;
    assert!(!s.delete(&k, DeleteCondition::Always).await.unwrap());
}

// ---- scan --------------------------------------------------------------

async fn scan_all(s: &MemoryStore, space: &str, prefix: &str, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = s.scan(space, prefix, cursor.as_ref(), limit).await.unwrap();
        assert!(page.items.len() <= limit);
        ids.extend(page.items.into_iter().map(|i| i.id));
        match page.next {
            Some(next) => cursor = Some(next),
            None => return ids,
        }
    }
}

#[tokio::test]
async fn scan_lists_matching_ids_in_byte_order_across_pages() {
    let s = store();
    let ids = ["b", "a", "ab", "a\n", "aa", "B", "é", "z", "a%", "a_"];
    for id in ids {
        s.set(&key(id), "v".into(), None).await.unwrap();
    }
    let mut expected: Vec<String> = ids.iter().map(|s| s.to_string()).collect();
    expected.sort();
    for limit in [1, 2, 3, 100] {
        assert_eq!(scan_all(&s, "test", "", limit).await, expected, "limit {limit}");
    }
    assert_eq!(scan_all(&s, "test", "a", 2).await, vec!["a", "a\n", "a%", "a_", "aa", "ab"]);
}

#[tokio::test]
async fn scan_prefixes_are_literal() {
    let s = store();
    for id in ["a%b", "axb", "a_b", "a*", "a[1]", "a\\"] {
        s.set(&key(id), "v".into(), None).await.unwrap();
    }
    assert_eq!(scan_all(&s, "test", "a%", 10).await, vec!["a%b"]);
    assert_eq!(scan_all(&s, "test", "a_", 10).await, vec!["a_b"]);
    assert_eq!(scan_all(&s, "test", "a*", 10).await, vec!["a*"]);
    assert_eq!(scan_all(&s, "test", "a[", 10).await, vec!["a[1]"]);
    assert_eq!(scan_all(&s, "test", "a\\", 10).await, vec!["a\\"]);
}

#[tokio::test(start_paused = true)]
async fn scan_skips_expired_entries_and_other_spaces() {
    let s = store();
    s.set(&key("live"), "v".into(), None).await.unwrap();
    s.set(&key("dying"), "v".into(), Some(MS)).await.unwrap();
    s.set(&Key::new("testing", "other").unwrap(), "v".into(), None).await.unwrap();
    s.set(&Key::new("tes", "t").unwrap(), "v".into(), None).await.unwrap();
    advance(MS).await;
    assert_eq!(scan_all(&s, "test", "", 10).await, vec!["live"]);
}

#[tokio::test]
async fn the_last_full_page_has_no_next_cursor() {
    let s = store();
    for id in ["a", "b"] {
        s.set(&key(id), "v".into(), None).await.unwrap();
    }
    let page = s.scan("test", "", None, 2).await.unwrap();
    assert_eq!((page.items.len(), page.next), (2, None));
}

#[tokio::test]
async fn scan_refuses_a_bad_limit_or_a_foreign_cursor() {
    let s = store();
    assert!(matches!(s.scan("test", "", None, 0).await, Err(StateError::InvalidArgument { name: "limit", .. })));
    assert!(matches!(s.scan("test", "", None, 1001).await, Err(StateError::InvalidArgument { .. })));
    let foreign = state_api::Cursor::new("zzz");
    assert!(matches!(
        s.scan("test", "a", Some(&foreign), 10).await,
        Err(StateError::InvalidArgument { name: "cursor", .. })
    ));
}

// ---- bad input ---------------------------------------------------------

#[tokio::test]
async fn oversized_values_are_refused_and_change_nothing() {
    let s = MemoryStore::builder().max_value_len(4).sweep_interval(None).build();
    let k = key("big");
    s.set(&k, "1234".into(), None).await.unwrap();
    let err = s.set(&k, "12345".into(), None).await.unwrap_err();
    assert!(matches!(err, StateError::ValueTooLarge { size: 5, max: 4 }), "{err:?}");
    assert_eq!(s.get(&k).await.unwrap().unwrap().value, "1234");
}

#[tokio::test]
async fn bad_keys_and_names_are_typed_errors() {
    assert!(matches!(Key::new("s", ""), Err(StateError::InvalidKey(KeyError::Empty { part: KeyPart::Id }))));
    assert!(matches!(Key::new("s\0", "i"), Err(StateError::InvalidKey(KeyError::Nul { part: KeyPart::Space }))));
    let s = store();
    assert!(matches!(s.scan("", "", None, 1).await, Err(StateError::InvalidKey(_))));
    assert!(matches!(s.scan("s", "a\0", None, 1).await, Err(StateError::InvalidKey(_))));
    use state_api::LockService;
    assert!(matches!(s.try_acquire("", MS).await, Err(StateError::InvalidKey(_))));
    assert!(matches!(s.try_acquire("l", Duration::ZERO).await, Err(StateError::InvalidArgument { .. })));
}

#[tokio::test]
async fn empty_and_binary_values_round_trip() {
    let s = store();
    s.set(&key("empty"), bytes::Bytes::new(), None).await.unwrap();
    assert_eq!(s.get(&key("empty")).await.unwrap().unwrap().value.len(), 0);
    let binary: Vec<u8> = (0..=255).collect();
    s.set(&key("bin"), binary.clone().into(), None).await.unwrap();
    assert_eq!(s.get(&key("bin")).await.unwrap().unwrap().value.as_ref(), &binary[..]);
}

// ---- sweeper -----------------------------------------------------------

/// Entry records the store holds in the test space, expired ones included.
async fn held(s: &MemoryStore) -> u64 {
    s.storage_usage(StorageScope { spaces: &["test"], lock_prefix: "" }).await.unwrap().records
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_frees_expired_entries_but_never_a_rewritten_one() {
    // A sweeper that never ticks during the test, so that storage is
    // reported and sweeps happen only when the test asks.
    let s = MemoryStore::builder().sweep_interval(Some(Duration::from_secs(3600))).build();
    s.set(&key("expired"), "v".into(), Some(MS)).await.unwrap();
    s.set(&key("rewritten"), "v".into(), Some(MS)).await.unwrap();
    advance(MS).await;
    s.set(&key("rewritten"), "new".into(), None).await.unwrap();
    assert_eq!(held(&s).await, 2);
    assert_eq!(s.reclaim_expired().await.unwrap(), 1);
    assert_eq!(held(&s).await, 1);
    assert_eq!(s.get(&key("rewritten")).await.unwrap().unwrap().value, "new");
}

#[tokio::test(start_paused = true)]
async fn the_background_sweeper_runs_inside_a_runtime() {
    let s = MemoryStore::builder().sweep_interval(Some(Duration::from_millis(10))).build();
    s.set(&key("e"), "v".into(), Some(MS)).await.unwrap();
    assert_eq!(held(&s).await, 1);
    tokio::time::sleep(Duration::from_millis(25)).await;
    assert_eq!(held(&s).await, 0);
}

#[tokio::test]
async fn storage_is_reported_only_while_a_sweeper_runs() {
    assert!(store().capabilities().storage.is_none());
    assert!(matches!(held_or_error(&store()).await, Err(StateError::Unsupported { .. })));
    let swept = MemoryStore::builder().sweep_interval(Some(Duration::from_millis(250))).build();
    let declared = swept.capabilities().storage.unwrap();
    assert_eq!(declared.reclaim_within, Duration::from_millis(250));
    assert_eq!(declared.lock_records, LockRetention::Reclaimed);
}

#[tokio::test(start_paused = true)]
async fn a_free_lock_leaves_no_record_and_tokens_still_increase() {
    let s = MemoryStore::builder().sweep_interval(Some(Duration::from_secs(3600))).build();
    let locks = |s: &MemoryStore| {
        let s = s.clone();
        async move { s.storage_usage(StorageScope { spaces: &[], lock_prefix: "job-" }).await.unwrap().lock_records }
    };
    let first = s.try_acquire("job-1", Duration::from_secs(1)).await.unwrap().unwrap();
    assert_eq!(locks(&s).await, 1);
    s.release(&first).await.unwrap();
    assert_eq!(locks(&s).await, 0);
    let abandoned = s.try_acquire("job-1", MS).await.unwrap().unwrap();
    assert!(abandoned.token() > first.token());
    advance(MS).await;
    assert_eq!(s.reclaim_expired().await.unwrap(), 1);
    assert_eq!(locks(&s).await, 0);
    let again = s.try_acquire("job-1", Duration::from_secs(1)).await.unwrap().unwrap();
    assert!(again.token() > abandoned.token());
}

async fn held_or_error(s: &MemoryStore) -> state_api::Result<StorageUsage> {
    s.storage_usage(StorageScope { spaces: &["test"], lock_prefix: "" }).await
}

// ---- concurrency -------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_concurrent_check_and_set_wins() {
    for round in 0..50 {
        let s = store();
        let k = key(&format!("race-{round}"));
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (s, k) = (s.clone(), k.clone());
                tokio::spawn(async move { s.check_and_set(&k, i.to_string().into(), None).await.unwrap() })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap());
        }
        assert_eq!(winners, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_increments_lose_nothing() {
    let s = store();
    let k = key("total");
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (s, k) = (s.clone(), k.clone());
            tokio::spawn(async move {
                for _ in 0..1000 {
                    s.increment(&k, 1, None).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let entry = s.get(&k).await.unwrap().unwrap();
    assert_eq!((entry.value, entry.version), ("8000".into(), Version(8000)));
}
