//! [`HttpClassifier`](crate::http::HttpClassifier) for `reqwest` (feature `reqwest`):
//! `reqwest::Client` is a `tower::Service<reqwest::Request>`, so it is guarded with one
//! layer and no hand-written classifier.

use std::time::Duration;

use crate::classify::{Classify, Outcome};
use crate::http::HttpClassifier;

/// Classifies a `reqwest::Client` used directly as the service (feature `reqwest`).
///
/// A response goes by its status, with the same rules (and the same setters) as an
/// `http::Response`: 5xx and 429 fail, other 4xx are ignored, the rest succeeds, and
/// [`status_override`](HttpClassifier::status_override) decides first. A failed 429 or
/// 503 with `Retry-After` keeps the breaker open at least that long if it trips it,
/// exactly as for an `http::Response`.
///
/// A [`reqwest::Error`] goes by its kind, checked in this order:
///
/// | error | outcome | why |
/// | --- | --- | --- |
/// | [`is_builder()`](reqwest::Error::is_builder): a bad URL or scheme | [`Ignored`](Outcome::Ignored) | the caller's fault; the request never reached the backend |
/// | [`is_status()`](reqwest::Error::is_status), from [`error_for_status`](reqwest::Response::error_for_status) | by its status, as a response | the backend answered; its status says how it is |
/// | [`is_connect()`](reqwest::Error::is_connect): refused, unreachable, DNS | [`Failure`](Outcome::Failure) | the backend cannot be reached |
/// | [`is_timeout()`](reqwest::Error::is_timeout) | [`Failure`](Outcome::Failure) | the backend is too slow |
/// | any other (request, body, decode, redirect, upgrade) | [`Failure`](Outcome::Failure) | the exchange with the backend broke |
///
/// reqwest also reports a redirect to a non-HTTP scheme as a builder error: the backend
/// answered, which says nothing about its health, so ignoring it stays right. An error
/// carries no headers, so an `is_status()` error never asks for a `Retry-After` floor.
///
/// The call ends when the response head arrives: an error while the caller later reads
/// the body (`text()`, `bytes()`, `json()`) happens after the outcome was recorded and
/// is not seen by the breaker. Wrap the client in a service that reads the body (or
/// calls `error_for_status`) inside the breaker to classify those too.
///
/// ```
/// use std::time::Duration;
/// use tower::{Service, ServiceBuilder, ServiceExt};
/// use tower_circuit_breaker::http::HttpClassifier;
/// use tower_circuit_breaker::{
///     CircuitBreakerLayer, CircuitBreakerService, Classify, Config, Error, Outcome, State,
/// };
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let layer = CircuitBreakerLayer::new(Config::builder().name("api").build()?)
///     .classify(HttpClassifier::new());
/// let client = reqwest::Client::new();
/// // The client is the service: one layer, no hand-written classifier.
/// let mut api: CircuitBreakerService<reqwest::Client, HttpClassifier> =
///     ServiceBuilder::new().layer(layer.clone()).service(client.clone());
///
/// // A request the caller built wrong never leaves the process: ignored, not counted.
/// let request = client.get("ftp://example.com/price").build()?;
/// match api.ready().await?.call(request).await {
///     Err(Error::Inner(error)) => assert!(error.is_builder()),
///     other => panic!("expected a builder error, got {other:?}"),
/// }
/// assert_eq!(layer.breaker().metrics().ignored, 1);
/// assert_eq!(layer.breaker().state(), State::Closed);
///
/// // Responses go by status, as `http::Response`s do.
/// let classifier = HttpClassifier::new();
/// let outcome = |code: u16| {
///     let response: reqwest::Response =
///         http::Response::builder().status(code).body("").expect("a valid status").into();
///     Classify::<_, reqwest::Error>::classify(&classifier, Ok(&response))
/// };
/// assert_eq!(outcome(200), Outcome::Success);
/// assert_eq!(outcome(404), Outcome::Ignored);
/// assert_eq!(outcome(429), Outcome::Failure);
/// assert_eq!(outcome(502), Outcome::Failure);
///
/// // A failed 503 with `Retry-After` asks to stay open that long, should it trip.
/// let overloaded: reqwest::Response =
///     http::Response::builder().status(503).header("retry-after", "120").body("")?.into();
/// assert_eq!(
///     Classify::<_, reqwest::Error>::retry_after(&classifier, Ok(&overloaded)),
///     Some(Duration::from_secs(120)),
/// );
/// # Ok(())
/// # }
/// ```
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
impl Classify<reqwest::Response, reqwest::Error> for HttpClassifier {
    #[inline]
    fn classify(&self, result: Result<&reqwest::Response, &reqwest::Error>) -> Outcome {
        match result {
            Ok(response) => self.classify_status(response.status()),
            Err(error) => self.classify_reqwest_error(error),
        }
    }

    fn retry_after(&self, result: Result<&reqwest::Response, &reqwest::Error>) -> Option<Duration> {
        let response = result.ok()?;
        self.retry_after_for(response.status(), response.headers())
    }
}

impl HttpClassifier {
    /// The outcome of a failed reqwest call, by the table on the `Classify` impl.
    /// `is_connect()` and `is_timeout()` look at an error's cause whatever its kind and
    /// fail like every remaining kind, so only the builder and status kinds need a check
    /// of their own (a builder error has no status: their order does not matter).
    #[cold]
    fn classify_reqwest_error(&self, error: &reqwest::Error) -> Outcome {
        if error.is_builder() {
            Outcome::Ignored
        } else if let Some(status) = error.status() {
            // `status()` is `Some` exactly for `is_status()` errors.
            self.classify_status(status)
        } else {
            // Connect, timeout, request, body, decode, redirect, upgrade.
            Outcome::Failure
        }
    }
}
