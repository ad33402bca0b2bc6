//! Checking a history file with the statekit contract's model beside the
//! checker's own: the core of `statekit lincheck`.
//!
//! The file formats and the checking live in [`lincheck::history_file`];
//! this module adds one row to its JSON-lines model table, so histories the
//! kit recorded (header model `statekit`) are checked against
//! [`StatekitModel`].

use std::io::BufRead;
use std::path::Path;

use lincheck::history_file::{CheckedFile, HistoryFormat, JsonlModel, builtin_jsonl_models};
use lincheck::{CheckOptions, CheckResult};

use crate::history_model::StatekitModel;

/// Every JSON-lines model `statekit lincheck` understands: the statekit
/// contract's, then the checker's built-in ones.
pub fn jsonl_models<R: BufRead>() -> Vec<JsonlModel<R>> {
    let mut models = vec![JsonlModel::of::<StatekitModel>(StatekitModel::NAME)];
    models.extend(builtin_jsonl_models());
    models
}

/// Reads the history at `path` and checks it, a JSON-lines history against
/// the model its header names (see [`jsonl_models`]).
///
/// # Errors
/// As [`lincheck::history_file::check_file`]: a message for the user if the
/// file cannot be read or parsed, names an unknown model, or holds no
/// operations.
pub fn check_file(format: HistoryFormat, path: &Path, options: &CheckOptions) -> Result<CheckResult, String> {
    lincheck::history_file::check_file(format, path, options, &jsonl_models())
}

/// As [`check_file`], and draws a history that is not linearizable as a
/// self-contained HTML page (see [`lincheck::html_view`]).
///
/// # Errors
/// As [`check_file`].
pub fn check_file_with_view(format: HistoryFormat, path: &Path, options: &CheckOptions) -> Result<CheckedFile, String> {
    lincheck::history_file::check_file_with_view(format, path, options, &jsonl_models())
}
