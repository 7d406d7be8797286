//! [`EndpointService`]: one endpoint of a balancer, behind its breaker.

use std::fmt;
use std::task::{Context, Poll};

use tower::load::Load;
use tower::Service;

use crate::balance::group::Membership;
use crate::breaker::CircuitBreaker;
use crate::classify::{Classify, DefaultClassifier};
use crate::error::Error;
use crate::middleware::future::ResponseFuture;
use crate::middleware::service::CircuitBreakerService;

/// One endpoint of a balancer, guarded by its breaker in an
/// [`EndpointBreakers`](crate::balance::EndpointBreakers) group: what
/// [`EndpointDiscover`](crate::balance::EndpointDiscover) yields.
///
/// A [`CircuitBreakerService`] that is never ready while its breaker rejects (so the
/// balancer routes around it) and keeps its endpoint in the group while it is alive
/// (the balancer dropping it takes the endpoint out). Its [`Load`] is the inner
/// service's.
pub struct EndpointService<S, C = DefaultClassifier> {
    service: CircuitBreakerService<S, C>,
    membership: Membership,
}

impl<S, C> EndpointService<S, C> {
    pub(super) fn new(service: CircuitBreakerService<S, C>, membership: Membership) -> Self {
        EndpointService {
            service,
            membership,
        }
    }

    /// The endpoint's breaker.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.service.breaker()
    }

    /// The endpoint's service.
    pub fn get_ref(&self) -> &S {
        self.service.get_ref()
    }
}

impl<S, C, Req> Service<Req> for EndpointService<S, C>
where
    S: Service<Req>,
    S::Error: 'static,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.service.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        self.service.call(request)
    }
}

impl<S: Load, C> Load for EndpointService<S, C> {
    type Metric = S::Metric;

    fn load(&self) -> S::Metric {
        self.service.load()
    }
}

impl<S: Clone, C: Clone> Clone for EndpointService<S, C> {
    /// A clone keeps the endpoint in the group too.
    fn clone(&self) -> Self {
        EndpointService {
            service: self.service.clone(),
            membership: self.membership.clone(),
        }
    }
}

impl<S: fmt::Debug, C> fmt::Debug for EndpointService<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EndpointService")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}
