//! A map of string keys to string values with get, put and append, as in
//! Porcupine's key/value tests.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::hashing::FxBuildHasher;
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

/// The state of a [`KeyValue`] map: the value of every key.
///
/// A search copies, hashes and compares a state at nearly every step, so
/// this is built for that: the entries sit in one shared, immutable slice
/// (copying a state copies a pointer; changing one builds a new slice that
/// shares the strings), and the state carries its hash, updated entry by
/// entry. Only non-empty values are stored, which keeps the state canonical:
/// a key put to "" equals a key never written.
#[derive(Clone)]
pub struct KvState {
    hash: u64,
    /// Sorted by key; no empty values.
    entries: Arc<[(Text, Text)]>,
}

impl KvState {
    /// The value of `key` ("" if it was never written).
    pub fn get(&self, key: &str) -> &str {
        match self.position(key) {
            Ok(index) => self.entries.get(index).map_or("", |(_, value)| &value.text),
            Err(_) => "",
        }
    }

    /// Where `key` is in the entries, or where it would go.
    fn position(&self, key: &str) -> Result<usize, usize> {
        self.entries.binary_search_by(|(probe, _)| (*probe.text).cmp(key))
    }

    /// The state with `key` set to `value`.
    fn with(&self, key: &str, value: String) -> KvState {
        let mut entries = self.entries.to_vec();
        let mut hash = self.hash;
        // Reuse the existing key string, so equal keys stay shared.
        let (index, key) = match self.position(key) {
            Ok(index) => {
                let (key, old) = entries.remove(index);
                hash = hash.wrapping_sub(entry_hash(&key, &old));
                (index, key)
            }
            Err(index) => (index, Text::new(key.to_owned())),
        };
        if !value.is_empty() {
            let value = Text::new(value);
            hash = hash.wrapping_add(entry_hash(&key, &value));
            entries.insert(index, (key, value));
        }
        KvState { hash, entries: entries.into() }
    }
}

impl Default for KvState {
    fn default() -> Self {
        KvState { hash: 0, entries: Arc::from(Vec::new()) }
    }
}

impl PartialEq for KvState {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.entries, &other.entries) || self.entries == other.entries)
    }
}

impl Eq for KvState {}

impl fmt::Debug for KvState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.entries.iter().map(|(key, value)| (&*key.text, &*value.text))).finish()
    }
}

impl Hash for KvState {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

/// One entry's share of a state's hash; the state's hash is the (wrapping)
/// sum over its entries, so it can be updated one entry at a time.
fn entry_hash(key: &Text, value: &Text) -> u64 {
    FxBuildHasher::default().hash_one((key.hash, value.hash))
}

/// A shared string and its hash.
#[derive(Debug, Clone)]
struct Text {
    text: Arc<str>,
    hash: u64,
}

impl Text {
    fn new(text: String) -> Self {
        let hash = FxBuildHasher::default().hash_one(&text);
        Text { text: Arc::from(text), hash }
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        // Most strings compared are shared copies of one another.
        Arc::ptr_eq(&self.text, &other.text) || (self.hash == other.hash && self.text == other.text)
    }
}

impl Eq for Text {}

impl KeyValue {
    /// The state and output of applying `input` to `state`; the model is
    /// deterministic, so this is all of it.
    fn apply(state: &KvState, input: &KvInput) -> (KvState, KvOutput) {
        match input {
            KvInput::Get { key } => (state.clone(), KvOutput::Get(state.get(key).to_owned())),
            KvInput::Put { key, value } => (state.with(key, value.clone()), KvOutput::Put),
            KvInput::Append { key, value } => {
                let appended = [state.get(key), value].concat();
                (state.with(key, appended), KvOutput::Append)
            }
        }
    }
}

impl Model for KeyValue {
    type State = KvState;
    type Input = KvInput;
    type Output = KvOutput;

    fn init(&self) -> KvState {
        KvState::default()
    }

    fn step(&self, state: &KvState, input: &KvInput, output: &KvOutput) -> Option<KvState> {
        // A get leaves the state alone: compare without building an output.
        if let (KvInput::Get { key }, KvOutput::Get(read)) = (input, output) {
            return (state.get(key) == read).then(|| state.clone());
        }
        let (next, expected) = Self::apply(state, input);
        (expected == *output).then_some(next)
    }

    fn step_unknown(&self, state: &KvState, input: &KvInput) -> Vec<KvState> {
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
