//! [`ClassifiedBreakerService`]: the breaker, classified by a tower-http classifier.

use std::task::{Context, Poll};

use ::http::{Request, Response};
use ::tower_http::classify::MakeClassifier;
use tower::Service;

use crate::breaker::CircuitBreaker;
use crate::error::Error;
use crate::middleware::service::CircuitBreakerService;
use crate::tower_http::{ClassifiedBody, ClassifiedResponseFuture};

/// A service guarded by a circuit breaker whose outcomes a tower-http
/// [`MakeClassifier`] decides. Build it with
/// [`ClassifiedBreakerLayer`](crate::tower_http::ClassifiedBreakerLayer).
///
/// Admission and readiness are exactly those of
/// [`CircuitBreakerService`](crate::CircuitBreakerService) (it is one inside). The
/// response's body becomes a [`ClassifiedBody`], which records the outcome at the end
/// of stream when the classifier needs it.
#[derive(Debug, Clone)]
pub struct ClassifiedBreakerService<S, M> {
    inner: CircuitBreakerService<S>,
    make_classifier: M,
}

impl<S, M> ClassifiedBreakerService<S, M> {
    /// Guards `inner` with `breaker`, classifying with `make_classifier`.
    pub fn new(inner: S, breaker: CircuitBreaker, make_classifier: M) -> Self {
        ClassifiedBreakerService {
            inner: CircuitBreakerService::new(inner, breaker),
            make_classifier,
        }
    }

    /// The breaker guarding this service.
    pub fn breaker(&self) -> &CircuitBreaker {
        self.inner.breaker()
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner.into_inner()
    }
}

impl<S, M, ReqBody, ResBody> Service<Request<ReqBody>> for ClassifiedBreakerService<S, M>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    // An error from the inner `poll_ready` is classified by the default classifier,
    // which looks for load-shed rejections by type.
    S::Error: 'static,
    M: MakeClassifier,
{
    type Response = Response<ClassifiedBody<ResBody, M::ClassifyEos>>;
    type Error = Error<S::Error>;
    type Future = ClassifiedResponseFuture<S::Future, M::Classifier>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let classifier = self.make_classifier.make_classifier(&request);
        match self.inner.call_admitted(request) {
            Ok((future, permit)) => ClassifiedResponseFuture::called(future, permit, classifier),
            Err(open) => ClassifiedResponseFuture::rejected(open),
        }
    }
}
