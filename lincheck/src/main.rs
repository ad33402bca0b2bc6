//! `lincheck`: checks one recorded history for linearizability.
//!
//! ```text
//! lincheck --format jepsen|kv|jsonl [--time-limit SECONDS] [--unpartitioned] [--html OUT.html] FILE
//! ```
//!
//! - `jepsen`: a Jepsen etcd log, checked against the register model;
//! - `kv`: EDN key/value events, checked against the key/value model;
//! - `jsonl`: a JSON-lines history of one of this crate's models (`register`
//!   or `kv`, as its header says). JSON-lines histories of the statekit
//!   contract need that contract's model: check them with
//!   `statekit lincheck`, which supports every format here too.
//!
//! Prints `linearizable`, or `not linearizable` and an explanation, or
//! `unknown` when the time limit ran out. With `--html OUT.html`, a history
//! that is not linearizable is also drawn as a self-contained HTML page
//! written to `OUT.html` (nothing is written for another verdict). Exit status: 0 linearizable,
//! 1 not linearizable, 2 usage, I/O or parse error, 3 unknown.

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use lincheck::history_file::{CheckedFile, HistoryFormat, builtin_jsonl_models, check_file_with_view};
use lincheck::{CheckOptions, CheckResult};

const USAGE: &str =
    "usage: lincheck --format jepsen|kv|jsonl [--time-limit SECONDS] [--unpartitioned] [--html OUT.html] FILE";

/// The parsed command line.
#[derive(Debug)]
struct Args {
    format: HistoryFormat,
    options: CheckOptions,
    /// Where to write the HTML view of a failure.
    html: Option<PathBuf>,
    file: PathBuf,
}

fn main() -> ExitCode {
    if std::env::args().skip(1).any(|word| word == "-h" || word == "--help") {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("lincheck: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match check_file_with_view(args.format, &args.file, &args.options, &builtin_jsonl_models()) {
        Ok(checked) => report(&args, checked),
        Err(message) => {
            eprintln!("lincheck: {message}");
            ExitCode::from(2)
        }
    }
}

/// Prints the verdict, writes the view of a failure if asked to, and
/// returns the exit status.
fn report(args: &Args, checked: CheckedFile) -> ExitCode {
    let CheckedFile { result, html_view, .. } = checked;
    let status = match result {
        CheckResult::Linearizable => 0,
        CheckResult::NotLinearizable(_) => 1,
        CheckResult::Unknown(_) => 3,
    };
    print_result(&result).unwrap_or_else(|error| eprintln!("lincheck: cannot print the result: {error}"));
    if let (Some(path), Some(page)) = (&args.html, html_view) {
        if let Err(error) = std::fs::write(path, page) {
            eprintln!("lincheck: cannot write the HTML view: {}: {error}", path.display());
            return ExitCode::from(2);
        }
        print_result(&format_args!("HTML view: {}", path.display()))
            .unwrap_or_else(|error| eprintln!("lincheck: cannot print the result: {error}"));
    }
    ExitCode::from(status)
}

/// Prints the verdict (or any text) to stdout. A reader that stops early
/// (`| head`) is not an error: the exit status still carries the verdict.
fn print_result(result: &dyn std::fmt::Display) -> io::Result<()> {
    match writeln!(io::stdout().lock(), "{result}") {
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

fn parse_args(mut words: impl Iterator<Item = String>) -> Result<Args, String> {
    let (mut format, mut file, mut html) = (None, None, None);
    let mut options = CheckOptions::default();
    while let Some(word) = words.next() {
        match word.as_str() {
            "--format" => format = Some(parse_format(words.next())?),
            "--time-limit" => options.time_limit = Some(parse_seconds(words.next())?),
            "--unpartitioned" => options.partitioned = false,
            "--html" => html = Some(PathBuf::from(words.next().ok_or("--html needs a file name")?)),
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            _ if file.is_some() => return Err("more than one FILE given".to_owned()),
            _ => file = Some(PathBuf::from(word)),
        }
    }
    Ok(Args { format: format.ok_or("--format is required")?, options, html, file: file.ok_or("FILE is required")? })
}

fn parse_format(word: Option<String>) -> Result<HistoryFormat, String> {
    word.ok_or_else(|| "--format needs a value".to_owned())?.parse()
}

fn parse_seconds(word: Option<String>) -> Result<Duration, String> {
    let word = word.ok_or("--time-limit needs a value")?;
    word.parse::<f64>()
        .ok()
        .and_then(|seconds| Duration::try_from_secs_f64(seconds).ok())
        .ok_or_else(|| format!("--time-limit: {word:?} is not a number of seconds"))
}
