//! [`ResponseFuture`]: what [`FailFast`](crate::balance::FailFast) returns.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use pin_project_lite::pin_project;

use crate::error::{BoxError, CircuitOpen};

pin_project! {
    /// The response of a call through [`FailFast`](crate::balance::FailFast): the
    /// balancer's, or at once the rejection of a group whose endpoints are all out.
    #[project = Projected]
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
    }
}

pin_project! {
    #[project = StateProjected]
    #[derive(Debug)]
    enum State<F> {
        Called {
            #[pin]
            future: F,
        },
        Rejected {
            open: Option<CircuitOpen>,
        },
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn called(future: F) -> Self {
        ResponseFuture {
            state: State::Called { future },
        }
    }

    pub(super) fn rejected(open: CircuitOpen) -> Self {
        ResponseFuture {
            state: State::Rejected { open: Some(open) },
        }
    }
}

impl<F, T, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Projected { state } = self.project();
        match state.project() {
            StateProjected::Called { future } => {
                Poll::Ready(ready!(future.poll(cx)).map_err(Into::into))
            }
            StateProjected::Rejected { open } => Poll::Ready(Err(Box::new(
                open.take()
                    .expect("a ResponseFuture polled after it completed"),
            ))),
        }
    }
}
