//! A single integer register with read, write and compare-and-swap, as in
//! Jepsen's etcd test.

use serde::{Deserialize, Serialize};

use super::model::Model;

/// One register holding an integer or nothing, initially nothing.
///
/// Compare-and-swap compares by value: it swaps only when the register holds
/// exactly `expected` (an empty register never matches).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Register;

impl Register {
    /// The model's name in a JSON-lines history header.
    pub const NAME: &'static str = "register";
}

/// An operation on a [`Register`].
///
/// In JSON: `"read"`, `{"write":3}`, `{"cas":{"expected":3,"new":0}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterInput {
    /// Reads the value.
    Read,
    /// Replaces the value.
    Write(i64),
    /// Sets the value to `new` if it is `expected`.
    Cas {
        /// The value the register must hold for the swap to happen.
        expected: i64,
        /// The value it then holds.
        new: i64,
    },
}

/// What a [`RegisterInput`] returned.
///
/// In JSON: `{"read":3}` (or `{"read":null}` for an empty register),
/// `"write"`, `{"cas":true}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegisterOutput {
    /// The value read, `None` if the register was never written.
    Read(Option<i64>),
    /// The write took effect.
    Write,
    /// Whether the compare-and-swap swapped.
    Cas(bool),
}

impl Register {
    /// The state and output of applying `input` to a register holding
    /// `value`: the model is deterministic, so this is all of it.
    fn apply(value: Option<i64>, input: &RegisterInput) -> (Option<i64>, RegisterOutput) {
        match *input {
            RegisterInput::Read => (value, RegisterOutput::Read(value)),
            RegisterInput::Write(new) => (Some(new), RegisterOutput::Write),
            RegisterInput::Cas { expected, new } if value == Some(expected) => (Some(new), RegisterOutput::Cas(true)),
            RegisterInput::Cas { .. } => (value, RegisterOutput::Cas(false)),
        }
    }
}

impl Model for Register {
    type State = Option<i64>;
    type Input = RegisterInput;
    type Output = RegisterOutput;

    fn init(&self) -> Option<i64> {
        None
    }

    fn step(&self, state: &Option<i64>, input: &RegisterInput, output: &RegisterOutput) -> Option<Option<i64>> {
        let (next, expected) = Self::apply(*state, input);
        (expected == *output).then_some(next)
    }

    fn step_unknown(&self, state: &Option<i64>, input: &RegisterInput) -> Vec<Option<i64>> {
        vec![Self::apply(*state, input).0]
    }

    fn describe(&self, input: &RegisterInput, output: Option<&RegisterOutput>) -> String {
        let input = match input {
            RegisterInput::Read => "read".to_owned(),
            RegisterInput::Write(value) => format!("write {value}"),
            RegisterInput::Cas { expected, new } => format!("cas {expected} -> {new}"),
        };
        let output = match output {
            None => "?".to_owned(),
            Some(RegisterOutput::Read(Some(value))) => value.to_string(),
            Some(RegisterOutput::Read(None)) => "nil".to_owned(),
            Some(RegisterOutput::Write) => "ok".to_owned(),
            Some(RegisterOutput::Cas(true)) => "swapped".to_owned(),
            Some(RegisterOutput::Cas(false)) => "not swapped".to_owned(),
        };
        format!("{input}: {output}")
    }
}
