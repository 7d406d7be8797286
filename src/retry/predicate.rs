//! Which results a [`RetryPolicy`](super::RetryPolicy) retries, and how it recognises a
//! breaker's fast rejection inside an error.

use std::error::Error as StdError;
use std::fmt;
use std::marker::PhantomData;

use crate::error::{CircuitOpen, Error};

/// Decides whether a finished attempt should be retried.
///
/// Implemented by [`RetryOnError`] (every `Err`, the default) and by every
/// `Fn(Result<&Res, &E>) -> bool` closure, so responses can be retried too:
///
/// ```
/// use tower_circuit_breaker::retry::RetryPolicy;
///
/// // Retry errors and "503"-like responses.
/// let policy = RetryPolicy::builder()
///     .retry_if(|result: Result<&u16, &std::io::Error>| match result {
///         Ok(status) => *status == 503,
///         Err(_) => true,
///     })
///     .build()?;
/// # let _ = policy;
/// # Ok::<(), tower_circuit_breaker::ConfigError>(())
/// ```
///
/// The predicate never sees a [`CircuitOpen`] rejection: the policy handles those itself
/// (see [`RetryPolicyBuilder::wait_retry_after`](super::RetryPolicyBuilder::wait_retry_after)).
pub trait RetryPredicate<Res, E> {
    /// Whether the attempt that produced `result` should be retried.
    fn should_retry(&self, result: Result<&Res, &E>) -> bool;
}

/// The default [`RetryPredicate`]: retries every `Err`, never an `Ok`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RetryOnError;

impl<Res, E> RetryPredicate<Res, E> for RetryOnError {
    fn should_retry(&self, result: Result<&Res, &E>) -> bool {
        result.is_err()
    }
}

impl<F, Res, E> RetryPredicate<Res, E> for F
where
    F: Fn(Result<&Res, &E>) -> bool,
{
    fn should_retry(&self, result: Result<&Res, &E>) -> bool {
        self(result)
    }
}

/// A closure predicate that knows the result type it judges, built by
/// [`RetryPolicyBuilder::retry_if_fn`](super::RetryPolicyBuilder::retry_if_fn): the
/// closure needs no parameter annotations, and a type that cannot be inferred is
/// reported at that call.
pub struct RetryIfFn<F, Res, E> {
    predicate: F,
    /// The judged types, without owning any (and `Send`/`Sync` whatever they are).
    types: PhantomData<fn(&Res, &E)>,
}

impl<F, Res, E> RetryIfFn<F, Res, E>
where
    F: Fn(Result<&Res, &E>) -> bool,
{
    /// Wraps `predicate`.
    pub fn new(predicate: F) -> Self {
        RetryIfFn {
            predicate,
            types: PhantomData,
        }
    }
}

impl<F, Res, E> RetryPredicate<Res, E> for RetryIfFn<F, Res, E>
where
    F: Fn(Result<&Res, &E>) -> bool,
{
    fn should_retry(&self, result: Result<&Res, &E>) -> bool {
        (self.predicate)(result)
    }
}

impl<F: Clone, Res, E> Clone for RetryIfFn<F, Res, E> {
    fn clone(&self) -> Self {
        RetryIfFn {
            predicate: self.predicate.clone(),
            types: PhantomData,
        }
    }
}

impl<F, Res, E> fmt::Debug for RetryIfFn<F, Res, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryIfFn").finish_non_exhaustive()
    }
}

/// Errors that may carry a circuit breaker's [`CircuitOpen`] rejection.
///
/// A [`RetryPolicy`](super::RetryPolicy) needs it to never hammer an open breaker.
/// Implemented for the breaker's own [`Error<E>`], for [`CircuitOpen`], and for boxed
/// errors (`BoxError` and friends), which are searched along their
/// [`source`](StdError::source) chain with [`CircuitOpen::find`] so a rejection is still
/// found after `Timeout`, `Buffer` or `map_err` boxed it. Your own error type implements
/// it in one line:
///
/// ```
/// use tower_circuit_breaker::CircuitOpen;
/// use tower_circuit_breaker::retry::FindCircuitOpen;
///
/// #[derive(Debug)]
/// enum ClientError {
///     Rejected(CircuitOpen),
///     Io(std::io::Error),
/// }
///
/// impl FindCircuitOpen for ClientError {
///     fn find_circuit_open(&self) -> Option<&CircuitOpen> {
///         match self {
///             ClientError::Rejected(open) => Some(open),
///             ClientError::Io(_) => None,
///         }
///     }
/// }
/// # let _ = ClientError::Io(std::io::ErrorKind::Other.into());
/// ```
pub trait FindCircuitOpen {
    /// The breaker rejection this error is or wraps, if any.
    fn find_circuit_open(&self) -> Option<&CircuitOpen>;
}

impl FindCircuitOpen for CircuitOpen {
    fn find_circuit_open(&self) -> Option<&CircuitOpen> {
        Some(self)
    }
}

/// Finds the rejection at any depth: this breaker's own, or one from a breaker further
/// in, inside `Error::Inner` (typed, as `Error<Error<E>>`, or boxed).
impl<E: 'static> FindCircuitOpen for Error<E> {
    fn find_circuit_open(&self) -> Option<&CircuitOpen> {
        match self {
            Error::Open(open) => Some(open),
            Error::Inner(inner) => crate::error::nested::find(inner),
        }
    }
}

impl FindCircuitOpen for Box<dyn StdError + Send + Sync> {
    fn find_circuit_open(&self) -> Option<&CircuitOpen> {
        CircuitOpen::find(&**self)
    }
}

impl FindCircuitOpen for Box<dyn StdError + Send> {
    fn find_circuit_open(&self) -> Option<&CircuitOpen> {
        CircuitOpen::find(&**self)
    }
}

impl FindCircuitOpen for Box<dyn StdError> {
    fn find_circuit_open(&self) -> Option<&CircuitOpen> {
        CircuitOpen::find(&**self)
    }
}

impl FindCircuitOpen for std::convert::Infallible {
    fn find_circuit_open(&self) -> Option<&CircuitOpen> {
        match *self {}
    }
}
