//! Mapping sqlx and PostgreSQL errors to the contract's [`StateError`].
//!
//! The mapping decides what a caller may retry: a server that cannot be
//! reached is [`StateError::Unavailable`], a cancelled statement is
//! [`StateError::Timeout`], a serialization failure or deadlock is a
//! retryable [`StateError::Backend`]; everything else is a non-retryable
//! `Backend` error. The sqlx error is kept as the source. Neither sqlx's
//! messages nor ours contain the connection URL, so no password can leak.

use std::time::Duration;

use state_api::StateError;

use crate::BACKEND;

/// What went wrong and how long the statement was allowed, for the
/// [`StateError::Timeout`] of a cancelled statement.
pub(crate) fn map_sqlx(operation: &'static str, statement_timeout: Duration, error: sqlx::Error) -> StateError {
    match &error {
        sqlx::Error::PoolTimedOut => StateError::unavailable(
            BACKEND,
            format!("{operation}: no connection to the server within the connect timeout"),
            error,
        ),
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => {
            StateError::unavailable(BACKEND, format!("{operation}: the connection to the server failed"), error)
        }
        sqlx::Error::Tls(_) => StateError::backend(BACKEND, format!("{operation}: TLS failed"), false, error),
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            map_sqlstate(operation, statement_timeout, &code, error)
        }
        _ => StateError::backend(BACKEND, format!("{operation}: {error}"), false, error),
    }
}

/// Classifies a server error by its SQLSTATE
/// (<https://www.postgresql.org/docs/current/errcodes-appendix.html>).
fn map_sqlstate(operation: &'static str, statement_timeout: Duration, code: &str, error: sqlx::Error) -> StateError {
    match code {
        // query_canceled: what statement_timeout raises.
        "57014" => StateError::Timeout { operation, after: statement_timeout },
        // serialization_failure, deadlock_detected, lock_not_available: the
        // same call can succeed once the other transaction is done.
        "40001" | "40P01" | "55P03" => {
            StateError::backend(BACKEND, format!("{operation}: transient conflict ({code})"), true, error)
        }
        // admin_shutdown, crash_shutdown, cannot_connect_now,
        // too_many_connections, and the connection_exception class: the
        // server is going away, starting up or full.
        "57P01" | "57P02" | "57P03" | "53300" => {
            StateError::unavailable(BACKEND, format!("{operation}: the server is not accepting work ({code})"), error)
        }
        c if c.starts_with("08") => {
            StateError::unavailable(BACKEND, format!("{operation}: connection failure ({code})"), error)
        }
        // undefined_table / undefined_schema: the store was not migrated.
        "42P01" | "3F000" => StateError::backend(
            BACKEND,
            format!("{operation}: the statekit tables do not exist; run PostgresStore::migrate ({code})"),
            false,
            error,
        ),
        _ => StateError::backend(BACKEND, format!("{operation}: {error}"), false, error),
    }
}

/// A result the statements' own logic rules out (a decoded column of the
/// wrong shape): a bug or a schema changed under us, not retryable.
pub(crate) fn unexpected(operation: &'static str, what: impl Into<String>) -> StateError {
    StateError::failed(BACKEND, format!("{operation}: {}", what.into()), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_and_io_failures_are_retryable() {
        let timeout = Duration::from_secs(1);
        let pool = map_sqlx("get", timeout, sqlx::Error::PoolTimedOut);
        assert!(matches!(pool, StateError::Unavailable { .. }) && pool.is_retryable());
        let io = map_sqlx("get", timeout, sqlx::Error::Io(std::io::Error::other("reset")));
        assert!(matches!(io, StateError::Unavailable { .. }) && io.is_retryable());
    }

    #[test]
    fn sqlstates_are_classified() {
        let timeout = Duration::from_millis(250);
        let other = || sqlx::Error::Protocol("x".into());
        assert!(matches!(
            map_sqlstate("put", timeout, "57014", other()),
            StateError::Timeout { operation: "put", after } if after == timeout
        ));
        assert!(map_sqlstate("put", timeout, "40001", other()).is_retryable());
        assert!(map_sqlstate("put", timeout, "40P01", other()).is_retryable());
        assert!(matches!(map_sqlstate("put", timeout, "08006", other()), StateError::Unavailable { .. }));
        assert!(matches!(map_sqlstate("put", timeout, "57P01", other()), StateError::Unavailable { .. }));
        let missing = map_sqlstate("put", timeout, "42P01", other());
        assert!(!missing.is_retryable() && missing.to_string().contains("migrate"));
        assert!(!map_sqlstate("put", timeout, "22P02", other()).is_retryable());
    }
}
