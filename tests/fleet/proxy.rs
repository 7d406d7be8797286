//! A TCP proxy between the fleet's instances and a real `redis-server`, to inject a
//! network partition: while black-holed it accepts connections and reads what is sent
//! but forwards nothing and closes nothing, as a dropped route does. A connection that
//! went through a black hole never forwards again (its stream lost bytes); once healed,
//! it is closed at its next byte and new connections go through.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Proxy {
    addr: SocketAddr,
    black_hole: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free local port forwarding to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let black_hole = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&black_hole);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(connection(client, upstream, Arc::clone(&flag)));
            }
        });
        Proxy {
            addr,
            black_hole,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// From now on nothing is forwarded, and nothing is closed.
    pub fn black_hole(&self) {
        self.black_hole.store(true, SeqCst);
    }

    /// Forwarding resumes for new connections.
    pub fn heal(&self) {
        self.black_hole.store(false, SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn connection(client: TcpStream, upstream: SocketAddr, black_hole: Arc<AtomicBool>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    let broken = Arc::new(AtomicBool::new(false));
    let up = pipe(
        client_read,
        server_write,
        Arc::clone(&black_hole),
        Arc::clone(&broken),
    );
    let down = pipe(server_read, client_write, black_hole, broken);
    // Either direction ending (a close, or a broken stream after healing) ends both.
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
}

async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    black_hole: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if black_hole.load(SeqCst) {
            broken.store(true, SeqCst); // dropped on the floor
            continue;
        }
        if broken.load(SeqCst) || to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
