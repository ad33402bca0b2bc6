//! # lincheck: a linearizability checker for concurrent histories
//!
//! Generic over the object's sequential specification, and usable on its
//! own: it depends on no storage contract and no test kit. The statekit
//! conformance kit uses it to check the histories it records, but any
//! program that can write down who called what, when, and what came back
//! can check its history here — in code, or from a file with the `lincheck`
//! binary.
//!
//! A history is linearizable when its operations can be put in one order
//! that respects real time (an operation that returned before another was
//! called comes first) and in which every operation's output is what the
//! [`Model`] says it would be. Operations whose outcome was never observed
//! (timeouts, or still in flight when recording stopped) may take effect at
//! any point after their call, or not at all.
//!
//! [`check`] implements the Wing–Gong depth-first search with Lowe's
//! memoization, the algorithm of Knossos and Porcupine. When the model
//! splits histories into independent partitions (for example one per key),
//! each partition is searched on its own; the searches take turns, so one
//! partition that is hard to decide does not hide another that plainly
//! fails. A failed check comes with an [`Explanation`]: the failing
//! partition's shortest prefix that cannot be linearized, and a
//! linearization of everything before it. [`html_view`] draws it as a
//! self-contained HTML page.
//!
//! Two models ship with the checker, [`Register`] (Jepsen's etcd register)
//! and [`KeyValue`] (a string map with get, put and append); histories can
//! be read from Jepsen logs and written to and read from a JSON-lines format
//! (see [`formats`]), and [`history_file`] checks a file in any of them —
//! the core of the `lincheck` binary:
//!
//! ```text
//! lincheck --format jepsen|kv|jsonl [--time-limit SECONDS] [--unpartitioned] [--html OUT.html] FILE
//! ```
//!
//! # Example
//!
//! ```
//! use lincheck::{
//!     CheckOptions, History, Operation, Register, RegisterInput, RegisterOutput, check,
//! };
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut history = History::new();
//! // Client 0 writes 1 between t=0 and t=10; client 1 then reads nothing.
//! history.push(Operation::returned(0, RegisterInput::Write(1), RegisterOutput::Write, 0, 10))?;
//! history.push(Operation::returned(1, RegisterInput::Read, RegisterOutput::Read(None), 20, 30))?;
//!
//! let result = check(&Register, &history, &CheckOptions::default());
//! assert!(!result.is_linearizable());
//! println!("{result}");
//! # Ok(())
//! # }
//! ```

mod bitset;
mod budget;
mod checker;
mod entries;
mod explanation;
pub mod formats;
mod hashing;
mod history;
pub mod history_file;
pub mod html_view;
mod key_value;
mod model;
mod register;
mod search;
mod state_table;
mod timeline;

#[cfg(test)]
mod tests;

pub use budget::Limit;
pub use checker::{CheckOptions, CheckResult, Inconclusive, check};
pub use explanation::{ExplainedOperation, Explanation, LinearizationStep};
pub use history::{History, InvalidOperation, Operation, Outcome};
pub use key_value::{KeyValue, KvInput, KvOutput, KvState};
pub use model::{Model, Window};
pub use register::{Register, RegisterInput, RegisterOutput};
