//! The tracing span every operation runs in.

/// The span for one operation: `statekit` with the backend, operation and
/// space as fields. Values, ids and secrets are never recorded, so state
/// traffic can be traced in production without leaking data.
pub fn operation_span(backend: &'static str, operation: &'static str, space: &str) -> tracing::Span {
    tracing::debug_span!("statekit", backend, operation, space)
}
