//! SplitMix64, the crate's one pseudo-random generator, for backoff jitter: a breaker's
//! open durations (see `core::machine`) and the retry policy's delays (see
//! `retry::jitter`).
//!
//! Jitter needs spread, not cryptographic quality, so a SplitMix64 generator (one `u64`
//! of state, a handful of arithmetic instructions per draw) replaces a `rand`
//! dependency. A stream shared by threads keeps its state in an atomic, advances it by
//! [`GOLDEN_GAMMA`] with one atomic add and turns the new state into a draw with
//! [`mix`]; it yields what [`SplitMix64`] yields from the same seed.

/// The increment of the generator's state per draw.
pub(crate) const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64: a full-period 64-bit generator with good statistical mixing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix(self.state)
    }

    /// A uniform sample in `[0, 1)`.
    pub(crate) fn next_unit(&mut self) -> f64 {
        unit(self.next_u64())
    }
}

/// The draw of a state just advanced by [`GOLDEN_GAMMA`].
#[inline]
pub(crate) fn mix(state: u64) -> u64 {
    let mut z = state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform sample in `[0, 1)` from a draw.
#[inline]
pub(crate) fn unit(draw: u64) -> f64 {
    // The top 53 bits fill an f64 mantissa exactly.
    (draw >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

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
    fn a_shared_stream_draws_what_the_generator_draws() {
        let (mut rng, shared) = (SplitMix64::new(42), AtomicU64::new(42));
        for _ in 0..100 {
            let state = shared
                .fetch_add(GOLDEN_GAMMA, Relaxed)
                .wrapping_add(GOLDEN_GAMMA);
            assert_eq!(unit(mix(state)), rng.next_unit());
        }
    }
}
