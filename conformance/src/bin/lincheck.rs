//! `lincheck`: checks one recorded history for linearizability.
//!
//! ```text
//! lincheck --format jepsen|kv|jsonl [--time-limit SECONDS] [--unpartitioned] FILE
//! ```
//!
//! Prints `linearizable`, or `not linearizable` and an explanation, or
//! `unknown` when the time limit ran out. Exit status: 0 linearizable,
//! 1 not linearizable, 2 usage, I/O or parse error, 3 unknown.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use conformance::linearizability::formats::{FormatError, JsonlReader, check_jsonl_with, read_etcd_log, read_kv_edn};
use conformance::linearizability::{CheckOptions, CheckResult, KeyValue, Register, check};

const USAGE: &str = "usage: lincheck --format jepsen|kv|jsonl [--time-limit SECONDS] [--unpartitioned] FILE";

/// The history file formats `--format` accepts.
#[derive(Debug, Clone, Copy)]
enum Format {
    /// Jepsen etcd logs, register model.
    Jepsen,
    /// EDN key/value events, key/value model.
    Kv,
    /// statekit JSON lines, model named in the header.
    Jsonl,
}

/// The parsed command line.
#[derive(Debug)]
struct Args {
    format: Format,
    options: CheckOptions,
    file: PathBuf,
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("lincheck: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(result) => {
            println!("{result}");
            ExitCode::from(match result {
                CheckResult::Linearizable => 0,
                CheckResult::NotLinearizable(_) => 1,
                CheckResult::Unknown(_) => 3,
            })
        }
        Err(message) => {
            eprintln!("lincheck: {}: {message}", args.file.display());
            ExitCode::from(2)
        }
    }
}

fn parse_args(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut format, mut file) = (None, None);
    let mut options = CheckOptions::default();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--format" => format = Some(parse_format(words.next())?),
            "--time-limit" => options.time_limit = Some(parse_seconds(words.next())?),
            "--unpartitioned" => options.partitioned = false,
            "-h" | "--help" => return Err("help requested".to_owned()),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if file.is_some() => return Err("more than one FILE given".to_owned()),
            _ => file = Some(PathBuf::from(word)),
        }
    }
    Ok(Args { format: format.ok_or("--format is required")?, options, file: file.ok_or("FILE is required")? })
}

fn parse_format(word: Option<String>) -> Result<Format, String> {
    match word.as_deref() {
        Some("jepsen") => Ok(Format::Jepsen),
        Some("kv") => Ok(Format::Kv),
        Some("jsonl") => Ok(Format::Jsonl),
        Some(other) => Err(format!("unknown format {other:?}")),
        None => Err("--format needs a value".to_owned()),
    }
}

fn parse_seconds(word: Option<String>) -> Result<Duration, String> {
    let word = word.ok_or("--time-limit needs a value")?;
    word.parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| format!("--time-limit: {word:?} is not a number of seconds"))
}

/// Reads and checks the history; errors are messages for the user.
fn run(args: &Args) -> Result<CheckResult, String> {
    let file = File::open(&args.file).map_err(|error| error.to_string())?;
    let reader = BufReader::new(file);
    let options = &args.options;
    let result = match args.format {
        Format::Jepsen => read_etcd_log(reader).map(|history| check(&Register, &history, options)),
        Format::Kv => read_kv_edn(reader).map(|history| check(&KeyValue, &history, options)),
        Format::Jsonl => check_jsonl(reader, options),
    };
    result.map_err(|error| error.to_string())
}

/// Checks a JSON-lines history against the model its header names.
fn check_jsonl(reader: BufReader<File>, options: &CheckOptions) -> Result<CheckResult, FormatError> {
    let jsonl = JsonlReader::new(reader)?;
    // One arm per model: a new model is one more line here.
    match jsonl.model() {
        Register::NAME => check_jsonl_with(&Register, jsonl, options),
        KeyValue::NAME => check_jsonl_with(&KeyValue, jsonl, options),
        other => Err(FormatError::Syntax {
            line: 1,
            message: format!("unsupported model {other:?} (supported: {:?}, {:?})", Register::NAME, KeyValue::NAME),
        }),
    }
}
