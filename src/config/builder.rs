//! [`ConfigBuilder`]: the setters, and [`build`](ConfigBuilder::build), which fills in
//! the defaults and checks the rules of [`rules`] in order.

use std::time::Duration;

use crate::config::adaptive::AdaptiveFailureRate;
use crate::config::backoff::Backoff;
use crate::config::rules;
use crate::config::window::Window;
use crate::config::{Config, SlowCall};
use crate::error::ConfigError;
use crate::name::BreakerName;

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
    name: Option<BreakerName>,
    consecutive_failures: Option<u32>,
    failure_rate: Option<f64>,
    failure_rate_adaptive: Option<AdaptiveFailureRate>,
    window: Option<Window>,
    minimum_calls: Option<u32>,
    slow_call: Option<(Duration, f64)>,
    open_duration: Option<Duration>,
    open_backoff: Option<Backoff>,
    half_open_permits: Option<u32>,
    half_open_successes: Option<u32>,
    half_open_max_wait: Option<Duration>,
    probe_interval: Option<Duration>,
    ramp_up: Option<Duration>,
    backpressure: Option<bool>,
}

impl ConfigBuilder {
    /// Names the breaker (errors, logs, metrics). A string literal (any
    /// `&'static str`) is kept as it is, so that rejections carry it without touching a
    /// reference count (see [`BreakerName`]); a `String` works too.
    pub fn name(mut self, name: impl Into<BreakerName>) -> Self {
        self.name = Some(name.into());
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

    /// Opens when the failure rate over the count window reaches a threshold learned
    /// from the backend's normal failure rate (see [`AdaptiveFailureRate`]), once the
    /// window holds at least [`minimum_calls`](Self::minimum_calls) calls. Takes the
    /// place of [`failure_rate`](Self::failure_rate) (setting both is an error) and
    /// needs a count window (the default).
    pub fn failure_rate_adaptive(mut self, rule: AdaptiveFailureRate) -> Self {
        self.failure_rate_adaptive = Some(rule);
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

    /// While open, lets a call through as a probe at least every `interval`, however
    /// long the open duration has grown with the [backoff](Self::open_backoff): a
    /// healed backend is noticed within `interval` instead of at the end of a long
    /// open period, and a sick one sees one call per `interval`.
    ///
    /// When `interval` has passed since the breaker opened (or since the last such
    /// probe failed), the next call moves it to half-open early, with
    /// [`TransitionReason::ProbeIntervalElapsed`](crate::TransitionReason::ProbeIntervalElapsed)
    /// and a **single** probe permit, one more for each `interval` the half-open period
    /// lasts (a probe that hangs does not hold back the next interval's), up to
    /// [`half_open_permits`](Self::half_open_permits); it closes after
    /// [`half_open_successes`](Self::half_open_successes) successful probes as usual.
    /// A failed probe reopens the breaker for the rest of the open period it cut short,
    /// without growing the backoff (a `Retry-After` floor still applies); once that
    /// period is over, a failure is a trip like any other. Off by default; must be
    /// shorter than the longest open period (`open_duration`, or the backoff's `max`),
    /// or it would never fire.
    pub fn probe_interval(mut self, interval: Duration) -> Self {
        self.probe_interval = Some(interval);
        self
    }

    /// After half-open probes close the breaker, admits a growing share of calls over
    /// `duration` (a slow start, as Envoy's): 10 % at first, rising linearly to all of
    /// them, and rejects the rest at once, so a backend that has just recovered is not
    /// hit by the full load at once. A rejected call gets a
    /// [`CircuitOpen`](crate::CircuitOpen) with state `Closed` and no `retry_after`.
    /// Admitted calls count toward the trip rules as usual, so failures reopen the
    /// breaker. Only a recovery ramps up: a manual [`reset`](crate::CircuitBreaker::reset)
    /// or a close by another instance of the fleet admits everything at once. With
    /// [`backpressure`](Self::backpressure), a call the ramp sheds is still rejected at
    /// once: the share grows continuously, so there is no moment to wait for. Off by
    /// default.
    pub fn ramp_up(mut self, duration: Duration) -> Self {
        self.ramp_up = Some(duration);
        self
    }

    /// With `true`, `poll_ready` returns `Pending` while the breaker is open and wakes
    /// when calls may be admitted again, instead of admitting an immediate rejection.
    /// The wait is timed on the Tokio runtime's timer: outside a runtime, or in one
    /// built without `enable_time`, calls are rejected at once as without backpressure
    /// (the latter logs a warning).
    pub fn backpressure(mut self, on: bool) -> Self {
        self.backpressure = Some(on);
        self
    }

    /// `self`'s settings, falling back to `base` for each one `self` leaves unset:
    /// how configuration files layer `[defaults]` under a breaker's own table.
    #[cfg(feature = "serde")]
    pub(crate) fn over(self, base: ConfigBuilder) -> ConfigBuilder {
        // The two failure-rate rules are one setting: a table's own rule, fixed or
        // adaptive, replaces the inherited one rather than joining it.
        let (failure_rate, failure_rate_adaptive) =
            if self.failure_rate.is_some() || self.failure_rate_adaptive.is_some() {
                (self.failure_rate, self.failure_rate_adaptive)
            } else {
                (base.failure_rate, base.failure_rate_adaptive)
            };
        ConfigBuilder {
            name: self.name.or(base.name),
            consecutive_failures: self.consecutive_failures.or(base.consecutive_failures),
            failure_rate,
            failure_rate_adaptive,
            window: self.window.or(base.window),
            minimum_calls: self.minimum_calls.or(base.minimum_calls),
            slow_call: self.slow_call.or(base.slow_call),
            open_duration: self.open_duration.or(base.open_duration),
            open_backoff: self.open_backoff.or(base.open_backoff),
            half_open_permits: self.half_open_permits.or(base.half_open_permits),
            half_open_successes: self.half_open_successes.or(base.half_open_successes),
            half_open_max_wait: self.half_open_max_wait.or(base.half_open_max_wait),
            probe_interval: self.probe_interval.or(base.probe_interval),
            ramp_up: self.ramp_up.or(base.ramp_up),
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
        // One check per rule, in the order their errors are reported.
        rules::consecutive_failures_at_least_one(self.consecutive_failures)?;
        rules::failure_rate_in_range(self.failure_rate)?;
        rules::one_failure_rate_rule(self.failure_rate, self.failure_rate_adaptive)?;
        if let Some(rule) = &self.failure_rate_adaptive {
            rules::adaptive_margin_in_range(rule)?;
            rules::adaptive_tolerance_not_negative(rule)?;
            rules::adaptive_floor_and_cap_in_order(rule)?;
            rules::adaptive_streak_probability_in_range(rule)?;
        }
        if let Some((threshold, rate)) = self.slow_call {
            rules::slow_call_threshold_above_zero(threshold)?;
            rules::slow_call_rate_in_range(rate)?;
        }
        let window = self.window_or_default();
        if let Some(window) = window {
            rules::count_window_size_in_range(window)?;
            rules::time_window_above_zero(window)?;
            rules::time_window_buckets_in_range(window)?;
            rules::time_window_buckets_at_least_one_nanosecond(window)?;
            if let Some(rule) = &self.failure_rate_adaptive {
                rules::adaptive_needs_count_window(window)?;
                rules::adaptive_horizon_and_warm_up_cover_the_window(rule, window)?;
            }
        }
        rules::minimum_calls_at_least_one(self.minimum_calls)?;
        rules::minimum_calls_within_count_window(self.minimum_calls, window)?;
        let open_duration = self.open_duration.unwrap_or(Config::DEFAULT_OPEN_DURATION);
        rules::open_duration_above_zero(open_duration)?;
        let open_backoff = self.open_backoff.unwrap_or_default();
        rules::backoff_multiplier_at_least_one(&open_backoff)?;
        rules::backoff_jitter_below_one(&open_backoff)?;
        rules::backoff_max_at_least_open_duration(&open_backoff, open_duration)?;
        rules::backoff_reset_after_with_growth(&open_backoff)?;
        rules::half_open_permits_in_range(self.half_open_permits)?;
        rules::half_open_successes_in_range(self.half_open_successes)?;
        let half_open_max_wait = self
            .half_open_max_wait
            .unwrap_or(Config::DEFAULT_HALF_OPEN_MAX_WAIT);
        rules::half_open_max_wait_above_zero(half_open_max_wait)?;
        if let Some(duration) = self.ramp_up {
            rules::ramp_up_above_zero(duration)?;
        }
        if let Some(interval) = self.probe_interval {
            rules::probe_interval_above_zero(interval)?;
            rules::probe_interval_shorter_than_open_periods(
                interval,
                open_duration,
                &open_backoff,
            )?;
        }

        Ok(Config {
            name: self
                .name
                .clone()
                .unwrap_or(BreakerName::from(Config::DEFAULT_NAME)),
            consecutive_failures: self.consecutive_failures_or_default(),
            failure_rate: self.failure_rate,
            failure_rate_adaptive: self.failure_rate_adaptive,
            window,
            minimum_calls: self.minimum_calls_or_default(window),
            slow_call: self
                .slow_call
                .map(|(threshold, rate)| SlowCall { threshold, rate }),
            open_duration,
            open_backoff,
            half_open_permits: self
                .half_open_permits
                .unwrap_or(Config::DEFAULT_HALF_OPEN_PERMITS),
            half_open_successes: self
                .half_open_successes
                .unwrap_or(Config::DEFAULT_HALF_OPEN_SUCCESSES),
            half_open_max_wait,
            probe_interval: self.probe_interval,
            ramp_up: self.ramp_up,
            backpressure: self.backpressure.unwrap_or(false),
        })
    }

    /// Whether a rate rule (`failure_rate`, `failure_rate_adaptive` or `slow_call`) is set.
    fn rate_rule(&self) -> bool {
        self.failure_rate.is_some()
            || self.failure_rate_adaptive.is_some()
            || self.slow_call.is_some()
    }

    /// The window set, or [`Config::DEFAULT_WINDOW`] if a rate rule needs one.
    fn window_or_default(&self) -> Option<Window> {
        match self.window {
            Some(window) => Some(window),
            None if self.rate_rule() => Some(Config::DEFAULT_WINDOW),
            None => None,
        }
    }

    /// The `minimum_calls` set, or [`Config::DEFAULT_MINIMUM_CALLS`] capped at the size
    /// of a count `window`.
    fn minimum_calls_or_default(&self, window: Option<Window>) -> u32 {
        match (self.minimum_calls, window) {
            (Some(n), _) => n,
            (None, Some(Window::Count(size))) => Config::DEFAULT_MINIMUM_CALLS.min(size),
            (None, _) => Config::DEFAULT_MINIMUM_CALLS,
        }
    }

    /// The consecutive-failure threshold set; unset, off with a rate rule and
    /// [`Config::DEFAULT_CONSECUTIVE_FAILURES`] without.
    fn consecutive_failures_or_default(&self) -> Option<u32> {
        match self.consecutive_failures {
            Some(n) => Some(n),
            None if self.rate_rule() => None,
            None => Some(Config::DEFAULT_CONSECUTIVE_FAILURES),
        }
    }
}
