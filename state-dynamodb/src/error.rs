//! Mapping the SDK's errors to the contract's.
//!
//! A failed condition (`ConditionalCheckFailedException`) is not an error
//! here: it is the "rejected" outcome of a conditional write, and
//! [`conditional`] turns it into [`Conditional::Failed`] with the item that
//! failed the check. Everything else becomes a [`StateError`] that keeps
//! the SDK error as its source:
//!
//! - timeouts: [`StateError::Timeout`];
//! - network failures: [`StateError::Unavailable`];
//! - throttling and server errors: a retryable [`StateError::Backend`];
//! - bad or missing credentials, a missing table, invalid requests: a
//!   non-retryable [`StateError::Backend`] saying what to fix.

use std::collections::HashMap;
use std::error::Error;
use std::fmt::Debug;
use std::time::Duration;

use aws_credential_types::provider::error::CredentialsError;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::delete_item::DeleteItemError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use state_api::StateError;

use crate::BACKEND;

/// An item as DynamoDB returns it.
pub(crate) type Item = HashMap<String, AttributeValue>;

/// Error codes with which DynamoDB refuses a request *without applying it*:
/// retrying them is always safe, even for a conditional write.
pub(crate) const REFUSED_UNAPPLIED: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionConflictException",
    "ReplicatedWriteConflictException",
];

/// Error codes that mean the server failed: retryable, but a write may or
/// may not have been applied.
const SERVER_FAILURES: &[&str] = &["InternalServerError", "ServiceUnavailable", "ServiceUnavailableException"];

/// What an error is about: the operation, the table, and the timeout that
/// applied, so that messages say what failed and what to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Context<'a> {
    pub(crate) operation: &'static str,
    pub(crate) table: &'a str,
    pub(crate) timeout: Duration,
}

impl Context<'_> {
    /// Maps an SDK error that is not a failed condition.
    pub(crate) fn map<E, R>(&self, error: SdkError<E, R>) -> StateError
    where
        E: ProvideErrorMetadata + Error + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        if let Some(problem) = credentials_problem(&error) {
            return self.backend(format!("no usable AWS credentials: {problem}"), false, error);
        }
        match &error {
            SdkError::TimeoutError(_) => StateError::Timeout { operation: self.operation, after: self.timeout },
            SdkError::DispatchFailure(failure) if failure.is_timeout() => {
                StateError::Timeout { operation: self.operation, after: self.timeout }
            }
            SdkError::DispatchFailure(_) => {
                let message = format!("{} could not reach DynamoDB: {}", self.operation, DisplayErrorContext(&error));
                StateError::unavailable(BACKEND, message, error)
            }
            SdkError::ResponseError(_) => {
                // A response that is not DynamoDB's (a proxy's page, a cut
                // connection): the request's fate is unknown.
                let message = format!("{}: unreadable response from the endpoint", self.operation);
                StateError::unavailable(BACKEND, message, error)
            }
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or("unknown").to_owned();
                let detail = service.err().message().unwrap_or("no message").to_owned();
                let (message, retryable) = self.explain(&code, &detail);
                self.backend(message, retryable, error)
            }
            _ => self.backend(format!("the request could not be built: {}", DisplayErrorContext(&error)), false, error),
        }
    }

    /// What a service error code means, and whether retrying may help.
    fn explain(&self, code: &str, detail: &str) -> (String, bool) {
        let (operation, table) = (self.operation, self.table);
        let credentials = "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_PROFILE or the configured credentials";
        match code {
            _ if REFUSED_UNAPPLIED.contains(&code) => (format!("{operation} was throttled ({code}): {detail}"), true),
            _ if SERVER_FAILURES.contains(&code) => {
                (format!("{operation} failed on the server ({code}): {detail}"), true)
            }
            "UnrecognizedClientException" | "InvalidClientTokenId" => {
                (format!("DynamoDB does not recognise the access key id ({code}): {credentials}"), false)
            }
            "InvalidSignatureException" | "SignatureDoesNotMatch" => (
                format!(
                    "the request signature is wrong ({code}): the secret access key does not match the key id; {credentials}"
                ),
                false,
            ),
            "MissingAuthenticationToken" | "MissingAuthenticationTokenException" | "IncompleteSignatureException" => {
                (format!("the request carried no valid signature ({code}): {credentials}"), false)
            }
            "ExpiredTokenException" | "ExpiredToken" => {
                (format!("the session credentials have expired ({code}): refresh them"), false)
            }
            "AccessDeniedException" => (
                format!(
                    "the credentials may not run {operation} on table {table:?} ({code}): {detail}; check the IAM policy"
                ),
                false,
            ),
            "ResourceNotFoundException" => (
                format!("table {table:?} does not exist (or is not active yet): run migrate to create it ({detail})"),
                false,
            ),
            _ => (format!("{operation} failed ({code}): {detail}"), false),
        }
    }

    fn backend<E, R>(&self, message: String, retryable: bool, error: SdkError<E, R>) -> StateError
    where
        E: Error + Send + Sync + 'static,
        R: Debug + Send + Sync + 'static,
    {
        StateError::backend(BACKEND, message, retryable, error)
    }
}

/// The outcome of a conditional request.
#[derive(Debug)]
pub(crate) enum Conditional<T> {
    /// The condition held and the request was applied.
    Applied(T),
    /// The condition failed and nothing changed; the item that failed it,
    /// if one exists and it was asked for (`ALL_OLD`).
    Failed(Option<Item>),
}

/// Operation errors that can be a failed condition.
pub(crate) trait ConditionFailure: Sized {
    /// The failing item if this is a failed condition, else `Err(self)`.
    fn failed_item(self) -> Result<Option<Item>, Self>;
}

macro_rules! condition_failure {
    ($($error:ident),*) => {$(
        impl ConditionFailure for $error {
            fn failed_item(self) -> Result<Option<Item>, Self> {
                match self {
                    $error::ConditionalCheckFailedException(failure) => Ok(failure.item),
                    other => Err(other),
                }
            }
        }
    )*};
}

condition_failure!(PutItemError, UpdateItemError, DeleteItemError);

/// Splits a conditional request's result into applied / failed condition /
/// error.
pub(crate) fn conditional<T, E, R>(
    cx: Context<'_>,
    result: Result<T, SdkError<E, R>>,
) -> Result<Conditional<T>, StateError>
where
    E: ConditionFailure + ProvideErrorMetadata + Error + Send + Sync + 'static,
    R: Debug + Send + Sync + 'static,
{
    match result {
        Ok(output) => Ok(Conditional::Applied(output)),
        Err(SdkError::ServiceError(service)) => {
            let is_condition = service.err().code() == Some("ConditionalCheckFailedException");
            if !is_condition {
                return Err(cx.map(SdkError::ServiceError(service)));
            }
            match service.into_err().failed_item() {
                Ok(item) => Ok(Conditional::Failed(item)),
                Err(other) => Err(StateError::Backend {
                    backend: BACKEND,
                    message: format!("{}: an unexpected error: {}", cx.operation, DisplayErrorContext(&other)),
                    retryable: false,
                    source: Some(Box::new(other)),
                }),
            }
        }
        Err(other) => Err(cx.map(other)),
    }
}

/// Says what is wrong with the credentials if `error` comes from the
/// credentials chain (found anywhere among its sources).
fn credentials_problem(error: &(dyn Error + 'static)) -> Option<String> {
    let mut current: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(problem) = error.downcast_ref::<CredentialsError>() {
            return Some(match problem {
                CredentialsError::CredentialsNotLoaded(_) => {
                    "none were found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run \
                     with an IAM role (or configure static credentials for DynamoDB Local)"
                        .to_owned()
                }
                CredentialsError::ProviderTimedOut(_) => "the credentials provider timed out".to_owned(),
                CredentialsError::InvalidConfiguration(_) => {
                    format!("the credentials configuration is invalid: {}", DisplayErrorContext(problem))
                }
                _ => format!("the credentials provider failed: {}", DisplayErrorContext(problem)),
            });
        }
        current = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use aws_sdk_dynamodb::error::ConnectorError;

    use super::*;

    const CX: Context<'static> = Context { operation: "get", table: "t", timeout: Duration::from_secs(1) };

    #[test]
    fn missing_credentials_are_a_clear_permanent_error() {
        let cause = CredentialsError::not_loaded("no providers in chain provided credentials");
        let error: SdkError<PutItemError, ()> = SdkError::dispatch_failure(ConnectorError::other(cause.into(), None));
        let mapped = CX.map(error);
        assert!(!mapped.is_retryable());
        assert!(mapped.to_string().contains("AWS_ACCESS_KEY_ID"), "{mapped}");
    }

    #[test]
    fn network_failures_and_timeouts_are_retryable() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let error: SdkError<PutItemError, ()> = SdkError::dispatch_failure(ConnectorError::io(refused.into()));
        assert!(matches!(CX.map(error), StateError::Unavailable { .. }));
        let error: SdkError<PutItemError, ()> = SdkError::timeout_error("slow");
        assert!(matches!(CX.map(error), StateError::Timeout { operation: "get", .. }));
    }

    #[test]
    fn codes_are_explained() {
        assert!(CX.explain("ProvisionedThroughputExceededException", "x").1);
        assert!(CX.explain("InternalServerError", "x").1);
        let (message, retryable) = CX.explain("UnrecognizedClientException", "x");
        assert!(!retryable && message.contains("access key id"), "{message}");
        let (message, retryable) = CX.explain("InvalidSignatureException", "x");
        assert!(!retryable && message.contains("secret access key"), "{message}");
        let (message, retryable) = CX.explain("ResourceNotFoundException", "x");
        assert!(!retryable && message.contains("migrate"), "{message}");
    }
}
