//! Sentinel mode: finding the master through sentinels, and following it
//! across failovers.
//!
//! At connect the store asks the sentinels, in the configured order, for
//! the address of the master they know by `sentinel_master`, connects
//! there, and checks that the node says it is a master (`ROLE`). Every
//! operation then goes to that master over one connection manager, as in
//! standalone mode. The sentinels are asked again:
//!
//! - when an operation fails in a way that may mean the master moved (it
//!   stopped answering, or it answered `READONLY`: it is a replica now), in
//!   the background, so the failing call returns at once;
//! - once every [`MONITOR_INTERVAL`] in any case, so a master that came back
//!   demoted (and answers reads as a replica) is left within a second even
//!   when nothing fails.
//!
//! When they name another node, which says it is a master, the store
//! connects there and moves every later operation to it; the lock
//! wake-up reader reconnects through [`Sentinel::master_client`] when its
//! connection drops. Calls in flight on the old connection fail as they
//! would on any outage (retryable errors): nothing is resent on its own,
//! since a write may already have happened.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::{Client, ConnectionAddr, ConnectionInfo, RedisConnectionInfo, Value};
use state_api::StateError;
use state_api::driver::Periodic;
use tokio::time::Instant;

use crate::BACKEND;
use crate::config::RedisConfig;
use crate::connection::open_manager;
use crate::error::from_redis;

/// How often the sentinels are asked even when nothing failed.
const MONITOR_INTERVAL: Duration = Duration::from_secs(1);

/// Failures ask the sentinels at most this often.
const MIN_REFRESH_GAP: Duration = Duration::from_millis(100);

/// The master, as last found.
#[derive(Clone)]
struct Master {
    address: (String, u16),
    client: Client,
    manager: ConnectionManager,
}

/// The sentinels, and the master they named.
pub(crate) struct Sentinel {
    finder: Finder,
    current: parking_lot::RwLock<Master>,
    /// When the sentinels were last asked; held while asking, so one
    /// question is out at a time.
    asked: tokio::sync::Mutex<Option<Instant>>,
    monitor: OnceLock<Periodic>,
}

/// How to ask the sentinels and reach the node they name.
struct Finder {
    config: RedisConfig,
    master_name: String,
    /// The sentinels' addresses, without credentials or database.
    sentinels: Vec<ConnectionInfo>,
    /// The first URL: the master's credentials, database and TLS.
    template: ConnectionInfo,
    /// A connection to the sentinel that answered last.
    answering: tokio::sync::Mutex<Option<MultiplexedConnection>>,
}

impl Sentinel {
    /// Finds the master and connects to it.
    ///
    /// # Errors
    /// `Unavailable` when no sentinel answers or the node they name is not
    /// a master; `Backend` when the sentinels do not know the master name;
    /// as for any connection otherwise.
    pub(crate) async fn open(config: &RedisConfig) -> Result<Arc<Sentinel>, StateError> {
        let infos = config.seed_infos()?;
        let template = infos.first().cloned().ok_or_else(|| StateError::invalid_argument("urls", "no sentinel"))?;
        let master_name = config
            .sentinel_master()
            .ok_or_else(|| StateError::invalid_argument("sentinel_master", "is required in sentinel mode"))?
            .to_owned();
        let sentinels = infos.into_iter().map(|info| info.set_redis_settings(RedisConnectionInfo::default())).collect();
        let finder = Finder {
            config: config.clone(),
            master_name,
            sentinels,
            template,
            answering: tokio::sync::Mutex::new(None),
        };
        let master = finder.connect(finder.ask().await?).await?;
        let sentinel = Arc::new(Sentinel {
            finder,
            current: parking_lot::RwLock::new(master),
            asked: tokio::sync::Mutex::new(None),
            monitor: OnceLock::new(),
        });
        let monitor = Periodic::spawn(
            Arc::downgrade(&sentinel),
            MONITOR_INTERVAL,
            BACKEND,
            "asking the sentinels for the master",
            |sentinel: Arc<Sentinel>| async move { sentinel.refresh(Duration::ZERO).await.map(u64::from) },
        );
        let _ = sentinel.monitor.set(monitor);
        Ok(sentinel)
    }

    /// The current master's connection.
    pub(crate) fn master(&self) -> ConnectionManager {
        self.current.read().manager.clone()
    }

    /// A client for the current master (for pub/sub).
    pub(crate) fn master_client(&self) -> Client {
        self.current.read().client.clone()
    }

    /// An operation failed as if the master had moved: ask the sentinels
    /// again, in the background.
    pub(crate) fn suspect(self: &Arc<Self>) {
        let sentinel = Arc::clone(self);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = sentinel.refresh(MIN_REFRESH_GAP).await {
                    tracing::debug!(backend = BACKEND, %error, "asking the sentinels for the master failed");
                }
            });
        }
    }

    /// Asks the sentinels for the master (unless they were asked less than
    /// `gap` ago) and moves to it if it changed; returns whether it did.
    async fn refresh(&self, gap: Duration) -> Result<bool, StateError> {
        let mut asked = self.asked.lock().await;
        if asked.is_some_and(|at| at.elapsed() < gap) {
            return Ok(false);
        }
        *asked = Some(Instant::now());
        let address = self.finder.ask().await?;
        if self.current.read().address == address {
            return Ok(false);
        }
        let master = self.finder.connect(address).await?;
        let to = format!("{}:{}", master.address.0, master.address.1);
        let left = std::mem::replace(&mut *self.current.write(), master);
        tracing::info!(
            backend = BACKEND,
            master = %self.finder.master_name,
            from = %format!("{}:{}", left.address.0, left.address.1),
            %to,
            "the sentinels name a new master: following it"
        );
        Ok(true)
    }
}

impl Finder {
    /// The master's address, from the first sentinel that knows it.
    async fn ask(&self) -> Result<(String, u16), StateError> {
        let timeout = self.config.connect_timeout();
        let mut answering = self.answering.lock().await;
        let mut last_error = None;
        // The sentinel that answered last first, then each in order.
        let cached = answering.take();
        let candidates = cached.into_iter().map(Ok).chain(self.sentinels.iter().map(Err));
        for candidate in candidates {
            let asked = async {
                let mut connection = match candidate {
                    Ok(connection) => connection,
                    Err(info) => {
                        let client = Client::open(info.clone()).map_err(|e| from_redis("connect", timeout, e))?;
                        within(timeout, client.get_multiplexed_async_connection()).await?
                    }
                };
                let mut question = redis::cmd("SENTINEL");
                question.arg("get-master-addr-by-name").arg(&self.master_name);
                let reply = within(timeout, question.query_async::<Value>(&mut connection)).await?;
                Ok::<_, StateError>((connection, reply))
            };
            let (connection, reply) = match asked.await {
                Ok(answer) => answer,
                Err(error) => {
                    last_error = Some(error);
                    continue;
                }
            };
            let address = master_address(&reply);
            *answering = Some(connection);
            return address.ok_or_else(|| {
                StateError::failed(
                    BACKEND,
                    format!("connect: the sentinels know no master named {:?}", self.master_name),
                    false,
                )
            });
        }
        Err(last_error.unwrap_or_else(|| StateError::failed(BACKEND, "connect: no sentinel configured", false)))
    }

    /// Connects to the node at `address` and checks that it is a master.
    async fn connect(&self, address: (String, u16)) -> Result<Master, StateError> {
        let addr = match self.template.addr() {
            ConnectionAddr::TcpTls { insecure, tls_params, .. } => ConnectionAddr::TcpTls {
                host: address.0.clone(),
                port: address.1,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(address.0.clone(), address.1),
        };
        let (client, manager) = open_manager(&self.config, self.template.clone().set_addr(addr)).await?;
        let timeout = self.config.command_timeout();
        let role = within(timeout, redis::cmd("ROLE").query_async::<Value>(&mut manager.clone())).await?;
        if !is_master(&role) {
            return Err(StateError::failed(
                BACKEND,
                format!("connect: the node the sentinels name as {:?} is not a master (yet)", self.master_name),
                true,
            ));
        }
        Ok(Master { address, client, manager })
    }
}

/// `call`'s outcome within `timeout`, as the contract's error.
async fn within<T>(timeout: Duration, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, StateError> {
    match tokio::time::timeout(timeout, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(from_redis("connect", timeout, e)),
        Err(_) => Err(StateError::timed_out("connect", timeout)),
    }
}

/// `host` and `port` from a `SENTINEL get-master-addr-by-name` reply.
fn master_address(reply: &Value) -> Option<(String, u16)> {
    let Value::Array(items) = reply else { return None };
    let text = |value: &Value| match value {
        Value::BulkString(bytes) => String::from_utf8(bytes.clone()).ok(),
        Value::SimpleString(text) => Some(text.clone()),
        _ => None,
    };
    let [host, port] = items.as_slice() else { return None };
    Some((text(host)?, text(port)?.parse().ok()?))
}

/// Whether a `ROLE` reply says master.
fn is_master(role: &Value) -> bool {
    let Value::Array(items) = role else { return false };
    matches!(items.first(), Some(Value::BulkString(bytes)) if bytes == b"master")
        || matches!(items.first(), Some(Value::SimpleString(text)) if text == "master")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_read() {
        let bulk = |text: &str| Value::BulkString(text.as_bytes().to_vec());
        assert_eq!(
            master_address(&Value::Array(vec![bulk("127.0.0.1"), bulk("6380")])),
            Some(("127.0.0.1".into(), 6380))
        );
        assert_eq!(master_address(&Value::Nil), None);
        assert_eq!(master_address(&Value::Array(vec![bulk("h"), bulk("port")])), None);
        assert!(is_master(&Value::Array(vec![bulk("master"), Value::Int(0), Value::Array(vec![])])));
        assert!(!is_master(&Value::Array(vec![bulk("slave"), bulk("h"), Value::Int(1)])));
    }
}
