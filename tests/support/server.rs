//! Real servers for the integration tests: spawned on 127.0.0.1 with an ephemeral port,
//! shut down gracefully and within a bound.

use std::fmt;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Resolves when the test asks the server to shut down gracefully.
pub type Signal = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A server running until [`stop`](Running::stop).
pub struct Running<E> {
    pub addr: SocketAddr,
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<Result<(), E>>,
}

impl<E: fmt::Debug + Send + 'static> Running<E> {
    /// Binds an ephemeral port on 127.0.0.1 and spawns `serve(listener, signal)`.
    pub async fn start<F>(serve: impl FnOnce(TcpListener, Signal) -> F) -> Running<E>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (shutdown, signal) = oneshot::channel::<()>();
        let signal: Signal = Box::pin(async move {
            let _ = signal.await;
        });
        let task = tokio::spawn(serve(listener, signal));
        Running {
            addr,
            shutdown,
            task,
        }
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Graceful shutdown, bounded: whether the server ended within 5 s. A handler that
    /// never answers can hold a graceful shutdown forever, so the task is aborted then.
    pub async fn stop(self) -> bool {
        let _ = self.shutdown.send(());
        let abort = self.task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(5), self.task).await {
            Ok(result) => {
                result.unwrap().unwrap();
                true
            }
            Err(_) => {
                abort.abort();
                false
            }
        }
    }
}

/// Serves an axum app.
pub async fn serve_axum(app: axum::Router) -> Running<std::io::Error> {
    Running::start(|listener, signal| {
        axum::serve(listener, app)
            .with_graceful_shutdown(signal)
            .into_future()
    })
    .await
}
