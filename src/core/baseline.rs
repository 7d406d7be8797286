//! [`Baseline`]: the adaptive failure-rate rule's memory of the backend's normal
//! failure rate.
//!
//! A moving average of the count window's failure rate, fed one full window at a time
//! (by the call that fills the window's last slot, so once per `size` calls) and only
//! while closed: an outage and the probing after it teach it nothing. The average is
//! exact over the first windows (weight `1 / n` for the `n`-th) and exponential after
//! that (weight `size / horizon`), so it starts from what it saw, not from zero.
//!
//! Rate and count share one word, so a fold is one CAS and reads never see one without
//! the other; the rate is an `f32`, ample for a share of calls.

use std::sync::atomic::Ordering::*;

use crate::config::AdaptiveFailureRate;
use crate::core::sync::AtomicU64;

#[derive(Debug)]
pub(crate) struct Baseline {
    /// The average's `f32` bits (high half) and the windows folded in, saturating
    /// (low half).
    packed: AtomicU64,
    rule: AdaptiveFailureRate,
    /// Calls per folded window: the count window's size.
    window_size: u32,
}

impl Baseline {
    pub(crate) fn new(rule: AdaptiveFailureRate, window_size: u32) -> Baseline {
        Baseline {
            packed: AtomicU64::new(0),
            rule,
            window_size: window_size.max(1),
        }
    }

    /// The learned failure rate, once the warm-up's calls were folded in; `None` before.
    pub(crate) fn rate(&self) -> Option<f64> {
        let (rate, windows) = unpack(self.packed.load(Acquire));
        let seen = u64::from(windows) * u64::from(self.window_size);
        (seen >= u64::from(self.rule.warm_up)).then_some(f64::from(rate))
    }

    /// The threshold a window of `calls` calls trips at now.
    #[inline]
    pub(crate) fn threshold(&self, calls: u64) -> f64 {
        self.rule.threshold(self.rate(), calls)
    }

    /// The run of consecutive failures that opens the breaker now (see
    /// [`AdaptiveFailureRate::streak`]).
    pub(crate) fn streak(&self) -> Option<u32> {
        self.rule.streak(self.rate())
    }

    /// Folds one full window's failure rate into the average.
    pub(crate) fn fold(&self, window_rate: f64) {
        let steady_weight = f64::from(self.window_size) / f64::from(self.rule.horizon.max(1));
        let mut current = self.packed.load(Acquire);
        loop {
            let (average, windows) = unpack(current);
            let weight = (1.0 / (f64::from(windows) + 1.0)).max(steady_weight);
            let average = f64::from(average) + weight * (window_rate - f64::from(average));
            let next = pack(average as f32, windows.saturating_add(1));
            match self
                .packed
                .compare_exchange_weak(current, next, AcqRel, Acquire)
            {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }

    /// Windows folded in so far.
    #[cfg(test)]
    pub(crate) fn windows(&self) -> u32 {
        unpack(self.packed.load(Acquire)).1
    }
}

fn pack(rate: f32, windows: u32) -> u64 {
    (u64::from(rate.to_bits()) << 32) | u64::from(windows)
}

fn unpack(packed: u64) -> (f32, u32) {
    (f32::from_bits((packed >> 32) as u32), packed as u32)
}

#[cfg(all(test, not(tcb_loom)))]
mod tests {
    use super::*;

    #[test]
    fn averages_exactly_at_first_then_exponentially() {
        let rule = AdaptiveFailureRate::new().horizon(1_000).warm_up(300);
        let baseline = Baseline::new(rule, 100);
        baseline.fold(0.1);
        baseline.fold(0.3);
        assert_eq!(baseline.rate(), None, "200 calls seen, warm-up is 300");
        baseline.fold(0.2);
        let rate = baseline.rate().expect("warmed up");
        assert!((rate - 0.2).abs() < 1e-6, "mean of three windows: {rate}");
        // From the 10th window on, each weighs size / horizon = 0.1.
        for _ in 3..10 {
            baseline.fold(0.2);
        }
        baseline.fold(0.7);
        let rate = baseline.rate().unwrap();
        assert!(
            (rate - 0.25).abs() < 1e-6,
            "0.2 + 0.1 * (0.7 - 0.2): {rate}"
        );
        assert_eq!(baseline.windows(), 11);
    }
}
