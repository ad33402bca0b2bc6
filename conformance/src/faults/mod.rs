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

type Connect = dyn Fn(Vec<SocketAddr>) -> Pin<Box<dyn Future<Output = Result<Backend>> + Send>> + Send + Sync;

/// How the kit reaches a backend through its fault proxy: the server's
/// address and a connector that builds the same backend against another
/// address (the proxy's); or, for a store spread over servers (a
/// cluster), every server's address and a connector given the proxy's
/// address for each. The connector should configure short timeouts (a
/// few hundred milliseconds): operations caught in a fault must give up
/// while the schedule plays.
#[derive(Clone)]
pub struct FaultTarget {
    upstreams: Vec<SocketAddr>,
    connect: Arc<Connect>,
    server: Option<Arc<ServerControl>>,
}

type Action = dyn Fn() -> std::result::Result<(), String> + Send + Sync;

/// Control over the server process behind a [`FaultTarget`], for the
/// process faults: pause and resume it, kill it (SIGKILL) and start it
/// again on the same data. Only a test that started the server itself can
/// give one, and only when no other test shares that server.
pub struct ServerControl {
    pause: Box<Action>,
    resume: Box<Action>,
    crash_and_restart: Box<Action>,
}

impl ServerControl {
    /// A control from three blocking actions (the kit runs them off the
    /// async threads). What a crash may lose is the store's to declare
    /// ([`state_api::Capabilities::durability`]), not the test's.
    pub fn new(
        pause: impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static,
        resume: impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static,
        crash_and_restart: impl Fn() -> std::result::Result<(), String> + Send + Sync + 'static,
    ) -> ServerControl {
        ServerControl {
            pause: Box::new(pause),
            resume: Box::new(resume),
            crash_and_restart: Box::new(crash_and_restart),
        }
    }

    /// Freezes the server.
    ///
    /// # Errors
    /// When the test's action fails.
    pub async fn pause(self: &Arc<Self>) -> std::result::Result<(), String> {
        let control = Arc::clone(self);
        blocking(move || (control.pause)()).await
    }

    /// Lets a paused server run again.
    ///
    /// # Errors
    /// When the test's action fails.
    pub async fn resume(self: &Arc<Self>) -> std::result::Result<(), String> {
        let control = Arc::clone(self);
        blocking(move || (control.resume)()).await
    }

    /// Kills the server process and starts it again on the same data;
    /// returns once it accepts connections.
    ///
    /// # Errors
    /// When the test's action fails.
    pub async fn crash_and_restart(self: &Arc<Self>) -> std::result::Result<(), String> {
        let control = Arc::clone(self);
        blocking(move || (control.crash_and_restart)()).await
    }
}

async fn blocking(
    action: impl FnOnce() -> std::result::Result<(), String> + Send + 'static,
) -> std::result::Result<(), String> {
    tokio::task::spawn_blocking(action).await.map_err(|e| format!("the server action died: {e}"))?
}

impl FaultTarget {
    /// A target for the server at `upstream`; `connect(address)` builds the
    /// backend against `address` instead.
    pub fn new<F, Fut>(upstream: SocketAddr, connect: F) -> FaultTarget
    where
        F: Fn(SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Backend>> + Send + 'static,
    {
        let connect = Arc::new(connect);
        FaultTarget::spread(vec![upstream], move |addresses| {
            let connect = Arc::clone(&connect);
            async move {
                match addresses.first() {
                    Some(address) => connect(*address).await,
                    None => Err(state_api::StateError::invalid_argument("address", "no proxy address")),
                }
            }
        })
    }

    /// A target for a store spread over the servers at `upstreams` (the
    /// nodes of a cluster): the proxy fronts each with a port of its own,
    /// all under the same fault, and `connect(addresses)` builds the
    /// backend against those ports (in the order of `upstreams`). Making
    /// the servers tell clients about the proxy's ports instead of their
    /// own (a cluster's announced addresses) is the connector's job.
    pub fn spread<F, Fut>(upstreams: Vec<SocketAddr>, connect: F) -> FaultTarget
    where
        F: Fn(Vec<SocketAddr>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Backend>> + Send + 'static,
    {
        FaultTarget { upstreams, connect: Arc::new(move |addresses| Box::pin(connect(addresses))), server: None }
    }

    /// The same target with control over its server process, for the
    /// process faults.
    pub fn with_server(mut self, control: ServerControl) -> FaultTarget {
        self.server = Some(Arc::new(control));
        self
    }

    /// The server control, if the test gave one.
    pub fn server(&self) -> Option<&Arc<ServerControl>> {
        self.server.as_ref()
    }

    /// The same target with every backend it connects passed through
    /// `wrap` (the kit's fault mutants wrap a real backend this way).
    pub fn wrapped(self, wrap: impl Fn(Backend) -> Backend + Send + Sync + 'static) -> FaultTarget {
        let inner = Arc::clone(&self.connect);
        let wrap = Arc::new(wrap);
        FaultTarget {
            upstreams: self.upstreams,
            connect: Arc::new(move |addresses| {
                let (inner, wrap) = (Arc::clone(&inner), Arc::clone(&wrap));
                Box::pin(async move { inner(addresses).await.map(|backend| wrap(backend)) })
            }),
            server: self.server,
        }
    }

    /// The servers' addresses.
    pub fn upstreams(&self) -> &[SocketAddr] {
        &self.upstreams
    }

    /// A proxy in front of the server and the backend connected through it.
    ///
    /// # Errors
    /// When the proxy cannot bind or the backend cannot connect.
    pub async fn through_proxy(&self) -> std::result::Result<(FaultProxy, Backend), String> {
        let proxy =
            FaultProxy::start_each(&self.upstreams).await.map_err(|e| format!("cannot start the fault proxy: {e}"))?;
        let backend = (self.connect)(proxy.addresses().to_vec())
            .await
            .map_err(|e| format!("cannot connect the backend through the fault proxy: {e}"))?;
        Ok((proxy, backend))
    }
}

impl fmt::Debug for FaultTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultTarget").field("upstreams", &self.upstreams).finish_non_exhaustive()
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
