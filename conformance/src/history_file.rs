//! Checking a history file: the shared core of the `lincheck` binary and
//! `statekit lincheck`.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::str::FromStr;

use crate::history_model::StatekitModel;
use crate::linearizability::formats::{FormatError, JsonlReader, check_jsonl_with, read_etcd_log, read_kv_edn};
use crate::linearizability::{CheckOptions, CheckResult, History, KeyValue, Model, Register, check};

/// The history file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HistoryFormat {
    /// Jepsen etcd logs, checked against the register model.
    Jepsen,
    /// EDN key/value events, checked against the key/value model.
    Kv,
    /// statekit JSON lines, checked against the model its header names
    /// (`statekit`, `register` or `kv`).
    Jsonl,
}

impl FromStr for HistoryFormat {
    type Err = String;

    fn from_str(text: &str) -> Result<HistoryFormat, String> {
        match text {
            "jepsen" => Ok(HistoryFormat::Jepsen),
            "kv" => Ok(HistoryFormat::Kv),
            "jsonl" => Ok(HistoryFormat::Jsonl),
            other => Err(format!("unknown format {other:?} (expected jepsen, kv or jsonl)")),
        }
    }
}

/// Reads the history at `path` and checks it.
///
/// # Errors
/// A message for the user if the file cannot be read or parsed. A
/// Jepsen-style file with no operations is reported as an error too: it
/// almost always means the wrong `--format`.
pub fn check_file(format: HistoryFormat, path: &Path, options: &CheckOptions) -> Result<CheckResult, String> {
    let file = File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let reader = BufReader::new(file);
    let result = match format {
        HistoryFormat::Jepsen => read_etcd_log(reader).map(|h| check_read(&Register, &h, options)),
        HistoryFormat::Kv => read_kv_edn(reader).map(|h| check_read(&KeyValue, &h, options)),
        HistoryFormat::Jsonl => check_jsonl(reader, options).map(Some),
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
) -> Option<CheckResult> {
    (!history.is_empty()).then(|| check(model, history, options))
}

/// Checks a JSON-lines history against the model its header names.
fn check_jsonl(reader: BufReader<File>, options: &CheckOptions) -> Result<CheckResult, FormatError> {
    let jsonl = JsonlReader::new(reader)?;
    // One arm per model: a new model is one more line here.
    match jsonl.model() {
        StatekitModel::NAME => check_jsonl_with(&StatekitModel, jsonl, options),
        Register::NAME => check_jsonl_with(&Register, jsonl, options),
        KeyValue::NAME => check_jsonl_with(&KeyValue, jsonl, options),
        other => Err(FormatError::Syntax {
            line: 1,
            message: format!(
                "unsupported model {other:?} (supported: {:?}, {:?}, {:?})",
                StatekitModel::NAME,
                Register::NAME,
                KeyValue::NAME
            ),
        }),
    }
}
