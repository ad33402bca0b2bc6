//! The driver table: every backend statekit knows, one row each.
//!
//! A row is a `static` naming the backend and its cargo feature, plus, when
//! the feature is on, an impl of [`Row`] on the backend's config type: how
//! to open a store from that config, how to create what the store needs,
//! and how to check what exists without creating it. The config type
//! deserializes itself from `[state]` (it lives in the backend's crate).
//! Everything else — reading `[state]` and the environment, the
//! schema-creation policy of [`connect`](crate::connect),
//! [`migrate`](crate::migrate), the error for a backend that is not
//! compiled in — is written once, here and in [`crate::config`], over the
//! table. A fifth backend is one more `static` row, one `Row` impl and one
//! cargo feature.
//!
//! A backend whose feature is off keeps its row, with no operations, so
//! that configuring it names the feature to enable rather than calling the
//! backend unknown.

use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use state_api::memory::MemoryConfig;
use state_api::{Backend, LockService, MemoryStore, ScheduleService, StateError, StateStore};

use crate::config::field::{FieldError, Fields, field_names};

// --- The table -------------------------------------------------------------

/// A row for a backend behind a cargo feature: compiled in when the feature
/// is on, a name and a feature otherwise.
macro_rules! row {
    ($name:literal, feature $feature:literal, $config:ty) => {{
        #[cfg(feature = $feature)]
        const ROW: Driver = Driver::compiled::<$config>($name, $feature);
        #[cfg(not(feature = $feature))]
        const ROW: Driver = Driver::not_compiled($name, $feature);
        ROW
    }};
}

/// Connect and operation timeouts of a config aimed at a fault proxy.
#[cfg_attr(not(any(feature = "redis", feature = "postgres", feature = "dynamodb")), allow(dead_code))]
const FAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(300);

/// The embedded store: always compiled in; nothing to create.
static MEMORY: Driver = Driver::compiled::<MemoryConfig>("memory", "");
/// Redis: nothing to create; the scripts load when the store connects.
static REDIS: Driver = row!("redis", feature "redis", state_redis::RedisConfig);
/// PostgreSQL: the versioned migrations create the schema's tables.
static POSTGRES: Driver = row!("postgres", feature "postgres", state_postgres::PostgresConfig);
/// DynamoDB: migrate creates the table; without it, connect checks it.
static DYNAMODB: Driver = row!("dynamodb", feature "dynamodb", state_dynamodb::DynamoConfig);

/// Every row, in the order messages list them.
static DRIVERS: [&Driver; 4] = [&MEMORY, &REDIS, &POSTGRES, &DYNAMODB];

impl Row for MemoryConfig {
    const DRIVER: &'static Driver = &MEMORY;
    type Store = MemoryStore;

    async fn open(self) -> Result<MemoryStore, StateError> {
        Ok(self.builder().build())
    }

    async fn create(_: &MemoryStore) -> Result<String, StateError> {
        Ok("memory: nothing to create".to_owned())
    }
}

#[cfg(feature = "redis")]
impl Row for state_redis::RedisConfig {
    const DRIVER: &'static Driver = &REDIS;
    type Store = state_redis::RedisStore;

    async fn open(self) -> Result<Self::Store, StateError> {
        state_redis::RedisStore::connect(self).await
    }

    fn server_url(&self) -> Option<&str> {
        Some(self.url())
    }

    fn through(&self, url: String) -> Option<Self> {
        // A cluster's or the sentinels' clients learn the other servers'
        // addresses from the one named and go there directly, past a proxy
        // in front of it.
        if self.is_cluster() || self.is_sentinel() {
            return None;
        }
        Some(self.clone().with_url(url).with_connect_timeout(FAULT_TIMEOUT).with_command_timeout(FAULT_TIMEOUT))
    }

    async fn create(_: &Self::Store) -> Result<String, StateError> {
        Ok("redis: nothing to create (the scripts load when the store connects)".to_owned())
    }
}

#[cfg(feature = "postgres")]
impl Row for state_postgres::PostgresConfig {
    const DRIVER: &'static Driver = &POSTGRES;
    type Store = state_postgres::PostgresStore;

    async fn open(self) -> Result<Self::Store, StateError> {
        state_postgres::PostgresStore::connect(self).await
    }

    fn server_url(&self) -> Option<&str> {
        Some(self.url())
    }

    fn through(&self, url: String) -> Option<Self> {
        Some(
            self.clone()
                .with_url(url)
                .with_connect_timeout(FAULT_TIMEOUT)
                .with_statement_timeout(FAULT_TIMEOUT)
                .with_reap_interval(None),
        )
    }

    async fn create(store: &Self::Store) -> Result<String, StateError> {
        let report = store.migrate().await?;
        Ok(if report.applied.is_empty() {
            format!("postgres: schema already at version {}; nothing to do", report.current)
        } else {
            format!("postgres: applied migrations {:?}; schema now at version {}", report.applied, report.current)
        })
    }
}

#[cfg(feature = "dynamodb")]
impl Row for state_dynamodb::DynamoConfig {
    const DRIVER: &'static Driver = &DYNAMODB;
    type Store = state_dynamodb::DynamoStore;

    async fn open(self) -> Result<Self::Store, StateError> {
        state_dynamodb::DynamoStore::open(self).await
    }

    fn server_url(&self) -> Option<&str> {
        self.endpoint_url()
    }

    fn through(&self, url: String) -> Option<Self> {
        Some(
            self.clone()
                .with_endpoint_url(url)
                .with_connect_timeout(FAULT_TIMEOUT)
                .with_operation_timeout(FAULT_TIMEOUT + FAULT_TIMEOUT),
        )
    }

    async fn create(store: &Self::Store) -> Result<String, StateError> {
        Ok(store.migrate().await?.to_string())
    }

    async fn verify(store: &Self::Store) -> Result<(), StateError> {
        store.verify().await
    }
}

// --- The row type and what is written once over it -------------------------

/// One backend as the facade knows it: its name in `[state] backend`, the
/// cargo feature that compiles it in, and whether this build has it.
pub struct Driver {
    name: &'static str,
    feature: &'static str,
    ops: Option<&'static Ops>,
}

impl Driver {
    /// The name `[state] backend` selects it by.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The cargo feature of `statekit` that compiles it in; empty for the
    /// in-memory backend, which is always compiled in.
    pub fn feature(&self) -> &'static str {
        self.feature
    }

    /// Whether this build includes it.
    pub fn is_compiled(&self) -> bool {
        self.ops.is_some()
    }

    /// The operations, when compiled in.
    pub(crate) fn ops(&self) -> Option<&'static Ops> {
        self.ops
    }

    const fn compiled<R: Row>(name: &'static str, feature: &'static str) -> Driver {
        Driver { name, feature, ops: Some(R::OPS) }
    }

    #[cfg_attr(all(feature = "redis", feature = "postgres", feature = "dynamodb"), allow(dead_code))]
    const fn not_compiled(name: &'static str, feature: &'static str) -> Driver {
        Driver { name, feature, ops: None }
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("name", &self.name)
            .field("feature", &self.feature)
            .field("compiled", &self.is_compiled())
            .finish()
    }
}

/// Every backend statekit knows, compiled into this build or not.
///
/// ```
/// let names: Vec<&str> = statekit::drivers().map(|d| d.name()).collect();
/// assert_eq!(names, ["memory", "redis", "postgres", "dynamodb"]);
/// assert!(statekit::drivers().any(|d| d.name() == "memory" && d.is_compiled()));
/// ```
pub fn drivers() -> impl Iterator<Item = &'static Driver> {
    DRIVERS.iter().copied()
}

/// The row named `name`.
pub(crate) fn find(name: &str) -> Option<&'static Driver> {
    drivers().find(|driver| driver.name == name)
}

/// A backend's config behind its row-independent type.
pub(crate) type Settings = Arc<dyn BackendConfig>;

/// The future of a row's operation.
type Pending<T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send>>;

/// A compiled-in row's operations, type-erased so every row has one type.
/// Built once per row by [`Row::OPS`] from the generic functions below.
pub struct Ops {
    /// The `[state]` fields of the backend's config type.
    pub(crate) fields: fn() -> &'static [&'static str],
    /// Deserializes (and validates) the backend's config.
    pub(crate) parse: fn(Fields) -> Result<Settings, FieldError>,
    /// Opens a store, then creates what is missing (`true`) or checks what
    /// exists (`false`).
    pub(crate) connect: fn(Settings, bool) -> Pending<Backend>,
    /// Opens a store and creates what is missing; says what it did.
    pub(crate) migrate: fn(Settings) -> Pending<String>,
    /// The server's URL, if the backend has a server.
    pub(crate) server_url: fn(&Settings) -> Option<String>,
    /// The config against another URL, with fault-proxy timeouts.
    pub(crate) through: fn(&Settings, String) -> Option<Settings>,
}

/// What a backend's row provides, implemented on its config type.
pub(crate) trait Row: DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static {
    /// The row's `static`.
    const DRIVER: &'static Driver;
    /// The store the config opens.
    type Store: StateStore + LockService + ScheduleService + 'static;

    /// Opens a store (connecting where there is a server), creating nothing.
    fn open(self) -> impl Future<Output = Result<Self::Store, StateError>> + Send;

    /// Creates or upgrades what the store needs, idempotently; a sentence
    /// saying what it did.
    fn create(store: &Self::Store) -> impl Future<Output = Result<String, StateError>> + Send;

    /// The URL of the server the config names, if the backend has one.
    fn server_url(&self) -> Option<&str> {
        None
    }

    /// The same config against `url` instead, with the short timeouts a
    /// fault proxy needs (operations caught in a fault give up while it
    /// lasts); `None` when the config reaches its data through more than
    /// the one server it names, which one proxy cannot front.
    fn through(&self, url: String) -> Option<Self> {
        let _ = url;
        None
    }

    /// Checks, without changing anything, that what the store needs exists
    /// (where the backend can tell; by default nothing is checked).
    fn verify(store: &Self::Store) -> impl Future<Output = Result<(), StateError>> + Send {
        let _ = store;
        async { Ok(()) }
    }

    /// The row's operations.
    const OPS: &'static Ops = &Ops {
        fields: field_names::<Self>,
        parse: parse::<Self>,
        connect: connect::<Self>,
        migrate: migrate::<Self>,
        server_url: server_url::<Self>,
        through: through::<Self>,
    };
}

fn parse<R: Row>(fields: Fields) -> Result<Settings, FieldError> {
    Ok(Arc::new(R::deserialize(fields)?))
}

/// The one connect: open, then create what is missing or check what exists,
/// the same way for every backend.
fn connect<R: Row>(config: Settings, create: bool) -> Pending<Backend> {
    Box::pin(async move {
        let store = typed::<R>(&config)?.open().await?;
        if create {
            R::create(&store).await?;
        } else {
            R::verify(&store).await?;
        }
        let store = Arc::new(store);
        Ok(Backend::new(store.clone(), store.clone()).with_schedules(store))
    })
}

fn server_url<R: Row>(config: &Settings) -> Option<String> {
    typed::<R>(config).ok()?.server_url().map(str::to_owned)
}

fn through<R: Row>(config: &Settings, url: String) -> Option<Settings> {
    let through: Settings = Arc::new(typed::<R>(config).ok()?.through(url)?);
    Some(through)
}

fn migrate<R: Row>(config: Settings) -> Pending<String> {
    Box::pin(async move {
        let store = typed::<R>(&config)?.open().await?;
        R::create(&store).await
    })
}

/// The config as its row's type. A [`Config`](crate::Config) always pairs a
/// row's operations with that row's config, so the error is unreachable;
/// it exists so that a mistake here is an error, not a panic.
fn typed<R: Row>(config: &Settings) -> Result<R, StateError> {
    let config: &dyn Any = config.as_ref();
    config
        .downcast_ref::<R>()
        .cloned()
        .ok_or_else(|| StateError::invalid_argument("config", "the config does not belong to this backend"))
}

/// The config type of a backend statekit can connect to:
/// [`MemoryConfig`](crate::MemoryConfig) and, behind their features,
/// `RedisConfig`, `PostgresConfig` and `DynamoConfig`. Sealed: a new
/// backend joins through a row of the driver table.
pub trait BackendConfig: Any + fmt::Debug + Send + Sync + sealed::Sealed {}

impl<R: Row> BackendConfig for R {}

pub(crate) mod sealed {
    use super::{Driver, Ops, Row};

    /// Ties a config type to its row.
    pub trait Sealed {
        /// The row and its operations.
        fn row() -> (&'static Driver, &'static Ops)
        where
            Self: Sized;
    }

    impl<R: Row> Sealed for R {
        fn row() -> (&'static Driver, &'static Ops) {
            (R::DRIVER, R::OPS)
        }
    }
}
