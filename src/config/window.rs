//! [`Window`]: the sliding window over which rates are computed, and its size limits.

use std::time::Duration;

/// Largest accepted count window: bounds the memory a configuration can ask for.
pub const MAX_COUNT_WINDOW: u32 = 1 << 20;
/// Largest accepted number of buckets in a time window.
pub const MAX_TIME_BUCKETS: u32 = 3_600;

/// The sliding window over which failure and slow-call rates are computed.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::Window;
///
/// let last_100_calls = Window::count(100);
/// let last_minute = Window::time(Duration::from_secs(60));          // 20 buckets of 3 s
/// let fine_grained = Window::time(Duration::from_secs(60)).buckets(60); // 1 s buckets
/// # let _ = (last_100_calls, last_minute, fine_grained);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The last `n` recorded calls. Old outcomes fall out as new ones arrive.
    Count(u32),
    /// The calls of the last `length`, kept in `buckets` equal time buckets: each call
    /// costs O(1) and memory is O(buckets) whatever the call rate. Outcomes leave the
    /// window one bucket at a time.
    Time {
        /// How far back the window reaches.
        length: Duration,
        /// How many buckets the window is cut into.
        buckets: u32,
    },
}

impl Window {
    /// Default number of buckets of [`Window::time`].
    pub const DEFAULT_BUCKETS: u32 = 20;

    /// A window over the last `n` calls.
    pub fn count(n: u32) -> Window {
        Window::Count(n)
    }

    /// A window over the calls of the last `length`, in [`Window::DEFAULT_BUCKETS`] buckets.
    pub fn time(length: Duration) -> Window {
        Window::Time {
            length,
            buckets: Self::DEFAULT_BUCKETS,
        }
    }

    /// Sets the number of buckets of a time window (finer buckets slide more smoothly).
    /// No effect on a count window.
    pub fn buckets(self, buckets: u32) -> Window {
        match self {
            Window::Time { length, .. } => Window::Time { length, buckets },
            count @ Window::Count(_) => count,
        }
    }
}
