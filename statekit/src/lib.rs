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

pub mod config;

pub use config::{BackendKind, Config, ConfigError, StateConfig};
pub use state_api::{
    Backend, Bytes, Condition, Counter, DeleteCondition, Entry, FencingToken, Key, Lease, LockGuard, LockService,
    PutOutcome, StateError, StateStore, StateStoreExt, Version,
};

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
/// service as trait objects.
///
/// # Errors
/// [`ConfigError::NotCompiled`] for a backend whose feature is off,
/// [`ConfigError::Missing`] for a required field, and the backend's
/// [`StateError`] (typically `Unavailable`) when it cannot be reached.
pub async fn connect(config: &Config) -> Result<Backend, Error> {
    let state = &config.state;
    match state.backend {
        BackendKind::Memory => Ok(memory(state)),
        BackendKind::Redis => backends::redis(state).await,
        BackendKind::Postgres => backends::postgres(state).await,
        BackendKind::Dynamodb => backends::dynamodb(state).await,
    }
}

/// Creates or upgrades what the backend needs (PostgreSQL schema, DynamoDB
/// table); idempotent. Returns a sentence saying what it did.
///
/// # Errors
/// As [`connect`].
pub async fn migrate(config: &Config) -> Result<String, Error> {
    let state = &config.state;
    match state.backend {
        BackendKind::Memory => Ok("memory: nothing to migrate".to_owned()),
        BackendKind::Redis => {
            backends::redis(state).await?;
            Ok("redis: nothing to migrate (scripts load on first use)".to_owned())
        }
        BackendKind::Postgres => backends::migrate_postgres(state).await,
        BackendKind::Dynamodb => backends::migrate_dynamodb(state).await,
    }
}

fn memory(state: &StateConfig) -> Backend {
    let mut builder = state_api::MemoryStore::builder();
    if let Some(max) = state.max_value_len {
        builder = builder.max_value_len(max);
    }
    let store = builder.build();
    Backend::new(std::sync::Arc::new(store.clone()), std::sync::Arc::new(store))
}

/// One function per backend, compiled to a "not compiled in" error when its
/// feature is off.
mod backends {
    #[allow(unused_imports)]
    use crate::{Backend, ConfigError, Error, StateConfig};

    #[cfg(feature = "redis")]
    pub async fn redis(state: &StateConfig) -> Result<Backend, Error> {
        let url = state.url.clone().ok_or(ConfigError::Missing {
            backend: "redis",
            field: "url",
            variable: "STATEKIT_URL",
        })?;
        let mut config = state_redis::RedisConfig::new(url)
            .with_connect_timeout(state.connect_timeout())
            .with_command_timeout(state.command_timeout());
        if let Some(prefix) = &state.prefix {
            config = config.with_key_prefix(prefix.clone());
        }
        if let Some(max) = state.max_value_len {
            config = config.with_max_value_len(max);
        }
        Ok(state_redis::backend(config).await?)
    }

    #[cfg(not(feature = "redis"))]
    pub async fn redis(_: &StateConfig) -> Result<Backend, Error> {
        Err(ConfigError::NotCompiled { backend: "redis" }.into())
    }

    #[cfg(feature = "postgres")]
    fn postgres_config(state: &StateConfig) -> Result<state_postgres::PostgresConfig, Error> {
        let url = state.url.clone().ok_or(ConfigError::Missing {
            backend: "postgres",
            field: "url",
            variable: "STATEKIT_URL",
        })?;
        let mut config = state_postgres::PostgresConfig::new(url)
            .with_connect_timeout(state.connect_timeout())
            .with_statement_timeout(state.command_timeout());
        if let Some(schema) = &state.schema {
            config = config.with_schema(schema.clone())?;
        }
        if let Some(prefix) = &state.prefix {
            config = config.with_table_prefix(prefix.clone())?;
        }
        if let Some(size) = state.pool_size {
            config = config.with_pool_size(size);
        }
        if let Some(max) = state.max_value_len {
            config = config.with_max_value_len(max);
        }
        Ok(config)
    }

    /// Connects and applies pending migrations, so a configured PostgreSQL
    /// works without a separate step; `statekit migrate` reports them.
    #[cfg(feature = "postgres")]
    pub async fn postgres(state: &StateConfig) -> Result<Backend, Error> {
        Ok(state_postgres::backend(postgres_config(state)?).await?)
    }

    #[cfg(feature = "postgres")]
    pub async fn migrate_postgres(state: &StateConfig) -> Result<String, Error> {
        let store = state_postgres::PostgresStore::connect(postgres_config(state)?).await?;
        let report = store.migrate().await?;
        Ok(if report.applied.is_empty() {
            format!("postgres: schema already at version {}; nothing to do", report.current)
        } else {
            format!("postgres: applied migrations {:?}; schema now at version {}", report.applied, report.current)
        })
    }

    #[cfg(feature = "dynamodb")]
    fn dynamodb_config(state: &StateConfig) -> state_dynamodb::DynamoConfig {
        let mut config = state_dynamodb::DynamoConfig::new()
            .with_connect_timeout(state.connect_timeout())
            .with_operation_timeout(state.command_timeout());
        if let Some(url) = &state.url {
            config = config.with_endpoint_url(url.clone());
        }
        if let Some(region) = &state.region {
            config = config.with_region(region.clone());
        }
        if let Some(table) = &state.table_name {
            config = config.with_table_name(table.clone());
        }
        if let (Some(id), Some(secret)) = (&state.access_key_id, &state.secret_access_key) {
            config = config.with_static_credentials(id.clone(), secret.clone());
        }
        config
    }

    #[cfg(feature = "dynamodb")]
    pub async fn dynamodb(state: &StateConfig) -> Result<Backend, Error> {
        Ok(state_dynamodb::backend(dynamodb_config(state)).await?)
    }

    #[cfg(feature = "dynamodb")]
    pub async fn migrate_dynamodb(state: &StateConfig) -> Result<String, Error> {
        let store = state_dynamodb::DynamoStore::open(dynamodb_config(state)).await?;
        Ok(store.migrate().await?.to_string())
    }

    #[cfg(not(feature = "dynamodb"))]
    pub async fn dynamodb(_: &StateConfig) -> Result<Backend, Error> {
        Err(ConfigError::NotCompiled { backend: "dynamodb" }.into())
    }

    #[cfg(not(feature = "dynamodb"))]
    pub async fn migrate_dynamodb(_: &StateConfig) -> Result<String, Error> {
        Err(ConfigError::NotCompiled { backend: "dynamodb" }.into())
    }

    #[cfg(not(feature = "postgres"))]
    pub async fn postgres(_: &StateConfig) -> Result<Backend, Error> {
        Err(ConfigError::NotCompiled { backend: "postgres" }.into())
    }

    #[cfg(not(feature = "postgres"))]
    pub async fn migrate_postgres(_: &StateConfig) -> Result<String, Error> {
        Err(ConfigError::NotCompiled { backend: "postgres" }.into())
    }
}
