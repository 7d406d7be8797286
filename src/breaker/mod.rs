//! [`CircuitBreaker`]: the cheap-to-clone handle on one breaker's shared state, and
//! the crate's one door into `core`: the Tower glue and the fleet sync reach the state
//! machine only through its crate-internal methods (see [`door`]).

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::config::Config;
use crate::core::lane::Lanes;
use crate::core::machine::StateMachine;
use crate::core::window::ratio;
use crate::error::CircuitOpen;
use crate::event::Event;
use crate::metrics::Metrics;
use crate::state::{Health, State};

// The door's vocabulary: the values its callers hold between two calls through it.
pub(crate) use crate::core::admission::{Admission, Rejection, Ticket};
pub(crate) use crate::core::ejection::EjectionBudget;
pub(crate) use crate::core::permit::Permit;
#[cfg(feature = "redis")]
pub(crate) use crate::reason::TransitionReason;

mod door;
#[cfg(feature = "redis")]
mod fleet;
mod group;

/// A circuit breaker. Clones share one state: a trip seen through one clone rejects
/// calls through all of them.
///
/// Wrap Tower services with [`layer`](CircuitBreaker::layer), run any future that yields
/// a `Result` under it with [`call`](CircuitBreaker::call), or guard a call by hand with
/// [`try_acquire`](CircuitBreaker::try_acquire). Operators steer it with the manual
/// controls and watch it through [`metrics`](CircuitBreaker::metrics).
///
/// ```
/// use tower_circuit_breaker::{CircuitBreaker, Config, State};
///
/// let breaker = CircuitBreaker::new(Config::builder().consecutive_failures(2).build()?);
/// for _ in 0..2 {
///     let permit = breaker.try_acquire().expect("closed breakers admit calls");
///     permit.failure();
/// }
/// assert_eq!(breaker.state(), State::Open);
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert!(rejected.retry_after.is_some());
///
/// breaker.reset();
/// assert_eq!(breaker.state(), State::Closed);
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreaker {
    /// Held directly, beside the lanes rather than behind a common allocation: a keyed
    /// breaker looked up cold loads the state word and its lane in parallel.
    machine: Arc<StateMachine>,
    lanes: Lanes,
}

impl CircuitBreaker {
    /// A new breaker, closed.
    pub fn new(config: Config) -> CircuitBreaker {
        CircuitBreaker::from_machine(StateMachine::new(config))
    }

    /// A new breaker around `machine`.
    fn from_machine(machine: StateMachine) -> CircuitBreaker {
        // Transitions are pushed to the metrics export as they happen.
        #[cfg(feature = "metrics")]
        crate::core::observer::install(crate::metric_series::transition);
        let machine = Arc::new(machine);
        let lanes = Lanes::new(&machine);
        CircuitBreaker { machine, lanes }
    }

    /// The breaker's name.
    pub fn name(&self) -> &str {
        &self.machine.config.name
    }

    /// The configuration the breaker was built with.
    #[inline]
    pub fn config(&self) -> &Config {
        &self.machine.config
    }

    /// The current state, as the next call would find it; a pure read that never
    /// changes anything (one atomic load, plus a clock read while open).
    ///
    /// Once the open duration has elapsed the breaker reports `HalfOpen`, ready to
    /// probe, even before any call arrives to move it there, so a readiness probe or
    /// dashboard reading it never sticks on `Open`. (With fleet sync, it stays `Open`
    /// while another instance holds the probe lease: calls here are still rejected.)
    /// A half-open period whose probes made no progress within
    /// [`half_open_max_wait`](crate::ConfigBuilder::half_open_max_wait) reads `Open`:
    /// the next call reopens the breaker and is rejected.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_circuit_breaker::{CircuitBreaker, Config, Health, State};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() -> Result<(), tower_circuit_breaker::ConfigError> {
    /// let breaker = CircuitBreaker::new(
    ///     Config::builder().consecutive_failures(1).open_duration(Duration::from_secs(5)).build()?,
    /// );
    /// breaker.try_acquire().expect("closed").failure();
    /// assert_eq!((breaker.state(), breaker.health()), (State::Open, Health::Red));
    /// tokio::time::advance(Duration::from_secs(5)).await; // no call arrives meanwhile
    /// assert_eq!((breaker.state(), breaker.health()), (State::HalfOpen, Health::Yellow));
    /// # Ok(())
    /// # }
    /// ```
    pub fn state(&self) -> State {
        self.machine.observed_state()
    }

    /// Green while calls flow, yellow while probing, ready to probe or
    /// [ramping up](crate::ConfigBuilder::ramp_up) after a recovery, red while rejecting
    /// (see [`state`](Self::state)).
    pub fn health(&self) -> Health {
        match self.state() {
            State::Closed if self.machine.is_ramping_up() => Health::Yellow,
            state => state.health(),
        }
    }

    /// Asks to make one call. On success, report the outcome through the [`Permit`];
    /// on rejection, the [`CircuitOpen`] says when to come back. Rejections are counted
    /// in the metrics.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit, CircuitOpen> {
        // Admission reads the state word through `machine`, not through the lane, so
        // that the two loads do not wait on each other.
        self.lane().acquire(self.machine.admit())
    }

    /// Back to `Closed` with every counter of the trip rules cleared and the backoff
    /// reset (lifetime metrics are kept). Calls admitted before the reset no longer move
    /// the breaker; one finishing at the very moment of the reset may still be counted
    /// in the new period's failure streak or window.
    pub fn reset(&self) {
        self.machine.force(State::Closed, true);
    }

    /// Rejects every call until another manual control or [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.machine.force(State::ForcedOpen, false);
    }

    /// Admits every call and never trips; outcomes are still counted in the metrics.
    pub fn force_closed(&self) {
        self.machine.force(State::ForcedClosed, false);
    }

    /// Admits every call and records nothing.
    pub fn disable(&self) {
        self.machine.force(State::Disabled, false);
    }

    /// Admits every call, records outcomes and evaluates the rules, but only reports
    /// when a rule fires. Useful to tune thresholds on live traffic.
    ///
    /// The rules are never restarted here, so [`metrics`](Self::metrics) keeps showing
    /// the failure streak and the window's rates, including those that fired. A
    /// would-be trip is reported once per *episode*, a run of counted outcomes on each
    /// of which some rule fires: its first outcome logs "circuit breaker would open"
    /// at `info` (with the reason, streak and rates), adds one to
    /// [`Metrics::would_be_trips`] and sends [`Event::WouldBeTrip`]. The episode ends
    /// at the first success or failure on which no rule fires (the streak broken and
    /// the rates below their thresholds, or fewer than `minimum_calls` in the window);
    /// the next firing is a new would-be trip. A long outage is thus one would-be
    /// trip, not one per failure. Ignored outcomes neither extend nor end an episode,
    /// and a new metrics-only period starts without one. The streak and the window
    /// carry over from the closed state; [`reset`](Self::reset) clears them.
    ///
    /// ```
    /// use tower_circuit_breaker::{CircuitBreaker, Config, State};
    ///
    /// let breaker = CircuitBreaker::new(Config::builder().consecutive_failures(3).build()?);
    /// breaker.metrics_only();
    /// for _ in 0..10 {
    ///     breaker.try_acquire().expect("metrics-only admits every call").failure();
    /// }
    /// let metrics = breaker.metrics();
    /// assert_eq!(metrics.state, State::MetricsOnly);
    /// assert_eq!(metrics.consecutive_failures, 10); // the streak that fired, and more
    /// assert_eq!(metrics.would_be_trips, 1); // one outage, one would-be trip
    /// # Ok::<(), tower_circuit_breaker::ConfigError>(())
    /// ```
    pub fn metrics_only(&self) {
        self.machine.force(State::MetricsOnly, false);
    }

    /// A receiver of every [`Event`] this breaker sends from now on: transitions,
    /// rejections and call outcomes.
    ///
    /// While no receiver exists the breaker builds no events at all; the hot paths pay
    /// one relaxed load. With a receiver, each outcome takes the breaker's slower
    /// recording path, which builds the events, and one event is cloned into
    /// every receiver. A receiver that falls more than 1024 events behind is not waited
    /// for: it gets [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged)
    /// and resumes with the most recent events. Drop the receiver to stop listening.
    /// A [`disable`](Self::disable)d breaker records nothing and sends no outcome
    /// events.
    ///
    /// ```
    /// use tower_circuit_breaker::{CircuitBreaker, Config, Event};
    ///
    /// let breaker = CircuitBreaker::new(Config::default());
    /// let mut events = breaker.subscribe();
    /// breaker.force_open();
    /// assert!(breaker.try_acquire().is_err());
    /// let mut seen = Vec::new();
    /// while let Ok(event) = events.try_recv() {
    ///     seen.push(event);
    /// }
    /// assert!(matches!(seen[0], Event::StateTransition { .. }));
    /// assert!(matches!(seen[1], Event::Rejected { .. }));
    /// ```
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.machine.events.subscribe()
    }

    /// A snapshot of the counters and state.
    pub fn metrics(&self) -> Metrics {
        let machine = &self.machine;
        let clock = machine.clock;
        let now = clock.now();
        let snapshot = machine.snapshot(now);
        let (mut successes, mut failures, mut ignored, mut rejected, mut slow_calls) =
            (0u64, 0u64, 0u64, 0u64, 0u64);
        let (mut last_success, mut last_failure) = (0u64, 0u64);
        for counters in self.lanes.iter() {
            use std::sync::atomic::Ordering::Relaxed;
            successes += counters.successes.get();
            failures += counters.failures.load(Relaxed);
            ignored += counters.ignored.load(Relaxed);
            rejected += counters.rejected.get();
            slow_calls += counters.slow.load(Relaxed);
            last_success = last_success.max(counters.last_success_at.load(Relaxed));
            last_failure = last_failure.max(counters.last_failure_at.load(Relaxed));
        }
        let stamp = |stored: u64| stored.checked_sub(1).map(|at| clock.instant(at));
        let (window_calls, failure_rate, slow_call_rate) = match snapshot.window {
            Some(window) => (window.calls, window.failure_rate(), window.slow_rate()),
            None => (
                0,
                ratio(failures, successes + failures),
                ratio(slow_calls, successes + failures),
            ),
        };
        Metrics {
            state: snapshot.state,
            calls: successes + failures + ignored + rejected,
            successes,
            failures,
            ignored,
            rejected,
            slow_calls,
            window_calls,
            failure_rate,
            failure_rate_threshold: snapshot.failure_rate_threshold,
            failure_rate_baseline: snapshot.failure_rate_baseline,
            slow_call_rate,
            consecutive_failures: snapshot.consecutive_failures,
            probes_in_flight: snapshot.probes_in_flight,
            ramp_up_share: snapshot.ramp_up_share,
            state_changes: snapshot.state_changes,
            would_be_trips: snapshot.would_be_trips,
            last_failure_at: stamp(last_failure),
            last_success_at: stamp(last_success),
            time_in_state: std::time::Duration::from_nanos(now.saturating_sub(snapshot.entered_at)),
            retry_after: snapshot.retry_after,
        }
    }
}

impl From<Config> for CircuitBreaker {
    fn from(config: Config) -> Self {
        CircuitBreaker::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_created_by_the_threads_that_call() {
        let breaker = CircuitBreaker::new(Config::default());
        assert_eq!(breaker.lanes.created(), 0, "no call, no lane");
        for _ in 0..100 {
            breaker.try_acquire().expect("closed").success();
        }
        assert_eq!(breaker.lanes.created(), 1, "one thread, one lane");
        let other = breaker.clone();
        std::thread::spawn(move || other.try_acquire().expect("closed").failure())
            .join()
            .expect("the other thread ran");
        let created = breaker.lanes.created();
        // The other thread's slot may share this thread's lane (slots are handed out
        // process-wide): either way, every lane that exists is counted.
        assert!((1..=2).contains(&created), "{created} lanes");
        let metrics = breaker.metrics();
        assert_eq!((metrics.successes, metrics.failures), (100, 1));
    }

    #[test]
    fn threads_sharing_lanes_lose_no_count() {
        // More threads than lanes: each lane has an owner counting with plain stores
        // and other threads counting with read-modify-writes, side by side. In later
        // rounds the lanes' owners have exited and every thread counts the other way.
        let breaker = CircuitBreaker::new(Config::default());
        let threads = 2 * breaker.lanes.slots() + 1;
        const CALLS: u64 = 50_000;
        const ROUNDS: u64 = 3;
        let start = std::sync::Barrier::new(threads);
        for _ in 0..ROUNDS {
            std::thread::scope(|scope| {
                for _ in 0..threads {
                    scope.spawn(|| {
                        start.wait(); // all at once, so that they overlap
                        for _ in 0..CALLS {
                            breaker.try_acquire().expect("closed").success();
                        }
                    });
                }
            });
        }
        breaker.force_open();
        for _ in 0..threads {
            assert!(breaker.try_acquire().is_err());
        }
        let metrics = breaker.metrics();
        assert_eq!(metrics.successes, ROUNDS * CALLS * threads as u64);
        assert_eq!(metrics.rejected, threads as u64);
    }
}
