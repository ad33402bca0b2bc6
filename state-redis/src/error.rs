//! Mapping Redis client errors to the contract's [`StateError`].
//!
//! The rule: anything that says "the server could not be reached or the
//! connection broke" is [`StateError::Unavailable`] (retryable), anything
//! that says "it took too long" is [`StateError::Timeout`], a server that is
//! temporarily unable to serve (loading its dataset, cluster reconfiguring)
//! is `Unavailable` too (so is a cluster redirection the store stopped
//! following at its command timeout), and everything else is a non-retryable
//! [`StateError::Backend`]. The Redis error is kept as the source. Messages
//! are the operation name and the client's error text, which never quotes
//! the connection URL, so no password can reach them.

use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind};
use state_api::StateError;

use crate::BACKEND;

/// Maps an error from `operation`, whose time limit was `limit`.
pub(crate) fn from_redis(operation: &'static str, limit: Duration, error: RedisError) -> StateError {
    if error.is_timeout() {
        return StateError::timed_out(operation, limit);
    }
    let kind = error.kind();
    let transient = matches!(
        kind,
        ErrorKind::Io
            // A cluster node the client could not reach.
            | ErrorKind::ClusterConnectionNotFound
            | ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    // A redirection the store gave up following at its
                    // command timeout (a failover or a slot migration
                    // under way for that long).
                    | ServerErrorKind::Moved
                    | ServerErrorKind::Ask
            )
    ) || error.is_connection_dropped()
        || error.is_connection_refusal();
    // The client's own text: socket errors, server error replies. It never
    // quotes the connection URL, and no script puts a value in an error.
    let message = format!("{operation}: {error}");
    if transient {
        return StateError::unavailable(BACKEND, message, error);
    }
    // A replica promoted away from under us answers READONLY until the
    // client reconnects to the new primary: worth retrying.
    let retryable = matches!(kind, ErrorKind::Server(ServerErrorKind::ReadOnly));
    StateError::backend(BACKEND, message, retryable, error)
}

/// The error for a reply whose shape no script of this crate produces: a
/// server or proxy that does not behave like Redis, or a key this store
/// owns overwritten by someone else.
pub(crate) fn unexpected_reply(operation: &'static str, what: &str) -> StateError {
    StateError::unexpected_reply(BACKEND, operation, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_failures_are_unavailable_and_retryable() {
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let error = from_redis("get", Duration::from_secs(1), refused);
        assert!(matches!(error, StateError::Unavailable { .. }) && error.is_retryable(), "{error:?}");
        assert!(std::error::Error::source(&error).is_some(), "the source is kept");
    }

    #[test]
    fn io_timeouts_are_timeouts() {
        let slow = RedisError::from(std::io::Error::from(std::io::ErrorKind::TimedOut));
        let error = from_redis("put", Duration::from_millis(250), slow);
        assert!(matches!(error, StateError::Timeout { operation: "put", after } if after.as_millis() == 250));
    }

    #[test]
    fn a_cluster_redirection_left_unfollowed_is_unavailable() {
        for kind in [ServerErrorKind::Moved, ServerErrorKind::Ask, ServerErrorKind::TryAgain] {
            let error =
                from_redis("put", Duration::from_secs(1), RedisError::from((ErrorKind::Server(kind), "cluster")));
            assert!(matches!(error, StateError::Unavailable { .. }) && error.is_retryable(), "{error:?}");
        }
    }

    #[test]
    fn a_cluster_node_out_of_reach_is_unavailable() {
        let lost = RedisError::from((ErrorKind::ClusterConnectionNotFound, "No connections found"));
        let error = from_redis("acquire", Duration::from_secs(1), lost);
        assert!(matches!(error, StateError::Unavailable { .. }) && error.is_retryable(), "{error:?}");
    }

    #[test]
    fn other_errors_are_backend_errors() {
        let error = from_redis("put", Duration::from_secs(1), RedisError::from((ErrorKind::Client, "bad")));
        assert!(matches!(error, StateError::Backend { retryable: false, .. }), "{error:?}");
    }
}
