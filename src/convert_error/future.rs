//! [`ConvertErrorFuture`]: a response future whose error is converted.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::convert_error::ConvertError;

pin_project! {
    /// The future of [`ConvertErrorService`](crate::convert_error::ConvertErrorService):
    /// the inner future's output with its error converted.
    #[derive(Debug)]
    pub struct ConvertErrorFuture<F, C> {
        #[pin]
        future: F,
        converter: C,
    }
}

impl<F, C> ConvertErrorFuture<F, C> {
    pub(crate) fn new(future: F, converter: C) -> Self {
        ConvertErrorFuture { future, converter }
    }
}

impl<F, C, T, E> Future for ConvertErrorFuture<F, C>
where
    F: Future<Output = Result<T, E>>,
    C: ConvertError<E>,
{
    type Output = Result<T, C::Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.future.poll(cx) {
            Poll::Ready(result) => {
                Poll::Ready(result.map_err(|error| this.converter.convert(error)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
