//! Every state transition of the breaker, driven through the Tower service and the
//! handle in paused Tokio time.

use std::time::Duration;

use crate::support::*;
use tokio::sync::broadcast::Receiver;
use tower::{Service, ServiceExt};
use tower_circuit_breaker::{
    Backoff, CircuitBreaker, Config, Error, Event, Outcome, State, TransitionReason, Window,
};

const SECOND: Duration = Duration::from_secs(1);

fn trip_on_first_failure() -> tower_circuit_breaker::ConfigBuilder {
    builder()
        .consecutive_failures(1)
        .open_duration(10 * SECOND)
        .half_open_permits(1)
        .half_open_successes(1)
}

#[tokio::test(start_paused = true)]
async fn closed_to_open_on_consecutive_failures() {
    let (mut svc, _) = guarded(trip_on_first_failure().build().unwrap(), Mode::Fail);
    assert_eq!(svc.breaker().state(), State::Closed);
    calls(&mut svc, 1).await;
    assert_eq!(svc.breaker().state(), State::Open);
    assert_eq!(svc.breaker().metrics().state_changes, 1);
}

#[tokio::test(start_paused = true)]
async fn open_to_half_open_only_after_the_open_duration() {
    let (mut svc, backend) = guarded(trip_on_first_failure().build().unwrap(), Mode::Fail);
    calls(&mut svc, 1).await;
    tokio::time::advance(10 * SECOND - Duration::from_nanos(1)).await;
    assert!(is_rejection(&call(&mut svc).await));
    assert_eq!(svc.breaker().state(), State::Open, "state() is a pure read");
    tokio::time::advance(Duration::from_nanos(1)).await;
    assert_eq!(
        svc.breaker().state(),
        State::HalfOpen,
        "reads as ready to probe once the open duration is over"
    );
    assert_eq!(
        svc.breaker().metrics().state_changes,
        1,
        "reading moved nothing: the transition waits for a call"
    );
    backend.set(Mode::Hang);
    svc.ready().await.unwrap();
    assert_eq!(svc.breaker().state(), State::HalfOpen);
    assert_eq!(svc.breaker().metrics().probes_in_flight, 1);
}

#[tokio::test(start_paused = true)]
async fn half_open_to_closed_after_enough_successes() {
    let config = trip_on_first_failure()
        .half_open_permits(2)
        .half_open_successes(3)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    calls(&mut svc, 1).await;
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Succeed);
    calls(&mut svc, 2).await;
    assert_eq!(
        svc.breaker().state(),
        State::HalfOpen,
        "a finished probe frees its permit"
    );
    calls(&mut svc, 1).await;
    assert_eq!(svc.breaker().state(), State::Closed);
    let metrics = svc.breaker().metrics();
    assert_eq!(
        (metrics.consecutive_failures, metrics.state_changes),
        (0, 3)
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_to_open_on_a_failed_probe() {
    let config = trip_on_first_failure()
        .half_open_successes(2)
        .half_open_permits(2)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    calls(&mut svc, 1).await;
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;
    backend.set(Mode::Fail);
    calls(&mut svc, 1).await;
    assert_eq!(
        svc.breaker().state(),
        State::Open,
        "any failed probe reopens"
    );
    assert_eq!(svc.breaker().metrics().retry_after, Some(10 * SECOND));
}

#[tokio::test(start_paused = true)]
async fn ignored_probe_frees_its_permit_without_deciding() {
    let breaker = CircuitBreaker::new(trip_on_first_failure().build().unwrap());
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(10 * SECOND).await;
    let probe = breaker.try_acquire().unwrap();
    assert!(probe.is_probe());
    assert_eq!(breaker.try_acquire().unwrap_err().state, State::HalfOpen);
    probe.record(Outcome::Ignored);
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn hung_probe_reopens_after_half_open_max_wait() {
    let config = trip_on_first_failure()
        .half_open_max_wait(5 * SECOND)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    calls(&mut svc, 1).await;
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Hang);
    svc.ready().await.unwrap();
    let hung = svc.call(1); // holds the only permit and never finishes
    let rejected = call(&mut svc).await;
    match rejected {
        Err(Error::Open(open)) => {
            assert_eq!(open.state, State::HalfOpen);
            assert_eq!(open.retry_after, Some(5 * SECOND));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    tokio::time::advance(5 * SECOND).await;
    assert!(is_rejection(&call(&mut svc).await));
    assert_eq!(
        svc.breaker().state(),
        State::Open,
        "the hung probe no longer wedges half-open"
    );
    // The next half-open period admits a fresh probe although the old one still hangs.
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Succeed);
    calls(&mut svc, 1).await;
    assert_eq!(svc.breaker().state(), State::Closed);
    drop(hung); // its stale permit changes nothing
    assert_eq!(svc.breaker().state(), State::Closed);
}

/// Every event received so far.
fn drain(events: &mut Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

/// The (from, to, reason) of every transition among `events`.
fn transitions(events: &[Event]) -> Vec<(State, State, TransitionReason)> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::StateTransition {
                from, to, reason, ..
            } => Some((*from, *to, *reason)),
            _ => None,
        })
        .collect()
}

/// Four probe permits, a 1 s max wait and a 10 s open duration, tripped and then
/// half-open (entered at 10 s by the probe returned, which is still running).
async fn half_open_with_a_held_probe() -> (CircuitBreaker, tower_circuit_breaker::Permit) {
    let breaker = CircuitBreaker::new(
        trip_on_first_failure()
            .half_open_permits(4)
            .half_open_successes(4)
            .half_open_max_wait(SECOND)
            .build()
            .unwrap(),
    );
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(10 * SECOND).await;
    let held = breaker.try_acquire().unwrap();
    assert!(held.is_probe());
    assert_eq!(breaker.state(), State::HalfOpen);
    (breaker, held)
}

#[tokio::test(start_paused = true)]
async fn half_open_times_out_with_free_permits_and_a_hung_probe() {
    let (breaker, hung) = half_open_with_a_held_probe().await;
    let mut events = breaker.subscribe();
    // 2 s into half-open, 1 s past the max wait: three permits are free, yet the period
    // is over. Reads say so before any call, and move nothing.
    tokio::time::advance(2 * SECOND).await;
    let read = breaker.metrics();
    assert_eq!(read.state, State::Open, "a timed-out half-open reads open");
    assert_eq!(
        read.retry_after,
        Some(10 * SECOND),
        "the open duration the next call starts"
    );
    assert_eq!(read.time_in_state, SECOND, "since the deadline");
    assert_eq!(read.probes_in_flight, 0, "the hung probe is stale");
    assert_eq!(read.state_changes, 2, "a read makes no transition");
    assert_eq!(breaker.state(), State::Open);

    let open = breaker
        .try_acquire()
        .expect_err("no new probe after the max wait, whatever the free permits");
    assert_eq!(
        (open.state, open.retry_after),
        (State::Open, Some(10 * SECOND))
    );
    let seen = drain(&mut events);
    assert_eq!(
        transitions(&seen),
        [(
            State::HalfOpen,
            State::Open,
            TransitionReason::ProbeTimedOut
        )]
    );
    assert!(matches!(
        seen.last(),
        Some(Event::Rejected {
            state: State::Open,
            ..
        })
    ));
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.state_changes, metrics.retry_after),
        (State::Open, 3, Some(10 * SECOND)),
        "the reads agree with the call"
    );

    // The hung probe's late failure judged the timed-out period: it does not reopen
    // (nor lengthen) the new one.
    hung.failure();
    assert_eq!(transitions(&drain(&mut events)), []);
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.state_changes, metrics.retry_after),
        (State::Open, 3, Some(10 * SECOND))
    );

    // The new open period ends on time and probing starts afresh.
    tokio::time::advance(10 * SECOND).await;
    assert!(breaker.try_acquire().unwrap().is_probe());
    assert_eq!(
        transitions(&drain(&mut events)),
        [(
            State::Open,
            State::HalfOpen,
            TransitionReason::OpenDurationElapsed
        )]
    );
}

#[tokio::test(start_paused = true)]
async fn a_late_success_of_a_timed_out_probe_does_not_move_the_new_period() {
    let (breaker, hung) = half_open_with_a_held_probe().await;
    tokio::time::advance(2 * SECOND).await;
    assert!(breaker.try_acquire().is_err());
    let changes = breaker.metrics().state_changes;
    hung.success();
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.state_changes),
        (State::Open, changes)
    );
}

#[tokio::test(start_paused = true)]
async fn half_open_max_wait_counts_from_the_last_finished_probe() {
    let (breaker, first) = half_open_with_a_held_probe().await;
    let second = breaker.try_acquire().unwrap();
    tokio::time::advance(SECOND / 2).await;
    first.success(); // progress at 10.5 s: the deadline moves to 11.5 s
    tokio::time::advance(SECOND * 3 / 4).await; // 11.25 s: past the first deadline
    assert_eq!(breaker.state(), State::HalfOpen);
    let third = breaker
        .try_acquire()
        .expect("progress restarted the max wait");
    assert!(third.is_probe());
    tokio::time::advance(SECOND / 4).await; // 11.5 s: the new deadline
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.try_acquire().unwrap_err().state, State::Open);
    drop((second, third));
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_half_open_reads_open_until_a_call_reopens_it() {
    let (breaker, _hung) = half_open_with_a_held_probe().await;
    let mut events = breaker.subscribe();
    // Deadline at 11 s; nobody calls until 30 s. The read does not pretend that an
    // open period ran meanwhile: the next call will reopen, for the full duration.
    tokio::time::advance(20 * SECOND).await;
    let read = breaker.metrics();
    assert_eq!(
        (read.state, read.retry_after, read.time_in_state),
        (State::Open, Some(10 * SECOND), 19 * SECOND)
    );
    assert_eq!(breaker.health(), tower_circuit_breaker::Health::Red);
    let open = breaker.try_acquire().expect_err("the next call reopens");
    assert_eq!(open.retry_after, read.retry_after, "as the read said");
    assert_eq!(
        transitions(&drain(&mut events)),
        [(
            State::HalfOpen,
            State::Open,
            TransitionReason::ProbeTimedOut
        )]
    );
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.state_changes, metrics.time_in_state),
        (State::Open, 3, Duration::ZERO),
        "open from the call that reopened it"
    );
}

#[tokio::test(start_paused = true)]
async fn slow_probe_counts_as_failed() {
    let config = trip_on_first_failure()
        .slow_call(2 * SECOND, 0.5)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Fail);
    calls(&mut svc, 1).await;
    tokio::time::advance(10 * SECOND).await;
    backend.set(Mode::Slow(3 * SECOND));
    calls(&mut svc, 1).await;
    assert_eq!(svc.breaker().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn slow_call_rate_opens() {
    let config = builder()
        .slow_call(SECOND, 0.5)
        .sliding_window(Window::count(4))
        .minimum_calls(4)
        .build()
        .unwrap();
    let (mut svc, backend) = guarded(config, Mode::Succeed);
    calls(&mut svc, 2).await;
    backend.set(Mode::Slow(2 * SECOND));
    calls(&mut svc, 1).await;
    assert_eq!(svc.breaker().state(), State::Closed);
    calls(&mut svc, 1).await;
    assert_eq!(svc.breaker().state(), State::Open);
    let metrics = svc.breaker().metrics();
    assert_eq!((metrics.slow_calls, metrics.failures), (2, 0));
    assert!((metrics.slow_call_rate - 0.5).abs() < 1e-9);
}

/// With a probe interval, an open breaker lets one probe through every interval,
/// however long its open period: a failed probe returns it to that same period (the
/// backoff does not grow), a successful one closes it.
#[tokio::test(start_paused = true)]
async fn probe_interval_probes_a_long_open_period_one_call_at_a_time() {
    let config = trip_on_first_failure()
        .open_duration(10 * SECOND)
        .open_backoff(Backoff::exponential(2.0, 100 * SECOND))
        .half_open_permits(3)
        .probe_interval(SECOND)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config);
    let mut events = breaker.subscribe();
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(SECOND - Duration::from_nanos(1)).await;
    let open = breaker.try_acquire().unwrap_err();
    assert_eq!(
        open.retry_after,
        Some(Duration::from_nanos(1)),
        "until the probe"
    );
    tokio::time::advance(Duration::from_nanos(1)).await;
    assert_eq!(breaker.state(), State::HalfOpen, "a probe is due");

    // One probe at first, whatever half_open_permits allows.
    let probe = breaker.try_acquire().expect("the probe");
    assert!(probe.is_probe());
    let busy = breaker.try_acquire().unwrap_err();
    assert_eq!(busy.state, State::HalfOpen);
    probe.failure();
    // Back to the same open period: 9 s of it left, not a grown backoff.
    let open = breaker.try_acquire().unwrap_err();
    assert_eq!(open.state, State::Open);
    assert_eq!(
        open.retry_after,
        Some(SECOND),
        "the next probe is due first"
    );
    assert_eq!(breaker.metrics().retry_after, Some(SECOND));

    // Every second, one probe; after 10 s the period is over and a failure is a trip
    // like any other: the second one of the backoff, 20 s.
    for _ in 0..8 {
        tokio::time::advance(SECOND).await;
        breaker.try_acquire().expect("a probe").failure();
    }
    tokio::time::advance(SECOND).await;
    breaker.try_acquire().expect("the period's end").failure();
    let reasons: Vec<TransitionReason> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            Event::StateTransition { reason, .. } => Some(reason),
            _ => None,
        })
        .collect();
    assert_eq!(reasons.len(), 1 + 2 * 10, "{reasons:?}");
    assert_eq!(reasons[1], TransitionReason::ProbeIntervalElapsed);
    assert_eq!(reasons[19], TransitionReason::OpenDurationElapsed);
    assert_eq!(reasons[20], TransitionReason::ProbeFailed);
    let metrics = breaker.metrics();
    assert_eq!(
        metrics.retry_after,
        Some(SECOND),
        "probes still come every second"
    );
    assert_eq!(breaker.try_acquire().unwrap_err().retry_after, Some(SECOND));

    // A probe that succeeds closes it (half_open_successes is 1).
    tokio::time::advance(SECOND).await;
    breaker.try_acquire().expect("a probe").success();
    assert_eq!(breaker.state(), State::Closed);
}

/// A failed response's `Retry-After` holds back the probe interval's scouts too, and a
/// scout that hangs past `half_open_max_wait` returns to its open period, like a failed
/// one, without counting a trip.
#[tokio::test(start_paused = true)]
async fn probe_interval_waits_out_a_retry_after_and_a_hung_scout() {
    let config = trip_on_first_failure()
        .open_duration(10 * SECOND)
        .probe_interval(SECOND)
        .half_open_max_wait(2 * SECOND)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config);
    breaker
        .try_acquire()
        .unwrap()
        .failure_with_retry_after(5 * SECOND);
    tokio::time::advance(SECOND).await;
    let open = breaker.try_acquire().unwrap_err();
    assert_eq!(
        open.retry_after,
        Some(4 * SECOND),
        "not before the Retry-After"
    );
    tokio::time::advance(4 * SECOND).await;
    let scout = breaker.try_acquire().expect("the Retry-After has passed");
    // It hangs: at the max wait (7 s) the next call reopens the rest of the period
    // (until 10 s), the first scout of which is due a second later.
    tokio::time::advance(2 * SECOND).await;
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.state, metrics.retry_after),
        (State::Open, Some(SECOND))
    );
    let open = breaker.try_acquire().unwrap_err();
    assert_eq!((open.state, open.retry_after), (State::Open, Some(SECOND)));
    drop(scout);
    tokio::time::advance(SECOND).await;
    breaker.try_acquire().expect("the next scout").success();
    assert_eq!(breaker.state(), State::Closed);
}

/// A scout that hangs does not hold back the next interval's: each interval the scout
/// period lasts brings one more permit, up to `half_open_permits`.
#[tokio::test(start_paused = true)]
async fn a_hanging_scout_does_not_hold_back_the_next_intervals_scout() {
    let config = trip_on_first_failure()
        .open_duration(10 * SECOND)
        .probe_interval(SECOND)
        .half_open_permits(2)
        .half_open_max_wait(5 * SECOND)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config);
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(SECOND).await;
    let _hanging = breaker.try_acquire().expect("the first scout");
    let busy = breaker.try_acquire().unwrap_err();
    assert_eq!(
        (busy.state, busy.retry_after),
        (State::HalfOpen, Some(SECOND)),
        "the next permit comes with the next interval"
    );
    tokio::time::advance(SECOND).await;
    let _second = breaker
        .try_acquire()
        .expect("a second scout, an interval later");
    let busy = breaker.try_acquire().unwrap_err();
    assert_eq!(
        busy.retry_after,
        Some(4 * SECOND),
        "both permits taken: until the period's deadline"
    );
    assert_eq!(breaker.metrics().probes_in_flight, 2);
}

/// With `reset_after`, a backend that fails again soon after recovering opens for
/// longer each time; one that stays healthy that long starts over, and so does a
/// manual reset.
#[tokio::test(start_paused = true)]
async fn backoff_reset_after_remembers_trips_across_a_short_recovery() {
    let config = trip_on_first_failure()
        .open_duration(SECOND)
        .open_backoff(Backoff::exponential(2.0, 60 * SECOND).reset_after(10 * SECOND))
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config);
    let open_for = |breaker: &CircuitBreaker| breaker.try_acquire().unwrap_err().retry_after;
    let recover = |breaker: &CircuitBreaker, open: Duration| {
        let breaker = breaker.clone();
        async move {
            tokio::time::advance(open).await;
            breaker.try_acquire().expect("the probe").success();
            assert_eq!(breaker.state(), State::Closed);
        }
    };
    breaker.try_acquire().unwrap().failure();
    assert_eq!(open_for(&breaker), Some(SECOND));
    recover(&breaker, SECOND).await;
    // Fails again 9 s after closing: the second trip of the backoff, 2 s.
    tokio::time::advance(9 * SECOND).await;
    breaker.try_acquire().unwrap().failure();
    assert_eq!(open_for(&breaker), Some(2 * SECOND));
    recover(&breaker, 2 * SECOND).await;
    // Stays closed 10 s: forgotten, back to 1 s.
    tokio::time::advance(10 * SECOND).await;
    breaker.try_acquire().unwrap().failure();
    assert_eq!(open_for(&breaker), Some(SECOND));
    recover(&breaker, SECOND).await;
    // A manual reset forgets at once.
    breaker.try_acquire().unwrap().failure();
    assert_eq!(open_for(&breaker), Some(2 * SECOND));
    breaker.reset();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(open_for(&breaker), Some(SECOND));
}

/// A linear backoff opens for `open_duration` times the number of trips (Envoy's
/// ejection time), up to its cap; with `reset_after` the count survives short
/// recoveries.
#[tokio::test(start_paused = true)]
async fn a_linear_backoff_opens_for_the_base_times_the_trips() {
    let config = trip_on_first_failure()
        .open_duration(SECOND)
        .open_backoff(Backoff::linear(3 * SECOND).reset_after(10 * SECOND))
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config);
    let mut seen = Vec::new();
    for _ in 0..4 {
        breaker.try_acquire().unwrap().failure();
        let open = breaker.try_acquire().unwrap_err().retry_after.unwrap();
        seen.push(open.as_secs());
        tokio::time::advance(open).await;
        breaker.try_acquire().expect("the probe").success();
        assert_eq!(breaker.state(), State::Closed);
        tokio::time::advance(SECOND).await; // fails again soon after recovering
    }
    assert_eq!(seen, [1, 2, 3, 3], "1 s, 2 s, 3 s, then the cap");
    tokio::time::advance(10 * SECOND).await;
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.try_acquire().unwrap_err().retry_after, Some(SECOND));
}

/// After a recovery, a ramp-up admits 10 % of the calls at first, a growing share
/// after that, all of them once it is over; the rest are rejected at once, as closed.
#[tokio::test(start_paused = true)]
async fn ramp_up_after_a_recovery_admits_a_growing_share_of_calls() {
    let config = trip_on_first_failure().ramp_up(SECOND).build().unwrap();
    let breaker = CircuitBreaker::new(config);
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(10 * SECOND).await;
    breaker.try_acquire().expect("the probe").success();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().ramp_up_share, Some(0.1));

    let admitted_of = |calls: usize| {
        (0..calls)
            .filter(|_| match breaker.try_acquire() {
                Ok(permit) => {
                    permit.success();
                    true
                }
                Err(open) => {
                    assert_eq!((open.state, open.retry_after), (State::Closed, None));
                    assert!(open.to_string().contains("ramping up"), "{open}");
                    false
                }
            })
            .count()
    };
    assert_eq!(admitted_of(100), 10, "10 % at first");
    assert_eq!(breaker.health(), tower_circuit_breaker::Health::Yellow);
    assert_eq!(
        tower_circuit_breaker::BreakerHealth::of(&breaker).health,
        tower_circuit_breaker::Health::Yellow
    );
    tokio::time::advance(SECOND / 2).await;
    let share = breaker.metrics().ramp_up_share.unwrap();
    assert!((share - 0.55).abs() < 1e-9, "{share}");
    // No burst to make up for the calls turned away before: 55 % of these.
    assert_eq!(admitted_of(100), 55);
    tokio::time::advance(SECOND / 2).await;
    assert_eq!(admitted_of(100), 100, "the ramp is over");
    assert_eq!(breaker.metrics().ramp_up_share, None);
    assert_eq!(breaker.metrics().rejected, 90 + 45);
    assert_eq!(breaker.health(), tower_circuit_breaker::Health::Green);
}

/// A ramp follows a recovery only: a manual reset admits everything at once, and a
/// failure during the ramp counts (and trips) as usual.
#[tokio::test(start_paused = true)]
async fn ramp_up_follows_only_a_recovery_and_failures_still_trip() {
    let breaker = CircuitBreaker::new(trip_on_first_failure().ramp_up(SECOND).build().unwrap());
    breaker.try_acquire().unwrap().failure();
    breaker.reset();
    assert_eq!(breaker.metrics().ramp_up_share, None);
    assert!(breaker.try_acquire().is_ok(), "no ramp after a reset");

    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(10 * SECOND).await;
    breaker.try_acquire().expect("the probe").success();
    let admitted = (0..10)
        .find_map(|_| breaker.try_acquire().ok())
        .expect("the tenth call is admitted");
    admitted.failure();
    assert_eq!(
        breaker.state(),
        State::Open,
        "a failure while ramping trips it"
    );
}

/// A full count window of successes takes further successes without recording them
/// (they would change nothing); once a failure is in it, every call counts again, so
/// the failure ages out after exactly `size` calls, and not before.
#[tokio::test(start_paused = true)]
async fn count_window_ages_failures_by_calls_even_after_a_run_of_successes() {
    let config = builder()
        .failure_rate(0.5)
        .sliding_window(Window::count(4))
        .minimum_calls(4)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config);
    let outcomes = |pattern: &str| {
        for outcome in pattern.chars() {
            let permit = breaker.try_acquire().expect("still closed");
            match outcome {
                'S' => permit.success(),
                _ => permit.failure(),
            }
        }
    };
    outcomes("SSSSSSSSSS");
    assert_eq!(breaker.metrics().failure_rate, 0.0);
    // The failure's slot comes round again after 4 calls: [F S S S], then the second
    // failure replaces the first.
    outcomes("FSSS");
    assert!((breaker.metrics().failure_rate - 0.25).abs() < 1e-9);
    outcomes("F");
    assert_eq!(breaker.state(), State::Closed, "one failure in the last 4");
    assert!((breaker.metrics().failure_rate - 0.25).abs() < 1e-9);
    // [F S F S]: two in the last four.
    outcomes("SF");
    assert_eq!(breaker.state(), State::Open);
    let metrics = breaker.metrics();
    assert_eq!((metrics.successes, metrics.failures), (14, 3));
}

#[tokio::test(start_paused = true)]
async fn both_rules_open_on_whichever_fires_first() {
    let config = builder()
        .consecutive_failures(3)
        .failure_rate(0.5)
        .sliding_window(Window::count(10))
        .minimum_calls(10)
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config.clone());
    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure();
    }
    assert_eq!(breaker.state(), State::Open, "consecutive rule fired first");

    let breaker = CircuitBreaker::new(config);
    for i in 0..10 {
        let permit = breaker.try_acquire().unwrap();
        if i % 2 == 0 {
            permit.failure()
        } else {
            permit.success()
        }
    }
    assert_eq!(breaker.state(), State::Open, "rate rule fired first");
}

#[tokio::test(start_paused = true)]
async fn ignored_outcomes_neither_count_nor_reset() {
    let breaker = CircuitBreaker::new(builder().consecutive_failures(3).build().unwrap());
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().failure();
    for _ in 0..10 {
        breaker.try_acquire().unwrap().record(Outcome::Ignored);
    }
    assert_eq!(breaker.metrics().consecutive_failures, 2);
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), State::Open);
    assert_eq!(breaker.metrics().ignored, 10);
}

#[tokio::test(start_paused = true)]
async fn outcomes_from_an_earlier_period_are_stale() {
    let breaker = CircuitBreaker::new(
        trip_on_first_failure()
            .consecutive_failures(2)
            .build()
            .unwrap(),
    );
    let slow_failure = breaker.try_acquire().unwrap(); // admitted while closed
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(breaker.state(), State::Open);
    breaker.reset();
    slow_failure.failure(); // finishes after the reset: judged the old period
    assert_eq!(breaker.metrics().consecutive_failures, 0);
    assert_eq!(
        breaker.metrics().failures,
        3,
        "still counted in the metrics"
    );
}

#[tokio::test(start_paused = true)]
async fn exponential_backoff_grows_per_trip_and_resets_on_close() {
    let config = trip_on_first_failure()
        .open_backoff(Backoff::exponential(2.0, 35 * SECOND))
        .build()
        .unwrap();
    let breaker = CircuitBreaker::new(config);
    breaker.try_acquire().unwrap().failure();
    for expected in [10, 20, 35, 35] {
        assert_eq!(breaker.metrics().retry_after, Some(expected * SECOND));
        tokio::time::advance(expected * SECOND).await;
        breaker.try_acquire().unwrap().failure(); // the probe fails: reopen, longer
    }
    tokio::time::advance(35 * SECOND).await;
    breaker.try_acquire().unwrap().success();
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().failure();
    assert_eq!(
        breaker.metrics().retry_after,
        Some(10 * SECOND),
        "backoff reset on close"
    );
}

#[tokio::test(start_paused = true)]
async fn jitter_stays_within_its_bounds() {
    let config = trip_on_first_failure()
        .open_backoff(Backoff::constant().jitter(0.2))
        .build()
        .unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..50 {
        let breaker = CircuitBreaker::new(config.clone());
        breaker.try_acquire().unwrap().failure();
        let open_for = breaker.metrics().retry_after.unwrap();
        assert!(
            open_for >= 8 * SECOND && open_for <= 12 * SECOND,
            "{open_for:?}"
        );
        seen.insert(open_for);
    }
    assert!(seen.len() > 1, "jitter must vary the open duration");
}

#[tokio::test(start_paused = true)]
async fn jittered_open_duration_never_exceeds_the_backoff_max() {
    let config = trip_on_first_failure()
        .open_backoff(Backoff::exponential(2.0, 15 * SECOND).jitter(0.5))
        .build()
        .unwrap();
    for _ in 0..50 {
        let breaker = CircuitBreaker::new(config.clone());
        breaker.try_acquire().unwrap().failure();
        let first = breaker.metrics().retry_after.unwrap();
        assert!(first >= 5 * SECOND && first <= 15 * SECOND, "{first:?}");
        tokio::time::advance(first).await;
        breaker.try_acquire().unwrap().failure(); // second trip: nominal 20 s, capped
        let second = breaker.metrics().retry_after.unwrap();
        assert!(second >= 7 * SECOND && second <= 15 * SECOND, "{second:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn manual_controls_override_and_reset_restores() {
    let (mut svc, backend) = guarded(trip_on_first_failure().build().unwrap(), Mode::Succeed);
    let breaker = svc.breaker().clone();

    breaker.force_open();
    assert_eq!(breaker.state(), State::ForcedOpen);
    match call(&mut svc).await {
        Err(Error::Open(open)) => {
            assert_eq!((open.state, open.retry_after), (State::ForcedOpen, None))
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    tokio::time::advance(1000 * SECOND).await;
    assert!(
        is_rejection(&call(&mut svc).await),
        "forced open does not time out"
    );
    assert_eq!(backend.hits(), 0);

    backend.set(Mode::Fail);
    breaker.force_closed();
    calls(&mut svc, 5).await;
    assert_eq!(breaker.state(), State::ForcedClosed, "never trips");
    assert_eq!(breaker.metrics().failures, 5, "but counts");

    breaker.disable();
    calls(&mut svc, 5).await;
    assert_eq!(breaker.state(), State::Disabled);
    assert_eq!(breaker.metrics().failures, 5, "records nothing");

    breaker.metrics_only();
    calls(&mut svc, 5).await;
    assert_eq!(
        breaker.state(),
        State::MetricsOnly,
        "would trip, but only reports"
    );
    let metrics = breaker.metrics();
    assert_eq!(metrics.failures, 10);
    assert_eq!(
        (metrics.consecutive_failures, metrics.would_be_trips),
        (5, 1),
        "the streak that would have tripped is kept, and reported once"
    );

    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().consecutive_failures, 0);
    calls(&mut svc, 1).await;
    assert_eq!(breaker.state(), State::Open, "normal rules again");
    assert_eq!(backend.hits(), 16);
}

/// The would-be trips among `events`.
fn would_be_trips(events: &[Event]) -> Vec<TransitionReason> {
    events
        .iter()
        .filter_map(|event| match event {
            Event::WouldBeTrip { reason, .. } => Some(*reason),
            _ => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn metrics_only_keeps_the_streak_and_reports_one_would_be_trip_per_episode() {
    let breaker = CircuitBreaker::new(builder().consecutive_failures(3).build().unwrap());
    breaker.metrics_only();
    let mut events = breaker.subscribe();
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().failure();
    assert_eq!(
        (
            breaker.metrics().consecutive_failures,
            breaker.metrics().would_be_trips
        ),
        (2, 0)
    );
    breaker.try_acquire().unwrap().failure(); // the rule fires: a would-be trip
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.state,
            metrics.consecutive_failures,
            metrics.would_be_trips
        ),
        (State::MetricsOnly, 3, 1),
        "the streak that fired is shown, not cleared"
    );
    let seen = drain(&mut events);
    assert_eq!(
        would_be_trips(&seen),
        [TransitionReason::ConsecutiveFailures { count: 3 }]
    );
    assert!(
        matches!(seen[seen.len() - 2], Event::Failure { .. }),
        "the failure first, then the would-be trip it fired: {seen:?}"
    );

    // A long outage is one episode; ignored outcomes neither end nor extend it.
    for i in 0..50 {
        let permit = breaker.try_acquire().unwrap();
        if i % 10 == 0 {
            permit.record(Outcome::Ignored);
        } else {
            permit.failure();
        }
    }
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.consecutive_failures, metrics.would_be_trips),
        (48, 1)
    );
    assert_eq!(would_be_trips(&drain(&mut events)), []);

    // A success breaks the streak: the rule stops firing and the episode ends.
    breaker.try_acquire().unwrap().success();
    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure();
    }
    let metrics = breaker.metrics();
    assert_eq!(
        (metrics.consecutive_failures, metrics.would_be_trips),
        (3, 2),
        "a second episode after recovery is a second would-be trip"
    );
    assert_eq!(
        would_be_trips(&drain(&mut events)),
        [TransitionReason::ConsecutiveFailures { count: 3 }]
    );

    // A new metrics-only period starts without an episode.
    breaker.force_closed();
    breaker.metrics_only();
    breaker.try_acquire().unwrap().failure(); // the streak carried over: 4, firing
    assert_eq!(breaker.metrics().would_be_trips, 3);
    assert_eq!(breaker.state(), State::MetricsOnly, "never trips");
}

#[tokio::test(start_paused = true)]
async fn metrics_only_shows_the_failure_rate_that_fired() {
    let breaker = CircuitBreaker::new(
        builder()
            .failure_rate(0.5)
            .sliding_window(Window::count(10))
            .minimum_calls(4)
            .build()
            .unwrap(),
    );
    breaker.metrics_only();
    let mut events = breaker.subscribe();
    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure();
    }
    assert_eq!(breaker.metrics().would_be_trips, 0, "below minimum_calls");
    breaker.try_acquire().unwrap().failure(); // 4 calls, 100 %: the rule fires
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.window_calls,
            metrics.failure_rate,
            metrics.would_be_trips
        ),
        (4, 1.0, 1),
        "the window and the rate that fired, not 0 calls at 0 %"
    );
    assert_eq!(
        would_be_trips(&drain(&mut events)),
        [TransitionReason::FailureRate {
            rate: 1.0,
            calls: 4
        }]
    );

    // A long outage: one would-be trip.
    for _ in 0..100 {
        breaker.try_acquire().unwrap().failure();
    }
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.window_calls,
            metrics.failure_rate,
            metrics.would_be_trips
        ),
        (10, 1.0, 1)
    );

    // Recovery: the rate stays at or above 50 % for five successes, then drops below.
    for _ in 0..5 {
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.metrics().failure_rate, 0.5);
    for _ in 0..10 {
        breaker.try_acquire().unwrap().success();
    }
    assert_eq!(breaker.metrics().failure_rate, 0.0);
    assert_eq!(breaker.metrics().would_be_trips, 1);

    // A second outage: fires again at 5 failures in 10 calls.
    for _ in 0..4 {
        breaker.try_acquire().unwrap().failure();
    }
    assert_eq!(breaker.metrics().would_be_trips, 1);
    breaker.try_acquire().unwrap().failure();
    let metrics = breaker.metrics();
    assert_eq!(
        (
            metrics.window_calls,
            metrics.failure_rate,
            metrics.would_be_trips
        ),
        (10, 0.5, 2)
    );
    for _ in 0..20 {
        breaker.try_acquire().unwrap().failure();
    }
    assert_eq!(breaker.metrics().would_be_trips, 2);
    assert_eq!(
        would_be_trips(&drain(&mut events)),
        [TransitionReason::FailureRate {
            rate: 0.5,
            calls: 10
        }]
    );
    assert_eq!(breaker.metrics().state_changes, 1, "only the manual switch");
}

#[tokio::test(start_paused = true)]
async fn reset_from_open_and_half_open() {
    let breaker = CircuitBreaker::new(trip_on_first_failure().build().unwrap());
    breaker.try_acquire().unwrap().failure();
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    breaker.try_acquire().unwrap().failure();
    tokio::time::advance(10 * SECOND).await;
    let probe = breaker.try_acquire().unwrap();
    assert_eq!(breaker.state(), State::HalfOpen);
    breaker.reset();
    assert_eq!(breaker.state(), State::Closed);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    probe.failure(); // stale: the reset ended its period
    assert_eq!(breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn repeated_manual_control_is_one_transition() {
    let breaker = CircuitBreaker::new(Config::default());
    breaker.force_open();
    breaker.force_open();
    assert_eq!(breaker.metrics().state_changes, 1);
}
