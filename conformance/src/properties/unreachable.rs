//! Unreachable endpoints: connecting to an endpoint where nothing listens
//! fails with a retryable [`StateError::Unavailable`] within the connect
//! timeout (plus a tolerance), and no error reveals the configuration's
//! secret. Runs when the test factory provides an
//! [`Unreachable`](crate::Unreachable) probe.

use std::time::Duration;

use state_api::{Key, StateError};
use tokio::time::Instant;

use crate::kit::{Context, Failure, Outcome};

/// Time allowed beyond the connect timeout for the failure to arrive.
const TOLERANCE: Duration = Duration::from_secs(1);

/// Runs the property with the context's probe.
pub async fn run(cx: &Context) -> Outcome {
    let Some(probe) = cx.unreachable() else {
        return Err(Failure("the unreachable-endpoint property ran without a probe".to_owned()));
    };
    let bound = probe.connect_timeout() + TOLERANCE;
    let started = Instant::now();
    let mut failures = Vec::new();
    let error = match tokio::time::timeout(bound, probe.connect()).await {
        Err(_) => return Err(Failure(format!("connecting to an unreachable endpoint did not fail within {bound:?}"))),
        Ok(Err(error)) => error,
        // A backend that connects lazily fails at its first operation.
        Ok(Ok(backend)) => {
            let key = Key::new(&cx.space("unreachable"), "k")?;
            match tokio::time::timeout(bound.saturating_sub(started.elapsed()), backend.store.get(&key)).await {
                Err(_) => {
                    return Err(Failure(format!(
                        "connect to an unreachable endpoint succeeded and its first get did not fail within {bound:?}"
                    )));
                }
                Ok(Ok(found)) => {
                    return Err(Failure(format!("a get through an unreachable endpoint answered {found:?}")));
                }
                Ok(Err(error)) => error,
            }
        }
    };
    let took = started.elapsed();
    if !matches!(error, StateError::Unavailable { .. }) || !error.is_retryable() {
        failures.push(format!("expected a retryable Unavailable, got {error:?}"));
    }
    if took > bound {
        failures.push(format!("the failure took {took:?}, more than the connect timeout + {TOLERANCE:?}"));
    }
    if let Some(secret) = probe.secret()
        && let Some(place) = reveals(&error, secret)
    {
        failures.push(format!("the error's {place} reveals the configured secret"));
    }
    if failures.is_empty() { Ok(1) } else { Err(Failure(failures.join("\n"))) }
}

/// Where, if anywhere, `error` shows `secret`: its message, its `Debug`
/// form, or a source's message.
fn reveals(error: &StateError, secret: &str) -> Option<&'static str> {
    if error.to_string().contains(secret) {
        return Some("message");
    }
    if format!("{error:?}").contains(secret) {
        return Some("Debug output");
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if cause.to_string().contains(secret) || format!("{cause:?}").contains(secret) {
            return Some("source");
        }
        source = cause.source();
    }
    None
}
