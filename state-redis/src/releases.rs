//! Hearing lock releases over Redis pub/sub, to feed the release hub.
//!
//! The release script publishes on the lock's channel in the same atomic
//! step that frees the lock. A store opens one dedicated pub/sub connection
//! (lazily, on the first `acquire` that has to wait) and a reader task that
//! turns each message into [`ReleaseHub::released`]. Waiting, and the rule
//! that a waiter watches *before* its next attempt, live in
//! [`state_api::driver`]; this module only subscribes and forwards.
//!
//! Each channel is subscribed separately ([`Delivery::PerName`]): a watch
//! is live once the server confirmed its channel on the live connection.
//! When the connection drops, the hub stops counting on notifications and
//! wakes every waiter (releases published in between are lost); the reader
//! reconnects with backoff and subscribes every watched channel again.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use state_api::Backoff;
use state_api::driver::{Delivery, ReleaseHub, Watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::connection::Connection;

/// The shortest pause between attempts to (re)open the pub/sub connection.
const RECONNECT_FLOOR: Duration = Duration::from_millis(50);

/// The pub/sub side of one store. Dropping it stops the reader task and
/// closes the connection.
pub(crate) struct ReleaseFeed {
    shared: Arc<Shared>,
    /// `None` outside a tokio runtime: then nothing is ever subscribed and
    /// waiters poll.
    reader: Option<JoinHandle<()>>,
}

struct Shared {
    /// Where to subscribe: asked at every (re)connection, so the reader
    /// follows a sentinel failover.
    connection: Connection,
    connect_timeout: Duration,
    command_timeout: Duration,
    /// The live connection's command side, if connected. Held across each
    /// SUBSCRIBE / UNSUBSCRIBE round trip, which puts them in one order.
    sink: tokio::sync::Mutex<Option<PubSubSink>>,
    hub: ReleaseHub,
}

impl ReleaseFeed {
    /// Starts the reader task on the current tokio runtime, if there is one.
    pub(crate) fn start(connection: Connection, connect_timeout: Duration, command_timeout: Duration) -> ReleaseFeed {
        let shared = Arc::new_cyclic(|shared: &Weak<Shared>| {
            let owner = Weak::clone(shared);
            // The last waiter of a channel gone: unsubscribe, unless someone
            // watches it again by the time the sink is free.
            let unwatched = Box::new(move |channel: &str| {
                let (Some(shared), Ok(runtime)) = (owner.upgrade(), tokio::runtime::Handle::try_current()) else {
                    return;
                };
                let channel = channel.to_owned();
                runtime.spawn(async move { shared.unsubscribe_if_unwatched(channel).await });
            });
            Shared {
                connection,
                connect_timeout,
                command_timeout,
                sink: tokio::sync::Mutex::new(None),
                hub: ReleaseHub::with_unwatch_hook(Delivery::PerName, unwatched),
            }
        });
        let reader =
            tokio::runtime::Handle::try_current().ok().map(|runtime| runtime.spawn(read_forever(Arc::clone(&shared))));
        ReleaseFeed { shared, reader }
    }

    /// Watches `channel` and subscribes to it, waiting at most until
    /// `deadline` (and the command timeout) for the server's confirmation.
    /// Without one the watch is not live and the waiter polls.
    pub(crate) async fn watch(&self, channel: String, deadline: Instant) -> Watch {
        let watch = self.shared.hub.watch(&channel);
        let limit = self.shared.command_timeout.min(deadline.saturating_duration_since(Instant::now()));
        let _ = tokio::time::timeout(limit, self.shared.subscribe(&channel)).await;
        watch
    }
}

impl Drop for ReleaseFeed {
    fn drop(&mut self) {
        if let Some(reader) = &self.reader {
            reader.abort();
        }
    }
}

impl Shared {
    async fn subscribe(&self, channel: &str) {
        let mut sink = self.sink.lock().await;
        if !self.hub.is_watched(channel) || self.hub.is_confirmed(channel) {
            return;
        }
        // Not connected: the reader subscribes every watched channel when
        // it connects.
        let Some(sink) = sink.as_mut() else { return };
        if sink.subscribe(channel).await.is_ok() {
            self.hub.confirm(channel);
        }
    }

    /// Unsubscribes unless someone started watching the channel again. The
    /// sink lock orders this against that watcher's subscribe: whichever
    /// runs second sees the other's effect.
    async fn unsubscribe_if_unwatched(&self, channel: String) {
        let mut sink = self.sink.lock().await;
        if self.hub.is_watched(&channel) {
            return;
        }
        if let Some(sink) = sink.as_mut() {
            let _ = tokio::time::timeout(self.command_timeout, sink.unsubscribe(&channel)).await;
        }
    }

    /// Installs a fresh connection's sink and subscribes every watched
    /// channel on it.
    async fn connected(&self, mut sink: PubSubSink) {
        let mut slot = self.sink.lock().await;
        self.hub.set_live(true);
        let channels = self.hub.watched();
        if !channels.is_empty()
            && let Ok(Ok(())) = tokio::time::timeout(self.command_timeout, sink.subscribe(&channels)).await
        {
            for channel in &channels {
                self.hub.confirm(channel);
            }
        }
        *slot = Some(sink);
    }

    async fn disconnected(&self) {
        let mut slot = self.sink.lock().await;
        *slot = None;
        self.hub.set_live(false);
    }
}

/// The reader task: connect, subscribe what is watched, turn messages into
/// wake-ups until the connection ends, and start again.
async fn read_forever(shared: Arc<Shared>) {
    let mut backoff = Backoff::new();
    loop {
        let opened =
            tokio::time::timeout(shared.connect_timeout, shared.connection.pubsub_client().get_async_pubsub()).await;
        let Ok(Ok(pubsub)) = opened else {
            tokio::time::sleep(backoff.next_delay().max(RECONNECT_FLOOR)).await;
            continue;
        };
        backoff = Backoff::new();
        let (sink, mut messages) = pubsub.split();
        shared.connected(sink).await;
        // Releases published while there was no connection were lost.
        shared.hub.wake_all();
        while let Some(message) = messages.next().await {
            shared.hub.released(message.get_channel_name());
        }
        shared.disconnected().await;
    }
}
