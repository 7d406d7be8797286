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

use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::AtomicBool;
use std::sync::atomic::Ordering::*;
use std::sync::Arc;

use crate::core::sync::{AtomicU32, AtomicU64, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;

use crate::clock::{to_nanos, Clock, Nanos};
use crate::config::Config;
use crate::core::events::EventHub;
use crate::core::window::{SlidingWindow, WindowStats};
use crate::core::word::Word;
use crate::{Event, Outcome, State};

/// What kind of call a permit admitted; decides how its outcome is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PermitKind {
    /// Closed: outcome counts toward the trip rules.
    Closed,
    /// Half-open probe: holds one of the limited probe slots.
    Probe,
    /// Metrics-only: rules are evaluated but never trip.
    MetricsOnly,
    /// Forced closed: counted in the metrics only.
    ForcedClosed,
    /// Disabled: nothing is recorded.
    Disabled,
}

impl PermitKind {
    /// The kind of permit admitted in `state`. Open and forced-open admit nothing;
    /// were a ticket ever made for them, it would record nothing.
    #[inline]
    pub(crate) fn admitted_in(state: State) -> PermitKind {
        match state {
            State::Closed => PermitKind::Closed,
            State::HalfOpen => PermitKind::Probe,
            State::MetricsOnly => PermitKind::MetricsOnly,
            State::ForcedClosed => PermitKind::ForcedClosed,
            State::Disabled | State::Open | State::ForcedOpen => PermitKind::Disabled,
        }
    }

    /// The state a permit of this kind is admitted in.
    pub(crate) fn state(self) -> State {
        match self {
            PermitKind::Closed => State::Closed,
            PermitKind::Probe => State::HalfOpen,
            PermitKind::MetricsOnly => State::MetricsOnly,
            PermitKind::ForcedClosed => State::ForcedClosed,
            PermitKind::Disabled => State::Disabled,
        }
    }
}

/// The result of asking to make a call: 16 bytes, returned in two registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    Admitted(Ticket),
    Rejected(Rejection),
}

/// An admitted call's identity: the period (state and generation) it was admitted in,
/// kept as the state word's period bits. Only a half-open (probe) ticket holds
/// anything, a probe slot in the state word; the others can be dropped freely.
///
/// One `u64` on purpose: a ticket stored as narrower fields and read back as one word
/// (as the compiler does when it moves it) defeats store-to-load forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket(u64);

impl Ticket {
    /// The ticket of a call admitted as `kind` in `generation`.
    pub(crate) fn new(kind: PermitKind, generation: u32) -> Ticket {
        Ticket(Word::period(kind.state(), generation))
    }

    /// The ticket whose [`bits`](Self::bits) are the period bits of `bits`: a state
    /// word, or a holder's copy with its own flags in the spare bits.
    #[inline]
    pub(crate) fn from_bits(bits: u64) -> Ticket {
        Ticket(bits & Word::PERIOD_MASK)
    }

    /// The period bits; the bits a period leaves clear are free for the holder's use
    /// (see [`Ticket::SPARE_BITS`]).
    #[inline]
    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    /// Bits that are always clear in [`bits`](Self::bits).
    pub(crate) const SPARE_BITS: u64 = !Word::PERIOD_MASK;

    /// How the call's outcome is recorded.
    #[inline]
    pub(crate) fn kind(self) -> PermitKind {
        PermitKind::admitted_in(State::from_bits(self.0 as u8))
    }

    /// Whether this ticket holds a half-open probe slot.
    #[inline]
    pub(crate) fn is_probe(self) -> bool {
        self.0 as u8 == State::HalfOpen as u8
    }

    /// The generation the call was admitted in.
    #[inline]
    pub(crate) fn generation(self) -> u32 {
        (self.0 >> 40) as u32
    }

    /// Whether the breaker is still in the period this ticket was issued in.
    #[inline]
    pub(crate) fn is_current(self, machine: &StateMachine) -> bool {
        machine.word_bits() & Word::PERIOD_MASK == self.0
    }
}

/// A refused admission: the state that refused, and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Rejection {
    pub(crate) state: State,
    /// Nanoseconds until a call may be admitted, [`Rejection::UNKNOWN`] when not known
    /// (forced open). Plain nanoseconds rather than `Option<Duration>` keep a decision
    /// in two registers instead of a round trip through memory.
    retry_after: Nanos,
}

impl Rejection {
    const UNKNOWN: Nanos = Nanos::MAX;

    /// A rejection with no known end (forced open).
    pub(crate) fn until_further_notice(state: State) -> Rejection {
        Rejection {
            state,
            retry_after: Rejection::UNKNOWN,
        }
    }

    /// A rejection that lifts in `nanos` nanoseconds.
    pub(crate) fn for_nanos(state: State, nanos: Nanos) -> Rejection {
        Rejection {
            state,
            retry_after: nanos.min(Rejection::UNKNOWN - 1),
        }
    }

    /// How long until a call may be admitted, when known.
    #[inline]
    pub(crate) fn retry_after(self) -> Option<Duration> {
        (self.retry_after != Rejection::UNKNOWN).then(|| Duration::from_nanos(self.retry_after))
    }
}

/// Why a breaker changed state, carried by
/// [`Event::StateTransition`](crate::Event::StateTransition) and logged with every
/// transition. `Display` gives a short human-readable sentence.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum Reason {
    /// The consecutive-failure rule fired (closed to open).
    ConsecutiveFailures {
        /// The length of the failure streak.
        count: u32,
    },
    /// The failure-rate rule fired (closed to open).
    FailureRate {
        /// The failure rate over the window, in `0.0..=1.0`.
        rate: f64,
        /// The calls in the window.
        calls: u64,
    },
    /// The slow-call-rate rule fired (closed to open).
    SlowCallRate {
        /// The slow-call rate over the window, in `0.0..=1.0`.
        rate: f64,
        /// The calls in the window.
        calls: u64,
    },
    /// The open duration ended and a call arrived (open to half-open).
    OpenDurationElapsed,
    /// A half-open probe failed or was slow (half-open to open).
    ProbeFailed,
    /// No half-open probe finished within `half_open_max_wait` (half-open to open).
    ProbeTimedOut,
    /// Enough half-open probes succeeded (half-open to closed).
    ProbesSucceeded,
    /// An operator called a manual control (`reset`, `force_open`, ...).
    Manual,
    /// Another instance of the fleet opened or closed this breaker through a shared
    /// state store (feature `redis`).
    Remote,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ConsecutiveFailures { count } => write!(f, "{count} consecutive failures"),
            Reason::FailureRate { rate, calls } => {
                write!(f, "failure rate {:.1}% over {calls} calls", rate * 100.0)
            }
            Reason::SlowCallRate { rate, calls } => {
                write!(f, "slow-call rate {:.1}% over {calls} calls", rate * 100.0)
            }
            Reason::OpenDurationElapsed => f.write_str("open duration elapsed"),
            Reason::ProbeFailed => f.write_str("a half-open probe failed"),
            Reason::ProbeTimedOut => f.write_str("no half-open probe finished in time"),
            Reason::ProbesSucceeded => f.write_str("enough half-open probes succeeded"),
            Reason::Manual => f.write_str("manual control"),
            Reason::Remote => f.write_str("fleet state from the shared store"),
        }
    }
}

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
}

/// A transition that happened, for logging after the lock is released.
#[derive(Debug, Clone, Copy)]
struct Transition {
    from: State,
    to: State,
    reason: Reason,
    open_for: Option<Duration>,
    /// On opening: the failure streak and the window's rates at that moment.
    failures: Option<u32>,
    window: Option<WindowStats>,
    generation: u32,
}

/// Bookkeeping only touched during transitions, under the mutex.
#[derive(Debug, Default)]
struct TransitionLog {
    /// Trips since the breaker last closed; drives the backoff.
    consecutive_trips: u32,
    /// Why the breaker last changed state (read by the fleet sync, see [`remote`]).
    last_reason: Option<Reason>,
}

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
    /// Metrics-only: the period bits of the metrics-only period whose trip rules are
    /// firing (its would-be trip was announced), 0 when none (see
    /// [`note_would_be_trip`](Self::note_would_be_trip)).
    would_trip_period: AtomicU64,
    /// Metrics-only: would-be trips announced so far.
    would_be_trips: AtomicU64,
    state_changes: AtomicU64,
    random: AtomicU64,
    pub(crate) config: Config,
    window: Option<SlidingWindow>,
    transitions: Mutex<TransitionLog>,
    /// Woken on every transition and every returned probe permit (backpressure waiters).
    pub(crate) changed: Arc<Notify>,
}

mod remote;

impl StateMachine {
    pub(crate) fn new(config: Config) -> StateMachine {
        let window = config.window.map(SlidingWindow::new);
        StateMachine {
            clock: Clock::new(),
            word: AtomicU64::new(Word::CLOSED.pack()),
            open_until: AtomicU64::new(0),
            entered_at: AtomicU64::new(0),
            probe_progress_at: AtomicU64::new(0),
            timeout_open_for: AtomicU64::new(0),
            would_trip_period: AtomicU64::new(0),
            would_be_trips: AtomicU64::new(0),
            consecutive_failures: AtomicU32::new(0),
            window,
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
            config,
        }
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
        if now >= self.open_until.load(Acquire) && !self.probe_gate.load(Acquire) {
            State::HalfOpen
        } else {
            State::Open
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

    /// The closed case of [`admit`](Self::admit) alone: one load, `None` in every other
    /// state (which then needs [`admit`](Self::admit)).
    #[inline]
    pub(crate) fn admit_closed(&self) -> Option<Ticket> {
        let bits = self.word_bits();
        (bits & 0xFF == State::Closed as u64).then(|| Ticket::from_bits(bits))
    }

    #[inline(never)]
    fn admit_slow(&self) -> Admission {
        loop {
            let word = self.word();
            let kind = match word.state {
                State::Closed => PermitKind::Closed,
                State::MetricsOnly => PermitKind::MetricsOnly,
                State::ForcedClosed => PermitKind::ForcedClosed,
                State::Disabled => PermitKind::Disabled,
                State::ForcedOpen => {
                    return Admission::Rejected(Rejection::until_further_notice(State::ForcedOpen))
                }
                State::Open => {
                    let now = self.clock.now();
                    let until = self.open_until.load(Acquire);
                    if now < until {
                        return Admission::Rejected(Rejection::for_nanos(State::Open, until - now));
                    }
                    if self.probe_gate.load(Acquire) {
                        return self.gated();
                    }
                    if let Some(generation) =
                        self.transition(word, State::HalfOpen, Reason::OpenDurationElapsed, true)
                    {
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
                    if u32::from(word.in_flight) < self.config.half_open_permits {
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
                        deadline - now,
                    ));
                }
            };
            return Admission::Admitted(Ticket::new(kind, word.generation));
        }
    }

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

    /// Whether outcomes feed a sliding window.
    pub(crate) fn has_window(&self) -> bool {
        self.window.is_some()
    }

    /// The packed state word, for fast paths that only compare bits.
    #[inline]
    pub(crate) fn word_bits(&self) -> u64 {
        self.word.load(Acquire)
    }

    /// The closed-success fast path (no window, no timing): ends a failure streak of
    /// the same period, and is a single shared read when there is none.
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
        let mut trip = None;
        if let Some(threshold) = self.config.consecutive_failures {
            if failure {
                let count = self
                    .consecutive_failures
                    .fetch_add(1, AcqRel)
                    .saturating_add(1);
                if count >= threshold {
                    trip = Some(Reason::ConsecutiveFailures { count });
                }
            } else if self.consecutive_failures.load(Relaxed) != 0 {
                self.consecutive_failures.store(0, Relaxed);
            }
        }
        let mut stats = None;
        if let Some(window) = &self.window {
            let recorded = window.record(now.unwrap_or(0), failure, slow);
            trip = trip.or_else(|| self.rate_rule_fired(&recorded));
            stats = Some(recorded);
        }
        // `state` is a constant at each call site: the closed path keeps only its arm.
        if state == State::MetricsOnly {
            self.note_would_be_trip(generation, trip, stats);
        } else if let Some(reason) = trip {
            self.trip(Word::unpack(bits), reason, open_floor);
        }
    }

    #[inline(never)]
    fn trip(&self, word: Word, reason: Reason, open_floor: Option<Duration>) {
        self.transition_if(word, State::Open, reason, false, open_floor, || true);
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
        fired: Option<Reason>,
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

    #[cold]
    #[inline(never)]
    fn announce_would_be_trip(&self, reason: Reason, window: Option<WindowStats>) {
        self.would_be_trips.fetch_add(1, Relaxed);
        let name = &self.config.name;
        tracing::info!(
            breaker = &**name,
            %reason,
            consecutive_failures = self
                .config
                .consecutive_failures
                .map(|_| self.consecutive_failures.load(Acquire)),
            failure_rate = window.map(|window| window.failure_rate()),
            slow_call_rate = window.map(|window| window.slow_rate()),
            window_calls = window.map(|window| window.calls),
            "circuit breaker would open (metrics-only mode)"
        );
        if self.events.is_listening() {
            self.events.emit(|| Event::WouldBeTrip {
                name: Arc::clone(name),
                reason,
            });
        }
    }

    fn rate_rule_fired(&self, stats: &WindowStats) -> Option<Reason> {
        if stats.calls < u64::from(self.config.minimum_calls) {
            return None;
        }
        if let Some(threshold) = self.config.failure_rate {
            let rate = stats.failure_rate();
            if rate >= threshold {
                return Some(Reason::FailureRate {
                    rate,
                    calls: stats.calls,
                });
            }
        }
        if let Some(slow) = self.config.slow_call {
            let rate = stats.slow_rate();
            if rate >= slow.rate {
                return Some(Reason::SlowCallRate {
                    rate,
                    calls: stats.calls,
                });
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
                self.transition_if(
                    word,
                    State::Open,
                    Reason::ProbeFailed,
                    false,
                    open_floor,
                    || true,
                );
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
                self.transition(released, State::Closed, Reason::ProbesSucceeded, false);
            } else {
                self.changed.notify_waiters();
            }
            return;
        }
    }

    /// Reopens the half-open period `from` because its probes made no progress within
    /// `half_open_max_wait`, unless another thread moved on from it first or a probe
    /// finished meanwhile.
    #[cold]
    #[inline(never)]
    fn time_out_probes(&self, from: Word) {
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
            if !current.same_period(from) || self.clock.now() < deadline {
                return;
            }
            self.enter_for(
                &mut log,
                current,
                State::Open,
                Reason::ProbeTimedOut,
                false,
                OpenDuration::TimedOut,
            )
        };
        self.announce(&done);
    }

    /// Moves from `from` (state and generation) to `to`. Returns the new generation, or
    /// `None` if another thread already moved on from `from`.
    fn transition(&self, from: Word, to: State, reason: Reason, take_probe: bool) -> Option<u32> {
        self.transition_if(from, to, reason, take_probe, None, || true)
    }

    /// Moves from `from` (state and generation) to `to` if `still_due`, re-checked under
    /// the lock, agrees. Returns the new generation, or `None` if another thread already
    /// moved on from `from` or the transition is no longer due. An open period lasts at
    /// least `open_floor`.
    fn transition_if(
        &self,
        from: Word,
        to: State,
        reason: Reason,
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

    /// Moves to `to` from whatever the state is (manual controls). With `force_reset`
    /// a transition happens even if the state is already `to` (a fresh start).
    pub(crate) fn force(&self, to: State, force_reset: bool) {
        let done = {
            let mut log = self.lock_transitions();
            let current = self.word();
            if current.state == to && !force_reset {
                return;
            }
            self.enter(&mut log, current, to, Reason::Manual, false, None)
        };
        self.announce(&done);
    }

    /// Performs a transition. Must hold the transition lock: state and generation only
    /// change under it, so the CAS loop below only retries for probe-count changes.
    fn enter(
        &self,
        log: &mut TransitionLog,
        current: Word,
        to: State,
        reason: Reason,
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
    fn enter_for(
        &self,
        log: &mut TransitionLog,
        current: Word,
        to: State,
        reason: Reason,
        take_probe: bool,
        open: OpenDuration,
    ) -> Transition {
        let now = self.clock.now();
        let mut open_for = None;
        let (mut failures, mut window) = (None, None);
        match to {
            State::Open => {
                let duration = match open {
                    OpenDuration::Set(duration) => duration,
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
                    .config
                    .consecutive_failures
                    .map(|_| self.consecutive_failures.load(Acquire));
                window = self.window.as_ref().map(|window| window.stats(now));
            }
            State::Closed => {
                log.consecutive_trips = 0;
                self.restart_rules();
            }
            State::HalfOpen => {
                self.probe_progress_at.store(now, Release);
                // Drawn now, so that reads can tell how long a timeout would reopen for.
                let reopen = self.next_open_duration(log);
                self.timeout_open_for.store(to_nanos(reopen), Release);
            }
            State::ForcedOpen | State::ForcedClosed | State::Disabled | State::MetricsOnly => {}
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

    /// Logs a transition, tells subscribers and wakes waiters; called after the lock is
    /// released so a slow `tracing` subscriber does not hold up other threads'
    /// transitions.
    fn announce(&self, done: &Transition) {
        let name = &*self.config.name;
        let Transition {
            from, to, reason, ..
        } = *done;
        match to {
            State::Open => tracing::warn!(
                breaker = name,
                %from,
                %reason,
                consecutive_failures = done.failures,
                failure_rate = done.window.map(|window| window.failure_rate()),
                slow_call_rate = done.window.map(|window| window.slow_rate()),
                window_calls = done.window.map(|window| window.calls),
                open_for = ?done.open_for.unwrap_or_default(),
                "circuit breaker opened"
            ),
            State::HalfOpen => {
                tracing::info!(breaker = name, %from, %reason, "circuit breaker half-open")
            }
            State::Closed => {
                tracing::info!(breaker = name, %from, %reason, "circuit breaker closed")
            }
            _ => {
                tracing::info!(breaker = name, %from, to = %to, "circuit breaker state set manually")
            }
        }
        #[cfg(feature = "metrics")]
        crate::export::transition(name, from, to);
        if self.events.is_listening() {
            self.events.emit(|| Event::StateTransition {
                name: Arc::clone(&self.config.name),
                from,
                to,
                reason,
            });
        }
        self.changed.notify_waiters();
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
    fn restart_rules(&self) {
        self.consecutive_failures.store(0, Release);
        if let Some(window) = &self.window {
            window.reset();
        }
    }

    fn swap_word(&self, expected: Word, new: Word) -> bool {
        self.word
            .compare_exchange(expected.pack(), new.pack(), AcqRel, Acquire)
            .is_ok()
    }

    fn lock_transitions(&self) -> MutexGuard<'_, TransitionLog> {
        // The log holds plain counters that are valid after any panic, so a poisoned
        // lock is safe to use.
        self.transitions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A uniform sample in `[0, 1)` (splitmix64), for backoff jitter.
    fn next_unit_random(&self) -> f64 {
        let mut z = self
            .random
            .fetch_add(0x9E37_79B9_7F4A_7C15, Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Whether the breaker is rejecting calls and would keep doing so for a while:
    /// forced open, or open and within its open duration. Losing such a breaker (e.g.
    /// by evicting it from a keyed map) would let traffic through to a sick downstream.
    pub(crate) fn is_holding_open(&self) -> bool {
        match self.state() {
            State::ForcedOpen => true,
            State::Open => self.clock.now() < self.open_until.load(Acquire),
            _ => false,
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
                let until = self.open_until.load(Acquire);
                state = self.observed_open_state(now);
                if state == State::Open {
                    retry_after = Some(Duration::from_nanos(until.saturating_sub(now)));
                } else {
                    entered_at = until;
                }
            }
            State::HalfOpen => {
                if let Some((deadline, open_for)) = self.timed_out_half_open(now) {
                    state = State::Open;
                    entered_at = deadline;
                    retry_after = Some(Duration::from_nanos(open_for));
                    probes_in_flight = 0;
                }
            }
            _ => {}
        }
        MachineSnapshot {
            state,
            probes_in_flight,
            window: self.window.as_ref().map(|window| window.stats(now)),
            consecutive_failures: self.consecutive_failures.load(Acquire),
            state_changes: self.state_changes.load(Acquire),
            would_be_trips: self.would_be_trips.load(Acquire),
            entered_at,
            retry_after,
        }
    }
}

/// What a metrics snapshot reads from the state machine.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MachineSnapshot {
    pub(crate) state: State,
    pub(crate) probes_in_flight: u32,
    pub(crate) window: Option<WindowStats>,
    pub(crate) consecutive_failures: u32,
    pub(crate) state_changes: u64,
    pub(crate) would_be_trips: u64,
    pub(crate) entered_at: Nanos,
    pub(crate) retry_after: Option<Duration>,
}
