//! Unreachable endpoints: connecting to an endpoint where nothing listens
//! fails with a retryable [`StateError::Unavailable`] within the connect
//! timeout (plus a tolerance); the test's own server reached with
//! credentials it rejects, when the probe has them, fails as fast with a
//! permanent error; and no error reveals the configuration's secret. Runs
//! when the test factory provides an [`Unreachable`](crate::Unreachable)
//! probe.

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
    let mut failures = Vec::new();
    let (error, took) = first_failure(cx, bound, "an unreachable endpoint", probe.connect()).await?;
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
    let mut checked = 1;
    if let Some(connect) = probe.connect_rejected() {
        let what = "the server with credentials it rejects";
        let (error, took) = first_failure(cx, bound, what, connect).await?;
        if error.is_retryable() {
            failures.push(format!("{what}: expected a permanent error (no retry mends credentials), got {error:?}"));
        }
        if took > bound {
            failures.push(format!("{what}: the failure took {took:?}, more than the connect timeout + {TOLERANCE:?}"));
        }
        if let Some(secret) = probe.secret()
            && let Some(place) = reveals(&error, secret)
        {
            failures.push(format!("{what}: the error's {place} reveals the configured secret"));
        }
        checked += 1;
    }
    if failures.is_empty() { Ok(checked) } else { Err(Failure(failures.join("\n"))) }
}

/// The error a connect gives within `bound`, or, from a backend that
/// connects lazily, its first get; and how long it took.
async fn first_failure(
    cx: &Context,
    bound: Duration,
    what: &str,
    connect: impl std::future::Future<Output = Result<state_api::Backend, StateError>>,
) -> Result<(StateError, Duration), Failure> {
    let started = Instant::now();
    let error = match tokio::time::timeout(bound, connect).await {
        Err(_) => return Err(Failure(format!("connecting to {what} did not fail within {bound:?}"))),
        Ok(Err(error)) => error,
        Ok(Ok(backend)) => {
            let key = Key::new(&cx.space("unreachable"), "k")?;
            match tokio::time::timeout(bound.saturating_sub(started.elapsed()), backend.store.get(&key)).await {
                Err(_) => {
                    return Err(Failure(format!(
                        "connect to {what} succeeded and its first get did not fail within {bound:?}"
                    )));
                }
                Ok(Ok(found)) => return Err(Failure(format!("a get through {what} answered {found:?}"))),
                Ok(Err(error)) => error,
            }
        }
    };
    Ok((error, started.elapsed()))
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
