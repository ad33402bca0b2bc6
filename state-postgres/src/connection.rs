//! The store's connection pool: a bounded set of sqlx `PgConnection`s.
//!
//! Why not `sqlx::PgPool`: it pings every connection when it is returned
//! (and, by default, again before it is handed out), so each one-statement
//! operation costs two or three round trips instead of one; measured
//! against `pgbench`, that halved throughput. This pool hands a connection
//! back without a ping *when the operation proved it healthy* (it
//! completed, or the server answered with an error), and drops it
//! otherwise: after an I/O error, or when the operation was cancelled
//! mid-statement (its protocol state is then unknown). A connection that sat
//! idle for a while is pinged before reuse, since a server restart or a
//! middlebox may have closed it meanwhile.
//!
//! Waiting for a free connection and opening a new one share one deadline,
//! the connect timeout; past it the caller gets `PoolTimedOut`, which the
//! store reports as `Unavailable`.

use std::time::Duration;

use parking_lot::Mutex;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgRow, Postgres};
use sqlx::query::Query;
use sqlx::{ConnectOptions, Connection};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// A statement with its parameters bound.
pub(crate) type Statement<'q> = Query<'q, Postgres, PgArguments>;

/// A connection idle for longer than this is pinged before it is reused.
const PING_AFTER_IDLE: Duration = Duration::from_secs(30);

pub(crate) struct ConnectionPool {
    options: PgConnectOptions,
    connect_timeout: Duration,
    /// One permit per connection that may exist, idle or in use.
    permits: Semaphore,
    /// Most recently used last, so busy periods reuse warm connections.
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    connection: PgConnection,
    since: Instant,
}

/// A connection lent to one operation. Give it back with
/// [`Pooled::release`]; dropping it instead (a cancelled operation) closes
/// the connection, whose protocol state is then unknown.
pub(crate) struct Pooled<'p> {
    pub(crate) connection: PgConnection,
    pool: &'p ConnectionPool,
    _permit: SemaphorePermit<'p>,
}

impl ConnectionPool {
    pub(crate) fn new(options: PgConnectOptions, size: u32, connect_timeout: Duration) -> ConnectionPool {
        let size = usize::try_from(size).unwrap_or(usize::MAX).min(Semaphore::MAX_PERMITS);
        ConnectionPool { options, connect_timeout, permits: Semaphore::new(size), idle: Mutex::new(Vec::new()) }
    }

    /// A connection: an idle one, or a new one.
    ///
    /// # Errors
    /// `PoolTimedOut` if none is free and none could be opened within the
    /// connect timeout; the connection error if the server refused us for
    /// a reason that waiting will not fix (credentials, unknown database).
    pub(crate) async fn acquire(&self) -> Result<Pooled<'_>, sqlx::Error> {
        let deadline = Instant::now() + self.connect_timeout;
        let permit = match tokio::time::timeout_at(deadline, self.permits.acquire()).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; a timeout is the only way here.
            Ok(Err(_)) | Err(_) => return Err(sqlx::Error::PoolTimedOut),
        };
        while let Some(idle) = self.pop_idle() {
            let mut connection = idle.connection;
            let fresh = idle.since.elapsed() < PING_AFTER_IDLE;
            if fresh || matches!(tokio::time::timeout_at(deadline, connection.ping()).await, Ok(Ok(()))) {
                return Ok(self.lend(connection, permit));
            }
            // Dead (or silent) after a long idle: drop it and try the next.
        }
        let connection = self.connect(deadline).await?;
        Ok(self.lend(connection, permit))
    }

    /// Runs one statement on a pooled connection: at most one row.
    pub(crate) async fn fetch_optional(&self, query: Statement<'_>) -> Result<Option<PgRow>, sqlx::Error> {
        let mut pooled = self.acquire().await?;
        let result = query.fetch_optional(&mut pooled.connection).await;
        pooled.release(&result);
        result
    }

    /// Runs one statement on a pooled connection: exactly one row.
    pub(crate) async fn fetch_one(&self, query: Statement<'_>) -> Result<PgRow, sqlx::Error> {
        let mut pooled = self.acquire().await?;
        let result = query.fetch_one(&mut pooled.connection).await;
        pooled.release(&result);
        result
    }

    /// Runs one statement on a pooled connection: every row.
    pub(crate) async fn fetch_all(&self, query: Statement<'_>) -> Result<Vec<PgRow>, sqlx::Error> {
        let mut pooled = self.acquire().await?;
        let result = query.fetch_all(&mut pooled.connection).await;
        pooled.release(&result);
        result
    }

    fn lend<'p>(&'p self, connection: PgConnection, permit: SemaphorePermit<'p>) -> Pooled<'p> {
        Pooled { connection, pool: self, _permit: permit }
    }

    fn pop_idle(&self) -> Option<Idle> {
        // The lock is never held across an await.
        self.idle.lock().pop()
    }

    /// Opens a connection, retrying while the server refuses connections
    /// or is starting up, until `deadline`.
    async fn connect(&self, deadline: Instant) -> Result<PgConnection, sqlx::Error> {
        let mut delay = Duration::from_millis(10);
        loop {
            match tokio::time::timeout_at(deadline, self.options.connect()).await {
                Ok(Ok(connection)) => return Ok(connection),
                Ok(Err(error)) if is_transient(&error) => {}
                Ok(Err(error)) => return Err(error),
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(sqlx::Error::PoolTimedOut);
            }
            tokio::time::sleep(delay.min(deadline - now)).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
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
    /// Ends the loan after an operation that ended with `result`.
    ///
    /// After a completed statement, or an error the server reported while
    /// keeping the session (the protocol then ran to its end), the
    /// connection goes back to the pool. Otherwise it is closed; and since a
    /// failed connection usually means the server went away (a restart),
    /// the idle connections are closed too, so the next operations open
    /// fresh ones instead of each failing once on a dead socket.
    pub(crate) fn release<T>(self, result: &Result<T, sqlx::Error>) {
        let mut idle = self.pool.idle.lock();
        match result {
            Ok(_) => idle.push(Idle { connection: self.connection, since: Instant::now() }),
            Err(sqlx::Error::Database(error)) if !ends_session(error.code().as_deref()) => {
                idle.push(Idle { connection: self.connection, since: Instant::now() });
            }
            Err(_) => idle.clear(),
        }
        // The permit is released last, once the connection is back.
    }
}

/// Server errors after which the server closes the session: shutdowns and
/// the connection-exception class (FATAL errors).
fn ends_session(code: Option<&str>) -> bool {
    code.is_some_and(|code| code.starts_with("57P") || code.starts_with("08"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
