//! The example health endpoint (`cargo run --example health_endpoint`), run as it is:
//! served by axum on 127.0.0.1 and queried over TCP.

use crate::support::{example, http_get};

#[tokio::test]
async fn reports_every_registered_breaker_as_json() {
    // The example registers `users` (one success) and `inventory` (one failure, which
    // trips it open for an hour), serves them on 127.0.0.1 and prints the address.
    let mut server = example::start("health_endpoint", &[("PORT", "0")]);
    let line = server.line();
    let addr: std::net::SocketAddr = line
        .strip_prefix("GET http://")
        .and_then(|rest| rest.strip_suffix("/health"))
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .parse()
        .unwrap();

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

    assert!(server.stop(), "the server did not shut down within 5 s");
}
