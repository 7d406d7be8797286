//! [`CircuitBreakerService`]: the breaker in front of an inner service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};
use tower::Service;

use crate::{
    CircuitBreaker, CircuitOpen, Classify, DefaultClassifier, Error, Permit, ResponseFuture,
};

/// A service guarded by a circuit breaker. Build it with
/// [`CircuitBreakerLayer`](crate::CircuitBreakerLayer).
///
/// Readiness follows the Tower contract:
/// - `poll_ready` never fails because the circuit is open (that would poison `Buffer`
///   and `Retry`). While open it does not poll the inner service, reserves nothing,
///   returns `Ready(Ok)`, and the next `call` resolves at once to [`Error::Open`].
/// - A half-open probe permit is reserved in `poll_ready` and carried by the response
///   future, like `ConcurrencyLimit`; it is returned when the future finishes or is
///   dropped. A service that is polled ready and then left idle holds its probe permit
///   until it is called or dropped (`half_open_max_wait` bounds the damage).
/// - A decision is re-checked by the next `poll_ready`: a permit whose period ended
///   (the breaker tripped while the inner service was `Pending`, or was reset) is
///   given back uncounted and admission starts over, and so does a rejection.
/// - With [`backpressure`](crate::ConfigBuilder::backpressure), `poll_ready` instead
///   stays `Pending` while open (or while every probe permit is taken) and wakes when
///   calls may be admitted again. A forced-open breaker still rejects at once.
///   Waiting needs a Tokio runtime with its timer; outside a Tokio runtime the service
///   rejects as in the default mode.
/// - Rejections are counted in the metrics when `call` returns them.
/// - An error from the inner `poll_ready` is classified like a call's error and
///   returned as [`Error::Inner`].
///
/// Calling `call` without a successful `poll_ready` first panics, as Tower's own
/// services do.
pub struct CircuitBreakerService<S, C = DefaultClassifier> {
    inner: S,
    breaker: CircuitBreaker,
    classifier: C,
    admission: Option<Admission>,
    waiting: Option<Pin<Box<Waiting>>>,
    /// Copy of the config's `backpressure`, read on every `poll_ready`.
    backpressure: bool,
}

/// What `poll_ready` decided for the next `call`.
#[derive(Debug)]
enum Admission {
    Admitted(Permit),
    Rejected(CircuitOpen),
}

pin_project! {
    /// A backpressure wait: until the breaker changes or the rejection's delay ends.
    struct Waiting {
        #[pin]
        changed: OwnedNotified,
        #[pin]
        sleep: Sleep,
    }
}

impl<S> CircuitBreakerService<S> {
    /// Guards `inner` with `breaker`, classifying `Err` as failure.
    pub fn new(inner: S, breaker: CircuitBreaker) -> Self {
        Self::with_classifier(inner, breaker, DefaultClassifier)
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Guards `inner` with `breaker`, classifying results with `classifier`.
    pub fn with_classifier(inner: S, breaker: CircuitBreaker, classifier: C) -> Self {
        CircuitBreakerService {
            backpressure: breaker.config().backpressure,
            inner,
            breaker,
            classifier,
            admission: None,
            waiting: None,
        }
    }

    /// The breaker guarding this service.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
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

    /// Whether a decision taken by an earlier `poll_ready` no longer holds: the breaker
    /// left the period a permit was admitted in (it tripped while the inner service was
    /// not ready, or was reset), or a rejection may have been lifted since.
    fn admission_is_stale(&self) -> bool {
        match &self.admission {
            Some(Admission::Admitted(permit)) => !permit.is_current(),
            Some(Admission::Rejected(_)) => true,
            None => false,
        }
    }

    /// Decides the next call's admission. `Ready` once decided; `Pending` only while a
    /// backpressure wait is in progress. The closed fast path is in `poll_ready`.
    #[inline(never)]
    fn poll_admission(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.admission.is_some() {
                return Poll::Ready(());
            }
            let backpressure = self.backpressure;
            // Rejections are counted when `call` hands them out, not here.
            let open = match self.breaker.lane().try_acquire(false) {
                Ok(permit) => {
                    self.admission = Some(Admission::Admitted(permit));
                    if self.waiting.is_some() {
                        self.waiting = None;
                    }
                    return Poll::Ready(());
                }
                Err(open) => open,
            };
            // Backpressure waits on a Tokio timer; outside a Tokio runtime it falls back
            // to rejecting, like the default mode.
            let wait = backpressure && tokio::runtime::Handle::try_current().is_ok();
            let Some(delay) = open.retry_after.filter(|_| wait) else {
                self.admission = Some(Admission::Rejected(open));
                self.waiting = None;
                continue;
            };
            let deadline = Instant::now() + delay;
            match self.waiting.as_mut() {
                None => {
                    // Register for wake-ups first, then check again: a change between
                    // the check above and the registration is not lost.
                    let mut waiting = Box::pin(Waiting {
                        changed: self.breaker.changed(),
                        sleep: tokio::time::sleep_until(deadline),
                    });
                    waiting.as_mut().project().changed.enable();
                    self.waiting = Some(waiting);
                }
                Some(waiting) => {
                    let mut waiting = waiting.as_mut().project();
                    waiting.sleep.as_mut().reset(deadline);
                    if waiting.changed.poll(cx).is_pending() && waiting.sleep.poll(cx).is_pending()
                    {
                        return Poll::Pending;
                    }
                    self.waiting = None;
                }
            }
        }
    }
}

impl<S, C, Req> Service<Req> for CircuitBreakerService<S, C>
where
    S: Service<Req>,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.admission.is_some() && self.admission_is_stale() {
            // Dropping an unused permit returns it without counting a call.
            self.admission = None;
        }
        if self.admission.is_none() {
            match self.breaker.lane().try_acquire_closed() {
                Some(permit) => self.admission = Some(Admission::Admitted(permit)),
                None => {
                    if self.poll_admission(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
        if let Some(Admission::Rejected(_)) = self.admission {
            // Open: the inner service is not polled, no capacity is reserved.
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(error)) => {
                if let Some(Admission::Admitted(permit)) = self.admission.take() {
                    permit.record(self.classifier.classify(Err(&error)));
                }
                Poll::Ready(Err(Error::Inner(error)))
            }
        }
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        match self.admission.take() {
            Some(Admission::Admitted(permit)) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classifier.clone())
            }
            Some(Admission::Rejected(open)) => {
                self.breaker.lane().count_rejection(open.state);
                ResponseFuture::rejected(open)
            }
            None => called_before_ready(),
        }
    }
}

/// The misuse panic of `call`, kept out of line.
#[cold]
#[inline(never)]
#[track_caller]
fn called_before_ready() -> ! {
    panic!("CircuitBreakerService::call was called before poll_ready returned Ready(Ok(()))")
}

impl<S: Clone, C: Clone> Clone for CircuitBreakerService<S, C> {
    /// A clone shares the breaker but not this service's pending admission: like every
    /// Tower service, a clone must be driven to readiness on its own.
    fn clone(&self) -> Self {
        CircuitBreakerService::with_classifier(
            self.inner.clone(),
            self.breaker.clone(),
            self.classifier.clone(),
        )
    }
}

impl<S: std::fmt::Debug, C> std::fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker.name())
            .field("state", &self.breaker.state())
            .field("admission", &self.admission)
            .finish()
    }
}
