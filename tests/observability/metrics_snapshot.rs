//! The metrics snapshot adds up and tracks time in paused Tokio time.

use std::time::Duration;

use crate::support::*;
use tower_circuit_breaker::{CircuitBreaker, Health, Outcome, State};

#[tokio::test(start_paused = true)]
async fn counters_add_up_through_a_trip_and_recovery() {
    let config = builder()
        .consecutive_failures(3)
        .open_duration(Duration::from_secs(5))
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Succeed);
    let breaker = svc.breaker().clone();
    assert_eq!(breaker.health(), Health::Green);
    calls(&mut svc, 10).await;
    backend.set(Mode::Fail);
    calls(&mut svc, 3).await;
    for _ in 0..4 {
        assert!(is_rejection(&call(&mut svc).await));
    }
    assert_eq!(breaker.health(), Health::Red);
    let started_open = tokio::time::Instant::now();
    tokio::time::advance(Duration::from_secs(2)).await;
    let open = breaker.metrics();
    assert_eq!(open.time_in_state, Duration::from_secs(2));
    assert_eq!(open.retry_after, Some(Duration::from_secs(3)));
    assert_eq!(open.last_failure_at, Some(started_open));

    tokio::time::advance(Duration::from_secs(3)).await;
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;

    let m = breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(
        (m.successes, m.failures, m.rejected, m.ignored),
        (11, 3, 4, 0)
    );
    assert_eq!(m.calls, m.successes + m.failures + m.ignored + m.rejected);
    assert_eq!(m.calls, 18);
    assert_eq!(m.state_changes, 3);
    assert!((m.failure_rate - 3.0 / 14.0).abs() < 1e-9);
    assert!(m.last_success_at.is_some());
    assert_eq!(m.time_in_state, Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn counts_are_exact_across_threads() {
    let breaker = CircuitBreaker::new(builder().consecutive_failures(u32::MAX).build().unwrap());
    let runtime = tokio::runtime::Handle::current();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let (breaker, runtime) = (breaker.clone(), runtime.clone());
            std::thread::spawn(move || {
                let _time = runtime.enter();
                for i in 0..10_000u32 {
                    let outcome = match (i + t) % 3 {
                        0 => Outcome::Success,
                        1 => Outcome::Failure,
                        _ => Outcome::Ignored,
                    };
                    breaker.try_acquire().unwrap().record(outcome);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let m = breaker.metrics();
    assert_eq!(m.calls, 40_000);
    assert_eq!(m.successes + m.failures + m.ignored, 40_000);
    assert!(m.successes.abs_diff(m.failures) <= 4);
    assert_eq!(m.state, State::Closed);
}
