//! tower-http classifiers (feature `tower-http`): any
//! [`MakeClassifier`](::tower_http::classify::MakeClassifier) decides the breaker's
//! outcomes, including those only known when a streamed body ends.
//!
//! tower-http's classifiers ([`ServerErrorsAsFailures`], [`GrpcErrorsAsFailures`],
//! [`StatusInRangeAsFailures`], or your own) look at a response's head and, when that
//! is not enough, at its end of stream: a gRPC call answers `200 OK` and reports its
//! status in the trailers, after the streamed messages. [`ClassifiedBreakerLayer`]
//! admits calls like [`CircuitBreakerLayer`](crate::CircuitBreakerLayer); for
//! responses that need their end of stream, it wraps the body in a [`ClassifiedBody`]
//! that carries the call's permit and records the outcome when the body ends (data
//! done, trailers read, or a body error). A body dropped before its end records
//! [`Ignored`](crate::Outcome::Ignored), like a cancelled call, and frees a half-open
//! permit. A failed `429` or `503` with `Retry-After` sets a floor for the open
//! duration, as with [`HttpClassifier`](crate::http::HttpClassifier).
//!
//! Slow-call detection measures until the outcome is recorded, so a stream counts as
//! slow when it ends late.
//!
//! ```
//! use tower::{Layer, ServiceBuilder};
//! use tower_http::classify::GrpcErrorsAsFailures;
//! use tower_circuit_breaker::tower_http::ClassifiedBreakerLayer;
//! use tower_circuit_breaker::{CircuitBreaker, Config};
//!
//! # fn wrap<S>(channel: S) -> Result<(), tower_circuit_breaker::ConfigError> {
//! let breaker = CircuitBreaker::new(Config::builder().name("grpc-backend").build()?);
//! let layer = ClassifiedBreakerLayer::new(breaker, GrpcErrorsAsFailures::make_classifier());
//! let guarded = ServiceBuilder::new().layer(layer).service(channel);
//! # let _ = guarded;
//! # Ok(())
//! # }
//! ```
//!
//! [`ServerErrorsAsFailures`]: ::tower_http::classify::ServerErrorsAsFailures
//! [`GrpcErrorsAsFailures`]: ::tower_http::classify::GrpcErrorsAsFailures
//! [`StatusInRangeAsFailures`]: ::tower_http::classify::StatusInRangeAsFailures

mod body;
mod future;
mod layer;
mod service;

pub use self::body::ClassifiedBody;
pub use self::future::ClassifiedResponseFuture;
pub use self::layer::ClassifiedBreakerLayer;
pub use self::service::ClassifiedBreakerService;
