//! The documented resilience stack, built from Tower's own layers:
//!
//! ```text
//! Retry( CircuitBreaker( Timeout( ConcurrencyLimit + LoadShed( inner ))))
//! ```
//!
//! Each claim of the README's "Resilience stack" section is proven here in paused time:
//! a timeout inside the breaker counts as a failure; a bulkhead rejection is ignored by
//! default and can be counted; retries skip an open breaker; and the wrong order
//! (timeout outside the breaker) hides the failures from it.

use std::time::Duration;

use tokio::time::Instant;
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::util::BoxCloneService;
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::retry::RetryPolicy;
use tower_circuit_breaker::{
    CircuitBreakerLayer, CircuitOpen, Classify, Config, Error, EveryErrorFails, State,
};

use crate::support::{Backend, Mode};

const TIMEOUT: Duration = Duration::from_millis(100);

fn config(consecutive_failures: u32) -> Config {
    crate::support::builder()
        .consecutive_failures(consecutive_failures)
        .open_duration(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// `CircuitBreaker( Timeout( LoadShed( ConcurrencyLimit( backend ))))`, errors boxed.
fn guarded<C>(
    breaker: CircuitBreakerLayer<C>,
    backend: &Backend,
    limit: usize,
) -> BoxCloneService<u32, u32, BoxError>
where
    C: Classify<u32, BoxError> + Clone + Send + 'static,
{
    ServiceBuilder::new()
        .map_err(Error::<BoxError>::into_box_error)
        .layer(breaker)
        .timeout(TIMEOUT)
        .load_shed()
        .concurrency_limit(limit)
        .service(backend.clone())
        .boxed_clone()
}

/// The whole stack: `Retry` around [`guarded`].
fn full_stack(
    breaker: CircuitBreakerLayer,
    backend: &Backend,
    retry: RetryPolicy,
) -> BoxCloneService<u32, u32, BoxError> {
    ServiceBuilder::new()
        .layer(retry.into_layer())
        .service(guarded(breaker, backend, 10))
        .boxed_clone()
}

fn no_retry() -> RetryPolicy {
    RetryPolicy::builder().max_attempts(1).build().unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_timeout_inside_the_breaker_counts_as_a_failure() {
    let backend = Backend::new(Mode::Hang);
    let breaker = CircuitBreakerLayer::new(config(3));
    let svc = full_stack(breaker.clone(), &backend, no_retry());

    for _ in 0..3 {
        let start = Instant::now();
        let err = svc.clone().oneshot(1).await.unwrap_err();
        assert!(err.is::<Elapsed>(), "{err}");
        assert_eq!(start.elapsed(), TIMEOUT);
    }
    assert_eq!(breaker.breaker().metrics().failures, 3);
    assert_eq!(breaker.breaker().state(), State::Open);

    // Open: the next call fails fast, without waiting for a timeout or reaching the backend.
    let start = Instant::now();
    let err = svc.oneshot(1).await.unwrap_err();
    assert!(CircuitOpen::find(&*err).is_some(), "{err}");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(backend.hits(), 3);
}

#[tokio::test(start_paused = true)]
async fn the_wrong_order_timeout_outside_the_breaker_hides_the_failures() {
    let backend = Backend::new(Mode::Hang);
    let breaker = CircuitBreakerLayer::new(config(3));
    // The pitfall: the timeout drops the breaker's response future, which records the
    // call as cancelled (ignored), never as a failure.
    let svc = ServiceBuilder::new()
        .timeout(TIMEOUT)
        .layer(breaker.clone())
        .service(backend.clone());

    for _ in 0..10 {
        let err = svc.clone().oneshot(1).await.unwrap_err();
        assert!(err.is::<Elapsed>(), "{err}");
    }
    let metrics = breaker.breaker().metrics();
    assert_eq!(
        breaker.breaker().state(),
        State::Closed,
        "the breaker never saw a failure"
    );
    assert_eq!(metrics.failures, 0);
    assert_eq!(metrics.ignored, 10);
    assert_eq!(
        backend.hits(),
        10,
        "every call still waits on the hung backend"
    );
}

/// Occupies the only concurrency slot of `svc` with a call that hangs, then makes
/// `calls` more calls, returning their errors.
async fn overflow(svc: BoxCloneService<u32, u32, BoxError>, calls: usize) -> Vec<BoxError> {
    let mut holder = svc.clone();
    let held = holder.ready().await.unwrap().call(0);
    let mut errors = Vec::new();
    for _ in 0..calls {
        errors.push(svc.clone().oneshot(1).await.unwrap_err());
    }
    drop(held);
    errors
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_rejection_is_ignored_by_default() {
    let backend = Backend::new(Mode::Hang);
    let breaker = CircuitBreakerLayer::new(config(3));
    let errors = overflow(guarded(breaker.clone(), &backend, 1), 10).await;

    assert!(errors.iter().all(|e| e.is::<Overloaded>()), "{errors:?}");
    let metrics = breaker.breaker().metrics();
    assert_eq!(
        breaker.breaker().state(),
        State::Closed,
        "we are full, the backend is not sick"
    );
    assert_eq!(metrics.failures, 0);
    assert_eq!(
        metrics.ignored, 11,
        "10 rejections and the cancelled holder"
    );
    assert_eq!(backend.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_bulkhead_rejection_can_be_counted_as_a_failure() {
    let backend = Backend::new(Mode::Hang);
    let breaker = CircuitBreakerLayer::new(config(3)).classify(EveryErrorFails);
    let errors = overflow(guarded(breaker.clone(), &backend, 1), 4).await;

    assert!(
        errors[..3].iter().all(|e| e.is::<Overloaded>()),
        "{errors:?}"
    );
    assert!(CircuitOpen::find(&*errors[3]).is_some(), "{:?}", errors[3]);
    assert_eq!(breaker.breaker().metrics().failures, 3);
    assert_eq!(breaker.breaker().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn retries_back_off_through_the_stack_and_stop_at_an_open_breaker() {
    let backend = Backend::new(Mode::Fail);
    let breaker = CircuitBreakerLayer::new(config(3));
    let retry = RetryPolicy::builder()
        .base_delay(Duration::from_millis(10))
        .jitter(0.0)
        .max_attempts(10)
        .seed(3)
        .build()
        .unwrap();
    let svc = full_stack(breaker.clone(), &backend, retry);

    let start = Instant::now();
    let err = svc.oneshot(1).await.unwrap_err();
    // Three failures (waits 10 + 20 ms) trip the breaker; the 4th attempt is rejected
    // and not retried, although 10 attempts were allowed.
    assert!(CircuitOpen::find(&*err).is_some(), "{err}");
    assert_eq!(backend.hits(), 3);
    assert_eq!(start.elapsed(), Duration::from_millis(10 + 20 + 40));
    assert_eq!(breaker.breaker().metrics().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn a_slow_backend_recovers_through_the_full_stack() {
    let backend = Backend::new(Mode::Hang);
    let config = crate::support::builder()
        .consecutive_failures(2)
        .open_duration(Duration::from_millis(500))
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap();
    let breaker = CircuitBreakerLayer::new(config);
    let retry = RetryPolicy::builder()
        .base_delay(Duration::from_millis(50))
        .max_delay(Duration::from_secs(1))
        .jitter(0.0)
        .max_attempts(4)
        .wait_retry_after(true)
        .build()
        .unwrap();
    let svc = full_stack(breaker.clone(), &backend, retry);

    // Two timeouts trip the breaker; the backend heals while it is open; the retry waits
    // out the open period and its probe closes the breaker.
    let healer = backend.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        healer.set(Mode::Succeed);
    });
    let start = Instant::now();
    assert_eq!(svc.oneshot(9).await.unwrap(), 9);
    // 100 (timeout) + 50 (backoff) + 100 (timeout: trips, open until 250 + 500) + 100
    // (backoff, then rejected) + 400 (the rest of the open period, then the probe).
    assert_eq!(start.elapsed(), Duration::from_millis(100 + 50 + 100 + 500));
    assert_eq!(breaker.breaker().state(), State::Closed);
    assert_eq!(backend.hits(), 3);
}
