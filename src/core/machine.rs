//! The state machine shared by every clone of a breaker.
//!
//! Hot paths are lock-free: admission is one atomic load of the [`Word`] (plus a clock
//! read while open or half-open), a half-open permit is one CAS, and a closed-state
//! success writes nothing here unless it ends a failure streak or a sliding window is
//! configured. Transitions are rare; they are serialized by a mutex that is never held
//! across an `.await` (nothing in this module is async), and each is published with a
//! CAS that bumps the generation, so no transition can happen twice.
//!
//! Time-driven transitions (the end of an open period, a half-open period that waited
//! `half_open_max_wait` for its probes) happen lazily, at the next admission, since no
//! timer runs. Reads ([`StateMachine::observed_state`], [`StateMachine::snapshot`])
//! report the state that admission would find without making any transition: an ended
//! open period reads `HalfOpen`, a timed-out half-open period reads `Open`.
//!
//! The machine is split by job, each part an `impl StateMachine` in a child module:
//! this file holds the shared state, reads and admission; [`record`] records
//! outcomes and evaluates the trip rules; [`transition`] performs transitions (the
//! only writer of state and generation); [`announce`] tells the world about them;
//! [`remote`] holds the fleet sync's hooks.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{to_nanos, Clock, Nanos};
use crate::config::Config;
use crate::core::admission::{Admission, PermitKind, Rejection, Ticket};
use crate::core::baseline::Baseline;
use crate::core::ejection::{EjectionBudget, Seat};
use crate::core::event_hub::EventHub;
use crate::core::sync::{AtomicU32, AtomicU64, Mutex};
use crate::core::window::{SlidingWindow, WindowStats};
use crate::core::word::Word;
use crate::reason::TransitionReason;
use crate::state::State;

use self::transition::TransitionLog;

mod announce;
mod record;
mod remote;
mod transition;

pub(crate) use self::transition::OpenDuration;

/// One breaker's shared state.
///
/// `repr(C)` and line-aligned so that everything a call reads here (the state word,
/// the open period's end, the failure streak, whether anyone listens for events) sits
/// on the first cache line: a keyed breaker looked up cold misses once here, not thrice.
#[derive(Debug)]
#[repr(C, align(64))]
pub(crate) struct StateMachine {
    word: AtomicU64,
    /// When the current open period ends (valid while `Open`).
    open_until: AtomicU64,
    /// While closed and ramping up after a recovery: when the ramp ends; 0 otherwise
    /// (checked by the closed fast path, so it sits on the first line).
    ramp_until: AtomicU64,
    consecutive_failures: AtomicU32,
    /// While set, an elapsed open period does not move to half-open: another instance
    /// of the fleet holds the probe lease (see [`remote`]).
    probe_gate: AtomicBool,
    /// Subscribers to this breaker's events.
    pub(crate) events: EventHub,
    pub(crate) clock: Clock,
    /// When the current state was entered.
    entered_at: AtomicU64,
    /// When half-open last made progress (entered, or a probe finished).
    probe_progress_at: AtomicU64,
    /// The open duration (nanoseconds) a timeout of the current half-open period
    /// starts, drawn from the backoff (with its jitter) when the period began, so that
    /// reads can report it before any call makes the timeout happen.
    timeout_open_for: AtomicU64,
    /// While half-open because the probe interval elapsed (a scout period): the end of
    /// the open period it cut short, to which a failed probe returns. 0 in a half-open
    /// period entered when its open period ended. Written only by transitions.
    scout_until: AtomicU64,
    /// While open: no probe-interval scout before this (a failed response's
    /// `Retry-After` floor); 0 when none applies. Written only by transitions.
    probe_not_before: AtomicU64,
    /// Calls offered since the current ramp-up began.
    ramp_offered: AtomicU64,
    /// Metrics-only: the period bits of the metrics-only period whose trip rules are
    /// firing (its would-be trip was announced), 0 when none (see
    /// [`note_would_be_trip`](Self::note_would_be_trip)).
    would_trip_period: AtomicU64,
    /// Metrics-only: would-be trips announced so far.
    would_be_trips: AtomicU64,
    state_changes: AtomicU64,
    random: AtomicU64,
    pub(crate) config: Config,
    /// The config's name, shared by every log line and event (`Event` carries an
    /// `Arc<str>`), made once.
    pub(crate) name: Arc<str>,
    window: Option<SlidingWindow>,
    /// The adaptive failure-rate rule's baseline, when that rule is on.
    baseline: Option<Baseline>,
    /// The ejection cap of the group of endpoint breakers this one belongs to, if any.
    ejection: Option<Arc<EjectionBudget>>,
    transitions: Mutex<TransitionLog>,
    /// Woken on every transition and every returned probe permit (backpressure waiters).
    pub(crate) changed: Arc<Notify>,
}

// The alignment the doc comment above relies on (the first line is checked in
// `tests::what_a_call_reads_is_on_the_first_line`). Under loom the atomics are
// loom's and the layout does not matter.
#[cfg(not(tcb_loom))]
const _: () = assert!(std::mem::align_of::<StateMachine>() == 64);

impl StateMachine {
    pub(crate) fn new(config: Config) -> StateMachine {
        let window = config.window.map(SlidingWindow::new);
        let baseline = match (config.failure_rate_adaptive, config.window) {
            (Some(rule), Some(crate::config::Window::Count(size))) => {
                Some(Baseline::new(rule, size))
            }
            _ => None,
        };
        StateMachine {
            clock: Clock::new(),
            word: AtomicU64::new(Word::CLOSED.pack()),
            open_until: AtomicU64::new(0),
            ramp_until: AtomicU64::new(0),
            ramp_offered: AtomicU64::new(0),
            entered_at: AtomicU64::new(0),
            probe_progress_at: AtomicU64::new(0),
            timeout_open_for: AtomicU64::new(0),
            scout_until: AtomicU64::new(0),
            probe_not_before: AtomicU64::new(0),
            would_trip_period: AtomicU64::new(0),
            would_be_trips: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            window,
            baseline,
            ejection: None,
            state_changes: AtomicU64::new(0),
            transitions: Mutex::new(TransitionLog::default()),
            changed: Arc::new(Notify::new()),
            events: EventHub::default(),
            random: AtomicU64::new(
                std::collections::hash_map::RandomState::new()
                    .build_hasher()
                    .finish(),
            ),
            probe_gate: AtomicBool::new(false),
            name: Arc::from(&*config.name),
            config,
        }
    }

    /// A new machine that is a member of the group whose ejections `budget` caps: a
    /// trip that would put more of the group out of rotation than the cap allows is
    /// refused (see [`record`]).
    pub(crate) fn in_group(config: Config, budget: Arc<EjectionBudget>) -> StateMachine {
        budget.join();
        let machine = StateMachine {
            ejection: Some(budget),
            ..StateMachine::new(config)
        };
        machine.lock_transitions().seat = Seat::InRotation;
        machine
    }

    /// Leaves the group this machine was a member of: it no longer counts toward the
    /// group's members, and frees its ejection slot if it held one. Its later
    /// transitions count nothing.
    pub(crate) fn leave_group(&self) {
        let Some(budget) = &self.ejection else {
            return;
        };
        self.lock_transitions().seat.leave(budget);
        budget.changed.notify_waiters();
    }

    #[inline]
    pub(crate) fn word(&self) -> Word {
        Word::unpack(self.word.load(Acquire))
    }

    /// The stored state: what admission starts from. An ended open period is still
    /// `Open` here until a call moves it on; see [`observed_state`](Self::observed_state).
    pub(crate) fn state(&self) -> State {
        self.word().state
    }

    /// The state as the next call would find it, without changing anything: an open
    /// period that has ended reads `HalfOpen` (the next call is admitted as a probe),
    /// unless another instance of the fleet holds the probe lease (then calls are still
    /// rejected). A half-open period that made no progress within `half_open_max_wait`
    /// reads `Open`: the next call reopens the breaker and is rejected. Reads the clock
    /// only while open or half-open.
    pub(crate) fn observed_state(&self) -> State {
        match self.state() {
            State::Open => self.observed_open_state(self.clock.now()),
            State::HalfOpen if self.timed_out_half_open(self.clock.now()).is_some() => State::Open,
            state => state,
        }
    }

    /// [`observed_state`](Self::observed_state) of a stored `Open` at `now`.
    fn observed_open_state(&self, now: Nanos) -> State {
        if now >= self.probe_due_at() && !self.probe_gate.load(Acquire) {
            State::HalfOpen
        } else {
            State::Open
        }
    }

    /// While open: when the next call will be admitted as a probe, the end of the open
    /// period or, with a probe interval, that long after the breaker (re)opened,
    /// whichever is first. A caller that read the open word just before a transition
    /// published the next one may find the next period's entry time here (it is written
    /// first): it is then rejected as open until one more interval, as the half-open
    /// period, its one permit taken, would reject it a moment later.
    #[inline]
    fn probe_due_at(&self) -> Nanos {
        let until = self.open_until.load(Acquire);
        match self.config.probe_interval {
            None => until,
            Some(interval) => {
                let scout_at = self
                    .entered_at
                    .load(Acquire)
                    .saturating_add(to_nanos(interval))
                    .max(self.probe_not_before.load(Acquire));
                until.min(scout_at)
            }
        }
    }

    /// How many probes the current half-open period admits at once at `now`: the
    /// configured permits; while scouting (entered because the probe interval elapsed),
    /// one, and one more for each probe interval the period has lasted, up to them, so
    /// that a probe which hangs does not hold back the next interval's.
    #[inline]
    fn probe_permits(&self, now: Nanos) -> u32 {
        let permits = self.config.half_open_permits;
        match self.scout_interval() {
            Some(interval) => {
                let lasted = now.saturating_sub(self.entered_at.load(Acquire));
                let intervals = lasted / interval;
                u32::try_from(intervals.saturating_add(1))
                    .unwrap_or(u32::MAX)
                    .min(permits)
            }
            None => permits,
        }
    }

    /// The probe interval in nanoseconds (at least 1) while the current half-open period
    /// is a scout period; `None` otherwise.
    #[inline]
    fn scout_interval(&self) -> Option<Nanos> {
        let interval = self.config.probe_interval?;
        (self.scout_until.load(Acquire) != 0).then(|| to_nanos(interval).max(1))
    }

    /// When a call that found every half-open permit taken at `now` may come back: when
    /// a scout period gains its next permit, if it will, and at the latest at the
    /// period's `deadline`.
    fn next_probe_permit_at(&self, now: Nanos, deadline: Nanos) -> Nanos {
        match self.scout_interval() {
            Some(interval) if self.probe_permits(now) < self.config.half_open_permits => {
                let entered = self.entered_at.load(Acquire);
                let next = entered.saturating_add(
                    (now.saturating_sub(entered) / interval + 1).saturating_mul(interval),
                );
                next.min(deadline)
            }
            _ => deadline,
        }
    }

    /// When the current half-open period times out: `half_open_max_wait` after it last
    /// made progress (began, or a probe finished).
    #[inline]
    fn probe_deadline(&self) -> Nanos {
        self.probe_progress_at
            .load(Acquire)
            .saturating_add(to_nanos(self.config.half_open_max_wait))
    }

    /// For a stored half-open period at `now`: `None` while it has not timed out, else
    /// its deadline and the open duration its timeout will start. A pure read; the
    /// timeout itself happens at the next admission.
    fn timed_out_half_open(&self, now: Nanos) -> Option<(Nanos, Nanos)> {
        let deadline = self.probe_deadline();
        (now >= deadline).then(|| (deadline, self.timeout_open_for.load(Acquire)))
    }

    /// Whether admission must note the start time (slow-call detection).
    #[inline]
    pub(crate) fn times_calls(&self) -> bool {
        self.config.slow_call.is_some()
    }

    /// Whether recording an outcome needs the current time.
    #[inline]
    pub(crate) fn reads_clock_on_record(&self) -> bool {
        self.times_calls() || self.window.as_ref().is_some_and(SlidingWindow::is_timed)
    }

    /// Whether `elapsed` makes a call slow: strictly longer than the threshold, as the
    /// config documents and as Resilience4j counts.
    pub(crate) fn is_slow(&self, elapsed: Nanos) -> bool {
        self.config
            .slow_call
            .is_some_and(|slow| elapsed > to_nanos(slow.threshold))
    }

    /// Decides whether a call may go ahead now. The closed case is one load, inlined
    /// into the caller; every other state takes the out-of-line path.
    #[inline]
    pub(crate) fn admit(&self) -> Admission {
        match self.admit_closed() {
            Some(ticket) => Admission::Admitted(ticket),
            None => self.admit_slow(),
        }
    }

    /// The closed case of [`admit`](Self::admit) alone: two loads of one line, `None`
    /// in every other state and while ramping up (which then need
    /// [`admit`](Self::admit)).
    #[inline]
    pub(crate) fn admit_closed(&self) -> Option<Ticket> {
        let bits = self.word_bits();
        // Acquire on the word: a ramp set by the close it observes is seen here.
        (bits & 0xFF == State::Closed as u64 && self.ramp_until.load(Relaxed) == 0)
            .then(|| Ticket::from_bits(bits))
    }

    /// Admission while closed: everything, except while ramping up after a recovery,
    /// when a share of the calls growing from [`RAMP_START_SHARE`] to all of them over
    /// the ramp is admitted and the rest rejected. Not drawn at random: the `k`-th call
    /// offered is admitted when `floor(k * share)` steps up, which spreads the share
    /// evenly over consecutive calls and follows the share as it grows, with no burst
    /// to make up for calls rejected earlier.
    fn admit_ramping(&self, word: Word) -> Admission {
        let admitted = Admission::Admitted(Ticket::new(PermitKind::Closed, word.generation));
        let until = self.ramp_until.load(Acquire);
        let Some(ramp) = self.config.ramp_up.filter(|_| until != 0) else {
            return admitted;
        };
        let now = self.clock.now();
        if now >= until {
            // Over: whoever sees it first lets the fast path admit again.
            let _ = self.ramp_until.compare_exchange(until, 0, AcqRel, Acquire);
            return admitted;
        }
        let share = ramp_share(ramp, until, now);
        let offered = self.ramp_offered.fetch_add(1, AcqRel) + 1;
        let steps = |calls: u64| (calls as f64 * share).floor();
        if steps(offered) > steps(offered - 1) {
            return admitted;
        }
        Admission::Rejected(Rejection::until_further_notice(State::Closed))
    }

    /// Whether the breaker is closed and ramping up after a recovery.
    pub(crate) fn is_ramping_up(&self) -> bool {
        self.ramp_share_now(self.clock.now()).is_some()
    }

    /// The share of calls admitted now while ramping up (`None` when not ramping).
    fn ramp_share_now(&self, now: Nanos) -> Option<f64> {
        let until = self.ramp_until.load(Acquire);
        let ramp = self.config.ramp_up.filter(|_| until != 0 && now < until)?;
        (self.state() == State::Closed).then(|| ramp_share(ramp, until, now))
    }

    #[inline(never)]
    fn admit_slow(&self) -> Admission {
        loop {
            let word = self.word();
            let kind = match word.state {
                State::Closed => return self.admit_ramping(word),
                State::MetricsOnly => PermitKind::MetricsOnly,
                State::ForcedClosed => PermitKind::ForcedClosed,
                State::Disabled => PermitKind::Disabled,
                State::ForcedOpen => {
                    return Admission::Rejected(Rejection::until_further_notice(State::ForcedOpen))
                }
                State::Open => {
                    let now = self.clock.now();
                    let due = self.probe_due_at();
                    if now < due {
                        return Admission::Rejected(Rejection::for_nanos(State::Open, due - now));
                    }
                    if self.probe_gate.load(Acquire) {
                        return self.gated();
                    }
                    let reason = if now < self.open_until.load(Acquire) {
                        TransitionReason::ProbeIntervalElapsed
                    } else {
                        TransitionReason::OpenDurationElapsed
                    };
                    if let Some(generation) = self.transition(word, State::HalfOpen, reason, true) {
                        return Admission::Admitted(Ticket::new(PermitKind::Probe, generation));
                    }
                    continue;
                }
                State::HalfOpen => {
                    // Checked before any free permit: once the probes made no progress
                    // for `half_open_max_wait`, the period is over however many
                    // permits are free (a hung probe holding one of several included).
                    let now = self.clock.now();
                    let deadline = self.probe_deadline();
                    if now >= deadline {
                        self.time_out_probes(word);
                        continue;
                    }
                    if u32::from(word.in_flight) < self.probe_permits(now) {
                        let taken = Word {
                            in_flight: word.in_flight + 1,
                            ..word
                        };
                        if self.swap_word(word, taken) {
                            return Admission::Admitted(Ticket::new(
                                PermitKind::Probe,
                                word.generation,
                            ));
                        }
                        continue;
                    }
                    return Admission::Rejected(Rejection::for_nanos(
                        State::HalfOpen,
                        self.next_probe_permit_at(now, deadline) - now,
                    ));
                }
            };
            return Admission::Admitted(Ticket::new(kind, word.generation));
        }
    }

    /// Whether outcomes feed a sliding window.
    pub(crate) fn has_window(&self) -> bool {
        self.window.is_some()
    }

    /// The packed state word, for fast paths that only compare bits.
    #[inline]
    pub(crate) fn word_bits(&self) -> u64 {
        self.word.load(Acquire)
    }

    /// Whether the breaker is still in the period `ticket` was issued in.
    #[inline]
    pub(crate) fn is_current(&self, ticket: Ticket) -> bool {
        self.word_bits() & Word::PERIOD_MASK == ticket.bits()
    }

    fn swap_word(&self, expected: Word, new: Word) -> bool {
        self.word
            .compare_exchange(expected.pack(), new.pack(), AcqRel, Acquire)
            .is_ok()
    }

    /// Whether the breaker is rejecting calls and would keep doing so for a while:
    /// forced open, open within its open duration, scouting within the open period it
    /// cut short, or ramping up. Losing such a breaker (e.g. by evicting it from a keyed
    /// map) would let traffic through to a sick or just-recovered downstream.
    pub(crate) fn is_holding_open(&self) -> bool {
        match self.state() {
            State::ForcedOpen => true,
            State::Open => self.clock.now() < self.open_until.load(Acquire),
            // A scout cut an open period short; losing the breaker would lose the rest.
            State::HalfOpen => self.clock.now() < self.scout_until.load(Acquire),
            // A ramp-up shields a backend that has just recovered from the full load.
            State::Closed => self.clock.now() < self.ramp_until.load(Acquire),
            _ => false,
        }
    }

    /// Whether a call made at `now` would be refused because the breaker is out of
    /// rotation for a while, and for how long: open within its open period (or its
    /// probe gate shut), or forced open. A pure read; `None` when a call might be
    /// admitted (closed, ramping up included, an ended open period) and while half-open:
    /// a probe in flight is decided within a call's time (a permit reserved by a
    /// service polled ready and not yet called counts as in flight, so it is no sign
    /// that the breaker is full), and a timed-out period is reopened by the next call.
    pub(crate) fn refusal(&self, now: Nanos) -> Option<Rejection> {
        match self.state() {
            State::ForcedOpen => Some(Rejection::until_further_notice(State::ForcedOpen)),
            State::Open => {
                let due = self.probe_due_at();
                if now < due {
                    Some(Rejection::for_nanos(State::Open, due - now))
                } else {
                    self.probe_gate
                        .load(Acquire)
                        .then(|| self.gated_rejection())
                }
            }
            _ => None,
        }
    }

    /// For a half-open period that timed out at `now`: how long the next call will wait
    /// once it reopens the breaker: the rest of the period a scout cut short, or
    /// `open_for` (the backoff's next period), and with a probe interval the first scout
    /// comes sooner. Call while the period is stored (a pure read).
    fn timed_out_wait(&self, now: Nanos, open_for: Nanos) -> Nanos {
        let scout_until = self.scout_until.load(Acquire);
        let reopen_for = if scout_until > now {
            scout_until - now
        } else {
            open_for
        };
        match self.config.probe_interval {
            Some(interval) => reopen_for.min(to_nanos(interval)),
            None => reopen_for,
        }
    }

    /// Read-only view for metrics snapshots, with the state as
    /// [`observed_state`](Self::observed_state) reports it: an ended open period is
    /// `HalfOpen`, entered when the period ended, with no `retry_after`; a timed-out
    /// half-open period is `Open`, entered at its deadline, with the open duration the
    /// next call will start as `retry_after` and no probes in flight (those still
    /// running are stale).
    pub(crate) fn snapshot(&self, now: Nanos) -> MachineSnapshot {
        let word = self.word();
        let (mut state, mut entered_at, mut retry_after, mut probes_in_flight) = (
            word.state,
            self.entered_at.load(Acquire),
            None,
            u32::from(word.in_flight),
        );
        match word.state {
            State::Open => {
                let due = self.probe_due_at();
                state = self.observed_open_state(now);
                if state == State::Open {
                    retry_after = Some(Duration::from_nanos(due.saturating_sub(now)));
                } else {
                    entered_at = due;
                }
            }
            State::HalfOpen => {
                if let Some((deadline, open_for)) = self.timed_out_half_open(now) {
                    state = State::Open;
                    entered_at = deadline;
                    retry_after = Some(Duration::from_nanos(self.timed_out_wait(now, open_for)));
                    probes_in_flight = 0;
                }
            }
            _ => {}
        }
        let window = self.window.as_ref().map(|window| window.stats(now));
        let failure_rate_threshold = match (&self.baseline, window) {
            (Some(baseline), Some(window)) => Some(baseline.threshold(window.calls)),
            _ => self.config.failure_rate,
        };
        MachineSnapshot {
            state,
            probes_in_flight,
            ramp_up_share: self.ramp_share_now(now),
            window,
            failure_rate_threshold,
            failure_rate_baseline: self.baseline.as_ref().and_then(Baseline::rate),
            consecutive_failures: self.consecutive_failures.load(Acquire),
            state_changes: self.state_changes.load(Acquire),
            would_be_trips: self.would_be_trips.load(Acquire),
            entered_at,
            retry_after,
        }
    }
}

/// The share of calls a ramp-up admits at first.
pub(crate) const RAMP_START_SHARE: f64 = 0.1;

/// The share of calls admitted at `now` by a ramp of length `ramp` ending at `until`:
/// from [`RAMP_START_SHARE`], linearly, to all of them at `until`.
fn ramp_share(ramp: Duration, until: Nanos, now: Nanos) -> f64 {
    let length = to_nanos(ramp).max(1);
    let elapsed = length.saturating_sub(until.saturating_sub(now));
    let progress = elapsed as f64 / length as f64;
    (RAMP_START_SHARE + (1.0 - RAMP_START_SHARE) * progress).min(1.0)
}

/// What a metrics snapshot reads from the state machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MachineSnapshot {
    pub(crate) state: State,
    pub(crate) probes_in_flight: u32,
    /// While ramping up after a recovery: the share of calls admitted now.
    pub(crate) ramp_up_share: Option<f64>,
    pub(crate) window: Option<WindowStats>,
    /// The failure rate that opens the breaker now (fixed, or adaptive for the
    /// window's current calls).
    pub(crate) failure_rate_threshold: Option<f64>,
    /// The adaptive rule's learned normal failure rate, once warmed up.
    pub(crate) failure_rate_baseline: Option<f64>,
    pub(crate) consecutive_failures: u32,
    pub(crate) state_changes: u64,
    pub(crate) would_be_trips: u64,
    pub(crate) entered_at: Nanos,
    pub(crate) retry_after: Option<Duration>,
}

#[cfg(all(test, not(tcb_loom)))]
mod tests {
    use super::StateMachine;
    use crate::config::Config;

    /// The end of `field`, from the start of `base`, in bytes.
    fn end_of<T, F>(base: &T, field: &F) -> usize {
        field as *const F as usize + std::mem::size_of::<F>() - base as *const T as usize
    }

    #[test]
    fn what_a_call_reads_is_on_the_first_line() {
        let machine = StateMachine::new(Config::default());
        for end in [
            end_of(&machine, &machine.word),
            end_of(&machine, &machine.open_until),
            end_of(&machine, &machine.ramp_until),
            end_of(&machine, &machine.consecutive_failures),
            end_of(&machine, &machine.probe_gate),
            // `EventHub` is `repr(C)` with its `listening` flag first.
            end_of(&machine, &machine.events) - std::mem::size_of_val(&machine.events) + 1,
        ] {
            assert!(end <= 64, "a hot field ends at byte {end}");
        }
    }
}
