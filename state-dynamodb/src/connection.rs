//! The SDK clients: credentials, region, endpoint, timeouts, retries, and
//! an HTTPS client on rustls with the ring provider.
//!
//! There are two clients over one connection pool. Reads (and idempotent
//! writes, like extending a lease to a fixed deadline) use the SDK's
//! standard retries. Writes that are not idempotent use a client whose
//! retries stop as soon as a request *may* have been applied: a timed-out
//! `PutItem` that actually wrote, retried, would fail its own condition and
//! report the key as taken by someone else — a wrong, definite answer.
//! Such writes are retried only when DynamoDB refused them outright
//! (throttling), and otherwise fail with `Timeout` or `Unavailable`, which
//! the contract defines as indeterminate.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::{Credentials, Region};
use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use aws_smithy_runtime_api::client::interceptors::context::{Error as OperationError, InterceptorContext};
use aws_smithy_runtime_api::client::retries::classifiers::{ClassifyRetry, RetryAction, RetryClassifierPriority};

use crate::config::DynamoConfig;
use crate::error::REFUSED_UNAPPLIED;

/// The store's two views of one SDK configuration.
#[derive(Debug, Clone)]
pub(crate) struct Clients {
    /// Standard retries: for reads and idempotent writes.
    pub(crate) reads: Client,
    /// Retries only requests that DynamoDB refused without applying.
    pub(crate) writes: Client,
}

impl Clients {
    /// Builds both clients. Sends no request: credentials (and the region,
    /// unless configured) are resolved lazily by the first one.
    pub(crate) async fn new(config: &DynamoConfig) -> Clients {
        let http =
            aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(CryptoMode::Ring)).build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.connect_timeout())
            .operation_timeout(config.operation_timeout())
            .build();
        let mut loader =
            aws_config::defaults(BehaviorVersion::latest()).http_client(http).timeout_config(timeouts).retry_config(
                RetryConfig::standard()
                    .with_max_attempts(config.max_attempts())
                    // The SDK's default first backoff is a second: three
                    // attempts at a refused endpoint would then take longer
                    // than the connect timeout, while the contract answers
                    // an unreachable endpoint with `Unavailable` within it
                    // (and the caller, told it is retryable, decides).
                    .with_initial_backoff(RETRY_FIRST_BACKOFF)
                    .with_max_backoff(RETRY_MAX_BACKOFF),
            );
        if let Some(region) = config.region() {
            loader = loader.region(Region::new(region.to_owned()));
        }
        if let Some(url) = config.endpoint_url() {
            loader = loader.endpoint_url(url);
        }
        if let Some(credentials) = config.static_credentials() {
            loader = loader.credentials_provider(Credentials::new(
                credentials.access_key_id.clone(),
                credentials.secret_access_key.clone(),
                None,
                None,
                "statekit-config",
            ));
        }
        let shared = loader.load().await;
        let writes = aws_sdk_dynamodb::config::Builder::from(&shared).retry_classifier(RetryOnlyUnapplied).build();
        Clients { reads: Client::new(&shared), writes: Client::from_conf(writes) }
    }
}

/// The first retry's backoff ceiling (full jitter below it, doubling).
const RETRY_FIRST_BACKOFF: Duration = Duration::from_millis(20);

/// The largest retry backoff: throttling still backs off, briefly.
const RETRY_MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Vetoes every retry of a write except after an error with which
/// DynamoDB refused the request unapplied (see [`REFUSED_UNAPPLIED`]).
/// It runs after the SDK's own classifiers and only ever narrows them: a
/// veto (`RetryForbidden`) wins over any earlier verdict.
#[derive(Debug)]
struct RetryOnlyUnapplied;

impl ClassifyRetry for RetryOnlyUnapplied {
    fn classify_retry(&self, ctx: &InterceptorContext) -> RetryAction {
        let Some(Err(error)) = ctx.output_or_error() else { return RetryAction::NoActionIndicated };
        match error.as_operation_error().and_then(error_code) {
            // Refused unapplied: leave the SDK's verdict (retry) alone.
            Some(code) if REFUSED_UNAPPLIED.contains(&code) => RetryAction::NoActionIndicated,
            // A timeout, a network error or a server error: the write may
            // have happened, so its outcome must be reported as unknown.
            // (Forbidding the retry of an error that is not retryable
            // anyway changes nothing.)
            _ => RetryAction::RetryForbidden,
        }
    }

    fn name(&self) -> &'static str {
        "statekit: retry only writes that DynamoDB refused unapplied"
    }

    fn priority(&self) -> RetryClassifierPriority {
        RetryClassifierPriority::run_after(RetryClassifierPriority::transient_error_classifier())
    }
}

/// The service error code of a write operation's error.
fn error_code(error: &OperationError) -> Option<&str> {
    if let Some(error) = error.downcast_ref::<PutItemError>() {
        return error.code();
    }
    if let Some(error) = error.downcast_ref::<UpdateItemError>() {
        return error.code();
    }
    error.downcast_ref::<DeleteItemError>().and_then(|error| error.code())
}
