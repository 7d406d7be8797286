//! A circuit breaker as [Tower](https://docs.rs/tower) middleware.
//!
//! [`CircuitBreakerLayer`] wraps any [`tower::Service`]. While the downstream is
//! healthy, calls flow and the breaker counts their outcomes (one atomic load per call;
//! the success path writes no shared cache line). When a trip rule fires (consecutive
//! failures, failure rate or slow-call rate over a count or time window, or the
//! [adaptive failure rate](AdaptiveFailureRate) learned from the backend's normal
//! errors), the breaker opens and fails calls fast with [`CircuitOpen`], without
//! touching the downstream. After the open duration (growing with an optional
//! exponential [`Backoff`], probed meanwhile with a
//! [`probe_interval`](ConfigBuilder::probe_interval)) it admits a bounded number of
//! half-open probes, closes again on its own once enough of them succeed, and can
//! [ramp up](ConfigBuilder::ramp_up) the load it lets through.
//!
//! ```
//! use std::time::Duration;
//! use tower::{ServiceBuilder, ServiceExt, service_fn};
//! use tower_circuit_breaker::{CircuitBreakerLayer, Config, Error, State};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tower_circuit_breaker::ConfigError> {
//! let cfg = Config::builder()
//!     .name("inventory")
//!     .consecutive_failures(3)
//!     .open_duration(Duration::from_secs(30))
//!     .build()?;
//! let layer = CircuitBreakerLayer::new(cfg);
//! let svc = ServiceBuilder::new()
//!     .layer(layer.clone())
//!     .service(service_fn(|_: ()| async { Err::<(), _>("downstream is sick") }));
//!
//! for _ in 0..3 {
//!     let _ = svc.clone().oneshot(()).await; // three failures trip the breaker
//! }
//! assert_eq!(layer.breaker().state(), State::Open);
//! match svc.oneshot(()).await {
//!     Err(Error::Open(open)) => assert!(open.retry_after.is_some()), // failed fast
//!     other => panic!("expected a fast rejection, got {other:?}"),
//! }
//! # Ok(())
//! # }
//! ```
//!
//! The crate is split by concern: the state machine in `core` knows nothing of Tower,
//! and the Tower glue ([`CircuitBreakerLayer`], [`CircuitBreakerService`],
//! [`ResponseFuture`]) knows nothing of windows. All time is read through
//! [`tokio::time::Instant`], so tests with paused Tokio time drive the breaker
//! deterministically.
//!
//! For a client that calls many replicas through a load balancer, the [`balance`]
//! module gives every endpoint its own breaker, caps how many may be out of rotation
//! at once, and fails fast when all are.
//!
//! The breaker is meant to sit in a stack of Tower's own layers,
//! `Retry( CircuitBreaker( Timeout( ConcurrencyLimit + LoadShed( inner ))))`: the timeout
//! inside the breaker so timeouts count as failures, a load-shed rejection ignored by
//! [`DefaultClassifier`], and the [`retry`] module's [`RetryPolicy`] outside, backing off
//! with jitter and never retrying a [`CircuitOpen`].

//!
//! # Feature flags
//!
//! None is on by default; the core (breaker, layer, keyed and per-endpoint breakers,
//! registry, health, events, retry policy, fallback) needs none.
//!
//! | feature | adds |
//! | --- | --- |
//! | `http` | `http::HttpClassifier` for `http::Response` (5xx/429 fail, 4xx ignored, `Retry-After`), `503` answers for axum and hyper servers |
//! | `reqwest` | `HttpClassifier` for `reqwest::Client` used directly as the service (implies `http`) |
//! | `tonic` | `tonic::IntoStatus`: a rejection as gRPC `UNAVAILABLE` with `grpc-retry-pushback-ms` |
//! | `tower-http` | `tower_http::ClassifiedBreakerLayer`: any tower-http classifier, gRPC trailers included (implies `http`) |
//! | `metrics` | `export`: counters, rates and a one-hot state gauge through the `metrics` facade |
//! | `serde` | configuration files: `Config` and `RegistryConfig` from TOML, JSON or YAML |
//! | `redis` | `fleet`: breaker state shared by the instances of a service through Redis |
//! | `rustls` | `rediss://` (TLS) for the fleet's Redis, by rustls: no OpenSSL (implies `redis`) |
//!
//! Each feature brings in one optional dependency and is named after it, as is the
//! convention for Rust crates (`serde`, `metrics`, `redis`, ...), so the name says which
//! crate a build pulls in; the table says what it turns on. The retry policy, the
//! fallback, the keyed and the per-endpoint breakers are not features: they need
//! nothing beyond `tower` and `tokio`, which the breaker needs anyway, and cost nothing
//! unless used.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

pub mod balance;
mod breaker;
mod classify;
mod clock;
mod config;
#[cfg(feature = "serde")]
mod config_file;
pub mod convert_error;
mod core;
mod error;
mod event;
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub mod export;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod fleet;
mod health;
mod keyed;
mod lock;
#[cfg(feature = "metrics")]
mod metric_series;
mod metrics;
mod middleware;
mod name;
mod random;
mod reason;
mod registry;
pub mod retry;
mod state;

pub mod fallback;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
#[cfg(feature = "tonic")]
#[cfg_attr(docsrs, doc(cfg(feature = "tonic")))]
pub mod tonic;
#[cfg(feature = "tower-http")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-http")))]
pub mod tower_http;

pub use crate::breaker::CircuitBreaker;
pub use crate::classify::EveryErrorFails;
pub use crate::classify::{Classify, ClassifyFn, DefaultClassifier, Outcome};
pub use crate::config::{
    AdaptiveFailureRate, Backoff, Config, ConfigBuilder, Window, MAX_COUNT_WINDOW, MAX_HALF_OPEN,
    MAX_TIME_BUCKETS,
};
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use crate::config_file::RegistryConfig;
pub use crate::core::permit::Permit;
pub use crate::error::{BoxError, CircuitOpen, ConfigError, Error};
pub use crate::event::Event;
pub use crate::fallback::{Fallback, FallbackFuture, FallbackLayer};
pub use crate::health::{BreakerHealth, HealthReport};
pub use crate::keyed::{
    KeyedCircuitBreakerLayer, KeyedCircuitBreakerService, KeyedCircuitBreakers,
    KeyedCircuitBreakersBuilder,
};
pub use crate::metrics::Metrics;
pub use crate::middleware::future::ResponseFuture;
pub use crate::middleware::layer::CircuitBreakerLayer;
pub use crate::middleware::service::CircuitBreakerService;
pub use crate::name::BreakerName;
pub use crate::reason::TransitionReason;
pub use crate::registry::Registry;
pub use crate::retry::RetryPolicy;
pub use crate::state::{Health, State};

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
