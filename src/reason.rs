//! [`TransitionReason`]: why a breaker changed state (public, re-exported at the root).

use std::fmt;

/// Why a breaker changed state, carried by
/// [`Event::StateTransition`](crate::Event::StateTransition) and logged with every
/// transition. `Display` gives a short human-readable sentence.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub enum TransitionReason {
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
    /// The adaptive failure-rate rule fired (closed to open): the window's failure rate
    /// reached the threshold learned from the backend's normal failure rate (see
    /// [`AdaptiveFailureRate`](crate::AdaptiveFailureRate)).
    AdaptiveFailureRate {
        /// The failure rate over the window, in `0.0..=1.0`.
        rate: f64,
        /// The threshold it reached.
        threshold: f64,
        /// The learned normal failure rate; `None` during the warm-up (the threshold
        /// was the cap).
        baseline: Option<f64>,
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
    /// The [probe interval](crate::ConfigBuilder::probe_interval) passed while open and
    /// a call arrived (open to half-open, early, with one probe permit at first).
    ProbeIntervalElapsed,
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

impl fmt::Display for TransitionReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransitionReason::ConsecutiveFailures { count } => {
                write!(f, "{count} consecutive failures")
            }
            TransitionReason::FailureRate { rate, calls } => {
                write!(f, "failure rate {:.1}% over {calls} calls", rate * 100.0)
            }
            TransitionReason::AdaptiveFailureRate {
                rate,
                threshold,
                baseline,
                calls,
            } => {
                write!(
                    f,
                    "failure rate {:.1}% over {calls} calls reached the adaptive threshold {:.1}%",
                    rate * 100.0,
                    threshold * 100.0
                )?;
                match baseline {
                    Some(baseline) => write!(f, " (normal: {:.1}%)", baseline * 100.0),
                    None => f.write_str(" (still learning what is normal)"),
                }
            }
            TransitionReason::SlowCallRate { rate, calls } => {
                write!(f, "slow-call rate {:.1}% over {calls} calls", rate * 100.0)
            }
            TransitionReason::OpenDurationElapsed => f.write_str("open duration elapsed"),
            TransitionReason::ProbeIntervalElapsed => {
                f.write_str("probe interval elapsed while open")
            }
            TransitionReason::ProbeFailed => f.write_str("a half-open probe failed"),
            TransitionReason::ProbeTimedOut => f.write_str("no half-open probe finished in time"),
            TransitionReason::ProbesSucceeded => f.write_str("enough half-open probes succeeded"),
            TransitionReason::Manual => f.write_str("manual control"),
            TransitionReason::Remote => f.write_str("fleet state from the shared store"),
        }
    }
}
