//! Fallback: answer a rejected call with a degraded or cached response instead of an
//! error.
//!
//! [`FallbackLayer`] goes outside a [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
//! When the breaker rejects a call ([`Error::Open`](crate::Error::Open)), the fallback
//! function turns the [`CircuitOpen`](crate::CircuitOpen) into a response; the inner
//! service's own errors pass through unchanged, so the stack's error type goes back
//! from `Error<E>` to `E`.
//!
//! ```
//! use std::sync::{Arc, RwLock};
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_circuit_breaker::{CircuitBreakerLayer, CircuitOpen, Config, FallbackLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // The last good price list, served while the pricing service is sick.
//! let cached = Arc::new(RwLock::new(vec!["tea: 2.50".to_owned()]));
//! let breaker = CircuitBreakerLayer::new(Config::default());
//! breaker.breaker().force_open();
//! let svc = ServiceBuilder::new()
//!     .layer(FallbackLayer::new(move |_: CircuitOpen| cached.read().unwrap().clone()))
//!     .layer(breaker)
//!     .service(service_fn(|()| async { Ok::<Vec<String>, std::io::Error>(vec![]) }));
//! assert_eq!(svc.oneshot(()).await?, ["tea: 2.50"]);
//! # Ok(())
//! # }
//! ```

mod future;
mod layer;
mod service;

pub use self::future::FallbackFuture;
pub use self::layer::FallbackLayer;
pub use self::service::Fallback;
