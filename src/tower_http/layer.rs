//! [`ClassifiedBreakerLayer`]: a breaker whose outcomes a tower-http classifier decides.

use ::tower_http::classify::{ClassifyResponse, SharedClassifier};
use tower::Layer;

use crate::convert_error::{ConvertErrorLayer, IntoBoxError};

use crate::breaker::CircuitBreaker;
use crate::tower_http::ClassifiedBreakerService;

/// Wraps services in a [`ClassifiedBreakerService`]: `breaker` guards them and
/// `make_classifier`, a tower-http
/// [`MakeClassifier`](::tower_http::classify::MakeClassifier), classifies their
/// responses, at their end of stream when needed.
///
/// Like [`CircuitBreakerLayer`](crate::CircuitBreakerLayer), every service it makes
/// and every clone share the one breaker. See the [module docs](crate::tower_http).
#[derive(Debug, Clone)]
pub struct ClassifiedBreakerLayer<M> {
    breaker: CircuitBreaker,
    make_classifier: M,
}

impl<M> ClassifiedBreakerLayer<M> {
    /// A layer guarding services with `breaker`, classifying with `make_classifier`
    /// (e.g. `GrpcErrorsAsFailures::make_classifier()`).
    pub fn new(breaker: CircuitBreaker, make_classifier: M) -> Self {
        ClassifiedBreakerLayer {
            breaker,
            make_classifier,
        }
    }

    /// The breaker this layer applies.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// This layer, its services failing with [`BoxError`](crate::BoxError) instead of
    /// the typed `Error<E>` (see
    /// [`CircuitBreakerLayer::box_errors`](crate::CircuitBreakerLayer::box_errors)).
    pub fn box_errors(self) -> ConvertErrorLayer<Self, IntoBoxError> {
        self.convert_errors(IntoBoxError)
    }

    /// This layer, its services' errors converted by `converter`, e.g. into a gRPC
    /// status with feature `tonic` (see [`convert_error`](crate::convert_error)).
    pub fn convert_errors<V>(self, converter: V) -> ConvertErrorLayer<Self, V> {
        ConvertErrorLayer::new(self, converter)
    }
}

impl<C> ClassifiedBreakerLayer<SharedClassifier<C>> {
    /// A layer classifying every request's response with the same `classifier`, a
    /// tower-http [`ClassifyResponse`](::tower_http::classify::ClassifyResponse) such
    /// as `ServerErrorsAsFailures::new()` (wrapped in a
    /// [`SharedClassifier`](::tower_http::classify::SharedClassifier)).
    ///
    /// ```
    /// use tower_http::classify::StatusInRangeAsFailures;
    /// use tower_circuit_breaker::tower_http::ClassifiedBreakerLayer;
    /// use tower_circuit_breaker::{CircuitBreaker, Config};
    ///
    /// let breaker = CircuitBreaker::new(Config::default());
    /// // Only 500..=599 count; tower-http's classifier decides.
    /// let layer = ClassifiedBreakerLayer::from_classifier(breaker, StatusInRangeAsFailures::new(500..=599));
    /// # let _ = layer;
    /// ```
    pub fn from_classifier(breaker: CircuitBreaker, classifier: C) -> Self
    where
        C: ClassifyResponse + Clone,
    {
        ClassifiedBreakerLayer::new(breaker, SharedClassifier::new(classifier))
    }
}

impl<S, M: Clone> Layer<S> for ClassifiedBreakerLayer<M> {
    type Service = ClassifiedBreakerService<S, M>;

    fn layer(&self, inner: S) -> Self::Service {
        ClassifiedBreakerService::new(inner, self.breaker.clone(), self.make_classifier.clone())
    }
}
