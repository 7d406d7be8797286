//! Keyed breakers: one breaker per downstream key (host, tenant, ...), bounded.
//!
//! - [`breakers`]: [`KeyedCircuitBreakers`], the sharded, bounded map from key to
//!   breaker.
//! - [`layer`]: [`KeyedCircuitBreakerLayer`], which applies it to a service.
//! - [`service`]: [`KeyedCircuitBreakerService`], which picks each request's breaker
//!   with the key function. Its calls resolve to the crate's
//!   [`ResponseFuture`](crate::ResponseFuture).

pub(crate) mod breakers;
pub(crate) mod layer;
pub(crate) mod service;

pub use breakers::{KeyedCircuitBreakers, KeyedCircuitBreakersBuilder};
pub use layer::KeyedCircuitBreakerLayer;
pub use service::KeyedCircuitBreakerService;
