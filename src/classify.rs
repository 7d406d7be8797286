//! Deciding whether a call succeeded, failed, or should not count at all.

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

/// The default classification: `Ok` is a success, `Err` a failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DefaultClassifier;

impl<Res, Err> Classify<Res, Err> for DefaultClassifier {
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
