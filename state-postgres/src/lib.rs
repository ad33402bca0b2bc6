//! # state-postgres: the statekit contract on PostgreSQL
//!
//! A [`PostgresStore`] implements [`state_api::StateStore`] and
//! [`state_api::LockService`] exactly as the contract in
//! [`state_api::contract`] states — versions, TTLs, conditional writes,
//! counters, ordered prefix scans and fenced locks — for teams that want
//! their shared state in the ACID database they already run. The
//! `conformance` kit proves it against a real server in this crate's tests.
//!
//! ```no_run
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> state_api::Result<()> {
//! use std::time::Duration;
//! use state_api::{Key, LockService, StateStore};
//! use state_postgres::{PostgresConfig, PostgresStore};
//!
//! let config = PostgresConfig::new("postgres://app:secret@localhost/app").with_schema("state")?;
//! let store = PostgresStore::connect(config).await?;
//! store.migrate().await?; // idempotent; safe from many instances at once
//!
//! let key = Key::new("jobs", "nightly-report")?;
//! assert!(store.check_and_set(&key, "running".into(), Some(Duration::from_secs(600))).await?);
//!
//! let lease = store.acquire("nightly-report", Duration::from_secs(30), Duration::from_secs(5)).await?;
//! // ... pass lease.token() to whatever the lock protects ...
//! store.release(&lease).await?;
//! # Ok(()) }
//! ```
//!
//! ## Layout
//!
//! Two tables per store, in the configured schema, named with the
//! configured prefix (defaults: `public`, `statekit`):
//!
//! * `{prefix}_entries (space, id, value bytea, version bigint, expires_at
//!   timestamptz)`, primary key `(space, id)` with `COLLATE "C"` so ids
//!   sort by bytes, plus a partial index on `expires_at` for the reaper;
//! * `{prefix}_locks (name, owner, fencing, expires_at)`, whose `fencing`
//!   counter survives releases and expiries.
//!
//! ## Every operation is one statement
//!
//! Each call runs one SQL statement from the crate's `queries/` directory,
//! atomic on its own under READ COMMITTED (pinned on every connection) and
//! timed by the server's clock (`now()`), with millisecond TTLs. Expired
//! rows count as absent *inside* that statement — an upsert overwrites an
//! expired row and restarts its version at 1; reads filter it — never
//! through read-then-delete-then-write. Conditional writes use
//! `INSERT … ON CONFLICT DO UPDATE … WHERE` / `UPDATE … WHERE version = $v`,
//! whose row lock and re-evaluation on the latest row version make
//! concurrent writers to one key serialize; a refused write reads the
//! refusing entry in the same statement, under that lock. The comments in
//! each `.sql` file give the full argument, including the one case (a row
//! inserted after the statement's snapshot) in which the statement says
//! "run me again" instead of answering; a re-run changed nothing, so the
//! operation still takes effect once.
//!
//! Scans are keyset pagination on the primary key over the range
//! `[prefix, successor(prefix))` — no `LIKE`, so `%`, `_` and `\` are
//! literal, and a page costs what the page holds. Counters are checked and
//! summed in SQL (`numeric`, then range-checked), so a type mismatch or an
//! overflow changes nothing.
//!
//! ## Migrations with configurable names
//!
//! The schema is created by versioned files in `migrations/`, embedded in
//! the binary and applied by [`PostgresStore::migrate`] — explicitly; the
//! store never changes the schema on its own. `sqlx::migrate!` does not fit
//! configurable names (its SQL is static and its ledger is per schema), so
//! the files are templates whose table names are filled in with the
//! validated, quoted schema and prefix, and a small runner records applied
//! versions (with a checksum) in `{prefix}_migrations`. It runs in one
//! transaction behind `pg_advisory_xact_lock`, so instances migrating at
//! once queue up and each migration is applied exactly once.
//!
//! ## Expiry and the reaper
//!
//! Expired rows are invisible at once and deleted later by a background
//! reaper in bounded batches ([`PostgresConfig::reap_interval`],
//! [`PostgresConfig::reap_batch`]); it skips rows that writers hold and
//! re-checks the deadline on the row it deletes, so a key rewritten after
//! it expired is never lost. [`PostgresStore::reap_expired`] runs one pass.
//!
//! ## Locks
//!
//! `try_acquire`, `extend`, `release` and `is_held` are one statement each,
//! matching on the lease's owner id *and* fencing token, so a stale lease
//! can never touch its successor. `release` notifies the lock's name with
//! `pg_notify`; waiters in `acquire` LISTEN on one shared connection per
//! store and retry as soon as a release commits or the holder's lease
//! runs out, and fall back to jittered backoff while the listener is down.
//!
//! ## Connections
//!
//! The store keeps up to [`PostgresConfig::pool_size`] connections (sqlx
//! `PgConnection`s) in a `deadpool` pool that recycles them without a
//! round trip, rather than in `sqlx::PgPool`, which pings every connection
//! when it is returned: for one-statement
//! operations that doubles the round trips, and measured against
//! `pgbench` it halved throughput. A connection goes back to the pool
//! only when the operation proved it healthy; one that failed (or whose
//! operation was cancelled mid-statement) is closed, together with the
//! idle ones, since a broken connection usually means the server restarted.
//! Connections idle for over 30 s are pinged before reuse. Every
//! connection pins `statement_timeout` and `default_transaction_isolation
//! = read committed`.
//!
//! ## Failures
//!
//! An unreachable server is [`StateError::Unavailable`](state_api::StateError::Unavailable)
//! after at most the connect timeout; a statement cancelled by the
//! statement timeout is `Timeout`; serialization failures and deadlocks are
//! retryable `Backend` errors; operations on a schema that was never
//! migrated fail with a `Backend` error saying so. When the server
//! restarts, calls in flight fail with `Unavailable` (their effect is
//! unknown, as the contract says), and the store reconnects on the next
//! call. URLs are redacted wherever they could appear, and passwords are
//! never part of an error.

mod config;
mod connection;
mod error;
mod keyset;
mod lock;
mod releases;
mod schedule;
mod schema;
mod statements;
mod store;

use std::sync::Arc;

pub use config::{MAX_IDENTIFIER_LEN, PostgresConfig};
pub use schema::MigrationReport;
pub use store::PostgresStore;

/// The backend name in errors, spans and capabilities.
pub const BACKEND: &str = "postgres";

/// Connects with `config`, applies the migrations (idempotent), and returns
/// the store as a [`state_api::Backend`]. Every backend crate's `backend()`
/// does the same: connect and create what is missing, like
/// `statekit::connect` by default.
///
/// # Errors
/// As [`PostgresStore::connect`] and [`PostgresStore::migrate`].
pub async fn backend(config: PostgresConfig) -> state_api::Result<state_api::Backend> {
    let store = PostgresStore::connect(config).await?;
    store.migrate().await?;
    let store = Arc::new(store);
    Ok(state_api::Backend::new(store.clone(), store.clone()).with_schedules(store))
}
