//! The breaker's state packed into one `u64`, so admission is a single atomic load and
//! every change (transition, probe permit taken or returned) is a single CAS.
//!
//! Layout, low bits first: state (8) | probes in flight (16) | probe successes (16) |
//! generation (24). The generation grows on every transition, so a permit or outcome
//! from an earlier period is recognised as stale and cannot move the current one. It
//! wraps after 2^24 transitions: a call outstanding across that many (hours of a
//! breaker flapping every millisecond) would be taken for current.

use crate::state::State;

const GENERATION_MASK: u32 = 0x00FF_FFFF;

/// One decoded state word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Word {
    pub(crate) state: State,
    /// Half-open probes admitted and not finished (0 outside half-open).
    pub(crate) in_flight: u16,
    /// Successful half-open probes in this half-open period.
    pub(crate) successes: u16,
    /// Transition counter, 24 bits, wrapping.
    pub(crate) generation: u32,
}

impl Word {
    /// The initial word: closed, generation 0.
    pub(crate) const CLOSED: Word = Word {
        state: State::Closed,
        in_flight: 0,
        successes: 0,
        generation: 0,
    };

    /// The bits that identify a period: state and generation, without probe counts.
    pub(crate) const PERIOD_MASK: u64 = 0xFF | (GENERATION_MASK as u64) << 40;

    /// The period bits of `state` in `generation`, comparable with
    /// `packed & PERIOD_MASK`.
    #[inline]
    pub(crate) fn period(state: State, generation: u32) -> u64 {
        u64::from(state as u8) | u64::from(generation & GENERATION_MASK) << 40
    }

    #[inline]
    pub(crate) fn pack(self) -> u64 {
        u64::from(self.state as u8)
            | u64::from(self.in_flight) << 8
            | u64::from(self.successes) << 24
            | u64::from(self.generation & GENERATION_MASK) << 40
    }

    #[inline]
    pub(crate) fn unpack(bits: u64) -> Word {
        Word {
            state: State::from_bits((bits & 0xFF) as u8),
            in_flight: ((bits >> 8) & 0xFFFF) as u16,
            successes: ((bits >> 24) & 0xFFFF) as u16,
            generation: ((bits >> 40) as u32) & GENERATION_MASK,
        }
    }

    /// Whether `other` is the same period: same state and generation.
    #[inline]
    pub(crate) fn same_period(self, other: Word) -> bool {
        self.state == other.state && self.generation == other.generation
    }

    /// The word after a transition to `state`: next generation, no probes.
    pub(crate) fn successor(self, state: State) -> Word {
        Word {
            state,
            in_flight: 0,
            successes: 0,
            generation: self.generation.wrapping_add(1) & GENERATION_MASK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_every_field() {
        for state in State::ALL {
            let word = Word {
                state,
                in_flight: 65_535,
                successes: 12_345,
                generation: GENERATION_MASK,
            };
            assert_eq!(Word::unpack(word.pack()), word);
        }
    }

    #[test]
    fn generation_wraps_within_its_bits() {
        let last = Word {
            generation: GENERATION_MASK,
            ..Word::CLOSED
        };
        let next = last.successor(State::Open);
        assert_eq!(next.generation, 0);
        assert_eq!(Word::unpack(next.pack()), next);
    }
}
