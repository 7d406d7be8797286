//! gRPC support (feature `tonic`): a rejection as `UNAVAILABLE` with retry pushback.
//!
//! tonic knows nothing of [`CircuitOpen`]: a rejection that reaches it as an opaque
//! error becomes `Code::Unknown` carrying the breaker's text. Converted here, the
//! rejection reaches the caller as a [`Status`] with
//!
//! - code `UNAVAILABLE`, the code gRPC reserves for a transient condition worth
//!   retrying with a backoff (the code retry policies usually list as retryable);
//! - the fixed message `service unavailable; retry later`: no breaker name, no state,
//!   no duration, nothing about the server's internals;
//! - metadata [`grpc-retry-pushback-ms`](RETRY_PUSHBACK_MS), the server pushback of the
//!   gRPC retry design (A6): how long until the breaker admits calls again, in whole
//!   milliseconds rounded up, so a caller that waits that long finds it ready. It is
//!   omitted when the breaker cannot tell (forced open): the design then lets the
//!   client fall back to its own backoff;
//! - the [`CircuitOpen`] as its [`source`](std::error::Error::source), so
//!   [`CircuitOpen::find`] finds the rejection on the status, or on the status boxed.
//!
//! One layer does it, on either side of the wire, because both of tonic's paths turn a
//! service's error into a status by first downcasting a boxed [`Status`] and, if that
//! works, using it as it is (metadata and source included):
//!
//! - client: `tonic::client::Grpc` (under every generated client) maps the error of
//!   the `Channel` stack's `call` with `Status::from_error` (tonic 0.14,
//!   `client/grpc.rs`, `Grpc::streaming`, which `unary` and the other methods use);
//! - server: the transport server wraps the stack of every `Server::layer` in its
//!   `RecoverError` middleware, which answers an error from a call with
//!   `Status::try_from_error(error).into_http()`, a trailers-only response
//!   (`service/recover_error.rs`).
//!
//! ```no_run
//! # use std::convert::Infallible;
//! # use tonic::body::Body;
//! # use tonic::codegen::http::{Request, Response};
//! use tonic::transport::{Endpoint, Server};
//! use tower::ServiceBuilder;
//! use tower_circuit_breaker::tonic::IntoStatus;
//! use tower_circuit_breaker::{BoxError, CircuitBreakerLayer, Config};
//!
//! # async fn wiring<S>(greeter: S) -> Result<(), BoxError>
//! # where
//! #     S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>,
//! #     S: Clone + Send + 'static,
//! #     S::Future: Send,
//! # {
//! // Client: one layer around the channel. When the breaker rejects a call, the
//! // caller's `Status` is UNAVAILABLE, with the pushback in its metadata.
//! let channel = Endpoint::from_static("http://[::1]:50051").connect().await?;
//! let channel = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(Config::default()).convert_errors(IntoStatus))
//!     .service(channel);
//! let client = tonic::client::Grpc::new(channel); // or `GreeterClient::new(channel)`
//!
//! // Server: one layer around every service it routes to. A rejected call is answered
//! // UNAVAILABLE with `grpc-retry-pushback-ms`, without reaching the service.
//! Server::builder()
//!     .layer(CircuitBreakerLayer::new(Config::default()).convert_errors(IntoStatus))
//!     .serve("[::1]:50051".parse()?, greeter) // or `.add_service(..).serve(addr)`
//!     .await?;
//! # drop(client);
//! # Ok(())
//! # }
//! ```
//!
//! A rejection comes from `call`, never from `poll_ready` (the breaker's readiness
//! contract), so it never meets the generated clients' mapping of readiness errors to
//! `Code::Unknown` (`Status::unknown("Service was not ready: ..")`). On the server, `Server::layer` is the place: `add_service` takes
//! only services that never fail (`Error = Infallible`), and the layer guards every
//! service the server routes to.
//!
//! Classification is separate: tonic answers a failed call with HTTP `200` and a
//! `grpc-status`, which the default classifier counts as a success. It counts transport
//! errors (client) and errors of Tower layers inside the breaker (server). To count gRPC
//! codes, classify the response (a closure reading `grpc-status` of a trailers-only
//! response, given to [`CircuitBreakerLayer::classify`](crate::CircuitBreakerLayer::classify)),
//! or wrap `tower_http::ClassifiedBreakerLayer` (feature `tower-http`), which also reads
//! the trailers of a streamed response:
//! `ConvertErrorLayer::new(classified, IntoStatus)` (see
//! [`ConvertErrorLayer`](crate::convert_error::ConvertErrorLayer)).
//!
//! What the caller sees, without a network:
//!
//! ```
//! use std::time::Duration;
//! use tonic::{Code, Status};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//! use tower_circuit_breaker::tonic::{IntoStatus, RETRY_PUSHBACK_MS};
//! use tower_circuit_breaker::{BoxError, CircuitBreakerLayer, CircuitOpen, Config};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let config = Config::builder()
//!     .name("inventory")
//!     .consecutive_failures(1)
//!     .open_duration(Duration::from_secs(30))
//!     .build()?;
//! let svc = ServiceBuilder::new()
//!     .layer(CircuitBreakerLayer::new(config).convert_errors(IntoStatus))
//!     .service(service_fn(|_: ()| async { Err::<(), _>("connection refused") }));
//!
//! // The inner error passes through unchanged (and trips the breaker).
//! let failure = svc.clone().oneshot(()).await.unwrap_err();
//! assert_eq!(failure.to_string(), "connection refused");
//!
//! // The rejection, as tonic's client and server turn it into a status.
//! let status = Status::from_error(svc.oneshot(()).await.unwrap_err());
//! assert_eq!(status.code(), Code::Unavailable);
//! assert_eq!(status.message(), "service unavailable; retry later");
//! let pushback: u64 = status.metadata().get(RETRY_PUSHBACK_MS).unwrap().to_str()?.parse()?;
//! assert!(0 < pushback && pushback <= 30_000);
//! assert_eq!(&*CircuitOpen::find(&status).unwrap().name, "inventory");
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use ::tonic::metadata::MetadataValue;
use ::tonic::Status;

use crate::convert_error::ConvertError;
use crate::error::{BoxError, CircuitOpen, Error};

/// The metadata key of the gRPC retry design's server pushback: a non-negative whole
/// number of milliseconds the client should wait before its next attempt.
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub const RETRY_PUSHBACK_MS: &str = "grpc-retry-pushback-ms";

/// The message of every rejection status. Fixed: the caller learns that it may retry,
/// not which breaker rejected it or in which state.
const MESSAGE: &str = "service unavailable; retry later";

/// The status for a call the breaker rejected: `UNAVAILABLE`, the message
/// `service unavailable; retry later`, the retry delay as
/// [`grpc-retry-pushback-ms`](RETRY_PUSHBACK_MS) metadata (whole milliseconds, rounded
/// up; omitted when the breaker does not know it, i.e. forced open) and `open` as the
/// status's source.
///
/// ```
/// use std::time::Duration;
/// use tonic::Code;
/// use tower_circuit_breaker::tonic::{status, RETRY_PUSHBACK_MS};
/// use tower_circuit_breaker::{BoxError, CircuitOpen, State};
///
/// let open = CircuitOpen {
///     name: "billing".into(),
///     state: State::Open,
///     retry_after: Some(Duration::from_micros(2_300_001)),
/// };
/// let rejected = status(&open);
/// assert_eq!(rejected.code(), Code::Unavailable);
/// assert!(!rejected.message().contains("billing"));
/// assert_eq!(rejected.metadata().get(RETRY_PUSHBACK_MS).unwrap(), "2301");
///
/// // The rejection stays findable, on the status and on the status boxed.
/// let boxed: BoxError = Box::new(rejected);
/// assert_eq!(CircuitOpen::find(&*boxed), Some(&open));
///
/// let forced = CircuitOpen { state: State::ForcedOpen, retry_after: None, ..open };
/// assert!(status(&forced).metadata().get(RETRY_PUSHBACK_MS).is_none());
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub fn status(open: &CircuitOpen) -> Status {
    // The clone is one reference count: the name is an `Arc<str>`.
    unavailable(open.clone())
}

/// Converts the breaker's `Error<E>` for tonic, with
/// [`CircuitBreakerLayer::convert_errors`](crate::CircuitBreakerLayer::convert_errors):
/// a rejection becomes the boxed [`status`], an inner error is boxed unchanged, so
/// tonic maps it as it would without the breaker (a connect error is `UNAVAILABLE`,
/// the expiry of the channel's timeout `CANCELLED`, ...).
///
/// The converted error is a [`BoxError`], not a `Status`: that keeps inner errors as
/// they are, and it is what tonic downcasts. tonic's client (`tonic::client::Grpc`,
/// under every generated client) maps a call's error with `Status::from_error`, and its
/// transport server's `RecoverError` middleware, around every `Server::layer` stack,
/// with `Status::try_from_error`; both return a boxed `Status` as it is, metadata and
/// source included. A status nested deeper (e.g. inside `Buffer`'s error) is found
/// along the source chain and copied with its code, message and metadata; the copy's
/// source is the outer error, whose chain still holds the rejection.
///
/// ```
/// use tower::ServiceBuilder;
/// use tower_circuit_breaker::tonic::IntoStatus;
/// use tower_circuit_breaker::{CircuitBreakerLayer, Config};
///
/// // Around a `Channel`, or in `Server::builder().layer(...)`.
/// let layer = ServiceBuilder::new()
///     .layer(CircuitBreakerLayer::new(Config::default()).convert_errors(IntoStatus));
/// # let _ = layer;
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntoStatus;

#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
impl<E: Into<BoxError>> ConvertError<Error<E>> for IntoStatus {
    type Error = BoxError;

    #[inline]
    fn convert(&self, error: Error<E>) -> BoxError {
        into_status(error)
    }
}

/// [`IntoStatus`] as a function, for stacks that already map the breaker's error:
/// `ServiceBuilder::new().map_err(into_status).layer(breaker)`.
///
/// ```
/// use tonic::{Code, Status};
/// use tower_circuit_breaker::tonic::into_status;
/// use tower_circuit_breaker::{CircuitOpen, Error, State};
///
/// let open = CircuitOpen { name: "db".into(), state: State::Open, retry_after: None };
/// let status = Status::from_error(into_status(Error::<std::io::Error>::Open(open)));
/// assert_eq!(status.code(), Code::Unavailable);
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub fn into_status<E: Into<BoxError>>(error: Error<E>) -> BoxError {
    match error {
        Error::Open(open) => Box::new(unavailable(open)),
        Error::Inner(inner) => inner.into(),
    }
}

/// [`status`], taking the rejection by value (the converter owns it: no clone).
fn unavailable(open: CircuitOpen) -> Status {
    let mut status = Status::unavailable(MESSAGE);
    if let Some(after) = open.retry_after {
        status
            .metadata_mut()
            .insert(RETRY_PUSHBACK_MS, MetadataValue::from(pushback_ms(after)));
    }
    status.set_source(Arc::new(open));
    status
}

/// `after` in whole milliseconds, rounded up (a caller that waits that long finds the
/// breaker ready), at most `i32::MAX` (~24.8 days): grpc-java parses the pushback as a
/// 32-bit `Integer` and treats a value it cannot parse as "do not retry".
fn pushback_ms(after: Duration) -> u64 {
    let rounded_up = after
        .as_millis()
        .saturating_add(u128::from(after.subsec_nanos() % 1_000_000 != 0));
    // `i32::MAX` is positive, so the cast to `u64` is exact.
    rounded_up.min(i32::MAX as u128) as u64
}
