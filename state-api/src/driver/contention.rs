//! How one client's own tasks take turns on a contended lock or key before
//! they go to the server.
//!
//! Without this, every waiter of a lock is woken by each release and all
//! but one lose the race (each loss a round trip, and a row lock on
//! PostgreSQL), and a task that releases and acquires again in a loop
//! re-takes its own lock before any woken waiter gets there. Likewise, every
//! task racing a compare-and-swap on one key sends its own statement, and
//! all but one are rejected.
//!
//! - **Locks:** a client's waiters for a lock stand in a line, in arrival
//!   order. Only the first asks the server; the others wait for their turn.
//!   A newcomer does not try ahead of a non-empty line. While a lease taken
//!   through this client holds the lock, the first in line does not ask the
//!   server at all: it waits for that lease's release (or its local
//!   deadline). The release wakes only the first in line: through the
//!   backend's release notification where the backend declares one (so a
//!   broken notification cannot hide behind the client), or directly from
//!   the client's own `release` where it does not. So a release costs one
//!   round trip and the next acquisition one more, whatever the number of
//!   waiters, and no waiter of this client is overtaken by another of its
//!   tasks.
//! - **Conditional writes:** `put` with [`Condition::IfAbsent`] or
//!   [`Condition::IfVersion`] has at most two requests in flight per key.
//!   Calls that arrive while two are in flight wait; the next request is
//!   sent for the first of them, and every other waiting call with *the
//!   same condition* is answered from its outcome: at most one of them could have written,
//!   so each is rejected, with the entry the sent request wrote or was
//!   rejected by. That is linearizable: each such call began before the
//!   request was sent and ends after its answer, so it takes effect right
//!   after the sent request, when the store holds exactly that entry.
//!   When a request fails with `Timeout` or `Unavailable`, every call
//!   waiting on the key fails at once with the same kind, unsent: under a
//!   failing network no call waits out other calls' timeouts in turn.
//!
//! Across clients (processes, or separate store objects) this orders only
//! what one client can see; a backend declaring
//! [`fair_across_clients`](crate::Features::fair_across_clients) keeps a
//! line on the server too, with one entry per client at the ticket of its
//! first waiter ([`Waiter`](super::Waiter), [`Contention::tickets`]).
//!
//! A backend opts in by holding one [`Contention`] and returning it from
//! [`StoreDriver::contention`](super::StoreDriver::contention); the driver
//! layer does the rest.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::futures::Notified;
use tokio::sync::{Notify, oneshot};
use tokio::time::Instant;

use super::args::Ttl;
use crate::entry::{Condition, Entry, PutOutcome};
use crate::error::{Result, StateError};
use crate::key::Key;

/// An owner id's fingerprint (owner ids are random 128-bit strings).
fn fingerprint(owner: &str) -> u64 {
    owner.bytes().fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// A waiter's view of its client's line for one lock, as the wait loop
/// takes it.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The client's lines.
    pub contention: &'a Contention,
    /// The lock.
    pub name: &'a str,
    /// Whether a release through this client wakes the first in line
    /// itself. A backend that declares release wake-ups is woken by its
    /// own notification instead (so a broken notification cannot hide
    /// behind the client's), and between two releases the first in line
    /// asks the server only when that notification says so, or when it
    /// does not come (polling, as without a line).
    pub wakes: bool,
    /// Where the client's entry stands in the lock's line on the server
    /// too: the longest the first in line goes without asking, even while
    /// a lease of this client holds the lock, so that the entry stays
    /// live there.
    pub refresh: Option<Duration>,
}

/// How many lock lines a client keeps before it forgets idle ones.
const PURGE_AT: usize = 1024;

/// One client's lines of lock waiters and queues of conditional writes.
/// Cloning shares it.
#[derive(Clone)]
pub struct Contention {
    /// This client's id in the lines of waiters on the server (see
    /// [`Waiter`](super::Waiter)): random.
    id: Arc<str>,
    locks: Arc<Mutex<HashMap<String, Queued>>>,
    keys: Arc<Mutex<HashMap<Box<str>, Queue>>>,
    /// Whether conditional writes are queued (see [`Contention::locks_only`]).
    direct_writes: bool,
}

impl std::fmt::Debug for Contention {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Contention")
            .field("lock_lines", &self.locks.lock().len())
            .field("key_queues", &self.keys.lock().len())
            .finish()
    }
}

impl Default for Contention {
    fn default() -> Contention {
        Contention {
            id: crate::lock::Lease::new_owner_id().into(),
            locks: Arc::default(),
            keys: Arc::default(),
            direct_writes: false,
        }
    }
}

/// The waiters of one lock, and the lease this client holds on it.
#[derive(Default)]
struct Queued {
    next: u64,
    /// Each waiter's place, ticket (when it joined: microseconds since the
    /// Unix epoch) and wake-up.
    waiting: VecDeque<(u64, u64, Arc<Notify>)>,
    /// The lease this client took last, while it may still hold it: its
    /// owner id and local deadline.
    held: Option<(u64, Instant)>,
}

impl Queued {
    fn is_idle(&self, now: Instant) -> bool {
        self.waiting.is_empty() && self.held_for(now).is_none()
    }

    fn held_for(&self, now: Instant) -> Option<Duration> {
        self.held.as_ref().and_then(|(_, until)| until.checked_duration_since(now)).filter(|left| !left.is_zero())
    }
}

impl Contention {
    /// A fresh, empty one.
    pub fn new() -> Contention {
        Contention::default()
    }

    /// One that keeps lines of lock waiters but sends every conditional
    /// write at once: for a store in the same process, where a write costs
    /// less than queueing it (no round trip to save).
    pub fn locks_only() -> Contention {
        Contention { direct_writes: true, ..Contention::default() }
    }

    /// Whether a newcomer may try `name` at once: nobody of this client
    /// waits for it, and no lease of this client holds it.
    pub fn is_clear(&self, name: &str) -> bool {
        let now = Instant::now();
        self.locks.lock().get(name).is_none_or(|line| line.waiting.is_empty() && line.held_for(now).is_none())
    }

    /// This client's id in the lines of waiters on the server.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tickets of the first two waiters in this client's line for
    /// `name` (see [`Waiter`](super::Waiter)); `None` if nobody waits.
    pub fn tickets(&self, name: &str) -> Option<(u64, Option<u64>)> {
        let locks = self.locks.lock();
        let mut waiting = locks.get(name)?.waiting.iter().map(|(_, ticket, _)| *ticket);
        Some((waiting.next()?, waiting.next()))
    }

    /// Whether any task of this client waits for `name`.
    pub fn has_waiters(&self, name: &str) -> bool {
        self.locks.lock().get(name).is_some_and(|line| !line.waiting.is_empty())
    }

    /// Joins the line of `name`, at its end.
    pub fn join(&self, name: &str) -> Place {
        let mut locks = self.locks.lock();
        let line = locks.entry(name.to_owned()).or_default();
        let seq = line.next;
        line.next += 1;
        let turn = Arc::new(Notify::new());
        line.waiting.push_back((seq, super::epoch_micros(), Arc::clone(&turn)));
        Place { contention: self.clone(), name: name.to_owned(), seq, turn }
    }

    /// A lease of this client took `name`, with this owner id, until
    /// `until` (its local deadline).
    pub fn held(&self, name: &str, owner: &str, until: Instant) {
        let mut locks = self.locks.lock();
        // A lease never released through this client (dropped, expired)
        // leaves its line behind: forget the idle ones now and then.
        if locks.len() >= PURGE_AT && !locks.contains_key(name) {
            let now = Instant::now();
            locks.retain(|_, line| !line.is_idle(now));
        }
        let held = Some((fingerprint(owner), until));
        match locks.get_mut(name) {
            Some(line) => line.held = held,
            None => {
                locks.insert(name.to_owned(), Queued { held, ..Queued::default() });
            }
        }
    }

    /// A lease of this client on `name`, with this owner id, was extended
    /// until `until`. Recorded only while the client still counts it as
    /// holding: an extension whose reply arrives after the lease's release
    /// began does not bring it back.
    pub fn extended(&self, name: &str, owner: &str, until: Instant) {
        let mut locks = self.locks.lock();
        if let Some(line) = locks.get_mut(name)
            && let Some((held_by, held_until)) = line.held.as_mut()
            && *held_by == fingerprint(owner)
        {
            *held_until = until;
        }
    }

    /// The lease with `owner` on `name` is about to be released: from now
    /// on the first in line asks the server when woken. Called *before*
    /// the release is sent, so that a release notification arriving before
    /// the release's own reply finds the first in line either already
    /// listening or about to ask.
    pub fn releasing(&self, name: &str, owner: &str) {
        let mut locks = self.locks.lock();
        let Some(line) = locks.get_mut(name) else { return };
        if line.held.as_ref().is_some_and(|(held_by, _)| *held_by == fingerprint(owner)) {
            line.held = None;
        }
        if line.is_idle(Instant::now()) {
            locks.remove(name);
        }
    }

    /// A lease on `name` was released through this client (or found lost):
    /// wakes the first in line. A backend that declares release wake-ups
    /// does not call this: its notification wakes the first in line (see
    /// [`Line::wakes`]).
    pub fn released(&self, name: &str) {
        let mut locks = self.locks.lock();
        let Some(line) = locks.get_mut(name) else { return };
        if let Some((_, _, turn)) = line.waiting.front() {
            turn.notify_one();
        }
        if line.is_idle(Instant::now()) {
            locks.remove(name);
        }
    }

    /// Sends a conditional write through the key's queue: `send` runs for
    /// this call, or the call is answered from a request sent for another
    /// call with the same condition (see the module docs). `Condition::Always`
    /// is not queued: every such write succeeds on its own.
    ///
    /// # Errors
    /// The error of `send` for this call's own request.
    pub async fn write<F, Fut>(
        &self,
        key: &Key,
        value: Bytes,
        condition: Condition,
        ttl: Option<Ttl>,
        send: F,
    ) -> Result<PutOutcome>
    where
        F: FnOnce(Bytes) -> Fut,
        Fut: std::future::Future<Output = Result<PutOutcome>>,
    {
        if condition == Condition::Always || self.direct_writes {
            return send(value).await;
        }
        let name: Box<str> = key.joined().into();
        let turn = {
            let mut keys = self.keys.lock();
            match keys.get_mut(&name) {
                None => {
                    keys.insert(name.clone(), Queue { in_flight: 1, waiting: VecDeque::new() });
                    None
                }
                Some(queue) if queue.in_flight < IN_FLIGHT && queue.waiting.is_empty() => {
                    queue.in_flight += 1;
                    None
                }
                Some(queue) => {
                    let (tx, rx) = oneshot::channel();
                    queue.waiting.push_back(Waiter { condition, tx });
                    Some(rx)
                }
            }
        };
        let mut followers = Vec::new();
        if let Some(rx) = turn {
            let mut pending = Pending { rx: Some(rx), keys: Arc::clone(&self.keys), name: name.clone() };
            let answer = match pending.rx.as_mut() {
                Some(rx) => rx.await,
                None => return send(value).await,
            };
            pending.rx = None;
            match answer {
                Ok(Verdict::Answered(outcome)) => return Ok(outcome),
                Ok(Verdict::Failed(error)) => return Err(error),
                Ok(Verdict::Lead(mine)) => followers = mine,
                // The queue is gone without answering (cannot happen while
                // a leader's guard lives): send our own request.
                Err(_) => return send(value).await,
            }
        }
        let mut lead = Lead { keys: Arc::clone(&self.keys), name, followers, finished: false };
        let outcome = send(value.clone()).await;
        lead.finish(&outcome, &value, ttl);
        outcome
    }
}

/// Calls waiting for a key's in-flight request.
#[derive(Default)]
struct Queue {
    /// Requests in flight (at most [`IN_FLIGHT`]).
    in_flight: usize,
    waiting: VecDeque<Waiter>,
}

/// How many conditional writes of one client may be in flight on one key
/// before callers wait and are combined: two keep the server busy while a
/// reply travels back, with at most one request rejected for nothing.
const IN_FLIGHT: usize = 2;

struct Waiter {
    condition: Condition,
    tx: oneshot::Sender<Verdict>,
}

enum Verdict {
    /// Send your request; answer these, with your condition, from it.
    Lead(Vec<oneshot::Sender<Verdict>>),
    /// Your answer.
    Answered(PutOutcome),
    /// The request you waited behind failed with this retryable error:
    /// yours was not sent (it changed nothing).
    Failed(StateError),
}

/// The call whose request is in flight for a key. Dropped without
/// finishing (cancelled), it hands the queue on with its followers
/// unanswered.
struct Lead {
    keys: Arc<Mutex<HashMap<Box<str>, Queue>>>,
    name: Box<str>,
    followers: Vec<oneshot::Sender<Verdict>>,
    finished: bool,
}

impl Lead {
    /// Answers the followers from `outcome`, then hands the key to the
    /// next waiting call. After a retryable error (the server or the
    /// network failing) every call waiting on the key fails at once with
    /// it, unsent, instead of each waiting out its own failure in turn;
    /// after any other error the first follower leads the others.
    fn finish(&mut self, outcome: &Result<PutOutcome>, value: &Bytes, ttl: Option<Ttl>) {
        self.finished = true;
        let followers = std::mem::take(&mut self.followers);
        if let Err(error) = outcome
            && passed_on(error).is_some()
        {
            let waiting = self.keys.lock().get_mut(&self.name).map(|q| std::mem::take(&mut q.waiting));
            let waiting = waiting.into_iter().flatten().map(|w| w.tx);
            for call in followers.into_iter().chain(waiting) {
                if let Some(error) = passed_on(error) {
                    let _ = call.send(Verdict::Failed(error));
                }
            }
            self.hand_on(Vec::new());
            return;
        }
        let answer = outcome.as_ref().ok().map(|outcome| match outcome {
            PutOutcome::Written(version) => PutOutcome::Rejected(Some(Entry {
                value: value.clone(),
                version: *version,
                ttl: ttl.map(Ttl::duration),
            })),
            rejected @ PutOutcome::Rejected(_) => rejected.clone(),
        });
        match answer {
            Some(answer) => {
                for follower in followers {
                    let _ = follower.send(Verdict::Answered(answer.clone()));
                }
                self.hand_on(Vec::new());
            }
            None => self.hand_on(followers),
        }
    }

    /// Picks the next call to send a request, with every waiting call of
    /// the same condition as its followers; removes the queue when nobody
    /// waits. `unanswered` go first, in their order.
    fn hand_on(&mut self, mut unanswered: Vec<oneshot::Sender<Verdict>>) {
        let mut keys = self.keys.lock();
        let Some(queue) = keys.get_mut(&self.name) else { return };
        // This request's slot is free; whoever is told to lead takes it.
        queue.in_flight = queue.in_flight.saturating_sub(1);
        loop {
            if let Some(next) = (!unanswered.is_empty()).then(|| unanswered.remove(0)) {
                match next.send(Verdict::Lead(std::mem::take(&mut unanswered))) {
                    Ok(()) => {
                        queue.in_flight += 1;
                        return;
                    }
                    Err(Verdict::Lead(rest)) => {
                        unanswered = rest;
                        continue;
                    }
                    Err(Verdict::Answered(_) | Verdict::Failed(_)) => continue,
                }
            }
            let Some(first) = queue.waiting.pop_front() else {
                if queue.in_flight == 0 {
                    keys.remove(&self.name);
                }
                return;
            };
            let mut same = Vec::new();
            let mut rest = VecDeque::with_capacity(queue.waiting.len());
            for waiter in queue.waiting.drain(..) {
                if waiter.tx.is_closed() {
                    continue;
                }
                if waiter.condition == first.condition {
                    same.push(waiter.tx);
                } else {
                    rest.push_back(waiter);
                }
            }
            queue.waiting = rest;
            match first.tx.send(Verdict::Lead(same)) {
                Ok(()) => {
                    queue.in_flight += 1;
                    if queue.in_flight >= IN_FLIGHT {
                        return;
                    }
                }
                // That call was cancelled: its followers wait for a leader.
                Err(Verdict::Lead(rest)) => unanswered = rest,
                Err(Verdict::Answered(_) | Verdict::Failed(_)) => {}
            }
        }
    }
}

impl Drop for Lead {
    fn drop(&mut self) {
        if !self.finished {
            let followers = std::mem::take(&mut self.followers);
            self.hand_on(followers);
        }
    }
}

/// The error a call waiting behind a failed request gets: the same kind,
/// for the retryable kinds (`Timeout`, `Unavailable`); `None` otherwise.
fn passed_on(error: &StateError) -> Option<StateError> {
    match error {
        StateError::Timeout { operation, after } => Some(StateError::Timeout { operation, after: *after }),
        StateError::Unavailable { backend, message, .. } => Some(StateError::Unavailable {
            backend,
            message: format!("{message} (a request this call waited behind failed; this one was not sent)"),
            source: None,
        }),
        _ => None,
    }
}

/// A call waiting for its verdict. Cancelled after it was made the next
/// leader, it hands the key on, so the queue never stalls.
struct Pending {
    rx: Option<oneshot::Receiver<Verdict>>,
    keys: Arc<Mutex<HashMap<Box<str>, Queue>>>,
    name: Box<str>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        let Some(mut rx) = self.rx.take() else { return };
        rx.close();
        if let Ok(Verdict::Lead(followers)) = rx.try_recv() {
            let mut lead =
                Lead { keys: Arc::clone(&self.keys), name: self.name.clone(), followers: Vec::new(), finished: true };
            lead.hand_on(followers);
        }
    }
}

/// A waiter's place in the line of a lock. Leaving it (dropping it) wakes
/// the next waiter if this one was first.
pub struct Place {
    contention: Contention,
    name: String,
    seq: u64,
    turn: Arc<Notify>,
}

impl Place {
    /// Whether this waiter is first in line: the one that asks the server.
    pub fn is_first(&self) -> bool {
        self.contention
            .locks
            .lock()
            .get(&self.name)
            .and_then(|line| line.waiting.front())
            .is_some_and(|(seq, _, _)| *seq == self.seq)
    }

    /// How long a lease of this client may still hold the lock, if one
    /// does: until then, asking the server is pointless (its release
    /// through this client wakes the first in line).
    pub fn held_locally_for(&self) -> Option<Duration> {
        let now = Instant::now();
        self.contention.locks.lock().get(&self.name).and_then(|line| line.held_for(now))
    }

    /// Completes when this waiter becomes first in line, or, while first,
    /// when a lease of this client on the lock is released. Enable it
    /// (pinned) before looking at the line, so nothing is missed.
    pub fn turn(&self) -> Notified<'_> {
        self.turn.notified()
    }
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Place").field("name", &self.name).field("seq", &self.seq).finish()
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let mut locks = self.contention.locks.lock();
        let Some(line) = locks.get_mut(&self.name) else { return };
        let was_first = line.waiting.front().is_some_and(|(seq, _, _)| *seq == self.seq);
        line.waiting.retain(|(seq, _, _)| *seq != self.seq);
        if was_first && let Some((_, _, next)) = line.waiting.front() {
            next.notify_one();
        }
        if line.is_idle(Instant::now()) {
            locks.remove(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::entry::Version;

    #[test]
    fn only_the_first_in_line_is_first_and_leaving_passes_the_turn() {
        let contention = Contention::new();
        assert!(contention.is_clear("job"));
        let first = contention.join("job");
        let second = contention.join("job");
        assert!(!contention.is_clear("job"), "a newcomer must not go ahead of a non-empty line");
        assert!(first.is_first());
        assert!(!second.is_first());
        {
            let mut turn = pin!(second.turn());
            turn.as_mut().enable();
            drop(first);
            assert!(second.is_first());
            assert!(futures_ready(turn), "the next in line is woken when the first leaves");
        }
        drop(second);
        assert!(contention.is_clear("job"));
        assert!(contention.locks.lock().is_empty(), "an idle line is forgotten");
    }

    #[test]
    fn a_lease_of_the_client_holds_the_line_until_released_through_it() {
        let contention = Contention::new();
        contention.held("job", "owner-1", Instant::now() + Duration::from_secs(10));
        assert!(!contention.is_clear("job"));
        let place = contention.join("job");
        assert!(place.held_locally_for().is_some_and(|left| left > Duration::from_secs(9)));
        let mut turn = pin!(place.turn());
        turn.as_mut().enable();
        // Another owner's release (a lost lease) leaves the holder alone,
        // but the first in line looks again.
        contention.releasing("job", "owner-0");
        assert!(place.held_locally_for().is_some());
        contention.released("job");
        assert!(futures_ready(turn));
        contention.releasing("job", "owner-1");
        assert_eq!(place.held_locally_for(), None);
    }

    #[test]
    fn an_extension_answered_after_the_release_began_does_not_bring_the_lease_back() {
        let contention = Contention::new();
        let place = contention.join("job");
        contention.held("job", "owner", Instant::now() + Duration::from_secs(1));
        contention.extended("job", "owner", Instant::now() + Duration::from_secs(30));
        assert!(place.held_locally_for().is_some_and(|left| left > Duration::from_secs(29)));
        contention.releasing("job", "owner");
        contention.extended("job", "owner", Instant::now() + Duration::from_secs(60));
        assert_eq!(place.held_locally_for(), None);
    }

    #[test]
    fn an_expired_local_lease_holds_nothing() {
        let contention = Contention::new();
        contention.held("job", "owner", Instant::now());
        assert!(contention.is_clear("job"));
    }

    #[tokio::test(start_paused = true)]
    async fn calls_with_the_condition_of_the_one_in_flight_are_answered_from_the_next_request() {
        let contention = Contention::new();
        let key = Key::new("space", "hot").unwrap_or_else(|e| unreachable!("{e}"));
        let sent = Arc::new(AtomicUsize::new(0));
        let condition = Condition::IfVersion(Version(1));
        let call = |value: &'static str| {
            let (contention, key, sent) = (contention.clone(), key.clone(), Arc::clone(&sent));
            tokio::spawn(async move {
                contention
                    .write(&key, Bytes::from_static(value.as_bytes()), condition, None, |_| async {
                        let n = sent.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        // The first request writes version 2; every later one
                        // finds version 2.
                        Ok(if n == 0 {
                            PutOutcome::Written(Version(2))
                        } else {
                            PutOutcome::Rejected(Some(Entry {
                                value: Bytes::from_static(b"a"),
                                version: Version(2),
                                ttl: None,
                            }))
                        })
                    })
                    .await
            })
        };
        let first = call("a");
        tokio::task::yield_now().await;
        let rest: Vec<_> = ["b", "c", "d", "e"].into_iter().map(call).collect();
        assert_eq!(first.await.ok().and_then(Result::ok), Some(PutOutcome::Written(Version(2))));
        for handle in rest {
            let outcome = handle.await.ok().and_then(Result::ok);
            let Some(PutOutcome::Rejected(Some(entry))) = outcome else { panic!("{outcome:?}") };
            assert_eq!((entry.value.as_ref(), entry.version), (b"a".as_ref(), Version(2)));
        }
        assert_eq!(
            sent.load(Ordering::SeqCst),
            3,
            "one request each for the first two calls (two may be in flight), one for the three that waited"
        );
        assert!(contention.keys.lock().is_empty(), "an idle key queue is forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_failing_retryably_fails_the_calls_waiting_behind_it_unsent() {
        let contention = Contention::new();
        let key = Key::new("space", "hot").unwrap_or_else(|e| unreachable!("{e}"));
        let sent = Arc::new(AtomicUsize::new(0));
        let call = || {
            let (contention, key, sent) = (contention.clone(), key.clone(), Arc::clone(&sent));
            tokio::spawn(async move {
                contention
                    .write(&key, Bytes::from_static(b"v"), Condition::IfAbsent, None, |_| async {
                        let n = sent.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        if n < 2 {
                            Err(StateError::Unavailable { backend: "test", message: "down".into(), source: None })
                        } else {
                            Ok(PutOutcome::Written(Version(1)))
                        }
                    })
                    .await
            })
        };
        let first = call();
        tokio::task::yield_now().await;
        let (second, third) = (call(), call());
        assert!(matches!(first.await, Ok(Err(StateError::Unavailable { .. }))));
        // The second call's request (two may be in flight) fails too; the
        // third, waiting behind both, fails with the first, unsent.
        assert!(matches!(second.await, Ok(Err(StateError::Unavailable { .. }))));
        assert!(matches!(third.await, Ok(Err(StateError::Unavailable { .. }))));
        assert_eq!(sent.load(Ordering::SeqCst), 2);
        assert!(contention.keys.lock().is_empty(), "a drained key queue is forgotten");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_call_does_not_stall_the_key() {
        let contention = Contention::new();
        let key = Key::new("space", "hot").unwrap_or_else(|e| unreachable!("{e}"));
        let slow = |contention: Contention, key: Key, condition: Condition| {
            tokio::spawn(async move {
                contention
                    .write(&key, Bytes::from_static(b"v"), condition, None, |_| async {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        Ok(PutOutcome::Written(Version(7)))
                    })
                    .await
            })
        };
        let first = slow(contention.clone(), key.clone(), Condition::IfVersion(Version(1)));
        tokio::task::yield_now().await;
        let second = slow(contention.clone(), key.clone(), Condition::IfVersion(Version(4)));
        tokio::task::yield_now().await;
        // Waiting behind the two in flight, with another condition: it would send
        // the next request. Cancelled, it must hand the key on.
        let cancelled = slow(contention.clone(), key.clone(), Condition::IfVersion(Version(2)));
        tokio::task::yield_now().await;
        let last = slow(contention.clone(), key.clone(), Condition::IfVersion(Version(3)));
        tokio::task::yield_now().await;
        cancelled.abort();
        assert!(first.await.is_ok());
        assert!(second.await.is_ok());
        let last = tokio::time::timeout(Duration::from_secs(5), last).await;
        assert!(matches!(last, Ok(Ok(Ok(PutOutcome::Written(Version(7)))))), "{last:?}");
    }

    fn futures_ready<F: std::future::Future>(future: std::pin::Pin<&mut F>) -> bool {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        future.poll(&mut cx).is_ready()
    }
}
