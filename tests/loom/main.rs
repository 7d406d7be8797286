//! Model checking of the breaker's concurrent paths with [loom].
//!
//! Built only with `--cfg tcb_loom`, which swaps the state machine's atomics and mutex for
//! loom's (see `src/core/sync.rs`); loom then runs each model under every interleaving
//! of its threads (bounded by `LOOM_MAX_PREEMPTIONS`):
//!
//! ```text
//! RUSTFLAGS="--cfg tcb_loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom
//! ```
//!
//! Time: the open duration is 1 ns, so it has always elapsed by the next admission and
//! every interleaving sees the same clock-dependent branches; probes never time out
//! (`half_open_max_wait` is an hour). For the same reason `state()`, which reports an
//! ended open period as half-open, may read `HalfOpen` right after a trip:
//! [`assert_opened`] accepts both, and the transition counts tell the periods apart.
//! The models of the half-open timeout instead run on a paused Tokio clock (see
//! [`PausedClock`]), which moves only when told to.
//!
//! [loom]: https://docs.rs/loom
#![cfg(tcb_loom)]

use std::time::Duration;

use loom::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use loom::sync::Arc;
use loom::thread;
use tower_circuit_breaker::{CircuitBreaker, Config, Permit, State};

const HOUR: Duration = Duration::from_secs(3_600);
const SECOND: Duration = Duration::from_secs(1);

fn breaker(consecutive: u32, permits: u32, successes: u32) -> CircuitBreaker {
    let config = Config::builder()
        .name("loom")
        .consecutive_failures(consecutive)
        .open_duration(Duration::from_nanos(1))
        .half_open_permits(permits)
        .half_open_successes(successes)
        .half_open_max_wait(HOUR)
        .build()
        .expect("valid config");
    CircuitBreaker::new(config)
}

/// The breaker has opened (its 1 ns open period may already read as ready to probe).
fn assert_opened(breaker: &CircuitBreaker) {
    let state = breaker.state();
    assert!(
        matches!(state, State::Open | State::HalfOpen),
        "not opened: {state:?}"
    );
    assert_eq!(
        breaker.metrics().probes_in_flight,
        0,
        "no probe admitted yet"
    );
}

/// Records a failure under each permit, each on a thread of its own, and waits for all.
fn fail_concurrently(permits: Vec<Permit>) {
    let threads: Vec<_> = permits
        .into_iter()
        .map(|permit| thread::spawn(move || permit.failure()))
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
}

/// Trips a breaker whose rule is one failure, then moves it to half-open with no probe
/// in flight: the first admission after the (1 ns) open duration starts half-open and
/// takes a probe, which is dropped unreported (Ignored: the slot comes back).
fn half_open(permits: u32, successes: u32) -> CircuitBreaker {
    let breaker = breaker(1, permits, successes);
    breaker.try_acquire().expect("closed admits").failure();
    assert_opened(&breaker);
    assert_eq!(breaker.metrics().state_changes, 1);
    drop(breaker.try_acquire().expect("the open duration elapsed"));
    assert_eq!(breaker.state(), State::HalfOpen);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    breaker
}

/// Two threads race for one probe slot of a half-open breaker: never do more probes run
/// at once than the configured permits, and every slot is back once the probes report.
#[test]
fn half_open_never_admits_more_probes_than_permits() {
    loom::model(|| {
        let breaker = half_open(1, 2);
        let (running, admitted) = race_for_probes(&breaker);
        assert_eq!(running.load(SeqCst), 0);
        let metrics = breaker.metrics();
        assert_eq!(metrics.probes_in_flight, 0, "a probe slot leaked");
        // closed -> open -> half-open; -> closed only after two successful probes.
        match breaker.state() {
            State::HalfOpen => assert_eq!(metrics.state_changes, 2),
            State::Closed => {
                assert_eq!(admitted, 2);
                assert_eq!(metrics.state_changes, 3);
            }
            other => panic!("unexpected state {other:?}"),
        }
        assert!(
            admitted >= 1,
            "a free probe slot was refused to both threads"
        );
    });
}

/// Two threads race for the first admission after the open duration: exactly one
/// open -> half-open transition happens, and it hands out at most one probe.
#[test]
fn the_end_of_the_open_duration_starts_half_open_once() {
    loom::model(|| {
        let breaker = breaker(1, 1, 2);
        breaker.try_acquire().expect("closed admits").failure();
        let (_, admitted) = race_for_probes(&breaker);
        assert_eq!(admitted, 1 + usize::from(breaker.state() == State::Closed));
        assert_eq!(breaker.metrics().probes_in_flight, 0, "a probe slot leaked");
        let expected = if breaker.state() == State::Closed {
            3
        } else {
            2
        };
        assert_eq!(breaker.metrics().state_changes, expected);
    });
}

/// Two threads each ask once for a permit and, if admitted, report a success. Checks,
/// while a probe runs, that no other probe runs beside it (one permit). Returns the
/// count of running probes (0 once joined) and how many were admitted.
fn race_for_probes(breaker: &CircuitBreaker) -> (Arc<AtomicUsize>, usize) {
    let running = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (breaker, running, admitted) = (breaker.clone(), running.clone(), admitted.clone());
            thread::spawn(move || {
                if let Ok(permit) = breaker.try_acquire() {
                    assert!(permit.is_probe());
                    let before = running.fetch_add(1, SeqCst);
                    assert_eq!(before, 0, "two probes ran at once with one permit");
                    admitted.fetch_add(1, SeqCst);
                    running.fetch_sub(1, SeqCst);
                    permit.success();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let admitted = admitted.load(SeqCst);
    (running, admitted)
}

/// Two failures of the same closed period, each enough to trip: the breaker opens
/// exactly once (no double open, no lost transition).
#[test]
fn concurrent_failures_open_the_breaker_once() {
    loom::model(|| {
        let breaker = breaker(1, 1, 1);
        let permits: Vec<_> = (0..2)
            .map(|_| breaker.try_acquire().expect("closed admits"))
            .collect();
        fail_concurrently(permits);
        assert_opened(&breaker);
        assert_eq!(breaker.metrics().state_changes, 1, "opened more than once");
        assert_eq!(breaker.metrics().failures, 2);
    });
}

/// A successful probe (enough to close) races a failed probe (enough to reopen) of
/// the same half-open period: exactly one of them moves the breaker, never both.
#[test]
fn racing_probe_outcomes_move_the_breaker_once() {
    loom::model(|| {
        let breaker = half_open(2, 1);
        let changes = breaker.metrics().state_changes;
        let succeeding = breaker.try_acquire().expect("first probe");
        let failing = breaker.try_acquire().expect("second probe");
        let a = thread::spawn(move || succeeding.success());
        let b = thread::spawn(move || failing.failure());
        a.join().unwrap();
        b.join().unwrap();
        let state = breaker.state();
        assert!(
            // Open, or its 1 ns period already over and reading as half-open.
            matches!(state, State::Closed | State::Open | State::HalfOpen),
            "unexpected state {state:?}"
        );
        assert_eq!(
            breaker.metrics().state_changes,
            changes + 1,
            "both probe outcomes moved the breaker"
        );
    });
}

/// A probe dropped without a report gives its slot back while another thread asks for
/// one: afterwards the slot is free again, whatever the interleaving.
#[test]
fn a_dropped_probe_returns_its_permit() {
    loom::model(|| {
        let breaker = half_open(1, 1);
        let held = breaker.try_acquire().expect("the only probe slot");
        let dropper = thread::spawn(move || drop(held));
        let contender = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.try_acquire().map(drop).is_ok())
        };
        dropper.join().unwrap();
        let contender_got_it = contender.join().unwrap();
        assert_eq!(breaker.state(), State::HalfOpen);
        assert_eq!(breaker.metrics().probes_in_flight, 0, "a probe slot leaked");
        assert!(
            breaker.try_acquire().is_ok(),
            "slot not free afterwards (contender admitted: {contender_got_it})"
        );
    });
}

/// A reset races the failure that trips the breaker. The failure was admitted before
/// the reset, so either it trips first and the reset closes again, or the reset comes
/// first and the stale failure is not counted: the breaker always ends closed.
#[test]
fn a_reset_racing_a_trip_always_ends_closed() {
    loom::model(|| {
        let breaker = breaker(1, 1, 1);
        let permit = breaker.try_acquire().expect("closed admits");
        let failing = thread::spawn(move || permit.failure());
        let resetting = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.reset())
        };
        failing.join().unwrap();
        resetting.join().unwrap();
        assert_eq!(breaker.state(), State::Closed);
        let changes = breaker.metrics().state_changes;
        assert!(
            changes == 1 || changes == 2,
            "reset (+ trip) expected, got {changes} transitions"
        );
        // Closed for real: a fresh failure trips it.
        let before = breaker.metrics().state_changes;
        breaker.try_acquire().expect("closed admits").failure();
        assert_opened(&breaker);
        assert_eq!(breaker.metrics().state_changes, before + 1);
    });
}

/// A paused Tokio clock for the models whose branches depend on time. Loom runs every
/// thread of a model on the model's own OS thread, so once the model thread has entered
/// the runtime, every thread reads this clock; it moves only on [`advance`], so every
/// interleaving sees the same times. Enter it before building the breaker (whose clock
/// origin is "now").
///
/// [`advance`]: PausedClock::advance
struct PausedClock(tokio::runtime::Runtime);

impl PausedClock {
    fn new() -> PausedClock {
        PausedClock(
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .expect("a paused runtime"),
        )
    }

    fn advance(&self, by: Duration) {
        self.0.block_on(tokio::time::advance(by));
    }
}

/// Tripped at 0 s, half-open at 10 s with one probe (returned) running; two probe
/// permits, a 10 s open duration and a 10 s max wait. On a [`PausedClock`].
fn half_open_at_ten_seconds(
    clock: &PausedClock,
    successes: u32,
) -> (CircuitBreaker, tower_circuit_breaker::Permit) {
    let breaker = CircuitBreaker::new(
        Config::builder()
            .name("loom")
            .consecutive_failures(1)
            .open_duration(10 * SECOND)
            .half_open_permits(2)
            .half_open_successes(successes)
            .half_open_max_wait(10 * SECOND)
            .build()
            .expect("valid config"),
    );
    breaker.try_acquire().expect("closed admits").failure();
    assert_eq!(
        breaker.state(),
        State::Open,
        "the paused clock holds it open"
    );
    clock.advance(10 * SECOND);
    let probe = breaker.try_acquire().expect("the open duration elapsed");
    assert!(probe.is_probe());
    (breaker, probe)
}

/// At the half-open deadline (20 s), a probe finishes with the success that closes the
/// breaker while another thread asks for a permit, which is due to time the period out
/// unless it sees the probe's progress. Exactly one of them ends the half-open period,
/// and the call agrees with how it ended: rejected by the open period the timeout
/// started (10 s), or admitted once the probe's progress or the close is seen. The
/// probe's success is never applied to the new period.
#[test]
fn a_probe_finishing_as_half_open_times_out_ends_the_period_once() {
    loom::model(|| {
        let clock = PausedClock::new();
        let _entered = clock.0.enter();
        let (breaker, probe) = half_open_at_ten_seconds(&clock, 1);
        clock.advance(10 * SECOND);
        let finishing = thread::spawn(move || probe.success());
        let calling = {
            let breaker = breaker.clone();
            thread::spawn(move || breaker.try_acquire())
        };
        finishing.join().unwrap();
        let call = calling.join().unwrap();
        let metrics = breaker.metrics();
        assert_eq!(
            metrics.state_changes, 3,
            "closed -> open -> half-open, then one transition, not two"
        );
        match metrics.state {
            State::Open => {
                let open = call.expect_err("the call that timed the period out is rejected");
                assert_eq!(
                    (open.state, open.retry_after),
                    (State::Open, Some(10 * SECOND))
                );
                assert_eq!(metrics.retry_after, Some(10 * SECOND));
                assert_eq!(metrics.probes_in_flight, 0);
            }
            State::Closed => {
                // Admitted as a probe of the period the success closed (stale), or as
                // a closed call.
                drop(call.expect("no timeout: the call is admitted"));
                assert_eq!(breaker.state(), State::Closed, "a stale probe moved it");
            }
            other => panic!("unexpected state {other:?}"),
        }
    });
}

/// Past the half-open deadline, with a probe still running (hung) and a permit free,
/// two threads ask for a permit: the period is reopened once, by whichever gets there
/// first, and both are rejected by that open period; the hung probe's late failure
/// then moves nothing.
#[test]
fn racing_calls_past_the_max_wait_reopen_once() {
    loom::model(|| {
        let clock = PausedClock::new();
        let _entered = clock.0.enter();
        let (breaker, hung) = half_open_at_ten_seconds(&clock, 2);
        clock.advance(11 * SECOND);
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || breaker.try_acquire().map(drop))
            })
            .collect();
        for call in calls {
            let open = call
                .join()
                .unwrap()
                .expect_err("no probe after the max wait, though a permit is free");
            assert_eq!(
                (open.state, open.retry_after),
                (State::Open, Some(10 * SECOND))
            );
        }
        hung.failure();
        let metrics = breaker.metrics();
        assert_eq!(
            (metrics.state, metrics.state_changes, metrics.retry_after),
            (State::Open, 3, Some(10 * SECOND)),
            "reopened once, and not again by the stale probe"
        );
    });
}

/// Two outcomes each complete a window of one call, so each folds it into the adaptive
/// rule's baseline, racing on its CAS: both folds count (the warm-up of two windows is
/// over, which it is not if either fold were lost).
#[test]
fn racing_folds_into_the_adaptive_baseline_both_count() {
    loom::model(|| {
        let config = Config::builder()
            .name("loom")
            .failure_rate_adaptive(
                tower_circuit_breaker::AdaptiveFailureRate::new()
                    .horizon(4)
                    .warm_up(2),
            )
            .sliding_window(tower_circuit_breaker::Window::count(1))
            .minimum_calls(1)
            .build()
            .expect("valid config");
        let breaker = CircuitBreaker::new(config);
        let permits: Vec<_> = (0..2)
            .map(|_| breaker.try_acquire().expect("closed admits"))
            .collect();
        let threads: Vec<_> = permits
            .into_iter()
            .map(|permit| thread::spawn(move || permit.success()))
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(breaker.metrics().failure_rate_baseline, Some(0.0));
        assert_eq!(breaker.state(), State::Closed);
    });
}

/// An hour-long open period with a one-second probe interval: at one second, two
/// threads call at once. Exactly one is admitted, as the scout period's single probe;
/// the other is rejected: by that period (half-open, its one permit taken until the
/// next interval brings another), or, if it read the open word just before the
/// transition published the new one, as open until the next probe interval (the
/// transition writes its entry time first).
#[test]
fn racing_calls_at_the_probe_interval_admit_one_probe() {
    loom::model(|| {
        let clock = PausedClock::new();
        let _entered = clock.0.enter();
        let breaker = CircuitBreaker::new(
            Config::builder()
                .name("loom")
                .consecutive_failures(1)
                .open_duration(HOUR)
                .probe_interval(SECOND)
                .half_open_permits(2)
                .half_open_max_wait(HOUR)
                .build()
                .expect("valid config"),
        );
        breaker.try_acquire().expect("closed admits").failure();
        clock.advance(SECOND);
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || breaker.try_acquire())
            })
            .collect();
        let calls: Vec<_> = calls.into_iter().map(|t| t.join().unwrap()).collect();
        let admitted = calls.iter().filter(|call| call.is_ok()).count();
        assert_eq!(admitted, 1, "one scout probe");
        let rejected = calls
            .iter()
            .find_map(|call| call.as_ref().err())
            .expect("one rejected");
        // Either way it may come back in a second: the scout period's next permit (it
        // allows two), or the next scout of the open period.
        assert!(
            matches!(rejected.state, State::HalfOpen | State::Open),
            "rejected by {:?}",
            rejected.state
        );
        assert_eq!(rejected.retry_after, Some(SECOND));
        let metrics = breaker.metrics();
        assert_eq!((metrics.state_changes, metrics.probes_in_flight), (2, 1));
    });
}

/// Ramping up after a recovery with 60 % of the calls admitted: two threads offer a
/// call at once. The ramp's counter hands them the first and second slot, whatever
/// the interleaving, and exactly one of the two is admitted.
#[test]
fn racing_calls_while_ramping_up_admit_the_share() {
    loom::model(|| {
        let clock = PausedClock::new();
        let _entered = clock.0.enter();
        let breaker = CircuitBreaker::new(
            Config::builder()
                .name("loom")
                .consecutive_failures(1)
                .open_duration(SECOND)
                .half_open_permits(1)
                .half_open_successes(1)
                .half_open_max_wait(HOUR)
                .ramp_up(9 * SECOND)
                .build()
                .expect("valid config"),
        );
        breaker.try_acquire().expect("closed admits").failure();
        clock.advance(SECOND);
        breaker.try_acquire().expect("the probe").success();
        clock.advance(5 * SECOND);
        let share = breaker.metrics().ramp_up_share.expect("ramping up");
        assert!((share - 0.6).abs() < 1e-9, "{share}");
        let calls: Vec<_> = (0..2)
            .map(|_| {
                let breaker = breaker.clone();
                thread::spawn(move || breaker.try_acquire().is_ok())
            })
            .collect();
        let admitted = calls
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|admitted| *admitted)
            .count();
        assert_eq!(admitted, 1);
        assert_eq!(breaker.metrics().rejected, 1);
    });
}

/// A group of `members` endpoint breakers (one failure trips each) whose cap lets
/// `max_ejection_percent` of them out, with every member discovered; returns the
/// services the discovery yielded (an endpoint is a member while its service lives).
fn group(
    members: usize,
    max_ejection_percent: u32,
) -> (
    tower_circuit_breaker::balance::EndpointBreakers<usize>,
    Vec<impl Send + 'static>,
) {
    use futures::StreamExt;
    use tower::discover::{Change, ServiceList};
    let group = tower_circuit_breaker::balance::EndpointBreakers::builder(
        Config::builder()
            .name("group")
            .consecutive_failures(1)
            .open_duration(HOUR)
            .build()
            .expect("valid config"),
    )
    .max_ejection_percent(max_ejection_percent)
    .build()
    .expect("valid cap");
    let answer: fn(()) -> std::future::Ready<Result<(), std::io::Error>> =
        |()| std::future::ready(Ok(()));
    let endpoints = ServiceList::new(
        (0..members)
            .map(|_| tower::service_fn(answer))
            .collect::<Vec<_>>(),
    );
    let mut discover = group.discover(endpoints);
    let services = (0..members)
        .map(|_| match futures::executor::block_on(discover.next()) {
            Some(Ok(Change::Insert(_, service))) => service,
            _ => panic!("an insert per member"),
        })
        .collect();
    (group, services)
}

/// Two members trip at once in a group whose cap lets one out: exactly one opens, the
/// other's trip is refused, and the counts agree.
#[test]
fn racing_trips_in_a_group_never_exceed_its_cap() {
    loom::model(|| {
        let (group, _services) = group(2, 50);
        let permits: Vec<_> = (0..2)
            .map(|key| group.get(&key).unwrap().try_acquire().expect("closed"))
            .collect();
        fail_concurrently(permits);
        let opened = (0..2)
            .filter(|key| group.get(key).unwrap().state() != State::Closed)
            .count();
        assert_eq!(opened, 1, "the cap lets exactly one out");
        assert_eq!((group.ejected(), group.capped_trips()), (1, 1));
    });
}

/// A member trips while the balancer drops its service (the endpoint leaves the
/// group): whichever comes first, the group ends with one member and nothing counted
/// out.
#[test]
fn a_member_removed_as_it_trips_frees_its_slot() {
    loom::model(|| {
        let (group, mut services) = group(2, 100);
        let permit = group.get(&0).unwrap().try_acquire().expect("closed");
        let trip = thread::spawn(move || permit.failure());
        drop(services.remove(0));
        trip.join().unwrap();
        assert_eq!((group.len(), group.ejected()), (1, 0));
    });
}
