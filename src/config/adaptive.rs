//! [`AdaptiveFailureRate`]: a failure-rate rule whose threshold follows the backend's
//! normal failure rate.

/// A failure-rate rule that learns what "normal" is for this backend, set with
/// [`ConfigBuilder::failure_rate_adaptive`](crate::ConfigBuilder::failure_rate_adaptive).
///
/// A fixed threshold is wrong for most backends: 50 % never sees a partial outage of a
/// backend that normally fails 0.5 % of calls, and a low one trips on a backend whose
/// normal error rate is 10 %. This rule keeps a **baseline**, a moving average of the
/// count window's failure rate over about the last [`horizon`](Self::horizon()) calls
/// (updated each time the window has taken a full window of new calls, and only while
/// closed: an outage, and the probing after it, teach it nothing). The breaker opens
/// when the window's failure rate reaches
///
/// ```text
/// threshold = clamp(baseline + max(margin, tolerance * sqrt(baseline * (1 - baseline) / calls)), floor, cap)
/// ```
///
/// where `calls` is the number of calls in the window: the margin, or more when the
/// window is too small for its rate to be that precise (`tolerance` standard deviations
/// of a window of healthy calls). `floor` keeps a near-perfect backend's threshold from
/// tripping on a couple of failures; `cap` catches a backend whose failures creep up
/// slowly, however far the baseline followed them. Until the baseline has seen
/// [`warm_up`](Self::warm_up()) calls the threshold is the cap (a cold start).
///
/// A window needs a share of its calls to fail, which takes time at low call rates. A
/// backend that goes down fails every call, so the rule also opens on a **run** of
/// consecutive failures as long as the shortest run a healthy backend with this
/// baseline would produce with probability at most
/// [`streak_probability`](Self::streak_probability()) (`ceil(ln(p) / ln(baseline))`,
/// at least 3): 4 failures in a row for a backend failing 0.5 % of calls, 12 for one
/// failing 20 %. The run rule waits for the warm-up too.
///
/// It needs a count window ([`Window::count`](crate::Window::count), the default when
/// no window is set) and takes the place of [`failure_rate`](crate::ConfigBuilder::failure_rate);
/// [`minimum_calls`](crate::ConfigBuilder::minimum_calls) applies as for that rule.
/// Every call is recorded in the window (the fixed rule skips recording a success into
/// a window of successes): a few nanoseconds more per call, see `benches/README.md`.
///
/// ```
/// use tower_circuit_breaker::{AdaptiveFailureRate, Config, Window};
///
/// let config = Config::builder()
///     .failure_rate_adaptive(AdaptiveFailureRate::new().margin(0.15).floor(0.05))
///     .sliding_window(Window::count(200))
///     .build()?;
/// assert_eq!(config.failure_rate_adaptive().unwrap().margin, 0.15);
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct AdaptiveFailureRate {
    /// See [`margin`](Self::margin()).
    pub margin: f64,
    /// See [`tolerance`](Self::tolerance()).
    pub tolerance: f64,
    /// See [`floor`](Self::floor()).
    pub floor: f64,
    /// See [`cap`](Self::cap()).
    pub cap: f64,
    /// See [`horizon`](Self::horizon()).
    pub horizon: u32,
    /// See [`warm_up`](Self::warm_up()).
    pub warm_up: u32,
    /// See [`streak_probability`](Self::streak_probability()).
    pub streak_probability: f64,
}

impl AdaptiveFailureRate {
    /// Default [`margin`](Self::margin()).
    pub const DEFAULT_MARGIN: f64 = 0.1;
    /// Default [`tolerance`](Self::tolerance()): the window is judged after every call,
    /// so a healthy window must stay below the threshold very many times in a row.
    pub const DEFAULT_TOLERANCE: f64 = 6.0;
    /// Default [`floor`](Self::floor()).
    pub const DEFAULT_FLOOR: f64 = 0.1;
    /// Default [`cap`](Self::cap()).
    pub const DEFAULT_CAP: f64 = 0.5;
    /// Default [`horizon`](Self::horizon()), in calls.
    pub const DEFAULT_HORIZON: u32 = 10_000;
    /// Default [`warm_up`](Self::warm_up()), in calls.
    pub const DEFAULT_WARM_UP: u32 = 1_000;
    /// Default [`streak_probability`](Self::streak_probability()).
    pub const DEFAULT_STREAK_PROBABILITY: f64 = 1e-8;
    /// The shortest run of failures the run rule opens on.
    pub const MIN_STREAK: u32 = 3;

    /// The defaults: margin 0.1, tolerance 6, floor 0.1, cap 0.5, a horizon of 10 000
    /// calls, a warm-up of 1 000 calls, and runs of failures a healthy backend makes
    /// with probability 1e-8.
    pub const fn new() -> Self {
        AdaptiveFailureRate {
            margin: Self::DEFAULT_MARGIN,
            tolerance: Self::DEFAULT_TOLERANCE,
            floor: Self::DEFAULT_FLOOR,
            cap: Self::DEFAULT_CAP,
            horizon: Self::DEFAULT_HORIZON,
            warm_up: Self::DEFAULT_WARM_UP,
            streak_probability: Self::DEFAULT_STREAK_PROBABILITY,
        }
    }

    /// How far above the baseline the window's failure rate may go before the breaker
    /// opens (`0 < margin < 1`).
    pub const fn margin(self, margin: f64) -> Self {
        AdaptiveFailureRate { margin, ..self }
    }

    /// How many standard deviations of a healthy window's failure rate the threshold
    /// keeps above the baseline at least (`>= 0`; 0 turns this term off).
    pub const fn tolerance(self, tolerance: f64) -> Self {
        AdaptiveFailureRate { tolerance, ..self }
    }

    /// The lowest threshold (`0 < floor <= cap`).
    pub const fn floor(self, floor: f64) -> Self {
        AdaptiveFailureRate { floor, ..self }
    }

    /// The highest threshold, and the threshold during the warm-up (`floor <= cap <= 1`).
    pub const fn cap(self, cap: f64) -> Self {
        AdaptiveFailureRate { cap, ..self }
    }

    /// About how many calls the baseline averages over (at least the window's size).
    pub const fn horizon(self, calls: u32) -> Self {
        AdaptiveFailureRate {
            horizon: calls,
            ..self
        }
    }

    /// Calls the baseline must have seen before it sets the threshold (at least the
    /// window's size); until then the threshold is the cap.
    pub const fn warm_up(self, calls: u32) -> Self {
        AdaptiveFailureRate {
            warm_up: calls,
            ..self
        }
    }

    /// How unlikely, for a healthy backend, a run of failures must be for the rule to
    /// open on it (`0 <= p < 1`; 0 turns the run rule off).
    pub const fn streak_probability(self, probability: f64) -> Self {
        AdaptiveFailureRate {
            streak_probability: probability,
            ..self
        }
    }

    /// The run of consecutive failures that opens the breaker, given the baseline;
    /// `None` during the warm-up, with the run rule off, or for a baseline of 1.
    pub(crate) fn streak(&self, baseline: Option<f64>) -> Option<u32> {
        let baseline = baseline?;
        if self.streak_probability <= 0.0 || baseline >= 1.0 {
            return None;
        }
        // ln(0) is -inf, so a baseline of 0 gives a run of 0, raised to the minimum;
        // `as` saturates a run too long for a u32.
        let run = (self.streak_probability.ln() / baseline.ln()).ceil() as u32;
        Some(run.max(Self::MIN_STREAK))
    }

    /// The threshold for a window of `calls` calls, given the baseline (`None` during
    /// the warm-up).
    pub(crate) fn threshold(&self, baseline: Option<f64>, calls: u64) -> f64 {
        let Some(baseline) = baseline else {
            return self.cap;
        };
        let spread = if calls == 0 {
            0.0
        } else {
            self.tolerance * (baseline * (1.0 - baseline) / calls as f64).sqrt()
        };
        (baseline + self.margin.max(spread)).clamp(self.floor, self.cap)
    }
}

impl Default for AdaptiveFailureRate {
    fn default() -> Self {
        AdaptiveFailureRate::new()
    }
}

#[cfg(test)]
mod tests {
    use super::AdaptiveFailureRate;

    #[test]
    fn threshold_is_the_cap_while_warming_up() {
        assert_eq!(AdaptiveFailureRate::new().threshold(None, 100), 0.5);
    }

    #[test]
    fn threshold_is_baseline_plus_margin_or_spread_within_floor_and_cap() {
        let rule = AdaptiveFailureRate::new();
        // 0.5 % noise: baseline + margin (0.105); a clean backend gets the floor.
        assert!((rule.threshold(Some(0.005), 100) - 0.105).abs() < 1e-12);
        assert_eq!(rule.threshold(Some(0.0), 100), 0.1);
        // 10 % noise over 100 calls: 6 standard deviations (0.18) beat the margin.
        assert!((rule.threshold(Some(0.1), 100) - 0.28).abs() < 1e-12);
        // A baseline near the cap: the cap.
        assert_eq!(rule.threshold(Some(0.45), 100), 0.5);
    }

    #[test]
    fn streak_is_the_shortest_run_rarer_than_the_probability() {
        let rule = AdaptiveFailureRate::new();
        assert_eq!(rule.streak(None), None);
        assert_eq!(rule.streak(Some(0.0)), Some(3));
        assert_eq!(rule.streak(Some(0.005)), Some(4)); // 0.005^4 = 6e-10
        assert_eq!(rule.streak(Some(0.02)), Some(5));
        assert_eq!(rule.streak(Some(0.2)), Some(12)); // 0.2^11 = 2e-8
        assert_eq!(rule.streak(Some(1.0)), None);
        assert_eq!(rule.streak_probability(0.0).streak(Some(0.2)), None);
    }
}
