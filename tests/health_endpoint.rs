//! The example health endpoint, served by axum on 127.0.0.1 and queried over TCP.

#[path = "../examples/health_endpoint.rs"]
mod example;

use std::time::Duration;

use std::io::{Read, Write};

use tower_circuit_breaker::{Config, Registry};

/// One `GET path` over a fresh blocking connection (bounded by a read timeout);
/// returns the status line and the body.
fn get(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("a full response");
    (head.lines().next().unwrap().to_owned(), body.to_owned())
}

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

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, example::router(registry))
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await
    });

    let (status, body) = tokio::task::spawn_blocking(move || get(addr, "/health"))
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

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}
