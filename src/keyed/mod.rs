//! Keyed breakers: one breaker per downstream key (host, tenant, ...), bounded.
//!
//! - [`breakers`]: [`KeyedCircuitBreakers`], the sharded, bounded map from key to
//!   breaker.
//! - [`builder`]: [`KeyedCircuitBreakersBuilder`], its bounds.
//! - `shared`: the shards and bounds every handle on one map shares.
//! - `entry`: what a shard keeps per key.
//! - `eviction`: how a shard makes room.
//! - [`layer`]: [`KeyedCircuitBreakerLayer`], which applies it to a service.
//! - [`service`]: [`KeyedCircuitBreakerService`], which picks each request's breaker
//!   with the key function. Its calls resolve to the crate's
//!   [`ResponseFuture`](crate::ResponseFuture).

pub(crate) mod breakers;
pub(crate) mod builder;
mod entry;
mod eviction;
pub(crate) mod layer;
pub(crate) mod service;
mod shared;

pub use breakers::KeyedCircuitBreakers;
pub use builder::KeyedCircuitBreakersBuilder;
pub use layer::KeyedCircuitBreakerLayer;
pub use service::KeyedCircuitBreakerService;
