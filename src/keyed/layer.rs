//! [`KeyedCircuitBreakerLayer`]: one breaker per request key.

use tower::Layer;

use crate::classify::DefaultClassifier;
use crate::config::Config;
use crate::convert_error::{ConvertErrorLayer, IntoBoxError};
use crate::keyed::{KeyedCircuitBreakerService, KeyedCircuitBreakers};

/// Wraps services in a [`KeyedCircuitBreakerService`]: each request is guarded by the
/// breaker of its key, computed by `key` from the request (the URI authority, a tenant
/// header, ...). A sick key trips alone while every other key keeps flowing.
///
/// Every layer call and clone shares one [`KeyedCircuitBreakers`] map, bounded in size
/// and expiring idle keys.
///
/// ```
/// use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
/// use tower_circuit_breaker::{Config, Error, KeyedCircuitBreakerLayer, State};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// // Requests are "host/path" strings here; an HTTP stack would key on the URI authority.
/// let layer = KeyedCircuitBreakerLayer::new(
///     Config::builder().name("upstream").consecutive_failures(1).build()?,
///     |request: &String| request.split('/').next().unwrap_or_default().to_owned(),
/// );
/// let mut svc = ServiceBuilder::new().layer(layer.clone()).service(service_fn(|request: String| async move {
///     if request.starts_with("sick") { Err(std::io::Error::other("down")) } else { Ok(request) }
/// }));
///
/// let _ = svc.ready().await?.call("sick.example/a".to_owned()).await; // trips "sick.example"
/// let rejected = svc.ready().await?.call("sick.example/b".to_owned()).await;
/// assert!(matches!(rejected, Err(Error::Open(_))));
/// assert_eq!(svc.ready().await?.call("ok.example/c".to_owned()).await?, "ok.example/c");
///
/// let sick = layer.breakers().get(&"sick.example".to_owned()).unwrap();
/// assert_eq!((sick.name(), sick.state()), ("upstream/sick.example", State::Open));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct KeyedCircuitBreakerLayer<K, F, C = DefaultClassifier> {
    breakers: KeyedCircuitBreakers<K>,
    key: F,
    classifier: C,
}

impl<K, F> KeyedCircuitBreakerLayer<K, F> {
    /// A layer keeping one breaker per key (built from `config`), with the default
    /// bounds of [`KeyedCircuitBreakers`].
    pub fn new(config: Config, key: F) -> Self {
        Self::with_breakers(KeyedCircuitBreakers::new(config), key)
    }

    /// A layer over an existing map, e.g. one built with custom bounds through
    /// [`KeyedCircuitBreakers::builder`], or shared with a health endpoint.
    pub fn with_breakers(breakers: KeyedCircuitBreakers<K>, key: F) -> Self {
        KeyedCircuitBreakerLayer {
            breakers,
            key,
            classifier: DefaultClassifier,
        }
    }
}

impl<K, F, C> KeyedCircuitBreakerLayer<K, F, C> {
    /// Uses `classifier` to decide which results count as failures.
    pub fn classify<D>(self, classifier: D) -> KeyedCircuitBreakerLayer<K, F, D> {
        KeyedCircuitBreakerLayer {
            breakers: self.breakers,
            key: self.key,
            classifier,
        }
    }

    /// The map of breakers this layer applies: inspect, steer, report health.
    pub fn breakers(&self) -> &KeyedCircuitBreakers<K> {
        &self.breakers
    }

    /// This layer, its services failing with [`BoxError`](crate::BoxError) instead of
    /// the typed `Error<E>` (see
    /// [`CircuitBreakerLayer::box_errors`](crate::CircuitBreakerLayer::box_errors)).
    pub fn box_errors(self) -> ConvertErrorLayer<Self, IntoBoxError> {
        self.convert_errors(IntoBoxError)
    }

    /// This layer, its services' errors converted by `converter`
    /// (see [`convert_error`](crate::convert_error)).
    pub fn convert_errors<V>(self, converter: V) -> ConvertErrorLayer<Self, V> {
        ConvertErrorLayer::new(self, converter)
    }
}

impl<S, K, F: Clone, C: Clone> Layer<S> for KeyedCircuitBreakerLayer<K, F, C> {
    type Service = KeyedCircuitBreakerService<S, K, F, C>;

    fn layer(&self, inner: S) -> Self::Service {
        KeyedCircuitBreakerService::new(
            inner,
            self.breakers.clone(),
            self.key.clone(),
            self.classifier.clone(),
        )
    }
}
