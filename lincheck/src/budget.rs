//! How much work a check may do before it gives up with "unknown".

use std::fmt;
use std::time::{Duration, Instant};

/// Which limit a check ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The wall-clock time limit of [`CheckOptions::time_limit`](super::CheckOptions::time_limit).
    Time(Duration),
    /// The search-step limit of [`CheckOptions::step_limit`](super::CheckOptions::step_limit).
    Steps(u64),
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Time(limit) => write!(f, "time limit of {limit:?}"),
            Limit::Steps(limit) => write!(f, "limit of {limit} search steps"),
        }
    }
}

/// Reading the clock costs far more than one search step, so the deadline
/// is only compared every this many steps.
const STEPS_PER_CLOCK_READ: u32 = 1024;

/// The work left for one check, shared by all its searches.
#[derive(Debug)]
pub(crate) struct Budget {
    deadline: Option<(Instant, Duration)>,
    steps: Option<(u64, u64)>,
    until_clock_read: u32,
    exhausted: Option<Limit>,
}

impl Budget {
    /// A budget of `time` from now and `steps` search steps, each unlimited
    /// when `None`.
    pub(crate) fn new(time: Option<Duration>, steps: Option<u64>) -> Self {
        Budget {
            // A limit too large to add to the current instant is no limit.
            deadline: time.and_then(|limit| Some((Instant::now().checked_add(limit)?, limit))),
            steps: steps.map(|limit| (limit, limit)),
            until_clock_read: STEPS_PER_CLOCK_READ,
            exhausted: None,
        }
    }

    /// Spends one search step.
    ///
    /// # Errors
    ///
    /// The limit that is exceeded, from the first step over it on.
    pub(crate) fn spend(&mut self) -> Result<(), Limit> {
        if let Some(limit) = self.exhausted {
            return Err(limit);
        }
        if let Some((left, limit)) = &mut self.steps {
            if *left == 0 {
                return Err(*self.exhausted.insert(Limit::Steps(*limit)));
            }
            *left -= 1;
        }
        self.until_clock_read -= 1;
        if self.until_clock_read == 0 {
            self.until_clock_read = STEPS_PER_CLOCK_READ;
            if let Some((deadline, limit)) = self.deadline
                && Instant::now() >= deadline
            {
                return Err(*self.exhausted.insert(Limit::Time(limit)));
            }
        }
        Ok(())
    }
}
