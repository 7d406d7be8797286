//! Configuration: trip rules, sliding windows, open duration and backoff, half-open probing.

use std::sync::Arc;
use std::time::Duration;

use crate::ConfigError;

/// Largest accepted count window: bounds the memory a configuration can ask for.
pub const MAX_COUNT_WINDOW: u32 = 1 << 20;
/// Largest accepted number of buckets in a time window.
pub const MAX_TIME_BUCKETS: u32 = 3_600;
/// Largest accepted `half_open_permits` / `half_open_successes` (they live in 16 bits of
/// the breaker's atomic state word).
pub const MAX_HALF_OPEN: u32 = u16::MAX as u32;

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

    fn validate(self) -> Result<(), ConfigError> {
        match self {
            Window::Count(n) if n == 0 || n > MAX_COUNT_WINDOW => Err(ConfigError::invalid(
                "sliding_window",
                self,
                "a count window holds 1..=1048576 calls",
            )),
            Window::Time { length, .. } if length.is_zero() => Err(ConfigError::invalid(
                "sliding_window",
                self,
                "a time window must be longer than zero",
            )),
            Window::Time { buckets, .. } if buckets == 0 || buckets > MAX_TIME_BUCKETS => Err(
                ConfigError::invalid("sliding_window", self, "a time window has 1..=3600 buckets"),
            ),
            Window::Time { length, buckets } if length.as_nanos() < u128::from(buckets) => {
                Err(ConfigError::invalid(
                    "sliding_window",
                    self,
                    "each bucket must last at least one nanosecond",
                ))
            }
            _ => Ok(()),
        }
    }
}

/// How the open duration grows when the breaker trips again and again.
///
/// The `k`-th consecutive trip (counting from 0, reset when the breaker closes) opens
/// for `open_duration * multiplier^k`, scaled by a random factor in
/// `[1 - jitter, 1 + jitter]` so a fleet of breakers does not probe in lockstep, and
/// never for longer than `max`.
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
}

impl Backoff {
    /// Every trip opens for exactly `open_duration` (the default).
    pub fn constant() -> Backoff {
        Backoff {
            multiplier: 1.0,
            max: None,
            jitter: 0.0,
        }
    }

    /// Each consecutive trip multiplies the open duration by `multiplier`, up to `max`.
    pub fn exponential(multiplier: f64, max: Duration) -> Backoff {
        Backoff {
            multiplier,
            max: Some(max),
            jitter: 0.0,
        }
    }

    /// Randomizes each open duration by up to `±fraction` of it (`0.0 <= fraction < 1.0`,
    /// so an open period never shrinks to nothing).
    pub fn jitter(self, fraction: f64) -> Backoff {
        Backoff {
            jitter: fraction,
            ..self
        }
    }

    /// The open duration of the `trip`-th consecutive trip (0-based) before jitter.
    pub(crate) fn nominal(&self, base: Duration, trip: u32) -> Duration {
        if self.multiplier <= 1.0 || trip == 0 {
            return base;
        }
        let max = self.max.unwrap_or(base);
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

    fn validate(&self, open_duration: Duration) -> Result<(), ConfigError> {
        if !self.multiplier.is_finite() || self.multiplier < 1.0 {
            return Err(ConfigError::invalid(
                "open_backoff.multiplier",
                self.multiplier,
                "must be a finite number >= 1.0",
            ));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(ConfigError::invalid(
                "open_backoff.jitter",
                self.jitter,
                "must be in [0.0, 1.0)",
            ));
        }
        if let Some(max) = self.max {
            if max < open_duration {
                return Err(ConfigError::invalid(
                    "open_backoff.max",
                    max,
                    "must not be shorter than open_duration",
                ));
            }
        }
        Ok(())
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::constant()
    }
}

/// A validated breaker configuration. Build one with [`Config::builder`].
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::{Config, Window};
///
/// // Open after 3 consecutive failures, or at a 50% failure rate over the last
/// // minute once at least 10 calls were seen; probe after 30 s with 2 calls.
/// let config = Config::builder()
///     .name("payments")
///     .consecutive_failures(3)
///     .failure_rate(0.5)
///     .sliding_window(Window::time(Duration::from_secs(60)))
///     .minimum_calls(10)
///     .open_duration(Duration::from_secs(30))
///     .half_open_permits(2)
///     .half_open_successes(2)
///     .build()?;
/// assert_eq!(config.name(), "payments");
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Config {
    pub(crate) name: Arc<str>,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) window: Option<Window>,
    pub(crate) minimum_calls: u32,
    pub(crate) slow_call: Option<SlowCall>,
    pub(crate) open_duration: Duration,
    pub(crate) open_backoff: Backoff,
    pub(crate) half_open_permits: u32,
    pub(crate) half_open_successes: u32,
    pub(crate) half_open_max_wait: Duration,
    pub(crate) backpressure: bool,
}

/// The slow-call rule: calls slower than `threshold` are slow; the breaker opens when the
/// share of slow calls in the window reaches `rate`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SlowCall {
    pub(crate) threshold: Duration,
    pub(crate) rate: f64,
}

impl Config {
    /// Default name of a breaker.
    pub const DEFAULT_NAME: &'static str = "circuit-breaker";
    /// Default consecutive-failure threshold, used when no rate rule is configured.
    pub const DEFAULT_CONSECUTIVE_FAILURES: u32 = 5;
    /// Default window when a rate rule is set without one.
    pub const DEFAULT_WINDOW: Window = Window::Count(100);
    /// Default minimum number of calls in the window before a rate can trip.
    pub const DEFAULT_MINIMUM_CALLS: u32 = 10;
    /// Default open duration.
    pub const DEFAULT_OPEN_DURATION: Duration = Duration::from_secs(30);
    /// Default number of concurrent half-open probes.
    pub const DEFAULT_HALF_OPEN_PERMITS: u32 = 3;
    /// Default number of successful probes that close the breaker.
    pub const DEFAULT_HALF_OPEN_SUCCESSES: u32 = 3;
    /// Default time half-open waits for a probe to finish before reopening.
    pub const DEFAULT_HALF_OPEN_MAX_WAIT: Duration = Duration::from_secs(60);

    /// A builder starting from the documented defaults.
    pub fn builder() -> ConfigBuilder {
        ConfigBuilder::default()
    }

    /// The breaker's name, used in errors, logs and metrics.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The consecutive-failure threshold, if that rule is on.
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }

    /// The failure-rate threshold, if that rule is on.
    pub fn failure_rate(&self) -> Option<f64> {
        self.failure_rate
    }

    /// The sliding window, if any rate is tracked.
    pub fn sliding_window(&self) -> Option<Window> {
        self.window
    }

    /// Calls the window must hold before a rate rule may trip.
    pub fn minimum_calls(&self) -> u32 {
        self.minimum_calls
    }

    /// The slow-call threshold and rate, if slow-call detection is on.
    pub fn slow_call(&self) -> Option<(Duration, f64)> {
        self.slow_call.map(|slow| (slow.threshold, slow.rate))
    }

    /// The base open duration.
    pub fn open_duration(&self) -> Duration {
        self.open_duration
    }

    /// How the open duration grows over consecutive trips.
    pub fn open_backoff(&self) -> Backoff {
        self.open_backoff
    }

    /// Maximum concurrent half-open probes.
    pub fn half_open_permits(&self) -> u32 {
        self.half_open_permits
    }

    /// Successful probes needed to close.
    pub fn half_open_successes(&self) -> u32 {
        self.half_open_successes
    }

    /// How long half-open waits without any probe finishing before it reopens (see
    /// [`ConfigBuilder::half_open_max_wait`]).
    pub fn half_open_max_wait(&self) -> Duration {
        self.half_open_max_wait
    }

    /// Whether `poll_ready` waits (instead of admitting a rejection) while open.
    pub fn backpressure(&self) -> bool {
        self.backpressure
    }
}

impl Default for Config {
    fn default() -> Self {
        ConfigBuilder::default()
            .build()
            .expect("the default configuration is valid")
    }
}

/// Builds a [`Config`]; every setter is optional. Invalid values are reported by
/// [`build`](ConfigBuilder::build) as a [`ConfigError`] naming the field.
///
/// Defaults: name `"circuit-breaker"`; open after 5 consecutive failures (only when no
/// rate rule is set); rate rules use the last 100 calls and need at least 10 calls;
/// open for 30 s with constant backoff; half-open admits 3 concurrent probes, closes
/// after 3 successes and reopens if no probe finishes within 60 s; no backpressure.
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ConfigBuilder {
    name: Option<String>,
    consecutive_failures: Option<u32>,
    failure_rate: Option<f64>,
    window: Option<Window>,
    minimum_calls: Option<u32>,
    slow_call: Option<(Duration, f64)>,
    open_duration: Option<Duration>,
    open_backoff: Option<Backoff>,
    half_open_permits: Option<u32>,
    half_open_successes: Option<u32>,
    half_open_max_wait: Option<Duration>,
    backpressure: Option<bool>,
}

impl ConfigBuilder {
    /// Names the breaker (errors, logs, metrics).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Opens after `n` consecutive failures (`n >= 1`); any success resets the count,
    /// ignored outcomes do not. On by default with 5 unless a rate rule is set.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.consecutive_failures = Some(n);
        self
    }

    /// Opens when the failure rate over the sliding window reaches `rate` (`0 < rate <= 1`)
    /// and the window holds at least [`minimum_calls`](Self::minimum_calls) calls.
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.failure_rate = Some(rate);
        self
    }

    /// The window over which rates are computed (default: the last 100 calls).
    pub fn sliding_window(mut self, window: Window) -> Self {
        self.window = Some(window);
        self
    }

    /// Calls the window must hold before a rate rule may trip (default 10, at least 1).
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.minimum_calls = Some(n);
        self
    }

    /// Counts calls slower than `threshold` as slow and opens when the slow share of the
    /// window reaches `rate`. A slow half-open probe counts as a failed probe.
    pub fn slow_call(mut self, threshold: Duration, rate: f64) -> Self {
        self.slow_call = Some((threshold, rate));
        self
    }

    /// How long the breaker stays open before probing (default 30 s).
    pub fn open_duration(mut self, duration: Duration) -> Self {
        self.open_duration = Some(duration);
        self
    }

    /// How the open duration grows over consecutive trips (default constant).
    pub fn open_backoff(mut self, backoff: Backoff) -> Self {
        self.open_backoff = Some(backoff);
        self
    }

    /// Maximum concurrent half-open probes (default 3). A finished probe frees its permit.
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.half_open_permits = Some(n);
        self
    }

    /// Successful probes that close the breaker (default 3). Any failed probe reopens it.
    pub fn half_open_successes(mut self, n: u32) -> Self {
        self.half_open_successes = Some(n);
        self
    }

    /// If no probe finishes within this time, half-open gives up and reopens, so a hung
    /// probe cannot wedge the breaker (default 60 s).
    ///
    /// The time counts from when half-open last made progress: when it began, or when
    /// a probe last finished (a success, an ignored outcome, or a cancelled call; a
    /// failed or slow probe reopens at once). Once it has passed, the next call reopens
    /// the breaker with [`TransitionReason::ProbeTimedOut`](crate::TransitionReason::ProbeTimedOut)
    /// however many probe permits are free, and is rejected instead of being admitted as
    /// another probe: a probe that hangs while holding one of several permits does not
    /// keep the half-open period going. No timer runs, so the reopen happens at that
    /// call, and the open period (with the backoff and jitter of any trip) counts from
    /// it. Before that call, [`state`](crate::CircuitBreaker::state) and
    /// [`metrics`](crate::CircuitBreaker::metrics) already report the timed-out period
    /// as `Open` (since the deadline, with the open duration the call will start as
    /// `retry_after`), since that is what the call will find. Outcomes of probes of the
    /// timed-out period are stale and move nothing.
    pub fn half_open_max_wait(mut self, duration: Duration) -> Self {
        self.half_open_max_wait = Some(duration);
        self
    }

    /// With `true`, `poll_ready` returns `Pending` while the breaker is open and wakes
    /// when calls may be admitted again, instead of admitting an immediate rejection.
    pub fn backpressure(mut self, on: bool) -> Self {
        self.backpressure = Some(on);
        self
    }

    /// `self`'s settings, falling back to `base` for each one `self` leaves unset:
    /// how configuration files layer `[defaults]` under a breaker's own table.
    #[cfg(feature = "serde")]
    pub(crate) fn over(self, base: ConfigBuilder) -> ConfigBuilder {
        ConfigBuilder {
            name: self.name.or(base.name),
            consecutive_failures: self.consecutive_failures.or(base.consecutive_failures),
            failure_rate: self.failure_rate.or(base.failure_rate),
            window: self.window.or(base.window),
            minimum_calls: self.minimum_calls.or(base.minimum_calls),
            slow_call: self.slow_call.or(base.slow_call),
            open_duration: self.open_duration.or(base.open_duration),
            open_backoff: self.open_backoff.or(base.open_backoff),
            half_open_permits: self.half_open_permits.or(base.half_open_permits),
            half_open_successes: self.half_open_successes.or(base.half_open_successes),
            half_open_max_wait: self.half_open_max_wait.or(base.half_open_max_wait),
            backpressure: self.backpressure.or(base.backpressure),
        }
    }

    /// The name set so far, if any.
    #[cfg(feature = "serde")]
    pub(crate) fn name_set(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// Validates the settings.
    pub fn build(self) -> Result<Config, ConfigError> {
        let rate_rule = self.failure_rate.is_some() || self.slow_call.is_some();
        if let Some(n) = self.consecutive_failures {
            if n == 0 {
                return Err(ConfigError::invalid(
                    "consecutive_failures",
                    n,
                    "must be at least 1 (leave it unset and set a rate rule to turn it off)",
                ));
            }
        }
        if let Some(rate) = self.failure_rate {
            check_rate("failure_rate", rate)?;
        }
        let slow_call = match self.slow_call {
            Some((threshold, rate)) => {
                if threshold.is_zero() {
                    return Err(ConfigError::invalid(
                        "slow_call.threshold",
                        threshold,
                        "must be longer than zero",
                    ));
                }
                check_rate("slow_call.rate", rate)?;
                Some(SlowCall { threshold, rate })
            }
            None => None,
        };
        let window = match self.window {
            Some(window) => Some(window),
            None if rate_rule => Some(Config::DEFAULT_WINDOW),
            None => None,
        };
        if let Some(window) = window {
            window.validate()?;
        }
        let minimum_calls = match (self.minimum_calls, window) {
            (Some(0), _) => {
                return Err(ConfigError::invalid(
                    "minimum_calls",
                    0,
                    "must be at least 1",
                ))
            }
            (Some(n), Some(Window::Count(size))) if n > size => {
                return Err(ConfigError::invalid(
                    "minimum_calls",
                    n,
                    "exceeds the count window's size, so no rate could ever trip",
                ))
            }
            (Some(n), _) => n,
            (None, Some(Window::Count(size))) => Config::DEFAULT_MINIMUM_CALLS.min(size),
            (None, _) => Config::DEFAULT_MINIMUM_CALLS,
        };
        let open_duration = self.open_duration.unwrap_or(Config::DEFAULT_OPEN_DURATION);
        if open_duration.is_zero() {
            return Err(ConfigError::invalid(
                "open_duration",
                open_duration,
                "must be longer than zero",
            ));
        }
        let open_backoff = self.open_backoff.unwrap_or_default();
        open_backoff.validate(open_duration)?;
        let half_open_permits = check_half_open(
            "half_open_permits",
            self.half_open_permits,
            Config::DEFAULT_HALF_OPEN_PERMITS,
        )?;
        let half_open_successes = check_half_open(
            "half_open_successes",
            self.half_open_successes,
            Config::DEFAULT_HALF_OPEN_SUCCESSES,
        )?;
        let half_open_max_wait = self
            .half_open_max_wait
            .unwrap_or(Config::DEFAULT_HALF_OPEN_MAX_WAIT);
        if half_open_max_wait.is_zero() {
            return Err(ConfigError::invalid(
                "half_open_max_wait",
                half_open_max_wait,
                "must be longer than zero",
            ));
        }
        let consecutive_failures = match self.consecutive_failures {
            Some(n) => Some(n),
            None if rate_rule => None,
            None => Some(Config::DEFAULT_CONSECUTIVE_FAILURES),
        };
        Ok(Config {
            name: Arc::from(self.name.as_deref().unwrap_or(Config::DEFAULT_NAME)),
            consecutive_failures,
            failure_rate: self.failure_rate,
            window,
            minimum_calls,
            slow_call,
            open_duration,
            open_backoff,
            half_open_permits,
            half_open_successes,
            half_open_max_wait,
            backpressure: self.backpressure.unwrap_or(false),
        })
    }
}

fn check_rate(field: &'static str, rate: f64) -> Result<(), ConfigError> {
    if rate.is_finite() && rate > 0.0 && rate <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, rate, "must be in (0.0, 1.0]"))
    }
}

fn check_half_open(
    field: &'static str,
    value: Option<u32>,
    default: u32,
) -> Result<u32, ConfigError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=MAX_HALF_OPEN).contains(&n) => Ok(n),
        Some(n) => Err(ConfigError::invalid(field, n, "must be in 1..=65535")),
    }
}
