//! The Tower side: readiness semantics, shared state across layers and clones,
//! backpressure, and errors as seen through other Tower layers.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::support::*;
use futures::FutureExt;
use manual_poll::*;
use tower::{Layer, Service, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::{
    BoxError, CircuitBreaker, CircuitBreakerLayer, CircuitOpen, Error, Outcome, State,
};

const SECOND: Duration = Duration::from_secs(1);

/// Minimal helpers to poll a service by hand with a counting waker.
mod manual_poll {
    use super::*;

    pub struct CountingWaker(pub AtomicUsize);

    impl futures::task::ArcWake for CountingWaker {
        fn wake_by_ref(arc_self: &Arc<Self>) {
            arc_self.0.fetch_add(1, SeqCst);
        }
    }

    pub fn counting_waker() -> (Arc<CountingWaker>, std::task::Waker) {
        let counter = Arc::new(CountingWaker(AtomicUsize::new(0)));
        let waker = futures::task::waker(counter.clone());
        (counter, waker)
    }

    pub fn poll_ready<S: Service<u32>>(
        svc: &mut S,
        waker: &std::task::Waker,
    ) -> Poll<Result<(), S::Error>> {
        svc.poll_ready(&mut Context::from_waker(waker))
    }
}

fn one_failure_config() -> tower_circuit_breaker::ConfigBuilder {
    builder()
        .consecutive_failures(1)
        .open_duration(10 * SECOND)
        .half_open_permits(1)
        .half_open_successes(1)
}

#[tokio::test(start_paused = true)]
async fn open_breaker_is_ready_without_polling_inner_and_rejects_at_once() {
    let (mut svc, backend) = guarded(one_failure_config().build().unwrap(), Mode::Fail);
    calls(&mut svc, 1).await;
    let polls_before = backend.ready_polls();
    let (_, waker) = counting_waker();
    assert!(matches!(poll_ready(&mut svc, &waker), Poll::Ready(Ok(()))));
    assert_eq!(
        backend.ready_polls(),
        polls_before,
        "inner not polled while open"
    );
    let rejected = svc
        .call(1)
        .now_or_never()
        .expect("a rejection is ready at once");
    assert!(is_rejection(&rejected));
    assert_eq!(backend.hits(), 1);
    assert_eq!(svc.breaker().metrics().rejected, 1);
}

#[tokio::test(start_paused = true)]
async fn every_layer_call_and_clone_shares_one_breaker() {
    let layer = CircuitBreakerLayer::new(one_failure_config().build().unwrap());
    let backend = Backend::new(Mode::Fail);
    let mut first = layer.layer(backend.clone());
    let mut second = layer.clone().layer(backend.clone());
    let mut cloned = first.clone();
    calls(&mut first, 1).await;
    assert!(is_rejection(&call(&mut second).await));
    assert!(is_rejection(&call(&mut cloned).await));
    let from_handle = CircuitBreaker::layer(layer.breaker()).layer(backend.clone());
    assert_eq!(from_handle.breaker().state(), State::Open);
    assert_eq!(backend.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn half_open_permit_is_reserved_in_poll_ready() {
    let (mut svc, backend) = guarded(one_failure_config().build().unwrap(), Mode::Fail);
    calls(&mut svc, 1).await;
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Succeed);
    let mut other = svc.clone();
    svc.ready().await.unwrap();
    assert_eq!(
        svc.breaker().metrics().probes_in_flight,
        1,
        "reserved before call"
    );
    other.ready().await.unwrap(); // no permit left: admitted as a rejection
    assert!(is_rejection(&other.call(1).await));
    assert_eq!(svc.call(1).await.unwrap(), 1);
    assert_eq!(svc.breaker().state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn backpressure_waits_while_open_and_wakes_when_probing_may_start() {
    let config = one_failure_config().backpressure(true).build().unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    calls(&mut svc, 1).await;
    let (wakes, waker) = counting_waker();
    assert!(
        poll_ready(&mut svc, &waker).is_pending(),
        "pending while open"
    );
    assert_eq!(
        svc.breaker().metrics().rejected,
        0,
        "waiting is not a rejection"
    );
    tokio::time::advance(10 * SECOND).await;
    assert!(
        wakes.0.load(SeqCst) >= 1,
        "woken when the open duration ends"
    );
    backend.set(Mode::Succeed);
    assert!(matches!(poll_ready(&mut svc, &waker), Poll::Ready(Ok(()))));
    assert_eq!(svc.call(1).await.unwrap(), 1);
    assert_eq!(svc.breaker().state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn backpressure_wakes_on_reset_and_on_a_returned_probe_permit() {
    let config = one_failure_config().backpressure(true).build().unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    calls(&mut svc, 1).await;
    let (wakes, waker) = counting_waker();
    assert!(poll_ready(&mut svc, &waker).is_pending());
    svc.breaker().reset();
    assert_eq!(wakes.0.load(SeqCst), 1, "a manual reset wakes waiters");
    assert!(poll_ready(&mut svc, &waker).is_ready());
    drop(svc.call(1)); // return the permit unused

    calls(&mut svc, 1).await; // trips again
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Hang);
    let mut prober = svc.clone();
    prober.ready().await.unwrap();
    let probe = prober.call(1);
    let (wakes, waker) = counting_waker();
    assert!(
        poll_ready(&mut svc, &waker).is_pending(),
        "all probe permits taken"
    );
    drop(probe);
    assert!(
        wakes.0.load(SeqCst) >= 1,
        "woken when the probe permit returns"
    );
    assert!(poll_ready(&mut svc, &waker).is_ready());
    assert_eq!(svc.breaker().metrics().probes_in_flight, 1);
}

#[tokio::test(start_paused = true)]
async fn backpressure_still_rejects_when_forced_open() {
    let config = one_failure_config().backpressure(true).build().unwrap();
    let (mut svc, _) = guarded(config, Mode::Succeed);
    svc.breaker().force_open();
    let (_, waker) = counting_waker();
    assert!(poll_ready(&mut svc, &waker).is_ready());
    assert!(is_rejection(&svc.call(1).await));
    assert_eq!(svc.breaker().metrics().rejected, 1);
}

/// An inner service whose readiness fails.
#[derive(Clone, Debug)]
struct BrokenReady;

impl Service<u32> for BrokenReady {
    type Response = u32;
    type Error = BackendError;
    type Future = std::future::Ready<Result<u32, BackendError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BackendError>> {
        Poll::Ready(Err(BackendError("connection pool closed")))
    }

    fn call(&mut self, request: u32) -> Self::Future {
        std::future::ready(Ok(request))
    }
}

#[tokio::test(start_paused = true)]
async fn inner_readiness_errors_are_classified_and_returned() {
    let layer = CircuitBreakerLayer::new(one_failure_config().build().unwrap());
    let mut svc = layer.layer(BrokenReady);
    match svc.ready().await {
        Err(Error::Inner(BackendError(message))) => assert_eq!(message, "connection pool closed"),
        other => panic!("expected the inner error, got {other:?}"),
    }
    assert_eq!(layer.breaker().state(), State::Open);
    assert_eq!(layer.breaker().metrics().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn closure_classifier_decides_outcomes() {
    let layer = CircuitBreakerLayer::new(one_failure_config().build().unwrap()).classify(
        |result: Result<&u32, &BackendError>| match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Ignored,
        },
    );
    let backend = Backend::new(Mode::Fail);
    let mut svc = layer.layer(backend);
    for _ in 0..3 {
        assert!(matches!(
            svc.ready().await.unwrap().call(1).await,
            Err(Error::Inner(_))
        ));
    }
    assert_eq!(layer.breaker().state(), State::Closed);
    assert_eq!(layer.breaker().metrics().ignored, 3);
}

#[tokio::test]
#[should_panic(expected = "poll_ready")]
async fn call_without_poll_ready_panics_with_a_clear_message() {
    let (mut svc, _) = guarded(one_failure_config().build().unwrap(), Mode::Succeed);
    drop(svc.call(1));
}

#[tokio::test(start_paused = true)]
async fn timeout_inside_counts_as_failure_and_rejection_is_found_through_buffer() {
    let layer = CircuitBreakerLayer::new(one_failure_config().build().unwrap());
    let backend = Backend::new(Mode::Hang);
    let stack = ServiceBuilder::new()
        .buffer(8)
        .map_err(Error::<BoxError>::into_box_error)
        .layer(layer.clone())
        .timeout(SECOND)
        .service(backend.clone());

    let timed_out = stack.clone().oneshot(1).await.unwrap_err();
    assert!(
        timed_out.is::<tower::timeout::error::Elapsed>(),
        "{timed_out}"
    );
    assert!(CircuitOpen::find(&*timed_out).is_none());
    assert_eq!(
        layer.breaker().state(),
        State::Open,
        "a timeout is a failure"
    );

    let rejected = stack.oneshot(2).await.unwrap_err();
    let open = CircuitOpen::find(&*rejected).expect("rejection found through Buffer");
    assert_eq!(open.state, State::Open);
    assert_eq!(&*open.name, "test");
    assert_eq!(backend.hits(), 1);
}

#[tokio::test(start_paused = true)]
async fn typed_error_converts_into_box_error_with_the_rejection_in_its_chain() {
    let (mut svc, _) = guarded(one_failure_config().build().unwrap(), Mode::Fail);
    calls(&mut svc, 1).await;
    let error = call(&mut svc).await.unwrap_err();
    let boxed: BoxError = error.into();
    let open = CircuitOpen::find(&*boxed).expect("found via source()");
    assert_eq!(open.retry_after, Some(10 * SECOND));
    let rejection = boxed
        .source()
        .expect("the rejection is the source")
        .to_string();
    assert!(
        rejection.starts_with("circuit breaker `test` is open"),
        "{rejection}"
    );
}

/// An inner service whose readiness the test controls.
#[derive(Clone, Debug)]
struct Gate {
    open: Arc<std::sync::atomic::AtomicBool>,
    hits: Arc<AtomicUsize>,
}

impl Gate {
    fn new() -> Self {
        Gate {
            open: Arc::default(),
            hits: Arc::default(),
        }
    }
}

impl Service<u32> for Gate {
    type Response = u32;
    type Error = BackendError;
    type Future = std::future::Ready<Result<u32, BackendError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BackendError>> {
        if self.open.load(SeqCst) {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&mut self, request: u32) -> Self::Future {
        self.hits.fetch_add(1, SeqCst);
        std::future::ready(Ok(request))
    }
}

#[tokio::test(start_paused = true)]
async fn a_trip_while_the_inner_service_is_pending_is_honoured() {
    let layer = CircuitBreakerLayer::new(one_failure_config().build().unwrap());
    let gate = Gate::new();
    let mut svc = layer.layer(gate.clone());
    let (_, waker) = counting_waker();
    assert!(
        poll_ready(&mut svc, &waker).is_pending(),
        "holds a closed permit"
    );
    layer.breaker().try_acquire().unwrap().failure(); // trips meanwhile
    gate.open.store(true, SeqCst);
    assert!(matches!(poll_ready(&mut svc, &waker), Poll::Ready(Ok(()))));
    assert!(
        is_rejection(&svc.call(1).await),
        "the stale permit was not used"
    );
    assert_eq!(
        gate.hits.load(SeqCst),
        0,
        "the sick downstream was not called"
    );
    let metrics = layer.breaker().metrics();
    assert_eq!(
        (metrics.rejected, metrics.ignored),
        (1, 0),
        "the unused permit counts nothing"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rejection_decided_before_a_reset_does_not_outlive_it() {
    let (mut svc, backend) = guarded(one_failure_config().build().unwrap(), Mode::Succeed);
    svc.breaker().force_open();
    svc.ready().await.unwrap(); // decides: rejected
    svc.breaker().reset();
    svc.ready().await.unwrap(); // re-decides
    assert_eq!(svc.call(1).await.unwrap(), 1);
    assert_eq!(backend.hits(), 1);
    assert_eq!(
        svc.breaker().metrics().rejected,
        0,
        "the lifted rejection was never returned"
    );
}

#[tokio::test(start_paused = true)]
async fn readied_services_dropped_without_a_call_count_nothing() {
    let (svc, _) = guarded(one_failure_config().build().unwrap(), Mode::Succeed);
    for _ in 0..3 {
        let mut readied = svc.clone();
        readied.ready().await.unwrap();
    }
    let metrics = svc.breaker().metrics();
    assert_eq!((metrics.calls, metrics.ignored), (0, 0));
}

#[test]
fn backpressure_outside_a_tokio_runtime_rejects_instead_of_panicking() {
    let config = one_failure_config().backpressure(true).build().unwrap();
    let (mut svc, _) = guarded(config, Mode::Fail);
    let result = futures::executor::block_on(async {
        let _ = call(&mut svc).await; // trips
        call(&mut svc).await
    });
    assert!(is_rejection(&result));
}

/// A runtime built without `enable_time` has no timer to end a backpressure wait:
/// Tokio's `sleep_until` panics there. The service rejects at once instead, as in the
/// default mode, warns once naming the fix, and does not try the missing timer again.
#[test]
fn backpressure_in_a_runtime_without_timers_rejects_instead_of_panicking() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let logs = crate::support::log_capture::capture("middleware");
    runtime.block_on(async {
        let config = one_failure_config().backpressure(true).build().unwrap();
        let (mut svc, backend) = guarded(config, Mode::Fail);
        assert!(call(&mut svc).await.is_err());
        assert_eq!(svc.breaker().state(), State::Open);
        for _ in 0..3 {
            // Ready at once (no timer could end a wait), and the call is rejected.
            let ready = svc.ready().now_or_never().expect("ready at once");
            let result = ready.unwrap().call(7).await;
            assert!(matches!(result, Err(Error::Open(_))), "{result:?}");
        }
        assert_eq!(svc.breaker().metrics().rejected, 3);
        assert_eq!(backend.hits(), 1);
    });
    assert_eq!(logs.count("enable_time"), 1);
}
