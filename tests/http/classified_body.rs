//! `ClassifiedBody` without a network: when each kind of end of stream records the
//! outcome (trailers, the last data frame, a body error, a drop).
#![cfg(feature = "tower-http")]

use std::convert::Infallible;

use bytes::Bytes;
use futures::stream;
use http::{HeaderMap, Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, Full, StreamBody};
use tower::{service_fn, Layer, Service, ServiceExt};
use tower_circuit_breaker::tower_http::ClassifiedBreakerLayer;
use tower_circuit_breaker::{CircuitBreaker, Config};
use tower_http::classify::{
    ClassifiedResponse, ClassifyEos, ClassifyResponse, ServerErrorsAsFailures, SharedClassifier,
};

/// Judges every response at its end of stream: a failure when the trailers say
/// `x-status: fail`, a success otherwise.
#[derive(Debug, Clone, Copy, Default)]
struct TrailerStatus;

impl ClassifyResponse for TrailerStatus {
    type FailureClass = &'static str;
    type ClassifyEos = TrailerStatus;

    fn classify_response<B>(self, _: &Response<B>) -> ClassifiedResponse<&'static str, Self> {
        ClassifiedResponse::RequiresEos(self)
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, _: &E) -> &'static str {
        "error"
    }
}

impl ClassifyEos for TrailerStatus {
    type FailureClass = &'static str;

    fn classify_eos(self, trailers: Option<&HeaderMap>) -> Result<(), &'static str> {
        match trailers.and_then(|t| t.get("x-status")) {
            Some(value) if value == "fail" => Err("failed in trailers"),
            _ => Ok(()),
        }
    }

    fn classify_error<E: std::fmt::Display + 'static>(self, _: &E) -> &'static str {
        "error"
    }
}

/// The response of `svc` to `request`; the services here never fail.
async fn respond<S, B>(svc: &mut S, request: Request<B>) -> S::Response
where
    S: Service<Request<B>>,
    S::Error: std::fmt::Debug,
{
    svc.ready().await.unwrap().call(request).await.unwrap()
}

fn breaker() -> CircuitBreaker {
    CircuitBreaker::new(Config::builder().name("body").build().unwrap())
}

type FrameResult = Result<Frame<Bytes>, std::io::Error>;
type Frames = Vec<FrameResult>;
type Streamed = StreamBody<stream::Iter<std::vec::IntoIter<FrameResult>>>;

fn streamed(frames: Frames) -> Streamed {
    StreamBody::new(stream::iter(frames))
}

fn trailers(status: &'static str) -> Frame<Bytes> {
    let mut map = HeaderMap::new();
    map.insert("x-status", status.parse().unwrap());
    Frame::trailers(map)
}

#[tokio::test(start_paused = true)]
async fn trailers_decide_and_nothing_is_recorded_before_them() {
    let breaker = breaker();
    let layer = ClassifiedBreakerLayer::new(breaker.clone(), SharedClassifier::new(TrailerStatus));
    let mut svc = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(streamed(vec![
            Ok(Frame::data(Bytes::from_static(b"part"))),
            Ok(trailers("fail")),
        ])))
    }));
    let response = respond(&mut svc, Request::new(())).await;
    let mut body = response.into_body();
    assert!(body.is_pending());
    let data = body.frame().await.unwrap().unwrap();
    assert!(data.is_data());
    assert_eq!(breaker.metrics().calls, 0, "nothing recorded mid-stream");
    let trailer = body.frame().await.unwrap().unwrap();
    assert!(trailer.is_trailers());
    assert!(!body.is_pending());
    assert_eq!(breaker.metrics().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_reports_its_end_is_recorded_with_its_last_data_frame() {
    let breaker = breaker();
    let layer = ClassifiedBreakerLayer::new(breaker.clone(), SharedClassifier::new(TrailerStatus));
    let mut svc = layer.layer(service_fn(|_: Request<()>| async {
        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"whole"))))
    }));
    let response = respond(&mut svc, Request::new(())).await;
    let mut body = response.into_body();
    body.frame().await.unwrap().unwrap();
    // A reader (hyper does) stops here because `is_end_stream` is now true.
    assert!(http_body::Body::is_end_stream(&body));
    assert_eq!(breaker.metrics().successes, 1);
    drop(body);
    assert_eq!(
        breaker.metrics().ignored,
        0,
        "recorded once, not again on drop"
    );
}

#[tokio::test(start_paused = true)]
async fn a_body_error_is_a_failure_and_an_abandoned_body_is_ignored() {
    let breaker = breaker();
    let layer = ClassifiedBreakerLayer::new(breaker.clone(), SharedClassifier::new(TrailerStatus));
    let mut fail_body = true;
    let mut svc = layer.layer(service_fn(move |_: Request<()>| {
        let frames: Frames = if std::mem::replace(&mut fail_body, false) {
            vec![Err(std::io::Error::other("connection reset"))]
        } else {
            vec![
                Ok(Frame::data(Bytes::from_static(b"a"))),
                Ok(trailers("ok")),
            ]
        };
        async move { Ok::<_, Infallible>(Response::new(streamed(frames))) }
    }));

    let response = respond(&mut svc, Request::new(())).await;
    let mut body = response.into_body();
    assert!(body.frame().await.unwrap().is_err());
    assert_eq!(breaker.metrics().failures, 1);

    let response = respond(&mut svc, Request::new(())).await;
    drop(response); // never read
    assert_eq!(breaker.metrics().ignored, 1);
    assert_eq!(breaker.metrics().failures, 1);
}

#[tokio::test(start_paused = true)]
async fn head_classified_responses_pass_their_body_through() {
    let breaker = breaker();
    let layer =
        ClassifiedBreakerLayer::from_classifier(breaker.clone(), ServerErrorsAsFailures::new());
    let mut svc = layer.layer(service_fn(|request: Request<u16>| async move {
        let mut response = Response::new(Full::new(Bytes::from_static(b"body")));
        *response.status_mut() = http::StatusCode::from_u16(*request.body()).unwrap();
        Ok::<_, Infallible>(response)
    }));
    for (status, failures) in [(200, 0), (404, 0), (500, 1), (503, 2)] {
        let response = respond(&mut svc, Request::new(status)).await;
        assert!(!response.body().is_pending());
        assert_eq!(breaker.metrics().failures, failures, "status {status}");
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&bytes[..], b"body");
    }
}
