//! Deciding whether a call succeeded, failed, or should not count at all.

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;

use tower::load_shed::error::Overloaded;

use crate::error::BoxError;

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
/// `Fn(Result<&Res, &Err>) -> Outcome` closure. A closure given to
/// [`classify`](crate::CircuitBreakerLayer::classify) needs its parameter type
/// written out (Rust infers a closure's signature only from an `Fn` bound at the call);
/// [`classify_fn`](crate::CircuitBreakerLayer::classify_fn) takes it without:
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
            Err(error) if is_overloaded(error) || is_rejection(error) => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        }
    }
}

/// Whether `error` is or carries another circuit breaker's rejection: that breaker
/// did not call its downstream, so the result says nothing about it.
#[cold]
fn is_rejection<E: 'static>(error: &E) -> bool {
    crate::error::nested::find(error).is_some()
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

/// A closure classifier that knows the result type it classifies, built by
/// [`CircuitBreakerLayer::classify_fn`](crate::CircuitBreakerLayer::classify_fn).
///
/// A closure handed to a method whose bound is `Fn(Result<&Res, &Err>) -> Outcome`
/// gets that signature from the bound, so it needs no parameter annotations; and
/// `Res` and `Err` are inferred from the service the layer wraps, or reported as
/// missing right at the call.
pub struct ClassifyFn<F, Res, Err> {
    classify: F,
    /// The classified types, without owning any (and `Send`/`Sync` whatever they are).
    types: PhantomData<fn(&Res, &Err)>,
}

impl<F, Res, Err> ClassifyFn<F, Res, Err>
where
    F: Fn(Result<&Res, &Err>) -> Outcome,
{
    /// Wraps `classify`.
    pub fn new(classify: F) -> Self {
        ClassifyFn {
            classify,
            types: PhantomData,
        }
    }
}

impl<F, Res, Err> Classify<Res, Err> for ClassifyFn<F, Res, Err>
where
    F: Fn(Result<&Res, &Err>) -> Outcome,
{
    #[inline]
    fn classify(&self, result: Result<&Res, &Err>) -> Outcome {
        (self.classify)(result)
    }
}

impl<F: Clone, Res, Err> Clone for ClassifyFn<F, Res, Err> {
    fn clone(&self) -> Self {
        ClassifyFn {
            classify: self.classify.clone(),
            types: PhantomData,
        }
    }
}

impl<F: Copy, Res, Err> Copy for ClassifyFn<F, Res, Err> {}

impl<F, Res, Err> fmt::Debug for ClassifyFn<F, Res, Err> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassifyFn").finish_non_exhaustive()
    }
}
