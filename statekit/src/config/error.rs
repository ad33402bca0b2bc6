//! [`ConfigError`]: why a configuration could not be read, naming the
//! file, line, key, variable or cargo feature at fault.

use std::path::PathBuf;

/// Why a configuration could not be read.
///
/// Messages name what is at fault — the file and line, the `[state]` key,
/// the environment variable, the backend, the cargo feature — and never a
/// value that could be a secret: values are quoted only when they failed
/// to parse as numbers or flags.
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
    /// The file is not valid TOML, or its `state` is not a table.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, from the TOML parser, with the position.
        message: String,
    },
    /// A value in `[state]` has the wrong type or form.
    #[error("invalid config file {path}, line {line}: [state] `{field}`: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The line of the value.
        line: usize,
        /// The key.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// An environment override has a value of the wrong type or form.
    #[error("invalid environment variable {variable} ([state] `{field}`): {message}")]
    Environment {
        /// The variable.
        variable: String,
        /// The `[state]` field it sets.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// `backend` names no backend statekit knows.
    #[error("unknown backend {name:?} (from {from}): statekit knows {}", known.join(", "))]
    UnknownBackend {
        /// The name given.
        name: String,
        /// Where it was given: a file and line, or `STATEKIT_BACKEND`.
        from: String,
        /// The names statekit knows, compiled in or not.
        known: Vec<&'static str>,
    },
    /// A key in `[state]` is not a field of the chosen backend: a typo, or
    /// a field of another backend (`schema` with `backend = "redis"`).
    #[error("invalid config file {path}, line {line}: {}", unknown_field(field, backend, accepted, owners))]
    UnknownField {
        /// The file.
        path: PathBuf,
        /// The line of the key.
        line: usize,
        /// The key.
        field: String,
        /// The chosen backend.
        backend: &'static str,
        /// The fields the chosen backend takes.
        accepted: Vec<&'static str>,
        /// The compiled-in backends that do take this field, if any.
        owners: Vec<&'static str>,
    },
    /// The backend needs a field that neither the file nor the environment
    /// sets.
    #[error("backend {backend} needs `{field}` in [state] of {origin} or in {variable}")]
    Missing {
        /// Where `[state]` was read from: a file, or "no config file".
        origin: String,
        /// The backend.
        backend: &'static str,
        /// The field.
        field: &'static str,
        /// Its environment variable.
        variable: String,
    },
    /// The fields are well-formed but the backend refuses them (an
    /// identifier it cannot use, a zero timeout, a value limit out of
    /// range); the message names the field.
    #[error("invalid [state] for backend {backend} in {origin}: {message}")]
    Invalid {
        /// Where `[state]` was read from: a file, or "no config file".
        origin: String,
        /// The backend.
        backend: &'static str,
        /// What the backend said.
        message: String,
    },
    /// The backend was not compiled into this build.
    #[error(
        "backend {backend} is not compiled into this build: enable the cargo feature `{feature}` of the statekit \
         crate (for the command line: `cargo run -p statekit-cli --features {feature} -- ...`)"
    )]
    NotCompiled {
        /// The backend.
        backend: &'static str,
        /// The cargo feature of `statekit` (and `statekit-cli`) that
        /// compiles it in.
        feature: &'static str,
    },
}

fn unknown_field(field: &str, backend: &str, accepted: &[&str], owners: &[&str]) -> String {
    let whose = match owners {
        [] => format!("unknown key `{field}` in [state]"),
        owners => format!("[state] key `{field}` belongs to {}, not to backend {backend}", owners.join(" and ")),
    };
    let takes = match accepted {
        [] => "no fields".to_owned(),
        accepted => accepted.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", "),
    };
    format!("{whose}; backend {backend} takes {takes} (besides `backend` and `migrate_on_connect`)")
}
