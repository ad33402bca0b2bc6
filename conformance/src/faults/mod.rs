//! Faults: the kit under network faults. A test that can reach its
//! backend's server over TCP gives the kit a [`FaultTarget`] (the server's
//! address, and how to connect the backend to another address); the fault
//! properties then put a [`FaultProxy`] in between and play a
//! [`schedule`] of faults while clients run.

mod proxy;

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use state_api::{Backend, Result};

pub use self::proxy::{Fault, FaultProxy, ProxyStats};

type Connect = dyn Fn(SocketAddr) -> Pin<Box<dyn Future<Output = Result<Backend>> + Send>> + Send + Sync;

/// How the kit reaches a backend through its fault proxy: the server's
/// address and a connector that builds the same backend against another
/// address (the proxy's). The connector should configure short timeouts
/// (a few hundred milliseconds): operations caught in a fault must give up
/// while the schedule plays.
#[derive(Clone)]
pub struct FaultTarget {
    upstream: SocketAddr,
    connect: Arc<Connect>,
}

impl FaultTarget {
    /// A target for the server at `upstream`; `connect(address)` builds the
    /// backend against `address` instead.
    pub fn new<F, Fut>(upstream: SocketAddr, connect: F) -> FaultTarget
    where
        F: Fn(SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Backend>> + Send + 'static,
    {
        FaultTarget { upstream, connect: Arc::new(move |address| Box::pin(connect(address))) }
    }

    /// The same target with every backend it connects passed through
    /// `wrap` (the kit's fault mutants wrap a real backend this way).
    pub fn wrapped(self, wrap: impl Fn(Backend) -> Backend + Send + Sync + 'static) -> FaultTarget {
        let inner = Arc::clone(&self.connect);
        let wrap = Arc::new(wrap);
        FaultTarget {
            upstream: self.upstream,
            connect: Arc::new(move |address| {
                let (inner, wrap) = (Arc::clone(&inner), Arc::clone(&wrap));
                Box::pin(async move { inner(address).await.map(|backend| wrap(backend)) })
            }),
        }
    }

    /// The server's address.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// A proxy in front of the server and the backend connected through it.
    ///
    /// # Errors
    /// When the proxy cannot bind or the backend cannot connect.
    pub async fn through_proxy(&self) -> std::result::Result<(FaultProxy, Backend), String> {
        let proxy = FaultProxy::start(self.upstream).await.map_err(|e| format!("cannot start the fault proxy: {e}"))?;
        let backend = (self.connect)(proxy.address())
            .await
            .map_err(|e| format!("cannot connect the backend through the fault proxy: {e}"))?;
        Ok((proxy, backend))
    }
}

impl fmt::Debug for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultTarget").field("upstream", &self.upstream).finish_non_exhaustive()
    }
}

/// One step of a fault schedule: a fault held for a while, and whether
/// open connections are reset as it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// The fault.
    pub fault: Fault,
    /// How long it lasts.
    pub lasts: Duration,
    /// Whether open connections are reset as the phase starts.
    pub reset: bool,
}

impl Phase {
    const fn new(fault: Fault, lasts_ms: u64, reset: bool) -> Phase {
        Phase { fault, lasts: Duration::from_millis(lasts_ms), reset }
    }
}

/// The kit's fault schedule: every fault kind once, each followed by a
/// healthy spell in which the store must recover.
pub fn schedule() -> Vec<Phase> {
    let healthy = Phase::new(Fault::None, 250, false);
    let faults = [
        Phase::new(Fault::Latency { base: Duration::from_millis(5), jitter: Duration::from_millis(40) }, 400, false),
        Phase::new(Fault::None, 150, true),
        Phase::new(Fault::CutReply { after: 3 }, 300, false),
        Phase::new(Fault::Blackhole, 700, false),
        Phase::new(Fault::Bandwidth { bytes_per_sec: 4_000 }, 400, false),
        Phase::new(Fault::Refuse, 300, true),
    ];
    faults.into_iter().flat_map(|phase| [phase, healthy]).collect()
}
