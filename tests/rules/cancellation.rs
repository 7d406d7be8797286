//! Cancellation and panics: dropped futures in every state, panicking inner futures
//! and classifiers. None of them may leak a probe permit or wedge half-open.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::support::*;
use futures::FutureExt;
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_circuit_breaker::{CircuitBreakerLayer, Config, Outcome, State};

const SECOND: Duration = Duration::from_secs(1);

fn probing_config() -> Config {
    builder()
        .consecutive_failures(1)
        .open_duration(10 * SECOND)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

/// Trips the breaker and lets the open duration pass.
async fn half_open(svc: &mut Guarded, backend: &Backend) {
    backend.set(Mode::Fail);
    calls(svc, 1).await;
    tokio::time::advance(10 * SECOND).await;
}

#[tokio::test(start_paused = true)]
async fn dropping_futures_in_every_state_leaks_nothing() {
    let (mut svc, backend) = guarded(probing_config(), Mode::Slow(SECOND));
    let breaker = svc.breaker().clone();

    // Closed: dropped before the first poll, and while the inner call is pending.
    svc.ready().await.unwrap();
    drop(svc.call(1));
    svc.ready().await.unwrap();
    let mut pending = svc.call(1);
    assert!((&mut pending).now_or_never().is_none());
    drop(pending);
    assert_eq!(breaker.metrics().ignored, 2);
    assert_eq!(breaker.state(), State::Closed);

    // Half-open.
    half_open(&mut svc, &backend).await;
    // A probe dropped before, and after, its inner call finished.
    backend.set(Mode::Slow(SECOND));
    svc.ready().await.unwrap();
    drop(svc.call(1));
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    svc.ready().await.unwrap();
    let mut probe = svc.call(1);
    assert!((&mut probe).now_or_never().is_none());
    tokio::time::advance(2 * SECOND).await; // the inner call has finished by now
    drop(probe);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    assert_eq!(
        breaker.state(),
        State::HalfOpen,
        "dropped probes decide nothing"
    );

    // ...and the breaker still closes normally.
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn dropping_a_rejection_future_changes_nothing() {
    let (mut svc, backend) = guarded(probing_config(), Mode::Fail);
    calls(&mut svc, 1).await;
    svc.ready().await.unwrap();
    drop(svc.call(1));
    let metrics = svc.breaker().metrics();
    assert_eq!(
        (metrics.state, metrics.rejected, metrics.ignored),
        (State::Open, 1, 0)
    );
    assert_eq!(backend.hits(), 1);
}

/// A future that panics when polled.
struct Boom;

impl Future for Boom {
    type Output = Result<u32, BackendError>;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Self::Output> {
        panic!("inner future exploded")
    }
}

#[tokio::test(start_paused = true)]
async fn a_panicking_inner_future_is_a_failure_and_frees_its_probe() {
    let layer = CircuitBreakerLayer::new(probing_config());
    let breaker = layer.breaker().clone();
    let svc = layer.layer(service_fn(|_: u32| Boom));

    // Closed: the panic, caught by Tokio, counts as a failure and trips the breaker.
    let task = tokio::spawn(svc.clone().oneshot(1));
    assert!(task.await.unwrap_err().is_panic());
    assert_eq!(breaker.metrics().failures, 1);
    assert_eq!(breaker.state(), State::Open);

    // Half-open: the panicking probe returns its permit and reopens the breaker.
    tokio::time::advance(10 * SECOND).await;
    let task = tokio::spawn(svc.clone().oneshot(2));
    assert!(task.await.unwrap_err().is_panic());
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.probes_in_flight, metrics.failures),
        (State::Open, 0, 2)
    );

    // Still usable: after the open duration a healthy call closes it.
    breaker.reset();
    let healthy = layer.layer(service_fn(|n: u32| async move { Ok::<_, BackendError>(n) }));
    assert_eq!(healthy.oneshot(3).await.unwrap(), 3);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_panic_caught_before_the_future_is_dropped_is_still_a_failure() {
    // `catch_unwind` keeps the panicked future alive and drops it later, outside the
    // unwind, where `std::thread::panicking()` is false.
    let layer = CircuitBreakerLayer::new(probing_config());
    let mut svc = layer.layer(service_fn(|_: u32| Boom));
    svc.ready().await.unwrap();
    let mut caught = std::panic::AssertUnwindSafe(svc.call(1)).catch_unwind();
    assert!((&mut caught).await.is_err());
    assert!(!std::thread::panicking());
    drop(caught);
    assert_eq!(layer.breaker().metrics().failures, 1);
    assert_eq!(layer.breaker().metrics().ignored, 0);
    assert_eq!(layer.breaker().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_panic_unwinding_through_the_future_is_a_failure() {
    let layer = CircuitBreakerLayer::new(probing_config());
    let mut svc = layer.layer(service_fn(|_: u32| Boom));
    svc.ready().await.unwrap();
    let future = svc.call(1);
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        futures::executor::block_on(future) // dropped while unwinding
    }));
    assert!(caught.is_err());
    assert_eq!(layer.breaker().metrics().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_classifier_does_not_wedge_half_open() {
    let layer = CircuitBreakerLayer::new(probing_config()).classify(
        |result: Result<&u32, &BackendError>| match result {
            Ok(7) => panic!("classifier bug"),
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        },
    );
    let breaker = layer.breaker().clone();
    let backend = Backend::new(Mode::Fail);
    let svc = layer.layer(backend.clone());
    let _ = svc.clone().oneshot(1).await;
    assert_eq!(breaker.state(), State::Open);
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Succeed);
    let task = tokio::spawn(svc.clone().oneshot(7)); // the backend echoes 7: classifier panics
    assert!(task.await.unwrap_err().is_panic());
    let metrics = breaker.metrics();
    assert_eq!(metrics.probes_in_flight, 0, "permit returned");
    assert_eq!(
        metrics.state,
        State::Open,
        "an unjudged probe is not a success"
    );
    tokio::time::advance(10 * SECOND).await;
    assert_eq!(svc.oneshot(1).await.unwrap(), 1);
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_service_dropped_with_a_reserved_probe_returns_it() {
    let (mut svc, backend) = guarded(probing_config(), Mode::Fail);
    half_open(&mut svc, &backend).await;
    let mut reserved = svc.clone();
    reserved.ready().await.unwrap();
    assert_eq!(svc.breaker().metrics().probes_in_flight, 1);
    drop(reserved);
    assert_eq!(svc.breaker().metrics().probes_in_flight, 0);
    assert_eq!(svc.breaker().state(), State::HalfOpen);
}
