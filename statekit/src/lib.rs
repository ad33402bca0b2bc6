//! # statekit
//!
//! What applications depend on: one state-storage contract
//! ([`StateStore`], [`LockService`]) over Redis, PostgreSQL, DynamoDB or an
//! in-process store, chosen in a TOML file rather than in code. Application
//! code calls [`connect`] and never names a backend; each backend is a cargo
//! feature (`redis`, `postgres`, `dynamodb`, `all`), and the in-memory
//! backend is always compiled in and is the default.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), statekit::Error> {
//! use std::time::Duration;
//! use statekit::{Config, Key, StateStore};
//!
//! // No file: the embedded in-memory backend.
//! let config = Config::load_or_default(None)?;
//! let backend = statekit::connect(&config).await?;
//! let key = Key::new("dedup", "message-81")?;
//! assert!(backend.store.check_and_set(&key, "seen".into(), Some(Duration::from_secs(3600))).await?);
//! assert!(!backend.store.check_and_set(&key, "seen".into(), None).await?);
//! # Ok(()) }
//! ```
//!
//! ## Configuration
//!
//! The `[state]` table of the application's own config file chooses the
//! backend and holds that backend's fields; the application's other tables
//! are left alone. Each backend's fields are those of its config type
//! ([`MemoryConfig`], and `RedisConfig`, `PostgresConfig`, `DynamoConfig`
//! behind their features), a key the chosen backend does not take is an
//! error, and `STATEKIT_<FIELD>` environment variables override the file.
//! See [`config`] for the rules.
//!
//! ## Connecting creates what is missing
//!
//! [`connect`] behaves the same on every backend: it opens the store and
//! then creates whatever the backend needs that does not exist yet — the
//! PostgreSQL tables (by the versioned migrations), the DynamoDB table —
//! idempotently and safely from many processes at once. Memory and Redis
//! need nothing. So a configured backend works without a separate step,
//! and [`migrate`] is the same creation on its own, reporting what it did.
//!
//! Deployments whose credentials may not change the schema set
//! `migrate_on_connect = false` in `[state]` (or
//! `STATEKIT_MIGRATE_ON_CONNECT=false`) and run `statekit migrate` with
//! other credentials: `connect` then creates nothing and checks what it can
//! (DynamoDB: that the table exists with statekit's key schema;
//! PostgreSQL: operations on tables never created fail saying so).
//!
//! ## Backends
//!
//! Every backend is one row of a driver table (see [`drivers`]): its name,
//! its cargo feature, its config type, and how to open, create and check.
//! A backend whose feature is off keeps its row, so configuring it fails
//! with [`ConfigError::NotCompiled`] naming the feature to enable.

pub mod config;
mod driver;

pub use config::{Config, ConfigError};
pub use driver::{BackendConfig, Driver, drivers};
pub use state_api::memory::MemoryConfig;
pub use state_api::{
    Backend, Bytes, Capabilities, Claim, Condition, Counter, Cursor, DeleteCondition, Durability, Entry, EpochMillis,
    ExpiryClock, Fence, FencingToken, KeepAlive, Key, Lease, LeaseLost, LockGuard, LockService, MemoryStore,
    PutOutcome, ScanItem, ScanPage, ScheduleService, ScheduledItem, StateError, StateStore, StateStoreExt, Version,
};
#[cfg(feature = "dynamodb")]
pub use state_dynamodb::DynamoConfig;
#[cfg(feature = "postgres")]
pub use state_postgres::PostgresConfig;
#[cfg(feature = "redis")]
pub use state_redis::RedisConfig;

/// Why [`connect`] or [`migrate`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The backend failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Connects to the configured backend and returns its store and lock
/// service as trait objects. Unless the config turns
/// `migrate_on_connect` off, it first creates what the backend needs and
/// is missing (PostgreSQL tables, the DynamoDB table), idempotently; with
/// it off, it creates nothing and checks what it can.
///
/// # Errors
/// The backend's [`StateError`]: `InvalidArgument` for a setting the
/// backend refuses, `Unavailable` or `Timeout` (retryable) when it cannot
/// be reached, `Backend` when it refuses the credentials, the schema
/// cannot be created, or (with `migrate_on_connect` off) the DynamoDB
/// table is missing.
pub async fn connect(config: &Config) -> Result<Backend, Error> {
    Ok((config.ops().connect)(config.settings(), config.migrate_on_connect()).await?)
}

/// Creates or upgrades what the backend needs (PostgreSQL tables, the
/// DynamoDB table), whatever `migrate_on_connect` says; idempotent. Returns
/// a sentence saying what it did.
///
/// # Errors
/// As [`connect`].
pub async fn migrate(config: &Config) -> Result<String, Error> {
    Ok((config.ops().migrate)(config.settings()).await?)
}
