//! [`Permit`]: what a call carries from admission to outcome, and its
//! constructors.
//!
//! A permit holds its lane (so a call's counters are its thread's) and the admission
//! [`Ticket`]'s bits with the permit's own flags in the bits a ticket leaves clear. Its
//! outcome is recorded once: reported, or when it is dropped.

use std::sync::Arc;
use std::time::Duration;

use crate::classify::Outcome;
use crate::clock::Nanos;
use crate::core::admission::{Admission, PermitKind, Ticket};
use crate::core::lane::Lane;
use crate::error::CircuitOpen;

impl Lane {
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
    /// read back as one word, a store-forwarding stall (see `benches/README.md`).
    #[inline]
    pub(crate) fn used_permit(self: &Arc<Self>, ticket: Ticket) -> Permit {
        Permit {
            lane: Arc::clone(self),
            started_at: self.call_started_at(),
            bits: ticket.bits() | USED,
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
    /// narrower fields copied as words stall store-to-load forwarding (see
    /// `benches/README.md`).
    bits: u64,
}

// Three whole words, as `bits` says.
const _: () = assert!(std::mem::size_of::<Permit>() == 24);

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
        !self.is_settled() && self.lane.machine.is_current(self.ticket())
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
            && !lane.reads_clock_on_record
            && !lane.machine.events.is_listening()
            && lane.machine.absorbs_success()
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
