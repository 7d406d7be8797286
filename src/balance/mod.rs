//! Per-endpoint breakers behind a load balancer.
//!
//! Clients that call many replicas through
//! [`tower::balance`](https://docs.rs/tower/0.5/tower/balance/index.html) want a
//! breaker per endpoint, not one for the whole service (tonic's
//! `Channel::balance_channel` is built on it but takes no per-endpoint layer: balance
//! one `Channel` per endpoint with it instead): a sick replica is taken out of rotation and the balancer routes
//! around it, as Linkerd's failure accrual does. [`EndpointBreakers`] gives every
//! endpoint of a [`Discover`](tower::discover::Discover) its own breaker from one
//! config, as one group:
//!
//! - **Out of rotation, not failing**: an endpoint's service
//!   ([`EndpointDiscover`] wraps each one) is not ready while its breaker rejects, so
//!   the balancer's power-of-two-choices picks another. It becomes ready when a probe
//!   may go (the open period ends, or a [probe
//!   interval](crate::ConfigBuilder::probe_interval) elapses).
//! - **Ejection cap**: at most
//!   [`max_ejection_percent`](EndpointBreakersBuilder::max_ejection_percent) of the
//!   endpoints are out of rotation at once (at least one may always be), as far as
//!   their own trips go (an operator's `force_open` or a fleet's open is never refused,
//!   and counts). A trip that would exceed it is refused: the endpoint stays in rotation, logs a warning and
//!   sends [`Event::TripCapped`](crate::Event::TripCapped). This is Envoy's and gRPC's
//!   outlier-detection cap; it keeps a problem on the caller's side (or a bad deploy of
//!   the caller) from ejecting every endpoint.
//! - **Fail fast when every endpoint is out**: [`FailFast`], in front of the balancer,
//!   fails a call at once with a [`CircuitOpen`](crate::CircuitOpen) when no endpoint
//!   may be called, with `retry_after` the earliest moment one may be probed, instead of
//!   letting the caller wait inside the balancer for the whole open period. Its
//!   `poll_ready` never fails because of it, so `Buffer` and `Retry` keep working.
//! - **One view**: [`EndpointBreakers::breakers`], [`health`](EndpointBreakers::health)
//!   and each breaker's metrics and events, named `"{group}/{endpoint}"`.
//! - Ejection time that grows with repeated ejections of the same endpoint and is
//!   forgotten once it stays healthy: the config's [`Backoff::linear`](crate::Backoff::linear)
//!   (Envoy's base ejection time times the ejection count) or
//!   [`exponential`](crate::Backoff::exponential), with
//!   [`reset_after`](crate::Backoff::reset_after).
//!
//! ```
//! use std::time::Duration;
//! use tower::balance::p2c::Balance;
//! use tower::discover::ServiceList;
//! use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
//! use tower::{service_fn, Service, ServiceExt};
//! use tower_circuit_breaker::balance::EndpointBreakers;
//! use tower_circuit_breaker::{CircuitOpen, Config};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() -> Result<(), tower_circuit_breaker::BoxError> {
//! let group = EndpointBreakers::builder(
//!     Config::builder().name("replicas").consecutive_failures(3).open_duration(Duration::from_secs(10)).build()?,
//! )
//! .max_ejection_percent(100)
//! .build()?;
//! // Two replicas that are both down.
//! let down = |_: &str| async { Err::<&str, _>(std::io::Error::other("connection refused")) };
//! let endpoints = ServiceList::new(vec![service_fn(down), service_fn(down)]);
//! let balancer = Balance::new(PendingRequestsDiscover::new(
//!     group.discover(endpoints),
//!     CompleteOnResponse::default(),
//! ));
//! let mut client = group.fail_fast(balancer);
//! for _ in 0..6 {
//!     let _ = client.ready().await?.call("GET /").await; // each replica fails 3 times
//! }
//! assert_eq!(group.ejected(), 2);
//! let error = client.ready().await?.call("GET /").await.unwrap_err(); // at once
//! let open = CircuitOpen::find(&*error).expect("every replica is out");
//! assert_eq!(open.retry_after, Some(Duration::from_secs(10)));
//! # Ok(())
//! # }
//! ```

mod builder;
mod discover;
mod endpoint;
mod future;
mod group;
mod layer;
mod service;

pub use builder::EndpointBreakersBuilder;
pub use discover::EndpointDiscover;
pub use endpoint::EndpointService;
pub use future::ResponseFuture;
pub use group::EndpointBreakers;
pub use layer::FailFastLayer;
pub use service::FailFast;
