//! What Jepsen histories mean, whatever their syntax: an `:invoke` event
//! starts an operation, and the next `:ok`, `:fail` or `:info` event of the
//! same process ends it.
//!
//! - `:ok` — the operation took effect and returned the given value;
//! - `:fail` — the operation definitely did not take effect, except that
//!   each reader decides what a `:fail` means for operations such as
//!   compare-and-swap, where "failed" is itself an observed result, and a
//!   `:fail` whose value is `:timed-out` means the outcome is unknown;
//! - `:info` — the outcome is unknown (usually a timeout);
//! - no completion before the history ends — the outcome is unknown.
//!
//! Jepsen gives a process a fresh number after an `:info`, so one process
//! never has two operations in flight. Events carry no timestamps; their
//! position in the file is the clock.

use std::collections::HashMap;

use super::FormatError;
use crate::history::{History, Operation};

/// The `:type` of a Jepsen event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    /// `:invoke`
    Invoke,
    /// `:ok`
    Ok,
    /// `:fail`
    Fail,
    /// `:info`
    Info,
}

impl EventType {
    /// The event type named by `keyword` (without the colon).
    pub(crate) fn from_keyword(keyword: &str) -> Option<Self> {
        match keyword {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        }
    }
}

/// How a reader interprets the completion event of an operation.
#[derive(Debug)]
pub(crate) enum Completion<O> {
    /// It returned this output.
    Returned(O),
    /// Its outcome is unknown.
    Indeterminate,
    /// It certainly did not take effect, so it is left out of the history.
    NotApplied,
}

/// A history being assembled from Jepsen events, one event at a time.
#[derive(Debug)]
pub(crate) struct Pairing<I, O> {
    /// Operations in flight: process → (input, call instant, slot).
    pending: HashMap<u64, (I, u64, usize)>,
    /// One slot per invocation, in invocation order: the finished operation
    /// and the line that finished it, or `None` while in flight and for
    /// operations left out.
    slots: Vec<Option<(Operation<I, O>, usize)>>,
    /// The number of events seen so far: each event's instant.
    clock: u64,
}

impl<I, O> Pairing<I, O> {
    /// No events seen yet.
    pub(crate) fn new() -> Self {
        Pairing { pending: HashMap::new(), slots: Vec::new(), clock: 0 }
    }

    /// Process `process` invokes `input` (on line `line`).
    pub(crate) fn invoke(&mut self, process: u64, input: I, line: usize) -> Result<(), FormatError> {
        if self.pending.contains_key(&process) {
            return Err(FormatError::syntax(
                line,
                format!("process {process} invokes while its previous operation is in flight"),
            ));
        }
        let call = self.tick();
        self.pending.insert(process, (input, call, self.slots.len()));
        self.slots.push(None);
        Ok(())
    }

    /// Process `process` completes its operation (on line `line`);
    /// `interpret` decides what the completion means given the input.
    pub(crate) fn complete(
        &mut self,
        process: u64,
        line: usize,
        interpret: impl FnOnce(&I) -> Result<Completion<O>, String>,
    ) -> Result<(), FormatError> {
        let returned = self.tick();
        let Some((input, call, slot)) = self.pending.remove(&process) else {
            return Err(FormatError::syntax(
                line,
                format!("process {process} completes an operation it never invoked"),
            ));
        };
        let operation = match interpret(&input).map_err(|message| FormatError::syntax(line, message))? {
            Completion::Returned(output) => Operation::returned(process, input, output, call, returned),
            Completion::Indeterminate => Operation::indeterminate(process, input, call),
            Completion::NotApplied => return Ok(()),
        };
        if let Some(entry) = self.slots.get_mut(slot) {
            *entry = Some((operation, line));
        }
        Ok(())
    }

    /// The history, in call order; every operation still in flight is
    /// indeterminate.
    pub(crate) fn finish(mut self) -> Result<History<I, O>, FormatError> {
        for (process, (input, call, slot)) in self.pending.drain() {
            if let Some(entry) = self.slots.get_mut(slot) {
                *entry = Some((Operation::indeterminate(process, input, call), 0));
            }
        }
        let mut history = History::new();
        for (operation, line) in self.slots.into_iter().flatten() {
            history.push(operation).map_err(|source| FormatError::Operation { line, source })?;
        }
        Ok(history)
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }
}
