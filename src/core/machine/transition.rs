//! Transitions: the only writer of the state word's state and generation. Each one is
//! serialized by the transition lock (never held across an `.await`, nor while
//! announcing) and published with one CAS that bumps the generation, so no transition
//! happens twice. The open duration of a trip (backoff and jitter) is drawn here.

use std::sync::atomic::Ordering::*;
use std::time::Duration;

use super::StateMachine;
use crate::clock::{to_nanos, Nanos};
use crate::core::ejection::Seat;
use crate::core::sync::MutexGuard;
use crate::core::window::WindowStats;
use crate::core::word::Word;
use crate::random;
use crate::reason::TransitionReason;
use crate::state::State;

/// How long an open period entered by a transition lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum OpenDuration {
    /// The configured duration grown by the backoff (a local trip, which counts toward
    /// the backoff), at least `floor` (e.g. a failed response's `Retry-After`).
    Backoff { floor: Option<Duration> },
    /// Exactly this long, not counted as a local trip (a remote open).
    Set(Duration),
    /// A half-open period that timed out: open for the backoff's duration drawn when the
    /// period began (see `StateMachine::timeout_open_for`), so that reads could report
    /// it beforehand. Counts as a local trip.
    TimedOut,
    /// Back to the open period a scout half-open period cut short (see
    /// `StateMachine::scout_until`), until `until`, and at least `floor` (a failed
    /// probe's `Retry-After`). Not a trip: the backoff does not grow on scouts.
    Rest {
        until: Nanos,
        floor: Option<Duration>,
    },
}

/// A transition that happened, for announcing after the lock is released.
#[derive(Debug, Clone, Copy)]
pub(super) struct Transition {
    pub(super) from: State,
    pub(super) to: State,
    pub(super) reason: TransitionReason,
    pub(super) open_for: Option<Duration>,
    /// On opening: the failure streak and the window's rates at that moment.
    pub(super) failures: Option<u32>,
    pub(super) window: Option<WindowStats>,
    pub(super) generation: u32,
}

/// Bookkeeping only touched during transitions, under the mutex.
#[derive(Debug, Default)]
pub(super) struct TransitionLog {
    /// Trips since the breaker last closed (or, with the backoff's `reset_after`, since
    /// it last stayed closed that long); drives the backoff.
    consecutive_trips: u32,
    /// With the backoff's `reset_after`: when the breaker last closed, while it is
    /// closed; the trips are forgotten at the next trip if it stayed closed long enough.
    closed_at: Option<Nanos>,
    /// Why the breaker last changed state (read by the fleet sync, see
    /// [`remote`](super::remote)).
    pub(super) last_reason: Option<TransitionReason>,
    /// Where the breaker stands in its group of endpoint breakers, if it has one.
    pub(super) seat: Seat,
}

impl StateMachine {
    /// Reopens the half-open period `from` because its probes made no progress within
    /// `half_open_max_wait`, unless another thread moved on from it first or a probe
    /// finished meanwhile.
    #[cold]
    #[inline(never)]
    pub(super) fn time_out_probes(&self, from: Word) {
        // Callers that lost the race see it without queueing on the lock.
        if !self.word().same_period(from) {
            return;
        }
        let done = {
            let mut log = self.lock_transitions();
            let current = self.word();
            // A probe may have finished between the caller's check and the lock:
            // re-reading the deadline here sees its progress (published before its
            // slot is returned), so a probe that just finished is not given up on. One
            // that finishes after this check is too late: its slot goes with the
            // period, and a close it would make finds the period over once it gets
            // the lock (outside observers cannot tell it from a probe finishing
            // after the timeout).
            let deadline = self.probe_deadline();
            let now = self.clock.now();
            if !current.same_period(from) || now < deadline {
                return;
            }
            // A hung scout returns to the period it cut short, as a failed one does.
            let open = self.reopen_for(now, None, OpenDuration::TimedOut);
            self.enter_for(
                &mut log,
                current,
                State::Open,
                TransitionReason::ProbeTimedOut,
                false,
                open,
            )
        };
        self.announce(&done);
    }

    /// Moves from `from` (state and generation) to `to`. Returns the new generation, or
    /// `None` if another thread already moved on from `from`.
    pub(super) fn transition(
        &self,
        from: Word,
        to: State,
        reason: TransitionReason,
        take_probe: bool,
    ) -> Option<u32> {
        self.transition_if(from, to, reason, take_probe, None, || true)
    }

    /// Moves from `from` (state and generation) to `to` if `still_due`, re-checked under
    /// the lock, agrees. Returns the new generation, or `None` if another thread already
    /// moved on from `from` or the transition is no longer due. An open period lasts at
    /// least `open_floor`.
    pub(super) fn transition_if(
        &self,
        from: Word,
        to: State,
        reason: TransitionReason,
        take_probe: bool,
        open_floor: Option<Duration>,
        still_due: impl FnOnce() -> bool,
    ) -> Option<u32> {
        // Callers that lost the race see it without queueing on the lock.
        if !self.word().same_period(from) {
            return None;
        }
        let done = {
            let mut log = self.lock_transitions();
            let current = self.word();
            if !current.same_period(from) || !still_due() {
                return None;
            }
            self.enter(&mut log, current, to, reason, take_probe, open_floor)
        };
        self.announce(&done);
        Some(done.generation)
    }

    /// Reopens the half-open period `from` because a probe failed, unless another thread
    /// moved on from it first. A scout period (entered early because the probe interval
    /// elapsed) returns to the open period it cut short, for what is left of it (at
    /// least `open_floor`), without counting a trip: the backoff does not grow on the
    /// probes it allowed. Otherwise, and once that period is over, this is a trip.
    pub(super) fn reopen_after_failed_probe(&self, from: Word, open_floor: Option<Duration>) {
        if !self.word().same_period(from) {
            return;
        }
        let done = {
            let mut log = self.lock_transitions();
            let current = self.word();
            if !current.same_period(from) {
                return;
            }
            let now = self.clock.now();
            let open =
                self.reopen_for(now, open_floor, OpenDuration::Backoff { floor: open_floor });
            self.enter_for(
                &mut log,
                current,
                State::Open,
                TransitionReason::ProbeFailed,
                false,
                open,
            )
        };
        self.announce(&done);
    }

    /// How a half-open period that failed at `now` reopens: a scout period returns to
    /// the rest of the open period it cut short (at least `floor`), which is not a trip;
    /// any other half-open period, or a scout's whose open period is over, as `otherwise`.
    /// Call under the transition lock (`scout_until` only changes under it).
    fn reopen_for(
        &self,
        now: Nanos,
        floor: Option<Duration>,
        otherwise: OpenDuration,
    ) -> OpenDuration {
        let scout_until = self.scout_until.load(Acquire);
        if scout_until > now {
            OpenDuration::Rest {
                until: scout_until,
                floor,
            }
        } else {
            otherwise
        }
    }

    /// Moves to `to` from whatever the state is (manual controls). With `force_reset`
    /// a transition happens even if the state is already `to` (a fresh start).
    pub(crate) fn force(&self, to: State, force_reset: bool) {
        let done = {
            let mut log = self.lock_transitions();
            let current = self.word();
            if current.state == to && !force_reset {
                return;
            }
            self.enter(&mut log, current, to, TransitionReason::Manual, false, None)
        };
        self.announce(&done);
    }

    /// Performs a transition. Must hold the transition lock: state and generation only
    /// change under it, so the CAS loop below only retries for probe-count changes.
    pub(super) fn enter(
        &self,
        log: &mut TransitionLog,
        current: Word,
        to: State,
        reason: TransitionReason,
        take_probe: bool,
        open_floor: Option<Duration>,
    ) -> Transition {
        self.enter_for(
            log,
            current,
            to,
            reason,
            take_probe,
            OpenDuration::Backoff { floor: open_floor },
        )
    }

    /// [`enter`](Self::enter), with an open duration set by the caller (a remote open)
    /// instead of the backoff; such an open does not count as a local trip.
    pub(super) fn enter_for(
        &self,
        log: &mut TransitionLog,
        current: Word,
        to: State,
        reason: TransitionReason,
        take_probe: bool,
        open: OpenDuration,
    ) -> Transition {
        let now = self.clock.now();
        let mut open_for = None;
        let (mut failures, mut window) = (None, None);
        match to {
            State::Open => {
                if let Some(closed_at) = log.closed_at.take() {
                    let healthy_for = now.saturating_sub(closed_at);
                    if self
                        .config
                        .open_backoff
                        .reset_after
                        .is_some_and(|after| healthy_for >= to_nanos(after))
                    {
                        log.consecutive_trips = 0;
                    }
                }
                // A `Retry-After` floor also holds back the scouts of a probe interval.
                let floor = match open {
                    OpenDuration::Backoff { floor } | OpenDuration::Rest { floor, .. } => floor,
                    OpenDuration::Set(_) | OpenDuration::TimedOut => None,
                };
                self.probe_not_before.store(
                    floor.map_or(0, |floor| now.saturating_add(to_nanos(floor))),
                    Release,
                );
                let duration = match open {
                    OpenDuration::Set(duration) => duration,
                    OpenDuration::Rest { until, floor } => {
                        let rest = Duration::from_nanos(until.saturating_sub(now));
                        floor.map_or(rest, |floor| rest.max(floor))
                    }
                    OpenDuration::Backoff { floor } => {
                        let duration = self.next_open_duration(log);
                        log.consecutive_trips = log.consecutive_trips.saturating_add(1);
                        // A floor (a failed response's `Retry-After`) lengthens this
                        // period only; the backoff goes on from the configured durations.
                        floor.map_or(duration, |floor| duration.max(floor))
                    }
                    OpenDuration::TimedOut => {
                        log.consecutive_trips = log.consecutive_trips.saturating_add(1);
                        Duration::from_nanos(self.timeout_open_for.load(Acquire))
                    }
                };
                self.open_until
                    .store(now.saturating_add(to_nanos(duration)), Release);
                open_for = Some(duration);
                failures = self
                    .counts_streaks()
                    .then(|| self.consecutive_failures.load(Acquire));
                window = self.window.as_ref().map(|window| window.stats(now));
            }
            State::Closed => {
                // A recovery (or a fleet close) keeps the trips for `reset_after`, if
                // set; an operator's reset forgets them.
                match self.config.open_backoff.reset_after {
                    Some(_) if reason != TransitionReason::Manual => log.closed_at = Some(now),
                    _ => {
                        log.consecutive_trips = 0;
                        log.closed_at = None;
                    }
                }
                self.restart_rules();
                // Only a recovery ramps up; published with the word below, so a call
                // that finds the breaker closed also finds the ramp.
                let ramp_until = match (reason, self.config.ramp_up) {
                    (TransitionReason::ProbesSucceeded, Some(ramp)) => {
                        now.saturating_add(to_nanos(ramp)).max(1)
                    }
                    _ => 0,
                };
                self.ramp_offered.store(0, Release);
                self.ramp_until.store(ramp_until, Release);
            }
            State::HalfOpen => {
                // A scout period remembers the open period it cut short (see
                // `reopen_after_failed_probe`).
                let scout_until = match reason {
                    TransitionReason::ProbeIntervalElapsed => self.open_until.load(Acquire),
                    _ => 0,
                };
                self.scout_until.store(scout_until, Release);
                self.probe_progress_at.store(now, Release);
                // Drawn now, so that reads can tell how long a timeout would reopen for.
                let reopen = self.next_open_duration(log);
                self.timeout_open_for.store(to_nanos(reopen), Release);
            }
            State::ForcedOpen | State::ForcedClosed | State::Disabled | State::MetricsOnly => {}
        }
        if let Some(budget) = &self.ejection {
            // Out of rotation while open, half-open or forced open. A trip took its
            // slot before coming here (see `record`); any other way out (a fleet's
            // open, an operator's) is counted as is.
            let out = |state| matches!(state, State::Open | State::HalfOpen | State::ForcedOpen);
            match (out(current.state), out(to)) {
                (false, true) => log.seat.eject(budget),
                (true, false) => log.seat.restore(budget),
                _ => {}
            }
        }
        self.entered_at.store(now, Release);
        let mut seen = current;
        let next = loop {
            let mut next = seen.successor(to);
            next.in_flight = u16::from(take_probe);
            match self
                .word
                .compare_exchange(seen.pack(), next.pack(), AcqRel, Acquire)
            {
                Ok(_) => break next,
                Err(actual) => seen = Word::unpack(actual),
            }
        };
        self.state_changes.fetch_add(1, Relaxed);
        log.last_reason = Some(reason);
        Transition {
            from: current.state,
            to,
            reason,
            open_for,
            failures,
            window,
            generation: next.generation,
        }
    }

    /// The open duration of the next local trip: the backoff's, with its jitter drawn.
    fn next_open_duration(&self, log: &TransitionLog) -> Duration {
        self.config.open_backoff.open_duration(
            self.config.open_duration,
            log.consecutive_trips,
            self.next_unit_random(),
        )
    }

    /// Clears the trip rules' memory: the failure streak and the window.
    pub(super) fn restart_rules(&self) {
        self.consecutive_failures.store(0, Release);
        if let Some(window) = &self.window {
            window.reset();
        }
    }

    pub(super) fn lock_transitions(&self) -> MutexGuard<'_, TransitionLog> {
        // The log holds plain counters that are valid after any panic, so a poisoned
        // lock is safe to use.
        crate::lock::unpoisoned(self.transitions.lock())
    }

    /// A uniform sample in `[0, 1)` for backoff jitter: the next draw of this breaker's
    /// [`SplitMix64`](random::SplitMix64) stream, shared by the threads that trip it
    /// (one atomic add advances the state).
    fn next_unit_random(&self) -> f64 {
        let state = self
            .random
            .fetch_add(random::GOLDEN_GAMMA, Relaxed)
            .wrapping_add(random::GOLDEN_GAMMA);
        random::unit(random::mix(state))
    }
}
