//! The example health endpoint, served by axum on 127.0.0.1 and queried over TCP.

mod common;
#[path = "../examples/health_endpoint.rs"]
mod example;

use std::time::Duration;

use common::http_get;
use common::server::serve_axum;
use tower_circuit_breaker::{Config, Registry};

#[tokio::test]
async fn reports_every_registered_breaker_as_json() {
    let registry = Registry::new();
    let config = Config::builder()
        .consecutive_failures(1)
        .open_duration(Duration::from_secs(3_600))
        .build()
        .unwrap();
    registry
        .get_or_insert("users", config.clone())
        .try_acquire()
        .unwrap()
        .success();
    registry
        .get_or_insert("inventory", config)
        .try_acquire()
        .unwrap()
        .failure();

    let server = serve_axum(example::router(registry)).await;
    let addr = server.addr;

    let (status, body) = tokio::task::spawn_blocking(move || http_get(addr, "/health"))
        .await
        .unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    let prefix = concat!(
        r#"{"health":"red","breakers":["#,
        r#"{"name":"inventory","state":"open","health":"red","failure_rate":1,"slow_call_rate":0,"calls":1,"rejected":0,"retry_after":"#
    );
    assert!(body.starts_with(prefix), "{body}");
    let users = r#"{"name":"users","state":"closed","health":"green","failure_rate":0,"slow_call_rate":0,"calls":1,"rejected":0,"retry_after":null}]}"#;
    assert!(body.ends_with(users), "{body}");
    // retry_after is a number of seconds just under the open duration.
    let retry_after: f64 = body[prefix.len()..]
        .split('}')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3_590.0..=3_600.0).contains(&retry_after), "{retry_after}");

    assert!(
        server.stop().await,
        "the server did not shut down within 5 s"
    );
}
