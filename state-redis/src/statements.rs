//! The Lua scripts every operation runs, kept as real files in `scripts/`.
//!
//! Each write is one script because Redis runs a script alone: nothing can
//! interleave between its reads and writes, which is what makes conditional
//! puts, counters and lock hand-overs atomic. Scripts are sent by SHA1
//! (`EVALSHA`); when the server answers `NOSCRIPT` (after `SCRIPT FLUSH`, a
//! restart, or a fail-over to a server that never saw them) the client
//! loads the script and retries once, transparently. Keys and values reach
//! the scripts only as `KEYS`/`ARGV`, never spliced into their text.

use std::sync::LazyLock;

use redis::Script;

/// The compiled-in scripts, hashed once per process.
pub(crate) struct Scripts {
    /// Reads value, version and remaining TTL.
    pub get: Script,
    /// The conditional put.
    pub put: Script,
    /// The (conditional) delete.
    pub delete: Script,
    /// The counter increment.
    pub increment: Script,
    /// One page of a prefix scan.
    pub scan: Script,
    /// The conditional put, behind a fence (`scripts/fence.lua`).
    pub put_fenced: Script,
    /// The delete, behind a fence.
    pub delete_fenced: Script,
    /// The increment, behind a fence.
    pub increment_fenced: Script,
    /// Takes a free lock and issues a fencing token.
    pub lock_acquire: Script,
    /// Extends a held lease.
    pub lock_extend: Script,
    /// Releases a held lease and wakes waiters.
    pub lock_release: Script,
    /// Takes a waiter out of a lock's line.
    pub lock_leave: Script,
    /// Unindexes a space's expired ids (the background sweeper).
    pub sweep: Script,
    /// Puts or moves a schedule item.
    pub schedule_put: Script,
    /// Removes a schedule item.
    pub schedule_cancel: Script,
    /// Lists or claims the due items of a schedule.
    pub schedule_due: Script,
    /// Completes or releases a claimed item.
    pub schedule_finish: Script,
}

/// A script's text: the files given, in order, each prepended to the
/// next (the shared functions first: `entry.lua` and `entry_write.lua` for
/// the entry format, `index.lua` for a space's index, `fence.lua` for a
/// fenced write's check, `schedule_common.lua` for schedules), so each
/// function has one copy, in one file. Each script lists only what it uses:
/// every function prepended is built again on each call.
macro_rules! script {
    ($($file:literal),+) => {
        Script::new(concat!($(include_str!(concat!("scripts/", $file)), "\n"),+))
    };
}

/// Every script of the crate.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    get: script!("entry.lua", "get.lua"),
    put: script!("entry.lua", "entry_write.lua", "index.lua", "put.lua"),
    delete: script!("entry.lua", "entry_write.lua", "index.lua", "delete.lua"),
    increment: script!("entry.lua", "index.lua", "increment.lua"),
    scan: script!("entry.lua", "index.lua", "scan.lua"),
    put_fenced: script!("entry.lua", "entry_write.lua", "index.lua", "fence.lua", "put.lua"),
    delete_fenced: script!("entry.lua", "entry_write.lua", "index.lua", "fence.lua", "delete.lua"),
    increment_fenced: script!("entry.lua", "index.lua", "fence.lua", "increment.lua"),
    lock_acquire: script!("lock_acquire.lua"),
    lock_extend: script!("lock_extend.lua"),
    lock_release: script!("lock_release.lua"),
    lock_leave: script!("lock_leave.lua"),
    sweep: script!("index.lua", "sweep.lua"),
    schedule_put: script!("schedule_common.lua", "schedule_put.lua"),
    schedule_cancel: script!("schedule_common.lua", "schedule_cancel.lua"),
    schedule_due: script!("schedule_common.lua", "schedule_due.lua"),
    schedule_finish: script!("schedule_common.lua", "schedule_finish.lua"),
});
