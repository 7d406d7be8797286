//! [`RetryPolicy`]: exponential backoff with jitter that understands [`CircuitOpen`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Sleep;
use tower::retry::budget::Budget;
use tower::retry::{Policy, RetryLayer};

use super::backoff::{shrink, Backoff};
use super::builder::RetryPolicyBuilder;
use super::jitter::{Seeds, SplitMix64};
use super::predicate::{FindCircuitOpen, RetryOnError, RetryPredicate};
use crate::error::CircuitOpen;

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
/// use tower_circuit_breaker::{BoxError, CircuitBreakerLayer, Config};
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
///     .layer(breaker.box_errors())
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

impl RetryPolicy {
    /// A builder starting from the documented defaults.
    pub fn builder() -> RetryPolicyBuilder {
        RetryPolicyBuilder::default()
    }
}

impl<P> RetryPolicy<P> {
    /// A policy from validated settings (see [`RetryPolicyBuilder::build`]).
    pub(super) fn from_settings(
        backoff: Backoff,
        max_attempts: u32,
        wait_retry_after: bool,
        budget: Option<Arc<dyn Budget + Send + Sync>>,
        seeds: Seeds,
        predicate: P,
    ) -> Self {
        RetryPolicy {
            shared: Arc::new(Shared {
                backoff,
                max_attempts,
                wait_retry_after,
                budget,
                seeds,
            }),
            predicate,
            retries: 0,
            rng: SplitMix64::new(0),
        }
    }

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
