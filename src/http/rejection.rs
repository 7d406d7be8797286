//! A rejection as an HTTP response: `503 Service Unavailable` with `Retry-After`.

use std::time::Duration;

use ::http::{header, HeaderValue, Response, StatusCode};

use crate::{BoxError, CircuitOpen};

/// The response for a call the breaker rejected: `503 Service Unavailable`, a
/// `Retry-After` header in whole seconds (rounded up) when the breaker knows when it
/// will admit calls again, and a short plain-text body naming the breaker.
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
/// ```
pub fn service_unavailable(open: &CircuitOpen) -> Response<String> {
    let mut response = Response::new(format!("service unavailable: {open}"));
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
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
    let error: BoxError = error.into();
    match CircuitOpen::find(&*error) {
        Some(open) => service_unavailable(open),
        None => {
            let mut response = Response::new("internal server error".to_owned());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
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
