//! HTTP support (feature `http`): classify [`http::Response`]s, honour `Retry-After`,
//! and answer a rejection with `503 Service Unavailable`.
//!
//! - [`HttpClassifier`]: 5xx and 429 are failures, other 4xx are the caller's fault and
//!   ignored, everything else succeeds; each class is configurable. A failed 429 or 503
//!   that carries `Retry-After` keeps the breaker open at least that long if it trips it.
//!   With feature `reqwest` it also classifies `reqwest::Response`s and
//!   `reqwest::Error`s, so a `reqwest::Client` (itself a `tower::Service`) is guarded by
//!   one layer: `ServiceBuilder::new().layer(CircuitBreakerLayer::new(config)
//!   .classify(HttpClassifier::new())).service(client)`.
//! - [`parse_retry_after`]: the `Retry-After` header, in seconds or as an HTTP date.
//! - [`service_unavailable`] and [`handle_error`]: a rejection as a `503` response with
//!   a `Retry-After` header and a body that names nothing internal, ready for axum's
//!   `HandleErrorLayer`; [`problem_json`] and [`handle_error_with`] for another body.
//!
//! ```
//! use http::{Response, StatusCode};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_circuit_breaker::http::HttpClassifier;
//! use tower_circuit_breaker::{CircuitBreakerLayer, Config, State};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let layer = CircuitBreakerLayer::new(Config::builder().consecutive_failures(2).build()?)
//!     .classify(HttpClassifier::new());
//! let svc = ServiceBuilder::new().layer(layer.clone()).service(service_fn(|code: u16| async move {
//!     Ok::<_, std::convert::Infallible>(
//!         Response::builder().status(code).body(String::new()).expect("valid status"),
//!     )
//! }));
//! for code in [404, 404, 404] {
//!     svc.clone().oneshot(code).await?; // the caller's fault: ignored
//! }
//! assert_eq!(layer.breaker().state(), State::Closed);
//! for code in [500, 502] {
//!     svc.clone().oneshot(code).await?; // the backend's fault: counted
//! }
//! assert_eq!(layer.breaker().state(), State::Open);
//! # let _ = StatusCode::OK;
//! # Ok(())
//! # }
//! ```

mod classifier;
mod rejection;
#[cfg(feature = "reqwest")]
mod reqwest;
mod retry_after;

pub use self::classifier::HttpClassifier;
pub use self::rejection::{handle_error, handle_error_with, problem_json, service_unavailable};
pub use self::retry_after::parse_retry_after;
