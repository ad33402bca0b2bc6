//! How to reach a backend at an endpoint where nothing answers: what a
//! test factory hands the kit so the kit can check connection failures.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use state_api::{Backend, StateError};

type Connect = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<Backend, StateError>> + Send>> + Send + Sync>;

/// Connects the backend under test to an endpoint where nothing listens
/// (a closed loopback port), with a known connect timeout and, where the
/// configuration carries one, a secret (a password, a secret key) that no
/// error may reveal.
///
/// ```
/// use std::time::Duration;
/// let probe = conformance::Unreachable::new(Duration::from_millis(500), || async {
///     // MyStore::connect(config_for("mystore://:hunter2@127.0.0.1:1")).await
///     Err(state_api::StateError::unavailable("mine", "connection refused", "refused"))
/// })
/// .with_secret("hunter2");
/// assert_eq!(probe.connect_timeout(), Duration::from_millis(500));
/// ```
#[derive(Clone)]
pub struct Unreachable {
    connect: Connect,
    connect_timeout: Duration,
    secret: Option<String>,
    rejected: Option<Connect>,
}

impl Unreachable {
    /// A probe whose `connect` targets an unreachable endpoint and was
    /// configured with `connect_timeout`.
    pub fn new<F, Fut>(connect_timeout: Duration, connect: F) -> Unreachable
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Backend, StateError>> + Send + 'static,
    {
        Unreachable { connect: Arc::new(move || Box::pin(connect())), connect_timeout, secret: None, rejected: None }
    }

    /// A secret the connect configuration carries, which must never appear
    /// in an error's message, `Debug` output or sources.
    pub fn with_secret(mut self, secret: impl Into<String>) -> Unreachable {
        self.secret = Some(secret.into());
        self
    }

    /// Also reaches the test's own server with credentials it rejects (a
    /// user that does not exist, a wrong password), configured with the
    /// same connect timeout and secret. The kit checks that this fails
    /// within the connect timeout with a permanent (not retryable) error,
    /// since no retry can mend credentials, and that no error reveals the
    /// secret.
    pub fn with_rejected_credentials<F, Fut>(mut self, connect: F) -> Unreachable
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Backend, StateError>> + Send + 'static,
    {
        self.rejected = Some(Arc::new(move || Box::pin(connect())));
        self
    }

    /// A connect with the rejected credentials, when the probe has them.
    pub fn connect_rejected(&self) -> Option<impl Future<Output = Result<Backend, StateError>> + Send + use<>> {
        self.rejected.as_ref().map(|connect| connect())
    }

    /// The configured connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The secret, if any.
    pub fn secret(&self) -> Option<&str> {
        self.secret.as_deref()
    }

    /// Connects (and is expected to fail).
    pub async fn connect(&self) -> Result<Backend, StateError> {
        (self.connect)().await
    }
}

impl fmt::Debug for Unreachable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unreachable").field("connect_timeout", &self.connect_timeout).finish_non_exhaustive()
    }
}
