//! Striped call counters.
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

use std::time::Duration;

use crate::classify::Outcome;
use crate::clock::Nanos;
use crate::core::admission::{PermitKind, Rejection};
use crate::core::machine::StateMachine;
use crate::core::sync::AtomicU64;
use crate::error::CircuitOpen;
use crate::event::Event;
use crate::name::BreakerName;
use crate::state::State;

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
    pub(super) reads_clock_on_record: bool,
    pub(crate) counters: Counters,
    /// This lane's own copy of the name, for logs and events: they clone a lane-local
    /// `Arc`.
    name: Arc<str>,
    /// The name rejections carry: static when the config's was, else this lane's own
    /// shared copy (see `name`).
    error_name: BreakerName,
}

// The alignment the doc comment above relies on (the first line is checked in
// `tests::a_closed_success_touches_one_line_of_its_lane`).
const _: () = assert!(std::mem::align_of::<Lane>() == 128);

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
/// increments; a locked read-modify-write is costly even uncontended (see
/// `benches/README.md`).
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

    /// The start of a call beginning now, + 1, if the breaker times calls; 0 otherwise.
    #[inline]
    pub(super) fn call_started_at(&self) -> Nanos {
        if self.times_calls {
            self.machine.clock.now().saturating_add(1)
        } else {
            0
        }
    }

    /// Counts a rejection that was decided earlier without being counted, logs it at
    /// `debug`, tells subscribers, and builds the error the caller gets.
    #[inline]
    pub(crate) fn reject(&self, rejection: Rejection) -> CircuitOpen {
        self.count_rejection(rejection.state);
        CircuitOpen {
            name: self.error_name.clone(),
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
    pub(super) fn emit_outcome(
        &self,
        kind: PermitKind,
        outcome: Outcome,
        elapsed: Option<Duration>,
    ) {
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
    pub(super) fn count_success(&self, now: Option<Nanos>) {
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

    // Inlined into `Permit::settle_slow`, its one caller, as it was when the permit
    // lived in this file.
    #[inline]
    pub(super) fn count(&self, outcome: Outcome, slow: bool, now: Option<Nanos>) {
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
            name: Arc::from(&*machine.name),
            error_name: machine.config.name.unshared(),
            times_calls: machine.times_calls(),
            reads_clock_on_record: machine.reads_clock_on_record(),
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

    /// Whether a [`Permit`](crate::core::permit::Permit) of this breaker is out (a call in flight, or a permit not
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

#[cfg(all(test, not(tcb_loom)))]
mod tests {
    use std::sync::Arc;

    use super::Lane;
    use crate::config::Config;
    use crate::core::machine::StateMachine;

    /// The end of `field`, from the start of `base`, in bytes.
    fn end_of<T, F>(base: &T, field: &F) -> usize {
        field as *const F as usize + std::mem::size_of::<F>() - base as *const T as usize
    }

    #[test]
    fn a_closed_success_touches_one_line_of_its_lane() {
        let lane = Lane::new(&Arc::new(StateMachine::new(Config::default())));
        for end in [
            end_of(&lane, &lane.machine),
            end_of(&lane, &lane.owner),
            end_of(&lane, &lane.times_calls),
            end_of(&lane, &lane.reads_clock_on_record),
            end_of(&lane, &lane.counters.successes),
        ] {
            assert!(end <= 64, "a hot field ends at byte {end}");
        }
    }
}
