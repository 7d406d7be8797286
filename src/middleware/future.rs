//! [`ResponseFuture`]: carries a call's permit until the inner future finishes.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::breaker::Permit;
use crate::classify::{Classify, Outcome};
use crate::error::{CircuitOpen, Error};

pin_project! {
    /// The future returned by [`CircuitBreakerService`](crate::CircuitBreakerService) and
    /// by [`CircuitBreaker::call`](crate::CircuitBreaker::call).
    ///
    /// It either resolves at once to a rejection, or drives the inner future and then
    /// records the classified outcome. Dropped before completion, it returns its permit
    /// (a half-open probe slot is freed) and records [`Ignored`](crate::Outcome::Ignored);
    /// if the inner future or the classifier panicked, it records
    /// [`Failure`](crate::Outcome::Failure) instead, wherever the panic is caught.
    pub struct ResponseFuture<F, C> {
        #[pin]
        state: ResponseState<F, C>,
    }
}

pin_project! {
    #[project = ResponseStateProj]
    enum ResponseState<F, C> {
        Called {
            #[pin]
            future: F,
            permit: Permit,
            classifier: C,
        },
        Rejected {
            open: Option<CircuitOpen>,
        },
    }
}

impl<F, C> ResponseFuture<F, C> {
    /// The future of a call made under `permit` (already marked used).
    pub(crate) fn called(future: F, permit: Permit, classifier: C) -> Self {
        ResponseFuture {
            state: ResponseState::Called {
                future,
                permit,
                classifier,
            },
        }
    }

    pub(crate) fn rejected(open: CircuitOpen) -> Self {
        ResponseFuture {
            state: ResponseState::Rejected { open: Some(open) },
        }
    }
}

impl<F, C, Res, E> Future for ResponseFuture<F, C>
where
    F: Future<Output = Result<Res, E>>,
    C: Classify<Res, E>,
    E: 'static,
{
    type Output = Result<Res, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            ResponseStateProj::Called {
                future,
                permit,
                classifier,
            } => {
                // If the inner future or the classifier panics, the permit sees
                // `polling` still set when it is dropped and records a failure.
                permit.set_polling(true);
                let Poll::Ready(result) = future.poll(cx) else {
                    permit.set_polling(false);
                    return Poll::Pending;
                };
                let outcome = classifier.classify(result.as_ref());
                let floor = match outcome {
                    Outcome::Failure => classifier.retry_after(result.as_ref()),
                    _ => None,
                };
                permit.set_polling(false);
                match floor {
                    None => permit.settle(outcome),
                    Some(floor) => permit.settle_failure_with_floor(floor),
                }
                if result.is_err() {
                    // An outer breaker or a retry policy may search this error for a
                    // rejection from further in (`Error::Inner(Error::Open(_))`).
                    crate::error::nested::register::<E>();
                }
                Poll::Ready(result.map_err(Error::Inner))
            }
            ResponseStateProj::Rejected { open } => {
                // An outer breaker or a retry policy must recognise this rejection
                // inside its own typed error.
                crate::error::nested::register::<E>();
                Poll::Ready(Err(Error::Open(
                    open.take()
                        .expect("ResponseFuture polled after it completed"),
                )))
            }
        }
    }
}

impl<F, C> std::fmt::Debug for ResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            ResponseState::Called { .. } => "called",
            ResponseState::Rejected { .. } => "rejected",
        };
        f.debug_struct("ResponseFuture")
            .field("state", &state)
            .finish()
    }
}
