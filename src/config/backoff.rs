//! [`Backoff`]: how the open duration grows over consecutive trips.

use std::time::Duration;

/// How the open duration grows when the breaker trips again and again.
///
/// The `k`-th consecutive trip (counting from 0, reset when the breaker closes, or with
/// [`reset_after`](Backoff::reset_after) once it has stayed closed that long) opens
/// for `open_duration * multiplier^k` ([`exponential`](Backoff::exponential)) or
/// `open_duration * (k + 1)` ([`linear`](Backoff::linear), Envoy's base ejection time
/// times the ejection count), scaled by a random factor in `[1 - jitter, 1 + jitter]`
/// so a fleet of breakers does not probe in lockstep, and never for longer than `max`.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::{Backoff, Config};
///
/// let config = Config::builder()
///     .open_duration(Duration::from_secs(5))
///     .open_backoff(Backoff::exponential(2.0, Duration::from_secs(300)).jitter(0.1))
///     .build()?;
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub(crate) multiplier: f64,
    pub(crate) max: Option<Duration>,
    pub(crate) jitter: f64,
    pub(crate) reset_after: Option<Duration>,
    /// Grows by `open_duration` per trip instead of by `multiplier`.
    pub(crate) linear: bool,
}

impl Backoff {
    /// Every trip opens for exactly `open_duration` (the default).
    pub fn constant() -> Backoff {
        Backoff {
            multiplier: 1.0,
            max: None,
            jitter: 0.0,
            reset_after: None,
            linear: false,
        }
    }

    /// Each consecutive trip multiplies the open duration by `multiplier`, up to `max`.
    pub fn exponential(multiplier: f64, max: Duration) -> Backoff {
        Backoff {
            multiplier,
            max: Some(max),
            jitter: 0.0,
            reset_after: None,
            linear: false,
        }
    }

    /// Each consecutive trip opens for `open_duration` longer than the one before, up
    /// to `max`: the `k`-th (from 0) for `open_duration * (k + 1)`, as Envoy's outlier
    /// detection ejects a host for its base ejection time times its ejection count.
    /// With [`reset_after`](Backoff::reset_after), the count survives short recoveries.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_circuit_breaker::{Backoff, Config};
    ///
    /// // 30 s, 60 s, 90 s, ... up to 5 minutes; forgotten after 10 healthy minutes.
    /// let config = Config::builder()
    ///     .open_duration(Duration::from_secs(30))
    ///     .open_backoff(Backoff::linear(Duration::from_secs(300)).reset_after(Duration::from_secs(600)))
    ///     .build()?;
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    pub fn linear(max: Duration) -> Backoff {
        Backoff {
            multiplier: 1.0,
            max: Some(max),
            jitter: 0.0,
            reset_after: None,
            linear: true,
        }
    }

    /// Whether the open duration grows over consecutive trips.
    pub(crate) fn grows(&self) -> bool {
        self.linear || self.multiplier > 1.0
    }

    /// Randomizes each open duration by up to `±fraction` of it (`0.0 <= fraction < 1.0`,
    /// so an open period never shrinks to nothing).
    pub fn jitter(self, fraction: f64) -> Backoff {
        Backoff {
            jitter: fraction,
            ..self
        }
    }

    /// Keeps counting trips across a close, and forgets them only once the breaker has
    /// stayed closed for `healthy_for`: a backend that recovers and fails again soon
    /// after opens for longer each time (as Envoy grows an outlier's ejection time),
    /// instead of starting over at `open_duration`. By default every close forgets
    /// the trips. A manual [`reset`](crate::CircuitBreaker::reset) always does.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_circuit_breaker::{Backoff, Config};
    ///
    /// let config = Config::builder()
    ///     .open_duration(Duration::from_secs(5))
    ///     .open_backoff(
    ///         Backoff::exponential(2.0, Duration::from_secs(300))
    ///             .reset_after(Duration::from_secs(600)),
    ///     )
    ///     .build()?;
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    pub fn reset_after(self, healthy_for: Duration) -> Backoff {
        Backoff {
            reset_after: Some(healthy_for),
            ..self
        }
    }

    /// The open duration of the `trip`-th consecutive trip (0-based) before jitter.
    pub(crate) fn nominal(&self, base: Duration, trip: u32) -> Duration {
        if !self.grows() || trip == 0 {
            return base;
        }
        let max = self.max.unwrap_or(base);
        if self.linear {
            return base.saturating_mul(trip.saturating_add(1)).min(max);
        }
        let exponent = i32::try_from(trip).unwrap_or(i32::MAX);
        let scaled = base.as_secs_f64() * self.multiplier.powi(exponent);
        if !scaled.is_finite() || scaled >= max.as_secs_f64() {
            max
        } else {
            Duration::from_secs_f64(scaled)
        }
    }

    /// The open duration of the `trip`-th consecutive trip, with jitter drawn from
    /// `unit`, a uniform sample in `[0, 1)`.
    pub(crate) fn open_duration(&self, base: Duration, trip: u32, unit: f64) -> Duration {
        let nominal = self.nominal(base, trip);
        if self.jitter == 0.0 {
            return nominal;
        }
        let factor = 1.0 + self.jitter * (2.0 * unit - 1.0);
        let jittered =
            Duration::try_from_secs_f64(nominal.as_secs_f64() * factor).unwrap_or(nominal);
        match self.max {
            Some(max) => jittered.min(max),
            None => jittered,
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::constant()
    }
}
