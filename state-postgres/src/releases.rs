//! Hearing lock releases with LISTEN/NOTIFY, to feed the release hub.
//!
//! `release` calls `pg_notify(channel, name)` in its own statement, so the
//! notification is sent exactly when the release commits. One background
//! task per store LISTENs on a dedicated connection and turns each
//! notification into [`ReleaseHub::released`]; it is started by the first
//! `acquire` that has to wait, so stores that never wait never open the
//! extra connection. Waiting itself lives in [`state_api::driver`].
//!
//! One channel carries every lock name ([`Delivery::AllNames`]): watches
//! are live exactly while the listener is. Notifications are lost while it
//! is disconnected, so the hub wakes every waiter when it drops and again
//! once it listens, and waiters poll in between.

use std::time::Duration;

use parking_lot::Mutex;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};
use state_api::Backoff;
use state_api::driver::{Delivery, ReleaseHub, Watch};
use tokio::task::JoinHandle;

/// The shortest pause between attempts to (re)connect the listener.
const RECONNECT_FLOOR: Duration = Duration::from_millis(50);

/// Release notifications for one store.
pub(crate) struct ReleaseFeed {
    options: PgConnectOptions,
    connect_timeout: Duration,
    channel: String,
    hub: ReleaseHub,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl ReleaseFeed {
    pub(crate) fn new(options: PgConnectOptions, connect_timeout: Duration, channel: String) -> ReleaseFeed {
        ReleaseFeed {
            options,
            connect_timeout,
            channel,
            hub: ReleaseHub::new(Delivery::AllNames),
            task: Mutex::new(None),
        }
    }

    /// The channel `release` notifies.
    pub(crate) fn channel(&self) -> &str {
        &self.channel
    }

    /// Watches releases of `name`, starting the listener on first use.
    pub(crate) fn watch(&self, name: &str) -> Watch {
        let watch = self.hub.watch(name);
        let mut task = self.task.lock();
        if task.is_none() {
            *task = Some(tokio::spawn(listen(
                self.options.clone(),
                self.connect_timeout,
                self.channel.clone(),
                self.hub.clone(),
            )));
        }
        watch
    }

    pub(crate) fn stop(&self) {
        if let Some(task) = self.task.lock().take() {
            task.abort();
        }
    }
}

/// The listener task: keeps one connection LISTENing and forwards every
/// notification, reconnecting with backoff when the server goes away.
async fn listen(options: PgConnectOptions, connect_timeout: Duration, channel: String, hub: ReleaseHub) {
    // A private pool of one, used by PgListener only to (re)connect.
    let pool = PgPoolOptions::new().max_connections(1).acquire_timeout(connect_timeout).connect_lazy_with(options);
    let mut backoff = Backoff::new();
    loop {
        if let Ok(mut listener) = connect(&pool, &channel).await {
            backoff = Backoff::new();
            loop {
                hub.set_live(true);
                // Releases before the LISTEN took effect were not heard.
                hub.wake_all();
                match forward(&mut listener, &hub).await {
                    // Reconnected by PgListener itself: listening again.
                    Ok(()) => continue,
                    Err(_) => break,
                }
            }
            hub.set_live(false);
        }
        tokio::time::sleep(backoff.next_delay().max(RECONNECT_FLOOR)).await;
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
async fn forward(listener: &mut PgListener, hub: &ReleaseHub) -> Result<(), sqlx::Error> {
    loop {
        match listener.try_recv().await? {
            Some(notification) => hub.released(notification.payload()),
            None => return Ok(()),
        }
    }
}
