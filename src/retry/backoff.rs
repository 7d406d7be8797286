//! Exponential backoff with jitter: the wait before each retry.

use std::time::Duration;

/// The backoff settings of a [`RetryPolicy`](super::RetryPolicy).
#[derive(Debug, Clone, Copy)]
pub(super) struct Backoff {
    pub(super) base_delay: Duration,
    pub(super) max_delay: Duration,
    pub(super) multiplier: f64,
    pub(super) jitter: f64,
}

impl Backoff {
    /// The wait before retry number `retry` (0-based), with jitter drawn from `unit`, a
    /// uniform sample in `[0, 1)`.
    pub(super) fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let scaled = self.base_delay.as_secs_f64() * self.multiplier.powi(exponent);
        let nominal = match Duration::try_from_secs_f64(scaled) {
            Ok(nominal) if nominal < self.max_delay => nominal,
            _ => self.max_delay,
        };
        shrink(nominal, 1.0 - self.jitter * unit)
    }
}

/// `duration * factor` for a `factor` in `[0, 1]`, without the panics of
/// [`Duration::mul_f64`] near `Duration::MAX` (where f64 rounding overshoots).
pub(super) fn shrink(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .map_or(duration, |scaled| scaled.min(duration))
}
