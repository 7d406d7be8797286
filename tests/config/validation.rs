//! Configuration validation: every bad value is a typed error naming field and value.

use std::time::Duration;

use tower_circuit_breaker::{Backoff, Config, ConfigError, Window};

fn rejected(builder: tower_circuit_breaker::ConfigBuilder) -> ConfigError {
    builder.build().expect_err("configuration must be rejected")
}

#[test]
fn bad_values_name_their_field_and_value() {
    let cases: Vec<(tower_circuit_breaker::ConfigBuilder, &str, &str)> = vec![
        (Config::builder().failure_rate(1.5), "failure_rate", "1.5"),
        (Config::builder().ramp_up(Duration::ZERO), "ramp_up", "0ns"),
        (
            Config::builder().open_backoff(Backoff::constant().reset_after(Duration::from_secs(1))),
            "open_backoff.reset_after",
            "1s",
        ),
        (
            Config::builder().open_backoff(
                Backoff::exponential(2.0, Duration::from_secs(60)).reset_after(Duration::ZERO),
            ),
            "open_backoff.reset_after",
            "0ns",
        ),
        (
            Config::builder().probe_interval(Duration::ZERO),
            "probe_interval",
            "0ns",
        ),
        (
            // Never shorter than a constant 30 s open period: it would never fire.
            Config::builder().probe_interval(Duration::from_secs(30)),
            "probe_interval",
            "30s",
        ),
        (
            Config::builder()
                .open_backoff(Backoff::exponential(2.0, Duration::from_secs(60)))
                .probe_interval(Duration::from_secs(60)),
            "probe_interval",
            "60s",
        ),
        (Config::builder().failure_rate(0.0), "failure_rate", "0.0"),
        (
            Config::builder().failure_rate(f64::NAN),
            "failure_rate",
            "NaN",
        ),
        (
            Config::builder().consecutive_failures(0),
            "consecutive_failures",
            "0",
        ),
        (
            Config::builder().sliding_window(Window::count(0)),
            "sliding_window",
            "Count(0)",
        ),
        (
            Config::builder().sliding_window(Window::count(u32::MAX)),
            "sliding_window",
            "Count(4294967295)",
        ),
        (
            Config::builder().sliding_window(Window::time(Duration::ZERO)),
            "sliding_window",
            "length: 0ns",
        ),
        (
            Config::builder().sliding_window(Window::time(Duration::from_secs(1)).buckets(0)),
            "sliding_window",
            "buckets: 0",
        ),
        (Config::builder().minimum_calls(0), "minimum_calls", "0"),
        (
            Config::builder()
                .sliding_window(Window::count(10))
                .minimum_calls(11),
            "minimum_calls",
            "11",
        ),
        (
            Config::builder().half_open_permits(0),
            "half_open_permits",
            "0",
        ),
        (
            Config::builder().half_open_permits(u32::MAX),
            "half_open_permits",
            "4294967295",
        ),
        (
            Config::builder().half_open_successes(0),
            "half_open_successes",
            "0",
        ),
        (
            Config::builder().open_duration(Duration::ZERO),
            "open_duration",
            "0ns",
        ),
        (
            Config::builder().half_open_max_wait(Duration::ZERO),
            "half_open_max_wait",
            "0ns",
        ),
        (
            Config::builder().slow_call(Duration::ZERO, 0.5),
            "slow_call.threshold",
            "0ns",
        ),
        (
            Config::builder().slow_call(Duration::from_secs(1), 2.0),
            "slow_call.rate",
            "2.0",
        ),
        (
            Config::builder().open_backoff(Backoff::exponential(0.5, Duration::from_secs(60))),
            "open_backoff.multiplier",
            "0.5",
        ),
        (
            Config::builder().open_backoff(Backoff::constant().jitter(1.5)),
            "open_backoff.jitter",
            "1.5",
        ),
        (
            Config::builder().open_backoff(Backoff::constant().jitter(1.0)),
            "open_backoff.jitter",
            "1.0",
        ),
        (
            Config::builder()
                .open_duration(Duration::from_secs(60))
                .open_backoff(Backoff::exponential(2.0, Duration::from_secs(10))),
            "open_backoff.max",
            "10s",
        ),
    ];
    for (builder, field, value) in cases {
        let error = rejected(builder);
        assert_eq!(error.field(), field, "{error}");
        let message = error.to_string();
        assert!(
            message.contains(field) && message.contains(value),
            "{message}"
        );
    }
}

#[test]
fn defaults_are_documented_values() {
    let config = Config::default();
    assert_eq!(config.name(), "circuit-breaker");
    assert_eq!(config.consecutive_failures(), Some(5));
    assert_eq!(config.failure_rate(), None);
    assert_eq!(config.sliding_window(), None);
    assert_eq!(config.open_duration(), Duration::from_secs(30));
    assert_eq!(config.half_open_permits(), 3);
    assert_eq!(config.half_open_successes(), 3);
    assert_eq!(config.half_open_max_wait(), Duration::from_secs(60));
    assert!(!config.backpressure());
}

#[test]
fn a_rate_rule_brings_a_default_window_and_turns_the_streak_rule_off() {
    let config = Config::builder().failure_rate(0.5).build().unwrap();
    assert_eq!(config.sliding_window(), Some(Window::count(100)));
    assert_eq!(config.minimum_calls(), 10);
    assert_eq!(config.consecutive_failures(), None);
    let both = Config::builder()
        .failure_rate(0.5)
        .consecutive_failures(3)
        .build()
        .unwrap();
    assert_eq!(both.consecutive_failures(), Some(3));
}

#[test]
fn extreme_but_valid_values_are_accepted() {
    let config = Config::builder()
        .sliding_window(Window::count(1))
        .failure_rate(1.0)
        .minimum_calls(1)
        .consecutive_failures(u32::MAX)
        .half_open_permits(65_535)
        .half_open_successes(65_535)
        .open_duration(Duration::MAX)
        .build()
        .unwrap();
    assert_eq!(config.minimum_calls(), 1);
    let small_window = Config::builder()
        .sliding_window(Window::count(3))
        .build()
        .unwrap();
    assert_eq!(
        small_window.minimum_calls(),
        3,
        "default minimum capped by the window"
    );
}
