//! `CircuitBreaker::call`: a future run under the breaker without Tower.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use tower_circuit_breaker::{CircuitBreaker, Config, Error, Outcome, State, Window};

fn breaker(config: tower_circuit_breaker::ConfigBuilder) -> CircuitBreaker {
    CircuitBreaker::new(config.build().unwrap())
}

async fn failing() -> Result<u32, io::Error> {
    Err(io::Error::other("connection reset"))
}

#[tokio::test(start_paused = true)]
async fn a_direct_call_counts_outcomes_and_rejects_without_running_the_future() {
    let db = breaker(Config::builder().consecutive_failures(2));
    assert_eq!(db.call(async { Ok::<_, io::Error>(7) }).await.unwrap(), 7);
    for _ in 0..2 {
        assert!(matches!(db.call(failing()).await, Err(Error::Inner(_))));
    }
    assert_eq!(db.state(), State::Open);

    let ran = AtomicBool::new(false);
    let rejected = db
        .call(async {
            ran.store(true, SeqCst);
            Ok::<_, io::Error>(0)
        })
        .await;
    let Err(Error::Open(open)) = rejected else {
        panic!("expected a rejection, got {rejected:?}")
    };
    assert!(open.retry_after.is_some());
    assert!(!ran.load(SeqCst), "a rejected call is never polled");
    let metrics = db.metrics();
    assert_eq!(
        (metrics.successes, metrics.failures, metrics.rejected),
        (1, 2, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_direct_call_uses_the_given_classifier() {
    let db = breaker(Config::builder().consecutive_failures(1));
    let not_found = |result: Result<&u32, &io::Error>| match result {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Outcome::Ignored,
        Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    };
    let missing = db.call_classified(async { Err(io::ErrorKind::NotFound.into()) }, not_found);
    assert!(matches!(missing.await, Err(Error::Inner(_))));
    assert_eq!((db.state(), db.metrics().ignored), (State::Closed, 1));
    assert!(db.call_classified(failing(), not_found).await.is_err());
    assert_eq!(db.state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn a_direct_call_is_timed_for_the_slow_call_rule() {
    let db = breaker(
        Config::builder()
            .sliding_window(Window::count(2))
            .minimum_calls(2)
            .slow_call(Duration::from_millis(100), 1.0),
    );
    for _ in 0..2 {
        let slow = async {
            tokio::time::sleep(Duration::from_millis(101)).await;
            Ok::<_, io::Error>(())
        };
        db.call(slow).await.unwrap();
    }
    assert_eq!(db.metrics().slow_calls, 2);
    assert_eq!(db.state(), State::Open, "two slow calls of two");
}

#[tokio::test(start_paused = true)]
async fn a_dropped_direct_call_returns_its_probe_permit() {
    let open_for = Duration::from_secs(1);
    let db = breaker(
        Config::builder()
            .consecutive_failures(1)
            .open_duration(open_for)
            .half_open_permits(1)
            .half_open_successes(1),
    );
    db.call(failing()).await.unwrap_err();
    tokio::time::advance(open_for).await;

    // The only probe hangs; the caller gives up on it (a timeout, a cancelled request).
    let probe = db.call(std::future::pending::<Result<u32, io::Error>>());
    assert_eq!(db.metrics().probes_in_flight, 1);
    assert!(
        db.call(async { Ok::<_, io::Error>(1) }).await.is_err(),
        "its slot is taken"
    );
    let _ = tokio::time::timeout(Duration::from_millis(10), probe).await;

    let metrics = db.metrics();
    assert_eq!(
        (metrics.probes_in_flight, metrics.ignored),
        (0, 1),
        "returned, ignored"
    );
    assert_eq!(db.call(async { Ok::<_, io::Error>(2) }).await.unwrap(), 2);
    assert_eq!(
        db.state(),
        State::Closed,
        "the next probe got the slot and closed it"
    );
}
