//! Extreme but valid configurations, and clock jumps, behave as documented: no panic,
//! no overflow, no wedged state.

use std::time::Duration;

use tokio::time::advance;
use tower_circuit_breaker::{CircuitBreaker, Config, ConfigBuilder, State, Window};

const YEAR: Duration = Duration::from_secs(365 * 24 * 3_600);

fn breaker(builder: ConfigBuilder) -> CircuitBreaker {
    CircuitBreaker::new(builder.build().expect("valid config"))
}

fn fail(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("admitted").failure();
}

fn succeed(breaker: &CircuitBreaker) {
    breaker.try_acquire().expect("admitted").success();
}

#[tokio::test(start_paused = true)]
async fn a_window_of_one_call_follows_the_last_outcome() {
    let breaker = breaker(
        Config::builder()
            .failure_rate(1.0)
            .sliding_window(Window::count(1))
            .minimum_calls(1),
    );
    for _ in 0..100 {
        succeed(&breaker);
    }
    assert_eq!(breaker.state(), State::Closed);
    fail(&breaker);
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_rate_threshold_of_one_needs_every_call_in_the_window_to_fail() {
    let breaker = breaker(
        Config::builder()
            .failure_rate(1.0)
            .sliding_window(Window::count(4))
            .minimum_calls(4),
    );
    succeed(&breaker);
    for _ in 0..3 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), State::Closed, "3 of 4 is below 100%");
    fail(&breaker); // the success slides out: 4 of 4
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_streak_threshold_of_u32_max_never_overflows() {
    let breaker = breaker(Config::builder().consecutive_failures(u32::MAX));
    for _ in 0..100_000 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().failures, 100_000);
}

#[tokio::test(start_paused = true)]
async fn the_largest_probe_limits_admit_and_count_every_probe() {
    let breaker = breaker(
        Config::builder()
            .consecutive_failures(1)
            .open_duration(Duration::from_secs(1))
            .half_open_permits(65_535)
            .half_open_successes(65_535),
    );
    fail(&breaker);
    advance(Duration::from_secs(1)).await;
    let probes: Vec<_> = (0..65_535)
        .map(|_| breaker.try_acquire().expect("a probe slot"))
        .collect();
    assert!(breaker.try_acquire().is_err(), "every slot is taken");
    assert_eq!(breaker.metrics().probes_in_flight, 65_535);
    probes.into_iter().for_each(|probe| probe.success());
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn an_open_duration_of_duration_max_saturates_instead_of_overflowing() {
    let breaker = breaker(
        Config::builder()
            .consecutive_failures(1)
            .open_duration(Duration::MAX),
    );
    fail(&breaker);
    advance(100 * YEAR).await;
    let open = breaker.try_acquire().expect_err("still open");
    assert!(open.retry_after.is_some_and(|left| left > 100 * YEAR));
    breaker.reset();
    succeed(&breaker);
}

#[tokio::test(start_paused = true)]
async fn a_clock_jump_of_a_century_empties_a_time_window() {
    let breaker = breaker(
        Config::builder()
            .failure_rate(0.5)
            .sliding_window(Window::time(Duration::from_secs(60)))
            .minimum_calls(10),
    );
    for _ in 0..9 {
        fail(&breaker);
    }
    advance(100 * YEAR).await;
    fail(&breaker); // 1 call in the window, below the minimum: the 9 old ones are gone
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().calls, 10, "lifetime counts are kept");
    for _ in 0..9 {
        fail(&breaker);
    }
    assert_eq!(breaker.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_clock_jump_in_open_and_half_open_moves_on_without_wedging() {
    let breaker = breaker(
        Config::builder()
            .consecutive_failures(1)
            .open_duration(Duration::from_secs(30))
            .half_open_permits(1)
            .half_open_max_wait(Duration::from_secs(10)),
    );
    fail(&breaker);
    advance(100 * YEAR).await;
    let probe = breaker.try_acquire().expect("open duration long over");
    assert_eq!(breaker.state(), State::HalfOpen);
    advance(100 * YEAR).await; // the probe hangs for a century
    std::mem::forget(probe); // never reported, never dropped
    let rejected = breaker.try_acquire().expect_err("a hung probe reopens");
    assert_eq!(rejected.state, State::Open);
    advance(Duration::from_secs(30)).await;
    succeed(&breaker);
    let metrics = breaker.metrics();
    assert!(metrics.state_changes >= 4, "{metrics:?}");
}
