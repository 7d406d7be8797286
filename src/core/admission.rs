//! What admission hands out: a [`Ticket`] for an admitted call, a [`Rejection`] for a
//! refused one, and the [`PermitKind`] that decides how an outcome is recorded. Plain
//! values, no shared state: the state machine makes them, the permit and the Tower
//! service carry them.

use std::time::Duration;

use crate::clock::Nanos;
use crate::core::word::Word;
use crate::state::State;

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
// A ticket is one word (see its doc comment), and an admission stays two: a decision
// is returned in registers, not through memory.
const _: () = assert!(std::mem::size_of::<Ticket>() == 8);
const _: () = assert!(std::mem::size_of::<Admission>() == 16);
