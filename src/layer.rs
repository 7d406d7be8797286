//! [`CircuitBreakerLayer`]: applies one shared breaker to any number of services.

use tower::Layer;

use crate::{CircuitBreaker, CircuitBreakerService, Config, DefaultClassifier};

/// Wraps services in a [`CircuitBreakerService`].
///
/// Every [`layer`](Layer::layer) call and every clone of the layer or of the produced
/// services share ONE breaker, so frameworks that re-apply layers (axum does, per route)
/// still trip and recover as one.
///
/// ```
/// use std::convert::Infallible;
/// use tower::{ServiceBuilder, ServiceExt, service_fn};
/// use tower_circuit_breaker::{CircuitBreakerLayer, Config};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = CircuitBreakerLayer::new(Config::builder().name("echo").build()?);
/// let svc = ServiceBuilder::new()
///     .layer(layer.clone())
///     .service(service_fn(|req: String| async move { Ok::<_, Infallible>(req) }));
/// assert_eq!(svc.oneshot("hello".to_owned()).await?, "hello");
/// assert_eq!(layer.breaker().metrics().successes, 1);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CircuitBreakerLayer<C = DefaultClassifier> {
    breaker: CircuitBreaker,
    classifier: C,
}

impl CircuitBreakerLayer {
    /// A layer around a new breaker built from `config`.
    pub fn new(config: Config) -> Self {
        CircuitBreaker::new(config).into()
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Uses `classifier` to decide which results count as failures
    /// (see [`Classify`](crate::Classify)).
    pub fn classify<D>(self, classifier: D) -> CircuitBreakerLayer<D> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// The breaker this layer applies: read its state and metrics, steer it.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }
}

impl From<CircuitBreaker> for CircuitBreakerLayer {
    fn from(breaker: CircuitBreaker) -> Self {
        CircuitBreakerLayer {
            breaker,
            classifier: DefaultClassifier,
        }
    }
}

impl<S, C: Clone> Layer<S> for CircuitBreakerLayer<C> {
    type Service = CircuitBreakerService<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreakerService::with_classifier(inner, self.breaker.clone(), self.classifier.clone())
    }
}
