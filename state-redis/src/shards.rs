//! Sharded pub/sub in a cluster: each release channel is subscribed
//! (`SSUBSCRIBE`) on the master that serves its slot, where the release
//! script's `SPUBLISH` is delivered.
//!
//! One RESP3 connection per master the feed needs, each tagging its pushes
//! with its address, so the reader knows which node a push came from. The
//! owner of a channel's slot is found the way Redis tells clients: a node
//! that does not serve it answers `MOVED slot host:port`, and the
//! subscription follows. A channel's last known owner is remembered, so
//! subscribing again goes straight there.
//!
//! What the feed must hear about, and does, per node:
//! - the server dropping a subscription on its own (an `sunsubscribe` push
//!   when the slot moved to another master): that channel is withdrawn
//!   and subscribed again where `MOVED` now points;
//! - the node's connection closing (a disconnection push): every channel
//!   placed there is withdrawn and subscribed again, on the node that
//!   serves its slot once the cluster has failed over.
//!
//! (The client library's own cluster subscriptions are not used: after a
//! slot map refresh it resubscribes each node's sharded channels in one
//! `SSUBSCRIBE` of several slots, which Redis refuses, and replies then
//! go to the wrong requests.)

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{AsyncPushSender, MultiplexedConnection, SendError};
use redis::{
    AsyncConnectionConfig, Client, ConnectionAddr, ConnectionInfo, ProtocolVersion, PushInfo, PushKind, Value,
};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// A node, by host and port.
pub(crate) type Address = (String, u16);

/// Pushes, each with the address of the node that sent it.
pub(crate) type Pushes = UnboundedReceiver<(Address, PushInfo)>;

/// How many `MOVED` answers one subscription follows before giving up
/// (to be tried again later): a slot moves once at a time.
const MAX_REDIRECTS: usize = 3;

/// The sharded subscriptions of one feed.
pub(crate) struct Shards {
    /// The first seed: credentials, database and TLS settings for every
    /// node, with its address replaced.
    template: ConnectionInfo,
    seeds: Vec<Address>,
    /// Which seed to ask first when no node is connected.
    next_seed: usize,
    config: ConnectTimes,
    nodes: HashMap<Address, MultiplexedConnection>,
    /// Where each channel was last found served.
    owners: HashMap<String, Address>,
    /// Where each channel is subscribed, as the server confirmed.
    placed: HashMap<String, Address>,
    pushes: UnboundedSender<(Address, PushInfo)>,
}

#[derive(Clone, Copy)]
struct ConnectTimes {
    connect: Duration,
    response: Duration,
}

/// Forwards one node's pushes with its address.
struct Tagged {
    address: Address,
    pushes: UnboundedSender<(Address, PushInfo)>,
}

impl AsyncPushSender for Tagged {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        self.pushes.send((self.address.clone(), info)).map_err(|_| SendError)
    }
}

impl Shards {
    /// No connection yet: nodes are connected as channels need them.
    /// `None` without a seed.
    pub(crate) fn new(
        seeds: &[ConnectionInfo],
        connect_timeout: Duration,
        response_timeout: Duration,
    ) -> Option<(Shards, Pushes)> {
        let template = seeds.first()?.clone();
        let template =
            template.clone().set_redis_settings(template.redis_settings().clone().set_protocol(ProtocolVersion::RESP3));
        let seeds = seeds.iter().filter_map(|seed| address_of(seed.addr())).collect();
        let (pushes, received) = tokio::sync::mpsc::unbounded_channel();
        let config = ConnectTimes { connect: connect_timeout, response: response_timeout };
        let shards = Shards {
            template,
            seeds,
            next_seed: 0,
            config,
            nodes: HashMap::new(),
            owners: HashMap::new(),
            placed: HashMap::new(),
            pushes,
        };
        Some((shards, received))
    }

    /// Subscribes `channel` on the master serving its slot. `false` when it
    /// could not be confirmed now (no node answered, the slot is moving, or
    /// the reply was not this subscription's): the caller tries again later.
    pub(crate) async fn subscribe(&mut self, channel: &str) -> bool {
        let mut target = self.owners.get(channel).cloned();
        for _ in 0..=MAX_REDIRECTS {
            let Some(address) = target.take().or_else(|| self.any_node()) else { return false };
            let Some(mut connection) = self.node(&address).await else {
                self.owners.remove(channel);
                continue;
            };
            let mut command = redis::cmd("SSUBSCRIBE");
            command.arg(channel);
            match command.query_async::<Value>(&mut connection).await {
                Ok(Value::Push { kind: PushKind::SSubscribe, data }) if names(&data, channel) => {
                    self.owners.insert(channel.to_owned(), address.clone());
                    self.placed.insert(channel.to_owned(), address);
                    return true;
                }
                // Another push taken for this reply: the server dropped a
                // channel just as the request went out, and the client
                // took that for the answer. Every later reply on this
                // connection would answer the request before it, so the
                // connection is replaced.
                Ok(_) => {
                    self.reset(&address);
                    return false;
                }
                Err(error) => match error.redirect_node().and_then(|(node, _)| parse_address(node)) {
                    Some(owner) if matches!(error.kind(), redis::ErrorKind::Server(redis::ServerErrorKind::Moved)) => {
                        self.owners.insert(channel.to_owned(), owner.clone());
                        target = Some(owner);
                    }
                    // ASK (the slot is migrating) or any other refusal:
                    // later.
                    Some(_) => return false,
                    None => {
                        if error.is_unrecoverable_error() || error.is_io_error() || error.is_timeout() {
                            self.reset(&address);
                        }
                        self.owners.remove(channel);
                        return false;
                    }
                },
            }
        }
        false
    }

    /// Unsubscribes `channel` where it is subscribed.
    pub(crate) async fn unsubscribe(&mut self, channel: &str) {
        let Some(address) = self.placed.remove(channel) else { return };
        if let Some(connection) = self.nodes.get(&address) {
            let mut command = redis::cmd("SUNSUBSCRIBE");
            command.arg(channel);
            let _ = command.query_async::<Value>(&mut connection.clone()).await;
        }
    }

    /// `address` dropped `channel`: whether that was where it was
    /// subscribed (a drop of an earlier subscription elsewhere changes
    /// nothing).
    pub(crate) fn dropped(&mut self, address: &Address, channel: &str) -> bool {
        if self.placed.get(channel) == Some(address) {
            self.placed.remove(channel);
            return true;
        }
        false
    }

    /// `address`'s connection closed: the channels that were subscribed
    /// there.
    pub(crate) fn lost(&mut self, address: &Address) -> Vec<String> {
        self.nodes.remove(address);
        let channels: Vec<String> =
            self.placed.iter().filter(|(_, at)| *at == address).map(|(channel, _)| channel.clone()).collect();
        for channel in &channels {
            self.placed.remove(channel);
        }
        channels
    }

    /// Gives up the connection to `address`: closing it drops its
    /// subscriptions, so the reader is told as for a closed connection
    /// (its channels are withdrawn and subscribed again).
    fn reset(&mut self, address: &Address) {
        if self.nodes.remove(address).is_some() {
            let closed = PushInfo { kind: PushKind::Disconnection, data: Vec::new() };
            let _ = self.pushes.send((address.clone(), closed));
        }
    }

    /// A node to ask first: one already connected, else the seeds in turn.
    fn any_node(&mut self) -> Option<Address> {
        if let Some(address) = self.nodes.keys().next() {
            return Some(address.clone());
        }
        let seed = self.seeds.get(self.next_seed % self.seeds.len().max(1))?.clone();
        self.next_seed = self.next_seed.wrapping_add(1);
        Some(seed)
    }

    /// The connection to `address`, opened if needed.
    async fn node(&mut self, address: &Address) -> Option<MultiplexedConnection> {
        if let Some(connection) = self.nodes.get(address) {
            return Some(connection.clone());
        }
        let addr = match self.template.addr() {
            ConnectionAddr::TcpTls { insecure, tls_params, .. } => ConnectionAddr::TcpTls {
                host: address.0.clone(),
                port: address.1,
                insecure: *insecure,
                tls_params: tls_params.clone(),
            },
            _ => ConnectionAddr::Tcp(address.0.clone(), address.1),
        };
        let client = Client::open(self.template.clone().set_addr(addr)).ok()?;
        let tagged = Tagged { address: address.clone(), pushes: self.pushes.clone() };
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.config.connect))
            .set_response_timeout(Some(self.config.response))
            .set_push_sender(tagged);
        let connecting = client.get_multiplexed_async_connection_with_config(&config);
        let connection = tokio::time::timeout(self.config.connect, connecting).await.ok()?.ok()?;
        self.nodes.insert(address.clone(), connection.clone());
        Some(connection)
    }
}

/// Whether a subscription push's data names `channel`.
fn names(data: &[Value], channel: &str) -> bool {
    matches!(data.first(), Some(Value::BulkString(name)) if name.as_slice() == channel.as_bytes())
}

fn address_of(addr: &ConnectionAddr) -> Option<Address> {
    match addr {
        ConnectionAddr::Tcp(host, port) | ConnectionAddr::TcpTls { host, port, .. } => Some((host.clone(), *port)),
        _ => None,
    }
}

/// `host:port` (an IPv6 host in brackets or not) as an address.
fn parse_address(node: &str) -> Option<Address> {
    let (host, port) = node.rsplit_once(':')?;
    Some((host.trim_start_matches('[').trim_end_matches(']').to_owned(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_addresses_parse_with_and_without_brackets() {
        assert_eq!(parse_address("127.0.0.1:7001"), Some(("127.0.0.1".to_owned(), 7001)));
        assert_eq!(parse_address("[::1]:7001"), Some(("::1".to_owned(), 7001)));
        assert_eq!(parse_address("nowhere"), None);
    }
}
