//! Errors: the service's [`Error`], the rejection [`CircuitOpen`], and [`ConfigError`].

use std::error::Error as StdError;
use std::fmt;
use std::time::Duration;

use crate::name::BreakerName;
use crate::state::State;

pub(crate) mod nested;

/// The error type Tower middleware conventionally passes around.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// The error returned by [`CircuitBreakerService`](crate::CircuitBreakerService).
///
/// Either the breaker rejected the call without touching the inner service, or the inner
/// service failed. As the Rust API guidelines ask of a wrapper, its `Display` is a short
/// text of its own and [`source()`](StdError::source) returns the [`CircuitOpen`] or the
/// inner error, so every message appears once along a chain: anyhow's `{:#}` prints
/// `inner service failed: connection refused`, never the inner text twice. Print the
/// whole chain (or match on the variants) to see why a call failed; [`CircuitOpen::find`]
/// finds a rejection along the chain even after other layers boxed this error.
///
/// ```
/// use tower_circuit_breaker::Error;
///
/// fn describe(err: &Error<std::io::Error>) -> String {
///     match err {
///         Error::Open(open) => format!("fail fast, retry after {:?}", open.retry_after),
///         Error::Inner(io) => format!("downstream failed: {io}"),
///     }
/// }
/// # let _ = describe;
/// ```
#[derive(Debug)]
pub enum Error<E> {
    /// The breaker rejected the call; the inner service was not called.
    Open(CircuitOpen),
    /// The inner service returned this error.
    Inner(E),
}

impl<E> Error<E> {
    /// The rejection, if the breaker rejected the call.
    pub fn circuit_open(&self) -> Option<&CircuitOpen> {
        match self {
            Error::Open(open) => Some(open),
            Error::Inner(_) => None,
        }
    }

    /// The inner service's error, if the call reached it and failed.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Open(_) => None,
            Error::Inner(inner) => Some(inner),
        }
    }

    /// Flattens into a [`BoxError`]: the [`CircuitOpen`] itself, or the inner error.
    ///
    /// `Error<BoxError>` cannot implement [`std::error::Error`] (a `BoxError` does not),
    /// so stacks whose inner service already fails with `BoxError` (e.g. a `Timeout`
    /// inside the breaker) use this, for instance through
    /// `ServiceBuilder::map_err(Error::into_box_error)`. [`CircuitOpen::find`] works on
    /// the result.
    pub fn into_box_error(self) -> BoxError
    where
        E: Into<BoxError>,
    {
        match self {
            Error::Open(open) => Box::new(open),
            Error::Inner(inner) => inner.into(),
        }
    }
}

/// The wrapper's own text only: the rejection or the inner error is its `source()`, and
/// a chain printer (anyhow, eyre, tracing) prints it next.
impl<E> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Error::Open(_) => "call rejected without reaching the inner service",
            Error::Inner(_) => "inner service failed",
        })
    }
}

impl<E: StdError + 'static> StdError for Error<E> {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            Error::Open(open) => Some(open),
            Error::Inner(inner) => Some(inner),
        }
    }
}

impl<E> From<CircuitOpen> for Error<E> {
    fn from(open: CircuitOpen) -> Self {
        Error::Open(open)
    }
}

/// The breaker rejected a call without calling the inner service.
///
/// Building one allocates nothing: the name is a [`BreakerName`], which a string
/// literal given to [`ConfigBuilder::name`](crate::ConfigBuilder::name) (or the
/// default name) fills with no reference count at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CircuitOpen {
    /// The breaker's name (see [`ConfigBuilder::name`](crate::ConfigBuilder::name)).
    pub name: BreakerName,
    /// The state that rejected the call: `Open`, `HalfOpen` (all probe permits taken),
    /// `ForcedOpen`, or `Closed` while [ramping up](crate::ConfigBuilder::ramp_up) after
    /// a recovery.
    pub state: State,
    /// How long until a call may be admitted again, when the breaker knows: the rest of
    /// the open duration (or the time to the next probe, with a
    /// [`probe_interval`](crate::ConfigBuilder::probe_interval)), or of the half-open
    /// probe wait. `None` when forced open, and while ramping up (the share admitted
    /// grows continuously; there is no moment to come back at).
    pub retry_after: Option<Duration>,
}

impl CircuitOpen {
    /// Finds a `CircuitOpen` in `error` or anywhere along its [`source`](StdError::source)
    /// chain, e.g. after `Timeout` or `Buffer` boxed the breaker's error.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_circuit_breaker::{BoxError, CircuitOpen, Error, State};
    ///
    /// let open = CircuitOpen { name: "db".into(), state: State::Open, retry_after: Some(Duration::from_secs(3)) };
    /// let boxed: BoxError = Box::new(Error::<std::io::Error>::Open(open));
    /// let found = CircuitOpen::find(&*boxed).expect("rejection in the chain");
    /// assert_eq!(found.retry_after, Some(Duration::from_secs(3)));
    /// ```
    pub fn find<'a>(error: &'a (dyn StdError + 'static)) -> Option<&'a CircuitOpen> {
        let mut current = Some(error);
        while let Some(err) = current {
            if let Some(open) = err.downcast_ref::<CircuitOpen>() {
                return Some(open);
            }
            current = err.source();
        }
        None
    }
}

impl fmt::Display for CircuitOpen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.state {
            // Closed rejects only while ramping up after a recovery.
            State::Closed => write!(
                f,
                "circuit breaker `{}` is ramping up after a recovery and shed this call",
                self.name
            )?,
            state => write!(f, "circuit breaker `{}` is {state}", self.name)?,
        }
        if let Some(after) = self.retry_after {
            // Whole units ("2s", "150ms"): the nanoseconds left are noise in a log line.
            write!(f, "; retry after {after:.0?}")?;
        }
        Ok(())
    }
}

impl StdError for CircuitOpen {}

/// A configuration value was rejected by [`ConfigBuilder::build`](crate::ConfigBuilder::build).
///
/// The message names the field, the offending value and the rule it breaks:
///
/// ```
/// use tower_circuit_breaker::{Config, ConfigError};
///
/// let err = Config::builder().failure_rate(1.5).build().unwrap_err();
/// assert_eq!(err.field(), "failure_rate");
/// assert_eq!(err.to_string(), "invalid `failure_rate` = 1.5: must be in (0.0, 1.0]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A field holds a value outside its allowed range.
    #[error("invalid `{field}` = {value}: {rule}")]
    Invalid {
        /// The builder setter / configuration key, e.g. `"half_open_permits"`.
        field: &'static str,
        /// The rejected value, rendered with `Debug`.
        value: String,
        /// The rule the value breaks.
        rule: &'static str,
    },
    /// A configuration file (feature `serde`) has a key that is unknown, of the wrong
    /// type, or holds a value that fails validation.
    #[error("invalid configuration at `{path}`: {message}")]
    File {
        /// The key path as the file wrote it (alias and table included), e.g.
        /// `"breakers.payments.circuit_breaker_timeout"`, relative to where the
        /// configuration was read (an embedded `RegistryConfig`: its own key); empty for
        /// a syntax error.
        path: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn invalid(field: &'static str, value: impl fmt::Debug, rule: &'static str) -> Self {
        ConfigError::Invalid {
            field,
            value: format!("{value:?}"),
            rule,
        }
    }

    /// The name of the offending field (the key path, for a file).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Invalid { field, .. } => field,
            ConfigError::File { path, .. } => path,
        }
    }
}
