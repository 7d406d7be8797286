//! Time as the breaker sees it.
//!
//! Every reading goes through [`tokio::time::Instant`], so a test runtime with paused time
//! (`#[tokio::test(start_paused = true)]`, `tokio::time::advance`) drives the breaker
//! exactly like a real clock would. Readings are stored as nanoseconds since the breaker
//! was created, which fits in one atomic word.

use std::time::Duration;
use tokio::time::Instant;

/// A point in time: nanoseconds since the breaker's origin.
pub(crate) type Nanos = u64;

/// The breaker's clock: an origin plus conversions between [`Instant`] and [`Nanos`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose origin is now.
    pub(crate) fn new() -> Self {
        Self {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds elapsed since the origin, saturating after ~584 years.
    #[inline]
    pub(crate) fn now(&self) -> Nanos {
        to_nanos(Instant::now().saturating_duration_since(self.origin))
    }

    /// The [`Instant`] that a stored reading stands for.
    pub(crate) fn instant(&self, at: Nanos) -> Instant {
        self.origin + Duration::from_nanos(at)
    }
}

/// A duration in whole nanoseconds, saturating at `u64::MAX`. Computed in `u64`
/// rather than through `Duration::as_nanos`'s `u128`: it runs on every clock read.
#[inline]
pub(crate) fn to_nanos(duration: Duration) -> Nanos {
    duration
        .as_secs()
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::from(duration.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn to_nanos_is_exact_below_the_limit_and_saturates_above() {
        assert_eq!(to_nanos(Duration::from_nanos(u64::MAX)), u64::MAX);
        assert_eq!(to_nanos(Duration::from_nanos(u64::MAX - 1)), u64::MAX - 1);
        assert_eq!(to_nanos(Duration::new(3, 7)), 3_000_000_007);
        assert_eq!(to_nanos(Duration::MAX), u64::MAX);
        assert_eq!(
            to_nanos(Duration::new(u64::MAX / 1_000_000_000, 999_999_999)),
            u64::MAX
        );
    }
}
