//! Outcome classification and slow calls, through the Tower service in paused time:
//! ignored outcomes neither count nor reset, slow calls trip on the slow-call rate.

use std::time::Duration;

use tower::{service_fn, Layer, Service, ServiceExt};
use tower_circuit_breaker::{CircuitBreaker, CircuitBreakerLayer, Config, Outcome, State, Window};

const SECOND: Duration = Duration::from_secs(1);

/// A backend answering `Ok(code)`: 0 succeeds, 4 is "the caller's fault", 5 fails.
fn classify_code(result: Result<&u16, &std::convert::Infallible>) -> Outcome {
    match result {
        Ok(0) => Outcome::Success,
        Ok(4) => Outcome::Ignored,
        _ => Outcome::Failure,
    }
}

/// `request` through `svc` once it is ready.
async fn call<S, R>(svc: &mut S, request: R) -> Result<S::Response, S::Error>
where
    S: Service<R>,
{
    svc.ready().await?.call(request).await
}

#[tokio::test(start_paused = true)]
async fn ignored_results_do_not_count_toward_the_rate_or_the_minimum() {
    let layer = CircuitBreakerLayer::new(
        Config::builder()
            .failure_rate(0.5)
            .sliding_window(Window::count(4))
            .minimum_calls(4)
            .build()
            .unwrap(),
    )
    .classify(classify_code);
    let mut svc = layer.layer(service_fn(|code: u16| async move {
        Ok::<_, std::convert::Infallible>(code)
    }));
    // Two failures, then many ignored calls: the window must still hold only 2 calls,
    // so the minimum is not reached and the rate is not diluted.
    for code in [5, 5, 4, 4, 4, 4, 4, 4] {
        call(&mut svc, code).await.unwrap();
    }
    let metrics = layer.breaker().metrics();
    assert_eq!(metrics.state, State::Closed);
    assert_eq!((metrics.failures, metrics.ignored), (2, 6));
    // Two more successes reach the minimum at exactly 50% failures: trips.
    call(&mut svc, 0).await.unwrap();
    assert_eq!(layer.breaker().state(), State::Closed);
    call(&mut svc, 0).await.unwrap();
    assert_eq!(layer.breaker().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn ignored_results_do_not_reset_a_failure_streak() {
    let layer =
        CircuitBreakerLayer::new(Config::builder().consecutive_failures(2).build().unwrap())
            .classify(classify_code);
    let mut svc = layer.layer(service_fn(|code: u16| async move {
        Ok::<_, std::convert::Infallible>(code)
    }));
    call(&mut svc, 5).await.unwrap();
    for _ in 0..5 {
        call(&mut svc, 4).await.unwrap();
    }
    assert_eq!(layer.breaker().state(), State::Closed);
    call(&mut svc, 5).await.unwrap();
    assert_eq!(
        layer.breaker().state(),
        State::Open,
        "the streak survived the ignored calls"
    );
}

#[tokio::test(start_paused = true)]
async fn an_ignored_probe_neither_closes_nor_reopens() {
    let layer = CircuitBreakerLayer::new(
        Config::builder()
            .consecutive_failures(1)
            .open_duration(SECOND)
            .half_open_permits(1)
            .half_open_successes(1)
            .build()
            .unwrap(),
    )
    .classify(classify_code);
    let mut svc = layer.layer(service_fn(|code: u16| async move {
        Ok::<_, std::convert::Infallible>(code)
    }));
    call(&mut svc, 5).await.unwrap();
    tokio::time::advance(SECOND).await;
    call(&mut svc, 4).await.unwrap();
    assert_eq!(layer.breaker().state(), State::HalfOpen);
    call(&mut svc, 4).await.unwrap(); // the permit came back: a second probe is admitted
    call(&mut svc, 0).await.unwrap();
    assert_eq!(layer.breaker().state(), State::Closed);
}

/// A backend that answers after `delay_ms` milliseconds with `Ok`, or `Err` if `fail`.
async fn timed(request: (u64, bool)) -> Result<(), &'static str> {
    tokio::time::sleep(Duration::from_millis(request.0)).await;
    if request.1 {
        Err("failed")
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn slow_successes_trip_on_the_slow_call_rate_not_the_failure_rate() {
    let layer = CircuitBreakerLayer::new(
        Config::builder()
            .failure_rate(0.5)
            .slow_call(Duration::from_millis(500), 0.75)
            .sliding_window(Window::count(4))
            .minimum_calls(4)
            .build()
            .unwrap(),
    );
    let mut svc = layer.layer(service_fn(timed));
    for request in [(400, false), (600, false), (900, false)] {
        call(&mut svc, request).await.unwrap();
    }
    assert_eq!(layer.breaker().metrics().slow_calls, 2);
    call(&mut svc, (1_000, false)).await.unwrap();
    let metrics = layer.breaker().metrics();
    assert_eq!(
        (metrics.calls, metrics.slow_calls, metrics.failures),
        (4, 3, 0)
    );
    assert!((metrics.slow_call_rate - 0.75).abs() < 1e-9);
    assert_eq!(
        metrics.state,
        State::Open,
        "75% slow calls trip the slow-call rule"
    );
}

#[tokio::test(start_paused = true)]
async fn a_slow_failure_counts_as_both_slow_and_failed() {
    let layer = CircuitBreakerLayer::new(
        Config::builder()
            .slow_call(SECOND, 1.0)
            .failure_rate(1.0)
            .sliding_window(Window::time(60 * SECOND))
            .minimum_calls(3)
            .build()
            .unwrap(),
    );
    let mut svc = layer.layer(service_fn(timed));
    let _ = call(&mut svc, (2_000, true)).await;
    let _ = call(&mut svc, (10, false)).await;
    let metrics = layer.breaker().metrics();
    assert_eq!(
        (metrics.slow_calls, metrics.failures, metrics.successes),
        (1, 1, 1)
    );
    assert!((metrics.slow_call_rate - 0.5).abs() < 1e-9);
    assert!((metrics.failure_rate - 0.5).abs() < 1e-9);
}

#[tokio::test(start_paused = true)]
async fn slow_calls_slide_out_of_a_time_window() {
    let layer = CircuitBreakerLayer::new(
        Config::builder()
            .slow_call(SECOND, 0.5)
            .sliding_window(Window::time(10 * SECOND))
            .minimum_calls(4)
            .build()
            .unwrap(),
    );
    let mut svc = layer.layer(service_fn(timed));
    for _ in 0..2 {
        call(&mut svc, (1_500, false)).await.unwrap();
    }
    tokio::time::advance(20 * SECOND).await; // the slow calls are out of the window
    for _ in 0..2 {
        call(&mut svc, (10, false)).await.unwrap();
    }
    call(&mut svc, (1_500, false)).await.unwrap();
    assert_eq!(
        layer.breaker().state(),
        State::Closed,
        "1 of 3 recent calls was slow"
    );
    call(&mut svc, (1_500, false)).await.unwrap();
    assert_eq!(
        layer.breaker().state(),
        State::Open,
        "2 of 4 recent calls were slow"
    );
}

#[tokio::test(start_paused = true)]
async fn a_call_is_slow_only_when_strictly_longer_than_the_threshold() {
    // "Calls slower than the threshold" (the config docs, and Resilience4j).
    let breaker = CircuitBreaker::new(
        Config::builder()
            .slow_call(SECOND, 1.0)
            .sliding_window(Window::count(10))
            .minimum_calls(10)
            .build()
            .unwrap(),
    );
    let permit = breaker.try_acquire().unwrap();
    tokio::time::advance(SECOND).await;
    assert_eq!(permit.elapsed(), Some(SECOND));
    permit.success();
    assert_eq!(
        breaker.metrics().slow_calls,
        0,
        "exactly the threshold is not slow"
    );
    let permit = breaker.try_acquire().unwrap();
    tokio::time::advance(SECOND + Duration::from_nanos(1)).await;
    permit.success();
    assert_eq!(breaker.metrics().slow_calls, 1);
}
