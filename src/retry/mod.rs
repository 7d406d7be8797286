//! Retrying calls through a circuit breaker: a [`tower::retry::Policy`] with exponential
//! backoff and jitter, an optional retry budget, and respect for [`CircuitOpen`].
//!
//! Use [`RetryPolicy`] with `tower::retry::Retry` (or [`RetryPolicy::into_layer`]) as the
//! outermost layer of the resilience stack, so a fast rejection from the breaker is not
//! retried into the sick downstream:
//!
//! ```text
//! Retry( CircuitBreaker( Timeout( ConcurrencyLimit + LoadShed( inner ))))
//! ```
//!
//! [`CircuitOpen`]: crate::CircuitOpen

mod backoff;
mod builder;
mod jitter;
mod policy;
mod predicate;

pub use self::builder::RetryPolicyBuilder;
pub use self::policy::RetryPolicy;
pub use self::predicate::{FindCircuitOpen, RetryIfFn, RetryOnError, RetryPredicate};
