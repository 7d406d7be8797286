//! [`FallbackFuture`]: the response future of [`Fallback`](crate::Fallback).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::error::{CircuitOpen, Error};

pin_project! {
    /// The future returned by [`Fallback`](crate::Fallback): the inner response, or
    /// the fallback's response when the breaker rejected the call.
    pub struct FallbackFuture<Fut, F> {
        #[pin]
        inner: Fut,
        fallback: Option<F>,
    }
}

impl<Fut, F> FallbackFuture<Fut, F> {
    pub(crate) fn new(inner: Fut, fallback: F) -> Self {
        FallbackFuture {
            inner,
            fallback: Some(fallback),
        }
    }
}

impl<Fut, F, Res, E> Future for FallbackFuture<Fut, F>
where
    Fut: Future<Output = Result<Res, Error<E>>>,
    F: FnMut(CircuitOpen) -> Res,
{
    type Output = Result<Res, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match std::task::ready!(this.inner.poll(cx)) {
            Ok(response) => Poll::Ready(Ok(response)),
            Err(Error::Inner(error)) => Poll::Ready(Err(error)),
            Err(Error::Open(open)) => {
                let mut fallback = this
                    .fallback
                    .take()
                    .expect("FallbackFuture polled after it completed");
                Poll::Ready(Ok(fallback(open)))
            }
        }
    }
}

impl<Fut, F> std::fmt::Debug for FallbackFuture<Fut, F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FallbackFuture")
            .field("done", &self.fallback.is_none())
            .finish_non_exhaustive()
    }
}
