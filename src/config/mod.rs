//! Configuration: trip rules, sliding windows, open duration and backoff, half-open probing.
//!
//! One job per file:
//!
//! - this file: [`Config`], the validated configuration, and its getters;
//! - `builder`: [`ConfigBuilder`], its setters, and [`build`](ConfigBuilder::build),
//!   which fills in the defaults and checks the rules;
//! - `rules`: one check per validation rule, each named after the rule;
//! - `window`: [`Window`] and its size limits;
//! - `adaptive`: [`AdaptiveFailureRate`], the failure-rate rule that learns its
//!   threshold;
//! - `backoff`: [`Backoff`], the growth of the open duration over consecutive trips.
//!
//! Configuration files (`RegistryConfig`, `Config::from_toml`) are read in
//! `crate::config_file`, above the registry they build.

use std::time::Duration;

use crate::name::BreakerName;

mod adaptive;
mod backoff;
mod builder;
mod rules;
mod window;

pub use self::adaptive::AdaptiveFailureRate;
pub use self::backoff::Backoff;
pub use self::builder::ConfigBuilder;
pub use self::window::{Window, MAX_COUNT_WINDOW, MAX_TIME_BUCKETS};

/// Largest accepted `half_open_permits` / `half_open_successes` (they live in 16 bits of
/// the breaker's atomic state word).
pub const MAX_HALF_OPEN: u32 = u16::MAX as u32;

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
    /// As rejections carry it: a static name stays static (see
    /// [`BreakerName`](crate::BreakerName)).
    pub(crate) name: BreakerName,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) failure_rate_adaptive: Option<AdaptiveFailureRate>,
    pub(crate) window: Option<Window>,
    pub(crate) minimum_calls: u32,
    pub(crate) slow_call: Option<SlowCall>,
    pub(crate) open_duration: Duration,
    pub(crate) open_backoff: Backoff,
    pub(crate) half_open_permits: u32,
    pub(crate) half_open_successes: u32,
    pub(crate) half_open_max_wait: Duration,
    pub(crate) probe_interval: Option<Duration>,
    pub(crate) ramp_up: Option<Duration>,
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

    /// This config under another name (a keyed or endpoint breaker's own).
    pub(crate) fn renamed(self, name: String) -> Config {
        Config {
            name: BreakerName::from(name),
            ..self
        }
    }

    /// The consecutive-failure threshold, if that rule is on.
    pub fn consecutive_failures(&self) -> Option<u32> {
        self.consecutive_failures
    }

    /// The failure-rate threshold, if that rule is on.
    pub fn failure_rate(&self) -> Option<f64> {
        self.failure_rate
    }

    /// The adaptive failure-rate rule, if that rule is on.
    pub fn failure_rate_adaptive(&self) -> Option<AdaptiveFailureRate> {
        self.failure_rate_adaptive
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

    /// The longest an open breaker goes without a probe, if set (see
    /// [`ConfigBuilder::probe_interval`]).
    pub fn probe_interval(&self) -> Option<Duration> {
        self.probe_interval
    }

    /// How long the breaker ramps calls back up after a recovery, if set (see
    /// [`ConfigBuilder::ramp_up`]).
    pub fn ramp_up(&self) -> Option<Duration> {
        self.ramp_up
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
