//! Per-request generators for the retry policy's jitter, from the crate's one
//! generator, [`SplitMix64`] (see `crate::random`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use crate::random::SplitMix64;
use crate::random::GOLDEN_GAMMA;

/// Hands out independent generators, one per request, from one seed.
///
/// Each request's generator starts at a mixed, distinct point of the seed's stream, so
/// concurrent requests do not back off in lockstep, while a fixed seed replays the same
/// delays (tests, reproducible demos).
#[derive(Debug)]
pub(crate) struct Seeds {
    seed: u64,
    handed_out: AtomicU64,
}

impl Seeds {
    pub(crate) fn new(seed: u64) -> Self {
        Seeds {
            seed,
            handed_out: AtomicU64::new(0),
        }
    }

    /// A seed that differs between processes and runs: wall-clock nanoseconds mixed with
    /// the process id.
    pub(crate) fn from_entropy() -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let pid = u64::from(std::process::id());
        Seeds::new(SplitMix64::new(nanos ^ pid.rotate_left(32)).next_u64())
    }

    /// The generator for the next request.
    pub(crate) fn generator(&self) -> SplitMix64 {
        let index = self.handed_out.fetch_add(1, Ordering::Relaxed);
        let start = self.seed.wrapping_add(index.wrapping_mul(GOLDEN_GAMMA));
        SplitMix64::new(SplitMix64::new(start).next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_replays_and_requests_differ() {
        let a = Seeds::new(42);
        let b = Seeds::new(42);
        let (mut a1, mut a2) = (a.generator(), a.generator());
        let (mut b1, mut b2) = (b.generator(), b.generator());
        assert_eq!(a1.next_u64(), b1.next_u64());
        assert_eq!(a2.next_u64(), b2.next_u64());
        assert_ne!(a1.next_u64(), a2.next_u64());
    }
}
