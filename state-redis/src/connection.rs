//! The one connection every operation of a store shares.
//!
//! A [`ConnectionManager`] wraps a multiplexed connection: concurrent
//! operations write their commands onto one socket without waiting for each
//! other's replies (pipelining), and when the connection breaks it is
//! replaced in the background. Every call here is bounded by the command
//! timeout, reconnection included, so no operation hangs while the server
//! is away: it fails with a typed, retryable error instead.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, ConnectionAddr, Script, ScriptInvocation, Value};
use state_api::{Durability, StateError};

use crate::config::RedisConfig;
use crate::error::from_redis;

/// Commands a caller may queue ahead of the socket before waiting.
const PIPELINE_BUFFER: usize = 4096;

/// Reconnection attempts per outage detection, a few milliseconds apart at
/// first: a server restarting on the same address is found quickly, and a
/// dead one fails the pending calls fast instead of at the timeout.
const RECONNECT_ATTEMPTS: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(10);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// A shared, self-healing connection with the store's timeouts.
#[derive(Clone)]
pub(crate) struct Connection {
    link: Link,
    command_timeout: Duration,
}

/// One server through a connection manager, or a cluster through the
/// cluster client, which routes each command (a script by its first key)
/// to the node serving its slot and follows `MOVED`/`ASK` redirections.
#[derive(Clone)]
enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Connection {
    /// Connects, failing within the connect timeout.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad URL; `Unavailable` when the server
    /// refuses or drops the connection; `Timeout` when it does not answer
    /// in time; `Backend` for a refusal such as bad credentials.
    pub(crate) async fn open(config: &RedisConfig) -> Result<(Client, Connection), StateError> {
        if config.is_cluster() {
            return Self::open_cluster(config).await;
        }
        let info = config.client_info()?;
        if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
            install_tls_provider();
        }
        let client = Client::open(info).map_err(|e| from_redis("connect", config.connect_timeout(), e))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.connect_timeout()))
            .set_response_timeout(Some(config.command_timeout()))
            .set_number_of_retries(RECONNECT_ATTEMPTS)
            .set_min_delay(RECONNECT_MIN_DELAY)
            .set_max_delay(RECONNECT_MAX_DELAY)
            .set_pipeline_buffer_size(PIPELINE_BUFFER);
        let connecting = ConnectionManager::new_with_config(client.clone(), manager_config);
        let manager = match tokio::time::timeout(config.connect_timeout(), connecting).await {
            Ok(Ok(manager)) => manager,
            Ok(Err(e)) => return Err(from_redis("connect", config.connect_timeout(), e)),
            Err(_) => return Err(StateError::timed_out("connect", config.connect_timeout())),
        };
        Ok((client, Connection { link: Link::Single(manager), command_timeout: config.command_timeout() }))
    }

    /// Connects to a cluster through its seeds. The returned client is for
    /// the first seed: lock wake-ups subscribe there, and a `PUBLISH` on
    /// any node of a cluster reaches the subscribers of every node.
    async fn open_cluster(config: &RedisConfig) -> Result<(Client, Connection), StateError> {
        let seeds = config.seed_infos()?;
        if seeds.iter().any(|seed| matches!(seed.addr(), ConnectionAddr::TcpTls { .. })) {
            install_tls_provider();
        }
        let connect_error = |e| from_redis("connect", config.connect_timeout(), e);
        let first = seeds.first().cloned().ok_or_else(|| StateError::invalid_argument("urls", "no seed"))?;
        let client = Client::open(first).map_err(connect_error)?;
        let cluster = ClusterClientBuilder::new(seeds)
            .connection_timeout(config.connect_timeout())
            .response_timeout(config.command_timeout())
            .retries(RECONNECT_ATTEMPTS as u32)
            .min_retry_wait(RECONNECT_MIN_DELAY.as_millis() as u64)
            .max_retry_wait(RECONNECT_MAX_DELAY.as_millis() as u64)
            .build()
            .map_err(connect_error)?;
        let connection = match tokio::time::timeout(config.connect_timeout(), cluster.get_async_connection()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(connect_error(e)),
            Err(_) => return Err(StateError::timed_out("connect", config.connect_timeout())),
        };
        Ok((client, Connection { link: Link::Cluster(connection), command_timeout: config.command_timeout() }))
    }

    /// Runs a script (by SHA1, loading it on `NOSCRIPT`) within the command
    /// timeout.
    pub(crate) async fn invoke(
        &self,
        operation: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Value, StateError> {
        match &self.link {
            Link::Single(manager) => {
                self.bounded(operation, invocation.invoke_async::<Value>(&mut manager.clone())).await
            }
            Link::Cluster(cluster) => {
                self.bounded(operation, invocation.invoke_async::<Value>(&mut cluster.clone())).await
            }
        }
    }

    /// Runs one command within the command timeout.
    pub(crate) async fn query(&self, operation: &'static str, command: &Cmd) -> Result<Value, StateError> {
        match &self.link {
            Link::Single(manager) => self.bounded(operation, command.query_async::<Value>(&mut manager.clone())).await,
            Link::Cluster(cluster) => self.bounded(operation, command.query_async::<Value>(&mut cluster.clone())).await,
        }
    }

    /// Loads a script into the server's cache within the command timeout.
    pub(crate) async fn load(&self, operation: &'static str, script: &Script) -> Result<(), StateError> {
        match &self.link {
            Link::Single(manager) => self.bounded(operation, script.load_async(&mut manager.clone())).await.map(drop),
            Link::Cluster(cluster) => self.bounded(operation, script.load_async(&mut cluster.clone())).await.map(drop),
        }
    }

    async fn bounded<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, StateError> {
        match tokio::time::timeout(self.command_timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(from_redis(operation, self.command_timeout, e)),
            Err(_) => Err(StateError::timed_out(operation, self.command_timeout)),
        }
    }
}

/// rustls needs a process-wide crypto provider before its first TLS
/// connection. Installing one fails harmlessly when the application (or
/// another library) already did, so this never overrides a choice made
/// elsewhere.
fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// What the server's persistence settings promise: durable only when every
/// write reaches the append-only file, synced, before its reply. A server
/// that does not answer `CONFIG GET` (renamed or forbidden, as on managed
/// services) promises nothing we can see.
pub(crate) async fn durability(connection: &Connection) -> Durability {
    let setting = |name: &'static str| async move {
        let reply = connection.query("connect", redis::cmd("CONFIG").arg("GET").arg(name)).await.ok()?;
        config_value(&reply, name)
    };
    let appendonly = setting("appendonly").await;
    let appendfsync = setting("appendfsync").await;
    if appendonly.as_deref() == Some("yes") && appendfsync.as_deref() == Some("always") {
        Durability::Durable
    } else {
        Durability::Volatile
    }
}

/// The value of `name` in a `CONFIG GET` reply: a flat array of names and
/// values (RESP2) or a map (RESP3).
fn config_value(reply: &Value, name: &str) -> Option<String> {
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    match reply {
        Value::Array(items) => {
            items.chunks(2).find(|pair| pair.first().and_then(text).as_deref() == Some(name))?.get(1).and_then(text)
        }
        Value::Map(pairs) => {
            pairs.iter().find(|(key, _)| text(key).as_deref() == Some(name)).and_then(|(_, v)| text(v))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_values_are_read_from_either_protocol() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        let resp2 = Value::Array(vec![bulk("appendonly"), bulk("yes")]);
        assert_eq!(config_value(&resp2, "appendonly").as_deref(), Some("yes"));
        assert_eq!(config_value(&resp2, "appendfsync"), None);
        let resp3 = Value::Map(vec![(bulk("appendfsync"), bulk("always"))]);
        assert_eq!(config_value(&resp3, "appendfsync").as_deref(), Some("always"));
        assert_eq!(config_value(&Value::Nil, "appendonly"), None);
    }
}
