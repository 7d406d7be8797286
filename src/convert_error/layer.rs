//! [`ConvertErrorLayer`]: a layer whose services convert their errors.

use tower::Layer;

use crate::convert_error::ConvertErrorService;

/// Applies the layer `L`, then converts the produced service's errors with `C`
/// (see [`ConvertError`](crate::convert_error::ConvertError)).
#[derive(Debug, Clone)]
pub struct ConvertErrorLayer<L, C> {
    layer: L,
    converter: C,
}

impl<L, C> ConvertErrorLayer<L, C> {
    /// `layer`, its services' errors converted by `converter`.
    pub fn new(layer: L, converter: C) -> Self {
        ConvertErrorLayer { layer, converter }
    }

    /// The wrapped layer, e.g. to reach its breaker.
    pub fn get_ref(&self) -> &L {
        &self.layer
    }
}

impl<S, L: Layer<S>, C: Clone> Layer<S> for ConvertErrorLayer<L, C> {
    type Service = ConvertErrorService<L::Service, C>;

    fn layer(&self, inner: S) -> Self::Service {
        ConvertErrorService::new(self.layer.layer(inner), self.converter.clone())
    }
}
