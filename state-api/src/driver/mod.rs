//! The support layer for backend authors: implement [`StoreDriver`] (and
//! [`LockDriver`]) and get [`StateStore`] and
//! [`LockService`] with everything that does not depend
//! on the service applied once, here, for every backend:
//!
//! - argument checks before any I/O ([`args`]): value size against the
//!   declared limit, TTLs validated and rounded up to whole milliseconds
//!   ([`Ttl`]), scan space/prefix/limit, cursors decoded and checked
//!   ([`ScanRequest`], [`Listing`]), lock names;
//! - capability checks: an operation of an undeclared optional feature
//!   (scan, locks, conditional delete, counters, non-UTF-8 values) answers
//!   [`StateError::Unsupported`] without reaching the driver, and leases of
//!   a backend without fencing tokens carry [`FencingToken::NONE`];
//! - one tracing span per operation ([`crate::trace::operation_span`]);
//! - the one `acquire` wait loop ([`wait::acquire_loop`]) with saturating
//!   deadlines, backoff with jitter, and the subscribe-before-attempt rule;
//! - the release-notification hub ([`ReleaseHub`]) that a backend's
//!   pub/sub or LISTEN task only feeds;
//! - lease bookkeeping: owner ids, local validity (shortened by the
//!   declared clock skew), and [`StateError::LockLost`] for a lease that is
//!   no longer held.
//!
//! A driver therefore only translates: statements, decoding, error mapping.
//! Its methods have their own names (`read`, `write`, ...) so they never
//! clash with the contract's methods on the same type.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> state_api::Result<()> {
//! use std::time::Duration;
//! use state_api::{Key, MemoryStore, StateStore};
//!
//! // MemoryStore is a driver; the contract methods come from this layer,
//! // which refuses a zero TTL before the driver sees it.
//! let store = MemoryStore::new();
//! let key = Key::new("jobs", "nightly")?;
//! assert!(store.set(&key, "x".into(), Some(Duration::ZERO)).await.is_err());
//! # Ok(()) }
//! ```

pub mod args;
pub mod contention;
pub mod hub;
pub mod periodic;
pub mod schedule;
pub mod wait;

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;
use tracing::Instrument;

pub use self::args::{Listing, ScanRequest, Ttl};
pub use self::contention::{Contention, Line, Place};
pub use self::hub::{Delivery, ReleaseHub, Watch};
pub use self::periodic::Periodic;
pub use self::schedule::ScheduleDriver;
pub use self::wait::{LINE_REFRESH, LINE_WINDOW, Step, acquire_loop};

use crate::capabilities::{Capabilities, ExpiryClock};
use crate::entry::{Condition, Counter, DeleteCondition, Entry, PutOutcome, check_value_len};
use crate::error::{Result, StateError};
use crate::key::{Key, validate_lock_name};
use crate::lock::{Fence, FencingToken, Lease, LockService};
use crate::scan::{Cursor, ScanPage};
use crate::storage::{StorageScope, StorageUsage};
use crate::store::StateStore;
use crate::trace::operation_span;

/// A backend's key-value side, as a translation: every argument has been
/// checked, and the span is open. Implementing it implements
/// [`StateStore`] (semantics in [`crate::contract`]).
#[async_trait]
pub trait StoreDriver: Send + Sync + 'static {
    /// The backend's name, limits and features.
    fn declare(&self) -> Capabilities;

    /// [`StateStore::get`]: the live entry, `None` if absent or expired.
    async fn read(&self, key: &Key) -> Result<Option<Entry>>;

    /// [`StateStore::put`]; the value fits the declared limit (and is UTF-8
    /// unless binary values are declared).
    ///
    /// With a `fence` ([`StateStore::put_fenced`], passed only when the
    /// backend declares `fenced_writes`), the write is performed only if the
    /// fence's lock is held, at that instant, by the acquisition that issued
    /// its token, in one atomic step with the write:
    /// [`StateError::LockLost`] naming the lock otherwise, with nothing
    /// changed. The same holds for `remove` and `add`.
    async fn write(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        fence: Option<&Fence>,
    ) -> Result<PutOutcome>;

    /// [`StateStore::delete`]; a versioned condition only when conditional
    /// delete is declared; `fence` as for [`write`](Self::write).
    async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool>;

    /// [`StateStore::increment`], called only when counters are declared;
    /// `fence` as for [`write`](Self::write).
    async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter>;

    /// [`StateStore::scan`], called only when the scan feature is declared.
    async fn list(&self, request: ScanRequest<'_>) -> Result<Listing> {
        let _ = request;
        Err(unsupported(self.declare().backend, "scan"))
    }

    /// [`StateStore::storage_usage`], called only when
    /// [`Capabilities::storage`] is declared.
    async fn usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        let _ = scope;
        Err(unsupported(self.declare().backend, "storage"))
    }

    /// [`StateStore::reclaim_expired`], called only when
    /// [`Capabilities::storage`] is declared.
    async fn reclaim(&self) -> Result<u64> {
        Err(unsupported(self.declare().backend, "storage"))
    }

    /// Where this client's tasks take turns on a contended lock or key
    /// ([`contention`]): a backend holds one [`Contention`] (shared by its
    /// clones) and returns it here. `None` (the default): every call goes to
    /// the server on its own, and a released lock wakes all of this client's
    /// waiters.
    fn contention(&self) -> Option<&Contention> {
        None
    }
}

/// A client's waiters for a lock as they stand in the lock's line on the
/// server (see [`LockDriver::attempt_in_line`]): one entry per client,
/// carrying the ticket of the client's oldest waiting `acquire` call (its
/// first in line, the one that asks the server). When that call is
/// granted and another of the client's calls waits, the entry stays in
/// line with that call's ticket, so the client's calls keep their places
/// against other clients' later calls. (Without a
/// [`Contention`], each call is its own entry.)
#[derive(Debug, Clone, Copy)]
pub struct Waiter<'a> {
    /// The entry's id: the client's ([`Contention::id`]), the same on
    /// every attempt; random.
    pub id: &'a str,
    /// Its place in the line: when the oldest waiting call was made, in
    /// microseconds since the Unix epoch on the caller's clock. Only the
    /// order of tickets matters: the line is first come, first served
    /// across clients, up to the skew between their clocks. A backend
    /// sets the entry's ticket to this on every attempt.
    pub ticket: u64,
    /// How long the entry stays live after each attempt
    /// ([`LINE_WINDOW`]).
    pub window: Ttl,
    /// The ticket of the client's next waiting call, if one waits: on a
    /// grant, the entry stays in line with this ticket (live for
    /// `window`) instead of leaving it.
    pub next: Option<u64>,
}

/// What one acquisition attempt of a driver found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    /// Granted, with this fencing token.
    Acquired(FencingToken),
    /// Someone else holds it, for at most this long if known.
    Held(Option<Duration>),
}

/// A backend's lock side, as a translation. Implementing it implements
/// [`LockService`]. Every method has a default that answers
/// [`StateError::Unsupported`], so a backend without locks writes an empty
/// `impl` (and does not declare the feature: the layer then never calls it).
#[async_trait]
pub trait LockDriver: StoreDriver {
    /// One atomic attempt to take `name` for `ttl`, storing `owner` as the
    /// holder and issuing the next fencing token on success.
    async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
        let _ = (name, owner, ttl);
        Err(unsupported(self.declare().backend, "locks"))
    }

    /// One atomic attempt by a waiter standing in the lock's line on the
    /// server, for a backend declaring
    /// [`fair_across_clients`](crate::Features::fair_across_clients).
    ///
    /// The line is ordered by [`Waiter::ticket`] (then id). Granted, as
    /// [`attempt`](Self::attempt) grants, only if the lock is free and no
    /// live waiter in the line comes before `waiter` (whether or not
    /// `waiter` stands in it yet); the grant takes `waiter` out of the
    /// line, or keeps it there at [`Waiter::next`] when that is given.
    /// Otherwise `waiter` stands in the line at its ticket (set on every
    /// attempt), live until [`Waiter::window`] from now:
    /// a waiter not heard from for that long is skipped, and may be
    /// forgotten. With this declared, `attempt` (`try_acquire`) grants only
    /// when no live waiter is in the line.
    ///
    /// The default, for a backend without a line on the server, is
    /// `attempt`.
    async fn attempt_in_line(&self, name: &str, owner: &str, ttl: Ttl, waiter: &Waiter<'_>) -> Result<Attempt> {
        let _ = waiter;
        self.attempt(name, owner, ttl).await
    }

    /// Takes `waiter` out of the lock's line on the server (an `acquire`
    /// that timed out or failed), so that the waiters behind it need not
    /// wait out its window. Nothing if it is not in line. The default
    /// does nothing.
    async fn leave_line(&self, name: &str, waiter: &str) -> Result<()> {
        let _ = (name, waiter);
        Ok(())
    }

    /// Extends `lease` to expire `ttl` from now if it is still held; `false`
    /// if it is not (nothing changed).
    async fn renew(&self, lease: &Lease, ttl: Ttl) -> Result<bool> {
        let _ = (lease, ttl);
        Err(unsupported(self.declare().backend, "locks"))
    }

    /// Releases `lease` if it is still held, and announces the release to
    /// waiters; `false` if it is not held (nothing changed).
    async fn free(&self, lease: &Lease) -> Result<bool> {
        let _ = lease;
        Err(unsupported(self.declare().backend, "locks"))
    }

    /// Whether `lease` is still held.
    async fn holds(&self, lease: &Lease) -> Result<bool> {
        let _ = lease;
        Err(unsupported(self.declare().backend, "locks"))
    }

    /// A watch on releases of `name`, subscribed (waiting at most until
    /// `deadline`) so that a release from now on wakes it while it
    /// [is live](Watch::is_live); `None` (the default) when the backend
    /// cannot hear releases, and waiters poll.
    async fn watch(&self, name: &str, deadline: Instant) -> Option<Watch> {
        let _ = (name, deadline);
        None
    }
}

/// An [`StateError::Unsupported`] for an undeclared feature.
pub fn unsupported(backend: &'static str, feature: &'static str) -> StateError {
    StateError::Unsupported { backend, feature }
}

/// How long a lease of `ttl` is certainly valid on this machine: the TTL,
/// shortened by the declared skew where clients' clocks decide expiry (a
/// client whose clock runs ahead sees the lease end that much sooner) and
/// by the 1 ms truncation of deadlines.
pub fn local_validity(capabilities: &Capabilities, ttl: Ttl) -> Duration {
    match capabilities.expiry_clock {
        ExpiryClock::Client { max_skew } => {
            ttl.duration().saturating_sub(max_skew.saturating_add(Duration::from_millis(1)))
        }
        ExpiryClock::Process | ExpiryClock::Server => ttl.duration(),
    }
}

#[async_trait]
impl<D: StoreDriver> StateStore for D {
    fn capabilities(&self) -> Capabilities {
        self.declare()
    }

    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        let backend = self.declare().backend;
        self.read(key).instrument(operation_span(backend, "get", key.space())).await
    }

    async fn put(&self, key: &Key, value: Bytes, condition: Condition, ttl: Option<Duration>) -> Result<PutOutcome> {
        let declared = self.declare();
        async {
            let ttl = put_arguments(&declared, &value, ttl)?;
            match self.contention() {
                Some(contention) => {
                    contention
                        .write(key, value, condition, ttl, |value| self.write(key, value, condition, ttl, None))
                        .await
                }
                None => self.write(key, value, condition, ttl, None).await,
            }
        }
        .instrument(operation_span(declared.backend, "put", key.space()))
        .await
    }

    async fn delete(&self, key: &Key, condition: DeleteCondition) -> Result<bool> {
        let declared = self.declare();
        async {
            delete_arguments(&declared, condition)?;
            self.remove(key, condition, None).await
        }
        .instrument(operation_span(declared.backend, "delete", key.space()))
        .await
    }

    async fn increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter> {
        let declared = self.declare();
        async {
            let ttl = increment_arguments(&declared, ttl)?;
            self.add(key, delta, ttl, None).await
        }
        .instrument(operation_span(declared.backend, "increment", key.space()))
        .await
    }

    async fn put_fenced(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Duration>,
        fence: &Fence,
    ) -> Result<PutOutcome> {
        let declared = self.declare();
        async {
            fence_arguments(&declared, fence)?;
            let ttl = put_arguments(&declared, &value, ttl)?;
            self.write(key, value, condition, ttl, Some(fence)).await
        }
        .instrument(operation_span(declared.backend, "put_fenced", key.space()))
        .await
    }

    async fn delete_fenced(&self, key: &Key, condition: DeleteCondition, fence: &Fence) -> Result<bool> {
        let declared = self.declare();
        async {
            fence_arguments(&declared, fence)?;
            delete_arguments(&declared, condition)?;
            self.remove(key, condition, Some(fence)).await
        }
        .instrument(operation_span(declared.backend, "delete_fenced", key.space()))
        .await
    }

    async fn increment_fenced(&self, key: &Key, delta: i64, ttl: Option<Duration>, fence: &Fence) -> Result<Counter> {
        let declared = self.declare();
        async {
            fence_arguments(&declared, fence)?;
            let ttl = increment_arguments(&declared, ttl)?;
            self.add(key, delta, ttl, Some(fence)).await
        }
        .instrument(operation_span(declared.backend, "increment_fenced", key.space()))
        .await
    }

    async fn scan(&self, space: &str, prefix: &str, cursor: Option<&Cursor>, limit: usize) -> Result<ScanPage> {
        let declared = self.declare();
        async {
            if !declared.features.scan {
                return Err(unsupported(declared.backend, "scan"));
            }
            let request = ScanRequest::new(space, prefix, cursor, limit)?;
            Ok(self.list(request).await?.into_page())
        }
        .instrument(operation_span(declared.backend, "scan", space))
        .await
    }

    async fn storage_usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        let declared = self.declare();
        if declared.storage.is_none() {
            return Err(unsupported(declared.backend, "storage"));
        }
        self.usage(scope).await
    }

    async fn reclaim_expired(&self) -> Result<u64> {
        let declared = self.declare();
        if declared.storage.is_none() {
            return Err(unsupported(declared.backend, "storage"));
        }
        self.reclaim().await
    }
}

/// Checks a `put`'s arguments before any I/O; returns its TTL.
fn put_arguments(declared: &Capabilities, value: &Bytes, ttl: Option<Duration>) -> Result<Option<Ttl>> {
    check_value_len(value.len(), declared.max_value_len)?;
    if !declared.features.binary_values && std::str::from_utf8(value).is_err() {
        return Err(unsupported(declared.backend, "binary_values"));
    }
    Ttl::optional(ttl)
}

/// Checks a `delete`'s condition against the declared features.
fn delete_arguments(declared: &Capabilities, condition: DeleteCondition) -> Result<()> {
    if matches!(condition, DeleteCondition::IfVersion(_)) && !declared.features.conditional_delete {
        return Err(unsupported(declared.backend, "conditional_delete"));
    }
    Ok(())
}

/// Checks an `increment`'s arguments; returns its TTL.
fn increment_arguments(declared: &Capabilities, ttl: Option<Duration>) -> Result<Option<Ttl>> {
    if !declared.features.counters {
        return Err(unsupported(declared.backend, "counters"));
    }
    Ttl::optional(ttl)
}

/// Checks that fenced writes are declared and that `fence` could name an
/// acquisition: a valid lock name and a token that fences (not 0).
fn fence_arguments(declared: &Capabilities, fence: &Fence) -> Result<()> {
    if !declared.features.fenced_writes {
        return Err(unsupported(declared.backend, "fenced_writes"));
    }
    validate_lock_name(fence.lock())?;
    if fence.token() == FencingToken::NONE {
        return Err(StateError::invalid_argument("fence", "token 0 is no acquisition's: tokens that fence start at 1"));
    }
    Ok(())
}

/// Checks that the locks feature is declared.
fn locks_declared(declared: &Capabilities) -> Result<()> {
    if declared.features.locks { Ok(()) } else { Err(unsupported(declared.backend, "locks")) }
}

/// One attempt through the driver, turned into a [`Lease`] on success;
/// made by `waiter` in the lock's line on the server where one is given.
async fn attempt_lease<D: LockDriver + ?Sized>(
    driver: &D,
    declared: &Capabilities,
    name: &str,
    ttl: Ttl,
    waiter: Option<&Waiter<'_>>,
) -> Result<Step> {
    let owner = Lease::new_owner_id();
    // Taken before the request, so the lease's local deadline never
    // overstates the server's.
    let requested_at = Instant::now();
    let attempted = match waiter {
        Some(waiter) => driver.attempt_in_line(name, &owner, ttl, waiter).await?,
        None => driver.attempt(name, &owner, ttl).await?,
    };
    Ok(match attempted {
        Attempt::Acquired(token) => {
            // A backend that does not declare fencing tokens may still count
            // acquisitions; its count must not pass for a fencing token.
            let token = if declared.features.fencing_tokens { token } else { FencingToken::NONE };
            Step::Acquired(Lease::new(name, owner, token, requested_at, local_validity(declared, ttl)))
        }
        Attempt::Held(held_for) => Step::Held(held_for),
    })
}

/// Now, in microseconds since the Unix epoch (0 before it: a clock that
/// wrong only orders the line, and it orders it first).
pub(crate) fn epoch_micros() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| u64::try_from(since.as_micros()).unwrap_or(u64::MAX))
}

/// [`LINE_WINDOW`] as the drivers take it.
fn line_window() -> Ttl {
    Ttl::new(LINE_WINDOW).unwrap_or_else(|_| unreachable!("LINE_WINDOW is a valid TTL"))
}

/// Wakes the first of the client's waiters for a lock when dropped: after
/// a release returns, fails, or is cancelled mid-flight.
struct WakeOnDrop<'a> {
    contention: Option<&'a Contention>,
    name: &'a str,
}

impl Drop for WakeOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(contention) = self.contention {
            contention.released(self.name);
        }
    }
}

fn lock_lost(lease: &Lease) -> StateError {
    StateError::LockLost { name: lease.name().to_owned() }
}

#[async_trait]
impl<D: LockDriver> LockService for D {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        let declared = self.declare();
        async {
            locks_declared(&declared)?;
            validate_lock_name(name)?;
            let ttl = Ttl::new(ttl)?;
            Ok(match attempt_lease(self, &declared, name, ttl, None).await? {
                Step::Acquired(lease) => {
                    if let Some(contention) = self.contention() {
                        contention.held(name, lease.owner(), lease.valid_until());
                    }
                    Some(lease)
                }
                Step::Held(_) => None,
            })
        }
        .instrument(operation_span(declared.backend, "try_acquire", ""))
        .await
    }

    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        let declared = self.declare();
        async {
            locks_declared(&declared)?;
            validate_lock_name(name)?;
            let ttl = Ttl::new(ttl)?;
            let wakes = !declared.features.lock_wakeups;
            // This client's (or, without a Contention, this call's) entry
            // in the lock's line on the server, where there is one.
            let fair = declared.features.fair_across_clients;
            let call = (fair && self.contention().is_none()).then(|| (Lease::new_owner_id(), epoch_micros()));
            let entry = || -> Option<Waiter<'_>> {
                let window = line_window();
                match (self.contention(), &call) {
                    (_, Some((id, ticket))) => Some(Waiter { id, ticket: *ticket, window, next: None }),
                    (Some(contention), None) if fair => {
                        // Only the first in line attempts: its ticket is the
                        // client's oldest.
                        let (ticket, next) = contention.tickets(name)?;
                        Some(Waiter { id: contention.id(), ticket, window, next })
                    }
                    _ => None,
                }
            };
            let refresh = fair.then_some(LINE_REFRESH);
            let line = self.contention().map(|contention| Line { contention, name, wakes, refresh });
            let attempt = || {
                let waiter = entry();
                let declared = &declared;
                async move { attempt_lease(self, declared, name, ttl, waiter.as_ref()).await }
            };
            let acquired = acquire_loop(timeout, line, attempt, |deadline| self.watch(name, deadline)).await;
            let alone = self.contention().is_none_or(|contention| !contention.has_waiters(name));
            if let (true, Err(_), true) = (fair, &acquired, alone) {
                // Out of the line at once, rather than making the waiters
                // behind wait out the window (where other calls of this
                // client wait, the next of them stands in its place).
                // Best effort: if this fails too, the window passes.
                let id = call.as_ref().map_or_else(|| self.contention().map_or("", Contention::id), |(id, _)| id);
                let _ = self.leave_line(name, id).await;
            }
            acquired
        }
        .instrument(operation_span(declared.backend, "acquire", ""))
        .await
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        let declared = self.declare();
        async {
            locks_declared(&declared)?;
            let ttl = Ttl::new(ttl)?;
            let requested_at = Instant::now();
            if !self.renew(lease, ttl).await? {
                return Err(lock_lost(lease));
            }
            lease.renewed(requested_at, local_validity(&declared, ttl));
            if let Some(contention) = self.contention() {
                contention.extended(lease.name(), lease.owner(), lease.valid_until());
            }
            Ok(())
        }
        .instrument(operation_span(declared.backend, "extend", ""))
        .await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let declared = self.declare();
        async {
            locks_declared(&declared)?;
            if let Some(contention) = self.contention() {
                contention.releasing(lease.name(), lease.owner());
            }
            // Freed, lost, unknown or cancelled: the next waiter of this
            // client looks, woken here unless the backend's notification
            // wakes it.
            let _wake = WakeOnDrop {
                contention: self.contention().filter(|_| !declared.features.lock_wakeups),
                name: lease.name(),
            };
            if self.free(lease).await? { Ok(()) } else { Err(lock_lost(lease)) }
        }
        .instrument(operation_span(declared.backend, "release", ""))
        .await
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        let declared = self.declare();
        async {
            locks_declared(&declared)?;
            self.holds(lease).await
        }
        .instrument(operation_span(declared.backend, "is_held", ""))
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::capabilities::Features;
    use crate::memory::MemoryStore;

    /// The in-memory driver declaring locks and nothing else optional,
    /// counting the calls that reach it.
    struct Bare {
        inner: MemoryStore,
        reached: AtomicUsize,
    }

    impl Bare {
        fn reach(&self) {
            self.reached.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[async_trait]
    impl StoreDriver for Bare {
        fn declare(&self) -> Capabilities {
            self.inner.declare().with_features(Features { locks: true, ..Features::NONE })
        }
        async fn read(&self, key: &Key) -> Result<Option<Entry>> {
            self.reach();
            self.inner.read(key).await
        }
        async fn write(
            &self,
            key: &Key,
            value: Bytes,
            condition: Condition,
            ttl: Option<Ttl>,
            fence: Option<&Fence>,
        ) -> Result<PutOutcome> {
            self.reach();
            self.inner.write(key, value, condition, ttl, fence).await
        }
        async fn remove(&self, key: &Key, condition: DeleteCondition, fence: Option<&Fence>) -> Result<bool> {
            self.reach();
            self.inner.remove(key, condition, fence).await
        }
        async fn add(&self, key: &Key, delta: i64, ttl: Option<Ttl>, fence: Option<&Fence>) -> Result<Counter> {
            self.reach();
            self.inner.add(key, delta, ttl, fence).await
        }
    }

    #[async_trait]
    impl LockDriver for Bare {
        async fn attempt(&self, name: &str, owner: &str, ttl: Ttl) -> Result<Attempt> {
            self.reach();
            LockDriver::attempt(&self.inner, name, owner, ttl).await
        }
    }

    fn is_unsupported<T>(answer: &Result<T>, wanted: &str) -> bool {
        matches!(answer, Err(StateError::Unsupported { feature, .. }) if *feature == wanted)
    }

    #[tokio::test]
    async fn undeclared_features_answer_unsupported_without_reaching_the_driver() {
        let bare = Bare { inner: MemoryStore::new(), reached: AtomicUsize::new(0) };
        let key = Key::new("s", "k").unwrap_or_else(|e| panic!("{e}"));
        let binary = bare.put(&key, Bytes::from_static(&[0xff, 0]), Condition::Always, None).await;
        assert!(is_unsupported(&binary, "binary_values"), "{binary:?}");
        let versioned = bare.delete(&key, DeleteCondition::IfVersion(crate::Version(1))).await;
        assert!(is_unsupported(&versioned, "conditional_delete"), "{versioned:?}");
        let counted = bare.increment(&key, 1, None).await;
        assert!(is_unsupported(&counted, "counters"), "{counted:?}");
        let scanned = bare.scan("s", "", None, 10).await;
        assert!(is_unsupported(&scanned, "scan"), "{scanned:?}");
        assert_eq!(bare.reached.load(Ordering::SeqCst), 0, "an undeclared operation reached the driver");

        // What is declared still works: UTF-8 values, unconditional deletes.
        assert!(bare.put(&key, Bytes::from_static(b"text"), Condition::Always, None).await.is_ok());
        assert!(matches!(bare.delete(&key, DeleteCondition::Always).await, Ok(true)));
    }

    #[tokio::test]
    async fn leases_of_a_backend_without_fencing_tokens_carry_none() {
        let bare = Bare { inner: MemoryStore::new(), reached: AtomicUsize::new(0) };
        let lease = bare.try_acquire("job", Duration::from_secs(5)).await;
        assert!(matches!(&lease, Ok(Some(l)) if l.token() == FencingToken::NONE), "{lease:?}");
    }
}
