//! The expiry clock: this client's wall clock, in whole milliseconds.
//!
//! DynamoDB has no clock that conditions can read, so every request carries
//! the client's "now" (`:now`) and each deadline is an absolute epoch
//! millisecond stored on the item (`exp`). Expiry is therefore off by the
//! skew between the clients' clocks, which the store declares as
//! [`ExpiryClock::Client`](state_api::ExpiryClock::Client).
//!
//! Both the deadline and "now" are truncated to the millisecond, so a TTL of
//! `d` ms lasts between `d - 1` and `d` ms: within the declared 1 ms
//! resolution, and a reported remaining TTL never exceeds the requested one.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use state_api::driver::Ttl;

/// The `exp` of an entry that never expires: 9999-12-31T23:59:59.999Z.
///
/// Storing a far-future deadline instead of leaving `exp` out keeps every
/// liveness condition one comparison (`exp > :now`) and lets `increment`
/// keep a counter's deadline with `if_not_exists`, whether it has one or
/// not. No real deadline reaches it: TTLs are at most ten years.
pub(crate) const NEVER_MS: u64 = 253_402_300_799_999;

/// The `ttl` (epoch seconds, for DynamoDB's reaper) of an entry that never
/// expires; see [`NEVER_MS`]. Small enough for any reaper's arithmetic.
pub(crate) const NEVER_SECONDS: u64 = NEVER_MS / 1000;

/// Milliseconds since the Unix epoch on this client's wall clock.
///
/// A clock set before 1970 reads as 0, which expires nothing early: every
/// deadline is then in the future.
pub(crate) fn now_ms() -> u64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// The stored deadline of a write at `now` with `ttl`: `(exp, ttl seconds)`.
pub(crate) fn deadline(now: u64, ttl: Option<Ttl>) -> Deadline {
    match ttl {
        None => Deadline { exp_ms: NEVER_MS, reap_at_seconds: NEVER_SECONDS },
        Some(ttl) => Deadline::at(now.saturating_add(ttl.millis())),
    }
}

/// When an entry or a lease expires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Deadline {
    /// Epoch milliseconds; live while `exp_ms > now`.
    pub(crate) exp_ms: u64,
    /// Epoch seconds, rounded up, for DynamoDB's TTL reaper, which only
    /// frees storage: it may run days late and is never relied on.
    pub(crate) reap_at_seconds: u64,
}

impl Deadline {
    pub(crate) fn at(exp_ms: u64) -> Deadline {
        Deadline { exp_ms, reap_at_seconds: exp_ms.div_ceil(1000) }
    }

    /// The deadline of a stored `exp`, [`NEVER_MS`] included.
    pub(crate) fn stored(exp_ms: u64) -> Deadline {
        if exp_ms == NEVER_MS { Deadline { exp_ms, reap_at_seconds: NEVER_SECONDS } } else { Deadline::at(exp_ms) }
    }
}

/// The TTL left at `now` for an entry expiring at `exp_ms`: `None` if it
/// never expires. For a live entry (`exp_ms > now`) it is at least 1 ms.
pub(crate) fn remaining(exp_ms: u64, now: u64) -> Option<Duration> {
    (exp_ms < NEVER_MS).then(|| Duration::from_millis(exp_ms.saturating_sub(now).max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ttl_never_expires_and_reports_none() {
        let d = deadline(1_000, None);
        assert_eq!(d.exp_ms, NEVER_MS);
        assert_eq!(remaining(d.exp_ms, 1_000), None);
    }

    #[test]
    fn a_ttl_is_kept_in_milliseconds_and_reaped_in_rounded_up_seconds() {
        let d = deadline(1_000_400, Ttl::new(Duration::from_micros(250_500)).ok());
        assert_eq!(d.exp_ms, 1_000_651);
        assert_eq!(d.reap_at_seconds, 1_001);
        assert_eq!(remaining(d.exp_ms, 1_000_400), Some(Duration::from_millis(251)));
        assert_eq!(remaining(d.exp_ms, 1_000_650), Some(Duration::from_millis(1)));
    }

    #[test]
    fn the_wall_clock_is_after_2020() {
        assert!(now_ms() > 1_577_836_800_000);
    }
}
