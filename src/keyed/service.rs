//! [`KeyedCircuitBreakerService`]: guards each request with its key's breaker.

use std::fmt;
use std::hash::Hash;
use std::task::{Context, Poll};

use tower::Service;

use crate::classify::{Classify, DefaultClassifier};
use crate::error::Error;
use crate::keyed::KeyedCircuitBreakers;
use crate::middleware::future::ResponseFuture;

/// A service whose requests are each guarded by the breaker of their key. Build it
/// with [`KeyedCircuitBreakerLayer`](crate::KeyedCircuitBreakerLayer).
///
/// The key is only known once a request arrives, so admission happens in `call`, not
/// in `poll_ready`: `poll_ready` is the inner service's, and `call` either calls the
/// inner service under its key's permit or resolves at once to [`Error::Open`]. A
/// half-open probe permit is therefore taken at `call` time.
pub struct KeyedCircuitBreakerService<S, K, F, C = DefaultClassifier> {
    inner: S,
    breakers: KeyedCircuitBreakers<K>,
    key: F,
    classifier: C,
}

impl<S, K, F, C> KeyedCircuitBreakerService<S, K, F, C> {
    /// Guards `inner` with `breakers`, picking each request's breaker with `key`.
    pub fn new(inner: S, breakers: KeyedCircuitBreakers<K>, key: F, classifier: C) -> Self {
        KeyedCircuitBreakerService {
            inner,
            breakers,
            key,
            classifier,
        }
    }

    /// The map of breakers.
    pub fn breakers(&self) -> &KeyedCircuitBreakers<K> {
        &self.breakers
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, K, F, C, Req> Service<Req> for KeyedCircuitBreakerService<S, K, F, C>
where
    S: Service<Req>,
    S::Error: 'static,
    K: Hash + Eq + Clone + fmt::Display,
    F: Fn(&Req) -> K,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.breakers.try_acquire(&(self.key)(&request)) {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classifier.clone())
            }
            Err(open) => ResponseFuture::rejected(open),
        }
    }
}

impl<S: Clone, K, F: Clone, C: Clone> Clone for KeyedCircuitBreakerService<S, K, F, C> {
    fn clone(&self) -> Self {
        KeyedCircuitBreakerService {
            inner: self.inner.clone(),
            breakers: self.breakers.clone(),
            key: self.key.clone(),
            classifier: self.classifier.clone(),
        }
    }
}

impl<S: fmt::Debug, K, F, C> fmt::Debug for KeyedCircuitBreakerService<S, K, F, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedCircuitBreakerService")
            .field("inner", &self.inner)
            .field("breakers", &self.breakers)
            .finish()
    }
}
