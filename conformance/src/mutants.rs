//! Deliberately broken backends: each wraps the in-memory store and breaks
//! one rule of the contract, the way real implementations get it wrong. The
//! kit's own tests assert that every mutant is caught by the property meant
//! to catch it — a property that never caught a broken store is no evidence.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use state_api::driver::{Contention, Line, LockDriver, Step, StoreDriver, Watch, acquire_loop};
use state_api::{
    Backend, Capabilities, Condition, Counter, Cursor, DeleteCondition, Entry, Fence, Key, Lease, LockService,
    MemoryStore, PutOutcome, Result, ScanItem, ScanPage, StateError, StateStore, StorageReporting, StorageScope,
    StorageUsage, Version,
};

use crate::kit::Property;
use crate::unreachable::Unreachable;

pub mod faults;
mod line;
mod schedules;
mod torn;

/// How often the in-memory store under a mutant sweeps, as declared.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Declares fair waiting, but its waiters race for each release and a
    /// newcomer (the releaser asking again) tries ahead of them.
    Barging,
    /// Declares fairness across clients, but keeps only each client's own
    /// line (as this workspace's backends did before issue 14's second
    /// part): clients' first waiters race for each release, and a client
    /// whose task asks again as soon as it released beats the other
    /// client's waiters, who hear of the release a moment later.
    ClientsRace,
    /// Declares fairness across clients, and keeps one line for them, but
    /// a call granted from the line leaves its client's entry standing
    /// until it falls silent: the other client's next waiter is held back
    /// for up to `LINE_WINDOW` while the lock is free (a Lua mutant of the
    /// Redis acquire script that the kit missed in session 10).
    GrantedStaysInLine,
    /// Declares fairness across clients, and keeps one line for them, but
    /// a grant deletes the other clients' entries from it: until they
    /// stand again, a newcomer takes the lock, once it is free, ahead of
    /// those older waiters (PostgreSQL statement mutants the kit missed in
    /// session 10).
    GrantWipesLine,
    /// Declares fairness across clients, but a waiter that gives up takes
    /// every client's entry out of the line, not only its own (the
    /// PostgreSQL statement mutant `lock_leave.sql:3` the kit missed in
    /// session 10).
    GiveUpWipesLine,
    /// A waiter that gives up stays in the lock's line on the server: a
    /// free lock is refused to `try_acquire` until its entry falls silent
    /// (a `state-postgres` Rust mutant of `leave_line`, answering `Ok(())`
    /// without leaving, that the kit missed in session 12).
    GiveUpStaysInLine,
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

    // Issue 12, gaps 2-7: inputs no generator produced, scans of every
    // write kind, lock timing and cancellation, finer capabilities, cost.
    /// A TTL under one millisecond — zero included — means "no TTL", as in
    /// a store that truncates TTLs to whole milliseconds and reads 0 as
    /// "never expires": on puts, increments, leases and extends.
    ZeroTtlPermanent,
    /// `compare_and_swap` on version 0 creates an absent key, as if absent
    /// were version 0.
    CasZeroCreates,
    /// `compare_and_swap` on version `u64::MAX` writes whatever the live
    /// version, as a store passing versions as signed numbers (-1 = any).
    CasMaxIsWildcard,
    /// An id ending in a suffix the store uses internally (`:h`, `:v`, `#`,
    /// `~`, `/`) names the same record as the id without it.
    SuffixAliasing,
    /// Scan prefixes are LIKE patterns: `_` matches any character, `%`
    /// any run of them.
    LikeWildcardScan,
    /// Scans leave out entries written by `increment`, as a store keeping
    /// counters in another physical form that its scan does not read.
    ScanMissesCounters,
    /// `acquire` waits in whole seconds: its timeout is rounded up.
    AcquireOvershootsTimeout,
    /// A dropped `acquire` keeps waiting in the background and takes the
    /// lock when it is released, for a holder that is gone.
    CancelledAcquireLeaks,
    /// `extend` computes the new deadline as `now - ttl`: the lease it
    /// reports extended has in fact expired.
    ExtendFromThePast,
    /// Every scan page reads the whole space and filters it.
    ScanCostsTheSpace,
    /// Declares no binary values, but instead of refusing bytes that are
    /// not UTF-8 stores a lossy UTF-8 copy of them.
    LossyTextValues,
    /// `increment` always reports version 1, the creating increment's.
    IncrementKeepsVersion,

    // Issue 19: storage made observable.
    /// Declares reclaiming within a second, but its sweeper runs hourly.
    SweeperNeverRuns,
    /// The sweep removes the keys whose deadline it noted at their last
    /// TTL write, without re-checking them: an entry rewritten without a
    /// TTL after it expired is removed (a lost acknowledged write).
    SweepRemovesRewritten,
    /// Declares that free locks keep no record, but every name ever locked
    /// leaves one behind.
    FreeLockLeavesRecord,

    // Issue 15: keep-alive.
    /// `extend` of a lease that is no longer held answers `Ok` instead of
    /// `LockLost` (and moves the local deadline): a keep-alive over it
    /// never learns that the lease was taken.
    ExtendMasksLoss,
    /// Fenced writes are performed as plain writes: the fence is ignored.
    IgnoresFence,
    /// The fence is checked in one step and the write made in another, a
    /// network hop later (up to 250 ms): a holder whose lease lapses in
    /// between writes after a newer holder did.
    FenceCheckedApart,
    /// A fenced `put` ignores its condition: every fenced put writes as
    /// `Always`, so a fenced compare-and-swap overwrites a newer version.
    FencedPutIgnoresCondition,
    // Issue 17: schedules.
    /// `schedule` appends an item even when its id is already there.
    ScheduleAppends,
    /// `claim` lists the due items, then marks them claimed in a second
    /// step without looking again: racing claimers get the same items.
    ClaimPeeksThenTakes,
    /// `complete` checks the claim's owner but not its lease: an expired
    /// claim still completes.
    ExpiredClaimCompletes,
    /// Correct schedules whose `due` walks every item held.
    ScheduleWalksEverything,
    /// Several of the mutations at once, layered over one store (the first
    /// outermost), each meant to be reported by the one property.
    Combined(Property, &'static [Mutation]),
}

impl Mutation {
    /// A store whose increments report a wrong version and whose
    /// compare-and-swap ignores the version: the frequent defect must not
    /// hide the other.
    pub const TWO_SEQUENTIAL_DEFECTS: Mutation =
        Mutation::Combined(Property::SequentialModel, &[Mutation::IncrementKeepsVersion, Mutation::CasIgnoresVersion]);
    /// A store that rounds TTLs to seconds and keeps TTLs a TTL-less write
    /// should clear.
    pub const TWO_TTL_DEFECTS: Mutation =
        Mutation::Combined(Property::Ttl, &[Mutation::TtlRoundedToSeconds, Mutation::TtlNotCleared]);
    /// A store that reuses tokens on takeover and releases without an
    /// owner check.
    pub const TWO_LEASE_DEFECTS: Mutation = Mutation::Combined(
        Property::LeaseExpiry,
        &[Mutation::TokenReusedOnTakeover, Mutation::ReleaseWithoutOwnerCheck],
    );

    /// Every mutation.
    pub const ALL: [Mutation; 56] = [
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
        Mutation::Barging,
        Mutation::ClientsRace,
        Mutation::GrantedStaysInLine,
        Mutation::GrantWipesLine,
        Mutation::GiveUpWipesLine,
        Mutation::GiveUpStaysInLine,
        Mutation::UnreachableNotRetryable,
        Mutation::LeaksSecret,
        Mutation::ExpiredCheckAndSetRace,
        Mutation::GetDeletesFreshWrite,
        Mutation::IncrementAcrossExpiryLosesUpdates,
        Mutation::CasOnExpiredEntry,
        Mutation::SetReadModifyWrite,
        // Issue 12, gaps 2-7.
        Mutation::ZeroTtlPermanent,
        Mutation::CasZeroCreates,
        Mutation::CasMaxIsWildcard,
        Mutation::SuffixAliasing,
        Mutation::LikeWildcardScan,
        Mutation::ScanMissesCounters,
        Mutation::AcquireOvershootsTimeout,
        Mutation::CancelledAcquireLeaks,
        Mutation::ExtendFromThePast,
        Mutation::ScanCostsTheSpace,
        Mutation::LossyTextValues,
        Mutation::IncrementKeepsVersion,
        // Issue 19.
        Mutation::SweeperNeverRuns,
        Mutation::SweepRemovesRewritten,
        Mutation::FreeLockLeavesRecord,
        Mutation::ExtendMasksLoss,
        Mutation::IgnoresFence,
        Mutation::FenceCheckedApart,
        Mutation::FencedPutIgnoresCondition,
        // Issue 17.
        Mutation::ScheduleAppends,
        Mutation::ClaimPeeksThenTakes,
        Mutation::ExpiredClaimCompletes,
        Mutation::ScheduleWalksEverything,
        Mutation::TWO_SEQUENTIAL_DEFECTS,
        Mutation::TWO_TTL_DEFECTS,
        Mutation::TWO_LEASE_DEFECTS,
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
            Mutation::Barging => Property::BoundedWaiting,
            Mutation::ClientsRace
            | Mutation::GrantedStaysInLine
            | Mutation::GrantWipesLine
            | Mutation::GiveUpWipesLine => Property::FairAcrossClients,
            Mutation::GiveUpStaysInLine => Property::AcquireTimeout,
            Mutation::UnreachableNotRetryable | Mutation::LeaksSecret => Property::UnreachableEndpoint,
            Mutation::ExpiredCheckAndSetRace => Property::OneWinner,
            Mutation::GetDeletesFreshWrite | Mutation::CasOnExpiredEntry => Property::LinearizabilityExpiry,
            Mutation::IncrementAcrossExpiryLosesUpdates => Property::LinearizabilityCounters,
            Mutation::SetReadModifyWrite => Property::LinearizabilityGetSetCas,
            // Issue 12, gaps 2-7.
            Mutation::ZeroTtlPermanent => Property::ExtremeArguments,
            Mutation::CasZeroCreates | Mutation::CasMaxIsWildcard | Mutation::IncrementKeepsVersion => {
                Property::SequentialModel
            }
            Mutation::SuffixAliasing => Property::EdgeInputs,
            Mutation::LikeWildcardScan | Mutation::ScanMissesCounters => Property::Scan,
            Mutation::AcquireOvershootsTimeout => Property::AcquireTimeout,
            Mutation::CancelledAcquireLeaks => Property::CancelledAcquire,
            Mutation::ExtendFromThePast => Property::LeaseExtension,
            Mutation::ExtendMasksLoss => Property::KeepAlive,
            Mutation::IgnoresFence | Mutation::FenceCheckedApart => Property::FencedWrites,
            Mutation::FencedPutIgnoresCondition => Property::LinearizabilityFenced,
            Mutation::ScanCostsTheSpace => Property::ScanCost,
            Mutation::LossyTextValues => Property::Capabilities,
            Mutation::SweeperNeverRuns | Mutation::SweepRemovesRewritten | Mutation::FreeLockLeavesRecord => {
                Property::StorageReclaim
            }
            Mutation::ScheduleAppends => Property::ScheduleReplaceById,
            Mutation::ClaimPeeksThenTakes => Property::ScheduleExactlyOnce,
            Mutation::ExpiredClaimCompletes => Property::ScheduleClaimExpiry,
            Mutation::ScheduleWalksEverything => Property::ScheduleCost,
            Mutation::Combined(property, _) => *property,
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
        self.clients().0
    }

    /// A fresh in-memory backend broken in this way, and for the mutations
    /// that the kit catches across clients, a second client of the same
    /// store (broken in the same way) for [`Subject::with_peer`](crate::Subject::with_peer).
    pub fn clients(&self) -> (Backend, Option<Backend>) {
        if *self == Mutation::ClientsRace {
            let memory = MemoryStore::builder().sweep_interval(Some(SWEEP_INTERVAL)).build();
            let peer = memory.peer();
            let client = |memory: MemoryStore| {
                let mutant = Arc::new(Mutant::over(*self, Arc::new(memory)));
                Backend::new(Arc::clone(&mutant) as Arc<dyn StateStore>, mutant)
                    .with_schedules(Arc::new(MemoryStore::new()))
            };
            return (client(memory), Some(client(peer)));
        }
        let line_defect = match self {
            Mutation::GrantedStaysInLine => Some(line::Defect::KeepsGranted),
            Mutation::GrantWipesLine => Some(line::Defect::WipesOthers),
            Mutation::GiveUpWipesLine => Some(line::Defect::LeaveWipesOthers),
            Mutation::GiveUpStaysInLine => Some(line::Defect::LeaveIgnored),
            _ => None,
        };
        if let Some(defect) = line_defect {
            let memory = MemoryStore::builder().sweep_interval(Some(SWEEP_INTERVAL)).build();
            let peer = memory.peer();
            let seen = Arc::default();
            let client = |memory: MemoryStore| {
                let store: Arc<dyn StateStore> = Arc::new(memory.clone());
                let driver = line::LineMutant { store: memory, defect, seen: Arc::clone(&seen) };
                Backend::new(store, Arc::new(driver)).with_schedules(Arc::new(MemoryStore::new()))
            };
            return (client(memory), Some(client(peer)));
        }
        (self.single(), None)
    }

    fn single(&self) -> Backend {
        let defect = match self {
            Mutation::ScheduleAppends => Some(schedules::Defect::AppendsInsteadOfReplacing),
            Mutation::ClaimPeeksThenTakes => Some(schedules::Defect::PeeksThenTakes),
            Mutation::ExpiredClaimCompletes => Some(schedules::Defect::ExpiredClaimCompletes),
            Mutation::ScheduleWalksEverything => Some(schedules::Defect::WalksEverything),
            _ => None,
        };
        if let Some(defect) = defect {
            return Backend::memory().with_schedules(Arc::new(schedules::BrokenSchedules::new(defect)));
        }
        let mutant = Arc::new(Mutant::stacked(*self));
        // The store's mutations leave schedules alone: sound ones, on a
        // store of their own.
        Backend::new(Arc::clone(&mutant) as Arc<dyn StateStore>, mutant).with_schedules(Arc::new(MemoryStore::new()))
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
    /// Keys whose last write was an increment (scan missing counters).
    counters: HashSet<Key>,
    /// Deadline of each key's last write with a TTL, as a sweep that does
    /// not re-check notes it.
    noted_deadlines: HashMap<Key, tokio::time::Instant>,
}

/// What a mutant breaks: the in-memory store, or another mutant (so that
/// mutations combine).
#[async_trait]
trait Layer: StateStore + LockService {
    /// A watch on releases of `name`, as the in-memory store wakes its
    /// waiters: mutants wait the way the store they break does, so only
    /// [`Mutation::NoReleaseWakeups`] polls.
    async fn releases(&self, name: &str, deadline: tokio::time::Instant) -> Option<Watch>;

    /// The line of waiters the in-memory store keeps: mutants take turns
    /// the way the store they break does, so only [`Mutation::Barging`]
    /// races.
    fn line(&self) -> Option<&Contention>;
}

#[async_trait]
impl Layer for MemoryStore {
    async fn releases(&self, name: &str, deadline: tokio::time::Instant) -> Option<Watch> {
        LockDriver::watch(self, name, deadline).await
    }

    fn line(&self) -> Option<&Contention> {
        StoreDriver::contention(self)
    }
}

#[async_trait]
impl Layer for Mutant {
    async fn releases(&self, name: &str, deadline: tokio::time::Instant) -> Option<Watch> {
        if self.is(Mutation::NoReleaseWakeups) { None } else { self.inner.releases(name, deadline).await }
    }

    fn line(&self) -> Option<&Contention> {
        if self.is(Mutation::Barging) { None } else { self.inner.line() }
    }
}

struct Mutant {
    mutation: Mutation,
    inner: Arc<dyn Layer>,
    memory: Mutex<Memory>,
}

impl Mutant {
    fn over(mutation: Mutation, inner: Arc<dyn Layer>) -> Mutant {
        Mutant { mutation, inner, memory: Mutex::default() }
    }

    /// `mutation` over a fresh in-memory store; a combination as one layer
    /// per component, the first outermost.
    fn stacked(mutation: Mutation) -> Mutant {
        let sweep = if mutation == Mutation::SweeperNeverRuns { Duration::from_secs(3600) } else { SWEEP_INTERVAL };
        let memory: Arc<dyn Layer> = Arc::new(MemoryStore::builder().sweep_interval(Some(sweep)).build());
        match mutation {
            Mutation::Combined(_, [outermost, rest @ ..]) => {
                let inner =
                    rest.iter().rev().fold(memory, |inner, m| Arc::new(Mutant::over(*m, inner)) as Arc<dyn Layer>);
                Mutant::over(*outermost, inner)
            }
            other => Mutant::over(other, memory),
        }
    }

    fn is(&self, mutation: Mutation) -> bool {
        self.mutation == mutation
    }

    /// Maps a key into the one shared space, non-injectively.
    fn collide(&self, key: &Key) -> Result<Key> {
        Key::new("mutant", &format!("{}:{}", key.space(), key.id()))
    }

    /// Whether this mutant makes the fenced write below a plain one: always
    /// for `IgnoresFence`; for `FenceCheckedApart` after checking the fence
    /// in a step of its own (a fenced no-op on a scratch key) and a network
    /// hop's delay, failing as the real check would.
    async fn fence_ignored(&self, fence: &Fence) -> Result<bool> {
        if self.is(Mutation::IgnoresFence) {
            return Ok(true);
        }
        if !self.is(Mutation::FenceCheckedApart) {
            return Ok(false);
        }
        let scratch = Key::new("fence-check", "scratch")?;
        self.inner.delete_fenced(&scratch, DeleteCondition::Always, fence).await?;
        tokio::time::sleep(Duration::from_millis(fastrand::u64(0..400))).await;
        Ok(true)
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
        if self.is(Mutation::SweeperNeverRuns) {
            let declared = caps.storage.map(|s| StorageReporting { reclaim_within: SWEEP_INTERVAL, ..s });
            return caps.with_storage(declared);
        }
        if self.is(Mutation::LossyTextValues) {
            let features = state_api::Features { binary_values: false, ..caps.features };
            return caps.with_features(features);
        }
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
        if self.is(Mutation::SuffixAliasing) {
            return self.inner.get(&unsuffixed(key)?).await;
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
        if let Some(answer) = self.broken_put(key, &value, condition, ttl).await {
            return answer;
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
            (Mutation::SweepRemovesRewritten, _) => {
                let outcome = self.inner.put(&stored, value, condition, ttl).await?;
                if let (PutOutcome::Written(_), Some(ttl)) = (&outcome, ttl) {
                    let deadline = tokio::time::Instant::now() + ttl;
                    self.memory.lock().noted_deadlines.insert(key.clone(), deadline);
                }
                Ok(outcome)
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
        if let Some(answer) = self.broken_delete(key, condition).await {
            return answer;
        }
        self.inner.delete(&self.stored_key(key)?, condition).await
    }

    async fn increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Result<Counter> {
        if self.is_torn() {
            return self.torn_increment(key, delta, ttl).await;
        }
        if let Some(answer) = self.broken_increment(key, delta, ttl).await {
            return answer;
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

    async fn storage_usage(&self, scope: StorageScope<'_>) -> Result<StorageUsage> {
        let mut usage = self.inner.storage_usage(scope).await?;
        if self.is(Mutation::FreeLockLeavesRecord) {
            let names = self.memory.lock().leases.keys().filter(|n| n.starts_with(scope.lock_prefix)).count();
            usage.lock_records = usage.lock_records.max(u64::try_from(names).unwrap_or(u64::MAX));
        }
        Ok(usage)
    }

    async fn reclaim_expired(&self) -> Result<u64> {
        if !self.is(Mutation::SweepRemovesRewritten) {
            return self.inner.reclaim_expired().await;
        }
        let now = tokio::time::Instant::now();
        let due: Vec<Key> = {
            let mut memory = self.memory.lock();
            let due: Vec<Key> =
                memory.noted_deadlines.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
            for key in &due {
                memory.noted_deadlines.remove(key);
            }
            due
        };
        let mut removed = 0;
        for key in due {
            // No re-check: whatever the key holds now goes.
            removed += u64::from(self.inner.delete(&key, DeleteCondition::Always).await?);
        }
        Ok(removed + self.inner.reclaim_expired().await?)
    }

    async fn put_fenced(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Duration>,
        fence: &Fence,
    ) -> Result<PutOutcome> {
        let stored = self.stored_key(key)?;
        if self.fence_ignored(fence).await? {
            return self.inner.put(&stored, value, condition, ttl).await;
        }
        let condition = if self.is(Mutation::FencedPutIgnoresCondition) { Condition::Always } else { condition };
        self.inner.put_fenced(&stored, value, condition, ttl, fence).await
    }

    async fn delete_fenced(&self, key: &Key, condition: DeleteCondition, fence: &Fence) -> Result<bool> {
        let stored = self.stored_key(key)?;
        if self.fence_ignored(fence).await? {
            return self.inner.delete(&stored, condition).await;
        }
        self.inner.delete_fenced(&stored, condition, fence).await
    }

    async fn increment_fenced(&self, key: &Key, delta: i64, ttl: Option<Duration>, fence: &Fence) -> Result<Counter> {
        let stored = self.stored_key(key)?;
        if self.fence_ignored(fence).await? {
            return self.inner.increment(&stored, delta, ttl).await;
        }
        self.inner.increment_fenced(&stored, delta, ttl, fence).await
    }

    async fn scan(&self, space: &str, prefix: &str, cursor: Option<&Cursor>, limit: usize) -> Result<ScanPage> {
        if let Some(answer) = self.broken_scan(space, prefix, cursor, limit).await {
            return answer;
        }
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
    /// The one wait loop over this mutant's `try_acquire`, woken by
    /// releases as the store underneath wakes its waiters (except where
    /// that is the mutation).
    async fn waiting_acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        let attempt = || async {
            Ok(match self.try_acquire(name, ttl).await? {
                Some(lease) => Step::Acquired(lease),
                None => Step::Held(None),
            })
        };
        let wakes = !self.capabilities().features.lock_wakeups;
        let line = self.line().map(|contention| Line { contention, name, wakes, refresh: None });
        acquire_loop(timeout, line, attempt, |deadline| self.releases(name, deadline)).await
    }

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
        let ttl = self.lease_ttl(ttl);
        if self.is(Mutation::NoMutualExclusion) && fastrand::u8(..4) == 0 {
            let holder = self.memory.lock().leases.get(name).map(|(l, _)| l.clone());
            if let Some(holder) = holder {
                let _ = self.inner.release(&holder).await;
            }
        }
        Ok(self.inner.try_acquire(name, ttl).await?.map(|lease| self.track(lease)))
    }

    // Otherwise `acquire` is the one wait loop over this mutant's
    // try_acquire (polling, without wake-ups, for `NoReleaseWakeups`).
    async fn acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Result<Lease> {
        if let Some(answer) = self.broken_acquire(name, ttl, timeout).await {
            return answer;
        }
        if self.is(Mutation::PanicsOnHugeTimeout) {
            // The naive deadline: overflows (and panics) on Duration::MAX.
            let _deadline = tokio::time::Instant::now() + timeout;
        }
        self.waiting_acquire(name, ttl, timeout).await
    }

    async fn extend(&self, lease: &mut Lease, ttl: Duration) -> Result<()> {
        if let Some(answer) = self.broken_extend(lease, ttl).await {
            return answer;
        }
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

// Issue 12, gaps 2-7: each `broken_*` answers for a mutation of this block
// (`None`: the call goes on as the other mutations have it).

/// Suffixes stores use for the records they keep beside a key.
const INTERNAL_SUFFIXES: [&str; 5] = [":h", ":v", "#", "~", "/"];

/// The key without an internal suffix, when something is left of its id.
fn unsuffixed(key: &Key) -> Result<Key> {
    for suffix in INTERNAL_SUFFIXES {
        if let Some(stem) = key.id().strip_suffix(suffix)
            && !stem.is_empty()
        {
            return Key::new(key.space(), stem);
        }
    }
    Ok(key.clone())
}

/// Whether `id` starts with something the LIKE pattern `pattern` matches.
fn like_prefix(pattern: &[char], id: &[char]) -> bool {
    match pattern.split_first() {
        None => true,
        Some(('%', rest)) => (0..=id.len()).any(|skip| like_prefix(rest, &id[skip..])),
        Some(('_', rest)) => !id.is_empty() && like_prefix(rest, &id[1..]),
        Some((c, rest)) => id.first() == Some(c) && like_prefix(rest, &id[1..]),
    }
}

fn below_a_millisecond(ttl: Duration) -> bool {
    ttl < Duration::from_millis(1)
}

impl Mutant {
    /// A lease TTL as [`Mutation::ZeroTtlPermanent`] reads it.
    fn lease_ttl(&self, ttl: Duration) -> Duration {
        if self.is(Mutation::ZeroTtlPermanent) && below_a_millisecond(ttl) { state_api::MAX_TTL } else { ttl }
    }

    async fn broken_put(
        &self,
        key: &Key,
        value: &Bytes,
        condition: Condition,
        ttl: Option<Duration>,
    ) -> Option<Result<PutOutcome>> {
        let inner = &self.inner;
        let value = value.clone();
        Some(match (self.mutation, condition) {
            (Mutation::ZeroTtlPermanent, _) if ttl.is_some_and(below_a_millisecond) => {
                inner.put(key, value, condition, None).await
            }
            (Mutation::CasZeroCreates, Condition::IfVersion(Version(0))) => {
                inner.put(key, value, Condition::IfAbsent, ttl).await
            }
            (Mutation::CasMaxIsWildcard, Condition::IfVersion(Version(u64::MAX))) => match inner.get(key).await {
                Ok(Some(_)) => inner.put(key, value, Condition::Always, ttl).await,
                Ok(None) => Ok(PutOutcome::Rejected(None)),
                Err(e) => Err(e),
            },
            (Mutation::SuffixAliasing, _) => match unsuffixed(key) {
                Ok(alias) => inner.put(&alias, value, condition, ttl).await,
                Err(e) => Err(e),
            },
            (Mutation::LossyTextValues, _) if std::str::from_utf8(&value).is_err() => {
                let lossy = Bytes::from(String::from_utf8_lossy(&value).into_owned());
                inner.put(key, lossy, condition, ttl).await
            }
            (Mutation::ScanMissesCounters, _) => {
                let outcome = inner.put(key, value, condition, ttl).await;
                if matches!(outcome, Ok(PutOutcome::Written(_))) {
                    self.memory.lock().counters.remove(key);
                }
                outcome
            }
            _ => return None,
        })
    }

    async fn broken_delete(&self, key: &Key, condition: DeleteCondition) -> Option<Result<bool>> {
        Some(match self.mutation {
            Mutation::SuffixAliasing => match unsuffixed(key) {
                Ok(alias) => self.inner.delete(&alias, condition).await,
                Err(e) => Err(e),
            },
            Mutation::ScanMissesCounters => {
                let deleted = self.inner.delete(key, condition).await;
                if matches!(deleted, Ok(true)) {
                    self.memory.lock().counters.remove(key);
                }
                deleted
            }
            _ => return None,
        })
    }

    async fn broken_increment(&self, key: &Key, delta: i64, ttl: Option<Duration>) -> Option<Result<Counter>> {
        let inner = &self.inner;
        Some(match self.mutation {
            Mutation::ZeroTtlPermanent if ttl.is_some_and(below_a_millisecond) => {
                inner.increment(key, delta, None).await
            }
            Mutation::SuffixAliasing => match unsuffixed(key) {
                Ok(alias) => inner.increment(&alias, delta, ttl).await,
                Err(e) => Err(e),
            },
            Mutation::ScanMissesCounters => {
                let counted = inner.increment(key, delta, ttl).await;
                if counted.is_ok() {
                    self.memory.lock().counters.insert(key.clone());
                }
                counted
            }
            Mutation::IncrementKeepsVersion => {
                inner.increment(key, delta, ttl).await.map(|c| Counter { version: Version::FIRST, ..c })
            }
            _ => return None,
        })
    }

    async fn broken_scan(
        &self,
        space: &str,
        prefix: &str,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Option<Result<ScanPage>> {
        match self.mutation {
            Mutation::LikeWildcardScan => {
                // The literal part narrows the range; the rest is matched
                // as a pattern, so `x_` finds `xay`.
                let literal = &prefix[..prefix.find(['%', '_'])?];
                let pattern: Vec<char> = prefix.chars().collect();
                Some(self.inner.scan(space, literal, cursor, limit).await.map(|page| {
                    let items = page.items.into_iter().filter(|item| {
                        let id: Vec<char> = item.id.chars().collect();
                        like_prefix(&pattern, &id)
                    });
                    ScanPage { items: items.collect(), next: page.next }
                }))
            }
            Mutation::ScanMissesCounters => {
                Some(self.inner.scan(space, prefix, cursor, limit).await.map(|mut page| {
                    let counters = &self.memory.lock().counters;
                    page.items.retain(|item| Key::new(space, &item.id).map_or(true, |key| !counters.contains(&key)));
                    page
                }))
            }
            Mutation::ScanCostsTheSpace => Some(self.scan_whole_space(space, prefix, cursor, limit).await),
            _ => None,
        }
    }

    /// A page found by listing the whole space and filtering it.
    async fn scan_whole_space(
        &self,
        space: &str,
        prefix: &str,
        cursor: Option<&Cursor>,
        limit: usize,
    ) -> Result<ScanPage> {
        // The arguments are checked as the contract says; only the cost is
        // wrong.
        state_api::driver::ScanRequest::new(space, prefix, cursor, limit)?;
        let mut everything = Vec::new();
        let mut position = None;
        loop {
            let page = self.inner.scan(space, "", position.as_ref(), state_api::MAX_SCAN_LIMIT).await?;
            everything.extend(page.items);
            match page.next {
                Some(next) => position = Some(next),
                None => break,
            }
        }
        let after = cursor.map(Cursor::as_str);
        let mut matching =
            everything.into_iter().filter(|item| item.id.starts_with(prefix) && after.is_none_or(|a| *item.id > *a));
        let items: Vec<ScanItem> = matching.by_ref().take(limit).collect();
        let next = matching.next().and(items.last()).map(|last| Cursor::new(last.id.clone()));
        Ok(ScanPage { items, next })
    }

    async fn broken_acquire(&self, name: &str, ttl: Duration, timeout: Duration) -> Option<Result<Lease>> {
        match self.mutation {
            Mutation::AcquireOvershootsTimeout => {
                let whole_seconds = timeout.as_secs().saturating_add(u64::from(timeout.subsec_nanos() > 0));
                Some(self.waiting_acquire(name, ttl, Duration::from_secs(whole_seconds)).await)
            }
            Mutation::CancelledAcquireLeaks => {
                // The wait runs on in its own task, whether or not anyone
                // still awaits its answer.
                let (inner, name) = (Arc::clone(&self.inner), name.to_owned());
                let (answer, answered) = tokio::sync::oneshot::channel();
                tokio::spawn(async move {
                    let _ = answer.send(inner.acquire(&name, ttl, timeout).await);
                });
                Some(answered.await.unwrap_or_else(|_| Err(StateError::failed("mutant", "the waiter died", false))))
            }
            _ => None,
        }
    }

    async fn broken_extend(&self, lease: &mut Lease, ttl: Duration) -> Option<Result<()>> {
        match self.mutation {
            Mutation::ZeroTtlPermanent => Some(self.inner.extend(lease, self.lease_ttl(ttl)).await),
            Mutation::ExtendMasksLoss => Some(match self.inner.extend(lease, ttl).await {
                Err(StateError::LockLost { .. }) => {
                    lease.renewed(tokio::time::Instant::now(), ttl);
                    Ok(())
                }
                other => other,
            }),
            Mutation::ExtendFromThePast => Some(
                async {
                    state_api::driver::Ttl::new(ttl)?;
                    let requested = tokio::time::Instant::now();
                    // A deadline in the past is a lease that has expired:
                    // the lock is free.
                    self.inner.release(lease).await?;
                    lease.renewed(requested.checked_sub(ttl).unwrap_or(requested), Duration::ZERO);
                    Ok(())
                }
                .await,
            ),
            _ => None,
        }
    }
}
