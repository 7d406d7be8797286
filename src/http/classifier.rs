//! [`HttpClassifier`]: outcomes for `http::Response`s by status class.

use std::time::{Duration, SystemTime};

use ::http::{header, HeaderMap, Response, StatusCode};

use crate::classify::{Classify, Outcome};
use crate::http::parse_retry_after;

/// The longest `Retry-After` honoured by default: a misbehaving server cannot keep the
/// breaker open for longer than this.
const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// Classifies `http::Response`s by status:
///
/// | status | default outcome | setter |
/// | --- | --- | --- |
/// | 5xx | [`Failure`](Outcome::Failure) | [`server_errors`](Self::server_errors) |
/// | 429 Too Many Requests | [`Failure`](Outcome::Failure) | [`too_many_requests`](Self::too_many_requests) |
/// | other 4xx | [`Ignored`](Outcome::Ignored): the caller's fault, not the backend's | [`client_errors`](Self::client_errors) |
/// | 1xx, 2xx, 3xx | [`Success`](Outcome::Success) | |
///
/// [`status_override`](Self::status_override) decides single statuses first. An `Err`
/// from the service (connection refused, timeout) is always a failure.
///
/// With feature `reqwest`, the same classifier also classifies a `reqwest::Client` used
/// directly as the service (`Classify<reqwest::Response, reqwest::Error>`): responses by
/// the same status rules and `Retry-After`, and errors by their kind (a request the
/// caller built wrong is ignored); see the table on that impl.
///
/// A 429 or 503 classified as a failure that carries a `Retry-After` header (seconds or
/// HTTP date) keeps the breaker open at least that long if it is the failure that
/// trips it, capped at [`max_retry_after`](Self::max_retry_after) (5 minutes by
/// default). The configured open duration still applies when it is longer.
///
/// Cloned per call, it is `Copy` and allocation-free.
///
/// ```
/// use http::{Response, StatusCode};
/// use tower_circuit_breaker::http::HttpClassifier;
/// use tower_circuit_breaker::{Classify, Outcome};
///
/// // A 404 is news about the backend here, and 501 is a permanent answer, not sickness.
/// let classifier = HttpClassifier::new()
///     .client_errors(Outcome::Failure)
///     .status_override(|status| (status == StatusCode::NOT_IMPLEMENTED).then_some(Outcome::Success));
/// let response = |code: u16| Response::builder().status(code).body(()).unwrap();
/// let outcome = |code| Classify::<_, std::io::Error>::classify(&classifier, Ok(&response(code)));
/// assert_eq!(outcome(404), Outcome::Failure);
/// assert_eq!(outcome(501), Outcome::Success);
/// assert_eq!(outcome(503), Outcome::Failure);
/// assert_eq!(outcome(200), Outcome::Success);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct HttpClassifier {
    server_errors: Outcome,
    too_many_requests: Outcome,
    client_errors: Outcome,
    status_override: Option<fn(StatusCode) -> Option<Outcome>>,
    honour_retry_after: bool,
    max_retry_after: Duration,
}

impl Default for HttpClassifier {
    fn default() -> Self {
        HttpClassifier {
            server_errors: Outcome::Failure,
            too_many_requests: Outcome::Failure,
            client_errors: Outcome::Ignored,
            status_override: None,
            honour_retry_after: true,
            max_retry_after: DEFAULT_MAX_RETRY_AFTER,
        }
    }
}

impl HttpClassifier {
    /// 5xx and 429 fail, other 4xx are ignored, the rest succeeds; `Retry-After` is
    /// honoured up to 5 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The outcome of a 5xx response (default [`Outcome::Failure`]).
    pub fn server_errors(mut self, outcome: Outcome) -> Self {
        self.server_errors = outcome;
        self
    }

    /// The outcome of a `429 Too Many Requests` (default [`Outcome::Failure`]).
    pub fn too_many_requests(mut self, outcome: Outcome) -> Self {
        self.too_many_requests = outcome;
        self
    }

    /// The outcome of a 4xx response other than 429 (default [`Outcome::Ignored`]: a
    /// bad request says nothing about the backend's health).
    pub fn client_errors(mut self, outcome: Outcome) -> Self {
        self.client_errors = outcome;
        self
    }

    /// A function consulted first for every status: `Some(outcome)` decides, `None`
    /// falls back to the status classes. A plain `fn` keeps the classifier `Copy`.
    pub fn status_override(mut self, decide: fn(StatusCode) -> Option<Outcome>) -> Self {
        self.status_override = Some(decide);
        self
    }

    /// Whether a failed 429 or 503 with `Retry-After` sets a floor for the open
    /// duration (default `true`).
    pub fn honour_retry_after(mut self, honour: bool) -> Self {
        self.honour_retry_after = honour;
        self
    }

    /// The longest `Retry-After` honoured (default 5 minutes); longer requests are cut
    /// to this.
    pub fn max_retry_after(mut self, max: Duration) -> Self {
        self.max_retry_after = max;
        self
    }

    /// The outcome of a response with `status`.
    pub fn classify_status(&self, status: StatusCode) -> Outcome {
        if let Some(outcome) = self.status_override.and_then(|decide| decide(status)) {
            return outcome;
        }
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.too_many_requests
        } else if status.is_server_error() {
            self.server_errors
        } else if status.is_client_error() {
            self.client_errors
        } else {
            Outcome::Success
        }
    }

    /// The open-duration floor a failed `response` asks for: its `Retry-After`, when it
    /// is a 429 or 503, honouring is on, and the header parses; capped at
    /// [`max_retry_after`](Self::max_retry_after).
    pub fn retry_after_of<B>(&self, response: &Response<B>) -> Option<Duration> {
        self.retry_after_for(response.status(), response.headers())
    }

    /// [`retry_after_of`](Self::retry_after_of) from a response's parts: the one place
    /// that decides, so every client type this classifier serves (`http::Response`,
    /// `reqwest::Response`, tower-http's classified responses) honours `Retry-After`
    /// alike.
    pub(crate) fn retry_after_for(
        &self,
        status: StatusCode,
        headers: &HeaderMap,
    ) -> Option<Duration> {
        if !self.honour_retry_after
            || (status != StatusCode::TOO_MANY_REQUESTS
                && status != StatusCode::SERVICE_UNAVAILABLE)
        {
            return None;
        }
        let value = headers.get(header::RETRY_AFTER)?;
        let after = parse_retry_after(value, SystemTime::now())?;
        Some(after.min(self.max_retry_after))
    }
}

impl<B, E> Classify<Response<B>, E> for HttpClassifier {
    #[inline]
    fn classify(&self, result: Result<&Response<B>, &E>) -> Outcome {
        match result {
            Ok(response) => self.classify_status(response.status()),
            Err(_) => Outcome::Failure,
        }
    }

    fn retry_after(&self, result: Result<&Response<B>, &E>) -> Option<Duration> {
        self.retry_after_of(result.ok()?)
    }
}
