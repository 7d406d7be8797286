//! Feature `http`: status classification, `Retry-After` as a floor for the open
//! duration (paused time), and the `503` mapping of a rejection.
#![cfg(feature = "http")]

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{header, HeaderValue, Response, StatusCode};
use tower::{service_fn, BoxError, Layer, Service, ServiceExt};
use tower_circuit_breaker::http::{handle_error, parse_retry_after, HttpClassifier};
use tower_circuit_breaker::{
    CircuitBreakerLayer, CircuitOpen, Classify, Config, Error, Outcome, State,
};

const SECOND: Duration = Duration::from_secs(1);

/// What the backend answers next: a status and an optional `Retry-After` value.
type Script = Arc<Mutex<(u16, Option<String>)>>;

fn scripted(
    script: Script,
) -> impl Service<
    (),
    Response = Response<String>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<Response<String>, Infallible>> + Send,
> + Clone {
    service_fn(move |()| {
        let (status, retry_after) = script.lock().unwrap().clone();
        async move {
            let mut response = Response::new(String::new());
            *response.status_mut() = StatusCode::from_u16(status).unwrap();
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, value.parse().unwrap());
            }
            Ok(response)
        }
    })
}

fn set(script: &Script, status: u16, retry_after: Option<&str>) {
    *script.lock().unwrap() = (status, retry_after.map(str::to_owned));
}

fn outcome(classifier: &HttpClassifier, status: u16) -> Outcome {
    let response = Response::builder().status(status).body(()).unwrap();
    Classify::<_, Infallible>::classify(classifier, Ok(&response))
}

#[test]
fn default_status_classes() {
    let classifier = HttpClassifier::new();
    for (status, expected) in [
        (100, Outcome::Success),
        (200, Outcome::Success),
        (204, Outcome::Success),
        (301, Outcome::Success),
        (400, Outcome::Ignored),
        (404, Outcome::Ignored),
        (499, Outcome::Ignored),
        (429, Outcome::Failure),
        (500, Outcome::Failure),
        (503, Outcome::Failure),
        (599, Outcome::Failure),
    ] {
        assert_eq!(outcome(&classifier, status), expected, "status {status}");
    }
    let err: Result<&Response<()>, &&str> = Err(&"connection refused");
    assert_eq!(classifier.classify(err), Outcome::Failure);
}

#[test]
fn status_classes_are_configurable() {
    let classifier = HttpClassifier::new()
        .client_errors(Outcome::Failure)
        .too_many_requests(Outcome::Ignored)
        .server_errors(Outcome::Ignored)
        .status_override(|status| (status == 502).then_some(Outcome::Failure));
    assert_eq!(outcome(&classifier, 404), Outcome::Failure);
    assert_eq!(outcome(&classifier, 429), Outcome::Ignored);
    assert_eq!(outcome(&classifier, 500), Outcome::Ignored);
    assert_eq!(outcome(&classifier, 502), Outcome::Failure);
    assert_eq!(outcome(&classifier, 200), Outcome::Success);
}

#[test]
fn retry_after_parses_seconds_and_dates() {
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let parse = |text: &str| parse_retry_after(&HeaderValue::from_str(text).unwrap(), now);
    assert_eq!(parse("0"), Some(Duration::ZERO));
    assert_eq!(parse(" 42 "), Some(42 * SECOND));
    assert_eq!(
        parse("99999999999999999999999"),
        Some(Duration::from_secs(u64::MAX))
    );
    let in_90s = httpdate::fmt_http_date(now + 90 * SECOND);
    assert_eq!(parse(&in_90s), Some(90 * SECOND));
    let past = httpdate::fmt_http_date(now - 90 * SECOND);
    assert_eq!(parse(&past), Some(Duration::ZERO));
    for malformed in ["", "-5", "1.5", "soon", "Someday, 99 Foo 2015 07:28:00 GMT"] {
        assert_eq!(parse(malformed), None, "{malformed:?}");
    }
}

#[test]
fn retry_after_only_for_429_and_503_and_capped() {
    let classifier = HttpClassifier::new().max_retry_after(60 * SECOND);
    let response = |status: u16, value: &str| {
        Response::builder()
            .status(status)
            .header(header::RETRY_AFTER, value)
            .body(())
            .unwrap()
    };
    assert_eq!(
        classifier.retry_after_of(&response(503, "30")),
        Some(30 * SECOND)
    );
    assert_eq!(
        classifier.retry_after_of(&response(429, "30")),
        Some(30 * SECOND)
    );
    assert_eq!(classifier.retry_after_of(&response(500, "30")), None);
    assert_eq!(
        classifier.retry_after_of(&response(503, "3600")),
        Some(60 * SECOND)
    );
    assert_eq!(classifier.retry_after_of(&response(503, "later")), None);
    let ignoring = classifier.honour_retry_after(false);
    assert_eq!(ignoring.retry_after_of(&response(503, "30")), None);
}

fn breaker_config() -> Config {
    Config::builder()
        .name("upstream")
        .consecutive_failures(2)
        .open_duration(5 * SECOND)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn client_errors_never_trip_and_server_errors_do() {
    let script: Script = Arc::new(Mutex::new((404, None)));
    let layer = CircuitBreakerLayer::new(breaker_config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(scripted(script.clone()));
    for _ in 0..10 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    assert_eq!(layer.breaker().state(), State::Closed);
    assert_eq!(layer.breaker().metrics().ignored, 10);
    set(&script, 500, None);
    for _ in 0..2 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    assert_eq!(layer.breaker().state(), State::Open);
}

#[tokio::test(start_paused = true)]
async fn retry_after_of_the_tripping_response_is_a_floor_for_the_open_duration() {
    let script: Script = Arc::new(Mutex::new((503, Some("30".to_owned()))));
    let layer = CircuitBreakerLayer::new(breaker_config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(scripted(script.clone()));
    for _ in 0..2 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    assert_eq!(layer.breaker().state(), State::Open);
    let rejected = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(
        rejected.circuit_open().unwrap().retry_after,
        Some(30 * SECOND)
    );
    // Past the configured 5 s, still open: the server asked for 30 s.
    tokio::time::advance(29 * SECOND).await;
    assert!(matches!(
        svc.ready().await.unwrap().call(()).await,
        Err(Error::Open(_))
    ));
    tokio::time::advance(SECOND).await;
    set(&script, 200, None);
    svc.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(layer.breaker().state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn a_short_retry_after_does_not_shorten_the_open_duration() {
    let script: Script = Arc::new(Mutex::new((429, Some("1".to_owned()))));
    let layer = CircuitBreakerLayer::new(breaker_config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(scripted(script.clone()));
    for _ in 0..2 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    let rejected = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(
        rejected.circuit_open().unwrap().retry_after,
        Some(5 * SECOND)
    );
}

#[tokio::test(start_paused = true)]
async fn only_the_tripping_response_sets_the_floor() {
    let script: Script = Arc::new(Mutex::new((503, Some("60".to_owned()))));
    let layer = CircuitBreakerLayer::new(breaker_config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(scripted(script.clone()));
    svc.ready().await.unwrap().call(()).await.unwrap(); // asks for 60 s, does not trip
    set(&script, 500, None);
    svc.ready().await.unwrap().call(()).await.unwrap(); // trips, asks for nothing
    let rejected = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(
        rejected.circuit_open().unwrap().retry_after,
        Some(5 * SECOND)
    );
}

#[tokio::test(start_paused = true)]
async fn a_failed_probe_with_retry_after_reopens_for_at_least_that_long() {
    let script: Script = Arc::new(Mutex::new((500, None)));
    let layer = CircuitBreakerLayer::new(breaker_config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(scripted(script.clone()));
    for _ in 0..2 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    tokio::time::advance(5 * SECOND).await;
    set(&script, 503, Some("45"));
    svc.ready().await.unwrap().call(()).await.unwrap(); // the probe fails
    assert_eq!(layer.breaker().state(), State::Open);
    let rejected = svc.ready().await.unwrap().call(()).await.unwrap_err();
    assert_eq!(
        rejected.circuit_open().unwrap().retry_after,
        Some(45 * SECOND)
    );
}

#[tokio::test(start_paused = true)]
async fn a_retry_after_date_sets_the_floor() {
    let script: Script = Arc::new(Mutex::new((503, None)));
    let layer = CircuitBreakerLayer::new(breaker_config()).classify(HttpClassifier::new());
    let mut svc = layer.layer(scripted(script.clone()));
    // HTTP dates have whole seconds, and the wall clock moves on while the test runs.
    let date = httpdate::fmt_http_date(SystemTime::now() + 121 * SECOND);
    set(&script, 503, Some(&date));
    for _ in 0..2 {
        svc.ready().await.unwrap().call(()).await.unwrap();
    }
    let rejected = svc.ready().await.unwrap().call(()).await.unwrap_err();
    let retry_after = rejected.circuit_open().unwrap().retry_after.unwrap();
    assert!(
        (110 * SECOND..=121 * SECOND).contains(&retry_after),
        "{retry_after:?}"
    );
}

#[tokio::test]
async fn a_rejection_maps_to_503_with_retry_after() {
    let open = CircuitOpen {
        name: "upstream".into(),
        state: State::Open,
        retry_after: Some(Duration::from_millis(4_001)),
    };
    let response = handle_error(Error::<Infallible>::Open(open.clone())).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()[header::RETRY_AFTER], "5");
    assert!(
        !response.body().contains("upstream") && !response.body().contains("4.001"),
        "the body names no breaker and no raw duration: {}",
        response.body()
    );

    // Still found after another layer boxed the error.
    let boxed: BoxError = Box::new(Error::<std::io::Error>::Open(open));
    let response = handle_error(boxed).await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);

    let other: BoxError = "database password is hunter2".into();
    let response = handle_error(other).await;
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!response.body().contains("hunter2"), "no error text leaks");
}
