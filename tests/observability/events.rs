//! `subscribe()` events and `tracing` output through a trip and a recovery.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::support::*;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::broadcast::Receiver;
use tower_circuit_breaker::{CircuitBreaker, Config, Event, State, TransitionReason};

const SECOND: Duration = Duration::from_secs(1);

/// Every event already sent to `events`.
fn drain(events: &mut Receiver<Event>) -> Vec<Event> {
    let mut seen = Vec::new();
    loop {
        match events.try_recv() {
            Ok(event) => seen.push(event),
            Err(TryRecvError::Empty) => return seen,
            Err(other) => panic!("unexpected receive error: {other:?}"),
        }
    }
}

fn transition(from: State, to: State, reason: TransitionReason) -> Event {
    Event::StateTransition {
        name: "test".into(),
        from,
        to,
        reason,
    }
}

#[tokio::test(start_paused = true)]
async fn a_trip_and_a_recovery_in_order() {
    let config = builder()
        .consecutive_failures(2)
        .open_duration(10 * SECOND)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    let mut events = svc.breaker().subscribe();
    let name: Arc<str> = "test".into();

    calls(&mut svc, 2).await;
    assert!(is_rejection(&call(&mut svc).await));
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;

    let closed = State::Closed;
    assert_eq!(
        drain(&mut events),
        vec![
            Event::Failure {
                name: name.clone(),
                state: closed
            },
            Event::Failure {
                name: name.clone(),
                state: closed
            },
            transition(
                closed,
                State::Open,
                TransitionReason::ConsecutiveFailures { count: 2 }
            ),
            Event::Rejected {
                name: name.clone(),
                state: State::Open
            },
            transition(
                State::Open,
                State::HalfOpen,
                TransitionReason::OpenDurationElapsed
            ),
            Event::Success {
                name: name.clone(),
                state: State::HalfOpen
            },
            transition(State::HalfOpen, closed, TransitionReason::ProbesSucceeded),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn slow_and_ignored_calls_and_manual_controls() {
    let config = builder()
        .slow_call(SECOND, 1.0)
        .minimum_calls(5)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Slow(2 * SECOND));
    let mut events = svc.breaker().subscribe();
    calls(&mut svc, 1).await;
    let breaker = svc.breaker().clone();
    drop(breaker.try_acquire().unwrap()); // made and abandoned: ignored
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;
    breaker.force_open();

    let name: Arc<str> = "test".into();
    let closed = State::Closed;
    assert_eq!(
        drain(&mut events),
        vec![
            Event::Success {
                name: name.clone(),
                state: closed
            },
            Event::Slow {
                name: name.clone(),
                elapsed: 2 * SECOND
            },
            Event::Ignored {
                name: name.clone(),
                state: closed
            },
            Event::Success {
                name: name.clone(),
                state: closed
            },
            transition(closed, State::ForcedOpen, TransitionReason::Manual),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn every_receiver_gets_every_event_and_names_its_breaker() {
    let breaker = CircuitBreaker::new(Config::builder().name("db").build().unwrap());
    let (mut first, mut second) = (breaker.subscribe(), breaker.subscribe());
    breaker.try_acquire().unwrap().failure();
    let expected = vec![Event::Failure {
        name: "db".into(),
        state: State::Closed,
    }];
    assert_eq!(drain(&mut first), expected);
    assert_eq!(drain(&mut second), expected);
    assert_eq!(expected[0].name(), "db");
}

#[tokio::test(start_paused = true)]
async fn a_lagging_receiver_does_not_block_the_breaker() {
    let breaker = CircuitBreaker::new(Config::builder().name("busy").build().unwrap());
    let mut lagging = breaker.subscribe();
    for _ in 0..5_000 {
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(
        breaker.metrics().successes,
        5_000,
        "no call waited for the receiver"
    );
    match lagging.recv().await {
        Err(RecvError::Lagged(missed)) => assert!(missed >= 5_000 - 1_024, "missed {missed}"),
        other => panic!("expected a lag report, got {other:?}"),
    }
    // It resumes with the most recent events.
    assert_eq!(drain(&mut lagging).len(), 1_024);
}

#[tokio::test(start_paused = true)]
async fn dropping_every_receiver_stops_events_and_a_new_one_starts_them() {
    let breaker = CircuitBreaker::new(Config::default());
    drop(breaker.subscribe());
    breaker.try_acquire().unwrap().success(); // finds nobody and switches events off
    breaker.try_acquire().unwrap().success();
    let mut late = breaker.subscribe();
    assert!(
        drain(&mut late).is_empty(),
        "events sent before subscribing are not replayed"
    );
    breaker.try_acquire().unwrap().failure();
    assert_eq!(drain(&mut late).len(), 1);
    assert_eq!(breaker.metrics().successes, 2);
}

/// A `tracing` subscriber that keeps every event's level, message and fields.
#[derive(Clone, Default)]
struct Recorder {
    lines: Arc<Mutex<Vec<(tracing::Level, String)>>>,
}

struct Fields(String);

impl tracing::field::Visit for Fields {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.push_str(&format!(" {}={}", field.name(), value));
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!(" {}={:?}", field.name(), value));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let level = *event.metadata().level();
        self.lines.lock().unwrap().push((level, fields.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[test]
fn tracing_warns_on_open_and_reports_the_rest() {
    let recorder = Recorder::default();
    let breaker = CircuitBreaker::new(
        Config::builder()
            .name("inventory")
            .failure_rate(0.5)
            .minimum_calls(4)
            // Long enough that the open period cannot end before the reads below,
            // however slow the machine (this test runs in real time).
            .open_duration(Duration::from_secs(3_600))
            .build()
            .unwrap(),
    );
    tracing::subscriber::with_default(recorder.clone(), || {
        for _ in 0..2 {
            breaker.try_acquire().unwrap().success();
        }
        for _ in 0..2 {
            breaker.try_acquire().unwrap().failure();
        }
        assert_eq!(breaker.state(), State::Open);
        assert!(breaker.try_acquire().is_err());
        breaker.reset();
    });
    let lines = recorder.lines.lock().unwrap().clone();
    let find = |level: tracing::Level, text: &str| {
        lines
            .iter()
            .find(|(l, line)| *l == level && line.contains(text))
            .unwrap_or_else(|| panic!("no {level} line with {text:?} in {lines:#?}"))
            .1
            .clone()
    };
    let opened = find(tracing::Level::WARN, "circuit breaker opened");
    for field in [
        "breaker=inventory",
        "from=closed",
        "reason=failure rate 50.0% over 4 calls",
        "failure_rate=0.5",
        "window_calls=4",
    ] {
        assert!(opened.contains(field), "{field:?} missing from {opened}");
    }
    let rejected = find(tracing::Level::DEBUG, "rejected a call");
    assert!(rejected.contains("breaker=inventory") && rejected.contains("state=open"));
    let closed = find(tracing::Level::INFO, "circuit breaker closed");
    assert!(closed.contains("reason=manual control"), "{closed}");
}
