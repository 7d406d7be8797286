//! [`ClassifiedBody`]: a response body that records the call's outcome when it ends.

use std::pin::Pin;
use std::task::{Context, Poll};

use ::tower_http::classify::ClassifyEos;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::breaker::Permit;

use crate::classify::Outcome;

pin_project! {
    /// A response body that carries its call's [`Permit`] until the end of stream,
    /// then records the outcome a tower-http [`ClassifyEos`] gives it:
    ///
    /// - trailers (e.g. gRPC's `grpc-status`): classified with them;
    /// - the last data frame, when the body then reports
    ///   [`is_end_stream`](Body::is_end_stream), or the end of frames: classified
    ///   without trailers;
    /// - a body error: a failure.
    ///
    /// Dropped earlier, its permit records [`Ignored`](crate::Outcome::Ignored) (a
    /// reader that gave up says nothing about the downstream). Frames pass through
    /// unchanged. Responses classified from their head carry no permit and only pass
    /// frames through.
    pub struct ClassifiedBody<B, E> {
        #[pin]
        inner: B,
        // `Some` until the end of stream was classified.
        pending: Option<(Permit, E)>,
    }
}

impl<B, E> ClassifiedBody<B, E> {
    /// A body whose call was already classified.
    pub(crate) fn classified(inner: B) -> Self {
        ClassifiedBody {
            inner,
            pending: None,
        }
    }

    /// A body that classifies its call at the end of stream.
    pub(crate) fn at_end(inner: B, permit: Permit, eos: E) -> Self {
        ClassifiedBody {
            inner,
            pending: Some((permit, eos)),
        }
    }

    /// Whether the outcome is still to be recorded at the end of stream.
    pub fn is_pending(&self) -> bool {
        self.pending.is_some()
    }

    /// The wrapped body.
    pub fn get_ref(&self) -> &B {
        &self.inner
    }
}

/// Records the end-of-stream outcome held in `pending`, if any is still pending.
fn finish<E: ClassifyEos>(pending: &mut Option<(Permit, E)>, classify: impl FnOnce(E) -> bool) {
    if let Some((mut permit, eos)) = pending.take() {
        permit.set_polling(true);
        let ok = classify(eos);
        permit.set_polling(false);
        permit.record(if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        });
    }
}

impl<B, E> Body for ClassifiedBody<B, E>
where
    B: Body,
    E: ClassifyEos,
{
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let mut this = self.project();
        if let Some((permit, _)) = this.pending.as_mut() {
            // A panic in the inner body records a failure.
            permit.set_polling(true);
        }
        let polled = this.inner.as_mut().poll_frame(cx);
        let pending = this.pending;
        if let Some((permit, _)) = pending.as_mut() {
            permit.set_polling(false);
        }
        match &polled {
            Poll::Pending => {}
            Poll::Ready(None) => finish(pending, |eos| eos.classify_eos(None).is_ok()),
            Poll::Ready(Some(Err(_))) => finish(pending, |_| false),
            Poll::Ready(Some(Ok(frame))) => match frame.trailers_ref() {
                Some(trailers) => finish(pending, |eos| eos.classify_eos(Some(trailers)).is_ok()),
                // A reader may stop polling once the body says it has ended.
                None if this.inner.is_end_stream() => {
                    finish(pending, |eos| eos.classify_eos(None).is_ok())
                }
                None => {}
            },
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: std::fmt::Debug, E> std::fmt::Debug for ClassifiedBody<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClassifiedBody")
            .field("inner", &self.inner)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}
