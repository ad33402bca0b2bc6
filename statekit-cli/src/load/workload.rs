//! The workloads: what applications really do with a state store.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use statekit::{Backend, Condition, EpochMillis, Key, PutOutcome, StateError};

/// One workload of the load report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// `check_and_set` on fresh keys: deduplication marks.
    Dedup,
    /// Read then `compare_and_swap` on one hot key, retried on conflict:
    /// optimistic increments under contention. One op = one successful
    /// increment, however many attempts it took.
    HotKeyCas,
    /// 95 % `get`, 5 % `set` over 1000 keys.
    ReadHeavy,
    /// Atomic `increment` over 100 counters.
    Counter,
    /// Contenders passing one lock around: acquire, release.
    LockHandoff,
    /// A schedule fed and drained by the same workers: each op schedules an
    /// item due now, claims one due item (waiting for one if all are taken)
    /// and completes it.
    ScheduleClaim,
}

impl Workload {
    /// Every workload, in report order.
    pub const ALL: [Workload; 6] = [
        Workload::Dedup,
        Workload::HotKeyCas,
        Workload::ReadHeavy,
        Workload::Counter,
        Workload::LockHandoff,
        Workload::ScheduleClaim,
    ];

    /// The workload's name.
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Dedup => "dedup",
            Workload::HotKeyCas => "hot-key-cas",
            Workload::ReadHeavy => "read-heavy",
            Workload::Counter => "counter",
            Workload::LockHandoff => "lock-handoff",
            Workload::ScheduleClaim => "schedule-claim",
        }
    }

    /// Prepares the keys a workload reads.
    ///
    /// # Errors
    /// The backend's error.
    pub async fn prepare(&self, backend: &Backend, space: &str) -> Result<(), StateError> {
        if *self == Workload::ReadHeavy {
            for n in 0..1000 {
                backend.store.set(&Key::new(space, &format!("k{n}"))?, "initial value".into(), None).await?;
            }
        }
        Ok(())
    }

    /// Runs one operation of the workload as `task`'s `n`th.
    ///
    /// # Errors
    /// The backend's error.
    pub async fn once(&self, backend: &Backend, space: &str, task: usize, n: u64) -> Result<(), StateError> {
        let store = backend.store.as_ref();
        match self {
            Workload::Dedup => {
                store.check_and_set(&Key::new(space, &format!("m{task}-{n}"))?, "seen".into(), None).await?;
            }
            Workload::HotKeyCas => {
                let key = Key::new(space, "hot")?;
                let mut current = store.get_versioned(&key).await?;
                loop {
                    let outcome = match &current {
                        None => store.put(&key, "1".into(), Condition::IfAbsent, None).await?,
                        Some((value, version)) => {
                            let next =
                                std::str::from_utf8(value).ok().and_then(|t| t.parse::<u64>().ok()).unwrap_or(0) + 1;
                            store.compare_and_swap(&key, *version, next.to_string().into(), None).await?
                        }
                    };
                    match outcome {
                        PutOutcome::Written(_) => break,
                        PutOutcome::Rejected(entry) => current = entry.map(|e| (e.value, e.version)),
                    }
                }
            }
            Workload::ReadHeavy => {
                let key = Key::new(space, &format!("k{}", fastrand::u32(..1000)))?;
                if fastrand::u8(..100) < 95 {
                    store.get(&key).await?;
                } else {
                    store.set(&key, "updated value".into(), None).await?;
                }
            }
            Workload::Counter => {
                store.increment(&Key::new(space, &format!("c{}", fastrand::u32(..100)))?, 1, None).await?;
            }
            Workload::LockHandoff => {
                let lease = backend.locks.acquire(space, Duration::from_secs(10), Duration::from_secs(30)).await?;
                backend.locks.release(&lease).await?;
            }
            Workload::ScheduleClaim => {
                let schedules = backend.schedules.as_ref();
                let now = EpochMillis::now();
                schedules.schedule(&Key::new(space, &format!("j{task}-{n}"))?, now, "job".into()).await?;
                loop {
                    if let Some(claim) =
                        schedules.claim(space, EpochMillis::now(), 1, Duration::from_secs(30)).await?.pop()
                    {
                        schedules.complete(&claim).await?;
                        break;
                    }
                    // Every due item is claimed by another worker: there
                    // are as many items as workers have scheduled, so one
                    // is about to be.
                    tokio::task::yield_now().await;
                }
            }
        }
        Ok(())
    }
}

impl FromStr for Workload {
    type Err = String;

    fn from_str(text: &str) -> Result<Workload, String> {
        Workload::ALL.into_iter().find(|w| w.name() == text).ok_or_else(|| {
            let names: Vec<&str> = Workload::ALL.iter().map(Workload::name).collect();
            format!("unknown workload {text:?}; known: {}", names.join(", "))
        })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
