//! A point-in-time view of one breaker's counters and state.

use std::time::Duration;

use tokio::time::Instant;

use crate::state::State;

/// A snapshot of a breaker, from [`CircuitBreaker::metrics`](crate::CircuitBreaker::metrics).
///
/// Counters are totals since the breaker was created and never go down;
/// `calls == successes + failures + ignored + rejected` always holds.
/// Rates come from the sliding window when one is configured, otherwise they are
/// lifetime ratios of the totals (which move less and less as calls accumulate; the
/// `metrics` export leaves them out for that reason).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The current state, as [`CircuitBreaker::state`](crate::CircuitBreaker::state)
    /// reports it: `HalfOpen` once the open duration has elapsed, even before a call;
    /// `Open` once a half-open period has waited `half_open_max_wait` for its probes
    /// (the next call reopens it and is rejected).
    pub state: State,
    /// Every call the breaker saw: admitted and finished, plus rejected.
    pub calls: u64,
    /// Admitted calls classified as successes.
    pub successes: u64,
    /// Admitted calls classified as failures.
    pub failures: u64,
    /// Admitted calls classified as ignored, or cancelled before finishing.
    pub ignored: u64,
    /// Calls rejected without reaching the inner service.
    pub rejected: u64,
    /// Finished calls slower than the slow-call threshold.
    pub slow_calls: u64,
    /// Calls currently in the sliding window (0 without a window).
    pub window_calls: u64,
    /// Failure rate in `0.0..=1.0`: failures / (successes + failures) over the sliding
    /// window, or over the breaker's lifetime when it has no window.
    pub failure_rate: f64,
    /// The failure rate at which the breaker opens now: the fixed
    /// [`failure_rate`](crate::ConfigBuilder::failure_rate), or the
    /// [adaptive rule](crate::AdaptiveFailureRate)'s threshold for the calls now in
    /// the window; `None` without a failure-rate rule.
    pub failure_rate_threshold: Option<f64>,
    /// The [adaptive rule](crate::AdaptiveFailureRate)'s learned normal failure rate;
    /// `None` without that rule or while it is still warming up.
    pub failure_rate_baseline: Option<f64>,
    /// Slow-call rate in `0.0..=1.0`, over the window or the lifetime like
    /// `failure_rate`.
    pub slow_call_rate: f64,
    /// The current run of consecutive failures while closed (or in metrics-only mode).
    pub consecutive_failures: u32,
    /// Half-open probes admitted and not finished (0 once the half-open period timed
    /// out: probes still running then are stale).
    pub probes_in_flight: u32,
    /// While closed and [ramping up](crate::ConfigBuilder::ramp_up) after a recovery:
    /// the share of calls admitted now, in `0.1..1.0`; `None` otherwise.
    pub ramp_up_share: Option<f64>,
    /// Number of state transitions so far.
    pub state_changes: u64,
    /// Would-be trips in [metrics-only](crate::CircuitBreaker::metrics_only) mode: how
    /// many times a trip rule fired where a normal breaker would have opened, counted
    /// once per episode (a run of outcomes on which some rule fires) rather than once
    /// per failure. 0 outside metrics-only mode.
    pub would_be_trips: u64,
    /// When the latest failure was recorded.
    pub last_failure_at: Option<Instant>,
    /// When a recent success was recorded. Exact when the breaker reads the clock per
    /// call anyway (slow-call detection or a time window); otherwise sampled every 64th
    /// success per thread so that the success path does not read the clock.
    pub last_success_at: Option<Instant>,
    /// How long the breaker has been in its current state (for a half-open state
    /// reached by time alone: since the open duration ended; for a half-open period
    /// that timed out, reported as open: since its `half_open_max_wait` deadline).
    pub time_in_state: Duration,
    /// While open: time left until probing may begin; `None` once it may. For a
    /// half-open period that timed out, reported as open: the open duration the next
    /// call will start (it counts down only once a call reopens the breaker).
    pub retry_after: Option<Duration>,
}
