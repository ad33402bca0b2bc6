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
//!
//! In a cluster the channels are sharded (`SSUBSCRIBE`, `SPUBLISH`): each
//! is subscribed on the master serving its slot (see `shards.rs`). There
//! is no one connection to lose: a channel is live while its own
//! subscription is, and the reader withdraws it, and subscribes it again
//! in the background, when its node drops it (the slot moved) or its
//! node's connection closes.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::PubSubSink;
use redis::{PushInfo, PushKind, Value};
use state_api::Backoff;
use state_api::driver::{Delivery, ReleaseHub, Watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::connection::{Connection, FeedSource};
use crate::shards::{Address, Pushes, Shards};

/// The shortest pause between attempts to (re)open the pub/sub connection.
const RECONNECT_FLOOR: Duration = Duration::from_millis(50);

/// The longest a cluster node may take to answer a subscription before its
/// connection is given up (and its channels subscribed again).
const SHARD_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

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
    sink: tokio::sync::Mutex<Option<Sink>>,
    hub: ReleaseHub,
}

/// Where subscriptions are sent: one server's pub/sub connection, or the
/// cluster's masters.
enum Sink {
    Node(PubSubSink),
    Shards(Box<Shards>),
}

impl Sink {
    /// Subscribes `channel`; whether the server confirmed it.
    async fn subscribe(&mut self, channel: &str) -> bool {
        match self {
            Sink::Node(sink) => sink.subscribe(channel).await.is_ok(),
            Sink::Shards(shards) => shards.subscribe(channel).await,
        }
    }

    async fn unsubscribe(&mut self, channel: &str) {
        match self {
            Sink::Node(sink) => drop(sink.unsubscribe(channel).await),
            Sink::Shards(shards) => shards.unsubscribe(channel).await,
        }
    }
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
        // Not confirmed in time (a node failing over, a slot moving): keep
        // trying in the background for as long as the channel is watched,
        // or the waiter would poll for the rest of its wait.
        if !self.shared.hub.is_confirmed(&channel) {
            resubscribe(&self.shared, vec![channel]);
        }
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
        if sink.subscribe(channel).await {
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

    /// Installs a fresh sink and subscribes every watched channel on it.
    async fn connected(&self, mut sink: Sink) {
        let mut slot = self.sink.lock().await;
        self.hub.set_live(true);
        for channel in self.hub.watched() {
            if let Ok(true) = tokio::time::timeout(self.command_timeout, sink.subscribe(&channel)).await {
                self.hub.confirm(&channel);
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
        match shared.connection.feed_source() {
            FeedSource::Node(client) => {
                match tokio::time::timeout(shared.connect_timeout, client.get_async_pubsub()).await {
                    Ok(Ok(pubsub)) => {
                        backoff = Backoff::new();
                        read_node(&shared, pubsub).await;
                        shared.disconnected().await;
                    }
                    _ => tokio::time::sleep(backoff.next_delay().max(RECONNECT_FLOOR)).await,
                }
            }
            FeedSource::Shards(seeds) => {
                let response_timeout = shared.command_timeout.min(SHARD_RESPONSE_TIMEOUT);
                let Some((shards, pushes)) = Shards::new(&seeds, shared.connect_timeout, response_timeout) else {
                    return;
                };
                read_shards(&shared, shards, pushes).await;
                shared.disconnected().await;
            }
        }
    }
}

/// Reads one server's pub/sub connection until it ends.
async fn read_node(shared: &Shared, pubsub: redis::aio::PubSub) {
    let (sink, mut messages) = pubsub.split();
    shared.connected(Sink::Node(sink)).await;
    // Releases published while there was no connection were lost.
    shared.hub.wake_all();
    while let Some(message) = messages.next().await {
        shared.hub.released(message.get_channel_name());
    }
}

/// Reads the pushes of every cluster node the feed is connected to.
async fn read_shards(shared: &Arc<Shared>, shards: Shards, mut pushes: Pushes) {
    shared.connected(Sink::Shards(Box::new(shards))).await;
    while let Some((node, push)) = pushes.recv().await {
        read_push(shared, &node, push).await;
    }
}

async fn read_push(shared: &Arc<Shared>, node: &Address, push: PushInfo) {
    let channel = push.data.first().and_then(channel_name);
    match (push.kind, channel) {
        (PushKind::SMessage | PushKind::Message, Some(channel)) => shared.hub.released(&channel),
        // The server dropped a channel subscribed there (its slot moved;
        // the feed's own unsubscribes leave no placement to drop): it is
        // withdrawn and, while watched, subscribed again where its slot is
        // served now.
        (PushKind::SUnsubscribe, Some(channel))
            if with_shards(shared, |shards| shards.dropped(node, &channel)).await == Some(true) =>
        {
            shared.hub.withdraw(&channel);
            resubscribe(shared, vec![channel]);
        }
        // The node's connection closed: releases published there from now
        // on are missed until its channels are subscribed again.
        (PushKind::Disconnection, _) => {
            let lost = with_shards(shared, |shards| shards.lost(node)).await.unwrap_or_default();
            for channel in &lost {
                shared.hub.withdraw(channel);
            }
            resubscribe(shared, lost);
        }
        _ => {}
    }
}

/// Runs `f` on the cluster sink, if that is what is installed.
async fn with_shards<T>(shared: &Shared, f: impl FnOnce(&mut Shards) -> T) -> Option<T> {
    match shared.sink.lock().await.as_mut() {
        Some(Sink::Shards(shards)) => Some(f(shards)),
        _ => None,
    }
}

/// Subscribes `channels` again in the background, so the reader goes on
/// reading while the subscriptions find their nodes; a channel whose node
/// does not answer yet (a slot still moving, a master not yet replaced) is
/// tried again with backoff for as long as it is watched.
fn resubscribe(shared: &Arc<Shared>, channels: Vec<String>) {
    for channel in channels {
        let shared = Arc::clone(shared);
        tokio::spawn(async move {
            let mut backoff = Backoff::new();
            while shared.hub.is_watched(&channel) && !shared.hub.is_confirmed(&channel) {
                let _ = tokio::time::timeout(shared.command_timeout, shared.subscribe(&channel)).await;
                if !shared.hub.is_confirmed(&channel) {
                    tokio::time::sleep(backoff.next_delay().max(RECONNECT_FLOOR)).await;
                }
            }
        });
    }
}

fn channel_name(value: &Value) -> Option<String> {
    match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    }
}
