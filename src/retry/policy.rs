//! [`RetryPolicy`]: exponential backoff with jitter that understands [`CircuitOpen`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Sleep;
use tower::retry::budget::{Budget, TpsBudget};
use tower::retry::{Policy, RetryLayer};

use super::jitter::{Seeds, SplitMix64};
use super::predicate::{FindCircuitOpen, RetryOnError, RetryPredicate};
use crate::{CircuitOpen, ConfigError};

/// A [`tower::retry::Policy`]: retries failed attempts after an exponentially growing,
/// jittered delay, up to a number of attempts and an optional retry budget, and never
/// retries into an open circuit breaker.
///
/// - The `k`-th retry (from 0) waits `min(base_delay * multiplier^k, max_delay)`, shortened
///   by a random fraction of up to `jitter` (drawn from a small seeded generator, one per
///   request, so concurrent callers spread out). The wait is a Tokio
///   [`sleep`](tokio::time::sleep), so paused-time tests drive it.
/// - At most `max_attempts` attempts are made in all (the first call plus the retries).
/// - With a [`budget`](RetryPolicyBuilder::budget), each request deposits into it once and
///   each retry withdraws; an empty budget stops retries, so a sick downstream is not
///   hit with a multiple of the normal load.
/// - A [`CircuitOpen`] rejection (found through boxed errors too, see [`FindCircuitOpen`])
///   is returned at once: the breaker already said the downstream is sick. With
///   [`wait_retry_after`](RetryPolicyBuilder::wait_retry_after), the policy instead waits
///   the rejection's `retry_after` when it is known and not longer than `max_delay`.
///
/// Place the retry outside the breaker, and the timeout inside it:
/// `Retry( CircuitBreaker( Timeout( ConcurrencyLimit + LoadShed( inner ))))`.
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::sync::Arc;
/// use std::time::Duration;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_circuit_breaker::retry::RetryPolicy;
/// use tower_circuit_breaker::{BoxError, CircuitBreakerLayer, Config, Error};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() -> Result<(), BoxError> {
/// let policy = RetryPolicy::builder()
///     .base_delay(Duration::from_millis(50))
///     .max_delay(Duration::from_secs(1))
///     .max_attempts(3)
///     .build()?;
/// let breaker = CircuitBreakerLayer::new(Config::builder().consecutive_failures(5).build()?);
///
/// // A downstream whose first two calls fail.
/// let calls = Arc::new(AtomicU32::new(0));
/// let counter = calls.clone();
/// let flaky = service_fn(move |req: u32| {
///     let n = counter.fetch_add(1, Ordering::SeqCst);
///     async move { if n < 2 { Err(BoxError::from("transient")) } else { Ok(req * 2) } }
/// });
/// let svc = ServiceBuilder::new()
///     .layer(policy.into_layer())
///     .map_err(Error::<BoxError>::into_box_error)
///     .layer(breaker)
///     .service(flaky);
///
/// assert_eq!(svc.oneshot(21).await?, 42);
/// assert_eq!(calls.load(Ordering::SeqCst), 3); // two retries
/// # Ok(())
/// # }
/// ```
pub struct RetryPolicy<P = RetryOnError> {
    shared: Arc<Shared>,
    predicate: P,
    /// Retries made so far for the request this clone serves.
    retries: u32,
    rng: SplitMix64,
}

/// What every clone of a policy shares.
struct Shared {
    backoff: Backoff,
    max_attempts: u32,
    wait_retry_after: bool,
    budget: Option<Arc<dyn Budget + Send + Sync>>,
    seeds: Seeds,
}

#[derive(Debug, Clone, Copy)]
struct Backoff {
    base_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    jitter: f64,
}

impl Backoff {
    /// The wait before retry number `retry` (0-based), with jitter drawn from `unit`, a
    /// uniform sample in `[0, 1)`.
    fn delay(&self, retry: u32, unit: f64) -> Duration {
        let exponent = i32::try_from(retry).unwrap_or(i32::MAX);
        let scaled = self.base_delay.as_secs_f64() * self.multiplier.powi(exponent);
        let nominal = match Duration::try_from_secs_f64(scaled) {
            Ok(nominal) if nominal < self.max_delay => nominal,
            _ => self.max_delay,
        };
        shrink(nominal, 1.0 - self.jitter * unit)
    }
}

/// `duration * factor` for a `factor` in `[0, 1]`, without the panics of
/// [`Duration::mul_f64`] near `Duration::MAX` (where f64 rounding overshoots).
fn shrink(duration: Duration, factor: f64) -> Duration {
    Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
        .map_or(duration, |scaled| scaled.min(duration))
}

impl RetryPolicy {
    /// A builder starting from the documented defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::default()
    }
}

impl<P> RetryPolicy<P> {
    /// Wraps services in [`tower::retry::Retry`] with this policy.
    pub fn into_layer(self) -> RetryLayer<Self> {
        RetryLayer::new(self)
    }

    /// The most attempts a request gets, the first call included.
    pub fn max_attempts(&self) -> u32 {
        self.shared.max_attempts
    }

    /// The wait before the first retry, before jitter.
    pub fn base_delay(&self) -> Duration {
        self.shared.backoff.base_delay
    }

    /// The longest wait between two attempts.
    pub fn max_delay(&self) -> Duration {
        self.shared.backoff.max_delay
    }

    /// How long to wait before retrying after `result`, or `None` to stop.
    fn next_delay<Res, E>(&mut self, result: Result<&Res, &E>) -> Option<Duration>
    where
        P: RetryPredicate<Res, E>,
        E: FindCircuitOpen,
    {
        if self.retries + 1 >= self.shared.max_attempts {
            return None;
        }
        if let Some(open) = result.err().and_then(FindCircuitOpen::find_circuit_open) {
            return self.wait_for(open);
        }
        if !self.predicate.should_retry(result) {
            return None;
        }
        let unit = self.rng.next_unit();
        Some(self.shared.backoff.delay(self.retries, unit))
    }

    /// The wait before retrying a breaker rejection: its `retry_after` plus a little
    /// jitter (so waiting callers do not all arrive at once), if configured and bounded.
    fn wait_for(&mut self, open: &CircuitOpen) -> Option<Duration> {
        let backoff = self.shared.backoff;
        let after = open
            .retry_after
            .filter(|after| self.shared.wait_retry_after && *after <= backoff.max_delay)?;
        let spread = shrink(backoff.base_delay, backoff.jitter * self.rng.next_unit());
        Some(after.saturating_add(spread).min(backoff.max_delay))
    }
}

impl<P, Req, Res, E> Policy<Req, Res, E> for RetryPolicy<P>
where
    P: RetryPredicate<Res, E>,
    E: FindCircuitOpen,
    Req: Clone,
{
    type Future = Sleep;

    fn retry(&mut self, _request: &mut Req, result: &mut Result<Res, E>) -> Option<Sleep> {
        if self.retries == 0 {
            if let Some(budget) = &self.shared.budget {
                budget.deposit();
            }
        }
        let delay = self.next_delay(result.as_ref())?;
        if let Some(budget) = &self.shared.budget {
            if !budget.withdraw() {
                return None;
            }
        }
        self.retries += 1;
        Some(tokio::time::sleep(delay))
    }

    fn clone_request(&mut self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

impl<P: Clone> Clone for RetryPolicy<P> {
    /// `tower::retry::Retry` clones its policy for every request: each clone gets its own
    /// jitter generator (one relaxed atomic add), and nothing is allocated.
    fn clone(&self) -> Self {
        RetryPolicy {
            shared: self.shared.clone(),
            predicate: self.predicate.clone(),
            retries: self.retries,
            rng: self.shared.seeds.generator(),
        }
    }
}

impl<P> fmt::Debug for RetryPolicy<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("backoff", &self.shared.backoff)
            .field("max_attempts", &self.shared.max_attempts)
            .field("wait_retry_after", &self.shared.wait_retry_after)
            .field("budget", &self.shared.budget.is_some())
            .field("retries", &self.retries)
            .finish()
    }
}

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

    /// Retries only the results `predicate` accepts (see [`RetryPredicate`]).
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
        Ok(RetryPolicy {
            shared: Arc::new(Shared {
                backoff,
                max_attempts: self.max_attempts,
                wait_retry_after: self.wait_retry_after,
                budget,
                seeds: self.seed.map_or_else(Seeds::from_entropy, Seeds::new),
            }),
            predicate: self.predicate,
            retries: 0,
            rng: SplitMix64::new(0),
        })
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
