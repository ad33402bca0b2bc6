//! The typed, validated configuration of a [`DynamoStore`](crate::DynamoStore).

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use state_api::{StateError, redact_url};

/// Where the table is and how to talk to it.
///
/// Credentials and, unless set here, the region come from the standard AWS
/// chain: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` / `AWS_SESSION_TOKEN`,
/// `AWS_REGION`, `AWS_PROFILE` and the shared config files, web identity,
/// the container and instance metadata services. The endpoint URL is for
/// DynamoDB Local or a VPC endpoint; leave it unset for AWS.
///
/// ```
/// use std::time::Duration;
/// use state_dynamodb::DynamoConfig;
///
/// let config = DynamoConfig::new()
///     .with_endpoint_url("http://127.0.0.1:8000")
///     .with_region("us-east-1")
///     .with_table_name("myapp_state")
///     .with_static_credentials("localkey", "not-so-secret")
///     .with_operation_timeout(Duration::from_secs(2));
/// assert!(config.validate().is_ok());
/// // The secret key never reaches Debug output (nor errors, nor logs).
/// assert!(!format!("{config:?}").contains("not-so-secret"));
/// ```
///
/// # In a config file
///
/// `DynamoConfig` deserializes (serde) from these fields, the ones
/// `statekit` reads from `[state]` when `backend = "dynamodb"`; any other
/// field is an error naming it, and the result is
/// [validated](Self::validate) before it is returned. Every field is
/// optional.
///
/// | field | meaning | default |
/// |---|---|---|
/// | `url` | [endpoint](Self::with_endpoint_url) (DynamoDB Local, VPC endpoint) | AWS's |
/// | `region` | [region](Self::with_region) | the AWS chain's |
/// | `table_name` | [table](Self::with_table_name) | `statekit_state` |
/// | `access_key_id`, `secret_access_key` | [static keys](Self::with_static_credentials), both or neither | the AWS chain |
/// | `connect_timeout_ms` | [connect timeout](Self::with_connect_timeout) | 3000 |
/// | `command_timeout_ms` | [operation timeout](Self::with_operation_timeout), retries included | 10000 |
/// | `max_attempts` | [attempts per request](Self::with_max_attempts) | 3 |
/// | `max_clock_skew_ms` | [declared clock skew](Self::with_max_clock_skew) | 100 |
#[derive(Clone, Deserialize)]
#[serde(try_from = "DynamoFields")]
pub struct DynamoConfig {
    endpoint_url: Option<String>,
    region: Option<String>,
    table_name: String,
    connect_timeout: Duration,
    operation_timeout: Duration,
    max_attempts: u32,
    max_clock_skew: Duration,
    credentials: Option<StaticCredentials>,
}

/// An access key pair given in the configuration instead of the AWS chain
/// (DynamoDB Local accepts any pair whose key id is letters and digits).
#[derive(Clone)]
pub(crate) struct StaticCredentials {
    pub(crate) access_key_id: String,
    pub(crate) secret_access_key: String,
}

impl DynamoConfig {
    /// The default table name.
    pub const DEFAULT_TABLE_NAME: &'static str = "statekit_state";
    /// The default connect timeout: 3 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
    /// The default operation timeout, retries included: 10 s.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default number of attempts per request (the SDK's standard
    /// retry mode): 3.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
    /// The default bound on the skew between the wall clocks of the
    /// clients sharing a table: 100 ms. Clocks synchronised by NTP (or the
    /// Amazon Time Sync Service, which keeps EC2 instances within about a
    /// millisecond) stay well inside it; raise it if yours may drift
    /// further, since expiry and lease deadlines are judged by each
    /// client's own clock.
    pub const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_millis(100);

    /// A configuration with the defaults: AWS's endpoint, the region from
    /// the AWS chain, table [`DEFAULT_TABLE_NAME`](Self::DEFAULT_TABLE_NAME).
    pub fn new() -> DynamoConfig {
        DynamoConfig {
            endpoint_url: None,
            region: None,
            table_name: Self::DEFAULT_TABLE_NAME.to_owned(),
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            operation_timeout: Self::DEFAULT_OPERATION_TIMEOUT,
            max_attempts: Self::DEFAULT_MAX_ATTEMPTS,
            max_clock_skew: Self::DEFAULT_MAX_CLOCK_SKEW,
            credentials: None,
        }
    }

    /// Sends requests to `url` (e.g. DynamoDB Local at
    /// `http://127.0.0.1:8000`) instead of AWS's regional endpoint.
    pub fn with_endpoint_url(mut self, url: impl Into<String>) -> DynamoConfig {
        self.endpoint_url = Some(url.into());
        self
    }

    /// Sets the region instead of taking it from the AWS chain.
    pub fn with_region(mut self, region: impl Into<String>) -> DynamoConfig {
        self.region = Some(region.into());
        self
    }

    /// Sets the table (3 to 255 characters: letters, digits, `_`, `-`, `.`).
    pub fn with_table_name(mut self, name: impl Into<String>) -> DynamoConfig {
        self.table_name = name.into();
        self
    }

    /// Sets how long opening a connection may take.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> DynamoConfig {
        self.connect_timeout = timeout;
        self
    }

    /// Sets how long one operation may take, retries included, before it
    /// fails with [`StateError::Timeout`].
    pub fn with_operation_timeout(mut self, timeout: Duration) -> DynamoConfig {
        self.operation_timeout = timeout;
        self
    }

    /// Sets how many times one request is attempted when DynamoDB throttles
    /// it (1 disables retries). Reads are also retried after network
    /// errors; writes never are once they may have been applied, so that a
    /// retried conditional write cannot misreport its own earlier success.
    pub fn with_max_attempts(mut self, attempts: u32) -> DynamoConfig {
        self.max_attempts = attempts;
        self
    }

    /// Sets the bound on clock skew between clients declared in the
    /// store's capabilities (see
    /// [`DEFAULT_MAX_CLOCK_SKEW`](Self::DEFAULT_MAX_CLOCK_SKEW)).
    pub fn with_max_clock_skew(mut self, skew: Duration) -> DynamoConfig {
        self.max_clock_skew = skew;
        self
    }

    /// Uses this access key pair instead of the AWS credentials chain —
    /// meant for DynamoDB Local; on AWS prefer the chain (roles, profiles).
    pub fn with_static_credentials(
        mut self,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> DynamoConfig {
        self.credentials = Some(StaticCredentials {
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
        });
        self
    }

    /// The endpoint URL, if one is set.
    pub fn endpoint_url(&self) -> Option<&str> {
        self.endpoint_url.as_deref()
    }

    /// The region, if one is set here rather than by the AWS chain.
    pub fn region(&self) -> Option<&str> {
        self.region.as_deref()
    }

    /// The table name.
    pub fn table_name(&self) -> &str {
        &self.table_name
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The operation timeout.
    pub fn operation_timeout(&self) -> Duration {
        self.operation_timeout
    }

    /// The attempts per request.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The declared bound on clock skew.
    pub fn max_clock_skew(&self) -> Duration {
        self.max_clock_skew
    }

    pub(crate) fn static_credentials(&self) -> Option<&StaticCredentials> {
        self.credentials.as_ref()
    }

    /// Checks every field without connecting.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] naming the field (`url`, `region`,
    /// `table_name`, `connect_timeout`, `operation_timeout`,
    /// `max_attempts`, `max_clock_skew`, `credentials`).
    pub fn validate(&self) -> Result<(), StateError> {
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(StateError::invalid_argument(
                "url",
                format!("the endpoint must be an http:// or https:// URL, got {}", redact_url(url)),
            ));
        }
        if self.region.as_deref().is_some_and(|r| r.trim().is_empty()) {
            return Err(StateError::invalid_argument("region", "must not be empty"));
        }
        let name = &self.table_name;
        let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if !(3..=255).contains(&name.len()) || !name.chars().all(allowed) {
            return Err(StateError::invalid_argument(
                "table_name",
                format!("{name:?} is not a DynamoDB table name (3 to 255 of a-z, A-Z, 0-9, _, -, .)"),
            ));
        }
        for (field, timeout) in
            [("connect_timeout", self.connect_timeout), ("operation_timeout", self.operation_timeout)]
        {
            if timeout.is_zero() {
                return Err(StateError::invalid_argument(field, "must be positive"));
            }
        }
        if self.max_attempts == 0 {
            return Err(StateError::invalid_argument("max_attempts", "must be at least 1"));
        }
        if self.max_clock_skew > Duration::from_secs(60) {
            return Err(StateError::invalid_argument(
                "max_clock_skew",
                "must be at most 60 s: beyond that, client-judged expiry is meaningless",
            ));
        }
        if let Some(credentials) = &self.credentials
            && (credentials.access_key_id.is_empty() || credentials.secret_access_key.is_empty())
        {
            return Err(StateError::invalid_argument("credentials", "the access key id and secret must not be empty"));
        }
        Ok(())
    }
}

impl Default for DynamoConfig {
    fn default() -> Self {
        DynamoConfig::new()
    }
}

/// The serialized form of a [`DynamoConfig`]: the field names of a config
/// file, all optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DynamoFields {
    url: Option<String>,
    region: Option<String>,
    table_name: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    connect_timeout_ms: Option<u64>,
    command_timeout_ms: Option<u64>,
    max_attempts: Option<u32>,
    max_clock_skew_ms: Option<u64>,
}

impl TryFrom<DynamoFields> for DynamoConfig {
    type Error = StateError;

    /// Applies the fields over the defaults and validates the result; an
    /// error names the field as it is spelled in the file.
    fn try_from(fields: DynamoFields) -> Result<DynamoConfig, StateError> {
        let mut config = DynamoConfig::new();
        if let Some(url) = fields.url {
            config = config.with_endpoint_url(url);
        }
        if let Some(region) = fields.region {
            config = config.with_region(region);
        }
        if let Some(name) = fields.table_name {
            config = config.with_table_name(name);
        }
        match (fields.access_key_id, fields.secret_access_key) {
            (Some(id), Some(secret)) => config = config.with_static_credentials(id, secret),
            (None, None) => {}
            // Half a key pair would silently fall back to the AWS chain.
            (Some(_), None) | (None, Some(_)) => {
                return Err(StateError::invalid_argument(
                    "access_key_id",
                    "access_key_id and secret_access_key go together: set both or neither",
                ));
            }
        }
        if let Some(ms) = fields.connect_timeout_ms {
            config = config.with_connect_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = fields.command_timeout_ms {
            config = config.with_operation_timeout(Duration::from_millis(ms));
        }
        if let Some(attempts) = fields.max_attempts {
            config = config.with_max_attempts(attempts);
        }
        if let Some(ms) = fields.max_clock_skew_ms {
            config = config.with_max_clock_skew(Duration::from_millis(ms));
        }
        config.validate().map_err(|error| match error {
            StateError::InvalidArgument { name, reason } => StateError::InvalidArgument {
                name: match name {
                    "connect_timeout" => "connect_timeout_ms",
                    "operation_timeout" => "command_timeout_ms",
                    "max_clock_skew" => "max_clock_skew_ms",
                    "credentials" => "access_key_id",
                    other => other,
                },
                reason,
            },
            other => other,
        })?;
        Ok(config)
    }
}

impl fmt::Debug for DynamoConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DynamoConfig")
            .field("endpoint_url", &self.endpoint_url.as_deref().map(redact_url))
            .field("region", &self.region)
            .field("table_name", &self.table_name)
            .field("connect_timeout", &self.connect_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("max_attempts", &self.max_attempts)
            .field("max_clock_skew", &self.max_clock_skew)
            // The key id names the credentials; the secret never appears.
            .field("credentials", &self.credentials.as_ref().map(|c| format!("{} / ***", c.access_key_id)))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(DynamoConfig::new().validate().is_ok());
        assert_eq!(DynamoConfig::default().table_name(), "statekit_state");
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            (DynamoConfig::new().with_endpoint_url("localhost:8000"), "url"),
            (DynamoConfig::new().with_region(" "), "region"),
            (DynamoConfig::new().with_table_name("a b"), "table_name"),
            (DynamoConfig::new().with_table_name("ab"), "table_name"),
            (DynamoConfig::new().with_operation_timeout(Duration::ZERO), "operation_timeout"),
            (DynamoConfig::new().with_connect_timeout(Duration::ZERO), "connect_timeout"),
            (DynamoConfig::new().with_max_attempts(0), "max_attempts"),
            (DynamoConfig::new().with_max_clock_skew(Duration::from_secs(61)), "max_clock_skew"),
            (DynamoConfig::new().with_static_credentials("", "x"), "credentials"),
        ];
        for (config, field) in cases {
            match config.validate() {
                Err(StateError::InvalidArgument { name, .. }) => assert_eq!(name, field),
                other => panic!("{config:?}: expected an error naming {field}, got {other:?}"),
            }
        }
    }

    fn from_toml(text: &str) -> Result<DynamoConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn deserializing_applies_the_fields_over_the_defaults() {
        let config = from_toml(
            "url = \"http://127.0.0.1:8000\"\nregion = \"eu-west-1\"\ntable_name = \"app_state\"\n\
             access_key_id = \"local\"\nsecret_access_key = \"local\"\ncommand_timeout_ms = 2500\nmax_attempts = 1\n",
        )
        .unwrap();
        assert_eq!((config.endpoint_url(), config.region()), (Some("http://127.0.0.1:8000"), Some("eu-west-1")));
        assert_eq!((config.table_name(), config.max_attempts()), ("app_state", 1));
        assert_eq!(config.operation_timeout(), Duration::from_millis(2500));
        assert_eq!(config.connect_timeout(), DynamoConfig::DEFAULT_CONNECT_TIMEOUT);
        assert!(config.static_credentials().is_some());
        assert_eq!(from_toml("").unwrap().table_name(), DynamoConfig::DEFAULT_TABLE_NAME);
    }

    #[test]
    fn deserializing_refuses_fields_of_other_backends() {
        let error = from_toml("max_value_len = 1024\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("unknown field `max_value_len`"), "{error}");
    }

    #[test]
    fn half_a_key_pair_is_refused() {
        let error = from_toml("access_key_id = \"local\"\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("`access_key_id`") && error.contains("both or neither"), "{error}");
    }

    #[test]
    fn deserializing_validates_and_names_the_field_as_written() {
        let error = from_toml("command_timeout_ms = 0\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("`command_timeout_ms`"), "{error}");
        let error = from_toml("max_clock_skew_ms = 61000\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("`max_clock_skew_ms`"), "{error}");
    }

    #[test]
    fn debug_hides_the_secret_and_url_passwords() {
        let config = DynamoConfig::new()
            .with_endpoint_url("https://user:pw@example.invalid")
            .with_static_credentials("AKIDEXAMPLE", "wJalrXUtnFEMI");
        let text = format!("{config:?}");
        assert!(text.contains("AKIDEXAMPLE"), "{text}");
        assert!(!text.contains("wJalrXUtnFEMI") && !text.contains("pw@"), "{text}");
    }
}
