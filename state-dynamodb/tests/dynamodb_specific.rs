//! What the conformance kit cannot see: table management, DynamoDB's limits,
//! expiry races on stored-but-expired items, and the errors an operator
//! meets (unreachable endpoint, bad credentials, wrong table).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod local;

use std::sync::Arc;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType};
use bytes::Bytes;
use state_api::{Key, MAX_ID_LEN, MAX_SPACE_LEN, StateError, StateStore, Version};
use state_dynamodb::{DynamoStore, Migration};

fn server_url() -> String {
    test_servers::dynamodb::shared_dynamodb().unwrap().url().to_owned()
}

/// A loopback address where nothing listens: connections are refused.
fn refused_url() -> String {
    let port = test_servers::free_port().unwrap();
    format!("http://127.0.0.1:{port}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_creates_the_table_once_and_is_idempotent() {
    let store = DynamoStore::open(local::config(&server_url(), &local::unique_table("migrate"))).await.unwrap();
    let missing = DynamoStore::connect(local::config(&server_url(), store.table_name())).await;
    let message = missing.expect_err("connect to a missing table succeeded").to_string();
    assert!(message.contains("does not exist") && message.contains("migrate"), "{message}");

    let first = store.migrate().await.unwrap();
    assert!(first.created_table && first.enabled_ttl, "first migrate: {first}");
    let second = store.migrate().await.unwrap();
    assert_eq!((second.created_table, second.enabled_ttl), (false, false), "second migrate: {second}");
    assert_eq!(second.to_string(), "dynamodb: the table is up to date, nothing to do");
    let _: Migration = second;

    // Concurrent migrates of a fresh table all succeed.
    let table = local::unique_table("migrate-race");
    let stores: Vec<_> = futures_of(4, |_| DynamoStore::open(local::config(&server_url(), &table))).await;
    let results = futures_of(4, |i| {
        let store = stores[i].as_ref().unwrap().clone();
        async move { store.migrate().await }
    })
    .await;
    let created = results.iter().filter(|r| r.as_ref().unwrap().created_table).count();
    assert!(created >= 1, "{results:?}");
    DynamoStore::connect(local::config(&server_url(), &table)).await.unwrap();
}

async fn futures_of<T, F, Fut>(n: usize, make: F) -> Vec<T>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let tasks: Vec<_> = (0..n).map(|i| tokio::spawn(make(i))).collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(task.await.unwrap());
    }
    results
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_with_another_key_schema_is_refused_naming_the_difference() {
    let table = local::unique_table("schema");
    let store = DynamoStore::open(local::config(&server_url(), &table)).await.unwrap();
    // Someone else's table: partition key `pk`, no sort key.
    store
        .sdk_client()
        .create_table()
        .table_name(&table)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().unwrap())
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().unwrap(),
        )
        .billing_mode(BillingMode::PayPerRequest)
        .send()
        .await
        .unwrap();

    let refused = DynamoStore::connect(local::config(&server_url(), &table)).await;
    let error = refused.expect_err("connect accepted a foreign key schema");
    assert!(!error.is_retryable(), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("partition key is `pk` (S), expected `space` (S)"), "{message}");
    assert!(message.contains("there is no sort key, expected `id` (S)"), "{message}");

    let migrated = store.migrate().await;
    assert!(migrated.is_err_and(|e| e.to_string().contains("partition key is `pk`")), "migrate accepted it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_set_if_absent_race_on_an_expired_item_has_exactly_one_winner() {
    let store = Arc::new(local::fresh_store("expired-race").await.unwrap());
    for round in 0..10 {
        let key = Key::new("race", &format!("expired-{round}")).unwrap();
        store.set(&key, Bytes::from_static(b"old"), Some(Duration::from_millis(30))).await.unwrap();
        // The item is still stored (no reaper runs this fast) but expired.
        tokio::time::sleep(Duration::from_millis(60)).await;
        let barrier = Arc::new(tokio::sync::Barrier::new(8));
        let results = futures_of(8, |c| {
            let (store, key, barrier) = (Arc::clone(&store), key.clone(), Arc::clone(&barrier));
            async move {
                barrier.wait().await;
                store.check_and_set(&key, Bytes::from(format!("contender-{c}")), None).await.unwrap()
            }
        })
        .await;
        let winners: Vec<usize> = (0..8).filter(|&c| results[c]).collect();
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let entry = store.get(&key).await.unwrap().unwrap();
        assert_eq!(entry.value, format!("contender-{}", winners[0]));
        assert_eq!((entry.version, entry.ttl), (Version(1), None), "round {round}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconditional_writes_and_increments_on_an_expired_item_restart_at_version_one() {
    let store = local::fresh_store("expired-restart").await.unwrap();
    let key = Key::new("restart", "k").unwrap();
    for _ in 0..3 {
        store.set(&key, Bytes::from_static(b"x"), None).await.unwrap();
    }
    store.set(&key, Bytes::from_static(b"x"), Some(Duration::from_millis(30))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(store.set(&key, Bytes::from_static(b"y"), None).await.unwrap(), Version(1));

    store.increment(&key, 5, Some(Duration::from_millis(30))).await.unwrap_err();
    store.set(&key, Bytes::from_static(b"41"), Some(Duration::from_millis(30))).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let counter = store.increment(&key, 2, None).await.unwrap();
    assert_eq!((counter.value, counter.version), (2, Version(1)));
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, "2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_largest_value_fits_with_the_longest_key() {
    let store = local::fresh_store("largest").await.unwrap();
    let key = Key::new(&"s".repeat(MAX_SPACE_LEN), &"é".repeat(MAX_ID_LEN / 2)).unwrap();
    let value = Bytes::from(vec![0x5A; DynamoStore::MAX_VALUE_LEN]);
    store.set(&key, value.clone(), Some(Duration::from_secs(60))).await.unwrap();
    assert_eq!(
        store.compare_and_swap(&key, Version(1), value.clone(), None).await.unwrap().written(),
        Some(Version(2))
    );
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, value);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_values_are_refused_before_any_request() {
    // An endpoint that counts the connections made to it.
    let (url, connections) = hanging_up_endpoint();
    let store = DynamoStore::open(local::config(&url, "statekit_nowhere")).await.unwrap();
    let key = Key::new("big", "value").unwrap();
    let over = Bytes::from(vec![0u8; DynamoStore::MAX_VALUE_LEN + 1]);
    for condition in
        [state_api::Condition::Always, state_api::Condition::IfAbsent, state_api::Condition::IfVersion(Version(1))]
    {
        let refused = store.put(&key, over.clone(), condition, None).await;
        assert!(
            matches!(refused, Err(StateError::ValueTooLarge { size, max }) if size == max + 1 && max == DynamoStore::MAX_VALUE_LEN),
            "{condition:?}: {refused:?}"
        );
    }
    let zero_ttl = store.set(&key, Bytes::new(), Some(Duration::ZERO)).await;
    assert!(matches!(zero_ttl, Err(StateError::InvalidArgument { name: "ttl", .. })), "{zero_ttl:?}");
    let zero_increment_ttl = store.increment(&key, 1, Some(Duration::ZERO)).await;
    assert!(matches!(zero_increment_ttl, Err(StateError::InvalidArgument { name: "ttl", .. })));
    assert_eq!(connections.load(std::sync::atomic::Ordering::SeqCst), 0, "a refused input reached the network");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_endpoint_is_a_retryable_error_within_the_timeout() {
    let timeout = Duration::from_secs(2);
    let config = local::config(&refused_url(), "statekit_nowhere").with_operation_timeout(timeout);
    let started = Instant::now();
    let refused = DynamoStore::connect(config.clone()).await;
    let error = refused.expect_err("connected to nothing");
    assert!(error.is_retryable(), "{error:?}");
    assert!(matches!(error, StateError::Unavailable { .. } | StateError::Timeout { .. }), "{error:?}");
    // Generous: only "bounded by the timeout, not hanging" is asserted.
    assert!(started.elapsed() < timeout + Duration::from_secs(2), "took {:?}", started.elapsed());

    let store = DynamoStore::open(config).await.unwrap();
    let error = store.set(&Key::new("s", "i").unwrap(), Bytes::new(), None).await.unwrap_err();
    assert!(matches!(error, StateError::Unavailable { .. }), "{error:?}");
}

/// A loopback endpoint that accepts each connection and closes it at once,
/// so every request fails in a way that leaves its fate unknown; returns
/// its URL and a counter of the connections (requests) it received.
fn hanging_up_endpoint() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&connections);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (url, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_retried_but_writes_that_may_have_applied_are_not() {
    use std::sync::atomic::Ordering;
    let (url, connections) = hanging_up_endpoint();
    let config = local::config(&url, "statekit_hangup").with_max_attempts(3);
    let store = DynamoStore::open(config).await.unwrap();
    let key = Key::new("s", "i").unwrap();

    let read = store.get(&key).await.unwrap_err();
    assert!(read.is_retryable(), "{read:?}");
    assert_eq!(connections.swap(0, Ordering::SeqCst), 3, "a read should use all its attempts");

    let written = store.check_and_set(&key, Bytes::from_static(b"v"), None).await.unwrap_err();
    assert!(matches!(written, StateError::Unavailable { .. }), "{written:?}");
    assert_eq!(connections.swap(0, Ordering::SeqCst), 1, "a write that may have applied was retried");

    let incremented = store.increment(&key, 1, None).await.unwrap_err();
    assert!(incremented.is_retryable(), "{incremented:?}");
    assert_eq!(connections.load(Ordering::SeqCst), 1, "an increment that may have applied was retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_endpoint_times_out_at_the_operation_timeout() {
    // Accepts connections (the kernel's backlog) and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let timeout = Duration::from_millis(800);
    let store =
        DynamoStore::open(local::config(&url, "statekit_silent").with_operation_timeout(timeout)).await.unwrap();
    for write in [false, true] {
        let started = Instant::now();
        let key = Key::new("s", "i").unwrap();
        let result = if write {
            store.set(&key, Bytes::new(), None).await.map(|_| ())
        } else {
            store.get(&key).await.map(|_| ())
        };
        let error = result.unwrap_err();
        assert!(matches!(error, StateError::Timeout { after, .. } if after == timeout), "{error:?}");
        let took = started.elapsed();
        assert!(took >= timeout && took < timeout + Duration::from_secs(2), "took {took:?}");
    }
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_are_a_clear_permanent_error() {
    let config = local::config(&server_url(), "statekit_any")
        // DynamoDB Local refuses key ids that are not letters and digits,
        // as AWS refuses unknown ones.
        .with_static_credentials("not-a-valid-key", "secret");
    let error = DynamoStore::connect(config).await.expect_err("bad credentials were accepted");
    assert!(!error.is_retryable(), "{error:?}");
    assert!(matches!(error, StateError::Backend { .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("access key id"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_are_numbers_that_read_back_as_text() {
    let store = local::fresh_store("counters").await.unwrap();
    let key = Key::new("counters", "hits").unwrap();
    assert_eq!(store.increment(&key, i64::MIN, None).await.unwrap().value, i64::MIN);
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, i64::MIN.to_string());
    assert!(matches!(store.increment(&key, -1, None).await, Err(StateError::Overflow { .. })));
    // A value written as text that is a canonical integer is a counter...
    store.set(&key, Bytes::from_static(b"7"), None).await.unwrap();
    assert_eq!(store.increment(&key, 1, None).await.unwrap().value, 8);
    // ...and one that is not, is not.
    store.set(&key, Bytes::from_static(b"08"), None).await.unwrap();
    assert!(matches!(store.increment(&key, 1, None).await, Err(StateError::TypeMismatch { .. })));
    assert_eq!(store.get(&key).await.unwrap().unwrap().value, "08");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_entries_never_collide() {
    use state_api::LockService;
    let store = local::fresh_store("collide").await.unwrap();
    let lease = store.try_acquire("job", Duration::from_secs(30)).await.unwrap().unwrap();
    // The names a careless encoding would give the lock item.
    for (space, id) in [("lock", "job"), ("\u{1}lock\u{1}job", "lease"), ("lock:job", "lease"), ("job", "lease")] {
        let key = Key::new(space, id).unwrap();
        assert!(store.check_and_set(&key, Bytes::from_static(b"entry"), None).await.unwrap(), "{key}");
    }
    assert!(store.is_held(&lease).await.unwrap());
    assert_eq!(store.scan("lock", "", None, 10).await.unwrap().items.len(), 1);
    store.release(&lease).await.unwrap();
    let again = store.try_acquire("job", Duration::from_secs(30)).await.unwrap().unwrap();
    assert!(again.token() > lease.token());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acquire_with_an_endless_timeout_waits_instead_of_panicking() {
    use state_api::LockService;
    let store = local::fresh_store("endless").await.unwrap();
    let lease = store.acquire("forever", Duration::from_secs(30), Duration::MAX).await.unwrap();
    let waiting = tokio::time::timeout(
        Duration::from_millis(300),
        store.acquire("forever", Duration::from_secs(30), Duration::MAX),
    )
    .await;
    assert!(waiting.is_err(), "a held lock was acquired again: {waiting:?}");
    store.release(&lease).await.unwrap();
}
