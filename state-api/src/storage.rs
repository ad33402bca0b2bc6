//! Physical storage, made observable: an optional hook through which a
//! backend reports what it holds, so the conformance kit can check that
//! expired entries and released locks are reclaimed within a declared
//! bound and that nothing grows without bound under a steady workload.
//!
//! A backend that reports declares [`StorageReporting`] in
//! [`Capabilities::storage`](crate::Capabilities::storage) and answers
//! [`StateStore::storage_usage`](crate::StateStore::storage_usage) and
//! [`StateStore::reclaim_expired`](crate::StateStore::reclaim_expired);
//! one that cannot (Redis and DynamoDB reclaim expired data on their own
//! schedules, out of the client's sight) leaves it `None`, and both methods
//! answer [`StateError::Unsupported`](crate::StateError::Unsupported).

use std::time::Duration;

/// The part of a store a usage report covers: the entries of `spaces`
/// and the locks whose names start with `lock_prefix`.
#[derive(Debug, Clone, Copy)]
pub struct StorageScope<'a> {
    /// Spaces whose entries are counted.
    pub spaces: &'a [&'a str],
    /// Locks whose names start with this are counted.
    pub lock_prefix: &'a str,
}

/// What a backend physically holds for a [`StorageScope`], expired entries
/// and leases not yet reclaimed included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageUsage {
    /// Entry records (map entries, rows, keys, items), live or expired.
    pub records: u64,
    /// Index entries kept apart from the records (an expiry index, say);
    /// 0 where the records are their own index.
    pub index_entries: u64,
    /// Lock records: held leases, and whatever a free lock leaves behind.
    pub lock_records: u64,
}

/// What a backend that reports its storage promises about reclaiming it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StorageReporting {
    /// An expired entry's record and index entries, and an expired lease,
    /// are physically gone at most this long after their deadline; a
    /// released lock's record (where [`LockRetention::Reclaimed`]) at most
    /// this long after the release.
    pub reclaim_within: Duration,
    /// What a free lock leaves behind.
    pub lock_records: LockRetention,
}

/// What a lock leaves behind once it is released or has expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockRetention {
    /// Nothing: a free lock holds no record.
    Reclaimed,
    /// One record per name ever locked, kept for good (the name's fencing
    /// counter): bounded by the number of names, not by their use.
    OnePerName,
}
