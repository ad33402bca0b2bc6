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

/// A script that reads entries, with the entry format's functions
/// (`scripts/entry.lua`) prepended: one copy of them, in one file.
macro_rules! with_entry {
    ($file:literal) => {
        concat!(include_str!("scripts/entry.lua"), "\n", include_str!($file))
    };
}

/// A script that writes entries and maintains a space's index, with the
/// entry functions and the shared index functions (`scripts/index.lua`)
/// prepended.
macro_rules! with_index {
    ($file:literal) => {
        concat!(include_str!("scripts/entry.lua"), "\n", include_str!("scripts/index.lua"), "\n", include_str!($file))
    };
}

/// A write's script behind the fence check (`scripts/fence.lua`), which
/// returns before the write when the fence does not hold.
macro_rules! fenced {
    ($file:literal) => {
        concat!(
            include_str!("scripts/entry.lua"),
            "\n",
            include_str!("scripts/index.lua"),
            "\n",
            include_str!("scripts/fence.lua"),
            "\n",
            include_str!($file)
        )
    };
}

/// A schedule script, with the shared schedule functions
/// (`scripts/schedule_common.lua`) prepended.
macro_rules! with_timers {
    ($file:literal) => {
        concat!(include_str!("scripts/schedule_common.lua"), "\n", include_str!($file))
    };
}

/// Every script of the crate.
pub(crate) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    get: Script::new(with_entry!("scripts/get.lua")),
    put: Script::new(with_index!("scripts/put.lua")),
    delete: Script::new(with_index!("scripts/delete.lua")),
    increment: Script::new(with_index!("scripts/increment.lua")),
    scan: Script::new(with_index!("scripts/scan.lua")),
    put_fenced: Script::new(fenced!("scripts/put.lua")),
    delete_fenced: Script::new(fenced!("scripts/delete.lua")),
    increment_fenced: Script::new(fenced!("scripts/increment.lua")),
    lock_acquire: Script::new(include_str!("scripts/lock_acquire.lua")),
    lock_extend: Script::new(include_str!("scripts/lock_extend.lua")),
    lock_release: Script::new(include_str!("scripts/lock_release.lua")),
    lock_leave: Script::new(include_str!("scripts/lock_leave.lua")),
    sweep: Script::new(with_index!("scripts/sweep.lua")),
    schedule_put: Script::new(with_timers!("scripts/schedule_put.lua")),
    schedule_cancel: Script::new(with_timers!("scripts/schedule_cancel.lua")),
    schedule_due: Script::new(with_timers!("scripts/schedule_due.lua")),
    schedule_finish: Script::new(with_timers!("scripts/schedule_finish.lua")),
});
