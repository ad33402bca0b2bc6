//! The one connection every operation of a store shares.
//!
//! A [`ConnectionManager`] wraps a multiplexed connection: concurrent
//! operations write their commands onto one socket without waiting for each
//! other's replies (pipelining), and when the connection breaks it is
//! replaced in the background. Every call here is bounded by the command
//! timeout, reconnection included, so no operation hangs while the server
//! is away: it fails with a typed, retryable error instead.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{
    Client, Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, Pipeline, RedisFuture, Script, ScriptInvocation,
    ServerErrorKind, Value,
};
use state_api::{Durability, StateError};

use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};

use crate::config::RedisConfig;
use crate::error::from_redis;
use crate::sentinel::Sentinel;

/// Commands a caller may queue ahead of the socket before waiting.
const PIPELINE_BUFFER: usize = 4096;

/// Reconnection attempts per outage detection, a few milliseconds apart at
/// first: a server restarting on the same address is found quickly, and a
/// dead one fails the pending calls fast instead of at the timeout.
const RECONNECT_ATTEMPTS: usize = 2;
const RECONNECT_MIN_DELAY: Duration = Duration::from_millis(10);
const RECONNECT_MAX_DELAY: Duration = Duration::from_millis(500);

/// The first pause before a cluster call is sent again after an answer
/// that proves it did not run (a redirection, a cluster still settling);
/// it doubles up to [`RESEND_MAX_PAUSE`], within the command timeout.
const RESEND_FIRST_PAUSE: Duration = Duration::from_millis(5);
const RESEND_MAX_PAUSE: Duration = Duration::from_millis(100);

/// A shared, self-healing connection with the store's timeouts.
#[derive(Clone)]
pub(crate) struct Connection {
    link: Link,
    command_timeout: Duration,
    /// `min_replicas_acked`: replicas that must confirm each write (`WAIT`).
    replicas_acked: u32,
}

/// One server through a connection manager; a cluster through the cluster
/// client, which routes each command (a script by its first key) to the
/// node serving its slot; or the master that sentinels name, followed
/// across failovers.
///
/// The cluster client never sends a call twice (`retries(0)`): it would
/// also send again a script whose reply a broken connection lost, after
/// the script ran, and apply a write twice. It still refreshes its slot
/// map on `MOVED` and reconnects broken nodes; `Connection::attempt`
/// sends a call again only after an answer that proves it did not run.
#[derive(Clone)]
enum Link {
    Single {
        manager: ConnectionManager,
        pubsub: Arc<Client>,
    },
    Cluster {
        cluster: ClusterConnection,
        /// The seeds, for the wake-ups' own cluster connection.
        seeds: Arc<[ConnectionInfo]>,
    },
    Sentinel(Arc<Sentinel>),
}

/// The connection one call goes out on: either kind of client, behind the
/// one trait the script and pipeline calls take.
pub(crate) enum Handle {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Handle {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Handle::Manager(manager) => manager.req_packed_command(cmd),
            Handle::Cluster(cluster) => cluster.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Handle::Manager(manager) => manager.req_packed_commands(cmd, offset, count),
            Handle::Cluster(cluster) => cluster.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Handle::Manager(manager) => manager.get_db(),
            Handle::Cluster(cluster) => cluster.get_db(),
        }
    }
}

/// Where lock wake-ups subscribe.
pub(crate) enum FeedSource {
    /// One server (standalone, or the master sentinels name now):
    /// `SUBSCRIBE` on a pub/sub connection to it.
    Node(Box<Client>),
    /// A cluster, from its seeds: `SSUBSCRIBE` on the master serving
    /// each channel's slot (see `shards.rs`).
    Shards(Arc<[ConnectionInfo]>),
}

/// The settings of every connection manager this crate opens.
fn manager_config(config: &RedisConfig) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.connect_timeout()))
        .set_response_timeout(Some(config.command_timeout()))
        .set_number_of_retries(RECONNECT_ATTEMPTS)
        .set_min_delay(RECONNECT_MIN_DELAY)
        .set_max_delay(RECONNECT_MAX_DELAY)
        .set_pipeline_buffer_size(PIPELINE_BUFFER)
}

/// Opens a connection manager to `info`, within the connect timeout.
pub(crate) async fn open_manager(
    config: &RedisConfig,
    info: ConnectionInfo,
) -> Result<(Client, ConnectionManager), StateError> {
    if matches!(info.addr(), ConnectionAddr::TcpTls { .. }) {
        install_tls_provider();
    }
    let client = Client::open(info).map_err(|e| from_redis("connect", config.connect_timeout(), e))?;
    let connecting = ConnectionManager::new_with_config(client.clone(), manager_config(config));
    match tokio::time::timeout(config.connect_timeout(), connecting).await {
        Ok(Ok(manager)) => Ok((client, manager)),
        Ok(Err(e)) => Err(from_redis("connect", config.connect_timeout(), e)),
        Err(_) => Err(StateError::timed_out("connect", config.connect_timeout())),
    }
}

impl Connection {
    /// Connects, failing within the connect timeout.
    ///
    /// # Errors
    /// `InvalidArgument` for a bad URL; `Unavailable` when the server
    /// refuses or drops the connection (or no sentinel names a master);
    /// `Timeout` when it does not answer in time; `Backend` for a refusal
    /// such as bad credentials.
    pub(crate) async fn open(config: &RedisConfig) -> Result<Connection, StateError> {
        let link = if config.is_sentinel() {
            Link::Sentinel(Sentinel::open(config).await?)
        } else if config.is_cluster() {
            Self::open_cluster(config).await?
        } else {
            let (pubsub, manager) = open_manager(config, config.client_info()?).await?;
            Link::Single { manager, pubsub: Arc::new(pubsub) }
        };
        Ok(Connection { link, command_timeout: config.command_timeout(), replicas_acked: config.min_replicas_acked() })
    }

    /// Connects to a cluster through its seeds. Lock wake-ups connect to
    /// the masters themselves (see [`FeedSource::Shards`]).
    async fn open_cluster(config: &RedisConfig) -> Result<Link, StateError> {
        let seeds = config.seed_infos()?;
        if seeds.iter().any(|seed| matches!(seed.addr(), ConnectionAddr::TcpTls { .. })) {
            install_tls_provider();
        }
        if seeds.is_empty() {
            return Err(StateError::invalid_argument("urls", "no seed"));
        }
        let connect_error = |e| from_redis("connect", config.connect_timeout(), e);
        let cluster = ClusterClientBuilder::new(seeds.clone())
            .connection_timeout(config.connect_timeout())
            .response_timeout(config.command_timeout())
            .retries(0)
            .build()
            .map_err(connect_error)?;
        let cluster = match tokio::time::timeout(config.connect_timeout(), cluster.get_async_connection()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(e)) => return Err(connect_error(e)),
            Err(_) => return Err(StateError::timed_out("connect", config.connect_timeout())),
        };
        Ok(Link::Cluster { cluster, seeds: seeds.into() })
    }

    /// Where lock wake-ups subscribe, asked at every (re)connection: in
    /// sentinel mode the current master, so the reader follows a failover.
    pub(crate) fn feed_source(&self) -> FeedSource {
        match &self.link {
            Link::Single { pubsub, .. } => FeedSource::Node(Box::new(Client::clone(pubsub))),
            Link::Cluster { seeds, .. } => FeedSource::Shards(Arc::clone(seeds)),
            Link::Sentinel(sentinel) => FeedSource::Node(Box::new(sentinel.master_client())),
        }
    }

    /// The command the release script announces a release with: a sharded
    /// `SPUBLISH` in a cluster, so the message goes only to the shard that
    /// serves the lock's slot (where its waiters' `SSUBSCRIBE` went),
    /// instead of a `PUBLISH` every node relays to every other.
    pub(crate) fn publish_command(&self) -> &'static str {
        match &self.link {
            Link::Cluster { .. } => "SPUBLISH",
            Link::Single { .. } | Link::Sentinel(_) => "PUBLISH",
        }
    }

    /// The connection the next call goes out on.
    fn handle(&self) -> Handle {
        match &self.link {
            Link::Single { manager, .. } => Handle::Manager(manager.clone()),
            Link::Cluster { cluster, .. } => Handle::Cluster(cluster.clone()),
            Link::Sentinel(sentinel) => Handle::Manager(sentinel.master()),
        }
    }

    /// Runs a script (by SHA1, loading it on `NOSCRIPT`) within the command
    /// timeout.
    pub(crate) async fn invoke(
        &self,
        operation: &'static str,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Value, StateError> {
        self.bounded(operation, || {
            let mut handle = self.handle();
            async move { invocation.invoke_async::<Value>(&mut handle).await }
        })
        .await
    }

    /// Runs a script that writes. With `min_replicas_acked` set, the script
    /// and a `WAIT` for that many replicas go out as one pipeline on one
    /// connection, so the `WAIT` covers the script's write; fewer
    /// confirmations than asked is a `Timeout`: the write happened on the
    /// master but may not survive a failover.
    pub(crate) async fn invoke_write(
        &self,
        operation: &'static str,
        script: &Script,
        invocation: &ScriptInvocation<'_>,
    ) -> Result<Value, StateError> {
        if self.replicas_acked == 0 {
            return self.invoke(operation, invocation).await;
        }
        let wait_ms = u64::try_from(self.command_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut pipeline = redis::pipe();
        pipeline.invoke_script(invocation).cmd("WAIT").arg(self.replicas_acked).arg(wait_ms);
        let send = || {
            let (pipeline, mut handle) = (&pipeline, self.handle());
            async move { pipeline.query_async::<Vec<Value>>(&mut handle).await }
        };
        // One deadline for the whole call, a reload included.
        let deadline = tokio::time::Instant::now() + self.command_timeout;
        let sent = self.attempt(deadline, send).await;
        let replies = match sent {
            // The server lost its scripts (a restart, `SCRIPT FLUSH`, a
            // replica promoted: scripts do not replicate), so the script
            // did not run: load it and send the pipeline again.
            Ok(Err(error)) if error.kind() == ErrorKind::Server(ServerErrorKind::NoScript) => {
                let load = || {
                    let mut handle = self.handle();
                    async move { script.load_async(&mut handle).await }
                };
                let loaded = self.attempt(deadline, load).await;
                self.settle(operation, loaded)?;
                let sent = self.attempt(deadline, send).await;
                self.settle(operation, sent)?
            }
            sent => self.settle(operation, sent)?,
        };
        self.confirmed(operation, replies)
    }

    /// Runs one command that writes, confirmed by replicas as
    /// [`invoke_write`](Self::invoke_write) confirms a script's write.
    pub(crate) async fn write(&self, operation: &'static str, command: &Cmd) -> Result<Value, StateError> {
        if self.replicas_acked == 0 {
            return self.query(operation, command).await;
        }
        let wait_ms = u64::try_from(self.command_timeout.as_millis()).unwrap_or(u64::MAX);
        let mut pipeline = redis::pipe();
        pipeline.add_command(command.clone()).cmd("WAIT").arg(self.replicas_acked).arg(wait_ms);
        let replies = self
            .bounded(operation, || {
                let (pipeline, mut handle) = (&pipeline, self.handle());
                async move { pipeline.query_async::<Vec<Value>>(&mut handle).await }
            })
            .await?;
        self.confirmed(operation, replies)
    }

    /// A write's answer from the replies of the write and its `WAIT`;
    /// fewer confirmations than asked, or none, is a `Timeout`.
    fn confirmed(&self, operation: &'static str, replies: Vec<Value>) -> Result<Value, StateError> {
        let mut replies = replies.into_iter();
        let (Some(answer), Some(waited)) = (replies.next(), replies.next()) else {
            return Err(crate::error::unexpected_reply(operation, "no WAIT count after the script"));
        };
        let Value::Int(acked) = waited else {
            // WAIT answered with an error: the node stopped being a master
            // between the script and the WAIT (a failover demoted it). The
            // write happened there but may not survive: indeterminate and
            // retryable, as when too few replicas confirm.
            tracing::warn!(
                backend = crate::BACKEND,
                operation,
                reply = ?waited,
                "WAIT failed after a write: reported as a timeout"
            );
            return Err(StateError::timed_out(operation, self.command_timeout));
        };
        if acked < i64::from(self.replicas_acked) {
            tracing::warn!(
                backend = crate::BACKEND,
                operation,
                acked,
                wanted = self.replicas_acked,
                "too few replicas confirmed a write: reported as a timeout"
            );
            return Err(StateError::timed_out(operation, self.command_timeout));
        }
        Ok(answer)
    }

    /// Runs one command within the command timeout.
    pub(crate) async fn query(&self, operation: &'static str, command: &Cmd) -> Result<Value, StateError> {
        self.bounded(operation, || {
            let mut handle = self.handle();
            async move { command.query_async::<Value>(&mut handle).await }
        })
        .await
    }

    /// The servers whose keys a walk over every key must visit: `None` for
    /// the one server (or sentinel mode's master); in a cluster, each master
    /// that serves slots, by address, as it says now.
    pub(crate) async fn nodes(&self, operation: &'static str) -> Result<Vec<Option<Node>>, StateError> {
        if !matches!(self.link, Link::Cluster { .. }) {
            return Ok(vec![None]);
        }
        let answer = self.query(operation, &redis::cmd("CLUSTER").arg("NODES").clone()).await?;
        let text = match answer {
            Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            Value::VerbatimString { text, .. } => text,
            Value::SimpleString(text) => text,
            _ => return Err(crate::error::unexpected_reply(operation, "a CLUSTER NODES reply that is not text")),
        };
        Ok(serving_masters(&text).into_iter().map(Some).collect())
    }

    /// Runs one command on `node` (see [`nodes`](Self::nodes)), within the
    /// command timeout.
    pub(crate) async fn query_at(
        &self,
        operation: &'static str,
        node: Option<&Node>,
        command: &Cmd,
    ) -> Result<Value, StateError> {
        match (&self.link, node) {
            (Link::Cluster { cluster, .. }, Some((host, port))) => {
                let routing =
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress { host: host.clone(), port: *port });
                let send = || {
                    let (mut cluster, command, routing) = (cluster.clone(), command.clone(), routing.clone());
                    async move { cluster.route_command(command, routing).await }
                };
                self.bounded(operation, send).await
            }
            _ => self.query(operation, command).await,
        }
    }

    /// Loads a script into the server's cache within the command timeout.
    pub(crate) async fn load(&self, operation: &'static str, script: &Script) -> Result<(), StateError> {
        self.bounded(operation, || {
            let mut handle = self.handle();
            async move { script.load_async(&mut handle).await }
        })
        .await
        .map(drop)
    }

    /// [`attempt`](Self::attempt) within the command timeout, settled as
    /// the contract's error.
    async fn bounded<T, F: Future<Output = redis::RedisResult<T>>>(
        &self,
        operation: &'static str,
        call: impl FnMut() -> F,
    ) -> Result<T, StateError> {
        let result = self.attempt(tokio::time::Instant::now() + self.command_timeout, call).await;
        self.settle(operation, result)
    }

    /// Sends `call()` by `deadline`; in a cluster, sends it again (after a
    /// growing pause, by the same deadline) while the answer proves it did
    /// not run (see [`did_not_run`]). A broken connection, a timeout or a
    /// failed slot-map refresh proves nothing: the call may have run, and
    /// is never sent again.
    async fn attempt<T, F: Future<Output = redis::RedisResult<T>>>(
        &self,
        deadline: tokio::time::Instant,
        mut call: impl FnMut() -> F,
    ) -> Result<redis::RedisResult<T>, tokio::time::error::Elapsed> {
        let mut pause = RESEND_FIRST_PAUSE;
        loop {
            let result = tokio::time::timeout_at(deadline, call()).await;
            match &result {
                Ok(Err(error))
                    if matches!(self.link, Link::Cluster { .. })
                        && did_not_run(error)
                        && tokio::time::Instant::now() + pause < deadline =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(RESEND_MAX_PAUSE);
                }
                _ => return result,
            }
        }
    }

    /// A call's outcome within the command timeout, as the contract's error.
    fn settle<T>(
        &self,
        operation: &'static str,
        result: Result<redis::RedisResult<T>, tokio::time::error::Elapsed>,
    ) -> Result<T, StateError> {
        let error = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => from_redis(operation, self.command_timeout, e),
            Err(_) => StateError::timed_out(operation, self.command_timeout),
        };
        // A master that stopped answering or turned into a replica: ask
        // the sentinels again (in the background; this call fails as is).
        if let Link::Sentinel(sentinel) = &self.link
            && error.is_retryable()
        {
            sentinel.suspect();
        }
        Err(error)
    }
}

/// Whether `error` is the node's own answer to the call, given before it
/// ran: the slot is served elsewhere (`MOVED`: the client refreshes its
/// slot map; `ASK`: its keys are moving, and the call, not followed to the
/// importing node, is sent again until the move completes and `MOVED`
/// leads there), the cluster is settling (`TRYAGAIN`, `CLUSTERDOWN`), or
/// the node turned replica (`READONLY`: every script stops at its first
/// write, before changing anything).
///
/// Not on the list, though retryable: errors the cluster client gives
/// every call in flight when a slot-map refresh fails (no connection to
/// any node, a node's `LOADING` or `MASTERDOWN` to the refresh's `PING`),
/// which may have been written to a node already and still run there.
fn did_not_run(error: &redis::RedisError) -> bool {
    matches!(
        error.kind(),
        ErrorKind::Server(
            ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::TryAgain
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::ReadOnly
        )
    )
}

/// A cluster node's address.
pub(crate) type Node = (String, u16);

/// The masters that serve slots, from a `CLUSTER NODES` reply: lines of
/// `id host:port@bus[,hostname] flags master ping pong epoch link slot...`.
fn serving_masters(nodes: &str) -> Vec<Node> {
    nodes
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags = fields.get(2)?.split(',').collect::<Vec<_>>();
            if !flags.contains(&"master") || flags.iter().any(|flag| flag.starts_with("fail") || *flag == "noaddr") {
                return None;
            }
            // Slot ranges follow the eighth field: a master without any
            // serves no keys.
            if fields.len() <= 8 {
                return None;
            }
            let address = fields.get(1)?.split(['@', ',']).next()?;
            let (host, port) = address.rsplit_once(':')?;
            Some((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port.parse().ok()?))
        })
        .collect()
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
    fn only_masters_serving_slots_are_walked() {
        let nodes = "\
a1 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-5460
b2 127.0.0.1:7003@17003 slave a1 0 0 1 connected
c3 127.0.0.1:7001@17001,host.example master - 0 0 2 connected 5461-10922
d4 127.0.0.1:7002@17002 master,fail - 0 0 3 disconnected 10923-16383
e5 127.0.0.1:7004@17004 master - 0 0 4 connected
";
        let masters = serving_masters(nodes);
        assert_eq!(masters, vec![("127.0.0.1".to_owned(), 7000), ("127.0.0.1".to_owned(), 7001)]);
    }

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
