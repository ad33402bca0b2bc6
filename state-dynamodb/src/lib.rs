//! # state-dynamodb: the statekit contract on DynamoDB
//!
//! [`DynamoStore`] implements [`StateStore`](state_api::StateStore) and
//! [`LockService`](state_api::LockService) exactly as
//! [`state_api::contract`] specifies, on one DynamoDB table, with
//! `aws-sdk-dynamodb`. It is the backend for AWS-native and serverless
//! deployments: managed, strongly consistent state, with mutual exclusion
//! through conditional writes. The conformance kit runs against Amazon's
//! DynamoDB Local in this crate's tests.
//!
//! How the contract maps onto DynamoDB:
//!
//! - **Table.** Partition key `space`, sort key `id` (both strings, so the
//!   key encoding is the identity and scans come back in byte order),
//!   on-demand billing, created by the explicit, idempotent
//!   [`DynamoStore::migrate`]. [`DynamoStore::connect`] checks the key
//!   schema and names any difference.
//! - **Atomicity.** Every operation is one conditional request
//!   (`PutItem`, `UpdateItem`, `DeleteItem`) whose condition is the
//!   contract's precondition, evaluated and applied by DynamoDB in one step
//!   on one item. A failed condition returns the current item through
//!   `ReturnValuesOnConditionCheckFailure`, never a second read. The one
//!   state a single expression cannot handle — an expired item still
//!   stored, whose version must restart at 1 — takes a second conditional
//!   request, and a failed request changes nothing, so the operation is
//!   still linearizable (see the `store` module).
//! - **Reads** (`get`, `scan`, `is_held`) use `ConsistentRead`.
//! - **Expiry.** Each item keeps its deadline in epoch milliseconds (`exp`),
//!   compared with the client's clock in every condition and read, plus an
//!   epoch-seconds copy (`ttl`) for DynamoDB's TTL reaper, which only frees
//!   storage. The clock is the client's: the declared
//!   [`ExpiryClock::Client`] skew bound is
//!   [`DynamoConfig::with_max_clock_skew`] (100 ms by default).
//! - **Counters** are stored as DynamoDB numbers, so `increment` is one
//!   `UpdateItem` with the `i64` bounds in its condition; `get` returns the
//!   canonical decimal text, like any value.
//! - **Scans** are `Query` on the space with `begins_with` on the id,
//!   paginated by the last evaluated id as the cursor.
//! - **Locks** are items under a partition key no entry can have, with the
//!   owner, the lease deadline, and a fencing counter that survives expiry
//!   and release.
//! - **Retries.** Throttling is retried by the SDK; a write that may have
//!   been applied (timeout, network or server error) is not retried but
//!   reported as `Timeout` / `Unavailable`, which the contract defines as
//!   indeterminate.
//!
//! Limits: values up to [`DynamoStore::MAX_VALUE_LEN`] bytes (DynamoDB's
//! 400 KB item limit minus the key and attributes), checked before any
//! request.
//!
//! ```no_run
//! # async fn example() -> Result<(), state_api::StateError> {
//! use std::time::Duration;
//! use state_api::{Key, LockService, StateStore};
//! use state_dynamodb::{DynamoConfig, DynamoStore};
//!
//! // Region and credentials from the AWS chain; the table from the config.
//! let config = DynamoConfig::new().with_table_name("myapp_state");
//! let store = DynamoStore::open(config).await?;
//! store.migrate().await?; // once, at deploy time; idempotent
//!
//! let key = Key::new("dedup", "message-81")?;
//! if store.check_and_set(&key, "seen".into(), Some(Duration::from_secs(3600))).await? {
//!     // The first delivery of this message.
//! }
//!
//! let lease = store.acquire("nightly-report", Duration::from_secs(30), Duration::from_secs(5)).await?;
//! // ... work, passing lease.token() to whatever the lock protects ...
//! store.release(&lease).await?;
//! # Ok(()) }
//! ```

#![doc(html_no_source)]

mod clock;
mod config;
mod connection;
mod error;
mod fence;
mod item;
mod lock;
mod schedule;
mod schema;
mod statements;
mod store;

use std::sync::Arc;
use std::time::Duration;

use state_api::trace::operation_span;
use state_api::{Backend, Capabilities, Durability, ExpiryClock, Features, StateError};
use tracing::Instrument;

pub use config::DynamoConfig;
pub use schema::Migration;

use connection::Clients;
use schema::Table;

/// The backend name in errors, spans and capabilities.
pub const BACKEND: &str = "dynamodb";

/// The DynamoDB store and lock service. Cloning is cheap and shares the
/// SDK clients and their connection pool.
#[derive(Clone)]
pub struct DynamoStore {
    inner: Arc<Inner>,
}

struct Inner {
    clients: Clients,
    table: String,
    operation_timeout: Duration,
    max_clock_skew: Duration,
    /// How this client's tasks take turns on a contended lock or key.
    contention: state_api::driver::Contention,
}

impl DynamoStore {
    /// The largest value `put` accepts: DynamoDB's 400 KB item limit minus
    /// 1 KiB for the key (up to 640 bytes) and the other attributes.
    pub const MAX_VALUE_LEN: usize = item::MAX_ITEM_SIZE - item::ITEM_OVERHEAD;

    /// Builds the store and checks that its table exists with statekit's
    /// key schema (one `DescribeTable`).
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] for a bad configuration; a
    /// non-retryable [`StateError::Backend`] if the table is missing
    /// ("run migrate"), has another key schema (naming the difference) or
    /// the credentials are refused; `Unavailable` or `Timeout` if DynamoDB
    /// cannot be reached.
    pub async fn connect(config: DynamoConfig) -> Result<DynamoStore, StateError> {
        let store = DynamoStore::open(config).await?;
        store.verify().await?;
        Ok(store)
    }

    /// Builds the store without sending any request (the first operation
    /// resolves credentials and connects). Use [`connect`](Self::connect)
    /// to fail fast instead.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] for a bad configuration.
    pub async fn open(config: DynamoConfig) -> Result<DynamoStore, StateError> {
        config.validate()?;
        let clients = Clients::new(&config).await;
        Ok(DynamoStore {
            inner: Arc::new(Inner {
                clients,
                table: config.table_name().to_owned(),
                operation_timeout: config.operation_timeout(),
                max_clock_skew: config.max_clock_skew(),
                contention: state_api::driver::Contention::new(),
            }),
        })
    }

    /// Checks that the table exists, is active and has statekit's key
    /// schema.
    ///
    /// # Errors
    /// As [`connect`](Self::connect).
    pub async fn verify(&self) -> Result<(), StateError> {
        self.table_ops().verify().instrument(operation_span(BACKEND, "verify", "")).await
    }

    /// Creates the table if it does not exist (on-demand billing), waits
    /// until it is active, checks its key schema, and enables DynamoDB's
    /// TTL reaper on it. Idempotent and safe to run concurrently; returns
    /// what it did.
    ///
    /// # Errors
    /// A non-retryable [`StateError::Backend`] if an existing table has
    /// another key schema or another TTL attribute, or the credentials may
    /// not manage tables; `Timeout` if the table does not become active
    /// within five minutes.
    pub async fn migrate(&self) -> Result<Migration, StateError> {
        self.table_ops().migrate().instrument(operation_span(BACKEND, "migrate", "")).await
    }

    /// The table's name.
    pub fn table_name(&self) -> &str {
        &self.inner.table
    }

    /// The underlying SDK client (standard retries), for what statekit does
    /// not cover: administration, metrics, or a benchmark's baseline.
    pub fn sdk_client(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.clients.reads
    }

    /// What errors of `operation` on this store's table are about.
    fn context(&self, operation: &'static str) -> error::Context<'_> {
        error::Context { operation, table: self.table(), timeout: self.operation_timeout() }
    }

    fn table_ops(&self) -> Table<'_> {
        Table { client: self.reads(), name: self.table(), timeout: self.operation_timeout() }
    }

    fn reads(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.clients.reads
    }

    fn writes(&self) -> &aws_sdk_dynamodb::Client {
        &self.inner.clients.writes
    }

    fn table(&self) -> &str {
        &self.inner.table
    }

    fn operation_timeout(&self) -> Duration {
        self.inner.operation_timeout
    }

    fn max_clock_skew(&self) -> Duration {
        self.inner.max_clock_skew
    }

    fn capabilities_value(&self) -> Capabilities {
        let capabilities =
            Capabilities::new(BACKEND, Self::MAX_VALUE_LEN, ExpiryClock::Client { max_skew: self.max_clock_skew() });
        // DynamoDB cannot announce a release: waiters poll.
        let features = Features { lock_wakeups: false, ..capabilities.features };
        // DynamoDB acknowledges a write once it is stored durably (AWS).
        // DynamoDB Local keeps that promise only with `-dbPath`; with
        // `-inMemory` it forgets everything when it stops.
        capabilities.with_features(features).with_durability(Durability::Durable)
    }
}

impl std::fmt::Debug for DynamoStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynamoStore").field("table", &self.inner.table).finish_non_exhaustive()
    }
}

/// Connects, creates the table if it is missing (idempotent, as
/// [`DynamoStore::migrate`]), and returns the store as a [`Backend`]. Every
/// backend crate's `backend()` does the same: connect and create what is
/// missing, like `statekit::connect` by default.
///
/// # Errors
/// As [`DynamoStore::open`] and [`DynamoStore::migrate`].
pub async fn backend(config: DynamoConfig) -> Result<Backend, StateError> {
    let store = DynamoStore::open(config).await?;
    store.migrate().await?;
    let store = Arc::new(store);
    Ok(Backend::new(store.clone(), store.clone()).with_schedules(store))
}
