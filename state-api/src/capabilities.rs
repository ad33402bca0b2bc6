//! What a backend offers: limits, expiry clock, optional features.

use std::time::Duration;

use crate::storage::StorageReporting;

/// Limits and features a backend declares. The conformance kit runs a
/// property exactly when these say it applies, and checks that an
/// undeclared feature answers [`crate::StateError::Unsupported`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Backend name, as used in errors and spans (`"memory"`, `"redis"`).
    pub backend: &'static str,
    /// Largest value, in bytes, that `put` accepts.
    pub max_value_len: usize,
    /// Granularity of expiry. Every backend in this workspace keeps
    /// milliseconds; the contract never rounds TTLs to seconds.
    pub ttl_resolution: Duration,
    /// Whose clock decides expiry.
    pub expiry_clock: ExpiryClock,
    /// Optional features.
    pub features: Features,
    /// Whether and how the backend reports its physical storage
    /// ([`crate::storage`]); `None` when it cannot.
    pub storage: Option<StorageReporting>,
    /// Whether acknowledged writes survive a crash of the server (or, for
    /// an embedded store, of the process).
    pub durability: Durability,
    /// What a failover (a replica promoted in place of a failed primary)
    /// keeps, where the deployment has one.
    pub failover: Failover,
}

impl Capabilities {
    /// Capabilities with millisecond TTL resolution, the given clock and
    /// limit, and every optional feature on.
    pub fn new(backend: &'static str, max_value_len: usize, expiry_clock: ExpiryClock) -> Capabilities {
        Capabilities {
            backend,
            max_value_len,
            ttl_resolution: Duration::from_millis(1),
            expiry_clock,
            features: Features::ALL,
            storage: None,
            durability: Durability::Volatile,
            failover: Failover::NotApplicable,
        }
    }

    /// The same capabilities, declaring `durability`.
    pub fn with_durability(mut self, durability: Durability) -> Capabilities {
        self.durability = durability;
        self
    }

    /// The same capabilities, declaring what a failover keeps.
    pub fn with_failover(mut self, failover: Failover) -> Capabilities {
        self.failover = failover;
        self
    }

    /// The same capabilities with other features.
    pub fn with_features(mut self, features: Features) -> Capabilities {
        self.features = features;
        self
    }

    /// The same capabilities, reporting storage as `reporting` says.
    pub fn with_storage(mut self, reporting: Option<StorageReporting>) -> Capabilities {
        self.storage = reporting;
        self
    }
}

/// What a crash of the server keeps: declared by the store, so that the
/// conformance kit holds a durable store to every acknowledged write across
/// a kill and restart, and does not fail a volatile one for forgetting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// A crash may lose acknowledged writes, and with them the fencing
    /// counters: after a restart, tokens may repeat. What
    /// [`Capabilities::new`] declares (the claim that promises nothing).
    Volatile,
    /// Every acknowledged write, fencing counters included, survives a
    /// crash of the server process (kill -9) and its restart on the same
    /// data.
    Durable,
}

/// What a failover keeps: declared by a store whose server replicates to
/// standbys that can take its place (Redis Sentinel or Cluster), so that a
/// failover test knows what to hold it to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// No failover the store takes part in: one server, or a service that
    /// replicates before it acknowledges (DynamoDB). What
    /// [`Capabilities::new`] declares.
    NotApplicable,
    /// Replication is asynchronous: a failover may lose writes the old
    /// primary acknowledged and had not passed on, leases and fencing-counter
    /// increments included, so after it a lock may be granted while an
    /// earlier lease is still believed held, and a fencing token may repeat.
    /// Mutual exclusion and fencing hold while no failover happens.
    MayLoseAcknowledged,
    /// Every acknowledged write, leases and fencing counters included, was
    /// confirmed by this many replicas before its reply (anything less is
    /// reported as a timeout), so a failover to one of them keeps it.
    KeepsAcknowledged {
        /// Replicas that confirmed each acknowledged write.
        replicas: u32,
    },
}

/// Whose clock decides when an entry or a lease expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpiryClock {
    /// The process's monotonic clock (the in-memory backend).
    Process,
    /// The server's clock (Redis, PostgreSQL): all clients agree.
    Server,
    /// Each client's wall clock (DynamoDB): expiry is off by the clients'
    /// skew, which the bound states.
    Client {
        /// The largest skew between clients that the deployment tolerates.
        max_skew: Duration,
    },
}

/// Optional features. Everything else in the contract is mandatory.
///
/// An operation of an undeclared feature answers
/// [`crate::StateError::Unsupported`] before any I/O (the support layer in
/// [`crate::driver`] does this for every driver), and the conformance kit
/// leaves exactly those operations out of every property while checking
/// everything else. Every backend in this workspace declares them all
/// except `lock_wakeups` on DynamoDB; the finer ones exist for third-party
/// stores that cannot offer one part of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// Ordered prefix scans ([`crate::StateStore::scan`]).
    pub scan: bool,
    /// Distributed locks ([`crate::LockService`]).
    pub locks: bool,
    /// Lock waiters are woken by a release instead of finding out at their
    /// next poll, so `acquire` takes a released lock within about one
    /// round trip (see [`crate::driver::LockDriver::watch`]).
    pub lock_wakeups: bool,
    /// A client's lock waiters are served in the order they called
    /// `acquire`: a newcomer does not go ahead of a waiter of the same
    /// client, so a steady stream of acquirers starves nobody (see
    /// [`crate::driver::contention`]; a driver declaring it returns a
    /// [`Contention`](crate::driver::Contention)). Across clients the
    /// server's race decides.
    pub fair_waiting: bool,
    /// Lock waiters of *all* clients stand in one line on the server:
    /// a free lock goes to the first live waiter in it, `try_acquire` does
    /// not take a lock others are waiting for, and a waiter that stopped
    /// asking leaves the line within [`LINE_WINDOW`](crate::driver::wait::LINE_WINDOW)
    /// (see [`crate::driver::LockDriver::attempt_in_line`]). Without it,
    /// each client's first waiter races the others' for every release.
    pub fair_across_clients: bool,
    /// `delete` with [`DeleteCondition::IfVersion`](crate::DeleteCondition::IfVersion).
    /// Without it such a delete answers `Unsupported` (an unconditional
    /// delete always works).
    pub conditional_delete: bool,
    /// Leases carry fencing tokens that strictly increase across
    /// acquisitions. Without it every lease's token is
    /// [`FencingToken::NONE`](crate::FencingToken::NONE), which no fencing
    /// backend issues, so a resource can tell that it is unprotected.
    pub fencing_tokens: bool,
    /// Values may be any bytes. Without it only UTF-8 values are stored;
    /// a `put` of any other bytes answers `Unsupported` and writes nothing.
    pub binary_values: bool,
    /// Counters ([`crate::StateStore::increment`]). Without it `increment`
    /// answers `Unsupported`.
    pub counters: bool,
    /// Fenced writes ([`crate::StateStore::put_fenced`] and its siblings):
    /// a write refused, atomically, unless the fence's lease holds its lock
    /// at that instant. Without it they answer `Unsupported`.
    pub fenced_writes: bool,
    /// Schedules ([`crate::ScheduleService`]). Without it every schedule
    /// operation answers `Unsupported`.
    pub schedules: bool,
}

impl Features {
    /// Every optional feature: what [`Capabilities::new`] declares.
    pub const ALL: Features = Features {
        scan: true,
        locks: true,
        lock_wakeups: true,
        fair_waiting: true,
        fair_across_clients: true,
        conditional_delete: true,
        fencing_tokens: true,
        binary_values: true,
        counters: true,
        fenced_writes: true,
        schedules: true,
    };

    /// No optional feature: the smallest store the contract allows.
    pub const NONE: Features = Features {
        scan: false,
        locks: false,
        lock_wakeups: false,
        fair_waiting: false,
        fair_across_clients: false,
        conditional_delete: false,
        fencing_tokens: false,
        binary_values: false,
        counters: false,
        fenced_writes: false,
        schedules: false,
    };
}
