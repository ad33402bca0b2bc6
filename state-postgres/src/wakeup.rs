//! Waking lock waiters when a lock is released, with LISTEN/NOTIFY.
//!
//! `release` calls `pg_notify(channel, name)` in its own statement, so the
//! notification is sent exactly when the release commits. One background
//! task per store LISTENs on a dedicated connection and fans notifications
//! out to the waiters of this process through a broadcast channel; it is
//! started by the first `acquire` that has to wait, so stores that never
//! wait never open the extra connection.
//!
//! Notifications are lost while the listener is disconnected. After every
//! (re)connection the task therefore wakes every waiter ("look again"), and
//! while it is not listening waiters poll with jittered backoff instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use state_api::Backoff;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

/// The payload that wakes every waiter. Lock names are never empty.
const EVERYONE: &str = "";

/// Release notifications for one store.
pub(crate) struct Wakeups {
    options: PgConnectOptions,
    connect_timeout: Duration,
    channel: String,
    sender: broadcast::Sender<Arc<str>>,
    listening: Arc<AtomicBool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A waiter's subscription.
pub(crate) struct Subscription {
    receiver: broadcast::Receiver<Arc<str>>,
    listening: Arc<AtomicBool>,
}

impl Wakeups {
    pub(crate) fn new(options: PgConnectOptions, connect_timeout: Duration, channel: String) -> Wakeups {
        let (sender, _) = broadcast::channel(256);
        Wakeups {
            options,
            connect_timeout,
            channel,
            sender,
            listening: Arc::new(AtomicBool::new(false)),
            task: Mutex::new(None),
        }
    }

    /// The channel `release` notifies.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// Subscribes to releases, starting the listener on first use. A
    /// waiter must subscribe *before* its next attempt, so a release right
    /// after a failed attempt cannot slip by.
    pub(crate) fn subscribe(&self) -> Subscription {
        let receiver = self.sender.subscribe();
        let mut task = self.task.lock();
        if task.is_none() {
            *task = Some(tokio::spawn(listen(
                self.options.clone(),
                self.connect_timeout,
                self.channel.clone(),
                self.sender.clone(),
                Arc::clone(&self.listening),
            )));
        }
        Subscription { receiver, listening: Arc::clone(&self.listening) }
    }

    pub(crate) fn stop(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }
}

impl Subscription {
    /// Whether releases are being delivered right now; if not, the waiter
    /// must poll.
    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    /// Returns when `name` may have been released: its notification, a
    /// "look again" from the listener, or missed messages.
    pub(crate) async fn released(&mut self, name: &str) {
        loop {
            match self.receiver.recv().await {
                Ok(payload) if &*payload == name || &*payload == EVERYONE => return,
                Ok(_) => {}
                // Lagged: some notifications were dropped, one may be ours.
                // Closed: the store is going away. Either way, look again.
                Err(_) => return,
            }
        }
    }
}

/// The listener task: keeps one connection LISTENing and forwards every
/// notification, reconnecting with backoff when the server goes away.
async fn listen(
    options: PgConnectOptions,
    connect_timeout: Duration,
    channel: String,
    sender: broadcast::Sender<Arc<str>>,
    listening: Arc<AtomicBool>,
) {
    // A private pool of one, used by PgListener only to (re)connect.
    let pool = PgPoolOptions::new().max_connections(1).acquire_timeout(connect_timeout).connect_lazy_with(options);
    let mut backoff = Backoff::new();
    loop {
        if let Ok(mut listener) = connect(&pool, &channel).await {
            listening.store(true, Ordering::Release);
            backoff = Backoff::new();
            loop {
                // Releases before the LISTEN took effect were not heard.
                let _ = sender.send(Arc::from(EVERYONE));
                match forward(&mut listener, &sender).await {
                    // Reconnected by PgListener itself: listening again.
                    Ok(()) => continue,
                    Err(_) => break,
                }
            }
            listening.store(false, Ordering::Release);
            let _ = sender.send(Arc::from(EVERYONE));
        }
        tokio::time::sleep(backoff.next_delay().max(Duration::from_millis(50))).await;
    }
}

async fn connect(pool: &sqlx::PgPool, channel: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(true);
    listener.listen(channel).await?;
    Ok(listener)
}

/// Forwards notifications until the connection is lost: `Ok` if PgListener
/// reconnected (and re-LISTENed) on its own, `Err` if it could not.
async fn forward(listener: &mut PgListener, sender: &broadcast::Sender<Arc<str>>) -> Result<(), sqlx::Error> {
    loop {
        match listener.try_recv().await? {
            // No receivers is fine: nobody is waiting right now.
            Some(notification) => {
                let _ = sender.send(Arc::from(notification.payload()));
            }
            None => return Ok(()),
        }
    }
}
