//! Jepsen's etcd test logs: one register with read, write and cas.
//!
//! Only lines of this shape matter; all others are ignored:
//!
//! ```text
//! INFO  jepsen.util - 3  :invoke  :read  nil
//! INFO  jepsen.util - 3  :ok  :read  4
//! INFO  jepsen.util - 1  :invoke  :cas  [3 0]
//! INFO  jepsen.util - 1  :fail  :cas  [3 0]
//! INFO  jepsen.util - 2  :info  :write  :timed-out
//! ```
//!
//! The fields after `jepsen.util -` are process, event type, operation and
//! value. Jepsen separates them with tabs, but published logs also use runs
//! of spaces, so any run of whitespace separates fields (as in Porcupine's
//! reader); the value is the rest of the line, which keeps a cas argument
//! such as `[3 0]` whole. Besides the general Jepsen rules (see
//! `jepsen.rs`): a `:fail` cas is a cas that ran and did not swap, an
//! observed result; a `:fail` with value `:timed-out` (the README's
//! `:fail :read :timed-out`) has an unknown outcome; any other `:fail`
//! did not take effect.

use std::io::BufRead;

use super::FormatError;
use super::jepsen::{Completion, EventType, Pairing};
use crate::history::History;
use crate::register::{RegisterInput, RegisterOutput};

/// The logger name that precedes the fields of an event line, followed by
/// a `-` field.
const EVENT_LOGGER: &str = "jepsen.util";

/// The value Jepsen logs for an operation that timed out.
const TIMED_OUT: &str = ":timed-out";

/// Reads a Jepsen etcd log into a [`Register`](crate::Register) history.
///
/// Instants are event positions (the first event is at 1). An operation
/// completed by `:info`, by a timed-out `:fail`, or not at all before the
/// log ends is indeterminate.
///
/// # Errors
///
/// [`FormatError::Io`] if reading fails; [`FormatError::Syntax`] for an
/// event line with an unknown operation or malformed value, or events that
/// do not pair up (a process invoking twice, or completing what it never
/// invoked, or completing a different operation).
pub fn read_etcd_log(reader: impl BufRead) -> Result<History<RegisterInput, RegisterOutput>, FormatError> {
    let mut pairing = Pairing::new();
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line?;
        let Some(event) = EtcdEvent::parse(&line) else {
            continue;
        };
        let syntax = |message: String| FormatError::syntax(line_number, message);
        match event.kind {
            EventType::Invoke => {
                let input = parse_input(event.f, event.value).map_err(syntax)?;
                pairing.invoke(event.process, input, line_number)?;
            }
            kind => {
                pairing.complete(event.process, line_number, |input| interpret(kind, event.f, event.value, input))?
            }
        }
    }
    pairing.finish()
}

/// The fields of one event line.
struct EtcdEvent<'a> {
    process: u64,
    kind: EventType,
    f: &'a str,
    value: &'a str,
}

impl<'a> EtcdEvent<'a> {
    /// The event on `line`, or `None` if it is not an event line.
    fn parse(line: &'a str) -> Option<Self> {
        let (_, after_logger) = line.split_once(EVENT_LOGGER)?;
        let (dash, fields) = next_field(after_logger)?;
        if dash != "-" {
            return None;
        }
        let (process, rest) = next_field(fields)?;
        let (kind, rest) = next_field(rest)?;
        let (f, value) = next_field(rest)?;
        let process = process.parse().ok()?;
        let kind = EventType::from_keyword(kind.strip_prefix(':')?)?;
        Some(EtcdEvent { process, kind, f, value: value.trim() })
    }
}

/// The first whitespace-separated field of `text` and the text after it
/// (empty at the end of the line), or `None` if `text` is blank.
fn next_field(text: &str) -> Option<(&str, &str)> {
    let text = text.trim_start();
    if text.is_empty() {
        return None;
    }
    Some(text.split_once(char::is_whitespace).unwrap_or((text, "")))
}

/// The input an `:invoke` of `f` with `value` stands for.
fn parse_input(f: &str, value: &str) -> Result<RegisterInput, String> {
    match f {
        ":read" => Ok(RegisterInput::Read),
        ":write" => Ok(RegisterInput::Write(parse_integer(value)?)),
        ":cas" => {
            let (expected, new) = parse_pair(value)?;
            Ok(RegisterInput::Cas { expected, new })
        }
        other => Err(format!("unknown operation {other:?}")),
    }
}

/// What a completion of type `kind` for `f` with `value` means for the
/// operation that invoked `input`.
fn interpret(
    kind: EventType,
    f: &str,
    value: &str,
    input: &RegisterInput,
) -> Result<Completion<RegisterOutput>, String> {
    let invoked = match input {
        RegisterInput::Read => ":read",
        RegisterInput::Write(_) => ":write",
        RegisterInput::Cas { .. } => ":cas",
    };
    if f != invoked {
        return Err(format!("completes {f} but the process invoked {invoked}"));
    }
    Ok(match (kind, input) {
        (EventType::Info | EventType::Invoke, _) => Completion::Indeterminate,
        (EventType::Fail, _) if value == TIMED_OUT => Completion::Indeterminate,
        (EventType::Fail, RegisterInput::Cas { .. }) => Completion::Returned(RegisterOutput::Cas(false)),
        (EventType::Fail, _) => Completion::NotApplied,
        (EventType::Ok, RegisterInput::Read) => Completion::Returned(RegisterOutput::Read(parse_read(value)?)),
        (EventType::Ok, RegisterInput::Write(_)) => Completion::Returned(RegisterOutput::Write),
        (EventType::Ok, RegisterInput::Cas { .. }) => Completion::Returned(RegisterOutput::Cas(true)),
    })
}

/// A read's value: `nil` (never written) or an integer.
fn parse_read(value: &str) -> Result<Option<i64>, String> {
    if value == "nil" { Ok(None) } else { parse_integer(value).map(Some) }
}

fn parse_integer(value: &str) -> Result<i64, String> {
    value.parse().map_err(|_| format!("expected an integer, found {value:?}"))
}

/// A cas argument: `[expected new]`.
fn parse_pair(value: &str) -> Result<(i64, i64), String> {
    let malformed = || format!("expected [expected new], found {value:?}");
    let inner = value.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')).ok_or_else(malformed)?;
    let mut numbers = inner.split_whitespace();
    match (numbers.next(), numbers.next(), numbers.next()) {
        (Some(expected), Some(new), None) => Ok((parse_integer(expected)?, parse_integer(new)?)),
        _ => Err(malformed()),
    }
}

#[cfg(test)]
mod tests {
    use super::read_etcd_log;
    use crate::{Operation, RegisterInput, RegisterOutput};

    #[test]
    fn pairs_events_and_reads_timeouts_failures_and_unfinished_operations() {
        let log = "\
INFO  jepsen.core - some other line
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 1\t:invoke\t:cas\t[3 0]
INFO  jepsen.util - 0\t:fail\t:read\t:timed-out
INFO  jepsen.util - 1\t:fail\t:cas\t[3 0]
INFO  jepsen.util - 2\t:invoke\t:write\t4
INFO  jepsen.util - 2\t:info\t:write\t:timed-out
INFO  jepsen.util - 7\t:invoke\t:read\tnil
INFO  jepsen.util - 7\t:ok\t:read\t4
INFO  jepsen.util - 8\t:invoke\t:write\t1
";
        let history = read_etcd_log(log.as_bytes()).unwrap();
        let cas = RegisterInput::Cas { expected: 3, new: 0 };
        assert_eq!(
            history.operations(),
            [
                Operation::indeterminate(0, RegisterInput::Read, 1),
                Operation::returned(1, cas, RegisterOutput::Cas(false), 2, 4),
                Operation::indeterminate(2, RegisterInput::Write(4), 5),
                Operation::returned(7, RegisterInput::Read, RegisterOutput::Read(Some(4)), 7, 8),
                Operation::indeterminate(8, RegisterInput::Write(1), 9),
            ]
        );
    }

    #[test]
    fn fields_may_be_separated_by_runs_of_spaces_as_well_as_tabs() {
        // The first events of a published etcd log, as tabs and as spaces.
        let tabs = "\
INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]
INFO  jepsen.util - 0\t:invoke\t:read\tnil
INFO  jepsen.util - 2\t:ok\t:cas\t[3 0]
INFO  jepsen.util - 0\t:ok\t:read\t0
INFO  jepsen.util - 4\t:invoke\t:write\t3
INFO  jepsen.util - 4\t:info\t:write\t:timed-out
";
        let spaces = "\
INFO  jepsen.util  -  2   :invoke  :cas    [3 0]
INFO jepsen.util - 0 :invoke :read nil
INFO  jepsen.util - 2  :ok      :cas   [3  0]
INFO  jepsen.util - 0 \t :ok :read   0   
INFO  jepsen.util - 4    :invoke   :write   3
INFO  jepsen.util - 4    :info     :write   :timed-out
";
        let from_tabs = read_etcd_log(tabs.as_bytes()).unwrap();
        let from_spaces = read_etcd_log(spaces.as_bytes()).unwrap();
        assert_eq!(from_tabs.len(), 3);
        assert_eq!(from_spaces, from_tabs);
    }

    #[test]
    fn a_line_of_another_logger_or_without_the_dash_is_not_an_event() {
        let log = "\
INFO  jepsen.utility - 0 :invoke :read nil
INFO  jepsen.util 0 :invoke :read nil
INFO  jepsen.util -
";
        assert!(read_etcd_log(log.as_bytes()).unwrap().is_empty());
    }

    #[test]
    fn a_completion_without_an_invocation_is_an_error() {
        let log = "INFO  jepsen.util - 3\t:ok\t:read\tnil\n";
        assert!(read_etcd_log(log.as_bytes()).is_err());
    }
}
