//! Checking a history file: the core of the `lincheck` binary, and of any
//! program that checks files of its own models too.
//!
//! Jepsen etcd logs are always register histories and EDN key/value events
//! always key/value histories, but a JSON-lines history names its model in
//! its header, so a program chooses which models it understands: a table of
//! [`JsonlModel`] rows. [`builtin_jsonl_models`] holds this crate's own
//! models; a program with models of its own (the statekit kit, say) puts
//! its rows beside them and passes the whole table to [`check_file`].
//! [`check_file_with_view`] also draws a history that is not linearizable
//! as an HTML page (see [`html_view`]).
//!
//! ```
//! use std::io::Write;
//! use lincheck::history_file::{HistoryFormat, builtin_jsonl_models, check_file};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let path = std::env::temp_dir().join(format!("lincheck-doc-{}.jsonl", std::process::id()));
//! let mut file = std::fs::File::create(&path)?;
//! writeln!(file, r#"{{"format":"statekit-history","version":1,"model":"register"}}"#)?;
//! writeln!(file, r#"{{"client":0,"input":{{"write":3}},"output":"write","call":0,"return":10}}"#)?;
//! writeln!(file, r#"{{"client":1,"input":"read","output":{{"read":3}},"call":20,"return":30}}"#)?;
//! drop(file);
//!
//! let result = check_file(HistoryFormat::Jsonl, &path, &Default::default(), &builtin_jsonl_models())?;
//! assert!(result.is_linearizable());
//! # std::fs::remove_file(&path)?;
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::str::FromStr;

use serde::de::DeserializeOwned;

use crate::formats::{FormatError, JsonlReader, read_etcd_log, read_kv_edn};
use crate::{CheckOptions, CheckResult, History, KeyValue, Model, Register, check, html_view};

/// The history file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    /// Jepsen etcd logs, checked against the [`Register`] model.
    Jepsen,
    /// EDN key/value events, checked against the [`KeyValue`] model.
    Kv,
    /// JSON lines ([`formats`](crate::formats)), checked against the model
    /// its header names, looked up in a [`JsonlModel`] table.
    Jsonl,
}

impl HistoryFormat {
    /// Every format, in the order help texts list them.
    pub const ALL: [HistoryFormat; 3] = [HistoryFormat::Jepsen, HistoryFormat::Kv, HistoryFormat::Jsonl];

    /// The format's name on the command line (`--format NAME`).
    pub fn name(&self) -> &'static str {
        match self {
            HistoryFormat::Jepsen => "jepsen",
            HistoryFormat::Kv => "kv",
            HistoryFormat::Jsonl => "jsonl",
        }
    }
}

impl fmt::Display for HistoryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for HistoryFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<HistoryFormat, String> {
        HistoryFormat::ALL.into_iter().find(|format| format.name() == text).ok_or_else(|| {
            let names: Vec<&str> = HistoryFormat::ALL.iter().map(HistoryFormat::name).collect();
            format!("unknown format {text:?} (expected {})", names.join(", "))
        })
    }
}

/// The verdict on a history file, and the view of a failure.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CheckedFile {
    /// The verdict.
    pub result: CheckResult,
    /// When the history is not linearizable, the self-contained HTML page
    /// that draws it (see [`html_view::render`]); otherwise `None`.
    pub html_view: Option<String>,
}

impl CheckedFile {
    /// Checks `history` against `model`, drawing it if it fails.
    pub fn check<M: Model>(model: &M, history: &History<M::Input, M::Output>, options: &CheckOptions) -> CheckedFile {
        let result = check(model, history, options);
        let html_view = match &result {
            CheckResult::NotLinearizable(explanation) => Some(html_view::render(model, history, explanation)),
            CheckResult::Linearizable | CheckResult::Unknown(_) => None,
        };
        CheckedFile { result, html_view }
    }
}

/// Checks a JSON-lines history, already past its header, as one model's.
pub type JsonlCheck<R> = fn(JsonlReader<R>, &CheckOptions) -> Result<CheckedFile, FormatError>;

/// One row of a table of JSON-lines models: the model's name in history
/// headers, and how to check a history of it.
pub struct JsonlModel<R> {
    /// The `model` field of the header this row handles.
    pub name: &'static str,
    /// Reads and checks the operations.
    pub check: JsonlCheck<R>,
}

impl<R> fmt::Debug for JsonlModel<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JsonlModel").field("name", &self.name).finish_non_exhaustive()
    }
}

impl<R: BufRead> JsonlModel<R> {
    /// The row for model `M` (its default value) under `name`.
    pub fn of<M>(name: &'static str) -> JsonlModel<R>
    where
        M: Model + Default,
        M::Input: DeserializeOwned,
        M::Output: DeserializeOwned,
    {
        JsonlModel { name, check: check_default_model::<M, R> }
    }
}

fn check_default_model<M, R>(reader: JsonlReader<R>, options: &CheckOptions) -> Result<CheckedFile, FormatError>
where
    M: Model + Default,
    M::Input: DeserializeOwned,
    M::Output: DeserializeOwned,
    R: BufRead,
{
    let history = reader.read_history::<M::Input, M::Output>()?;
    Ok(CheckedFile::check(&M::default(), &history, options))
}

/// The JSON-lines models this crate ships: [`Register`] and [`KeyValue`].
pub fn builtin_jsonl_models<R: BufRead>() -> Vec<JsonlModel<R>> {
    vec![JsonlModel::of::<Register>(Register::NAME), JsonlModel::of::<KeyValue>(KeyValue::NAME)]
}

/// Reads the history at `path` in `format` and checks it; a JSON-lines
/// history against the row of `jsonl_models` its header names.
///
/// # Errors
/// A message for the user if the file cannot be read or parsed, or names a
/// model the table lacks. A Jepsen-style file with no operations is
/// reported as an error too: it almost always means the wrong format.
pub fn check_file(
    format: HistoryFormat,
    path: &Path,
    options: &CheckOptions,
    jsonl_models: &[JsonlModel<BufReader<File>>],
) -> Result<CheckResult, String> {
    check_file_with_view(format, path, options, jsonl_models).map(|checked| checked.result)
}

/// As [`check_file`], and draws a history that is not linearizable as an
/// HTML page.
///
/// # Errors
/// As [`check_file`].
pub fn check_file_with_view(
    format: HistoryFormat,
    path: &Path,
    options: &CheckOptions,
    jsonl_models: &[JsonlModel<BufReader<File>>],
) -> Result<CheckedFile, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = BufReader::new(file);
    let result = match format {
        HistoryFormat::Jepsen => read_etcd_log(reader).map(|h| check_read(&Register, &h, options)),
        HistoryFormat::Kv => read_kv_edn(reader).map(|h| check_read(&KeyValue, &h, options)),
        HistoryFormat::Jsonl => check_jsonl(reader, options, jsonl_models).map(Some),
    };
    match result {
        Ok(Some(verdict)) => Ok(verdict),
        Ok(None) => Err(format!("{}: the file holds no operations; is the format right?", path.display())),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn check_read<M: Model>(
    model: &M,
    history: &History<M::Input, M::Output>,
    options: &CheckOptions,
) -> Option<CheckedFile> {
    (!history.is_empty()).then(|| CheckedFile::check(model, history, options))
}

/// Checks a JSON-lines history against the table row its header names.
fn check_jsonl<R: BufRead>(
    reader: R,
    options: &CheckOptions,
    models: &[JsonlModel<R>],
) -> Result<CheckedFile, FormatError> {
    let jsonl = JsonlReader::new(reader)?;
    match models.iter().find(|row| row.name == jsonl.model()) {
        Some(row) => (row.check)(jsonl, options),
        None => {
            let names: Vec<String> = models.iter().map(|row| format!("{:?}", row.name)).collect();
            Err(FormatError::Syntax {
                line: 1,
                message: format!("unsupported model {:?} (supported: {})", jsonl.model(), names.join(", ")),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{HistoryFormat, builtin_jsonl_models, check_jsonl};
    use crate::CheckOptions;

    #[test]
    fn every_format_parses_back_from_its_name() {
        for format in HistoryFormat::ALL {
            assert_eq!(format.name().parse::<HistoryFormat>(), Ok(format));
        }
        assert!("edn".parse::<HistoryFormat>().unwrap_err().contains("jepsen, kv, jsonl"));
    }

    #[test]
    fn a_model_missing_from_the_table_is_an_error_listing_the_table() {
        let text = "{\"format\":\"statekit-history\",\"version\":1,\"model\":\"queue\"}\n";
        let error = check_jsonl(text.as_bytes(), &CheckOptions::default(), &builtin_jsonl_models()).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("\"queue\"") && message.contains("\"register\", \"kv\""), "{message}");
    }

    #[test]
    fn a_failing_history_comes_with_its_view() {
        let text = "{\"format\":\"statekit-history\",\"version\":1,\"model\":\"register\"}\n\
                    {\"client\":0,\"input\":\"read\",\"output\":{\"read\":7},\"call\":0,\"return\":10}\n";
        let checked = check_jsonl(text.as_bytes(), &CheckOptions::default(), &builtin_jsonl_models()).unwrap();
        assert!(matches!(checked.result, crate::CheckResult::NotLinearizable(_)));
        assert!(checked.html_view.is_some_and(|page| page.contains("read: 7")));
    }

    #[test]
    fn a_builtin_model_is_checked() {
        let text = "{\"format\":\"statekit-history\",\"version\":1,\"model\":\"kv\"}\n";
        let checked = check_jsonl(text.as_bytes(), &CheckOptions::default(), &builtin_jsonl_models()).unwrap();
        assert!(checked.result.is_linearizable());
        assert_eq!(checked.html_view, None);
    }
}
