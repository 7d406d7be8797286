//! [`FailFastLayer`]: applies [`FailFast`] to a balancer.

use std::fmt;
use std::sync::Arc;

use tower::Layer;

use crate::balance::group::{AllOut, EndpointBreakers};
use crate::balance::service::FailFast;

/// Applies [`FailFast`] for one [`EndpointBreakers`](crate::balance::EndpointBreakers)
/// group. Made by
/// [`EndpointBreakers::fail_fast_layer`](crate::balance::EndpointBreakers::fail_fast_layer).
#[derive(Clone)]
pub struct FailFastLayer {
    group: Arc<dyn AllOut>,
}

impl<K: Send + Sync + 'static> EndpointBreakers<K> {
    /// The layer of [`fail_fast`](EndpointBreakers::fail_fast), for a `ServiceBuilder`.
    pub fn fail_fast_layer(&self) -> FailFastLayer {
        FailFastLayer::new(self.all_out_check())
    }
}

impl FailFastLayer {
    fn new(group: Arc<dyn AllOut>) -> Self {
        FailFastLayer { group }
    }
}

impl<S> Layer<S> for FailFastLayer {
    type Service = FailFast<S>;

    fn layer(&self, inner: S) -> FailFast<S> {
        FailFast::new(inner, Arc::clone(&self.group))
    }
}

impl fmt::Debug for FailFastLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailFastLayer").finish_non_exhaustive()
    }
}
