//! The release-notification hub: the one place where lock waiters wait to
//! be told that a lock was released.
//!
//! A backend that can hear releases (Redis pub/sub, PostgreSQL
//! LISTEN/NOTIFY, the in-memory table itself) only *feeds* the hub: it
//! calls [`ReleaseHub::released`] for each release it hears,
//! [`ReleaseHub::set_live`] when its feed connects or drops, and
//! [`ReleaseHub::confirm`] when the server confirmed a per-name
//! subscription. The acquire loop (see [`super::wait`]) takes a [`Watch`]
//! *before* each attempt, so a release between a failed attempt and the
//! wait is never missed, and relies on notifications only while the watch
//! [is live](Watch::is_live); otherwise it polls with backoff.
//!
//! Names are opaque: each backend uses whatever it publishes (a lock name,
//! a channel name).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::sync::futures::Notified;

/// How a backend's feed delivers releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// One feed carries every name (PostgreSQL's one LISTEN channel, the
    /// in-memory table): a watch is live whenever the feed is.
    AllNames,
    /// Each name is subscribed separately (Redis channels): a watch is live
    /// once the server confirmed that name's subscription on the live feed.
    PerName,
}

/// Called with a name when its last watcher is gone, so a [`Delivery::PerName`]
/// backend can unsubscribe.
pub type UnwatchHook = Box<dyn Fn(&str) + Send + Sync>;

/// Where lock waiters wait for releases. Cloning is cheap and shares the
/// hub.
#[derive(Clone)]
pub struct ReleaseHub {
    shared: Arc<Shared>,
}

struct Shared {
    delivery: Delivery,
    live: AtomicBool,
    names: Mutex<HashMap<String, Interest>>,
    unwatched: Option<UnwatchHook>,
}

struct Interest {
    watchers: usize,
    confirmed: bool,
    released: Arc<Notify>,
}

impl ReleaseHub {
    /// A hub whose feed is not live yet.
    pub fn new(delivery: Delivery) -> ReleaseHub {
        ReleaseHub::build(delivery, None)
    }

    /// A hub that calls `hook` when a name loses its last watcher.
    pub fn with_unwatch_hook(delivery: Delivery, hook: UnwatchHook) -> ReleaseHub {
        ReleaseHub::build(delivery, Some(hook))
    }

    fn build(delivery: Delivery, unwatched: Option<UnwatchHook>) -> ReleaseHub {
        let shared = Shared { delivery, live: AtomicBool::new(false), names: Mutex::new(HashMap::new()), unwatched };
        ReleaseHub { shared: Arc::new(shared) }
    }

    /// Registers interest in `name` until the returned watch is dropped.
    pub fn watch(&self, name: &str) -> Watch {
        let mut names = self.shared.names.lock();
        let interest = names.entry(name.to_owned()).or_insert_with(|| Interest {
            watchers: 0,
            confirmed: false,
            released: Arc::new(Notify::new()),
        });
        interest.watchers += 1;
        Watch { shared: Arc::clone(&self.shared), name: name.to_owned(), released: Arc::clone(&interest.released) }
    }

    /// The feed heard a release of `name`: wakes its waiters.
    pub fn released(&self, name: &str) {
        if let Some(interest) = self.shared.names.lock().get(name) {
            interest.released.notify_waiters();
        }
    }

    /// Wakes every waiter, because releases may have been missed (the feed
    /// reconnected, or lagged).
    pub fn wake_all(&self) {
        for interest in self.shared.names.lock().values() {
            interest.released.notify_waiters();
        }
    }

    /// Whether the feed is connected. Going down clears every per-name
    /// confirmation and wakes every waiter (releases are being missed from
    /// now on, so they must look again and poll).
    pub fn set_live(&self, live: bool) {
        self.shared.live.store(live, Ordering::Release);
        if !live {
            for interest in self.shared.names.lock().values_mut() {
                interest.confirmed = false;
            }
            self.wake_all();
        }
    }

    /// Whether the feed is connected.
    pub fn is_live(&self) -> bool {
        self.shared.live.load(Ordering::Acquire)
    }

    /// The server confirmed the subscription to `name` on the live feed
    /// ([`Delivery::PerName`]).
    pub fn confirm(&self, name: &str) {
        if let Some(interest) = self.shared.names.lock().get_mut(name) {
            interest.confirmed = true;
        }
    }

    /// The server dropped the subscription to `name` on its own (a
    /// Redis Cluster slot moved to another node): clears its confirmation
    /// and wakes its waiters, who look again and subscribe anew.
    pub fn withdraw(&self, name: &str) {
        if let Some(interest) = self.shared.names.lock().get_mut(name) {
            interest.confirmed = false;
            interest.released.notify_waiters();
        }
    }

    /// Whether `name` has a confirmed subscription (always the feed's
    /// liveness for [`Delivery::AllNames`]).
    pub fn is_confirmed(&self, name: &str) -> bool {
        self.shared.is_live_for(name)
    }

    /// Whether anyone watches `name`.
    pub fn is_watched(&self, name: &str) -> bool {
        self.shared.names.lock().contains_key(name)
    }

    /// The names someone watches, to (re)subscribe after connecting.
    pub fn watched(&self) -> Vec<String> {
        self.shared.names.lock().keys().cloned().collect()
    }
}

impl Shared {
    fn is_live_for(&self, name: &str) -> bool {
        if !self.live.load(Ordering::Acquire) {
            return false;
        }
        match self.delivery {
            Delivery::AllNames => true,
            Delivery::PerName => self.names.lock().get(name).is_some_and(|i| i.confirmed),
        }
    }
}

impl fmt::Debug for ReleaseHub {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReleaseHub")
            .field("delivery", &self.shared.delivery)
            .field("live", &self.is_live())
            .field("watched", &self.shared.names.lock().len())
            .finish()
    }
}

/// One waiter's interest in one name.
pub struct Watch {
    shared: Arc<Shared>,
    name: String,
    released: Arc<Notify>,
}

impl Watch {
    /// A future that completes at the next release of the name (or a
    /// wake-all). Call [`Notified::enable`] on it (pinned) *before* the
    /// attempt whose failure it waits after.
    pub fn released(&self) -> Notified<'_> {
        self.released.notified()
    }

    /// Whether a release from now on is certain to wake this watch; if
    /// not, the waiter must poll.
    pub fn is_live(&self) -> bool {
        self.shared.is_live_for(&self.name)
    }

    /// The watched name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Watch").field("name", &self.name).field("live", &self.is_live()).finish()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let last = {
            let mut names = self.shared.names.lock();
            match names.get_mut(&self.name) {
                Some(interest) if interest.watchers > 1 => {
                    interest.watchers -= 1;
                    false
                }
                Some(_) => names.remove(&self.name).is_some(),
                None => false,
            }
        };
        if last && let Some(hook) = &self.shared.unwatched {
            hook(&self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::pin::pin;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_release_heard_after_enabling_wakes_the_watcher() {
        let hub = ReleaseHub::new(Delivery::AllNames);
        hub.set_live(true);
        let watch = hub.watch("job");
        assert!(watch.is_live());
        let mut woken = pin!(watch.released());
        woken.as_mut().enable();
        hub.released("other");
        hub.released("job");
        assert!(tokio::time::timeout(Duration::from_secs(1), woken).await.is_ok());
    }

    #[tokio::test]
    async fn per_name_delivery_is_live_only_once_confirmed_and_until_the_feed_drops() {
        let hub = ReleaseHub::new(Delivery::PerName);
        hub.set_live(true);
        let watch = hub.watch("job");
        assert!(!watch.is_live());
        hub.confirm("job");
        assert!(watch.is_live());
        hub.set_live(false);
        assert!(!watch.is_live());
        hub.set_live(true);
        assert!(!watch.is_live(), "a reconnected feed must confirm each name again");
    }

    #[tokio::test]
    async fn a_withdrawn_name_is_no_longer_live_and_its_waiters_look_again() {
        let hub = ReleaseHub::new(Delivery::PerName);
        hub.set_live(true);
        let watch = hub.watch("job");
        let other = hub.watch("other");
        hub.confirm("job");
        hub.confirm("other");
        let mut woken = pin!(watch.released());
        woken.as_mut().enable();
        hub.withdraw("job");
        assert!(!watch.is_live());
        assert!(other.is_live(), "only the withdrawn name loses its confirmation");
        assert!(tokio::time::timeout(Duration::from_secs(1), woken).await.is_ok());
    }

    #[test]
    fn the_last_watcher_leaving_calls_the_hook_once() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&calls);
        let hub = ReleaseHub::with_unwatch_hook(
            Delivery::PerName,
            Box::new(move |_| {
                counted.fetch_add(1, Ordering::SeqCst);
            }),
        );
        let first = hub.watch("job");
        let second = hub.watch("job");
        drop(first);
        assert_eq!(calls.load(Ordering::SeqCst), 0);
        assert!(hub.is_watched("job"));
        drop(second);
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert!(!hub.is_watched("job"));
    }
}
