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

/// A duration in whole nanoseconds, saturating at `u64::MAX`.
pub(crate) fn to_nanos(duration: Duration) -> Nanos {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}
