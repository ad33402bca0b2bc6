//! What a backend offers: limits, expiry clock, optional features.

use std::time::Duration;

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
            features: Features { scan: true, locks: true, lock_wakeups: true },
        }
    }

    /// The same capabilities with other features.
    pub fn with_features(mut self, features: Features) -> Capabilities {
        self.features = features;
        self
    }
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
}
