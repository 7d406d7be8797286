//! [`Fallback`]: a breaker-guarded service whose rejections become responses.

use std::task::{Context, Poll};

use tower::Service;

use crate::error::{CircuitOpen, Error};

use crate::fallback::future::FallbackFuture;

/// A service that answers the breaker's rejections with a fallback response. Build it
/// with [`FallbackLayer`](crate::FallbackLayer).
///
/// The inner service is a breaker-guarded service (its error is [`Error<E>`]). A
/// rejection ([`Error::Open`]) is handed to the fallback function, whose response is
/// returned as a success; the inner service's own errors are returned as `E`.
/// Readiness is the inner service's, which never fails because the circuit is open.
#[derive(Debug, Clone)]
pub struct Fallback<S, F> {
    inner: S,
    fallback: F,
}

impl<S, F> Fallback<S, F> {
    /// Answers `inner`'s rejections with `fallback`.
    pub fn new(inner: S, fallback: F) -> Self {
        Fallback { inner, fallback }
    }

    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the inner service.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, F, Req, E> Service<Req> for Fallback<S, F>
where
    S: Service<Req, Error = Error<E>>,
    F: FnMut(CircuitOpen) -> S::Response + Clone,
{
    type Response = S::Response;
    type Error = E;
    type Future = FallbackFuture<S::Future, F>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(Error::Inner(error))) => Poll::Ready(Err(error)),
            // The breaker's readiness never fails because the circuit is open; should a
            // service report it anyway, the next call answers with the fallback.
            Poll::Ready(Err(Error::Open(_))) => Poll::Ready(Ok(())),
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        FallbackFuture::new(self.inner.call(request), self.fallback.clone())
    }
}
