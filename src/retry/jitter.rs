//! A tiny seeded pseudo-random generator for backoff jitter.
//!
//! Jitter needs spread, not cryptographic quality, so a SplitMix64 generator (one `u64` of
//! state, a handful of arithmetic instructions per draw) replaces a `rand` dependency.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// SplitMix64: a full-period 64-bit generator with good statistical mixing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A uniform sample in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        // The top 53 bits fill an f64 mantissa exactly.
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

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
    fn samples_are_in_the_unit_interval_and_spread() {
        let mut rng = SplitMix64::new(7);
        let samples: Vec<f64> = (0..10_000).map(|_| rng.next_unit()).collect();
        assert!(samples.iter().all(|u| (0.0..1.0).contains(u)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 0.5).abs() < 0.02, "mean {mean}");
        let low = samples.iter().filter(|u| **u < 0.1).count();
        assert!((800..1200).contains(&low), "{low} samples below 0.1");
    }

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
