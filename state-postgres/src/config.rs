//! [`PostgresConfig`]: where the server is, which schema and table names to
//! use, and the pool's limits — validated before anything connects.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::postgres::PgConnectOptions;
use state_api::{StateError, redact_url};

/// Longest schema name or table prefix accepted, in bytes. With the longest
/// suffix the migrations add (`_lock_waiters_pkey`, 18 bytes) a derived name
/// stays well under PostgreSQL's 63-byte identifier limit, so nothing is
/// ever silently truncated.
pub const MAX_IDENTIFIER_LEN: usize = 41;

/// How to reach PostgreSQL and how to lay out the state tables.
///
/// Built with [`PostgresConfig::new`] and refined with the builder methods;
/// the identifier setters validate at once, the rest is checked by
/// [`validate`](Self::validate), which
/// [`PostgresStore::connect`](crate::PostgresStore::connect) calls before
/// any I/O.
///
/// `Debug` redacts the password (and any user info) of the URL, so a config
/// can be logged.
///
/// ```
/// use std::time::Duration;
/// use state_postgres::PostgresConfig;
///
/// let config = PostgresConfig::new("postgres://app:secret@db.internal/app")
///     .with_schema("state")?
///     .with_table_prefix("orders")?
///     .with_pool_size(32)
///     .with_statement_timeout(Duration::from_secs(2));
/// assert!(!format!("{config:?}").contains("secret"));
/// assert!(PostgresConfig::new("postgres://db").with_schema("Robert'); DROP TABLE x;--").is_err());
/// # Ok::<(), state_api::StateError>(())
/// ```
///
/// # In a config file
///
/// `PostgresConfig` deserializes (serde) from these fields, the ones
/// `statekit` reads from `[state]` when `backend = "postgres"`; any other
/// field is an error naming it, and the result is
/// [validated](Self::validate) before it is returned.
///
/// | field | meaning | default |
/// |---|---|---|
/// | `url` | the connection URL (required) | — |
/// | `schema` | [schema](Self::with_schema) | `public` |
/// | `prefix` | [table prefix](Self::with_table_prefix) | `statekit` |
/// | `pool_size` | [pooled connections](Self::with_pool_size) | 16 |
/// | `connect_timeout_ms` | [connect timeout](Self::with_connect_timeout) | 5000 |
/// | `command_timeout_ms` | [statement timeout](Self::with_statement_timeout) | 5000 |
/// | `reap_interval_ms` | [reaper interval](Self::with_reap_interval); 0 turns the reaper off | 30000 |
/// | `reap_batch` | [rows per reaper statement](Self::with_reap_batch) | 1000 |
/// | `max_value_len` | [largest value](Self::with_max_value_len), bytes | 16 MiB |
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "PostgresFields")]
pub struct PostgresConfig {
    url: String,
    schema: String,
    table_prefix: String,
    pool_size: u32,
    connect_timeout: Duration,
    statement_timeout: Duration,
    reap_interval: Option<Duration>,
    reap_batch: u32,
    max_value_len: usize,
}

impl PostgresConfig {
    /// Default schema.
    pub const DEFAULT_SCHEMA: &'static str = "public";
    /// Default table prefix: tables are `statekit_entries`, `statekit_locks`
    /// and `statekit_migrations`.
    pub const DEFAULT_TABLE_PREFIX: &'static str = "statekit";
    /// Default number of pooled connections.
    pub const DEFAULT_POOL_SIZE: u32 = 16;
    /// Default bound on obtaining a connection (and so on reporting an
    /// unreachable server).
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default server-side limit on one statement.
    pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
    /// Default interval of the background reaper.
    pub const DEFAULT_REAP_INTERVAL: Duration = Duration::from_secs(30);
    /// Default number of rows the reaper deletes per statement.
    pub const DEFAULT_REAP_BATCH: u32 = 1000;
    /// Default largest value: 16 MiB.
    pub const DEFAULT_MAX_VALUE_LEN: usize = 16 * 1024 * 1024;
    /// Longest timeout or reaper interval accepted: a day. (PostgreSQL's
    /// `statement_timeout` itself stops at about 24.8 days.)
    pub const LIMIT_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
    /// Largest `pool_size` accepted: far above PostgreSQL's default of
    /// 100 connections per server, and a bound on the pool's bookkeeping,
    /// which reserves a slot per connection up front.
    pub const LIMIT_POOL_SIZE: u32 = 10_000;
    /// Largest `max_value_len` accepted: 256 MiB, far below PostgreSQL's
    /// 1 GiB field limit, so a value that passes the check always fits.
    pub const LIMIT_MAX_VALUE_LEN: usize = 256 * 1024 * 1024;
    /// Smallest `max_value_len` accepted: 1 KiB, the floor the contract
    /// promises on every backend.
    pub const MIN_MAX_VALUE_LEN: usize = 1024;

    /// A config for the server at `url` (`postgres://user:password@host:port/db`,
    /// any form `libpq` accepts as a URL) with every default.
    pub fn new(url: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            url: url.into(),
            schema: Self::DEFAULT_SCHEMA.to_owned(),
            table_prefix: Self::DEFAULT_TABLE_PREFIX.to_owned(),
            pool_size: Self::DEFAULT_POOL_SIZE,
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: Self::DEFAULT_STATEMENT_TIMEOUT,
            reap_interval: Some(Self::DEFAULT_REAP_INTERVAL),
            reap_batch: Self::DEFAULT_REAP_BATCH,
            max_value_len: Self::DEFAULT_MAX_VALUE_LEN,
        }
    }

    /// The schema holding the tables (created by
    /// [`migrate`](crate::PostgresStore::migrate) if missing).
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] unless the name matches
    /// `[a-z_][a-z0-9_]*`, is at most [`MAX_IDENTIFIER_LEN`] bytes and does
    /// not start with `pg_` (reserved by PostgreSQL).
    pub fn with_schema(mut self, schema: impl Into<String>) -> Result<PostgresConfig, StateError> {
        let schema = schema.into();
        validate_identifier("schema", &schema)?;
        if schema.starts_with("pg_") {
            return Err(StateError::invalid_argument("schema", "names starting with pg_ are reserved by PostgreSQL"));
        }
        self.schema = schema;
        Ok(self)
    }

    /// The prefix of the table names (`{prefix}_entries`, `{prefix}_locks`,
    /// `{prefix}_migrations`), so several independent stores can share one
    /// schema.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] unless the prefix matches
    /// `[a-z_][a-z0-9_]*` and is at most [`MAX_IDENTIFIER_LEN`] bytes.
    pub fn with_table_prefix(mut self, prefix: impl Into<String>) -> Result<PostgresConfig, StateError> {
        let prefix = prefix.into();
        validate_identifier("table_prefix", &prefix)?;
        self.table_prefix = prefix;
        Ok(self)
    }

    /// Maximum number of pooled connections (at least 1, at most
    /// [`LIMIT_POOL_SIZE`](Self::LIMIT_POOL_SIZE)). Lock waiters
    /// share one more, dedicated connection for release notifications.
    pub fn with_pool_size(mut self, size: u32) -> PostgresConfig {
        self.pool_size = size;
        self
    }

    /// How long an operation may wait for a connection, including opening
    /// one: past it, an unreachable server is reported as
    /// [`StateError::Unavailable`].
    pub fn with_connect_timeout(mut self, timeout: Duration) -> PostgresConfig {
        self.connect_timeout = timeout;
        self
    }

    /// The server-side `statement_timeout` of every connection: a statement
    /// running longer is cancelled and reported as [`StateError::Timeout`].
    pub fn with_statement_timeout(mut self, timeout: Duration) -> PostgresConfig {
        self.statement_timeout = timeout;
        self
    }

    /// How often the background reaper deletes expired rows; `None` turns
    /// it off (call [`reap_expired`](crate::PostgresStore::reap_expired)
    /// yourself, or leave expired rows: they are invisible either way).
    pub fn with_reap_interval(mut self, interval: Option<Duration>) -> PostgresConfig {
        self.reap_interval = interval;
        self
    }

    /// How many rows one reaper statement deletes at most, which bounds how
    /// long it holds row locks (at least 1).
    pub fn with_reap_batch(mut self, rows: u32) -> PostgresConfig {
        self.reap_batch = rows;
        self
    }

    /// The largest value `put` accepts, in bytes (between
    /// [`MIN_MAX_VALUE_LEN`](Self::MIN_MAX_VALUE_LEN) and
    /// [`LIMIT_MAX_VALUE_LEN`](Self::LIMIT_MAX_VALUE_LEN)).
    pub fn with_max_value_len(mut self, bytes: usize) -> PostgresConfig {
        self.max_value_len = bytes;
        self
    }

    /// The URL with its password redacted.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The URL, password included: pass it to a client, never to a log.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The same configuration for another URL (a proxy in front of the
    /// server, say).
    pub fn with_url(mut self, url: impl Into<String>) -> PostgresConfig {
        self.url = url.into();
        self
    }

    /// The configured schema.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// The configured table prefix.
    pub fn table_prefix(&self) -> &str {
        &self.table_prefix
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The statement timeout.
    pub fn statement_timeout(&self) -> Duration {
        self.statement_timeout
    }

    /// The reaper interval, if the reaper is on.
    pub fn reap_interval(&self) -> Option<Duration> {
        self.reap_interval
    }

    /// Rows per reaper statement.
    pub fn reap_batch(&self) -> u32 {
        self.reap_batch
    }

    /// The pool size.
    pub fn pool_size(&self) -> u32 {
        self.pool_size
    }

    /// The largest value accepted.
    pub fn max_value_len(&self) -> usize {
        self.max_value_len
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`StateError::InvalidArgument`] naming the first bad setting: an
    /// unparsable URL (reported redacted), a pool size of zero or over
    /// [`LIMIT_POOL_SIZE`](Self::LIMIT_POOL_SIZE), a zero reap batch, a
    /// timeout or reaper interval of zero or over
    /// [`LIMIT_TIMEOUT`](Self::LIMIT_TIMEOUT), a statement timeout under a
    /// millisecond, or a value limit under
    /// [`MIN_MAX_VALUE_LEN`](Self::MIN_MAX_VALUE_LEN) or over
    /// [`LIMIT_MAX_VALUE_LEN`](Self::LIMIT_MAX_VALUE_LEN).
    pub fn validate(&self) -> Result<(), StateError> {
        self.parsed_url()?;
        validate_identifier("schema", &self.schema)?;
        validate_identifier("table_prefix", &self.table_prefix)?;
        if self.pool_size == 0 || self.pool_size > Self::LIMIT_POOL_SIZE {
            return Err(StateError::invalid_argument("pool_size", "must be between 1 and 10000"));
        }
        if self.connect_timeout.is_zero() || self.connect_timeout > Self::LIMIT_TIMEOUT {
            return Err(StateError::invalid_argument("connect_timeout", "must be positive and at most a day"));
        }
        if self.statement_timeout < Duration::from_millis(1) || self.statement_timeout > Self::LIMIT_TIMEOUT {
            return Err(StateError::invalid_argument("statement_timeout", "must be between 1 ms and a day"));
        }
        if self.reap_interval.is_some_and(|i| i.is_zero() || i > Self::LIMIT_TIMEOUT) {
            return Err(StateError::invalid_argument(
                "reap_interval",
                "must be positive and at most a day; use None to turn it off",
            ));
        }
        if self.reap_batch == 0 {
            return Err(StateError::invalid_argument("reap_batch", "must be at least 1"));
        }
        if !(Self::MIN_MAX_VALUE_LEN..=Self::LIMIT_MAX_VALUE_LEN).contains(&self.max_value_len) {
            return Err(StateError::invalid_argument(
                "max_value_len",
                format!(
                    "must be between {} and {} bytes, got {}",
                    Self::MIN_MAX_VALUE_LEN,
                    Self::LIMIT_MAX_VALUE_LEN,
                    self.max_value_len
                ),
            ));
        }
        Ok(())
    }

    /// The connection options for every connection of the store: the URL
    /// plus session settings that the statements' correctness relies on.
    pub(crate) fn connect_options(&self) -> Result<PgConnectOptions, StateError> {
        let millis = self.statement_timeout.as_millis().max(1);
        Ok(self.parsed_url()?.application_name("statekit").options([
            ("statement_timeout", millis.to_string()),
            // The atomicity arguments in `queries/*.sql` are made for READ
            // COMMITTED (re-evaluation of conditions on the latest row
            // version); pin it so a server-wide default of REPEATABLE READ
            // or SERIALIZABLE cannot change them.
            ("default_transaction_isolation", "read committed".to_owned()),
        ]))
    }

    fn parsed_url(&self) -> Result<PgConnectOptions, StateError> {
        // sqlx's parse error may quote the URL; report only the redacted form.
        PgConnectOptions::from_str(&self.url).map_err(|_| {
            StateError::invalid_argument("url", format!("{} is not a PostgreSQL connection URL", self.redacted_url()))
        })
    }
}

/// The serialized form of a [`PostgresConfig`]: the field names of a
/// config file, every one but `url` optional.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PostgresFields {
    url: String,
    schema: Option<String>,
    prefix: Option<String>,
    pool_size: Option<u32>,
    connect_timeout_ms: Option<u64>,
    command_timeout_ms: Option<u64>,
    reap_interval_ms: Option<u64>,
    reap_batch: Option<u32>,
    max_value_len: Option<usize>,
}

impl TryFrom<PostgresFields> for PostgresConfig {
    type Error = StateError;

    /// Applies the fields over the defaults and validates the result; an
    /// error names the field as it is spelled in the file.
    fn try_from(fields: PostgresFields) -> Result<PostgresConfig, StateError> {
        let file_name = |name| match name {
            "table_prefix" => "prefix",
            "connect_timeout" => "connect_timeout_ms",
            "statement_timeout" => "command_timeout_ms",
            "reap_interval" => "reap_interval_ms",
            other => other,
        };
        let renamed = |error| match error {
            StateError::InvalidArgument { name, reason } => {
                StateError::InvalidArgument { name: file_name(name), reason }
            }
            other => other,
        };
        let mut config = PostgresConfig::new(fields.url);
        if let Some(schema) = fields.schema {
            config = config.with_schema(schema)?;
        }
        if let Some(prefix) = fields.prefix {
            config = config.with_table_prefix(prefix).map_err(renamed)?;
        }
        if let Some(size) = fields.pool_size {
            config = config.with_pool_size(size);
        }
        if let Some(ms) = fields.connect_timeout_ms {
            config = config.with_connect_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = fields.command_timeout_ms {
            config = config.with_statement_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = fields.reap_interval_ms {
            // A file cannot say `None`; 0 is the documented "off".
            config = config.with_reap_interval((ms > 0).then(|| Duration::from_millis(ms)));
        }
        if let Some(rows) = fields.reap_batch {
            config = config.with_reap_batch(rows);
        }
        if let Some(bytes) = fields.max_value_len {
            config = config.with_max_value_len(bytes);
        }
        config.validate().map_err(renamed)?;
        Ok(config)
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresConfig")
            .field("url", &self.redacted_url())
            .field("schema", &self.schema)
            .field("table_prefix", &self.table_prefix)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("reap_interval", &self.reap_interval)
            .field("reap_batch", &self.reap_batch)
            .field("max_value_len", &self.max_value_len)
            .finish()
    }
}

/// Checks a name that is spliced (quoted) into SQL: lower-case ASCII
/// letters, digits and underscores, not starting with a digit. Quoting
/// alone would make any text safe, but a narrow alphabet also keeps names
/// case-stable and free of surprises in `psql`.
fn validate_identifier(name: &'static str, text: &str) -> Result<(), StateError> {
    let mut bytes = text.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_');
    let rest_ok = bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !first_ok || !rest_ok || text.len() > MAX_IDENTIFIER_LEN {
        return Err(StateError::invalid_argument(
            name,
            format!("{text:?} must match [a-z_][a-z0-9_]* and be at most {MAX_IDENTIFIER_LEN} bytes"),
        ));
    }
    Ok(())
}

/// A validated identifier, double-quoted for SQL.
pub(crate) fn quoted(identifier: &str) -> String {
    // Validation admits no `"`, so wrapping is enough; doubling keeps it
    // correct even if that ever changes.
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_narrow() {
        for ok in ["public", "_x", "a1_b2", &"a".repeat(MAX_IDENTIFIER_LEN)] {
            assert!(validate_identifier("schema", ok).is_ok(), "{ok:?}");
        }
        let too_long = "a".repeat(MAX_IDENTIFIER_LEN + 1);
        for bad in ["", "1a", "A", "a-b", "a b", "a\"b", "é", "a;drop", too_long.as_str()] {
            assert!(validate_identifier("schema", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn reserved_schema_names_are_refused() {
        assert!(PostgresConfig::new("postgres://h/db").with_schema("pg_catalog").is_err());
    }

    #[test]
    fn debug_and_errors_never_show_the_password() {
        let config = PostgresConfig::new("postgres://app:hunter2@db:5432/state");
        assert!(!format!("{config:?}").contains("hunter2"));
        let bad = PostgresConfig::new("postgres://app:hunter2@db:notaport/state");
        let error = bad.validate().map(|_| ()).unwrap_err();
        assert!(!format!("{error} {error:?}").contains("hunter2"), "{error:?}");
    }

    fn from_toml(text: &str) -> Result<PostgresConfig, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn deserializing_applies_the_fields_over_the_defaults() {
        let config = from_toml(
            "url = \"postgres://h/db\"\nschema = \"state\"\nprefix = \"orders\"\npool_size = 4\n\
             command_timeout_ms = 750\nreap_interval_ms = 0\nreap_batch = 10\n",
        )
        .unwrap();
        assert_eq!((config.schema(), config.table_prefix(), config.pool_size()), ("state", "orders", 4));
        assert_eq!(config.statement_timeout(), Duration::from_millis(750));
        assert_eq!((config.reap_interval(), config.reap_batch()), (None, 10));
        assert_eq!(config.connect_timeout(), PostgresConfig::DEFAULT_CONNECT_TIMEOUT);
    }

    #[test]
    fn deserializing_refuses_fields_of_other_backends_and_needs_a_url() {
        let error = from_toml("url = \"postgres://h/db\"\ntable_name = \"t\"\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("unknown field `table_name`"), "{error}");
        let error = from_toml("schema = \"state\"\n").map(|_| ()).unwrap_err().to_string();
        assert!(error.contains("missing field `url`"), "{error}");
    }

    #[test]
    fn deserializing_validates_and_names_the_field_as_written() {
        for (field, text) in [
            ("schema", "schema = \"pg_catalog\""),
            ("prefix", "prefix = \"Bad-Name\""),
            ("pool_size", "pool_size = 0"),
            ("command_timeout_ms", "command_timeout_ms = 0"),
        ] {
            let error = from_toml(&format!("url = \"postgres://h/db\"\n{text}\n")).map(|_| ()).unwrap_err().to_string();
            assert!(error.contains(&format!("`{field}`")), "{field}: {error}");
        }
    }

    #[test]
    fn limits_are_checked() {
        let base = PostgresConfig::new("postgres://h/db");
        assert!(base.clone().validate().is_ok());
        assert!(base.clone().with_pool_size(0).validate().is_err());
        assert!(base.clone().with_pool_size(PostgresConfig::LIMIT_POOL_SIZE).validate().is_ok());
        assert!(base.clone().with_pool_size(PostgresConfig::LIMIT_POOL_SIZE + 1).validate().is_err());
        assert!(base.clone().with_pool_size(u32::MAX).validate().is_err());
        assert!(base.clone().with_connect_timeout(Duration::ZERO).validate().is_err());
        assert!(base.clone().with_statement_timeout(Duration::from_micros(10)).validate().is_err());
        assert!(base.clone().with_reap_interval(Some(Duration::ZERO)).validate().is_err());
        assert!(base.clone().with_reap_batch(0).validate().is_err());
        assert!(base.clone().with_connect_timeout(Duration::MAX).validate().is_err());
        assert!(base.clone().with_statement_timeout(Duration::MAX).validate().is_err());
        assert!(base.clone().with_reap_interval(Some(Duration::MAX)).validate().is_err());
        assert!(base.clone().with_max_value_len(PostgresConfig::LIMIT_MAX_VALUE_LEN + 1).validate().is_err());
        assert!(base.clone().with_max_value_len(PostgresConfig::MIN_MAX_VALUE_LEN).validate().is_ok());
        assert!(base.with_max_value_len(PostgresConfig::MIN_MAX_VALUE_LEN - 1).validate().is_err());
    }
}
