//! A map of string keys to string values with get, put and append, as in
//! Porcupine's key/value tests.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::model::Model;

/// A map from string keys to string values where every key starts out as
/// the empty string. Operations touch one key each, so histories are
/// partitioned by key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyValue;

impl KeyValue {
    /// The model's name in a JSON-lines history header.
    pub const NAME: &'static str = "kv";
}

/// An operation on a [`KeyValue`] map.
///
/// In JSON: `{"get":{"key":"k"}}`, `{"put":{"key":"k","value":"v"}}`,
/// `{"append":{"key":"k","value":"v"}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvInput {
    /// Reads the value of `key`.
    Get {
        /// The key read.
        key: String,
    },
    /// Replaces the value of `key`.
    Put {
        /// The key written.
        key: String,
        /// Its new value.
        value: String,
    },
    /// Appends to the value of `key`.
    Append {
        /// The key written.
        key: String,
        /// What is appended to its value.
        value: String,
    },
}

impl KvInput {
    /// The one key the operation touches.
    pub fn key(&self) -> &str {
        match self {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } => key,
        }
    }
}

/// What a [`KvInput`] returned.
///
/// In JSON: `{"get":"v"}`, `"put"`, `"append"`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KvOutput {
    /// The value read.
    Get(String),
    /// The put took effect.
    Put,
    /// The append took effect.
    Append,
}

/// The values of the keys that are not empty. Leaving empty values out
/// keeps the state canonical: a key put to "" equals a key never written.
type Values = BTreeMap<String, String>;

impl KeyValue {
    /// The state and output of applying `input` to `values`; the model is
    /// deterministic, so this is all of it.
    fn apply(values: &Values, input: &KvInput) -> (Values, KvOutput) {
        match input {
            KvInput::Get { key } => {
                let value = values.get(key).cloned().unwrap_or_default();
                (values.clone(), KvOutput::Get(value))
            }
            KvInput::Put { key, value } => {
                let mut next = values.clone();
                if value.is_empty() {
                    next.remove(key);
                } else {
                    next.insert(key.clone(), value.clone());
                }
                (next, KvOutput::Put)
            }
            KvInput::Append { key, value } => {
                let mut next = values.clone();
                if !value.is_empty() {
                    next.entry(key.clone()).or_default().push_str(value);
                }
                (next, KvOutput::Append)
            }
        }
    }
}

impl Model for KeyValue {
    type State = Values;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> Values {
        Values::new()
    }

    fn step(&self, state: &Values, input: &KvInput, output: &KvOutput) -> Option<Values> {
        // A get leaves the state alone: compare without cloning the map.
        if let (KvInput::Get { key }, KvOutput::Get(read)) = (input, output) {
            let current = state.get(key).map_or("", String::as_str);
            return (current == read).then(|| state.clone());
        }
        let (next, expected) = Self::apply(state, input);
        (expected == *output).then_some(next)
    }

    fn step_unknown(&self, state: &Values, input: &KvInput) -> Vec<Values> {
        vec![Self::apply(state, input).0]
    }

    fn partition(&self, input: &KvInput) -> Option<String> {
        Some(input.key().to_owned())
    }

    fn describe(&self, input: &KvInput, output: Option<&KvOutput>) -> String {
        let call = match input {
            KvInput::Get { key } => format!("get({key:?})"),
            KvInput::Put { key, value } => format!("put({key:?}, {value:?})"),
            KvInput::Append { key, value } => format!("append({key:?}, {value:?})"),
        };
        match output {
            None => format!("{call} -> ?"),
            Some(KvOutput::Get(value)) => format!("{call} -> {value:?}"),
            Some(KvOutput::Put | KvOutput::Append) => format!("{call} -> ok"),
        }
    }
}
