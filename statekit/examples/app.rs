//! An application that keeps its state through statekit: deduplication, a
//! fixed-window rate limiter and a lock-protected job whose lease is kept
//! alive and whose writes are fenced. Its code is the same
//! for every backend; only the config file differs.
//!
//! ```sh
//! cargo run -p statekit --example app                              # in memory
//! cargo run -p statekit --example app -- examples/gateway.toml     # [state] inside an app's own file
//! cargo run -p statekit --features redis --example app -- examples/redis.toml
//! ```

use std::time::Duration;

use std::sync::Arc;

use statekit::{Backend, Config, KeepAlive, Key, LockService, StateError, StateStore};

/// Handles a message once, however often it is delivered.
async fn handle_once(store: &dyn StateStore, message_id: &str) -> Result<bool, StateError> {
    let mark = Key::new("app-dedup", message_id)?;
    store.check_and_set(&mark, "handled".into(), Some(Duration::from_secs(3600))).await
}

/// Allows `limit` requests per client per window.
async fn allow_request(store: &dyn StateStore, client: &str, limit: i64) -> Result<bool, StateError> {
    let window = Key::new("app-rate", client)?;
    let count = store.increment(&window, 1, Some(Duration::from_secs(60))).await?;
    Ok(count.value <= limit)
}

/// Runs the nightly job on exactly one worker at a time; returns the fencing
/// token it ran under, or `None` if another worker held the lock.
///
/// The lease is kept alive while the job runs, and the job stops when the
/// keep-alive says the lease is lost. Its result is written fenced: should
/// this worker stall past its lease unawares, the store refuses the write
/// (`LockLost`) once the lease is gone, so a newer holder's work is never
/// overwritten. (A backend that does not declare fenced writes gets a
/// plain one; all four of statekit's declare them.)
async fn run_job(locks: Arc<dyn LockService>, store: &dyn StateStore) -> Result<Option<u64>, StateError> {
    let ttl = Duration::from_secs(2);
    let Some(lease) = locks.try_acquire("app-nightly-job", ttl).await? else {
        return Ok(None);
    };
    let token = lease.token().0;
    let fence = lease.fence();
    let kept = KeepAlive::start(locks, lease, ttl)?;
    let work = async {
        let runs = Key::new("app-jobs", "nightly-runs")?;
        if store.capabilities().features.fenced_writes {
            store.increment_fenced(&runs, 1, None, &fence).await
        } else {
            store.increment(&runs, 1, None).await
        }
    };
    tokio::select! {
        done = work => { done?; }
        lost = kept.lost() => return Err(StateError::LockLost { name: format!("app-nightly-job ({lost})") }),
    }
    kept.stop().await?;
    Ok(Some(token))
}

/// The application itself: the same code whatever the backend.
pub async fn app(backend: Backend) -> Result<(), Box<dyn std::error::Error>> {
    let store = backend.store.as_ref();
    let run = format!("{:x}", std::process::id());

    let first = handle_once(store, &format!("msg-{run}")).await?;
    let again = handle_once(store, &format!("msg-{run}")).await?;
    println!("dedup: first delivery handled={first}, redelivery handled={again}");
    assert!(first && !again, "a message must be handled exactly once");

    let mut allowed = 0;
    for _ in 0..5 {
        allowed += i32::from(allow_request(store, &format!("client-{run}"), 3).await?);
    }
    println!("rate limit: {allowed} of 5 requests allowed in the window (limit 3)");
    assert_eq!(allowed, 3);

    let workers: Vec<_> = (0..4)
        .map(|_| {
            let backend = backend.clone();
            tokio::spawn(async move { run_job(Arc::clone(&backend.locks), backend.store.as_ref()).await })
        })
        .collect();
    let mut tokens = Vec::new();
    for worker in workers {
        if let Some(token) = worker.await?? {
            tokens.push(token);
        }
    }
    println!("job: ran {} time(s) under fencing tokens {tokens:?}", tokens.len());
    assert!(!tokens.is_empty(), "some worker must have run the job");
    println!("ok");
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1);
    let config = Config::load_or_default(path.as_deref().map(std::path::Path::new))?;
    let backend = statekit::connect(&config).await?;
    println!("backend: {}", backend.capabilities().backend);
    app(backend).await
}
