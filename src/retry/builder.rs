//! [`RetryPolicyBuilder`]: the settings of a [`RetryPolicy`], validated.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tower::retry::budget::{Budget, TpsBudget};

use super::backoff::Backoff;
use super::jitter::Seeds;
use super::predicate::{RetryIfFn, RetryOnError};
use super::RetryPolicy;
use crate::error::ConfigError;

/// Builds a [`RetryPolicy`]; [`build`](RetryPolicyBuilder::build) validates every value.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::retry::RetryPolicy;
///
/// let policy = RetryPolicy::builder()
///     .base_delay(Duration::from_millis(20))
///     .max_delay(Duration::from_secs(2))
///     .multiplier(3.0)
///     .jitter(1.0)                                   // "full jitter"
///     .max_attempts(4)
///     .budget(Duration::from_secs(10), 10, 0.2)      // retries <= 20% of calls + 10/s
///     .wait_retry_after(true)                        // wait out short open periods
///     .build()?;
/// assert_eq!(policy.max_attempts(), 4);
///
/// let err = RetryPolicy::builder().jitter(1.5).build().unwrap_err();
/// assert_eq!(err.field(), "jitter");
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
pub struct RetryPolicyBuilder<P = RetryOnError> {
    backoff: Backoff,
    max_attempts: u32,
    wait_retry_after: bool,
    budget: Option<BudgetSpec>,
    seed: Option<u64>,
    predicate: P,
}

enum BudgetSpec {
    Tps {
        ttl: Duration,
        min_per_sec: u32,
        retry_percent: f32,
    },
    Custom(Arc<dyn Budget + Send + Sync>),
}

impl Default for RetryPolicyBuilder {
    fn default() -> Self {
        RetryPolicyBuilder {
            backoff: Backoff {
                base_delay: RetryPolicyBuilder::DEFAULT_BASE_DELAY,
                max_delay: RetryPolicyBuilder::DEFAULT_MAX_DELAY,
                multiplier: RetryPolicyBuilder::DEFAULT_MULTIPLIER,
                jitter: RetryPolicyBuilder::DEFAULT_JITTER,
            },
            max_attempts: RetryPolicyBuilder::DEFAULT_MAX_ATTEMPTS,
            wait_retry_after: false,
            budget: None,
            seed: None,
            predicate: RetryOnError,
        }
    }
}

impl RetryPolicyBuilder {
    /// Default wait before the first retry.
    pub const DEFAULT_BASE_DELAY: Duration = Duration::from_millis(50);
    /// Default longest wait between attempts.
    pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(2);
    /// Default growth of the wait per retry.
    pub const DEFAULT_MULTIPLIER: f64 = 2.0;
    /// Default jitter: each wait is shortened by a random 0-50% ("equal jitter").
    pub const DEFAULT_JITTER: f64 = 0.5;
    /// Default attempts per request, the first call included.
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
}

impl<P> RetryPolicyBuilder<P> {
    /// The wait before the first retry, before jitter (must be longer than zero).
    pub fn base_delay(mut self, delay: Duration) -> Self {
        self.backoff.base_delay = delay;
        self
    }

    /// The longest wait between two attempts (at least `base_delay`). Also bounds how
    /// long [`wait_retry_after`](Self::wait_retry_after) may wait.
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.backoff.max_delay = delay;
        self
    }

    /// How much each wait grows over the previous one (finite, `>= 1.0`).
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.backoff.multiplier = multiplier;
        self
    }

    /// Shortens each wait by a random fraction in `[0, fraction]` (`0.0..=1.0`): `0.0`
    /// waits exactly the nominal delay, `1.0` anywhere between zero and it.
    pub fn jitter(mut self, fraction: f64) -> Self {
        self.backoff.jitter = fraction;
        self
    }

    /// The most attempts per request, the first call included (`>= 1`; `1` never retries).
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// A retry budget ([`TpsBudget`]): retries may add `retry_percent` of the recent
    /// requests (e.g. `0.2` for 20%) plus `min_per_sec` retries per second, counted over
    /// the last `ttl` (1 to 60 s). Bounds the extra load retries put on a sick downstream.
    pub fn budget(mut self, ttl: Duration, min_per_sec: u32, retry_percent: f32) -> Self {
        self.budget = Some(BudgetSpec::Tps {
            ttl,
            min_per_sec,
            retry_percent,
        });
        self
    }

    /// Uses your own [`Budget`] (shared by every clone of the policy).
    pub fn custom_budget(mut self, budget: impl Budget + Send + Sync + 'static) -> Self {
        self.budget = Some(BudgetSpec::Custom(Arc::new(budget)));
        self
    }

    /// When a breaker rejects an attempt with a known `retry_after` no longer than
    /// `max_delay`, waits that long (plus a little jitter) and tries again instead of
    /// returning the rejection. Off by default: an open breaker fails fast.
    pub fn wait_retry_after(mut self, wait: bool) -> Self {
        self.wait_retry_after = wait;
        self
    }

    /// Seeds the jitter generator, for reproducible delays. By default the seed comes from
    /// the clock and the process id, so separate processes do not jitter alike.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Retries only the results `predicate` accepts (see [`RetryPredicate`](super::RetryPredicate)).
    /// For a closure, prefer [`retry_if_fn`](Self::retry_if_fn), which needs no
    /// parameter annotations.
    pub fn retry_if<Q>(self, predicate: Q) -> RetryPolicyBuilder<Q> {
        RetryPolicyBuilder {
            backoff: self.backoff,
            max_attempts: self.max_attempts,
            wait_retry_after: self.wait_retry_after,
            budget: self.budget,
            seed: self.seed,
            predicate,
        }
    }

    /// Retries only the results the closure `predicate` accepts. Its parameter type comes
    /// from this method's bound (no annotation needed), and `Res` and `E` are inferred
    /// from the service the policy retries, or reported as missing at this call.
    ///
    /// ```
    /// use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
    /// use tower_circuit_breaker::retry::RetryPolicy;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BoxError> {
    /// let policy = RetryPolicy::builder()
    ///     .retry_if_fn(|result| matches!(result, Ok(status) if *status == 503))
    ///     .build()?;
    /// let svc = ServiceBuilder::new()
    ///     .layer(policy.into_layer())
    ///     .service(service_fn(|_: ()| async { Ok::<u16, BoxError>(200) }));
    /// assert_eq!(svc.oneshot(()).await?, 200);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Without anything that tells the types, the error is reported here:
    ///
    /// ```compile_fail,E0282
    /// use tower_circuit_breaker::retry::RetryPolicy;
    ///
    /// let policy = RetryPolicy::builder()
    ///     .retry_if_fn(|result| matches!(result, Err(e) if e.kind() == std::io::ErrorKind::TimedOut)) // error[E0282]
    ///     .build();
    /// ```
    pub fn retry_if_fn<Res, E, F>(self, predicate: F) -> RetryPolicyBuilder<RetryIfFn<F, Res, E>>
    where
        F: Fn(Result<&Res, &E>) -> bool,
    {
        self.retry_if(RetryIfFn::new(predicate))
    }

    /// Validates the settings and builds the policy.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid field: `base_delay`, `max_delay`,
    /// `multiplier`, `jitter`, `max_attempts`, `budget.ttl`, `budget.min_per_sec` or
    /// `budget.retry_percent`.
    pub fn build(self) -> Result<RetryPolicy<P>, ConfigError> {
        let backoff = self.backoff;
        if backoff.base_delay.is_zero() {
            return Err(ConfigError::invalid(
                "base_delay",
                backoff.base_delay,
                "must be longer than zero",
            ));
        }
        if backoff.max_delay < backoff.base_delay {
            return Err(ConfigError::invalid(
                "max_delay",
                backoff.max_delay,
                "must not be shorter than base_delay",
            ));
        }
        if !backoff.multiplier.is_finite() || backoff.multiplier < 1.0 {
            return Err(ConfigError::invalid(
                "multiplier",
                backoff.multiplier,
                "must be a finite number >= 1.0",
            ));
        }
        if !(0.0..=1.0).contains(&backoff.jitter) {
            return Err(ConfigError::invalid(
                "jitter",
                backoff.jitter,
                "must be in [0.0, 1.0]",
            ));
        }
        if self.max_attempts == 0 {
            return Err(ConfigError::invalid(
                "max_attempts",
                self.max_attempts,
                "must be at least 1 (the first call)",
            ));
        }
        let budget = match self.budget {
            None => None,
            Some(BudgetSpec::Custom(budget)) => Some(budget),
            Some(BudgetSpec::Tps {
                ttl,
                min_per_sec,
                retry_percent,
            }) => Some(tps_budget(ttl, min_per_sec, retry_percent)?),
        };
        Ok(RetryPolicy::from_settings(
            backoff,
            self.max_attempts,
            self.wait_retry_after,
            budget,
            self.seed.map_or_else(Seeds::from_entropy, Seeds::new),
            self.predicate,
        ))
    }
}

/// A [`TpsBudget`], after checking the values its constructor would panic on.
fn tps_budget(
    ttl: Duration,
    min_per_sec: u32,
    retry_percent: f32,
) -> Result<Arc<dyn Budget + Send + Sync>, ConfigError> {
    if ttl < Duration::from_secs(1) || ttl > Duration::from_secs(60) {
        return Err(ConfigError::invalid(
            "budget.ttl",
            ttl,
            "must be between 1 s and 60 s",
        ));
    }
    if min_per_sec >= i32::MAX as u32 {
        return Err(ConfigError::invalid(
            "budget.min_per_sec",
            min_per_sec,
            "must be below 2147483647",
        ));
    }
    if !(0.0..=1000.0).contains(&retry_percent) {
        return Err(ConfigError::invalid(
            "budget.retry_percent",
            retry_percent,
            "must be in [0.0, 1000.0]",
        ));
    }
    Ok(Arc::new(TpsBudget::new(ttl, min_per_sec, retry_percent)))
}

impl<P> fmt::Debug for RetryPolicyBuilder<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicyBuilder")
            .field("backoff", &self.backoff)
            .field("max_attempts", &self.max_attempts)
            .field("wait_retry_after", &self.wait_retry_after)
            .field("budget", &self.budget.is_some())
            .field("seed", &self.seed)
            .finish()
    }
}
