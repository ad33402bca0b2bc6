//! Jepsen-style EDN event lines over a string key/value map, one event map
//! per line:
//!
//! ```text
//! {:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}
//! {:process 0, :type :ok, :f :append, :key "4", :value "x 0 1 y"}
//! {:process 3, :type :invoke, :f :get, :key "4", :value nil}
//! {:process 3, :type :ok, :f :get, :key "4", :value "x 0 1 y"}
//! ```
//!
//! `:f` is `:get`, `:put` or `:append`. The general Jepsen rules apply (see
//! `jepsen.rs`): an `:info` completion, a `:fail` with value `:timed-out`,
//! or no completion at all leaves the outcome unknown; any other `:fail`
//! did not take effect. An `:ok` get whose value is `nil` read the empty
//! string, which is what every key starts as. Blank lines are ignored.

use std::io::BufRead;

use super::FormatError;
use super::edn::{self, Value};
use super::jepsen::{Completion, EventType, Pairing};
use crate::history::History;
use crate::key_value::{KvInput, KvOutput};

/// Reads EDN key/value events into a [`KeyValue`](crate::KeyValue) history.
///
/// Instants are event positions (the first event is at 1).
///
/// # Errors
///
/// [`FormatError::Io`] if reading fails; [`FormatError::Syntax`] for a line
/// that is not such an event map, or events that do not pair up (a process
/// invoking twice, completing what it never invoked, or completing a
/// different operation or key).
pub fn read_kv_edn(reader: impl BufRead) -> Result<History<KvInput, KvOutput>, FormatError> {
    let mut pairing = Pairing::new();
    for (index, line) in reader.lines().enumerate() {
        let line_number = index + 1;
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let syntax = |message: String| FormatError::syntax(line_number, message);
        let event = KvEvent::parse(&line).map_err(syntax)?;
        match event.kind {
            EventType::Invoke => {
                let input = event.input().map_err(syntax)?;
                pairing.invoke(event.process, input, line_number)?;
            }
            _ => pairing.complete(event.process, line_number, |input| event.interpret(input))?,
        }
    }
    pairing.finish()
}

/// The fields of one event line.
struct KvEvent {
    process: u64,
    kind: EventType,
    f: String,
    key: String,
    value: Value,
}

impl KvEvent {
    fn parse(line: &str) -> Result<Self, String> {
        let entries = edn::parse_map(line)?;
        let field = |name: &str| {
            entries
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
                .ok_or_else(|| format!("the event has no :{name}"))
        };
        let process = match field("process")? {
            Value::Integer(process) => u64::try_from(process).map_err(|_| "negative :process")?,
            other => return Err(format!(":process is {other:?}, not an integer")),
        };
        let kind = match field("type")? {
            Value::Keyword(kind) => EventType::from_keyword(&kind),
            _ => None,
        }
        .ok_or("the :type is not :invoke, :ok, :fail or :info")?;
        let Value::Keyword(f) = field("f")? else {
            return Err(":f is not a keyword".to_owned());
        };
        let Value::String(key) = field("key")? else {
            return Err(":key is not a string".to_owned());
        };
        let value = field("value")?;
        Ok(KvEvent { process, kind, f, key, value })
    }

    /// The input an `:invoke` event stands for.
    fn input(&self) -> Result<KvInput, String> {
        let key = self.key.clone();
        match self.f.as_str() {
            "get" => Ok(KvInput::Get { key }),
            "put" => Ok(KvInput::Put { key, value: self.string_value()? }),
            "append" => Ok(KvInput::Append { key, value: self.string_value()? }),
            other => Err(format!("unknown operation :{other}")),
        }
    }

    /// What this completion means for the operation that invoked `input`.
    fn interpret(&self, input: &KvInput) -> Result<Completion<KvOutput>, String> {
        let invoked = operation_keyword(input);
        if self.f != invoked || self.key != input.key() {
            return Err(format!(
                "completes :{} on {:?} but the process invoked :{invoked} on {:?}",
                self.f,
                self.key,
                input.key()
            ));
        }
        let timed_out = matches!(&self.value, Value::Keyword(keyword) if keyword == "timed-out");
        Ok(match self.kind {
            EventType::Info | EventType::Invoke => Completion::Indeterminate,
            EventType::Fail if timed_out => Completion::Indeterminate,
            EventType::Fail => Completion::NotApplied,
            EventType::Ok => Completion::Returned(match input {
                KvInput::Get { .. } => KvOutput::Get(self.string_value()?),
                KvInput::Put { .. } => KvOutput::Put,
                KvInput::Append { .. } => KvOutput::Append,
            }),
        })
    }

    /// The `:value` as a string, `nil` being the empty string.
    fn string_value(&self) -> Result<String, String> {
        match &self.value {
            Value::String(text) => Ok(text.clone()),
            Value::Nil => Ok(String::new()),
            other => Err(format!(":value is {other:?}, not a string")),
        }
    }
}

/// The `:f` keyword (without colon) naming `input`'s operation.
fn operation_keyword(input: &KvInput) -> &'static str {
    match input {
        KvInput::Get { .. } => "get",
        KvInput::Put { .. } => "put",
        KvInput::Append { .. } => "append",
    }
}

#[cfg(test)]
mod tests {
    use super::read_kv_edn;
    use crate::{KvInput, KvOutput, Operation};

    #[test]
    fn pairs_events_and_reads_nil_gets_timeouts_and_unfinished_operations() {
        let events = r#"{:process 0, :type :invoke, :f :append, :key "4", :value "x 0 1 y"}
{:process 1, :type :invoke, :f :get, :key "4", :value nil}
{:process 0, :type :ok, :f :append, :key "4", :value "x 0 1 y"}
{:process 1, :type :ok, :f :get, :key "4", :value nil}
{:process 2, :type :invoke, :f :put, :key "5", :value "v"}
{:process 2, :type :info, :f :put, :key "5", :value :timed-out}
{:process 3, :type :invoke, :f :get, :key "5", :value nil}
"#;
        let history = read_kv_edn(events.as_bytes()).unwrap();
        let append = KvInput::Append { key: "4".into(), value: "x 0 1 y".into() };
        let get = |key: &str| KvInput::Get { key: key.into() };
        assert_eq!(
            history.operations(),
            [
                Operation::returned(0, append, KvOutput::Append, 1, 3),
                Operation::returned(1, get("4"), KvOutput::Get(String::new()), 2, 4),
                Operation::indeterminate(2, KvInput::Put { key: "5".into(), value: "v".into() }, 5),
                Operation::indeterminate(3, get("5"), 7),
            ]
        );
    }

    #[test]
    fn a_completion_for_another_key_is_an_error() {
        let events = r#"{:process 0, :type :invoke, :f :get, :key "1", :value nil}
{:process 0, :type :ok, :f :get, :key "2", :value ""}
"#;
        assert!(read_kv_edn(events.as_bytes()).is_err());
    }
}
