//! [`CircuitBreakerLayer`]: applies one shared breaker to any number of services.

use tower::Layer;

use crate::breaker::CircuitBreaker;
use crate::classify::{ClassifyFn, DefaultClassifier, Outcome};
use crate::config::Config;
use crate::convert_error::{ConvertErrorLayer, IntoBoxError};
use crate::middleware::service::CircuitBreakerService;

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

/// The layer of an existing breaker.
impl CircuitBreaker {
    /// A layer whose services all share this breaker.
    pub fn layer(&self) -> CircuitBreakerLayer {
        CircuitBreakerLayer::from(self.clone())
    }
}

impl CircuitBreakerLayer {
    /// A layer around a new breaker built from `config`.
    pub fn new(config: Config) -> Self {
        CircuitBreaker::new(config).into()
    }
}

impl<C> CircuitBreakerLayer<C> {
    /// Uses `classifier` to decide which results count as failures
    /// (see [`Classify`](crate::Classify)). For a closure, prefer
    /// [`classify_fn`](Self::classify_fn), which needs no parameter annotations.
    pub fn classify<D>(self, classifier: D) -> CircuitBreakerLayer<D> {
        CircuitBreakerLayer {
            breaker: self.breaker,
            classifier,
        }
    }

    /// Classifies results with a closure, whose parameter type Rust then knows from
    /// this method's bound: no annotation needed, and `Res` and `Err` are inferred from
    /// the service the layer wraps.
    ///
    /// ```
    /// use tower::{ServiceBuilder, ServiceExt, service_fn};
    /// use tower_circuit_breaker::{CircuitBreakerLayer, Config, Outcome};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let layer = CircuitBreakerLayer::new(Config::default()).classify_fn(|result| match result {
    ///     Ok(_) => Outcome::Success,
    ///     Err(_) => Outcome::Ignored,
    /// });
    /// let svc = ServiceBuilder::new()
    ///     .layer(layer)
    ///     .service(service_fn(|_: ()| async { Err::<(), _>(std::io::Error::other("busy")) }));
    /// assert!(svc.oneshot(()).await.is_err());
    /// # }
    /// ```
    ///
    /// Where nothing tells the types (the layer is not applied in this function, or the
    /// closure calls a method on the error), the compiler says so at this call, not at
    /// a distant `oneshot` or `ready`:
    ///
    /// ```compile_fail,E0282
    /// use tower_circuit_breaker::{CircuitBreakerLayer, Config, Outcome};
    ///
    /// let layer = CircuitBreakerLayer::new(Config::default()).classify_fn(|result| match result {
    ///     Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Ignored, // error[E0282]: type annotations needed
    ///     Err(_) => Outcome::Failure,
    ///     Ok(_) => Outcome::Success,
    /// });
    /// # let _: CircuitBreakerLayer<_> = layer;
    /// ```
    ///
    /// Name the types there to fix it:
    /// `.classify_fn(|result: Result<&String, &std::io::Error>| ...)`, or
    /// `.classify_fn::<String, std::io::Error, _>(...)`.
    pub fn classify_fn<Res, Err, F>(
        self,
        classify: F,
    ) -> CircuitBreakerLayer<ClassifyFn<F, Res, Err>>
    where
        F: Fn(Result<&Res, &Err>) -> Outcome,
    {
        self.classify(ClassifyFn::new(classify))
    }

    /// The breaker this layer applies: read its state and metrics, steer it.
    pub fn breaker(&self) -> &CircuitBreaker {
        &self.breaker
    }

    /// This layer, its services failing with [`BoxError`](crate::BoxError) instead of
    /// the typed [`Error<E>`](crate::Error): what Tower middleware conventionally yields,
    /// so a stack with `Timeout` inside needs no `map_err`. A rejection is the boxed
    /// [`CircuitOpen`](crate::CircuitOpen) (find it with
    /// [`CircuitOpen::find`](crate::CircuitOpen::find)), an inner error is boxed as is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower::{BoxError, ServiceBuilder, ServiceExt, service_fn};
    /// use tower_circuit_breaker::{CircuitBreakerLayer, Config};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), BoxError> {
    /// let svc = ServiceBuilder::new()
    ///     .layer(CircuitBreakerLayer::new(Config::default()).box_errors())
    ///     .timeout(Duration::from_secs(1))
    ///     .service(service_fn(|id: u32| async move { Ok::<_, BoxError>(id) }));
    /// assert_eq!(svc.oneshot(7).await?, 7); // `?` just works: the error is a BoxError
    /// # Ok(())
    /// # }
    /// ```
    pub fn box_errors(self) -> ConvertErrorLayer<Self, IntoBoxError> {
        self.convert_errors(IntoBoxError)
    }

    /// This layer, its services' errors converted by `converter`, e.g.
    /// [`IntoBoxError`] or, with feature `tonic`, a gRPC status
    /// (see [`convert_error`](crate::convert_error)).
    pub fn convert_errors<V>(self, converter: V) -> ConvertErrorLayer<Self, V> {
        ConvertErrorLayer::new(self, converter)
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
