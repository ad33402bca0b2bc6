//! Deliberately broken backends: each wraps the in-memory store and breaks
//! one rule of the contract, the way real implementations get it wrong. The
//! kit's own tests assert that every mutant is caught by the property meant
//! to catch it — a property that never caught a broken store is no evidence.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use state_api::driver::{Step, acquire_loop};
use state_api::{
    Backend, Capabilities, Condition, Counter, Cursor, DeleteCondition, Entry, Key, Lease, LockService, MemoryStore,
    PutOutcome, Result, ScanItem, ScanPage, StateError, StateStore,
};

use crate::kit::Property;
use crate::unreachable::Unreachable;

mod torn;

/// The connect timeout of the mutants' unreachable-endpoint probe.
const PROBE_CONNECT_TIMEOUT: Duration = Duration::from_millis(500);

/// The password in the mutants' probe URL.
const PROBE_SECRET: &str = "kit-probe-hunter2";

/// Dials a loopback port nobody listens on, as a backend's connect would.
async fn dial_closed_port(mutation: Mutation) -> Result<Backend> {
    let port = std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .map_err(|e| StateError::unavailable("mutant", "no free loopback port", e))?;
    let url = format!("mutant://user:{PROBE_SECRET}@127.0.0.1:{port}");
    let dial = tokio::net::TcpStream::connect(("127.0.0.1", port));
    match tokio::time::timeout(PROBE_CONNECT_TIMEOUT, dial).await {
        // Someone took the port meanwhile: connected after all.
        Ok(Ok(_)) => Ok(Backend::memory()),
        Ok(Err(e)) => Err(match mutation {
            Mutation::LeaksSecret => StateError::unavailable("mutant", format!("cannot connect to {url}"), e),
            Mutation::UnreachableNotRetryable => StateError::backend("mutant", "connect failed", false, e),
            _ => StateError::unavailable("mutant", format!("cannot connect to {}", state_api::redact_url(&url)), e),
        }),
        Err(_) => Err(StateError::timed_out("connect", PROBE_CONNECT_TIMEOUT)),
    }
}

/// The ways a mutant is broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mutation {
    /// `check_and_set` as a read followed by an unconditional write.
    NonAtomicCheckAndSet,
    /// `compare_and_swap` writes whenever the key exists, ignoring the version.
    CasIgnoresVersion,
    /// `compare_and_swap` reports the expected version instead of a new one.
    CasKeepsVersion,
    /// TTLs rounded up to whole seconds.
    TtlRoundedToSeconds,
    /// `get` sometimes returns the value it returned last time.
    StaleRead,
    /// `check_and_set` still sees an expired entry as present.
    ExpiredStillPresent,
    /// A write without TTL keeps the earlier TTL instead of clearing it.
    TtlNotCleared,
    /// A multi-page scan loses its last page.
    ScanDropsLastPage,
    /// Each page after the first repeats the previous page's last entry.
    ScanRepeatsEntry,
    /// Keys encoded as `space:id` in one space, so different keys collide.
    CollidingKeyEncoding,
    /// `increment` as a read followed by a write.
    IncrementLosesUpdates,
    /// `release` frees the lock whoever holds it.
    ReleaseWithoutOwnerCheck,
    /// A takeover after expiry reuses the abandoned lease's fencing token.
    TokenReusedOnTakeover,
    /// `acquire` sometimes steals a held lock, and a lost lease's release
    /// pretends to succeed.
    NoMutualExclusion,
    /// Declares no scan feature but scans anyway instead of `Unsupported`.
    UndeclaredScan,
    /// `acquire` computes its deadline as `now + timeout`, which panics on
    /// `Duration::MAX` ("wait forever").
    PanicsOnHugeTimeout,
    /// Declares release wake-ups, but its waiters poll with backoff.
    NoReleaseWakeups,
    /// An unreachable endpoint fails with a non-retryable error.
    UnreachableNotRetryable,
    /// An unreachable endpoint's error quotes the URL, password included.
    LeaksSecret,
    // Torn operations (see `mutants/torn.rs`): a read and a write in
    // separate steps, around expiry and in `set`.
    /// `check_and_set` on an expired key reads it, deletes it, then
    /// writes, in three steps: contenders racing there all win.
    ExpiredCheckAndSetRace,
    /// `get` of an expired key deletes it in a second step, deleting a
    /// fresh value written in between (a lost acknowledged write).
    GetDeletesFreshWrite,
    /// `increment` on an expired window starts a new one by deleting and
    /// writing in separate steps: increments racing there lose updates.
    IncrementAcrossExpiryLosesUpdates,
    /// `compare_and_swap` checks the version on a read and writes in a
    /// second step, succeeding on an entry that expired in between.
    CasOnExpiredEntry,
    /// `set` is a read followed by a write of the version read plus one:
    /// racing sets are both acknowledged with one version, one value lost.
    SetReadModifyWrite,
}

impl Mutation {
    /// Every mutation.
    pub const ALL: [Mutation; 24] = [
        Mutation::NonAtomicCheckAndSet,
        Mutation::CasIgnoresVersion,
        Mutation::CasKeepsVersion,
        Mutation::TtlRoundedToSeconds,
        Mutation::StaleRead,
        Mutation::ExpiredStillPresent,
        Mutation::TtlNotCleared,
        Mutation::ScanDropsLastPage,
        Mutation::ScanRepeatsEntry,
        Mutation::CollidingKeyEncoding,
        Mutation::IncrementLosesUpdates,
        Mutation::ReleaseWithoutOwnerCheck,
        Mutation::TokenReusedOnTakeover,
        Mutation::NoMutualExclusion,
        Mutation::UndeclaredScan,
        Mutation::PanicsOnHugeTimeout,
        Mutation::NoReleaseWakeups,
        Mutation::UnreachableNotRetryable,
        Mutation::LeaksSecret,
        Mutation::ExpiredCheckAndSetRace,
        Mutation::GetDeletesFreshWrite,
        Mutation::IncrementAcrossExpiryLosesUpdates,
        Mutation::CasOnExpiredEntry,
        Mutation::SetReadModifyWrite,
    ];

    /// The property meant to catch this mutation.
    pub fn caught_by(&self) -> Property {
        match self {
            Mutation::NonAtomicCheckAndSet => Property::OneWinner,
            Mutation::CasIgnoresVersion | Mutation::CasKeepsVersion => Property::SequentialModel,
            Mutation::TtlRoundedToSeconds | Mutation::ExpiredStillPresent | Mutation::TtlNotCleared => Property::Ttl,
            Mutation::StaleRead => Property::LinearizabilityGetSetCas,
            Mutation::ScanDropsLastPage | Mutation::ScanRepeatsEntry => Property::Scan,
            Mutation::CollidingKeyEncoding => Property::EdgeInputs,
            Mutation::IncrementLosesUpdates => Property::NoLostUpdate,
            Mutation::ReleaseWithoutOwnerCheck => Property::LeaseExpiry,
            Mutation::TokenReusedOnTakeover => Property::FencingTokens,
            Mutation::NoMutualExclusion => Property::MutualExclusion,
            Mutation::UndeclaredScan => Property::Capabilities,
            Mutation::PanicsOnHugeTimeout => Property::ExtremeArguments,
            Mutation::NoReleaseWakeups => Property::ReleaseWakeups,
            Mutation::UnreachableNotRetryable | Mutation::LeaksSecret => Property::UnreachableEndpoint,
            Mutation::ExpiredCheckAndSetRace => Property::OneWinner,
            Mutation::GetDeletesFreshWrite | Mutation::CasOnExpiredEntry => Property::LinearizabilityExpiry,
            Mutation::IncrementAcrossExpiryLosesUpdates => Property::LinearizabilityCounters,
            Mutation::SetReadModifyWrite => Property::LinearizabilityGetSetCas,
        }
    }

    /// The probe for this mutant's unreachable endpoint: a connector that
    /// dials a closed loopback port and reports the failure as the
    /// contract says, except for the mutations that break exactly that.
    pub fn unreachable(&self) -> Unreachable {
        let mutation = *self;
        Unreachable::new(PROBE_CONNECT_TIMEOUT, move || dial_closed_port(mutation)).with_secret(PROBE_SECRET)
    }

    /// A fresh in-memory backend broken in this way.
    pub fn backend(&self) -> Backend {
        let mutant = Arc::new(Mutant { mutation: *self, inner: MemoryStore::new(), memory: Mutex::default() });
        Backend::new(Arc::clone(&mutant) as Arc<dyn StateStore>, mutant)
    }
}

/// What some mutants remember between calls.
#[derive(Default)]
struct Memory {
    /// Last value returned by `get`, per key (stale reads).
    last_read: HashMap<Key, Entry>,
    /// Last entry written with a TTL, per key (expired-still-present).
    written: HashMap<Key, Entry>,
    /// Latest lease handed out, per lock name, and whether it was released.
    leases: HashMap<String, (Lease, bool)>,
    /// Version and deadline of each entry written with a TTL (torn mutants).
    deadlines: HashMap<Key, (state_api::Version, tokio::time::Instant)>,
}

struct Mutant {
    mutation: Mutation,
    inner: MemoryStore,
    memory: Mutex<Memory>,
}

impl Mutant {
    fn is(&self, mutation: Mutation) -> bool {
        self.mutation == mutation
    }

    /// Maps a key into the one shared space, non-injectively.
    fn collide(&self, key: &Key) -> Result<Key> {
        Key::new("mutant", &format!("{}:{}", key.space(), key.id()))
    }

    fn stored_key(&self, key: &Key) -> Result<Key> {
        if self.is(Mutation::CollidingKeyEncoding) { self.collide(key) } else { Ok(key.clone()) }
    }

    fn ttl(&self, ttl: Option<Duration>) -> Option<Duration> {
        match ttl {
            Some(t) if self.is(Mutation::TtlRoundedToSeconds) => {
                Some(Duration::from_secs(t.as_secs_f64().ceil() as u64))
            }
            other => other,
        }
    }
}

#[async_trait]
impl StateStore for Mutant {
    fn capabilities(&self) -> Capabilities {
        let caps = self.inner.capabilities();
        if self.is(Mutation::UndeclaredScan) {
            let features = state_api::Features { scan: false, ..caps.features };
            caps.with_features(features)
        } else {
            caps
        }
    }

    async fn get(&self, key: &Key) -> Result<Option<Entry>> {
        if self.is_torn() {
            return self.torn_get(key).await;
        }
        let current = self.inner.get(&self.stored_key(key)?).await?;
        if !self.is(Mutation::StaleRead) {
            return Ok(current);
        }
        let mut memory = self.memory.lock();
        let previous = memory.last_read.get(key).cloned();
        match current {
            Some(entry) => {
                memory.last_read.insert(key.clone(), entry.clone());
                Ok(if fastrand::bool() { previous.or(Some(entry)) } else { Some(entry) })
            }
            None => Ok(None),
        }
    }

    async fn put(&self, key: &Key, value: Bytes, condition: Condition, ttl: Option<Duration>) -> Result<PutOutcome> {
        if self.is_torn() {
            return self.torn_put(key, value, condition, ttl).await;
        }
        let stored = self.stored_key(key)?;
        let ttl = self.ttl(ttl);
        match (self.mutation, condition) {
            (Mutation::NonAtomicCheckAndSet, Condition::IfAbsent) => {
                if let Some(current) = self.inner.get(&stored).await? {
                    return Ok(PutOutcome::Rejected(Some(current)));
                }
                tokio::task::yield_now().await;
                tokio::time::sleep(Duration::from_millis(1)).await;
                self.inner.put(&stored, value, Condition::Always, ttl).await
            }
            (Mutation::CasIgnoresVersion, Condition::IfVersion(_)) => match self.inner.get(&stored).await? {
                Some(_) => self.inner.put(&stored, value, Condition::Always, ttl).await,
                None => Ok(PutOutcome::Rejected(None)),
            },
            (Mutation::CasKeepsVersion, Condition::IfVersion(expected)) => {
                match self.inner.put(&stored, value, condition, ttl).await? {
                    PutOutcome::Written(_) => Ok(PutOutcome::Written(expected)),
                    rejected => Ok(rejected),
                }
            }
            (Mutation::ExpiredStillPresent, Condition::IfAbsent) => {
                let remembered = self.memory.lock().written.get(key).cloned();
                match (self.inner.get(&stored).await?, remembered) {
                    (None, Some(old)) => Ok(PutOutcome::Rejected(Some(old))),
                    _ => self.remember(key, self.inner.put(&stored, value, condition, ttl).await, ttl).await,
                }
            }
            (Mutation::ExpiredStillPresent, _) => {
                self.remember(key, self.inner.put(&stored, value, condition, ttl).await, ttl).await
            }
            (Mutation::TtlNotCleared, _) if ttl.is_none() => {
                let kept = self.inner.get(&stored).await?.and_then(|e| e.ttl);
                self.inner.put(&stored, value, condition, kept).await
            }
            _ => self.inner.put(&stored, value, condition, ttl).await,
        }
    }

    async fn delete(&self, key: &Key, condition: DeleteCondition) -> Result<bool> {
        if self.is_torn() {
            return self.torn_delete(key, condition).await;
        }
        self.inner.delete(&self.stored_key(key)?, condition).await
    }

    async fn increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter> {
        if self.is_torn() {
            return self.torn_increment(key, delta, ttl).await;
        }
        let stored = self.stored_key(key)?;
        let ttl = self.ttl(ttl);
        if !self.is(Mutation::IncrementLosesUpdates) {
            return self.inner.increment(&stored, delta, ttl).await;
        }
        let current = self.inner.get(&stored).await?;
        let base = match &current {
            Some(e) => state_api::counter::parse(&e.value).ok_or(StateError::TypeMismatch { key: key.to_string() })?,
            None => 0,
        };
        tokio::task::yield_now().await;
        let value = base.checked_add(delta).ok_or(StateError::Overflow { key: key.to_string(), delta })?;
        let version = self.inner.set(&stored, Bytes::from(value.to_string()), ttl).await?;
        Ok(Counter { value, version })
    }

    async fn scan(&self, space: &str, prefix: &str, cursor: Option<&Cursor>, limit: usize) -> Result<ScanPage> {
        if self.is(Mutation::CollidingKeyEncoding) {
            let page = self.inner.scan("mutant", &format!("{space}:{prefix}"), cursor, limit).await?;
            let strip = space.len() + 1;
            let items = page.items.into_iter().map(|i| ScanItem { id: i.id[strip..].to_owned(), entry: i.entry });
            return Ok(ScanPage { items: items.collect(), next: page.next });
        }
        let page = self.inner.scan(space, prefix, cursor, limit).await?;
        match (self.mutation, cursor) {
            (Mutation::ScanDropsLastPage, Some(_)) if page.next.is_none() => Ok(ScanPage { items: vec![], next: None }),
            (Mutation::ScanRepeatsEntry, Some(cursor)) => {
                let mut items = page.items;
                if let Some(entry) = self.inner.get(&Key::new(space, cursor.as_str())?).await? {
                    items.insert(0, ScanItem { id: cursor.as_str().to_owned(), entry });
                    items.truncate(limit);
                }
                let next = items.last().map(|i| Cursor::new(i.id.clone())).filter(|_| page.next.is_some());
                Ok(ScanPage { items, next })
            }
            _ => Ok(page),
        }
    }
}

impl Mutant {
    async fn remember(&self, key: &Key, outcome: Result<PutOutcome>, ttl: Option<Duration>) -> Result<PutOutcome> {
        if let (Ok(PutOutcome::Written(version)), Some(_)) = (&outcome, ttl) {
            let entry = Entry { value: Bytes::from_static(b"(expired)"), version: *version, ttl };
            self.memory.lock().written.insert(key.clone(), entry);
        }
        outcome
    }

    fn track(&self, lease: Lease) -> Lease {
        let mut memory = self.memory.lock();
        let previous = memory.leases.get(lease.name()).cloned();
        let lease = match previous {
            // A takeover (the previous lease was never released) re-issues
            // the abandoned token.
            Some((old, false)) if self.is(Mutation::TokenReusedOnTakeover) => {
                Lease::new(lease.name(), lease.owner(), old.token(), tokio::time::Instant::now(), Duration::ZERO)
            }
            _ => lease,
        };
        memory.leases.insert(lease.name().to_owned(), (lease.clone(), false));
        lease
    }
}

#[async_trait]
impl LockService for Mutant {
    async fn try_acquire(&self, name: &str, ttl: Duration) -> Result<Option<Lease>> {
        if self.is(Mutation::NoMutualExclusion) && fastrand::u8(..4) == 0 {
            let holder = self.memory.lock().leases.get(name).map(|(l, _)| l.clone());
            if let Some(holder) = holder {
                let _ = self.inner.release(&holder).await;
            }
        }
        Ok(self.inner.try_acquire(name, ttl).await?.map(|lease| self.track(lease)))
    }

    // Otherwise `acquire` is the trait's default: backoff over this
    // mutant's try_acquire (which is also what `NoReleaseWakeups` is).
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        if self.is(Mutation::PanicsOnHugeTimeout) {
            // The naive deadline: overflows (and panics) on Duration::MAX.
            let _deadline = tokio::time::Instant::now() + timeout;
        }
        let attempt = || async {
            Ok(match self.try_acquire(name, ttl).await? {
                Some(lease) => Step::Acquired(lease),
                None => Step::Held(None),
            })
        };
        acquire_loop(timeout, attempt, |_| async { None }).await
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        self.inner.extend(lease, ttl).await
    }

    async fn release(&self, lease: &Lease) -> Result<()> {
        let current = self.memory.lock().leases.get(lease.name()).map(|(l, _)| l.clone());
        let target = match (self.mutation, current) {
            (Mutation::ReleaseWithoutOwnerCheck, Some(current)) => current,
            _ => lease.clone(),
        };
        let released = self.inner.release(&target).await;
        if released.is_ok()
            && let Some(entry) = self.memory.lock().leases.get_mut(lease.name())
        {
            entry.1 = true;
        }
        match released {
            Err(StateError::LockLost { .. }) if self.is(Mutation::NoMutualExclusion) => Ok(()),
            other => other,
        }
    }

    async fn is_held(&self, lease: &Lease) -> Result<bool> {
        self.inner.is_held(lease).await
    }
}
