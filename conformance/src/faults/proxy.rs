//! A fault-injecting TCP proxy, in process and on loopback, between a
//! store's client and its server. The fault in force can change while
//! traffic flows; every connection consults it for each chunk it forwards.
//!
//! No packet is ever silently lost from the middle of a stream: TCP
//! delivers a stream whole or breaks the connection, and so does the proxy.
//! A black hole therefore holds bytes back (connections are accepted, and
//! nothing moves until it heals, when the held bytes arrive late, like
//! retransmissions after a partition), and a cut or a reset breaks the
//! connection.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often a held (black-holed) connection looks whether it healed.
const HOLD_POLL: Duration = Duration::from_millis(5);

/// The fault a proxy applies to its traffic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Bytes pass as they come.
    None,
    /// Every chunk, either way, waits `base` plus up to `jitter` more.
    Latency {
        /// The delay every chunk has.
        base: Duration,
        /// The most a chunk waits beyond `base`, drawn uniformly.
        jitter: Duration,
    },
    /// Connections are accepted, and bytes held back until the fault ends.
    Blackhole,
    /// Replies pass at most this many bytes per second.
    Bandwidth {
        /// The rate.
        bytes_per_sec: u64,
    },
    /// The next reply on each connection is cut after `after` bytes and
    /// the connection reset, in the middle of the reply.
    CutReply {
        /// Bytes of the reply that still arrive.
        after: usize,
    },
    /// New connections are reset as soon as they are accepted.
    Refuse,
}

/// What the proxy did, for reports.
#[derive(Debug, Default)]
pub struct ProxyStats {
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections the proxy broke (cut, reset, refused).
    pub broken: AtomicU64,
}

struct Control {
    fault: Mutex<Fault>,
    /// Bumped to break every open connection.
    generation: watch::Sender<u64>,
    stats: ProxyStats,
}

/// A running proxy; stops (breaking its connections) when dropped. It may
/// front several servers (the nodes of a cluster), one loopback port for
/// each, all under the same fault.
pub struct FaultProxy {
    addresses: Vec<SocketAddr>,
    control: Arc<Control>,
    tasks: Vec<JoinHandle<()>>,
}

impl FaultProxy {
    /// A proxy on a free loopback port forwarding to `upstream`.
    ///
    /// # Errors
    /// When no loopback port can be bound.
    pub async fn start(upstream: SocketAddr) -> io::Result<FaultProxy> {
        FaultProxy::start_each(&[upstream]).await
    }

    /// A proxy with a free loopback port for each of `upstreams`, in
    /// their order, all under one fault.
    ///
    /// # Errors
    /// When `upstreams` is empty or no loopback port can be bound.
    pub async fn start_each(upstreams: &[SocketAddr]) -> io::Result<FaultProxy> {
        if upstreams.is_empty() {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, "a fault proxy needs a server to forward to"));
        }
        let (generation, _) = watch::channel(0);
        let control = Arc::new(Control { fault: Mutex::new(Fault::None), generation, stats: ProxyStats::default() });
        let mut proxy = FaultProxy { addresses: Vec::new(), control, tasks: Vec::new() };
        for upstream in upstreams {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            proxy.addresses.push(listener.local_addr()?);
            proxy.tasks.push(tokio::spawn(accept_loop(listener, *upstream, Arc::clone(&proxy.control))));
        }
        Ok(proxy)
    }

    /// Where clients connect (for the first server).
    pub fn address(&self) -> SocketAddr {
        // Never empty: `start_each` refuses no servers.
        self.addresses.first().copied().unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Where clients connect, for each server in the order given.
    pub fn addresses(&self) -> &[SocketAddr] {
        &self.addresses
    }

    /// Applies `fault` from now on, to open and new connections.
    pub fn set(&self, fault: Fault) {
        *self.control.fault.lock() = fault;
    }

    /// The fault in force.
    pub fn fault(&self) -> Fault {
        *self.control.fault.lock()
    }

    /// Resets every open connection, as a broken network path does.
    pub fn reset_all(&self) {
        self.control.generation.send_modify(|g| *g += 1);
    }

    /// What the proxy did so far.
    pub fn stats(&self) -> &ProxyStats {
        &self.control.stats
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        self.reset_all();
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, control: Arc<Control>) {
    loop {
        let Ok((client, _)) = listener.accept().await else { continue };
        control.stats.connections.fetch_add(1, Ordering::Relaxed);
        if *control.fault.lock() == Fault::Refuse {
            control.stats.broken.fetch_add(1, Ordering::Relaxed);
            reset(client);
            continue;
        }
        tokio::spawn(serve(client, upstream, Arc::clone(&control)));
    }
}

/// Drops a connection with a reset (RST), not an orderly close.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Which way a pump forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Direction {
    Request,
    Reply,
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, control: Arc<Control>) {
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        reset(client);
        return;
    };
    let _ = (client.set_nodelay(true), server.set_nodelay(true));
    let mut generation = control.generation.subscribe();
    let broken = {
        let (mut client_read, mut client_write) = client.split();
        let (mut server_read, mut server_write) = server.split();
        let requests = pump(&mut client_read, &mut server_write, Direction::Request, &control);
        let replies = pump(&mut server_read, &mut client_write, Direction::Reply, &control);
        tokio::select! {
            _ = generation.changed() => true,
            broken = requests => broken,
            broken = replies => broken,
        }
    };
    if broken {
        control.stats.broken.fetch_add(1, Ordering::Relaxed);
        reset(client);
        reset(server);
    }
}

/// Forwards `from` to `to` under the fault in force. Returns `true` when
/// the proxy is to break the connection, `false` when a side closed it.
async fn pump(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    direction: Direction,
    control: &Control,
) -> bool {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let Ok(read) = from.read(&mut buffer).await else { return false };
        if read == 0 {
            let _ = to.shutdown().await;
            return false;
        }
        let mut chunk = &buffer[..read];
        loop {
            let fault = *control.fault.lock();
            match fault {
                Fault::Blackhole => {
                    tokio::time::sleep(HOLD_POLL).await;
                    continue;
                }
                Fault::Latency { base, jitter } => {
                    tokio::time::sleep(base + jitter.mul_f64(fastrand::f64())).await;
                }
                Fault::Bandwidth { bytes_per_sec } if direction == Direction::Reply => {
                    // A twentieth of the rate every 50 ms.
                    let slice = usize::try_from((bytes_per_sec / 20).max(1)).unwrap_or(usize::MAX).min(chunk.len());
                    if to.write_all(&chunk[..slice]).await.is_err() {
                        return false;
                    }
                    chunk = &chunk[slice..];
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if chunk.is_empty() {
                        break;
                    }
                    continue;
                }
                Fault::CutReply { after } if direction == Direction::Reply => {
                    let _ = to.write_all(&chunk[..after.min(chunk.len())]).await;
                    let _ = to.flush().await;
                    return true;
                }
                _ => {}
            }
            break;
        }
        if !chunk.is_empty() && to.write_all(chunk).await.is_err() {
            return false;
        }
    }
}
