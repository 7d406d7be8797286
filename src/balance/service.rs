//! [`FailFast`]: a balancer whose callers fail fast when every endpoint is out.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::futures::OwnedNotified;
use tower::Service;

use crate::balance::future::ResponseFuture;
use crate::balance::group::{AllOut, EndpointBreakers};
use crate::error::{BoxError, CircuitOpen};

/// A load balancer over the endpoints of an
/// [`EndpointBreakers`](crate::balance::EndpointBreakers) group, failing fast when no
/// endpoint may be called. Made by
/// [`EndpointBreakers::fail_fast`](crate::balance::EndpointBreakers::fail_fast).
///
/// A balancer whose endpoints are all out of rotation is not ready, and its caller
/// would wait inside it for the first open period to end. When the balancer is not
/// ready, `FailFast` checks the group: if every endpoint is out (open within its open
/// period, or forced open), `poll_ready` returns `Ready(Ok)` and the call fails at
/// once with a [`CircuitOpen`] named after the group, with `retry_after` the earliest
/// moment an endpoint may be probed. The balancer is still polled first each time, so
/// its discovery goes on (an endpoint added meanwhile is called). A
/// caller already waiting for the balancer is woken when the last endpoint goes out.
/// While an endpoint is half-open its probes decide within a call's time, so callers
/// wait in the balancer for them (at most
/// [`half_open_max_wait`](crate::ConfigBuilder::half_open_max_wait)).
///
/// Readiness follows the breaker's contract: `poll_ready` never fails because the
/// endpoints are out (that would poison `Buffer` and `Retry`), and a rejection decided
/// there is decided again at the next `poll_ready`. Put `Buffer` outside
/// (`Buffer(FailFast(balancer))`): inside, calls already queued in the buffer would
/// wait there.
///
/// Errors are [`BoxError`]s, as the balancer's are: the rejection is the boxed
/// `CircuitOpen` itself (match it with [`CircuitOpen::find`] or `downcast_ref`), any
/// other error is the balancer's.
pub struct FailFast<S> {
    inner: S,
    group: Arc<dyn AllOut>,
    /// The rejection `poll_ready` decided for the next call.
    rejected: Option<CircuitOpen>,
    /// While the balancer is not ready: woken when an endpoint leaves or returns to
    /// rotation.
    waiting: Option<Pin<Box<OwnedNotified>>>,
}

impl<K: Send + Sync + 'static> EndpointBreakers<K> {
    /// Wraps the balancer `inner` so that a call fails fast with a [`CircuitOpen`] when
    /// every endpoint is out (see [`FailFast`]).
    pub fn fail_fast<S>(&self, inner: S) -> FailFast<S> {
        FailFast::new(inner, self.all_out_check())
    }
}

impl<S> FailFast<S> {
    pub(super) fn new(inner: S, group: Arc<dyn AllOut>) -> Self {
        FailFast {
            inner,
            group,
            rejected: None,
            waiting: None,
        }
    }

    /// The balancer.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The balancer, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the balancer.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, Req> Service<Req> for FailFast<S>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        loop {
            // The balancer first, every time: polling it also drives its discovery, so
            // an endpoint added while all the others are out is found and called.
            if let Poll::Ready(ready) = self.inner.poll_ready(cx) {
                self.rejected = None;
                self.waiting = None;
                return Poll::Ready(ready.map_err(Into::into));
            }
            if let Some(open) = self.group.refusal() {
                // Not ready, and no endpoint may be called: fail fast. The balancer
                // holds no reservation for this call.
                self.rejected = Some(open);
                self.waiting = None;
                return Poll::Ready(Ok(()));
            }
            self.rejected = None;
            match self.waiting.as_mut() {
                None => {
                    // Register first, then check again: the last endpoint going out
                    // between the check above and the registration is not missed.
                    let mut changed =
                        Box::pin(Arc::clone(&self.group.budget().changed).notified_owned());
                    changed.as_mut().enable();
                    self.waiting = Some(changed);
                }
                Some(changed) => {
                    if changed.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.waiting = None;
                }
            }
        }
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.rejected.take() {
            Some(open) => {
                self.group.count_rejection();
                ResponseFuture::rejected(open)
            }
            None => ResponseFuture::called(self.inner.call(request)),
        }
    }
}

impl<S: Clone> Clone for FailFast<S> {
    /// A clone shares the group but not this service's pending decision.
    fn clone(&self) -> Self {
        FailFast::new(self.inner.clone(), Arc::clone(&self.group))
    }
}

impl<S: fmt::Debug> fmt::Debug for FailFast<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailFast")
            .field("inner", &self.inner)
            .field("rejected", &self.rejected)
            .finish()
    }
}
