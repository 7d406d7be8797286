//! A real `redis-server` for the fleet tests: started on 127.0.0.1 with a free port,
//! without persistence, killed when the guard drops.

use std::net::{TcpListener, TcpStream};
#[cfg(feature = "rustls")]
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `redis-server`; killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
}

impl RedisServer {
    /// Starts a server on a free port. Panics with instructions if `redis-server` is
    /// missing or does not come up: these tests must not pass without Redis.
    pub fn start() -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("no free local port")
            .port();
        RedisServer::start_on(port)
    }

    /// Starts a server on `port` (a restart after [`kill`](Self::kill)).
    pub fn start_on(port: u16) -> RedisServer {
        RedisServer::start_with(port, &["--port", &port.to_string()])
    }

    /// Starts a server that speaks only TLS, on a free port, with `cert` and `key`
    /// (PEM files) and the extra `args` (e.g. ACL users).
    #[cfg(feature = "rustls")]
    pub fn start_tls(cert: &Path, key: &Path, args: &[&str]) -> RedisServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("no free local port")
            .port();
        let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
        let port_arg = port.to_string();
        let mut all = vec!["--port", "0", "--tls-port", &port_arg];
        all.extend(["--tls-cert-file", cert, "--tls-key-file", key]);
        all.extend(["--tls-ca-cert-file", cert, "--tls-auth-clients", "no"]);
        all.extend(args);
        RedisServer::start_with(port, &all)
    }

    /// Starts a server with `args`, ready once `port` accepts connections.
    pub fn start_with(port: u16, args: &[&str]) -> RedisServer {
        let child = Command::new("redis-server")
            .args(args)
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start redis-server ({error}); the fleet tests need it: \
                     `apt-get install -y redis-server`, then \
                     `cargo test --all-features --test fleet -- --include-ignored` \
                     (.ci/run does both)"
                )
            });
        let mut server = RedisServer {
            child: Some(child),
            port,
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = server
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("redis-server exited at start ({status}) on port {port}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server did not accept connections on port {port} within 5 s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        server
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills the server and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
