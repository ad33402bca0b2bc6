//! Concurrent histories: what each client asked, observed, and when.

use std::error::Error;
use std::fmt;

/// How an operation ended, as far as its client knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<O> {
    /// The client received `output` at instant `at`: the operation took
    /// effect exactly once, somewhere between its call and `at`.
    Returned {
        /// What the client observed.
        output: O,
        /// When the client received it, in nanoseconds on the history's clock.
        at: u64,
    },
    /// The client never learnt the outcome (a timeout, a lost connection, or
    /// the recording ended first). The operation may have taken effect at any
    /// instant after its call — even after later operations returned — or
    /// not at all.
    Indeterminate,
}

/// One operation of a history: a call by one client and how it ended.
///
/// Instants are nanoseconds read from one monotonic clock shared by all
/// clients; only their order matters. An operation `a` precedes `b` in real
/// time only if `a` returned strictly before `b` was called, so equal
/// instants count as concurrent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client (thread, process, connection) that issued the operation.
    /// Reports show it; the checker does not rely on it.
    pub client: u64,
    /// What the client asked for.
    pub input: I,
    /// When the client issued the call.
    pub call: u64,
    /// How the call ended.
    pub outcome: Outcome<O>,
}

impl<I, O> Operation<I, O> {
    /// An operation whose client received `output` at instant `returned`.
    pub fn returned(client: u64, input: I, output: O, call: u64, returned: u64) -> Self {
        let outcome = Outcome::Returned { output, at: returned };
        Operation { client, input, call, outcome }
    }

    /// An operation whose outcome its client never learnt.
    pub fn indeterminate(client: u64, input: I, call: u64) -> Self {
        let outcome = Outcome::Indeterminate;
        Operation { client, input, call, outcome }
    }

    /// The observed output, or `None` if the outcome is indeterminate.
    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Returned { output, .. } => Some(output),
            Outcome::Indeterminate => None,
        }
    }

    /// The return instant, or `None` if the outcome is indeterminate.
    pub fn return_at(&self) -> Option<u64> {
        match self.outcome {
            Outcome::Returned { at, .. } => Some(at),
            Outcome::Indeterminate => None,
        }
    }
}

/// A concurrent history: operations in the order they were recorded.
///
/// The order of [`push`](History::push) calls does not matter to the checker,
/// which orders operations by their instants; recorders can push each
/// operation when it completes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History<I, O> {
    operations: Vec<Operation<I, O>>,
}

impl<I, O> Default for History<I, O> {
    fn default() -> Self {
        History { operations: Vec::new() }
    }
}

impl<I, O> History<I, O> {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `operation`.
    ///
    /// # Errors
    ///
    /// [`InvalidOperation`] if it returned before it was called; the history
    /// is left unchanged.
    pub fn push(&mut self, operation: Operation<I, O>) -> Result<(), InvalidOperation> {
        if let Some(returned) = operation.return_at()
            && returned < operation.call
        {
            return Err(InvalidOperation { client: operation.client, call: operation.call, returned });
        }
        self.operations.push(operation);
        Ok(())
    }

    /// The operations, in the order they were pushed.
    pub fn operations(&self) -> &[Operation<I, O>] {
        &self.operations
    }

    /// The number of operations.
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }
}

/// An operation that returned before it was called, which no clock allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidOperation {
    /// The operation's client.
    pub client: u64,
    /// Its call instant.
    pub call: u64,
    /// Its return instant, earlier than `call`.
    pub returned: u64,
}

impl fmt::Display for InvalidOperation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "operation of client {} returns at {} before its call at {}", self.client, self.returned, self.call)
    }
}

impl Error for InvalidOperation {}
