//! The store's connection pool: deadpool's managed pool of sqlx
//! `PgConnection`s, recycled without a ping.
//!
//! Why not `sqlx::PgPool`: it pings every connection when it is returned
//! (and, by default, again before it is handed out), so each one-statement
//! operation costs two or three round trips instead of one; measured
//! against `pgbench`, that halved throughput. Here a connection goes back
//! without a ping *when the operation proved it healthy* (it completed, or
//! the server answered with an error), and is detached and closed
//! otherwise: after an I/O error, or when the operation was cancelled
//! mid-statement (its protocol state is then unknown). A connection that sat
//! idle for a while is pinged before reuse, since a server restart or a
//! middlebox may have closed it meanwhile.
//!
//! Why deadpool rather than a pool of our own: the store used to keep a
//! hand-written pool (a semaphore and a stack of idle connections) with
//! exactly these rules. `postgres_vs_pgbench` ran both builds alternately,
//! five times each, on a loaded 2-core machine; the medians of the
//! statekit ÷ pgbench ratios (hand-written → deadpool) were
//! `check_and_set` 0.85 → 0.82 and 0.80 → 0.77, `get` 0.75 → 0.75 and
//! 0.82 → 0.76, `compare_and_swap` 0.81 → 0.82 and 0.88 → 0.90 (multi-thread
//! runtime, then 2 × current-thread), while single runs of one build
//! spread by 0.1 to 0.2. The pool is nanoseconds of bookkeeping beside a
//! round trip: a tie, and at equal speed a maintained crate beats code of
//! our own.
//!
//! Waiting for a free connection, recycling an idle one and opening a new
//! one share one deadline, the connect timeout; past it the caller gets
//! `PoolTimedOut`, which the store reports as `Unavailable`.

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, PoolError, QueueMode, RecycleResult};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow, Postgres};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection};

/// A statement with its parameters bound.
pub(crate) type Statement<'q> = Query<'q, Postgres, PgArguments>;

/// A connection idle for longer than this is pinged before it is reused.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

pub(crate) struct ConnectionPool {
    pool: managed::Pool<Connector>,
    connect_timeout: Duration,
}

/// Opens the pool's connections and decides, without a round trip, whether
/// an idle one may be reused.
struct Connector {
    options: PgConnectOptions,
}

impl managed::Manager for Connector {
    type Type = PgConnection;
    type Error = sqlx::Error;

    /// Opens a connection, retrying while the server refuses connections
    /// or is starting up. [`ConnectionPool::acquire`]'s deadline ends the
    /// retries.
    async fn create(&self) -> Result<PgConnection, sqlx::Error> {
        let mut delay = Duration::from_millis(10);
        loop {
            match self.options.connect().await {
                Ok(connection) => return Ok(connection),
                Err(error) if is_transient(&error) => {}
                Err(error) => return Err(error),
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }

    /// A connection comes back only after an operation proved it healthy
    /// (see [`Pooled::release`]), so a recently used one is reused as is;
    /// one idle for longer than [`PING_AFTER_IDLE`] is pinged first, and
    /// the pool drops it (and tries the next) if the ping fails.
    async fn recycle(&self, connection: &mut PgConnection, metrics: &Metrics) -> RecycleResult<sqlx::Error> {
        // `last_used` counts from when the connection was last handed out;
        // operations take milliseconds, so that is when it was returned.
        if metrics.last_used() < PING_AFTER_IDLE {
            return Ok(());
        }
        Ok(connection.ping().await?)
    }
}

/// A connection lent to one operation. Give it back with
/// [`Pooled::release`]; dropping it instead (a cancelled operation) closes
/// the connection, whose protocol state is then unknown.
pub(crate) struct Pooled<'p> {
    /// `None` only once released.
    connection: Option<Object<Connector>>,
    pool: &'p ConnectionPool,
}

impl ConnectionPool {
    /// A pool of at most `size` connections. deadpool reserves a slot per
    /// connection up front, hence [`PostgresConfig::LIMIT_POOL_SIZE`]
    /// (checked before this is called).
    ///
    /// [`PostgresConfig::LIMIT_POOL_SIZE`]: crate::PostgresConfig::LIMIT_POOL_SIZE
    ///
    /// # Errors
    /// `Configuration` if deadpool refuses the settings (it refuses only
    /// timeouts without a runtime, which this pool does not set).
    pub(crate) fn new(
        options: PgConnectOptions,
        size: u32,
        connect_timeout: Duration,
    ) -> Result<ConnectionPool, sqlx::Error> {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let pool = managed::Pool::builder(Connector { options })
            .max_size(size)
            // Most recently used first, so busy periods reuse warm connections.
            .queue_mode(QueueMode::Lifo)
            .build()
            .map_err(|error| sqlx::Error::Configuration(error.into()))?;
        Ok(ConnectionPool { pool, connect_timeout })
    }

    /// A connection: an idle one, or a new one.
    ///
    /// # Errors
    /// `PoolTimedOut` if none is free and none could be opened within the
    /// connect timeout; the connection error if the server refused us for
    /// a reason that waiting will not fix (credentials, unknown database).
    pub(crate) async fn acquire(&self) -> Result<Pooled<'_>, sqlx::Error> {
        // One deadline over waiting, recycling and opening: deadpool's own
        // timeouts would bound each step separately.
        match tokio::time::timeout(self.connect_timeout, self.pool.get()).await {
            Ok(Ok(connection)) => Ok(Pooled { connection: Some(connection), pool: self }),
            Ok(Err(PoolError::Backend(error))) => Err(error),
            // The pool has no timeouts, hooks or `close` call of its own: a
            // timeout is the only other way here.
            Ok(Err(_)) | Err(_) => Err(sqlx::Error::PoolTimedOut),
        }
    }

    /// Runs one statement on a pooled connection: at most one row.
    pub(crate) async fn fetch_optional(&self, query: Statement<'_>) -> Result<Option<PgRow>, sqlx::Error> {
        let mut pooled = self.acquire().await?;
        let result = query.fetch_optional(pooled.connection()?).await;
        pooled.release(&result);
        result
    }

    /// Runs one statement on a pooled connection: exactly one row.
    pub(crate) async fn fetch_one(&self, query: Statement<'_>) -> Result<PgRow, sqlx::Error> {
        let mut pooled = self.acquire().await?;
        let result = query.fetch_one(pooled.connection()?).await;
        pooled.release(&result);
        result
    }

    /// Runs one statement on a pooled connection: every row.
    pub(crate) async fn fetch_all(&self, query: Statement<'_>) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut pooled = self.acquire().await?;
        let result = query.fetch_all(pooled.connection()?).await;
        pooled.release(&result);
        result
    }
}

/// A connection failure that waiting can fix: refused (server down or
/// restarting), starting up, or momentarily out of connection slots.
fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        sqlx::Error::Database(db) => db.is_transient_in_connect_phase(),
        _ => false,
    }
}

impl Pooled<'_> {
    /// The lent connection.
    ///
    /// # Errors
    /// None in practice: the connection is there until `release` consumes
    /// the loan. (`PoolClosed` stands for the impossible case, so that no
    /// code path can panic.)
    pub(crate) fn connection(&mut self) -> Result<&mut PgConnection, sqlx::Error> {
        self.connection.as_deref_mut().ok_or(sqlx::Error::PoolClosed)
    }

    /// Ends the loan after an operation that ended with `result`.
    ///
    /// After a completed statement, or an error the server reported while
    /// keeping the session (the protocol then ran to its end), the
    /// connection goes back to the pool. Otherwise it is closed; and since a
    /// failed connection usually means the server went away (a restart),
    /// the idle connections are closed too, so the next operations open
    /// fresh ones instead of each failing once on a dead socket.
    pub(crate) fn release<T>(mut self, result: &Result<T, sqlx::Error>) {
        let keep = match result {
            Ok(_) => true,
            Err(sqlx::Error::Database(error)) => !ends_session(error.code().as_deref()),
            Err(_) => false,
        };
        if keep {
            // Dropping the object returns it to the pool.
            drop(self.connection.take());
        } else {
            // `Drop` detaches this one; the idle ones go now.
            drop(self.pool.pool.retain(|_, _| false));
        }
    }
}

impl Drop for Pooled<'_> {
    /// A loan not released (cancelled, or ended by an error that lost the
    /// session): detach the connection from the pool and close it.
    fn drop(&mut self) {
        if let Some(connection) = self.connection.take() {
            drop(Object::take(connection));
        }
    }
}

/// Server errors after which the server closes the session: shutdowns and
/// the connection-exception class (FATAL errors).
fn ends_session(code: Option<&str>) -> bool {
    code.is_some_and(|code| code.starts_with("57P") || code.starts_with("08"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A one-connection pool on a private server (or the external one), so
    /// that consecutive operations would share a connection if the pool
    /// kept it.
    fn one_connection_pool(server: &test_servers::Server) -> ConnectionPool {
        let options: PgConnectOptions = server.url().parse().unwrap();
        ConnectionPool::new(options, 1, Duration::from_secs(5)).unwrap()
    }

    /// The server process behind the connection the next operation gets.
    async fn backend_pid(pool: &ConnectionPool) -> i32 {
        let row = pool.fetch_one(sqlx::query("SELECT pg_backend_pid()")).await.unwrap();
        sqlx::Row::try_get(&row, 0).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_is_reused_after_success_and_after_a_server_reported_error() {
        let server = test_servers::postgres::postgres().expect("a PostgreSQL server");
        let pool = one_connection_pool(&server);
        let first = backend_pid(&pool).await;
        assert_eq!(backend_pid(&pool).await, first, "a healthy connection was not reused");
        let error = pool.fetch_one(sqlx::query("SELECT 1 / 0")).await.unwrap_err();
        assert!(matches!(error, sqlx::Error::Database(_)), "{error:?}");
        assert_eq!(backend_pid(&pool).await, first, "a division by zero cost the connection");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_cancelled_mid_statement_is_never_reused() {
        let server = test_servers::postgres::postgres().expect("a PostgreSQL server");
        let pool = one_connection_pool(&server);
        let first = backend_pid(&pool).await;
        let sleep = pool.fetch_one(sqlx::query("SELECT pg_sleep(2)"));
        assert!(tokio::time::timeout(Duration::from_millis(100), sleep).await.is_err(), "pg_sleep(2) returned");
        assert_ne!(backend_pid(&pool).await, first, "the cancelled statement's connection was lent again");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fatal_error_closes_the_connection() {
        let server = test_servers::postgres::postgres().expect("a PostgreSQL server");
        let pool = one_connection_pool(&server);
        let first = backend_pid(&pool).await;
        // The session ends itself: FATAL 57P01 (admin shutdown).
        let error = pool.fetch_one(sqlx::query("SELECT pg_terminate_backend(pg_backend_pid())")).await.unwrap_err();
        assert!(!matches!(error, sqlx::Error::PoolTimedOut), "{error:?}");
        assert_ne!(backend_pid(&pool).await, first, "a terminated session was lent again");
    }

    #[test]
    fn fatal_errors_end_the_session() {
        for code in ["57P01", "57P02", "57P03", "08006", "08P01"] {
            assert!(ends_session(Some(code)), "{code}");
        }
        for code in [Some("23505"), Some("40001"), Some("57014"), None] {
            assert!(!ends_session(code), "{code:?}");
        }
    }
}
