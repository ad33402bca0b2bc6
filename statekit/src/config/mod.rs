//! The configuration: the `[state]` table of a TOML file, overridden by
//! environment variables, read into the chosen backend's own typed config.
//!
//! ```toml
//! [server]                           # the application's own tables are
//! listen = "0.0.0.0:8080"            # its business: statekit ignores them
//!
//! [state]
//! backend = "redis"                  # memory (default) | redis | postgres | dynamodb
//! url = "redis://127.0.0.1:6379"     # the fields of the chosen backend
//! prefix = "myapp"
//! ```
//!
//! # How `[state]` is read
//!
//! - Only the top-level table `[state]` is statekit's: an application keeps
//!   it in its own config file beside its own tables, which are ignored. A
//!   file without `[state]` (or no file at all) means the in-memory backend.
//! - `backend` chooses a row of the driver table ([`crate::drivers`]);
//!   `migrate_on_connect` (default `true`) says whether
//!   [`connect`](crate::connect) creates what the backend needs. Every other
//!   key is a field of the chosen backend's config type
//!   ([`MemoryConfig`](crate::MemoryConfig), `RedisConfig`,
//!   `PostgresConfig`, `DynamoConfig`), which deserializes and validates
//!   itself. A key the chosen backend does not take is an error naming the
//!   key, the line and the backend (and which backends do take it), so
//!   `schema` under `backend = "redis"` is refused rather than ignored.
//! - A value of the wrong type is an error naming the key and line; a
//!   backend a build does not include is an error naming the cargo feature
//!   to enable.
//!
//! # Environment overrides
//!
//! `STATEKIT_BACKEND` and `STATEKIT_MIGRATE_ON_CONNECT` override the two
//! keys every backend shares. Then, for each field of the *chosen* backend,
//! `STATEKIT_<FIELD>` (upper case: `STATEKIT_URL`, `STATEKIT_POOL_SIZE`)
//! overrides the file's value or supplies a missing one. Its text is parsed
//! as the field's type — a number for `pool_size`, text for `prefix` — and
//! an unparsable value is an error naming the variable.
//!
//! Variables that name no field of the chosen backend are never read: the
//! environment is shared by every program of a deployment (and by test
//! harnesses, which set `STATEKIT_REDIS_URL` or `STATEKIT_SCALE`), so
//! `STATEKIT_SCHEMA` is not an error where the backend is Redis — it is
//! simply not a Redis setting. The file is different: what is written in
//! `[state]` was written for statekit, so a misplaced key there is an error.
//! (Consequently, switching a file's backend with `STATEKIT_BACKEND` works
//! when the file's keys suit the new backend too, and fails naming the first
//! key that does not.)

mod error;
pub(crate) mod field;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

pub use self::error::ConfigError;
use self::field::{Field, FieldError, Fields, Origin};
use crate::driver::{self, BackendConfig, Driver, Ops, Settings};

/// The backend when `[state]` does not name one.
pub const DEFAULT_BACKEND: &str = "memory";

/// statekit's configuration: the chosen backend, its typed config, and
/// whether [`connect`](crate::connect) creates what the backend needs.
///
/// Read one from a file with [`Config::load`] (see the [module
/// docs](self) for the format), or build one in code from a backend's
/// config with [`Config::new`]. `Debug` shows the backend's config with its
/// secrets redacted.
///
/// ```
/// use statekit::{Config, MemoryConfig};
///
/// let config = Config::from_toml(
///     "[server]\nlisten = \"0.0.0.0:8080\"\n\n[state]\nbackend = \"memory\"\nmax_value_len = 65536\n",
///     "app.toml".as_ref(),
/// )?;
/// assert_eq!(config.backend(), "memory");
/// assert_eq!(config.backend_config::<MemoryConfig>().map(|c| c.max_value_len()), Some(65536));
///
/// let misplaced = Config::from_toml("[state]\nbackend = \"memory\"\nschema = \"app\"\n", "app.toml".as_ref());
/// assert!(misplaced.unwrap_err().to_string().contains("`schema`"));
/// # Ok::<(), statekit::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct Config {
    driver: &'static Driver,
    ops: &'static Ops,
    settings: Settings,
    migrate_on_connect: bool,
}

impl Config {
    /// A configuration for the backend that `config` belongs to (a
    /// [`MemoryConfig`](crate::MemoryConfig), or the config type of a
    /// compiled-in backend), with `migrate_on_connect` on.
    pub fn new<C: BackendConfig>(config: C) -> Config {
        let (driver, ops) = C::row();
        Config { driver, ops, settings: Arc::new(config), migrate_on_connect: true }
    }

    /// Sets whether [`connect`](crate::connect) creates what the backend
    /// needs (tables) when it is missing — the default — or only checks
    /// what exists, for deployments whose credentials may not change the
    /// schema (run [`migrate`](crate::migrate) with other credentials).
    pub fn with_migrate_on_connect(mut self, migrate: bool) -> Config {
        self.migrate_on_connect = migrate;
        self
    }

    /// The chosen backend's name (`memory`, `redis`, ...).
    pub fn backend(&self) -> &'static str {
        self.driver.name()
    }

    /// Whether [`connect`](crate::connect) creates what is missing.
    pub fn migrate_on_connect(&self) -> bool {
        self.migrate_on_connect
    }

    /// The backend's typed config, if the chosen backend's config type is
    /// `C`.
    pub fn backend_config<C: BackendConfig>(&self) -> Option<&C> {
        let settings: &dyn std::any::Any = self.settings.as_ref();
        settings.downcast_ref::<C>()
    }

    /// The address of the server the backend talks to, from its URL's
    /// `host:port`; `None` for the in-memory backend, a URL without a port,
    /// or one that does not resolve.
    pub fn server_address(&self) -> Option<SocketAddr> {
        let url = (self.ops.server_url)(&self.settings)?;
        authority(&url).1.to_socket_addrs().ok()?.next()
    }

    /// The same configuration against `address` instead of the server's
    /// `host:port` (a fault proxy in front of it, say), with short connect
    /// and operation timeouts (300 ms) so that an operation caught in a
    /// fault gives up while the fault lasts, and nothing created on
    /// connect. `None` for a backend without a server, or one reached
    /// through more servers than the one its URL names (Redis Cluster and
    /// Sentinel: the client learns the others' addresses and goes there
    /// directly, past the proxy).
    pub fn through(&self, address: SocketAddr) -> Option<Config> {
        let url = (self.ops.server_url)(&self.settings)?;
        let (start, _, rest) = authority(&url);
        let redirected = format!("{start}{address}{rest}");
        let settings = (self.ops.through)(&self.settings, redirected)?;
        Some(Config { settings, migrate_on_connect: false, ..self.clone() })
    }

    /// Parses TOML text without looking at the environment; `origin` names
    /// the source in errors.
    ///
    /// # Errors
    /// [`ConfigError`] naming the line, key, backend or cargo feature at
    /// fault.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Config, ConfigError> {
        Config::from_toml_and_env(text, origin, |_| None)
    }

    /// Parses TOML text, then applies the overrides that `env` returns for
    /// `STATEKIT_<FIELD>` names (see the [module docs](self)).
    ///
    /// # Errors
    /// As [`from_toml`](Self::from_toml), and
    /// [`ConfigError::Environment`] naming a variable whose value does not
    /// parse.
    pub fn from_toml_and_env(
        text: &str,
        origin: &Path,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let fields = state_table(text, origin)?;
        assemble(fields, Some(origin), &env)
    }

    /// The configuration given by `env` alone, as with no config file:
    /// the in-memory backend unless `STATEKIT_BACKEND` names another.
    ///
    /// # Errors
    /// As [`from_toml_and_env`](Self::from_toml_and_env).
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        assemble(Vec::new(), None, &env)
    }

    /// Reads a file, then applies the process's environment overrides.
    ///
    /// # Errors
    /// [`ConfigError::Read`] if the file cannot be read; otherwise as
    /// [`from_toml_and_env`](Self::from_toml_and_env).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        Config::from_toml_and_env(&text, path, process_env)
    }

    /// The config from `path` if given, else from the environment alone
    /// (the in-memory backend by default).
    ///
    /// # Errors
    /// As [`Config::load`].
    pub fn load_or_default(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(path) => Config::load(path),
            None => Config::from_env(process_env),
        }
    }

    pub(crate) fn ops(&self) -> &'static Ops {
        self.ops
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings.clone()
    }
}

impl Default for Config {
    /// The in-memory backend with its defaults.
    fn default() -> Config {
        Config::new(crate::MemoryConfig::new())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("backend", &self.driver.name())
            .field("migrate_on_connect", &self.migrate_on_connect)
            // Each backend's Debug redacts its own secrets.
            .field("settings", &self.settings)
            .finish()
    }
}

/// The process environment. A value that is not Unicode is passed on with
/// replacement characters, so it fails the field's parsing or validation
/// visibly instead of being skipped.
fn process_env(variable: &str) -> Option<String> {
    std::env::var_os(variable).map(|value| value.to_string_lossy().into_owned())
}

/// A config file as statekit reads it: `[state]`, with the position of each
/// value. No `deny_unknown_fields`: every other top-level table belongs to
/// the application.
#[derive(Deserialize)]
struct Document {
    state: Option<BTreeMap<String, toml::Spanned<toml::Value>>>,
}

/// The keys of `[state]` in file order, each with its line.
fn state_table(text: &str, path: &Path) -> Result<Vec<Field>, ConfigError> {
    let document: Document = toml::from_str(text)
        .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string().trim_end().to_owned() })?;
    let line_of = |offset: usize| text.get(..offset).map_or(1, |before| before.matches('\n').count() + 1);
    let mut fields: Vec<(usize, Field)> = document
        .state
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| {
            let start = value.span().start;
            (start, Field::from_file(name, line_of(start), value.into_inner()))
        })
        .collect();
    fields.sort_by_key(|(start, _)| *start);
    Ok(fields.into_iter().map(|(_, field)| field).collect())
}

/// Chooses the driver and builds its config from the file's fields and the
/// environment; see the module docs for the rules.
fn assemble(
    mut fields: Vec<Field>,
    path: Option<&Path>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let errors = Errors { path, backend: "statekit" };
    let backend = overridden(take(&mut fields, "backend"), env, "backend");
    let migrate_on_connect = overridden(take(&mut fields, "migrate_on_connect"), env, "migrate_on_connect");

    let (name, from) = match backend {
        Some(field) => {
            let from = errors.describe(&field.origin);
            (field.parse::<String>().map_err(|e| errors.convert(e))?, from)
        }
        None => (DEFAULT_BACKEND.to_owned(), "the default".to_owned()),
    };
    let migrate_on_connect = match migrate_on_connect {
        Some(field) => field.parse::<bool>().map_err(|e| errors.convert(e))?,
        None => true,
    };
    let driver = driver::find(&name).ok_or_else(|| ConfigError::UnknownBackend {
        name: name.clone(),
        from,
        known: driver::drivers().map(Driver::name).collect(),
    })?;
    let ops = driver.ops().ok_or(ConfigError::NotCompiled { backend: driver.name(), feature: driver.feature() })?;
    let errors = Errors { path, backend: driver.name() };

    let accepted = (ops.fields)();
    if let Some(field) = fields.iter().find(|field| !accepted.contains(&field.name.as_str())) {
        return Err(errors.unknown(field, accepted));
    }
    for name in accepted {
        if let Some(value) = Field::from_env(name, env) {
            fields.retain(|field| field.name != *name);
            fields.push(value);
        }
    }
    let settings = (ops.parse)(Fields(fields)).map_err(|e| errors.convert(e))?;
    Ok(Config { driver, ops, settings, migrate_on_connect })
}

/// Removes the field `name` from `fields`.
fn take(fields: &mut Vec<Field>, name: &str) -> Option<Field> {
    let index = fields.iter().position(|field| field.name == name)?;
    Some(fields.remove(index))
}

/// The environment's value for `name` if it has one, else the file's.
fn overridden(file: Option<Field>, env: &dyn Fn(&str) -> Option<String>, name: &str) -> Option<Field> {
    Field::from_env(name, env).or(file)
}

/// Turns field-level errors into [`ConfigError`]s naming the file and
/// backend.
struct Errors<'a> {
    path: Option<&'a Path>,
    backend: &'static str,
}

impl Errors<'_> {
    fn path(&self) -> PathBuf {
        self.path.map(Path::to_owned).unwrap_or_default()
    }

    fn origin(&self) -> String {
        match self.path {
            Some(path) => path.display().to_string(),
            None => "no config file".to_owned(),
        }
    }

    fn describe(&self, origin: &Origin) -> String {
        match origin {
            Origin::File { line } => format!("{}, line {line}", self.origin()),
            Origin::Env { variable } => variable.clone(),
        }
    }

    /// A key of the file that the backend, taking `accepted`, does not
    /// take; the error says which compiled-in backends do.
    fn unknown(&self, field: &Field, accepted: &[&'static str]) -> ConfigError {
        let owners = driver::drivers()
            .filter(|driver| driver.ops().is_some_and(|ops| (ops.fields)().contains(&field.name.as_str())))
            .map(Driver::name)
            .collect();
        let line = match field.origin {
            Origin::File { line } => line,
            Origin::Env { .. } => 0,
        };
        ConfigError::UnknownField {
            path: self.path(),
            line,
            field: field.name.clone(),
            backend: self.backend,
            accepted: accepted.to_vec(),
            owners,
        }
    }

    fn convert(&self, error: FieldError) -> ConfigError {
        match error {
            FieldError::Value { name, origin: Origin::File { line }, message } => {
                ConfigError::Value { path: self.path(), line, field: name, message }
            }
            FieldError::Value { name, origin: Origin::Env { variable }, message } => {
                ConfigError::Environment { variable, field: name, message }
            }
            FieldError::Missing(field) => ConfigError::Missing {
                origin: self.origin(),
                backend: self.backend,
                field,
                variable: Field::variable(field),
            },
            FieldError::Unknown(field) => ConfigError::Invalid {
                origin: self.origin(),
                backend: self.backend,
                message: format!("unknown field `{field}`"),
            },
            FieldError::Invalid(message) => {
                ConfigError::Invalid { origin: self.origin(), backend: self.backend, message }
            }
        }
    }
}

#[cfg(test)]
mod tests;

/// A URL cut around its `host:port`: what comes before it (scheme and
/// credentials), the `host:port` itself, and what follows (path, query).
fn authority(url: &str) -> (&str, &str, &str) {
    let after_scheme = url.find("://").map_or(0, |at| at + 3);
    let end = url[after_scheme..].find(['/', '?']).map_or(url.len(), |at| after_scheme + at);
    let start = url[after_scheme..end].rfind('@').map_or(after_scheme, |at| after_scheme + at + 1);
    (&url[..start], &url[start..end], &url[end..])
}
