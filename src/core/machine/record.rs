//! Recording outcomes and the trip rules: a closed outcome feeds the failure streak and
//! the sliding window and trips when a rule fires; a probe's outcome reopens or, once
//! enough succeeded, closes. Stale outcomes (of an ended period) are dropped.

use std::sync::atomic::Ordering::*;
use std::time::Duration;

use super::StateMachine;
use crate::classify::Outcome;
use crate::clock::Nanos;
use crate::core::admission::PermitKind;
use crate::core::baseline::Baseline;
use crate::core::ejection::EjectionBudget;
use crate::core::window::WindowStats;
use crate::core::word::Word;
use crate::reason::TransitionReason;
use crate::state::State;

impl StateMachine {
    /// Records the outcome of a call admitted as `kind` in `generation`. Outcomes of an
    /// earlier generation are stale: they judged a period that has already ended.
    /// `open_floor` (e.g. a failed response's `Retry-After`) is the least open duration
    /// should this outcome open the breaker.
    #[inline]
    pub(crate) fn record(
        &self,
        kind: PermitKind,
        generation: u32,
        outcome: Outcome,
        slow: bool,
        now: Option<Nanos>,
        open_floor: Option<Duration>,
    ) {
        match kind {
            PermitKind::Closed => {
                self.record_closed(State::Closed, generation, outcome, slow, now, open_floor)
            }
            PermitKind::MetricsOnly => {
                self.record_closed(State::MetricsOnly, generation, outcome, slow, now, None)
            }
            PermitKind::Probe => self.record_probe(generation, outcome, slow, now, open_floor),
            PermitKind::ForcedClosed | PermitKind::Disabled => {}
        }
    }

    /// Whether a closed success needs nothing of the window: there is none, or it is a
    /// count window that absorbs the success unrecorded (all its slots hold successes).
    /// The adaptive rule's baseline learns from every window of calls, so with it
    /// every success is recorded.
    #[inline]
    pub(crate) fn absorbs_success(&self) -> bool {
        match &self.window {
            None => true,
            Some(window) => self.baseline.is_none() && window.absorbs_success(),
        }
    }

    /// The closed-success fast path (nothing for the window, no timing): ends a
    /// failure streak of the same period, and is a single shared read when there is
    /// none.
    #[inline]
    pub(crate) fn record_closed_success(&self, generation: u32) {
        if self.consecutive_failures.load(Relaxed) != 0 {
            self.end_streak(generation);
        }
    }

    #[inline(never)]
    fn end_streak(&self, generation: u32) {
        if self.word.load(Acquire) & Word::PERIOD_MASK == Word::period(State::Closed, generation) {
            self.consecutive_failures.store(0, Relaxed);
        }
    }

    #[inline]
    fn record_closed(
        &self,
        state: State,
        generation: u32,
        outcome: Outcome,
        slow: bool,
        now: Option<Nanos>,
        open_floor: Option<Duration>,
    ) {
        let bits = self.word.load(Acquire);
        if bits & Word::PERIOD_MASK != Word::period(state, generation)
            || outcome == Outcome::Ignored
        {
            return;
        }
        let failure = outcome == Outcome::Failure;
        let mut fired = None;
        if self.counts_streaks() {
            if failure {
                let count = self
                    .consecutive_failures
                    .fetch_add(1, AcqRel)
                    .saturating_add(1);
                if self.streak_limit().is_some_and(|limit| count >= limit) {
                    fired = Some(Fired::Streak(count));
                }
            } else if self.consecutive_failures.load(Relaxed) != 0 {
                self.consecutive_failures.store(0, Relaxed);
            }
        }
        let mut stats = None;
        if let Some(window) = &self.window {
            let recorded = window.record(now.unwrap_or(0), failure, slow);
            fired = fired.or_else(|| self.rate_rule_fired(&recorded));
            if let Some(baseline) = &self.baseline {
                // A window that trips is not normal: it teaches the baseline nothing.
                if recorded.completed && fired.is_none() {
                    baseline.fold(recorded.failure_rate());
                }
            }
            stats = Some(recorded);
        }
        // `state` is a constant at each call site: the closed path keeps only its arm.
        if state == State::MetricsOnly {
            let reason = fired.map(|fired| self.reason(fired, stats));
            self.note_would_be_trip(generation, reason, stats);
        } else if let Some(fired) = fired {
            self.trip(Word::unpack(bits), self.reason(fired, stats), open_floor);
        }
    }

    /// Why `fired` fires, for the transition and its log: built only when a rule fires,
    /// so that the recording path moves a [`Fired`] (two words) rather than a
    /// [`TransitionReason`].
    #[cold]
    #[inline(never)]
    fn reason(&self, fired: Fired, stats: Option<WindowStats>) -> TransitionReason {
        let stats = stats.unwrap_or_default();
        match fired {
            Fired::Streak(count) => TransitionReason::ConsecutiveFailures { count },
            Fired::FailureRate => TransitionReason::FailureRate {
                rate: stats.failure_rate(),
                calls: stats.calls,
            },
            Fired::AdaptiveFailureRate { threshold } => TransitionReason::AdaptiveFailureRate {
                rate: stats.failure_rate(),
                threshold,
                baseline: self.baseline.as_ref().and_then(Baseline::rate),
                calls: stats.calls,
            },
            Fired::SlowCallRate => TransitionReason::SlowCallRate {
                rate: stats.slow_rate(),
                calls: stats.calls,
            },
        }
    }

    /// Whether a rule watches runs of consecutive failures: the fixed streak rule, or
    /// the adaptive rule's run rule.
    pub(super) fn counts_streaks(&self) -> bool {
        self.config.consecutive_failures.is_some() || self.baseline.is_some()
    }

    /// The run of consecutive failures that opens the breaker: the configured one, or
    /// the adaptive rule's (once warmed up), whichever is shorter.
    fn streak_limit(&self) -> Option<u32> {
        let adaptive = self.baseline.as_ref().and_then(Baseline::streak);
        match (self.config.consecutive_failures, adaptive) {
            (Some(fixed), Some(adaptive)) => Some(fixed.min(adaptive)),
            (fixed, adaptive) => fixed.or(adaptive),
        }
    }

    #[inline(never)]
    fn trip(&self, word: Word, reason: TransitionReason, open_floor: Option<Duration>) {
        match &self.ejection {
            None => {
                self.transition_if(word, State::Open, reason, false, open_floor, || true);
            }
            Some(budget) => self.trip_in_group(budget, word, reason, open_floor),
        }
    }

    /// A trip of a member of a group of endpoint breakers: it opens only if the group's
    /// ejection cap has room. Otherwise the breaker stays closed, in rotation, and its
    /// rules start over (as a trip would restart them), so that it is judged again on
    /// fresh outcomes: a refused trip is announced once per rule firing, not once per
    /// failure, and the breaker opens on the next firing once the cap has room.
    fn trip_in_group(
        &self,
        budget: &EjectionBudget,
        word: Word,
        reason: TransitionReason,
        open_floor: Option<Duration>,
    ) {
        if !self.word().same_period(word) {
            return;
        }
        let capped = {
            let mut log = self.lock_transitions();
            let current = self.word();
            if !current.same_period(word) {
                return;
            }
            match log.seat.try_eject(budget) {
                Ok(()) => {
                    let done =
                        self.enter(&mut log, current, State::Open, reason, false, open_floor);
                    drop(log);
                    self.announce(&done);
                    return;
                }
                Err(capped) => {
                    self.restart_rules();
                    capped
                }
            }
        };
        self.announce_capped_trip(reason, capped);
    }

    /// Metrics-only: notes whether a trip rule fired (`Some`) or not (`None`) on an
    /// outcome of the metrics-only period of `generation`. The rules are not restarted,
    /// so the metrics keep showing the streak and the rates that fired.
    ///
    /// A would-be trip *episode* is a run of counted outcomes on each of which some rule
    /// fires; it ends at the first counted outcome on which none does (ignored outcomes
    /// neither extend nor end it), and with the period. The first outcome of an episode
    /// logs the would-be trip, counts it in the metrics and sends
    /// [`Event::WouldBeTrip`]: a long outage is one would-be trip, not one per failure.
    /// Writes nothing shared unless an episode starts or ends.
    #[inline(never)]
    fn note_would_be_trip(
        &self,
        generation: u32,
        fired: Option<TransitionReason>,
        window: Option<WindowStats>,
    ) {
        // Tagged with the period, so that an episode of an earlier metrics-only period
        // (or a stale outcome of one) never silences this one.
        let period = Word::period(State::MetricsOnly, generation);
        let Some(reason) = fired else {
            if self.would_trip_period.load(Acquire) == period {
                // Re-armed: the next firing starts a new episode.
                let _ = self
                    .would_trip_period
                    .compare_exchange(period, 0, AcqRel, Acquire);
            }
            return;
        };
        if self.would_trip_period.load(Acquire) == period
            || self.would_trip_period.swap(period, AcqRel) == period
        {
            return; // the episode was announced already
        }
        self.announce_would_be_trip(reason, window);
    }

    fn rate_rule_fired(&self, stats: &WindowStats) -> Option<Fired> {
        if stats.calls < u64::from(self.config.minimum_calls) {
            return None;
        }
        if let Some(threshold) = self.config.failure_rate {
            if stats.failure_rate() >= threshold {
                return Some(Fired::FailureRate);
            }
        }
        if let Some(baseline) = &self.baseline {
            // A window without failures trips no threshold (the floor is above 0).
            if stats.failures > 0 {
                let threshold = baseline.threshold(stats.calls);
                if stats.failure_rate() >= threshold {
                    return Some(Fired::AdaptiveFailureRate { threshold });
                }
            }
        }
        if let Some(slow) = self.config.slow_call {
            if stats.slow_rate() >= slow.rate {
                return Some(Fired::SlowCallRate);
            }
        }
        None
    }

    /// Gives back a probe slot that was never used for a call (no progress, no outcome).
    pub(crate) fn release_probe(&self, generation: u32) {
        loop {
            let word = self.word();
            if word.generation != generation || word.state != State::HalfOpen {
                return;
            }
            let released = Word {
                in_flight: word.in_flight.saturating_sub(1),
                ..word
            };
            if self.swap_word(word, released) {
                self.changed.notify_waiters();
                return;
            }
        }
    }

    fn record_probe(
        &self,
        generation: u32,
        outcome: Outcome,
        slow: bool,
        now: Option<Nanos>,
        open_floor: Option<Duration>,
    ) {
        let now = now.unwrap_or_else(|| self.clock.now());
        let failed = outcome == Outcome::Failure || (outcome == Outcome::Success && slow);
        loop {
            let word = self.word();
            if word.generation != generation || word.state != State::HalfOpen {
                return;
            }
            if failed {
                self.reopen_after_failed_probe(word, open_floor);
                return;
            }
            self.probe_progress_at.fetch_max(now, AcqRel);
            let succeeded = outcome == Outcome::Success;
            let released = Word {
                in_flight: word.in_flight.saturating_sub(1),
                successes: word.successes.saturating_add(u16::from(succeeded)),
                ..word
            };
            if !self.swap_word(word, released) {
                continue;
            }
            if succeeded && u32::from(released.successes) >= self.config.half_open_successes {
                self.transition(
                    released,
                    State::Closed,
                    TransitionReason::ProbesSucceeded,
                    false,
                );
            } else {
                self.changed.notify_waiters();
            }
            return;
        }
    }
}

/// Which trip rule fired on an outcome. What the transition needs beyond it (the rates,
/// the calls) is read from the window's totals when the reason is built.
#[derive(Debug, Clone, Copy)]
enum Fired {
    /// A run of consecutive failures this long.
    Streak(u32),
    FailureRate,
    /// The adaptive threshold the window's rate reached.
    AdaptiveFailureRate {
        threshold: f64,
    },
    SlowCallRate,
}

// Small enough to travel in registers on the recording path (see `Fired`'s users).
const _: () = assert!(std::mem::size_of::<Option<Fired>>() <= 16);
