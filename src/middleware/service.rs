//! [`CircuitBreakerService`]: the breaker in front of an inner service.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::sync::futures::OwnedNotified;
use tokio::time::{Instant, Sleep};
use tower::load::Load;
use tower::Service;

use crate::breaker::{Admission, CircuitBreaker, Permit, Rejection, Ticket};
use crate::classify::{Classify, DefaultClassifier};
#[cfg(feature = "tower-http")]
use crate::error::CircuitOpen;
use crate::error::Error;
use crate::middleware::future::ResponseFuture;
use crate::middleware::timer;
use crate::state::State;

/// A service guarded by a circuit breaker. Build it with
/// [`CircuitBreakerLayer`](crate::middleware::layer::CircuitBreakerLayer).
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
///   Waiting needs a Tokio runtime with its timer; outside a Tokio runtime, or in one
///   built without `enable_time`, the service rejects as in the default mode (the
///   latter with a warning logged once per thread).
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
    readied: Option<Readied>,
    waiting: Option<Pin<Box<Waiting>>>,
    /// What `poll_ready` does when the breaker rejects (from the config's
    /// `backpressure`, or an endpoint's).
    waits: Waits,
}

/// What `poll_ready` does when the breaker rejects a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Waits {
    /// Ready at once; the call returns the rejection.
    Never,
    /// Backpressure: pending until the rejection lifts, when it has a known end; a
    /// forced open or a ramp-up's shed call is returned as in [`Waits::Never`].
    UntilLifted,
    /// An endpoint behind a load balancer: never ready while the breaker rejects, so
    /// that the balancer routes around it. Like [`Waits::UntilLifted`], and a forced
    /// open waits for the next change. (Endpoint breakers have no ramp-up: their
    /// group refuses the setting; a shed call would be returned as in
    /// [`Waits::Never`].)
    Always,
}

/// What `poll_ready` readied for the next `call`.
#[derive(Debug)]
enum Readied {
    /// Admitted with nothing reserved (every state but half-open): `call` makes the
    /// permit, so the service keeps 8 bytes between the two and starts no clock early.
    Unreserved(Ticket),
    /// A half-open probe slot, held from `poll_ready` until the call ends (or the
    /// service drops it unused).
    Probe(Permit),
    /// Not counted yet: `call` counts it and builds the [`CircuitOpen`](crate::CircuitOpen).
    Rejected(Rejection),
}

pin_project! {
    /// A backpressure wait: until the breaker changes or, if `timed`, the rejection's
    /// delay ends.
    struct Waiting {
        #[pin]
        changed: OwnedNotified,
        #[pin]
        sleep: Sleep,
        timed: bool,
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
        let waits = if breaker.config().backpressure {
            Waits::UntilLifted
        } else {
            Waits::Never
        };
        Self::waiting(inner, breaker, classifier, waits)
    }

    /// Guards `inner` with `breaker`, waiting on rejections as `waits` says.
    pub(crate) fn waiting(inner: S, breaker: CircuitBreaker, classifier: C, waits: Waits) -> Self {
        CircuitBreakerService {
            waits,
            inner,
            breaker,
            classifier,
            readied: None,
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

    /// Takes what `poll_ready` decided, for the call being made now: the permit, marked
    /// used (and timing the call if the breaker times calls), or the rejection, not yet
    /// counted (the caller hands it to [`CircuitBreaker::reject`]).
    #[inline]
    fn take_readied(&mut self) -> Result<Permit, Rejection> {
        match self.readied.take() {
            Some(Readied::Unreserved(ticket)) => Ok(self.breaker.used_permit(ticket)),
            Some(Readied::Probe(mut permit)) => {
                permit.mark_used();
                Ok(permit)
            }
            Some(Readied::Rejected(rejection)) => Err(rejection),
            None => called_before_ready(),
        }
    }

    /// Whether a decision taken by an earlier `poll_ready` no longer holds: the breaker
    /// left the period a permit was admitted in (it tripped while the inner service was
    /// not ready, or was reset), or a rejection may have been lifted since.
    fn readied_is_stale(&self) -> bool {
        match &self.readied {
            Some(Readied::Unreserved(ticket)) => !self.breaker.is_current(*ticket),
            Some(Readied::Probe(permit)) => !permit.is_current(),
            Some(Readied::Rejected(_)) => true,
            None => false,
        }
    }

    /// Decides the next call's admission. `Ready` once decided; `Pending` only while a
    /// backpressure wait is in progress. The closed fast path is in `poll_ready`.
    #[inline(never)]
    fn poll_admission(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            if self.readied.is_some() {
                return Poll::Ready(());
            }
            let waits = self.waits;
            let rejection = match self.breaker.admit() {
                Admission::Admitted(ticket) => {
                    self.readied = Some(admitted(&self.breaker, ticket));
                    if self.waiting.is_some() {
                        self.waiting = None;
                    }
                    return Poll::Ready(());
                }
                Admission::Rejected(rejection) => rejection,
            };
            // Waits need a Tokio runtime with its timer; without one the service falls
            // back to rejecting, like the default mode.
            let wait = waits != Waits::Never && timer::may_wait();
            let delay = match (wait, rejection.retry_after()) {
                (true, Some(delay)) => Some(delay),
                // Forced open: until the next change.
                (true, None) if waits == Waits::Always && rejection.state == State::ForcedOpen => {
                    None
                }
                _ => {
                    // Counted when `call` hands it out.
                    self.readied = Some(Readied::Rejected(rejection));
                    self.waiting = None;
                    continue;
                }
            };
            let deadline = Instant::now() + delay.unwrap_or_default();
            match self.waiting.as_mut() {
                None => {
                    let Some(sleep) = timer::sleep_until(deadline) else {
                        // No timer after all (logged): reject, as above.
                        self.readied = Some(Readied::Rejected(rejection));
                        continue;
                    };
                    // Register for wake-ups first, then check again: a change between
                    // the check above and the registration is not lost.
                    let mut waiting = Box::pin(Waiting {
                        changed: self.breaker.changed(),
                        sleep,
                        timed: delay.is_some(),
                    });
                    waiting.as_mut().project().changed.enable();
                    self.waiting = Some(waiting);
                }
                Some(waiting) => {
                    let mut waiting = waiting.as_mut().project();
                    *waiting.timed = delay.is_some();
                    waiting.sleep.as_mut().reset(deadline);
                    if waiting.changed.poll(cx).is_pending()
                        && (!*waiting.timed || waiting.sleep.poll(cx).is_pending())
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
    S::Error: 'static,
    C: Classify<S::Response, S::Error> + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        if self.readied.is_some() && self.readied_is_stale() {
            // Dropping an unused permit returns it without counting a call.
            self.readied = None;
        }
        if self.readied.is_none() {
            match self.breaker.admit_closed() {
                Some(ticket) => self.readied = Some(Readied::Unreserved(ticket)),
                None => {
                    if self.poll_admission(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
        if let Some(Readied::Rejected(_)) = self.readied {
            // Open: the inner service is not polled, no capacity is reserved.
            return Poll::Ready(Ok(()));
        }
        match self.inner.poll_ready(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) => Poll::Ready(Ok(())),
            Poll::Ready(Err(error)) => {
                let outcome = self.classifier.classify(Err(&error));
                match self.readied.take() {
                    Some(Readied::Unreserved(ticket)) => {
                        self.breaker.permit(ticket).record(outcome);
                    }
                    Some(Readied::Probe(permit)) => permit.record(outcome),
                    _ => {}
                }
                Poll::Ready(Err(Error::Inner(error)))
            }
        }
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        match self.take_readied() {
            Ok(permit) => {
                ResponseFuture::called(self.inner.call(request), permit, self.classifier.clone())
            }
            Err(rejection) => ResponseFuture::rejected(self.breaker.reject(rejection)),
        }
    }
}

impl<S, C> CircuitBreakerService<S, C> {
    /// Like `call`, for middleware that records the outcome later than the response
    /// future would (e.g. when a streamed body ends): calls the inner service under
    /// the admission `poll_ready` decided and hands back its future with the permit,
    /// or the (counted) rejection.
    #[cfg(feature = "tower-http")]
    pub(crate) fn call_admitted<Req>(
        &mut self,
        request: Req,
    ) -> Result<(S::Future, Permit), CircuitOpen>
    where
        S: Service<Req>,
    {
        match self.take_readied() {
            Ok(permit) => Ok((self.inner.call(request), permit)),
            Err(rejection) => Err(self.breaker.reject(rejection)),
        }
    }
}

/// What `poll_ready` keeps for an admitted call: a probe's slot must be held in a
/// permit (dropping the service gives it back); anything else waits for `call`.
fn admitted(breaker: &CircuitBreaker, ticket: Ticket) -> Readied {
    if ticket.is_probe() {
        Readied::Probe(breaker.permit(ticket))
    } else {
        Readied::Unreserved(ticket)
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
        CircuitBreakerService::waiting(
            self.inner.clone(),
            self.breaker.clone(),
            self.classifier.clone(),
            self.waits,
        )
    }
}

/// The balancer's load of an endpoint is its inner service's: the breaker adds none.
impl<S: Load, C> Load for CircuitBreakerService<S, C> {
    type Metric = S::Metric;

    fn load(&self) -> S::Metric {
        self.inner.load()
    }
}

impl<S: std::fmt::Debug, C> std::fmt::Debug for CircuitBreakerService<S, C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CircuitBreakerService")
            .field("inner", &self.inner)
            .field("breaker", &self.breaker.name())
            .field("state", &self.breaker.state())
            .field("admission", &self.readied)
            .finish()
    }
}
