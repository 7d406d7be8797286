//! [`FallbackLayer`]: applies a fallback to services guarded by a breaker.

use tower::Layer;

use crate::fallback::service::Fallback;

/// Wraps a breaker-guarded service in [`Fallback`]: rejections become
/// `fallback(circuit_open)`.
///
/// The fallback is cloned into every call's future, so keep it cheap to clone: a plain
/// `fn`, or a closure over an `Arc`. See the [module docs](crate::fallback) for an
/// example.
#[derive(Debug, Clone)]
pub struct FallbackLayer<F> {
    fallback: F,
}

impl<F> FallbackLayer<F> {
    /// A layer answering rejections with `fallback`, a
    /// `FnMut(CircuitOpen) -> Response`.
    pub fn new(fallback: F) -> Self {
        FallbackLayer { fallback }
    }
}

impl<S, F: Clone> Layer<S> for FallbackLayer<F> {
    type Service = Fallback<S, F>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback::new(inner, self.fallback.clone())
    }
}
