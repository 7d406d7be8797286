//! Fleet-wide state through a Redis that speaks only TLS and requires a user and a
//! password (feature `rustls`): the test makes a self-signed certificate for
//! 127.0.0.1 (rcgen), starts `redis-server --tls-port` with it and an ACL user, and
//! syncs two instances through `rediss://user:password@127.0.0.1:port/`, the store
//! trusting that certificate. A store without the certificate, without the password or
//! without TLS never gets through. Real time, bounded polls.
#![cfg(feature = "rustls")]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::instance::{eventually, synced};
use crate::redis_server::RedisServer;
use tower_circuit_breaker::fleet::{FleetError, RedisStore};
use tower_circuit_breaker::State;

const STORE_TIMEOUT: Duration = Duration::from_millis(500);

/// A self-signed certificate and its key, as PEM files in a fresh directory.
struct Certificate {
    dir: PathBuf,
    pem: String,
}

impl Certificate {
    fn new() -> Certificate {
        let rcgen::CertifiedKey { cert, key_pair } =
            rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
        let dir = std::env::temp_dir().join(format!(
            "tcb-fleet-tls-{}-{:?}",
            std::process::id(),
            Instant::now()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
        std::fs::write(dir.join("key.pem"), key_pair.serialize_pem()).unwrap();
        Certificate {
            dir,
            pem: cert.pem(),
        }
    }

    fn start_redis(&self) -> RedisServer {
        RedisServer::start_tls(
            &self.dir.join("cert.pem"),
            &self.dir.join("key.pem"),
            // Only `alice` may connect, with her password.
            &[
                "--user",
                "default",
                "off",
                "--user",
                "alice",
                "on",
                ">wonderland",
                "~*",
                "&*",
                "+@all",
            ],
        )
    }
}

impl Drop for Certificate {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn two_instances_sync_through_a_tls_redis_with_a_user_and_password() {
    let certificate = Certificate::new();
    let server = certificate.start_redis();
    let url = format!("rediss://alice:wonderland@127.0.0.1:{}/", server.port());
    let store = RedisStore::open(&url, "tls-test")
        .unwrap()
        .timeout(STORE_TIMEOUT)
        .unwrap()
        .root_certificate(certificate.pem.as_bytes())
        .unwrap();
    let (first, first_sync) = synced(&store, "db", 0);
    let (second, second_sync) = synced(&store, "db", 1);
    eventually(
        Duration::from_secs(5),
        "both instances reach Redis over TLS",
        || first_sync.is_connected() && second_sync.is_connected(),
    )
    .await;
    for _ in 0..3 {
        first.try_acquire().unwrap().failure();
    }
    eventually(Duration::from_secs(2), "the other instance opens", || {
        second.state() == State::Open
    })
    .await;
}

#[tokio::test]
#[ignore = "needs redis-server"]
async fn no_certificate_no_password_or_no_tls_never_gets_through() {
    let certificate = Certificate::new();
    let server = certificate.start_redis();
    let port = server.port();
    let stores = [
        // The system's roots do not know the self-signed certificate.
        RedisStore::open(
            &format!("rediss://alice:wonderland@127.0.0.1:{port}/"),
            "tls-test",
        )
        .unwrap(),
        // The right certificate, a wrong password.
        RedisStore::open(
            &format!("rediss://alice:rabbit@127.0.0.1:{port}/"),
            "tls-test",
        )
        .unwrap()
        .root_certificate(certificate.pem.as_bytes())
        .unwrap(),
        // Plain text to a TLS port.
        RedisStore::open(
            &format!("redis://alice:wonderland@127.0.0.1:{port}/"),
            "tls-test",
        )
        .unwrap(),
    ];
    let syncs: Vec<_> = stores
        .iter()
        .enumerate()
        .map(|(id, store)| {
            let store = store.clone().timeout(STORE_TIMEOUT).unwrap();
            synced(&store, "db", id).1
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (index, sync) in syncs.iter().enumerate() {
        assert!(!sync.is_connected(), "store {index} got through");
    }
    // A certificate on a plain `redis://` URL is a setup error, named at once.
    let error = RedisStore::open(&format!("redis://127.0.0.1:{port}/"), "tls-test")
        .unwrap()
        .root_certificate(certificate.pem.as_bytes())
        .unwrap_err();
    assert!(matches!(error, FleetError::Certificate { .. }), "{error}");
}
