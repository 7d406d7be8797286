//! The breaker as Tower middleware, laid out as Tower's own middleware is
//! (`tower::limit::concurrency`): a [`layer`] that wraps services, the [`service`] that
//! admits calls, and the response [`future`] into which the call's permit moves.
//!
//! It talks to the state machine only through
//! [`CircuitBreaker`](crate::breaker::CircuitBreaker), the door into `core`.

pub(crate) mod future;
pub(crate) mod layer;
pub(crate) mod service;
mod timer;
