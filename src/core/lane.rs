//! Striped call counters and the permit a call carries.
//!
//! Each breaker has a few [`Lane`] slots; a thread always uses the same one, and the
//! first thread of a slot to call creates its lane, on its own cache lines. A call
//! clones its lane's `Arc` and bumps that lane's counters, so two threads sharing one
//! breaker write to different cache lines and do not slow each other down; the lane's
//! creator bumps the hot counters without a locked instruction ([`SplitCounter`]).
//! Snapshots add the lanes up.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering::*};
use std::sync::{Arc, OnceLock};

use crate::core::sync::AtomicU64;
use std::time::Duration;

use crate::clock::Nanos;
use crate::core::machine::{Admission, PermitKind, Rejection, StateMachine, Ticket};
use crate::{CircuitOpen, Event, Outcome, State};

/// Success timestamps are sampled on every `SUCCESS_STAMP_EVERY`-th success of a lane,
/// unless the clock is read anyway, so the success path does not read the clock.
const SUCCESS_STAMP_EVERY: u64 = 64;

/// One stripe of a breaker: a handle on the shared state plus its own counters.
///
/// `repr(C)`: what a closed success reads and writes (the machine, the owner, the
/// flags, the success counter) comes first, on one cache line.
#[derive(Debug)]
#[repr(C, align(128))]
pub(crate) struct Lane {
    pub(crate) machine: Arc<StateMachine>,
    /// The thread slot of the thread that created the lane (or [`NOBODY`]): it bumps
    /// the hot counters without a locked instruction (see [`SplitCounter`]).
    owner: usize,
    /// Copy of [`StateMachine::times_calls`], one pointer hop closer.
    times_calls: bool,
    /// Copy of [`StateMachine::reads_clock_on_record`].
    reads_clock_on_record: bool,
    /// A closed success only bumps a counter and ends a failure streak: no window to
    /// feed and no clock to read.
    plain_success: bool,
    pub(crate) counters: Counters,
    /// This lane's own copy of the name, so rejections clone a lane-local `Arc`.
    name: Arc<str>,
}

/// Monotonic per-lane counters, the success counter first (see [`Lane`]).
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct Counters {
    pub(crate) successes: SplitCounter,
    pub(crate) failures: AtomicU64,
    pub(crate) ignored: AtomicU64,
    pub(crate) rejected: SplitCounter,
    pub(crate) slow: AtomicU64,
    /// Timestamp + 1 of the latest recorded success (0: none yet).
    pub(crate) last_success_at: AtomicU64,
    /// Timestamp + 1 of the latest failure (0: none yet).
    pub(crate) last_failure_at: AtomicU64,
}

/// A counter bumped on every call of a hot path. Lanes are picked per thread, but
/// threads beyond the lane count share lanes, so a lane's counters need atomic
/// increments; a locked read-modify-write costs several nanoseconds even uncontended.
/// The lane's owner therefore counts in a half nobody else writes, with a plain load
/// and store, and every other thread in the other half with `fetch_add`. Exact: each
/// half has one kind of writer. Reads add the halves.
#[derive(Debug, Default)]
#[repr(C)]
pub(crate) struct SplitCounter {
    by_owner: AtomicU64,
    by_others: AtomicU64,
}

impl SplitCounter {
    /// Adds one; returns the half's count before it.
    #[inline]
    fn bump(&self, by_owner: bool) -> u64 {
        if by_owner {
            let before = self.by_owner.load(Relaxed);
            self.by_owner.store(before + 1, Relaxed);
            before
        } else {
            self.by_others.fetch_add(1, Relaxed)
        }
    }

    /// The count.
    pub(crate) fn get(&self) -> u64 {
        self.by_owner.load(Relaxed) + self.by_others.load(Relaxed)
    }
}

/// Thread slots are `0..=LAST_SLOT`, each handed to one thread only; the values above
/// are markers. An owner is a thread slot or [`NOBODY`]; a thread's slot may also be a
/// marker that owns nothing.
const LAST_SLOT: usize = usize::MAX - 3;
/// The owner of a lane nobody may own: one created by a thread without a slot, or in
/// a loom model (whose threads share one OS thread's slot).
const NOBODY: usize = usize::MAX - 2;
/// The slot of every thread after the slots ran out (2^32 threads on a 32-bit target):
/// shared, so never an owner.
const SLOTS_EXHAUSTED: usize = usize::MAX - 1;
/// No slot yet, or the thread's thread-locals are already gone; never an owner.
const UNKNOWN_SLOT: usize = usize::MAX;

impl Lane {
    /// Whether the calling thread owns this lane.
    #[inline]
    fn owned_here(&self) -> bool {
        thread_slot() == self.owner
    }

    /// Turns an admission into the permit its call carries. The permit is not used
    /// (nor timed) until [`Permit::mark_used`]: a half-open probe's slot, held from
    /// `poll_ready` to `call`.
    #[inline]
    pub(crate) fn permit(self: &Arc<Self>, ticket: Ticket) -> Permit {
        Permit {
            lane: Arc::clone(self),
            started_at: 0,
            bits: ticket.bits(),
        }
    }

    /// The permit of a call made now under `ticket`: used, and timed if the breaker
    /// times calls. Built whole rather than as [`permit`](Self::permit) plus
    /// [`Permit::mark_used`]: setting the flag in a permit already stored in a response
    /// future was compiled into byte-sized stores, which the future's first poll then
    /// read back as one word, a store-forwarding stall (~8 ns per call in `compare`).
    #[inline]
    pub(crate) fn used_permit(self: &Arc<Self>, ticket: Ticket) -> Permit {
        Permit {
            lane: Arc::clone(self),
            started_at: self.call_started_at(),
            bits: ticket.bits() | USED,
        }
    }

    /// The start of a call beginning now, + 1, if the breaker times calls; 0 otherwise.
    #[inline]
    fn call_started_at(&self) -> Nanos {
        if self.times_calls {
            self.machine.clock.now().saturating_add(1)
        } else {
            0
        }
    }

    /// Turns an admission decided just now into the call's permit, marked used (the
    /// caller makes the call), or into the counted rejection.
    #[inline]
    pub(crate) fn acquire(self: &Arc<Self>, admission: Admission) -> Result<Permit, CircuitOpen> {
        match admission {
            Admission::Admitted(ticket) => Ok(self.used_permit(ticket)),
            Admission::Rejected(rejection) => Err(self.reject(rejection)),
        }
    }

    /// Counts a rejection that was decided earlier without being counted, logs it at
    /// `debug`, tells subscribers, and builds the error the caller gets.
    #[inline]
    pub(crate) fn reject(&self, rejection: Rejection) -> CircuitOpen {
        self.count_rejection(rejection.state);
        CircuitOpen {
            name: Arc::clone(&self.name),
            state: rejection.state,
            retry_after: rejection.retry_after(),
        }
    }

    /// Counts a rejection by `state`; logs it at `debug` and tells subscribers when
    /// anyone is listening.
    #[inline]
    fn count_rejection(&self, state: State) {
        self.counters.rejected.bump(self.owned_here());
        if tracing::level_enabled!(tracing::Level::DEBUG) || self.machine.events.is_listening() {
            self.announce_rejection(state);
        }
    }

    /// Logs a rejection and tells subscribers. Out of line: the `tracing` call site
    /// would otherwise bloat every caller (and keep `call` from being inlined).
    #[cold]
    #[inline(never)]
    fn announce_rejection(&self, state: State) {
        tracing::debug!(breaker = &*self.name, %state, "circuit breaker rejected a call");
        if self.machine.events.is_listening() {
            self.machine.events.emit(|| Event::Rejected {
                name: Arc::clone(&self.name),
                state,
            });
        }
    }

    /// Tells subscribers how an admitted call ended.
    #[cold]
    #[inline(never)]
    fn emit_outcome(&self, kind: PermitKind, outcome: Outcome, elapsed: Option<Duration>) {
        let events = &self.machine.events;
        let (name, state) = (&self.name, kind.state());
        events.emit(|| match outcome {
            Outcome::Success => Event::Success {
                name: Arc::clone(name),
                state,
            },
            Outcome::Failure => Event::Failure {
                name: Arc::clone(name),
                state,
            },
            Outcome::Ignored => Event::Ignored {
                name: Arc::clone(name),
                state,
            },
        });
        if let Some(elapsed) = elapsed {
            events.emit(|| Event::Slow {
                name: Arc::clone(name),
                elapsed,
            });
        }
    }

    #[inline]
    fn count_success(&self, now: Option<Nanos>) {
        let before = self.counters.successes.bump(self.owned_here());
        if now.is_some() || before % SUCCESS_STAMP_EVERY == 0 {
            self.stamp_success(now);
        }
    }

    #[inline(never)]
    fn stamp_success(&self, now: Option<Nanos>) {
        let at = now.unwrap_or_else(|| self.machine.clock.now());
        self.counters
            .last_success_at
            .fetch_max(at.saturating_add(1), Relaxed);
    }

    fn count(&self, outcome: Outcome, slow: bool, now: Option<Nanos>) {
        let counters = &self.counters;
        match outcome {
            Outcome::Success => self.count_success(now),
            Outcome::Failure => {
                counters.failures.fetch_add(1, Relaxed);
                let at = now.unwrap_or_else(|| self.machine.clock.now());
                counters
                    .last_failure_at
                    .fetch_max(at.saturating_add(1), Relaxed);
            }
            Outcome::Ignored => {
                counters.ignored.fetch_add(1, Relaxed);
            }
        }
        if slow {
            counters.slow.fetch_add(1, Relaxed);
        }
    }
}

/// The lanes of one breaker: one slot per thread slot, each lane created the first
/// time a thread of its slot makes a call. Memory follows the threads that use the
/// breaker (a keyed breaker used from one thread has one lane, on any core count), and
/// the slice is shared, so a handle reaches its lane in two hops (slots, lane): a
/// keyed breaker looked up cold pays a cache miss per hop.
#[derive(Debug, Clone)]
pub(crate) struct Lanes {
    slots: Arc<[OnceLock<Arc<Lane>>]>,
}

static NEXT_THREAD_SLOT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static THREAD_SLOT: Cell<usize> = const { Cell::new(UNKNOWN_SLOT) };
}

/// A number fixed per thread and never handed to another thread, in creation order
/// ([`SLOTS_EXHAUSTED`] once every slot was handed out, [`UNKNOWN_SLOT`] once the
/// thread's thread-locals are gone). Lane ownership relies on "never handed to
/// another thread": the counter stops instead of wrapping.
#[inline]
fn thread_slot() -> usize {
    THREAD_SLOT
        .try_with(|slot| {
            let current = slot.get();
            if current != UNKNOWN_SLOT {
                return current;
            }
            let assigned = next_thread_slot();
            slot.set(assigned);
            assigned
        })
        .unwrap_or(UNKNOWN_SLOT)
}

#[cold]
fn next_thread_slot() -> usize {
    NEXT_THREAD_SLOT
        .fetch_update(Relaxed, Relaxed, |next| {
            (next < LAST_SLOT).then(|| next + 1)
        })
        .unwrap_or(SLOTS_EXHAUSTED)
}

/// Lane slots per breaker, computed once: `available_parallelism` reads cgroup files.
fn lane_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        (cores * 2).next_power_of_two().min(64)
    })
}

impl Lane {
    /// A lane owned by the calling thread.
    fn new(machine: &Arc<StateMachine>) -> Lane {
        let slot = thread_slot();
        Lane {
            machine: Arc::clone(machine),
            owner: if slot > LAST_SLOT || cfg!(tcb_loom) {
                NOBODY
            } else {
                slot
            },
            name: Arc::from(&*machine.config.name),
            times_calls: machine.times_calls(),
            reads_clock_on_record: machine.reads_clock_on_record(),
            plain_success: !machine.reads_clock_on_record() && !machine.has_window(),
            counters: Counters::default(),
        }
    }
}

impl Lanes {
    /// Two slots per available core, a power of two, at most 64; no lane yet (except
    /// in loom models, where every lane exists from the start: loom cannot see into
    /// `OnceLock`).
    pub(crate) fn new(machine: &Arc<StateMachine>) -> Lanes {
        let lanes = Lanes {
            slots: (0..lane_count()).map(|_| OnceLock::new()).collect(),
        };
        if cfg!(tcb_loom) {
            for slot in lanes.slots.iter() {
                slot.get_or_init(|| Arc::new(Lane::new(machine)));
            }
        }
        lanes
    }

    /// The calling thread's lane, created on its first call.
    #[inline]
    pub(crate) fn current(&self, machine: &Arc<StateMachine>) -> &Arc<Lane> {
        let slot = &self.slots[thread_slot() & (self.slots.len() - 1)];
        match slot.get() {
            Some(lane) => lane,
            None => Self::open(slot, machine),
        }
    }

    #[cold]
    #[inline(never)]
    fn open<'a>(slot: &'a OnceLock<Arc<Lane>>, machine: &Arc<StateMachine>) -> &'a Arc<Lane> {
        slot.get_or_init(|| Arc::new(Lane::new(machine)))
    }

    /// The counters of every lane created so far.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Counters> {
        self.slots
            .iter()
            .filter_map(OnceLock::get)
            .map(|lane| &lane.counters)
    }

    /// Whether a [`Permit`] of this breaker is out (a call in flight, or a permit not
    /// yet reported). No counter of its own: each permit holds its lane's `Arc`, so a
    /// lane with a permit out has more than the one reference its slot holds. Acquire:
    /// a caller that finds every permit gone also sees what they recorded (a trip).
    pub(crate) fn has_permits_out(&self) -> bool {
        let out = self
            .slots
            .iter()
            .filter_map(OnceLock::get)
            .any(|lane| Arc::strong_count(lane) > 1);
        std::sync::atomic::fence(Acquire);
        out
    }

    /// How many lanes there may be.
    #[cfg(test)]
    pub(crate) fn slots(&self) -> usize {
        self.slots.len()
    }

    /// How many lanes exist.
    #[cfg(test)]
    pub(crate) fn created(&self) -> usize {
        self.slots
            .iter()
            .filter(|slot| slot.get().is_some())
            .count()
    }
}

/// Permission to make one call, handed out by
/// [`CircuitBreaker::try_acquire`](crate::CircuitBreaker::try_acquire).
///
/// Report how the call went with [`record`](Permit::record) (or
/// [`success`](Permit::success) / [`failure`](Permit::failure)). A permit dropped
/// without a report counts as [`Outcome::Ignored`], or as [`Outcome::Failure`] if the
/// thread is panicking (or, inside [`ResponseFuture`](crate::ResponseFuture), if the
/// inner future or the classifier panicked); either way a half-open probe slot it held
/// is returned.
#[derive(Debug)]
#[must_use = "a permit records nothing until its outcome is reported"]
pub struct Permit {
    lane: Arc<Lane>,
    /// When the call started + 1, if the breaker times calls; 0 otherwise.
    started_at: Nanos,
    /// The admission [`Ticket`]'s bits, plus the flags below in bits a ticket leaves
    /// clear. Three whole words: the permit is moved with every response future, and
    /// narrower fields copied as words stall store-to-load forwarding (~15 ns per call
    /// in `benches/closed_path.rs` when the permit was a 23-byte struct).
    bits: u64,
}

/// Set once the outcome is recorded.
const SETTLED: u64 = 1 << 8;
/// Set while the guarded call is being polled or classified: a permit dropped in that
/// window was dropped by a panic, even if the drop happens after the unwind was caught
/// (as Tokio does for a panicking task).
const POLLING: u64 = 1 << 9;
/// Set once a call is made under the permit. A permit dropped before any call (a
/// readied service dropped, or its admission gone stale) counts nothing.
const USED: u64 = 1 << 10;

const _: () = assert!((SETTLED | POLLING | USED) & !Ticket::SPARE_BITS == 0);

impl Permit {
    /// Reports the call's outcome.
    #[inline]
    pub fn record(mut self, outcome: Outcome) {
        self.settle(outcome);
    }

    /// Reports a success.
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// Reports a failure.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Reports a failure after which the downstream asked for a pause (e.g. an HTTP
    /// `Retry-After`): should this failure open the breaker, it stays open at least
    /// `retry_after`, or the configured open duration if that is longer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_circuit_breaker::{CircuitBreaker, Config};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), tower_circuit_breaker::ConfigError> {
    /// let breaker = CircuitBreaker::new(
    ///     Config::builder().consecutive_failures(1).open_duration(Duration::from_secs(5)).build()?,
    /// );
    /// let permit = breaker.try_acquire().expect("closed");
    /// permit.failure_with_retry_after(Duration::from_secs(60));
    /// let open = breaker.try_acquire().unwrap_err();
    /// assert!(open.retry_after.unwrap() > Duration::from_secs(59));
    /// # Ok(())
    /// # }
    /// ```
    pub fn failure_with_retry_after(mut self, retry_after: Duration) {
        self.settle_failure_with_floor(retry_after);
    }

    /// Whether this permit is one of the limited half-open probes.
    pub fn is_probe(&self) -> bool {
        self.ticket().is_probe()
    }

    /// Time since the call started (when the permit was handed out by
    /// [`CircuitBreaker::try_acquire`](crate::CircuitBreaker::try_acquire), or when the
    /// service called its inner service), if the breaker times calls (slow-call
    /// detection on); `None` otherwise.
    pub fn elapsed(&self) -> Option<Duration> {
        let started = self.started_at.checked_sub(1)?;
        Some(Duration::from_nanos(
            self.lane.machine.clock.now().saturating_sub(started),
        ))
    }

    #[inline]
    fn ticket(&self) -> Ticket {
        Ticket::from_bits(self.bits)
    }

    #[inline]
    fn is_settled(&self) -> bool {
        self.bits & SETTLED != 0
    }

    /// The ticket to record an outcome under, unless one was already recorded; marks
    /// the permit settled.
    #[inline]
    fn take_ticket(&mut self) -> Option<Ticket> {
        if self.is_settled() {
            return None;
        }
        self.bits |= SETTLED;
        Some(self.ticket())
    }

    /// Marks that the guarded call is being made, and starts timing it when the
    /// breaker times calls.
    #[inline]
    pub(crate) fn mark_used(&mut self) {
        self.bits |= USED;
        self.started_at = self.lane.call_started_at();
    }

    /// Whether the breaker is still in the period this permit was admitted in.
    #[inline]
    pub(crate) fn is_current(&self) -> bool {
        !self.is_settled() && self.ticket().is_current(&self.lane.machine)
    }

    /// Marks the start (`true`) or end (`false`) of polling or classifying the call.
    #[inline]
    pub(crate) fn set_polling(&mut self, polling: bool) {
        if polling {
            self.bits |= POLLING;
        } else {
            self.bits &= !POLLING;
        }
    }

    /// Records `outcome` unless an outcome was already recorded.
    #[inline]
    pub(crate) fn settle(&mut self, outcome: Outcome) {
        let Some(ticket) = self.take_ticket() else {
            return;
        };
        let lane = &*self.lane;
        // With a subscriber, every outcome takes the slow path, which sends the events.
        if ticket.kind() == PermitKind::Closed
            && outcome == Outcome::Success
            && lane.plain_success
            && !lane.machine.events.is_listening()
        {
            lane.count_success(None);
            lane.machine.record_closed_success(ticket.generation());
            return;
        }
        self.settle_slow(ticket, outcome, None);
    }

    /// Records a failure that, should it open the breaker, keeps it open at least
    /// `open_floor` (e.g. the failed response's `Retry-After`).
    pub(crate) fn settle_failure_with_floor(&mut self, open_floor: Duration) {
        if let Some(ticket) = self.take_ticket() {
            self.settle_slow(ticket, Outcome::Failure, Some(open_floor));
        }
    }

    #[inline(never)]
    fn settle_slow(&self, ticket: Ticket, outcome: Outcome, open_floor: Option<Duration>) {
        let kind = ticket.kind();
        if kind == PermitKind::Disabled {
            return;
        }
        let lane = &*self.lane;
        let now = lane.reads_clock_on_record.then(|| lane.machine.clock.now());
        let elapsed = match (self.started_at.checked_sub(1), now) {
            (Some(started), Some(now)) if outcome != Outcome::Ignored => {
                Some(now.saturating_sub(started))
            }
            _ => None,
        };
        let slow = elapsed.is_some_and(|elapsed| lane.machine.is_slow(elapsed));
        lane.count(outcome, slow, now);
        if lane.machine.events.is_listening() {
            // Before recording: a subscriber sees the failure before the trip it causes.
            let slow_for = elapsed.filter(|_| slow).map(Duration::from_nanos);
            lane.emit_outcome(kind, outcome, slow_for);
        }
        lane.machine
            .record(kind, ticket.generation(), outcome, slow, now, open_floor);
    }
}

impl Drop for Permit {
    #[inline]
    fn drop(&mut self) {
        // Settled permits (every call that ran to completion) leave here; the rest is
        // kept out of line so that the response future stays small enough to inline.
        if !self.is_settled() {
            self.drop_unsettled();
        }
    }
}

impl Permit {
    /// Drop of a permit whose outcome was never reported.
    #[cold]
    #[inline(never)]
    fn drop_unsettled(&mut self) {
        if self.bits & USED == 0 {
            if let Some(ticket) = self.take_ticket() {
                if ticket.is_probe() {
                    self.lane.machine.release_probe(ticket.generation());
                }
            }
            return;
        }
        let outcome = if self.bits & POLLING != 0 || std::thread::panicking() {
            Outcome::Failure
        } else {
            Outcome::Ignored
        };
        self.settle(outcome);
    }
}
