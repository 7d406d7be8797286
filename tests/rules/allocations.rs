//! Allocation counts per call on the hot paths (not timed: counted).
//!
//! A counting global allocator records allocations made by the current thread while
//! counting is switched on, so other test threads do not disturb the numbers.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::FutureExt;
use tower::{service_fn, Layer, Service};
use tower_circuit_breaker::{
    AdaptiveFailureRate, CircuitBreakerLayer, Config, Error, State, Window,
};

use crate::counting_allocator::allocations_in;

fn echo(request: u64) -> Ready<Result<u64, Infallible>> {
    ready(Ok(request))
}

fn fail(_: u64) -> Ready<Result<u64, &'static str>> {
    ready(Err("down"))
}

/// One synchronous call through `svc`.
fn call_once<S: Service<u64>>(svc: &mut S) -> Result<S::Response, S::Error> {
    let waker = futures::task::noop_waker();
    let mut cx = Context::from_waker(&waker);
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        Poll::Ready(Err(error)) => return Err(error),
        Poll::Pending => panic!("never pending in these tests"),
    }
    svc.call(1).now_or_never().expect("ready futures")
}

const CALLS: u64 = 10_000;

fn assert_no_allocations_per_call<S: Service<u64>>(scenario: &str, svc: &mut S, expect_ok: bool) {
    call_once(svc).ok(); // warm-up: lazily initialized thread-locals and lanes
    let allocations = allocations_in(|| {
        for _ in 0..CALLS {
            assert_eq!(
                call_once(svc).is_ok(),
                expect_ok,
                "{scenario}: unexpected outcome"
            );
        }
    });
    assert_eq!(
        allocations, 0,
        "{scenario}: {allocations} allocations in {CALLS} calls"
    );
}

#[test]
fn hot_paths_allocate_nothing_per_call() {
    let closed = CircuitBreakerLayer::new(Config::default());
    assert_no_allocations_per_call("closed", &mut closed.layer(service_fn(echo)), true);
    assert_eq!(closed.breaker().state(), State::Closed);

    let open = CircuitBreakerLayer::new(Config::builder().consecutive_failures(1).build().unwrap());
    let mut failing = open.layer(service_fn(fail));
    assert!(matches!(call_once(&mut failing), Err(Error::Inner(_))));
    assert_eq!(open.breaker().state(), State::Open);
    assert_no_allocations_per_call("open rejection", &mut failing, false);
    assert_eq!(open.breaker().metrics().rejected, CALLS + 1);

    let forced = CircuitBreakerLayer::new(Config::default());
    forced.breaker().force_open();
    assert_no_allocations_per_call("forced open", &mut forced.layer(service_fn(echo)), false);

    let windows = [
        Config::builder()
            .failure_rate(0.5)
            .sliding_window(Window::count(100)),
        Config::builder()
            .failure_rate(0.5)
            .sliding_window(Window::time(Duration::from_secs(10))),
        Config::builder().slow_call(Duration::from_secs(1), 0.5),
        // Warmed up within the calls counted: its threshold and baseline are in play.
        Config::builder()
            .failure_rate_adaptive(AdaptiveFailureRate::new().warm_up(100))
            .sliding_window(Window::count(100)),
    ];
    for (i, builder) in windows.into_iter().enumerate() {
        let layer = CircuitBreakerLayer::new(builder.build().unwrap());
        assert_no_allocations_per_call(
            &format!("window #{i}"),
            &mut layer.layer(service_fn(echo)),
            true,
        );
    }

    let failing_closed = CircuitBreakerLayer::new(
        Config::builder()
            .consecutive_failures(u32::MAX)
            .build()
            .unwrap(),
    );
    assert_no_allocations_per_call(
        "closed failures",
        &mut failing_closed.layer(service_fn(fail)),
        false,
    );
}

#[test]
fn the_allocation_counter_sees_allocations() {
    // Guards the test above against a counter that never counts.
    let allocations = allocations_in(|| {
        let boxed = std::hint::black_box(Box::new(42u64));
        drop(boxed);
    });
    assert_eq!(allocations, 1);
}
