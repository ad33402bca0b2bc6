//! The JSON-lines history format, for any model whose inputs and outputs
//! serde can (de)serialize. Its header calls it `statekit-history`, after
//! the conformance kit that first wrote it; nothing in it is specific to
//! that kit.
//!
//! The first line is a header naming the format, its version and the model
//! the history is meant for:
//!
//! ```text
//! {"format":"statekit-history","version":1,"model":"register"}
//! ```
//!
//! Every further line is one operation:
//!
//! ```text
//! {"client":0,"input":{"write":3},"output":"write","call":100,"return":250}
//! {"client":1,"input":"read","output":{"read":3},"call":120,"return":300}
//! {"client":2,"input":{"write":4},"output":null,"call":130,"return":null}
//! ```
//!
//! - `client`: the issuing client, an unsigned integer;
//! - `input`, `output`: the model's input and output types as serde renders
//!   them in JSON;
//! - `call`, `return`: instants in nanoseconds from one monotonic clock
//!   (unsigned integers), with `return` not before `call`.
//!
//! `"return": null` marks an indeterminate operation (its outcome was never
//! observed); its `output` must then be `null`. All five fields are required
//! and no others are allowed, so that a misspelt `return` cannot silently
//! make an operation indeterminate. Blank lines are ignored. Operations may
//! appear in any order; writers emit them in history order.

use std::io::{self, BufRead, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize};

use super::FormatError;
use crate::checker::{CheckOptions, CheckResult, check};
use crate::history::{History, Operation};
use crate::model::Model;

/// The `format` field of the header.
pub const FORMAT_NAME: &str = "statekit-history";
/// The `version` field of the header this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// The header line.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u64,
    model: String,
}

/// An operation line, as written.
#[derive(Serialize)]
struct OperationOut<'a, I, O> {
    client: u64,
    input: &'a I,
    output: Option<&'a O>,
    call: u64,
    #[serde(rename = "return")]
    returned: Option<u64>,
}

/// An operation line, as read. The output stays raw JSON until `return`
/// says whether it is an output at all: `null` is a perfectly good output
/// for some models, so it cannot mark indeterminacy by itself.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperationIn<I> {
    client: u64,
    input: I,
    output: serde_json::Value,
    call: u64,
    #[serde(rename = "return", deserialize_with = "required_nullable")]
    returned: Option<u64>,
}

/// Deserializes an `Option` that must be present (possibly as `null`),
/// unlike serde's default of treating a missing `Option` field as `None`.
fn required_nullable<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<u64>, D::Error> {
    Option::deserialize(deserializer)
}

/// Writes `history` in the JSON-lines format, with `model` in the header.
///
/// # Errors
///
/// [`FormatError::Io`] if writing fails, [`FormatError::Serialize`] if an
/// input or output cannot be serialized.
pub fn write_jsonl<I: Serialize, O: Serialize>(
    mut writer: impl Write,
    model: &str,
    history: &History<I, O>,
) -> Result<(), FormatError> {
    let header = Header { format: FORMAT_NAME.to_owned(), version: FORMAT_VERSION, model: model.to_owned() };
    write_line(&mut writer, &header)?;
    for operation in history.operations() {
        let line = OperationOut {
            client: operation.client,
            input: &operation.input,
            output: operation.output(),
            call: operation.call,
            returned: operation.return_at(),
        };
        write_line(&mut writer, &line)?;
    }
    writer.flush()?;
    Ok(())
}

fn write_line(writer: &mut impl Write, value: &impl Serialize) -> Result<(), FormatError> {
    serde_json::to_writer(&mut *writer, value).map_err(|source| {
        // serde_json reports the writer's own failures as JSON errors;
        // give them back their I/O kind.
        match source.io_error_kind() {
            Some(kind) => FormatError::Io(io::Error::new(kind, source)),
            None => FormatError::Serialize(source),
        }
    })?;
    writer.write_all(b"\n")?;
    Ok(())
}

/// A JSON-lines history whose header has been read: look at
/// [`model`](JsonlReader::model) to choose the types, then read the
/// operations with [`read_history`](JsonlReader::read_history).
#[derive(Debug)]
pub struct JsonlReader<R> {
    lines: io::Lines<R>,
    model: String,
    line: usize,
}

impl<R: BufRead> JsonlReader<R> {
    /// Reads and validates the header of `reader`.
    ///
    /// # Errors
    ///
    /// [`FormatError::Io`] if reading fails; [`FormatError::Json`] if the
    /// header is not a header object; [`FormatError::Syntax`] if the input
    /// is empty or the header names another format or version.
    pub fn new(reader: R) -> Result<Self, FormatError> {
        let mut lines = reader.lines();
        let first = lines.next().ok_or_else(|| FormatError::syntax(1, "the history is empty: no header line"))??;
        let header: Header = serde_json::from_str(&first).map_err(|source| FormatError::Json { line: 1, source })?;
        if header.format != FORMAT_NAME || header.version != FORMAT_VERSION {
            return Err(FormatError::syntax(
                1,
                format!(
                    "the header announces format {:?} version {}; expected {FORMAT_NAME:?} version {FORMAT_VERSION}",
                    header.format, header.version
                ),
            ));
        }
        Ok(JsonlReader { lines, model: header.model, line: 1 })
    }

    /// The model named in the header.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// Reads the operations.
    ///
    /// # Errors
    ///
    /// [`FormatError::Io`] if reading fails; [`FormatError::Json`] for a
    /// line that is not an operation with these input and output types;
    /// [`FormatError::Syntax`] for an indeterminate operation with an
    /// output; [`FormatError::Operation`] for one returning before its call.
    pub fn read_history<I: DeserializeOwned, O: DeserializeOwned>(mut self) -> Result<History<I, O>, FormatError> {
        let mut history = History::new();
        while let Some(text) = self.lines.next() {
            self.line += 1;
            let text = text?;
            if text.trim().is_empty() {
                continue;
            }
            let operation = parse_operation(&text, self.line)?;
            history.push(operation).map_err(|source| FormatError::Operation { line: self.line, source })?;
        }
        Ok(history)
    }
}

/// The operation on line `line`, whose text is `text`.
fn parse_operation<I: DeserializeOwned, O: DeserializeOwned>(
    text: &str,
    line: usize,
) -> Result<Operation<I, O>, FormatError> {
    let json = |source| FormatError::Json { line, source };
    let raw: OperationIn<I> = serde_json::from_str(text).map_err(json)?;
    match raw.returned {
        Some(returned) => {
            let output = serde_json::from_value(raw.output).map_err(json)?;
            Ok(Operation::returned(raw.client, raw.input, output, raw.call, returned))
        }
        None if raw.output.is_null() => Ok(Operation::indeterminate(raw.client, raw.input, raw.call)),
        None => Err(FormatError::syntax(line, "an operation without a return (indeterminate) must have a null output")),
    }
}

/// Reads the operations of `reader` as a history of `model` and checks it.
///
/// For a program that needs only the verdict: it reads the header with
/// [`JsonlReader::new`], matches on [`JsonlReader::model`], and calls this
/// with the matching model.
///
/// # Errors
///
/// As [`JsonlReader::read_history`].
pub fn check_jsonl_with<M, R>(
    model: &M,
    reader: JsonlReader<R>,
    options: &CheckOptions,
) -> Result<CheckResult, FormatError>
where
    M: Model,
    M::Input: DeserializeOwned,
    M::Output: DeserializeOwned,
    R: BufRead,
{
    let history = reader.read_history::<M::Input, M::Output>()?;
    Ok(check(model, &history, options))
}

#[cfg(test)]
mod tests {
    use super::{FormatError, JsonlReader, write_jsonl};
    use crate::{History, Operation, Register, RegisterInput, RegisterOutput};

    fn sample() -> History<RegisterInput, RegisterOutput> {
        let mut history = History::new();
        let operations = [
            Operation::returned(0, RegisterInput::Write(3), RegisterOutput::Write, 100, 250),
            Operation::returned(1, RegisterInput::Read, RegisterOutput::Read(None), 120, 130),
            Operation::returned(2, RegisterInput::Cas { expected: 3, new: 4 }, RegisterOutput::Cas(false), 140, 300),
            Operation::indeterminate(3, RegisterInput::Write(4), 150),
        ];
        for operation in operations {
            history.push(operation).unwrap();
        }
        history
    }

    fn read(text: &str) -> Result<History<RegisterInput, RegisterOutput>, FormatError> {
        JsonlReader::new(text.as_bytes())?.read_history()
    }

    #[test]
    fn a_history_survives_a_round_trip_including_null_outputs_and_indeterminate_operations() {
        let history = sample();
        let mut bytes = Vec::new();
        write_jsonl(&mut bytes, Register::NAME, &history).unwrap();
        let reader = JsonlReader::new(bytes.as_slice()).unwrap();
        assert_eq!(reader.model(), "register");
        assert_eq!(reader.read_history::<RegisterInput, RegisterOutput>().unwrap(), history);
    }

    #[test]
    fn the_documented_example_lines_parse() {
        let text = r#"{"format":"statekit-history","version":1,"model":"register"}
{"client":0,"input":{"write":3},"output":"write","call":100,"return":250}
{"client":1,"input":"read","output":{"read":3},"call":120,"return":300}
{"client":2,"input":{"write":4},"output":null,"call":130,"return":null}
"#;
        let history = read(text).unwrap();
        assert_eq!(history.len(), 3);
        assert_eq!(history.operations()[2], Operation::indeterminate(2, RegisterInput::Write(4), 130));
    }

    #[test]
    fn a_missing_return_field_is_an_error_not_an_indeterminate_operation() {
        let text = "{\"format\":\"statekit-history\",\"version\":1,\"model\":\"register\"}\n\
                    {\"client\":0,\"input\":\"read\",\"output\":{\"read\":null},\"call\":1}\n";
        assert!(matches!(read(text), Err(FormatError::Json { line: 2, .. })));
    }

    #[test]
    fn an_indeterminate_operation_with_an_output_is_rejected() {
        let text = "{\"format\":\"statekit-history\",\"version\":1,\"model\":\"register\"}\n\
                    {\"client\":0,\"input\":\"read\",\"output\":{\"read\":1},\"call\":1,\"return\":null}\n";
        assert!(matches!(read(text), Err(FormatError::Syntax { line: 2, .. })));
    }

    #[test]
    fn another_format_or_version_is_rejected() {
        let text = "{\"format\":\"statekit-history\",\"version\":2,\"model\":\"register\"}\n";
        assert!(matches!(JsonlReader::new(text.as_bytes()), Err(FormatError::Syntax { line: 1, .. })));
    }
}
