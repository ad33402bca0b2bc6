//! The typed configuration, read from TOML and overridden by environment
//! variables.
//!
//! ```toml
//! [state]
//! backend = "redis"                  # memory | redis | postgres | dynamodb
//! url = "redis://127.0.0.1:6379"     # endpoint or connection URL
//! prefix = "statekit"                # redis key prefix / postgres table prefix
//! ```
//!
//! Every field can be overridden by `STATEKIT_<FIELD>` (for example
//! `STATEKIT_BACKEND=postgres`, `STATEKIT_URL=...`), so the same file serves
//! every environment. With no file at all the backend is `memory`.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// The embedded in-memory store (always compiled in).
    #[default]
    Memory,
    /// Redis (cargo feature `redis`).
    Redis,
    /// PostgreSQL (cargo feature `postgres`).
    Postgres,
    /// DynamoDB (cargo feature `dynamodb`).
    Dynamodb,
}

impl BackendKind {
    /// The name used in config files.
    pub fn name(&self) -> &'static str {
        match self {
            BackendKind::Memory => "memory",
            BackendKind::Redis => "redis",
            BackendKind::Postgres => "postgres",
            BackendKind::Dynamodb => "dynamodb",
        }
    }
}

impl FromStr for BackendKind {
    type Err = String;

    fn from_str(text: &str) -> Result<BackendKind, String> {
        match text {
            "memory" => Ok(BackendKind::Memory),
            "redis" => Ok(BackendKind::Redis),
            "postgres" => Ok(BackendKind::Postgres),
            "dynamodb" => Ok(BackendKind::Dynamodb),
            other => Err(format!("unknown backend {other:?}: expected memory, redis, postgres or dynamodb")),
        }
    }
}

/// The `[state]` table: which backend, and how to reach it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    /// The backend.
    #[serde(default)]
    pub backend: BackendKind,
    /// Connection URL (redis, postgres) or endpoint (dynamodb; optional,
    /// defaults to AWS).
    pub url: Option<String>,
    /// AWS region (dynamodb).
    pub region: Option<String>,
    /// Table name (dynamodb).
    pub table_name: Option<String>,
    /// Access key id (dynamodb), for DynamoDB Local; leave unset on AWS to
    /// use the standard credential chain (environment, profile, role).
    pub access_key_id: Option<String>,
    /// Secret access key (dynamodb), with `access_key_id`. Never shown in
    /// `Debug` or errors.
    pub secret_access_key: Option<String>,
    /// Key prefix (redis) or table prefix (postgres).
    pub prefix: Option<String>,
    /// Schema (postgres).
    pub schema: Option<String>,
    /// Connection pool size (postgres).
    pub pool_size: Option<u32>,
    /// Connect timeout in milliseconds.
    pub connect_timeout_ms: Option<u64>,
    /// Per-command (statement, request) timeout in milliseconds.
    pub command_timeout_ms: Option<u64>,
    /// Largest value in bytes (memory, redis; postgres and dynamodb have fixed limits).
    pub max_value_len: Option<usize>,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: BackendKind::Memory,
            url: None,
            region: None,
            table_name: None,
            access_key_id: None,
            secret_access_key: None,
            prefix: None,
            schema: None,
            pool_size: None,
            connect_timeout_ms: None,
            command_timeout_ms: None,
            max_value_len: None,
        }
    }
}

impl fmt::Debug for StateConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateConfig")
            .field("backend", &self.backend)
            .field("url", &self.url.as_deref().map(state_api::redact_url))
            .field("region", &self.region)
            .field("table_name", &self.table_name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .field("schema", &self.schema)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("command_timeout_ms", &self.command_timeout_ms)
            .field("max_value_len", &self.max_value_len)
            .finish()
    }
}

impl StateConfig {
    /// The connect timeout, default 5 s.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms.unwrap_or(5_000))
    }

    /// The command timeout, default 5 s.
    pub fn command_timeout(&self) -> Duration {
        Duration::from_millis(self.command_timeout_ms.unwrap_or(5_000))
    }
}

/// A whole config file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The `[state]` table.
    #[serde(default)]
    pub state: StateConfig,
}

/// Why a configuration could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed, has an unknown key, or a value of the wrong
    /// type; the message names the key and position.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser.
        message: String,
    },
    /// An environment override has a bad value.
    #[error("invalid environment variable {variable}: {message}")]
    Environment {
        /// The variable.
        variable: String,
        /// What is wrong.
        message: String,
    },
    /// The backend needs a field the config does not set.
    #[error("backend {backend} needs `{field}` in [state] (or {variable})")]
    Missing {
        /// The backend.
        backend: &'static str,
        /// The field.
        field: &'static str,
        /// Its environment variable.
        variable: &'static str,
    },
    /// The backend was not compiled into this build.
    #[error(
        "backend {backend} is not compiled into this build: enable the cargo feature `{backend}` \
         (for example `cargo run -p statekit --features {backend} -- ...`)"
    )]
    NotCompiled {
        /// The backend, also the feature's name.
        backend: &'static str,
    },
}

impl Config {
    /// Parses TOML text; `origin` names the source in errors.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the offending key.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Parse { path: origin.to_owned(), message: e.to_string() })
    }

    /// Reads a file, then applies environment overrides.
    ///
    /// # Errors
    /// [`ConfigError`] naming the file, key or variable at fault.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let mut config = Config::from_toml(&text, path)?;
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    /// The config from `path` if given, else the defaults (memory), with
    /// environment overrides applied either way.
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(path) => Config::load(path),
            None => {
                let mut config = Config::default();
                config.apply_env(|name| std::env::var(name).ok())?;
                Ok(config)
            }
        }
    }

    /// Applies `STATEKIT_<FIELD>` overrides read through `lookup`.
    ///
    /// # Errors
    /// [`ConfigError::Environment`] for a value of the wrong type.
    pub fn apply_env(&mut self, lookup: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        let s = &mut self.state;
        if let Some(v) = lookup("STATEKIT_BACKEND") {
            s.backend = v.parse().map_err(|message| env_error("STATEKIT_BACKEND", message))?;
        }
        for (variable, field) in [
            ("STATEKIT_URL", &mut s.url),
            ("STATEKIT_REGION", &mut s.region),
            ("STATEKIT_TABLE_NAME", &mut s.table_name),
            ("STATEKIT_ACCESS_KEY_ID", &mut s.access_key_id),
            ("STATEKIT_SECRET_ACCESS_KEY", &mut s.secret_access_key),
            ("STATEKIT_PREFIX", &mut s.prefix),
            ("STATEKIT_SCHEMA", &mut s.schema),
        ] {
            if let Some(v) = lookup(variable) {
                *field = Some(v);
            }
        }
        parse_env(&lookup, "STATEKIT_POOL_SIZE", &mut s.pool_size)?;
        parse_env(&lookup, "STATEKIT_CONNECT_TIMEOUT_MS", &mut s.connect_timeout_ms)?;
        parse_env(&lookup, "STATEKIT_COMMAND_TIMEOUT_MS", &mut s.command_timeout_ms)?;
        parse_env(&lookup, "STATEKIT_MAX_VALUE_LEN", &mut s.max_value_len)?;
        Ok(())
    }
}

fn env_error(variable: &str, message: impl Into<String>) -> ConfigError {
    ConfigError::Environment { variable: variable.to_owned(), message: message.into() }
}

fn parse_env<T: FromStr>(
    lookup: &impl Fn(&str) -> Option<String>,
    variable: &str,
    field: &mut Option<T>,
) -> Result<(), ConfigError>
where
    T::Err: fmt::Display,
{
    if let Some(v) = lookup(variable) {
        *field = Some(v.parse().map_err(|e: T::Err| env_error(variable, format!("{v:?}: {e}")))?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(text, Path::new("test.toml"))
    }

    #[test]
    fn an_empty_file_means_memory() {
        assert_eq!(parse("").unwrap().state.backend, BackendKind::Memory);
    }

    #[test]
    fn the_documented_shape_parses() {
        let config = parse(
            "[state]\nbackend = \"dynamodb\"\nurl = \"http://localhost:8000\"\nregion = \"us-east-1\"\n\
             table_name = \"statekit_state\"\nprefix = \"statekit\"\n",
        )
        .unwrap();
        assert_eq!(config.state.backend, BackendKind::Dynamodb);
        assert_eq!(config.state.table_name.as_deref(), Some("statekit_state"));
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = parse("[state]\nbackend = \"memory\"\nurll = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("test.toml") && err.contains("urll"), "{err}");
    }

    #[test]
    fn wrong_types_are_named() {
        let err = parse("[state]\npool_size = \"many\"\n").unwrap_err().to_string();
        assert!(err.contains("pool_size"), "{err}");
        let err = parse("[state]\nbackend = \"cassandra\"\n").unwrap_err().to_string();
        assert!(err.contains("cassandra"), "{err}");
    }

    #[test]
    fn environment_overrides_every_field() {
        let mut config = parse("[state]\nbackend = \"memory\"\nprefix = \"a\"\n").unwrap();
        let env = |name: &str| match name {
            "STATEKIT_BACKEND" => Some("postgres".to_owned()),
            "STATEKIT_PREFIX" => Some("b".to_owned()),
            "STATEKIT_POOL_SIZE" => Some("7".to_owned()),
            _ => None,
        };
        config.apply_env(env).unwrap();
        assert_eq!(
            (config.state.backend, config.state.prefix.as_deref(), config.state.pool_size),
            (BackendKind::Postgres, Some("b"), Some(7))
        );
        let bad = config.apply_env(|n| (n == "STATEKIT_POOL_SIZE").then(|| "x".to_owned())).unwrap_err();
        assert!(bad.to_string().contains("STATEKIT_POOL_SIZE"), "{bad}");
    }

    #[test]
    fn debug_redacts_the_url() {
        let config = parse(
            "[state]\nbackend = \"redis\"\nurl = \"redis://:hunter2@host:6379\"\nsecret_access_key = \"hunter3\"\n",
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2") && !debug.contains("hunter3"), "{debug}");
    }
}
