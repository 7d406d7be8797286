//! A rejection as an HTTP response: `503 Service Unavailable` with `Retry-After`.

use std::future::{ready, Ready};
use std::time::Duration;

use ::http::{header, HeaderValue, Response, StatusCode};

use tower::layer::util::Stack;

use crate::error::{BoxError, CircuitOpen};
use crate::fallback::FallbackLayer;
use crate::middleware::layer::CircuitBreakerLayer;

/// The default body of [`service_unavailable`]: it names no breaker and no duration
/// (the topology behind a service is its own business; `Retry-After` carries the delay).
const UNAVAILABLE_TEXT: &str = "service unavailable; retry later\n";

/// The body of every other error [`handle_error`] answers: no error text leaks.
const INTERNAL_ERROR_TEXT: &str = "internal server error\n";

/// The response for a call the breaker rejected: `503 Service Unavailable`, a
/// `Retry-After` header in whole seconds (rounded up) when the breaker knows when it
/// will admit calls again, and a short plain-text body that names no breaker and no
/// internal detail. For another body, see [`problem_json`] and [`handle_error_with`].
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::{CircuitOpen, State};
/// use tower_circuit_breaker::http::service_unavailable;
///
/// let open = CircuitOpen { name: "billing".into(), state: State::Open, retry_after: Some(Duration::from_millis(2_300)) };
/// let response = service_unavailable(&open);
/// assert_eq!(response.status(), 503);
/// assert_eq!(response.headers()["retry-after"], "3");
/// assert_eq!(response.body(), "service unavailable; retry later\n");
/// ```
pub fn service_unavailable(open: &CircuitOpen) -> Response<String> {
    unavailable(
        open,
        "text/plain; charset=utf-8",
        UNAVAILABLE_TEXT.to_owned(),
    )
}

/// [`service_unavailable`] with an RFC 9457 `application/problem+json` body instead of
/// plain text, for APIs whose clients parse JSON errors: `type`, `title`, `status`,
/// `detail` and, when known, `retry_after` in whole seconds (as the header). It names
/// no breaker either.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::{CircuitOpen, State};
/// use tower_circuit_breaker::http::problem_json;
///
/// let open = CircuitOpen { name: "billing".into(), state: State::Open, retry_after: Some(Duration::from_millis(2_300)) };
/// let response = problem_json(&open);
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// assert_eq!(
///     response.body(),
///     r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"The service is temporarily unavailable; retry later.","retry_after":3}"#
/// );
/// ```
pub fn problem_json(open: &CircuitOpen) -> Response<String> {
    let mut body = String::from(
        r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"The service is temporarily unavailable; retry later.""#,
    );
    if let Some(after) = open.retry_after {
        body.push_str(&format!(r#","retry_after":{}"#, whole_seconds(after)));
    }
    body.push('}');
    unavailable(open, "application/problem+json", body)
}

/// A `503` with `body`, its content type, and `Retry-After` when the delay is known.
fn unavailable(open: &CircuitOpen, content_type: &'static str, body: String) -> Response<String> {
    let mut response = Response::new(body);
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Some(after) = open.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(whole_seconds(after)));
    }
    response
}

/// Turns a middleware error into a response, for axum's `HandleErrorLayer` (or any
/// `map_err`): a rejection found anywhere along the error's source chain (see
/// [`CircuitOpen::find`]) becomes [`service_unavailable`]; any other error becomes a
/// `500 Internal Server Error` whose body does not leak the error's text.
///
/// It takes the breaker's own `Error<E>` as well as a [`BoxError`] from layers around
/// it (`Timeout`, `Buffer`):
///
/// ```
/// use std::convert::Infallible;
/// use tower_circuit_breaker::{CircuitOpen, Error, State};
/// use tower_circuit_breaker::http::handle_error;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let open = CircuitOpen { name: "db".into(), state: State::ForcedOpen, retry_after: None };
/// let response = handle_error(Error::<Infallible>::Open(open)).await;
/// assert_eq!(response.status(), 503);
/// assert!(response.headers().get("retry-after").is_none()); // forced open: no estimate
/// # }
/// ```
///
/// With axum: `ServiceBuilder::new().layer(HandleErrorLayer::new(handle_error)).layer(breaker)`.
pub async fn handle_error<E: Into<BoxError>>(error: E) -> Response<String> {
    respond(error, service_unavailable)
}

/// [`handle_error`] with your own answer to a rejection: `respond` builds the response
/// from the [`CircuitOpen`] (e.g. [`problem_json`], or your own JSON); any other error
/// still becomes a bare `500`. The result goes straight into axum's `HandleErrorLayer`.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use tower_circuit_breaker::{CircuitOpen, Error, State};
/// use tower_circuit_breaker::http::{handle_error_with, problem_json};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = handle_error_with(problem_json);
/// // axum: HandleErrorLayer::new(handle_error_with(problem_json))
/// let open = CircuitOpen { name: "db".into(), state: State::Open, retry_after: Some(Duration::from_secs(1)) };
/// let response = handle(Error::<Infallible>::Open(open)).await;
/// assert_eq!(response.headers()["content-type"], "application/problem+json");
/// # }
/// ```
pub fn handle_error_with<E, F>(
    respond_to_rejection: F,
) -> impl Fn(E) -> Ready<Response<String>> + Clone
where
    E: Into<BoxError>,
    F: Fn(&CircuitOpen) -> Response<String> + Clone,
{
    move |error| ready(respond(error, &respond_to_rejection))
}

fn respond<E: Into<BoxError>>(
    error: E,
    respond_to_rejection: impl Fn(&CircuitOpen) -> Response<String>,
) -> Response<String> {
    let error: BoxError = error.into();
    match CircuitOpen::find(&*error) {
        Some(open) => respond_to_rejection(open),
        None => {
            let mut response = Response::new(INTERNAL_ERROR_TEXT.to_owned());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; charset=utf-8"),
            );
            response
        }
    }
}

/// `after` in whole seconds, rounded up: a client that waits that long finds the
/// breaker ready to admit calls again.
fn whole_seconds(after: Duration) -> u64 {
    after
        .as_secs()
        .saturating_add(u64::from(after.subsec_nanos() > 0))
}

/// One layer for an HTTP server: the breaker, and its rejections answered as responses.
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
impl<C> CircuitBreakerLayer<C> {
    /// This breaker layer with its rejections answered as [`service_unavailable`]
    /// (`503`, `Retry-After`, a body naming nothing internal) instead of returned as
    /// errors, so an axum route or any HTTP service keeps its own error type (axum's
    /// `Infallible`) and needs no `HandleErrorLayer`. The response body type is the
    /// service's own, built from the text (`B: From<String>`, as axum's `Body` is).
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use tower_circuit_breaker::http::HttpClassifier;
    /// use tower_circuit_breaker::{CircuitBreakerLayer, Config};
    ///
    /// # fn main() -> Result<(), tower_circuit_breaker::ConfigError> {
    /// let breaker = CircuitBreakerLayer::new(Config::builder().name("inventory").build()?)
    ///     .classify(HttpClassifier::new()); // the handler's 5xx answers count as failures
    /// let app: Router = Router::new()
    ///     .route("/inventory", get(|| async { "42 teapots" }))
    ///     .route_layer(breaker.respond_unavailable()); // open: 503 + Retry-After
    /// # Ok(())
    /// # }
    /// ```
    pub fn respond_unavailable<B: From<String>>(
        self,
    ) -> Stack<Self, FallbackLayer<impl FnMut(CircuitOpen) -> Response<B> + Clone>> {
        self.respond_unavailable_with(service_unavailable)
    }

    /// [`respond_unavailable`](Self::respond_unavailable) with your own answer to a
    /// rejection, e.g. [`problem_json`].
    ///
    /// ```
    /// use axum::{routing::get, Router};
    /// use tower_circuit_breaker::http::problem_json;
    /// use tower_circuit_breaker::{CircuitBreakerLayer, Config};
    ///
    /// let app: Router = Router::new()
    ///     .route("/inventory", get(|| async { "42 teapots" }))
    ///     .route_layer(CircuitBreakerLayer::new(Config::default()).respond_unavailable_with(problem_json));
    /// ```
    pub fn respond_unavailable_with<B, R>(
        self,
        respond: R,
    ) -> Stack<Self, FallbackLayer<impl FnMut(CircuitOpen) -> Response<B> + Clone>>
    where
        B: From<String>,
        R: Fn(&CircuitOpen) -> Response<String> + Clone,
    {
        let answer = move |open: CircuitOpen| respond(&open).map(B::from);
        // `Stack<Inner, Outer>`: the fallback goes around the breaker.
        Stack::new(self, FallbackLayer::new(answer))
    }
}
