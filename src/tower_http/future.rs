//! [`ClassifiedResponseFuture`]: classifies a response's head, or hands the permit on
//! to its body.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use ::http::Response;
use ::tower_http::classify::{ClassifiedResponse, ClassifyResponse};
use pin_project_lite::pin_project;

use crate::breaker::Permit;
use crate::classify::Outcome;
use crate::error::{CircuitOpen, Error};
use crate::http::HttpClassifier;
use crate::tower_http::ClassifiedBody;

pin_project! {
    /// The future returned by
    /// [`ClassifiedBreakerService`](crate::tower_http::ClassifiedBreakerService).
    ///
    /// It resolves at once to a rejection, or drives the inner future. An inner error
    /// is recorded as a failure. A response the classifier can judge from its head is
    /// recorded here; otherwise the permit moves into the response's
    /// [`ClassifiedBody`], which records at the end of stream. Dropped before
    /// completion, it records [`Ignored`](crate::Outcome::Ignored).
    pub struct ClassifiedResponseFuture<F, C> {
        #[pin]
        state: State<F, C>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, C> {
        Called {
            #[pin]
            future: F,
            // `None` once the future completed.
            called: Option<(Permit, C)>,
        },
        Rejected {
            open: Option<CircuitOpen>,
        },
    }
}

impl<F, C> ClassifiedResponseFuture<F, C> {
    pub(crate) fn called(future: F, permit: Permit, classifier: C) -> Self {
        ClassifiedResponseFuture {
            state: State::Called {
                future,
                called: Some((permit, classifier)),
            },
        }
    }

    pub(crate) fn rejected(open: CircuitOpen) -> Self {
        ClassifiedResponseFuture {
            state: State::Rejected { open: Some(open) },
        }
    }
}

impl<F, C, B, E> Future for ClassifiedResponseFuture<F, C>
where
    F: Future<Output = Result<Response<B>, E>>,
    C: ClassifyResponse,
    E: 'static,
{
    type Output = Result<Response<ClassifiedBody<B, C::ClassifyEos>>, Error<E>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Called { future, called } => {
                let (permit, _) = called
                    .as_mut()
                    .expect("ClassifiedResponseFuture polled after it completed");
                // A panic in the inner future or the classifier records a failure.
                permit.set_polling(true);
                let Poll::Ready(result) = future.poll(cx) else {
                    permit.set_polling(false);
                    return Poll::Pending;
                };
                let (mut permit, classifier) = called.take().expect("checked above");
                let response = match result {
                    Ok(response) => response,
                    Err(error) => {
                        permit.set_polling(false);
                        // A breaker further in that rejected the call never reached the
                        // downstream: its rejection says nothing about it.
                        let outcome = match crate::error::nested::find(&error) {
                            Some(_) => Outcome::Ignored,
                            None => Outcome::Failure,
                        };
                        permit.record(outcome);
                        crate::error::nested::register::<E>();
                        return Poll::Ready(Err(Error::Inner(error)));
                    }
                };
                match classifier.classify_response(&response) {
                    ClassifiedResponse::Ready(Ok(())) => {
                        permit.set_polling(false);
                        permit.record(Outcome::Success);
                        Poll::Ready(Ok(response.map(ClassifiedBody::classified)))
                    }
                    ClassifiedResponse::Ready(Err(_)) => {
                        let floor = HttpClassifier::new().retry_after_of(&response);
                        permit.set_polling(false);
                        match floor {
                            Some(floor) => permit.failure_with_retry_after(floor),
                            None => permit.record(Outcome::Failure),
                        }
                        Poll::Ready(Ok(response.map(ClassifiedBody::classified)))
                    }
                    ClassifiedResponse::RequiresEos(eos) => {
                        permit.set_polling(false);
                        Poll::Ready(Ok(
                            response.map(|body| ClassifiedBody::at_end(body, permit, eos))
                        ))
                    }
                }
            }
            StateProj::Rejected { open } => {
                // Recognisable inside an outer breaker's or a retry policy's typed error.
                crate::error::nested::register::<E>();
                Poll::Ready(Err(Error::Open(
                    open.take()
                        .expect("ClassifiedResponseFuture polled after it completed"),
                )))
            }
        }
    }
}

impl<F, C> std::fmt::Debug for ClassifiedResponseFuture<F, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.state {
            State::Called { .. } => "called",
            State::Rejected { .. } => "rejected",
        };
        f.debug_struct("ClassifiedResponseFuture")
            .field("state", &state)
            .finish()
    }
}
