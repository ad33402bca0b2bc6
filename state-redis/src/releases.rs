//! Waking lock waiters when a lock is released, over Redis pub/sub.
//!
//! The release script publishes on the lock's channel in the same atomic
//! step that frees the lock. A store opens one dedicated pub/sub connection
//! (lazily, on the first `acquire` that has to wait) and a reader task that
//! turns each message into a [`Notify`] wake-up for the waiters of that
//! lock. A waiter subscribes *before* its attempt, so a release that
//! happens after a failed attempt cannot be missed.
//!
//! Notifications are an optimisation, never a requirement: while the
//! subscription is not confirmed (the pub/sub connection is down, or
//! subscribing failed) a waiter falls back to backoff with jitter, and the
//! reader wakes every waiter whenever the connection is lost or restored,
//! since releases published in between were lost.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use redis::Client;
use redis::aio::PubSubSink;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Delays between attempts to (re)open the pub/sub connection.
const RECONNECT_FIRST: Duration = Duration::from_millis(50);
const RECONNECT_MAX: Duration = Duration::from_secs(2);

/// The pub/sub side of one store. Dropping it stops the reader task and
/// closes the connection.
pub(crate) struct ReleaseWatcher {
    shared: Arc<Shared>,
    /// `None` outside a tokio runtime: then nothing is ever subscribed and
    /// waiters poll.
    reader: Option<JoinHandle<()>>,
}

struct Shared {
    client: Client,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// The live connection's command side, if connected. Held across each
    /// SUBSCRIBE / UNSUBSCRIBE round trip, which puts them in one order.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    /// The channels someone waits on.
    channels: Mutex<HashMap<String, Channel>>,
}

struct Channel {
    waiters: usize,
    /// Whether the server confirmed the subscription on the live connection.
    subscribed: bool,
    released: Arc<Notify>,
}

/// One waiter's interest in one channel; unsubscribes when the last waiter
/// of the channel drops it.
pub(crate) struct Watch {
    shared: Arc<Shared>,
    channel: String,
    released: Arc<Notify>,
}

impl ReleaseWatcher {
    /// Starts the reader task on the current tokio runtime, if there is one.
    pub(crate) fn start(client: Client, connect_timeout: Duration, command_timeout: Duration) -> ReleaseWatcher {
        let shared = Arc::new(Shared {
            client,
            connect_timeout,
            command_timeout,
            sink: tokio::sync::Mutex::new(None),
            channels: Mutex::new(HashMap::new()),
        });
        let reader =
            tokio::runtime::Handle::try_current().ok().map(|runtime| runtime.spawn(read_forever(Arc::clone(&shared))));
        ReleaseWatcher { shared, reader }
    }

    /// Registers interest in `channel` and subscribes to it, waiting at
    /// most until `deadline` (and the command timeout) for the server's
    /// confirmation. Never fails: without a confirmation the returned watch
    /// reports [`Watch::is_subscribed`] false and the waiter polls.
    pub(crate) async fn watch(&self, channel: String, deadline: Instant) -> Watch {
        let released = {
            let mut channels = self.shared.channels.lock();
            let entry = channels.entry(channel.clone()).or_insert_with(|| Channel {
                waiters: 0,
                subscribed: false,
                released: Arc::new(Notify::new()),
            });
            entry.waiters += 1;
            Arc::clone(&entry.released)
        };
        let watch = Watch { shared: Arc::clone(&self.shared), channel, released };
        let limit = self.shared.command_timeout.min(deadline.saturating_duration_since(Instant::now()));
        let _ = tokio::time::timeout(limit, self.shared.subscribe(&watch.channel)).await;
        watch
    }
}

impl Drop for ReleaseWatcher {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

impl Watch {
    /// The notifier that fires when the lock is released (or when the
    /// pub/sub connection changed, so releases may have been missed).
    pub(crate) fn released(&self) -> &Notify {
        &self.released
    }

    /// Whether a release published from now on is certain to wake this
    /// waiter.
    pub(crate) fn is_subscribed(&self) -> bool {
        self.shared.channels.lock().get(&self.channel).is_some_and(|c| c.subscribed)
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let unwatched = {
            let mut channels = self.shared.channels.lock();
            match channels.get_mut(&self.channel) {
                Some(channel) if channel.waiters > 1 => {
                    channel.waiters -= 1;
                    false
                }
                Some(_) => channels.remove(&self.channel).is_some(),
                None => false,
            }
        };
        if unwatched && let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let shared = Arc::clone(&self.shared);
            let channel = std::mem::take(&mut self.channel);
            runtime.spawn(async move { shared.unsubscribe_if_unwatched(channel).await });
        }
    }
}

impl Shared {
    async fn subscribe(&self, channel: &str) {
        let mut sink = self.sink.lock().await;
        if self.channels.lock().get(channel).is_none_or(|c| c.subscribed) {
            return;
        }
        // Not connected: the reader subscribes every watched channel when
        // it connects.
        let Some(sink) = sink.as_mut() else { return };
        if sink.subscribe(channel).await.is_ok()
            && let Some(entry) = self.channels.lock().get_mut(channel)
        {
            entry.subscribed = true;
        }
    }

    /// Unsubscribes unless someone started watching the channel again. The
    /// sink lock orders this against that watcher's subscribe: whichever
    /// runs second sees the other's effect.
    async fn unsubscribe_if_unwatched(&self, channel: String) {
        let mut sink = self.sink.lock().await;
        if self.channels.lock().contains_key(&channel) {
            return;
        }
        if let Some(sink) = sink.as_mut() {
            let _ = tokio::time::timeout(self.command_timeout, sink.unsubscribe(&channel)).await;
        }
    }

    fn wake(&self, channel: &str) {
        if let Some(entry) = self.channels.lock().get(channel) {
            entry.released.notify_waiters();
        }
    }

    fn wake_all(&self) {
        for entry in self.channels.lock().values() {
            entry.released.notify_waiters();
        }
    }

    /// Installs a fresh connection's sink and subscribes every watched
    /// channel on it.
    async fn connected(&self, mut sink: PubSubSink) {
        let mut slot = self.sink.lock().await;
        let channels: Vec<String> = self.channels.lock().keys().cloned().collect();
        if !channels.is_empty()
            && let Ok(Ok(())) = tokio::time::timeout(self.command_timeout, sink.subscribe(&channels)).await
        {
            let mut watched = self.channels.lock();
            for channel in &channels {
                if let Some(entry) = watched.get_mut(channel) {
                    entry.subscribed = true;
                }
            }
        }
        *slot = Some(sink);
    }

    async fn disconnected(&self) {
        let mut slot = self.sink.lock().await;
        *slot = None;
        for entry in self.channels.lock().values_mut() {
            entry.subscribed = false;
        }
    }
}

/// The reader task: connect, subscribe what is watched, turn messages into
/// wake-ups until the connection ends, and start again.
async fn read_forever(shared: Arc<Shared>) {
    let mut delay = RECONNECT_FIRST;
    loop {
        let opened = tokio::time::timeout(shared.connect_timeout, shared.client.get_async_pubsub()).await;
        let Ok(Ok(pubsub)) = opened else {
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(RECONNECT_MAX);
            continue;
        };
        delay = RECONNECT_FIRST;
        let (sink, mut messages) = pubsub.split();
        shared.connected(sink).await;
        // Releases published while there was no connection were lost.
        shared.wake_all();
        while let Some(message) = messages.next().await {
            shared.wake(message.get_channel_name());
        }
        shared.disconnected().await;
        shared.wake_all();
    }
}
