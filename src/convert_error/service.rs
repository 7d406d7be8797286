//! [`ConvertErrorService`]: a service whose errors are converted.

use std::task::{Context, Poll};

use tower::Service;

use crate::convert_error::{ConvertError, ConvertErrorFuture};

/// `inner`, with every error (from `poll_ready` and from its responses) converted by
/// `C`. Built by [`ConvertErrorLayer`](crate::convert_error::ConvertErrorLayer).
#[derive(Debug, Clone)]
pub struct ConvertErrorService<S, C> {
    inner: S,
    converter: C,
}

impl<S, C> ConvertErrorService<S, C> {
    /// `inner`, its errors converted by `converter`.
    pub fn new(inner: S, converter: C) -> Self {
        ConvertErrorService { inner, converter }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for ConvertErrorService<S, C>
where
    S: Service<Req>,
    C: ConvertError<S::Error> + Clone,
{
    type Response = S::Response;
    type Error = C::Error;
    type Future = ConvertErrorFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        match self.inner.poll_ready(cx) {
            Poll::Ready(Err(error)) => Poll::Ready(Err(self.converter.convert(error))),
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Pending => Poll::Pending,
        }
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        ConvertErrorFuture::new(self.inner.call(request), self.converter.clone())
    }
}
