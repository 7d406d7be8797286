//! The scenarios users asked for in the seed documents, in paused Tokio time.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use crate::support::*;
use futures::FutureExt;
use tower::{Service, ServiceExt};
use tower_circuit_breaker::{Error, State, Window};

/// (a) 3 consecutive failures open it, 30 s later it is half-open, 2 successes close it.
#[tokio::test(start_paused = true)]
async fn three_failures_open_then_half_open_after_30s_then_two_successes_close() {
    let config = builder()
        .consecutive_failures(3)
        .open_duration(Duration::from_secs(30))
        .half_open_permits(2)
        .half_open_successes(2)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    let breaker = svc.breaker().clone();

    calls(&mut svc, 2).await;
    assert_eq!(breaker.state(), State::Closed);
    calls(&mut svc, 1).await;
    assert_eq!(breaker.state(), State::Open);

    tokio::time::advance(Duration::from_secs(29)).await;
    let rejected = call(&mut svc).await;
    match rejected {
        Err(Error::Open(open)) => assert_eq!(open.retry_after, Some(Duration::from_secs(1))),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(backend.hits(), 3, "a rejection must not reach the backend");

    tokio::time::advance(Duration::from_secs(1)).await;
    backend.set(Mode::Succeed);
    assert_eq!(call(&mut svc).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(call(&mut svc).await.unwrap(), 7);
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(backend.hits(), 5);
}

/// (b) 5 consecutive failures open it; any success resets the count.
#[tokio::test(start_paused = true)]
async fn five_consecutive_failures_any_success_resets_the_count() {
    let config = builder().consecutive_failures(5).build().unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    let breaker = svc.breaker().clone();

    calls(&mut svc, 4).await;
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;
    backend.set(Mode::Fail);
    calls(&mut svc, 4).await;
    assert_eq!(
        breaker.state(),
        State::Closed,
        "the success reset the streak"
    );
    assert_eq!(breaker.metrics().consecutive_failures, 4);
    calls(&mut svc, 1).await;
    assert_eq!(breaker.state(), State::Open);
}

fn rate_config() -> tower_circuit_breaker::Config {
    builder()
        .failure_rate(0.5)
        .sliding_window(Window::time(Duration::from_secs(60)).buckets(60))
        .minimum_calls(10)
        .build()
        .unwrap()
}

/// (c) A 50% failure rate over a 60 s window with at least 10 calls opens it.
#[tokio::test(start_paused = true)]
async fn fifty_percent_failure_rate_over_60s_with_at_least_10_calls() {
    let (mut svc, backend) = guarded(rate_config(), Mode::Fail);
    let breaker = svc.breaker().clone();

    // 9 failures: 100% failure rate, but below the minimum number of calls.
    for _ in 0..9 {
        calls(&mut svc, 1).await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(breaker.state(), State::Closed);
    // Successes dilute the rate; the 10th call reaches the minimum at 9/10.
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;
    assert_eq!(breaker.state(), State::Open);
    let metrics = breaker.metrics();
    assert_eq!(metrics.window_calls, 10);
    assert!((metrics.failure_rate - 0.9).abs() < 1e-9);
}

/// (c) Below 50% over the window stays closed; exactly 50% opens.
#[tokio::test(start_paused = true)]
async fn failure_rate_threshold_is_inclusive_and_below_it_stays_closed() {
    let (mut svc, backend) = guarded(rate_config(), Mode::Succeed);
    let breaker = svc.breaker().clone();
    calls(&mut svc, 6).await;
    backend.set(Mode::Fail);
    calls(&mut svc, 5).await; // 5 of 11 = 45%
    assert_eq!(breaker.state(), State::Closed);
    calls(&mut svc, 1).await; // 6 of 12 = 50%
    assert_eq!(breaker.state(), State::Open);
}

/// (c) Failures older than the 60 s window no longer count.
#[tokio::test(start_paused = true)]
async fn failures_older_than_the_time_window_fall_out() {
    let (mut svc, backend) = guarded(rate_config(), Mode::Fail);
    let breaker = svc.breaker().clone();
    calls(&mut svc, 8).await; // 8 failures at t=0
    tokio::time::advance(Duration::from_secs(61)).await;
    backend.set(Mode::Succeed);
    calls(&mut svc, 10).await;
    backend.set(Mode::Fail);
    calls(&mut svc, 2).await; // 2 of 12 in the window: the old 8 are gone
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().window_calls, 12);
}

/// A count window of 100 really slides: after 1000 successes, 100 failures trip it
/// exactly when the last 100 calls are half failures.
#[tokio::test(start_paused = true)]
async fn count_window_of_100_slides() {
    let config = builder()
        .failure_rate(0.5)
        .sliding_window(Window::count(100))
        .minimum_calls(100)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Succeed);
    let breaker = svc.breaker().clone();
    calls(&mut svc, 1000).await;
    backend.set(Mode::Fail);
    calls(&mut svc, 49).await;
    assert_eq!(breaker.state(), State::Closed, "49 of the last 100 failed");
    calls(&mut svc, 1).await;
    assert_eq!(breaker.state(), State::Open, "50 of the last 100 failed");
    assert_eq!(breaker.metrics().window_calls, 100);
}

/// Opens the breaker of a fresh hanging backend and lets the open duration pass.
async fn half_open_ready(permits: u32) -> (Guarded, Backend) {
    let config = builder()
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(10))
        .half_open_permits(permits)
        .half_open_successes(permits)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    calls(&mut svc, 1).await;
    assert_eq!(svc.breaker().state(), State::Open);
    tokio::time::advance(Duration::from_secs(10)).await;
    backend.set(Mode::Hang);
    (svc, backend)
}

type CallFuture = <Guarded as Service<u32>>::Future;

/// Readies a clone of `svc` and starts one call; `Some(future)` if it was admitted
/// (the backend hangs, so admitted calls stay in flight), `None` if rejected.
fn start_call(svc: &Guarded) -> Option<CallFuture> {
    let mut svc = svc.clone();
    futures::executor::block_on(svc.ready()).expect("poll_ready never fails while open");
    let mut future = svc.call(1);
    match (&mut future).now_or_never() {
        None => Some(future),
        Some(result) => {
            assert!(is_rejection(&result), "unexpected result {result:?}");
            None
        }
    }
}

/// (d) Half-open admits exactly 3 probes under 50 concurrent callers (50 OS threads
/// released together); a dropped probe future releases its permit.
#[tokio::test(start_paused = true)]
async fn half_open_admits_exactly_3_probes_among_50_concurrent_callers() {
    let (svc, backend) = half_open_ready(3).await;
    let barrier = Arc::new(Barrier::new(50));
    let runtime = tokio::runtime::Handle::current();
    let threads: Vec<_> = (0..50)
        .map(|_| {
            let (svc, barrier, runtime) = (svc.clone(), barrier.clone(), runtime.clone());
            std::thread::spawn(move || {
                let _time = runtime.enter(); // read the paused clock
                barrier.wait();
                start_call(&svc)
            })
        })
        .collect();
    let mut probes: Vec<CallFuture> = threads
        .into_iter()
        .filter_map(|thread| thread.join().unwrap())
        .collect();
    assert_eq!(probes.len(), 3, "exactly 3 of 50 callers are admitted");
    assert_eq!(backend.hits(), 4, "1 tripping call + 3 probes");
    let metrics = svc.breaker().metrics();
    assert_eq!(metrics.probes_in_flight, 3);
    assert_eq!(metrics.rejected, 47);
    assert_eq!(svc.breaker().state(), State::HalfOpen);

    // Dropping an in-flight probe returns its permit: exactly one more is admitted.
    drop(probes.pop());
    assert_eq!(svc.breaker().metrics().probes_in_flight, 2);
    let next = start_call(&svc).expect("the freed permit admits one probe");
    assert!(start_call(&svc).is_none(), "but only one");
    probes.push(next);
    assert_eq!(backend.hits(), 5);
    assert_eq!(
        svc.breaker().metrics().ignored,
        1,
        "a dropped probe is ignored"
    );
    drop(probes);
    assert_eq!(svc.breaker().metrics().probes_in_flight, 0);
    assert_eq!(svc.breaker().state(), State::HalfOpen);
}

/// A probe future dropped before it is first polled also frees its permit, and so
/// does a readied service dropped before `call`.
#[tokio::test(start_paused = true)]
async fn permits_reserved_by_poll_ready_return_on_drop() {
    let (svc, _backend) = half_open_ready(1).await;
    let mut readied = svc.clone();
    readied.ready().await.unwrap();
    assert_eq!(svc.breaker().metrics().probes_in_flight, 1);
    assert!(start_call(&svc).is_none(), "the only permit is reserved");
    drop(readied);
    assert_eq!(svc.breaker().metrics().probes_in_flight, 0);

    let mut caller = svc.clone();
    caller.ready().await.unwrap();
    let unpolled = caller.call(1);
    assert_eq!(svc.breaker().metrics().probes_in_flight, 1);
    drop(unpolled);
    assert_eq!(svc.breaker().metrics().probes_in_flight, 0);
    assert!(start_call(&svc).is_some());
}
