//! Reading and writing histories in files.
//!
//! - [`read_etcd_log`]: Jepsen's etcd test logs, for the [`Register`](super::Register) model;
//! - [`read_kv_edn`]: Jepsen-style EDN event lines, for the [`KeyValue`](super::KeyValue) model;
//! - [`JsonlReader`] and [`write_jsonl`]: this crate's own JSON-lines format,
//!   for any model whose inputs and outputs are serde-serializable.

use std::error::Error;
use std::fmt;
use std::io;

use super::history::InvalidOperation;

mod edn;
mod etcd_log;
mod jepsen;
mod jsonl;
mod kv_edn;

pub use etcd_log::read_etcd_log;
pub use jsonl::{FORMAT_NAME, FORMAT_VERSION, JsonlReader, check_jsonl_with, write_jsonl};
pub use kv_edn::read_kv_edn;

/// Why a history file could not be read or written.
#[derive(Debug)]
pub enum FormatError {
    /// Reading or writing failed.
    Io(io::Error),
    /// A line does not have the shape the format requires.
    Syntax {
        /// The 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A JSON-lines line is not valid JSON for the expected types.
    Json {
        /// The 1-based line number.
        line: usize,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// An input or output could not be serialized to JSON.
    Serialize(serde_json::Error),
    /// An operation is impossible (it returns before its call).
    Operation {
        /// The 1-based line number where the operation ends.
        line: usize,
        /// What is wrong with it.
        source: InvalidOperation,
    },
}

impl FormatError {
    /// A [`FormatError::Syntax`] at `line`.
    pub(crate) fn syntax(line: usize, message: impl Into<String>) -> Self {
        FormatError::Syntax { line, message: message.into() }
    }
}

impl fmt::Display for FormatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FormatError::Io(source) => write!(f, "I/O error: {source}"),
            FormatError::Syntax { line, message } => write!(f, "line {line}: {message}"),
            FormatError::Json { line, source } => {
                // Each line is parsed on its own, so serde's own position is
                // always "line 1"; report the column only.
                let position = format!(" at line {} column {}", source.line(), source.column());
                let message = source.to_string();
                let message = message.strip_suffix(&position).unwrap_or(&message);
                write!(f, "line {line}, column {}: {message}", source.column())
            }
            FormatError::Serialize(source) => write!(f, "cannot serialize an operation: {source}"),
            FormatError::Operation { line, source } => write!(f, "line {line}: {source}"),
        }
    }
}

impl Error for FormatError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            FormatError::Io(source) => Some(source),
            FormatError::Syntax { .. } => None,
            FormatError::Json { source, .. } => Some(source),
            FormatError::Serialize(source) => Some(source),
            FormatError::Operation { source, .. } => Some(source),
        }
    }
}

impl From<io::Error> for FormatError {
    fn from(source: io::Error) -> Self {
        FormatError::Io(source)
    }
}
