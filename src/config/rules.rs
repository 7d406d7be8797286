//! The validation rules of [`ConfigBuilder::build`](super::ConfigBuilder::build): one
//! check per rule, each named after the rule it checks, called by `build` in the order
//! listed here (the first rule broken is the one reported).

use std::time::Duration;

use crate::config::adaptive::AdaptiveFailureRate;
use crate::config::backoff::Backoff;
use crate::config::window::{Window, MAX_COUNT_WINDOW, MAX_TIME_BUCKETS};
use crate::config::MAX_HALF_OPEN;
use crate::error::ConfigError;

/// `consecutive_failures`, when set, is at least 1 (unset, with a rate rule, turns the
/// rule off).
pub(super) fn consecutive_failures_at_least_one(n: Option<u32>) -> Result<(), ConfigError> {
    match n {
        Some(0) => Err(ConfigError::invalid(
            "consecutive_failures",
            0u32,
            "must be at least 1 (leave it unset and set a rate rule to turn it off)",
        )),
        _ => Ok(()),
    }
}

/// `failure_rate`, when set, is in `(0.0, 1.0]`.
pub(super) fn failure_rate_in_range(rate: Option<f64>) -> Result<(), ConfigError> {
    match rate {
        Some(rate) => rate_in_range("failure_rate", rate),
        None => Ok(()),
    }
}

/// `failure_rate` and `failure_rate_adaptive` are not both set: each is the failure-rate
/// rule, and one would silently override the other.
pub(super) fn one_failure_rate_rule(
    fixed: Option<f64>,
    adaptive: Option<AdaptiveFailureRate>,
) -> Result<(), ConfigError> {
    match (fixed, adaptive) {
        (Some(rate), Some(_)) => Err(ConfigError::invalid(
            "failure_rate",
            rate,
            "set either failure_rate or failure_rate_adaptive, not both",
        )),
        _ => Ok(()),
    }
}

/// `failure_rate_adaptive.margin` is in `(0.0, 1.0)`.
pub(super) fn adaptive_margin_in_range(rule: &AdaptiveFailureRate) -> Result<(), ConfigError> {
    if rule.margin.is_finite() && rule.margin > 0.0 && rule.margin < 1.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "failure_rate_adaptive.margin",
            rule.margin,
            "must be in (0.0, 1.0)",
        ))
    }
}

/// `failure_rate_adaptive.tolerance` is a finite number `>= 0`.
pub(super) fn adaptive_tolerance_not_negative(
    rule: &AdaptiveFailureRate,
) -> Result<(), ConfigError> {
    if rule.tolerance.is_finite() && rule.tolerance >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "failure_rate_adaptive.tolerance",
            rule.tolerance,
            "must be a finite number >= 0.0",
        ))
    }
}

/// `failure_rate_adaptive.streak_probability` is in `[0.0, 1.0)`.
pub(super) fn adaptive_streak_probability_in_range(
    rule: &AdaptiveFailureRate,
) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&rule.streak_probability) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "failure_rate_adaptive.streak_probability",
            rule.streak_probability,
            "must be in [0.0, 1.0) (0 turns the run rule off)",
        ))
    }
}

/// `failure_rate_adaptive.floor` is in `(0.0, 1.0]` and `cap` in `[floor, 1.0]`.
pub(super) fn adaptive_floor_and_cap_in_order(
    rule: &AdaptiveFailureRate,
) -> Result<(), ConfigError> {
    rate_in_range("failure_rate_adaptive.floor", rule.floor)?;
    rate_in_range("failure_rate_adaptive.cap", rule.cap)?;
    if rule.cap < rule.floor {
        return Err(ConfigError::invalid(
            "failure_rate_adaptive.cap",
            rule.cap,
            "must not be below failure_rate_adaptive.floor",
        ));
    }
    Ok(())
}

/// The adaptive rule learns from a count window: its baseline is updated once per
/// window of calls.
pub(super) fn adaptive_needs_count_window(window: Window) -> Result<(), ConfigError> {
    match window {
        Window::Count(_) => Ok(()),
        Window::Time { .. } => Err(ConfigError::invalid(
            "sliding_window",
            window,
            "failure_rate_adaptive needs a count window (Window::count)",
        )),
    }
}

/// `failure_rate_adaptive.horizon` and `.warm_up` are at least the count window's size:
/// the baseline learns one window at a time.
pub(super) fn adaptive_horizon_and_warm_up_cover_the_window(
    rule: &AdaptiveFailureRate,
    window: Window,
) -> Result<(), ConfigError> {
    let Window::Count(size) = window else {
        return Ok(());
    };
    for (field, calls) in [
        ("failure_rate_adaptive.horizon", rule.horizon),
        ("failure_rate_adaptive.warm_up", rule.warm_up),
    ] {
        if calls < size {
            return Err(ConfigError::invalid(
                field,
                calls,
                "must be at least the count window's size (the baseline learns a window at a time)",
            ));
        }
    }
    Ok(())
}

/// `slow_call.threshold` is longer than zero.
pub(super) fn slow_call_threshold_above_zero(threshold: Duration) -> Result<(), ConfigError> {
    above_zero("slow_call.threshold", threshold)
}

/// `slow_call.rate` is in `(0.0, 1.0]`.
pub(super) fn slow_call_rate_in_range(rate: f64) -> Result<(), ConfigError> {
    rate_in_range("slow_call.rate", rate)
}

/// A count window holds `1..=MAX_COUNT_WINDOW` calls.
pub(super) fn count_window_size_in_range(window: Window) -> Result<(), ConfigError> {
    match window {
        Window::Count(n) if n == 0 || n > MAX_COUNT_WINDOW => Err(ConfigError::invalid(
            "sliding_window",
            window,
            "a count window holds 1..=1048576 calls",
        )),
        _ => Ok(()),
    }
}

/// A time window is longer than zero.
pub(super) fn time_window_above_zero(window: Window) -> Result<(), ConfigError> {
    match window {
        Window::Time { length, .. } if length.is_zero() => Err(ConfigError::invalid(
            "sliding_window",
            window,
            "a time window must be longer than zero",
        )),
        _ => Ok(()),
    }
}

/// A time window has `1..=MAX_TIME_BUCKETS` buckets.
pub(super) fn time_window_buckets_in_range(window: Window) -> Result<(), ConfigError> {
    match window {
        Window::Time { buckets, .. } if buckets == 0 || buckets > MAX_TIME_BUCKETS => {
            Err(ConfigError::invalid(
                "sliding_window",
                window,
                "a time window has 1..=3600 buckets",
            ))
        }
        _ => Ok(()),
    }
}

/// Each bucket of a time window lasts at least one nanosecond.
pub(super) fn time_window_buckets_at_least_one_nanosecond(
    window: Window,
) -> Result<(), ConfigError> {
    match window {
        Window::Time { length, buckets } if length.as_nanos() < u128::from(buckets) => {
            Err(ConfigError::invalid(
                "sliding_window",
                window,
                "each bucket must last at least one nanosecond",
            ))
        }
        _ => Ok(()),
    }
}

/// `minimum_calls`, when set, is at least 1.
pub(super) fn minimum_calls_at_least_one(n: Option<u32>) -> Result<(), ConfigError> {
    match n {
        Some(0) => Err(ConfigError::invalid(
            "minimum_calls",
            0u32,
            "must be at least 1",
        )),
        _ => Ok(()),
    }
}

/// `minimum_calls`, when set, does not exceed the size of a count window: a rate could
/// never trip.
pub(super) fn minimum_calls_within_count_window(
    n: Option<u32>,
    window: Option<Window>,
) -> Result<(), ConfigError> {
    match (n, window) {
        (Some(n), Some(Window::Count(size))) if n > size => Err(ConfigError::invalid(
            "minimum_calls",
            n,
            "exceeds the count window's size, so no rate could ever trip",
        )),
        _ => Ok(()),
    }
}

/// `open_duration` is longer than zero.
pub(super) fn open_duration_above_zero(open_duration: Duration) -> Result<(), ConfigError> {
    above_zero("open_duration", open_duration)
}

/// `open_backoff.multiplier` is a finite number of at least 1.0: the open duration
/// never shrinks.
pub(super) fn backoff_multiplier_at_least_one(backoff: &Backoff) -> Result<(), ConfigError> {
    if backoff.multiplier.is_finite() && backoff.multiplier >= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "open_backoff.multiplier",
            backoff.multiplier,
            "must be a finite number >= 1.0",
        ))
    }
}

/// `open_backoff.jitter` is in `[0.0, 1.0)`: an open period never shrinks to nothing.
pub(super) fn backoff_jitter_below_one(backoff: &Backoff) -> Result<(), ConfigError> {
    if (0.0..1.0).contains(&backoff.jitter) {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "open_backoff.jitter",
            backoff.jitter,
            "must be in [0.0, 1.0)",
        ))
    }
}

/// `open_backoff.reset_after`, when set, is longer than zero and comes with a backoff
/// that grows: with a constant open duration there is nothing to remember.
pub(super) fn backoff_reset_after_with_growth(backoff: &Backoff) -> Result<(), ConfigError> {
    match backoff.reset_after {
        Some(after) if after.is_zero() => Err(ConfigError::invalid(
            "open_backoff.reset_after",
            after,
            "must be longer than zero",
        )),
        Some(after) if !backoff.grows() => Err(ConfigError::invalid(
            "open_backoff.reset_after",
            after,
            "has no effect without a growing backoff (multiplier above 1.0, or linear): \
             every open period lasts open_duration",
        )),
        _ => Ok(()),
    }
}

/// `open_backoff.max`, when set, is not shorter than `open_duration`.
pub(super) fn backoff_max_at_least_open_duration(
    backoff: &Backoff,
    open_duration: Duration,
) -> Result<(), ConfigError> {
    match backoff.max {
        Some(max) if max < open_duration => Err(ConfigError::invalid(
            "open_backoff.max",
            max,
            "must not be shorter than open_duration",
        )),
        _ => Ok(()),
    }
}

/// `half_open_permits`, when set, is in `1..=MAX_HALF_OPEN`.
pub(super) fn half_open_permits_in_range(n: Option<u32>) -> Result<(), ConfigError> {
    half_open_in_range("half_open_permits", n)
}

/// `half_open_successes`, when set, is in `1..=MAX_HALF_OPEN`.
pub(super) fn half_open_successes_in_range(n: Option<u32>) -> Result<(), ConfigError> {
    half_open_in_range("half_open_successes", n)
}

/// `half_open_max_wait` is longer than zero.
pub(super) fn half_open_max_wait_above_zero(max_wait: Duration) -> Result<(), ConfigError> {
    above_zero("half_open_max_wait", max_wait)
}

/// `ramp_up`, when set, is longer than zero.
pub(super) fn ramp_up_above_zero(duration: Duration) -> Result<(), ConfigError> {
    above_zero("ramp_up", duration)
}

/// `probe_interval`, when set, is longer than zero.
pub(super) fn probe_interval_above_zero(interval: Duration) -> Result<(), ConfigError> {
    above_zero("probe_interval", interval)
}

/// `probe_interval`, when set, is shorter than the longest open period: otherwise every
/// open period would end before it and it would never fire.
pub(super) fn probe_interval_shorter_than_open_periods(
    interval: Duration,
    open_duration: Duration,
    backoff: &Backoff,
) -> Result<(), ConfigError> {
    let longest = match backoff.max {
        Some(max) if backoff.multiplier > 1.0 => max.max(open_duration),
        _ => open_duration,
    };
    // Jitter can stretch a period a little, but never reliably past this bound.
    if interval < longest {
        Ok(())
    } else {
        Err(ConfigError::invalid(
            "probe_interval",
            interval,
            "must be shorter than the longest open period (open_duration, or open_backoff.max), or it never fires",
        ))
    }
}

/// A rate is in `(0.0, 1.0]`.
fn rate_in_range(field: &'static str, rate: f64) -> Result<(), ConfigError> {
    if rate.is_finite() && rate > 0.0 && rate <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::invalid(field, rate, "must be in (0.0, 1.0]"))
    }
}

/// A duration is longer than zero.
fn above_zero(field: &'static str, duration: Duration) -> Result<(), ConfigError> {
    if duration.is_zero() {
        Err(ConfigError::invalid(
            field,
            duration,
            "must be longer than zero",
        ))
    } else {
        Ok(())
    }
}

/// A half-open count, when set, is in `1..=MAX_HALF_OPEN` (it lives in 16 bits of the
/// breaker's state word).
fn half_open_in_range(field: &'static str, n: Option<u32>) -> Result<(), ConfigError> {
    match n {
        Some(n) if !(1..=MAX_HALF_OPEN).contains(&n) => {
            Err(ConfigError::invalid(field, n, "must be in 1..=65535"))
        }
        _ => Ok(()),
    }
}
