//! Deciding whether a call succeeded, failed, or should not count at all.

use std::any::Any;

use tower::load_shed::error::Overloaded;

use crate::BoxError;

/// What a finished call says about the downstream's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The downstream did its job.
    Success,
    /// The downstream is (part of) the problem: counts toward the trip rules.
    Failure,
    /// Says nothing about the downstream (e.g. a 4xx caused by the caller, or a cancelled
    /// call): neither counts nor resets any counter, and frees a half-open permit.
    Ignored,
}

/// Classifies a call's result into an [`Outcome`].
///
/// Implemented by [`DefaultClassifier`] (`Ok` succeeds, `Err` fails) and by every
/// `Fn(Result<&Res, &Err>) -> Outcome` closure:
///
/// ```
/// use tower_circuit_breaker::{CircuitBreakerLayer, Config, Outcome};
///
/// // A "not found" is the caller's business, not a sign of a sick backend.
/// let layer = CircuitBreakerLayer::new(Config::default()).classify(
///     |result: Result<&String, &std::io::Error>| match result {
///         Ok(_) => Outcome::Success,
///         Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Ignored,
///         Err(_) => Outcome::Failure,
///     },
/// );
/// # let _ = layer;
/// ```
pub trait Classify<Res, Err> {
    /// The outcome of one call.
    fn classify(&self, result: Result<&Res, &Err>) -> Outcome;

    /// How long the downstream asked callers to stay away after this failed result
    /// (e.g. an HTTP `Retry-After`), if it did. Asked only for results classified
    /// [`Outcome::Failure`]; should that failure open the breaker, it stays open at
    /// least this long. The default asks for nothing.
    #[inline]
    fn retry_after(&self, result: Result<&Res, &Err>) -> Option<std::time::Duration> {
        let _ = result;
        None
    }
}

/// The default classification: `Ok` is a success, `Err` a failure, except a bulkhead
/// rejection, which is [`Ignored`](Outcome::Ignored).
///
/// A [`tower::load_shed::error::Overloaded`] error, bare or boxed as a [`BoxError`] (as
/// `LoadShed` returns it), means *we* are full, not that the downstream is sick: counting
/// it would let a traffic burst trip the breaker in front of a healthy backend. Use
/// [`EveryErrorFails`] (or your own [`Classify`]) to count it as a failure instead.
///
/// The check is two type comparisons that the compiler resolves per error type, made only
/// for `Err` results: the success path is unchanged and nothing allocates.
///
/// ```
/// use tower::load_shed::error::Overloaded;
/// use tower_circuit_breaker::{BoxError, Classify, DefaultClassifier, EveryErrorFails, Outcome};
///
/// let shed: BoxError = Box::new(Overloaded::new());
/// let result: Result<&(), &BoxError> = Err(&shed);
/// assert_eq!(DefaultClassifier.classify(result), Outcome::Ignored);
/// assert_eq!(EveryErrorFails.classify(result), Outcome::Failure);
///
/// let sick: BoxError = "connection refused".into();
/// let result: Result<&(), &BoxError> = Err(&sick);
/// assert_eq!(DefaultClassifier.classify(result), Outcome::Failure);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<Res, Err: 'static> Classify<Res, Err> for DefaultClassifier {
    #[inline]
    fn classify(&self, result: Result<&Res, &Err>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(error) if is_overloaded(error) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// Whether `error` is a load-shed rejection, bare or boxed.
#[inline]
fn is_overloaded<E: 'static>(error: &E) -> bool {
    let error: &dyn Any = error;
    if error.is::<Overloaded>() {
        return true;
    }
    match error.downcast_ref::<BoxError>() {
        Some(boxed) => boxed.is::<Overloaded>(),
        None => false,
    }
}

/// Classifies every `Err` as a failure and every `Ok` as a success, load-shed rejections
/// included (unlike [`DefaultClassifier`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EveryErrorFails;

impl<Res, Err> Classify<Res, Err> for EveryErrorFails {
    #[inline]
    fn classify(&self, result: Result<&Res, &Err>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

impl<F, Res, Err> Classify<Res, Err> for F
where
    F: Fn(Result<&Res, &Err>) -> Outcome,
{
    fn classify(&self, result: Result<&Res, &Err>) -> Outcome {
        self(result)
    }
}
