//! Middleware that converts a breaker's typed [`Error<E>`](crate::Error) into the error
//! type the rest of a stack expects: a [`BoxError`]
//! ([`IntoBoxError`], what Tower middleware conventionally yields) or, with feature
//! `tonic`, a gRPC `Status` (`tonic::IntoStatus`, which answers a rejection with
//! `UNAVAILABLE` and the retry pushback).
//!
//! Build it from the breaker's layer with
//! [`CircuitBreakerLayer::box_errors`](crate::CircuitBreakerLayer::box_errors) or
//! [`CircuitBreakerLayer::convert_errors`](crate::CircuitBreakerLayer::convert_errors);
//! the typed `Error<E>` stays the default. The keyed and the tower-http layers have the
//! same two methods.
//!
//! ```
//! use std::time::Duration;
//! use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
//! use tower_circuit_breaker::{CircuitBreakerLayer, CircuitOpen, Config};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), BoxError> {
//! let layer = CircuitBreakerLayer::new(Config::default());
//! let breaker = layer.breaker().clone();
//! // The timeout inside the breaker already fails with `BoxError`; no `map_err` needed.
//! let svc = ServiceBuilder::new()
//!     .layer(layer.box_errors())
//!     .timeout(Duration::from_secs(1))
//!     .service(service_fn(|id: u32| async move { Ok::<_, BoxError>(id) }));
//! assert_eq!(svc.clone().oneshot(7).await?, 7);
//!
//! breaker.force_open();
//! let err: BoxError = svc.oneshot(7).await.unwrap_err();
//! assert!(CircuitOpen::find(&*err).is_some());
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use self::future::ConvertErrorFuture;
pub use self::layer::ConvertErrorLayer;
pub use self::service::ConvertErrorService;

use crate::error::{BoxError, Error};

/// Converts a service's error into another type; applied by [`ConvertErrorService`].
pub trait ConvertError<E> {
    /// The converted error.
    type Error;

    /// Converts `error`.
    fn convert(&self, error: E) -> Self::Error;
}

/// Converts the breaker's `Error<E>` into a [`BoxError`]: a rejection becomes the boxed
/// [`CircuitOpen`](crate::CircuitOpen) itself, an inner error is boxed as it is (see
/// [`Error::into_box_error`]), so [`CircuitOpen::find`](crate::CircuitOpen::find) works
/// on the result.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IntoBoxError;

impl<E: Into<BoxError>> ConvertError<Error<E>> for IntoBoxError {
    type Error = BoxError;

    #[inline]
    fn convert(&self, error: Error<E>) -> BoxError {
        error.into_box_error()
    }
}
