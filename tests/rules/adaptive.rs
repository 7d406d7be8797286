//! The adaptive failure-rate rule: its config checks, the cold start, what it learns
//! and when, and the thresholds it trips at.

use tower_circuit_breaker::{
    AdaptiveFailureRate, CircuitBreaker, Config, ConfigError, State, TransitionReason, Window,
};

use crate::support::builder;

/// Reports `pattern`'s outcomes in order ('F' a failure, anything else a success).
fn feed(breaker: &CircuitBreaker, pattern: &str) {
    for outcome in pattern.chars() {
        let permit = breaker.try_acquire().expect("closed");
        if outcome == 'F' {
            permit.failure();
        } else {
            permit.success();
        }
    }
}

/// Reports `pattern`'s outcomes until the breaker opens; how many were reported then.
fn feed_until_open(breaker: &CircuitBreaker, pattern: &str) -> Option<usize> {
    for (reported, outcome) in pattern.chars().enumerate() {
        feed(breaker, &outcome.to_string());
        if breaker.state() == State::Open {
            return Some(reported + 1);
        }
    }
    None
}

/// The reason of the first transition among the events received so far.
fn first_transition(
    events: &mut tokio::sync::broadcast::Receiver<tower_circuit_breaker::Event>,
) -> TransitionReason {
    loop {
        match events.try_recv().expect("a transition was sent") {
            tower_circuit_breaker::Event::StateTransition { reason, .. } => return reason,
            _ => continue,
        }
    }
}

/// `calls` outcomes of which one in `every` fails, evenly spread.
fn one_in(every: usize, calls: usize) -> String {
    (0..calls)
        .map(|i| if i % every == every - 1 { 'F' } else { 'S' })
        .collect()
}

fn adaptive(rule: AdaptiveFailureRate) -> CircuitBreaker {
    CircuitBreaker::new(
        builder()
            .failure_rate_adaptive(rule)
            .sliding_window(Window::count(100))
            .minimum_calls(100)
            .build()
            .expect("valid"),
    )
}

fn invalid(result: Result<Config, ConfigError>) -> (String, String) {
    let error = result.expect_err("must be rejected");
    (error.field().to_owned(), error.to_string())
}

#[test]
fn config_errors_name_the_setting() {
    let (field, message) = invalid(
        builder()
            .failure_rate(0.5)
            .failure_rate_adaptive(AdaptiveFailureRate::new())
            .build(),
    );
    assert_eq!(field, "failure_rate");
    assert!(message.contains("not both"), "{message}");

    let (field, message) = invalid(
        builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new())
            .sliding_window(Window::time(std::time::Duration::from_secs(10)))
            .build(),
    );
    assert_eq!(field, "sliding_window");
    assert!(message.contains("count window"), "{message}");

    let (field, _) = invalid(
        builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new().margin(1.5))
            .build(),
    );
    assert_eq!(field, "failure_rate_adaptive.margin");
    let (field, _) = invalid(
        builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new().tolerance(f64::NAN))
            .build(),
    );
    assert_eq!(field, "failure_rate_adaptive.tolerance");
    let (field, message) = invalid(
        builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new().floor(0.3).cap(0.2))
            .build(),
    );
    assert_eq!(field, "failure_rate_adaptive.cap");
    assert!(message.contains("0.2"), "names the value: {message}");
    let (field, _) = invalid(
        builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new().streak_probability(1.0))
            .build(),
    );
    assert_eq!(field, "failure_rate_adaptive.streak_probability");
    let (field, _) = invalid(
        builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new().horizon(50))
            .build(),
    );
    assert_eq!(field, "failure_rate_adaptive.horizon");
    let (field, _) = invalid(
        builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new().warm_up(99))
            .build(),
    );
    assert_eq!(field, "failure_rate_adaptive.warm_up");

    // A rate rule: no default streak rule, the default count window.
    let config = builder()
        .failure_rate_adaptive(AdaptiveFailureRate::new())
        .build()
        .unwrap();
    assert_eq!(config.consecutive_failures(), None);
    assert_eq!(config.sliding_window(), Some(Window::count(100)));
    assert_eq!(config.failure_rate(), None);
    assert_eq!(
        config.failure_rate_adaptive(),
        Some(AdaptiveFailureRate::new())
    );
}

#[test]
fn cold_start_trips_at_the_cap() {
    let breaker = adaptive(AdaptiveFailureRate::new().cap(0.5));
    // 40 %: below the cap, and nothing learned yet.
    feed(&breaker, &"FFSSS".repeat(20));
    assert_eq!(breaker.state(), State::Closed);
    let metrics = breaker.metrics();
    assert_eq!(metrics.failure_rate_baseline, None, "still warming up");
    assert_eq!(metrics.failure_rate_threshold, Some(0.5));
    // Each failure that replaces one of the oldest calls' successes adds one: the 18th
    // failure reaches 50.
    assert_eq!(
        feed_until_open(&breaker, &"F".repeat(20)),
        Some(18),
        "50 % of the last 100"
    );
}

#[test]
fn learns_a_noisy_backend_and_trips_above_its_normal() {
    // A backend that fails 20 % of calls, for the whole warm-up (10 windows).
    let breaker = adaptive(AdaptiveFailureRate::new().tolerance(4.0));
    feed(&breaker, &one_in(5, 1_000));
    let metrics = breaker.metrics();
    let baseline = metrics.failure_rate_baseline.expect("warmed up");
    assert!((baseline - 0.2).abs() < 1e-6, "{baseline}");
    // 0.2 + max(0.1, 4 * sqrt(0.2 * 0.8 / 100)) = 0.36.
    let threshold = metrics.failure_rate_threshold.unwrap();
    assert!((threshold - 0.36).abs() < 1e-6, "{threshold}");

    // 30 % is noise for this backend (a window of it is learned too: the baseline is
    // still the plain mean of its first windows); 40 % is not.
    feed(&breaker, &"FFFSSSSSSS".repeat(10));
    assert_eq!(breaker.state(), State::Closed);
    let mut transitions = breaker.subscribe();
    let reported = feed_until_open(&breaker, &"FFFFSSSSSS".repeat(10));
    assert!(reported.is_some(), "40 % opens it");
    let reason = first_transition(&mut transitions);
    let TransitionReason::AdaptiveFailureRate {
        rate,
        threshold,
        baseline,
        calls,
    } = reason
    else {
        panic!("not the adaptive rule: {reason:?}");
    };
    assert!(rate >= threshold && rate < 0.4, "{rate} >= {threshold}");
    assert_eq!(calls, 100);
    assert!(baseline.is_some_and(|b| (b - 0.2).abs() < 0.02));
    assert!(
        reason.to_string().contains("adaptive threshold"),
        "{reason}"
    );
}

#[test]
fn a_clean_backend_trips_at_the_floor_plus_a_little() {
    let breaker = adaptive(AdaptiveFailureRate::new());
    feed(&breaker, &"S".repeat(1_000));
    let metrics = breaker.metrics();
    assert_eq!(metrics.failure_rate_baseline, Some(0.0));
    assert_eq!(metrics.failure_rate_threshold, Some(0.1));
    // A partial outage of 15 % no fixed 50 % rule would see.
    feed(&breaker, &one_in(7, 70));
    assert_eq!(breaker.state(), State::Open);
}

#[test]
fn a_run_of_failures_a_healthy_backend_would_not_make_opens_at_once() {
    let breaker = adaptive(AdaptiveFailureRate::new());
    // 0.5 % noise: one failure in each window of 200 calls.
    feed(&breaker, &one_in(200, 1_000));
    let baseline = breaker.metrics().failure_rate_baseline.unwrap();
    assert!((baseline - 0.005).abs() < 1e-6, "{baseline}");
    // 0.005^4 < 1e-8 < 0.005^3: the fourth failure in a row opens it (the last call
    // fed above failed: a success ends that run first).
    let mut transitions = breaker.subscribe();
    feed(&breaker, "SFFF");
    assert_eq!(breaker.state(), State::Closed);
    feed(&breaker, "F");
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(
        first_transition(&mut transitions),
        TransitionReason::ConsecutiveFailures { count: 4 }
    );
}

#[test]
fn the_run_rule_waits_for_the_warm_up_and_can_be_turned_off() {
    let breaker = adaptive(AdaptiveFailureRate::new());
    feed(&breaker, &"S".repeat(900));
    feed(&breaker, &"F".repeat(40));
    assert_eq!(
        breaker.state(),
        State::Closed,
        "no run rule before the warm-up"
    );

    let breaker = adaptive(AdaptiveFailureRate::new().streak_probability(0.0));
    feed(&breaker, &"S".repeat(1_000));
    assert_eq!(
        feed_until_open(&breaker, &"F".repeat(20)),
        Some(10),
        "10 % of the last 100: the floor"
    );
}

#[test]
fn the_window_that_trips_and_manual_controls_teach_it_nothing() {
    let breaker = CircuitBreaker::new(
        builder()
            .failure_rate_adaptive(
                AdaptiveFailureRate::new()
                    .horizon(200)
                    .warm_up(100)
                    .streak_probability(0.0),
            )
            .sliding_window(Window::count(100))
            .minimum_calls(100)
            .half_open_permits(1)
            .half_open_successes(1)
            .open_duration(std::time::Duration::from_secs(1))
            .build()
            .unwrap(),
    );
    feed(&breaker, &one_in(20, 100));
    let learned = breaker.metrics().failure_rate_baseline.expect("one window");
    assert!((learned - 0.05).abs() < 1e-6, "{learned}");
    breaker.force_open();
    breaker.reset();
    assert_eq!(breaker.metrics().failure_rate_baseline, Some(learned));
    // An outage trips it as the window fills (20 % >= 0.05 + 6 * sqrt(0.05 * 0.95 / 100)
    // = 0.18); that window is not learned.
    feed(&breaker, &"S".repeat(80));
    assert_eq!(feed_until_open(&breaker, &"F".repeat(20)), Some(20));
    assert_eq!(breaker.metrics().failure_rate_baseline, Some(learned));
}
