//! Five instances of a service in one process call a flaky backend through their own
//! circuit breakers. The backend goes down for two seconds; the example counts how many
//! calls reached it during the outage, first with each instance on its own, then with
//! the instances sharing breaker state through Redis.
//!
//! ```text
//! cargo run --example fleet --features redis
//! ```
//!
//! Uses `$REDIS_URL` if set; otherwise starts a throwaway `redis-server` on a free
//! local port (and stops it at the end). If Redis does not answer within 2 s (down,
//! or an address that accepts connections and never replies), the example says so and
//! runs the shared phase anyway: the instances' calls keep flowing on their local
//! state, which is what the library does whenever Redis is unreachable.

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::fleet::{Fleet, RedisStore};
use tower_circuit_breaker::{CircuitBreaker, Config, State};

const INSTANCES: usize = 5;
const REQUEST_EVERY: Duration = Duration::from_millis(10);
const HEALTHY: Duration = Duration::from_millis(500);
const OUTAGE: Duration = Duration::from_secs(2);
const RECOVERED: Duration = Duration::from_millis(800);
/// How long the shared phase waits for every instance to reach Redis.
const CONNECT_WAIT: Duration = Duration::from_secs(2);

/// The downstream every instance calls: up or down, counting the calls it gets.
#[derive(Default)]
struct Backend {
    down: AtomicBool,
    calls: AtomicUsize,
    calls_while_down: AtomicUsize,
}

impl Backend {
    // An owned error type: with `&'static str` the spawned client future trips a
    // rustc limitation ("higher-ranked lifetime error") when proving it is `Send`.
    fn handle(&self) -> Result<&'static str, std::io::Error> {
        self.calls.fetch_add(1, Relaxed);
        if self.down.load(Relaxed) {
            self.calls_while_down.fetch_add(1, Relaxed);
            Err(std::io::Error::other("503 service unavailable"))
        } else {
            Ok("200 ok")
        }
    }
}

struct Outcome {
    /// With a store: whether every instance reached it before the phase began.
    synced: bool,
    calls_while_down: usize,
    rejected: u64,
    all_closed_after_recovery: Option<Duration>,
}

async fn run(shared: Option<&RedisStore>) -> Result<Outcome, Box<dyn std::error::Error>> {
    let backend = Arc::new(Backend::default());
    let config = Config::builder()
        .name("inventory")
        .consecutive_failures(5)
        .open_duration(Duration::from_millis(400))
        .half_open_permits(1)
        .half_open_successes(1)
        .build()?;
    let breakers: Vec<_> = (0..INSTANCES)
        .map(|_| CircuitBreaker::new(config.clone()))
        .collect();
    let mut syncs = Vec::new();
    if let Some(store) = shared {
        for (i, breaker) in breakers.iter().enumerate() {
            let fleet = Fleet::new(store.clone())
                .poll_interval(Duration::from_millis(25))
                .instance_id(&format!("instance-{i}"));
            syncs.push(fleet.sync(breaker)?);
        }
        let give_up = Instant::now() + CONNECT_WAIT;
        while !syncs.iter().all(|sync| sync.is_connected()) {
            if Instant::now() >= give_up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let synced = syncs.iter().all(|sync| sync.is_connected());

    let started = Instant::now();
    let total = HEALTHY + OUTAGE + RECOVERED;
    let mut clients = Vec::new();
    for (i, breaker) in breakers.iter().enumerate() {
        let backend = Arc::clone(&backend);
        let svc = ServiceBuilder::new()
            .layer(breaker.layer())
            .service(service_fn(move |()| {
                let answer = backend.handle();
                async move { answer }
            }));
        clients.push(tokio::spawn(async move {
            // Stagger the instances like independent processes would be.
            tokio::time::sleep(REQUEST_EVERY * i as u32 / INSTANCES as u32).await;
            let mut tick = tokio::time::interval(REQUEST_EVERY);
            while started.elapsed() < total {
                tick.tick().await;
                let _ = svc.clone().oneshot(()).await;
            }
        }));
    }

    tokio::time::sleep(HEALTHY).await;
    backend.down.store(true, Relaxed);
    tokio::time::sleep(OUTAGE).await;
    backend.down.store(false, Relaxed);
    let recovered = Instant::now();
    let mut all_closed_after_recovery = None;
    while recovered.elapsed() < RECOVERED {
        if all_closed_after_recovery.is_none()
            && breakers.iter().all(|b| b.state() == State::Closed)
        {
            all_closed_after_recovery = Some(recovered.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for client in clients {
        client.await?;
    }
    drop(syncs);
    Ok(Outcome {
        synced,
        calls_while_down: backend.calls_while_down.load(Relaxed),
        rejected: breakers.iter().map(|b| b.metrics().rejected).sum(),
        all_closed_after_recovery,
    })
}

/// A `redis-server` this example started; stopped on drop.
struct OwnRedis(Child);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn redis_url() -> Result<(String, Option<OwnRedis>), Box<dyn std::error::Error>> {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return Ok((url, None));
    }
    let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("set REDIS_URL or install redis-server: {e}"))?;
    let server = OwnRedis(child);
    let deadline = Instant::now() + Duration::from_secs(5);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err("redis-server did not start within 5 s".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok((format!("redis://127.0.0.1:{port}/"), Some(server)))
}

fn report(label: &str, outcome: &Outcome) {
    let closed = match outcome.all_closed_after_recovery {
        Some(after) => format!("all closed {} ms after recovery", after.as_millis()),
        None => "not all closed yet".to_owned(),
    };
    println!(
        "{label:<22} {:>4} backend calls during the {} s outage, {:>4} rejected fast; {closed}",
        outcome.calls_while_down,
        OUTAGE.as_secs(),
        outcome.rejected,
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, _own_redis) = redis_url()?;
    let prefix = format!("fleet-example-{}", std::process::id());
    let store = RedisStore::open(&url, &prefix)?;
    println!(
        "{INSTANCES} instances, one request each per {} ms, backend down for {} s",
        REQUEST_EVERY.as_millis(),
        OUTAGE.as_secs()
    );

    let alone = run(None).await?;
    report("each on its own:", &alone);
    let shared = run(Some(&store)).await?;
    if !shared.synced {
        report("Redis unreachable:", &shared);
        println!(
            "Redis at {url} did not answer within {} s (each command is bounded by {} ms): \
             nothing was shared, and the instances ran on their own state, their calls \
             flowing as usual",
            CONNECT_WAIT.as_secs(),
            RedisStore::DEFAULT_TIMEOUT.as_millis()
        );
        return Ok(());
    }
    report("sharing state (Redis):", &shared);
    println!(
        "shared state saved the backend {} of {} calls during the outage",
        alone
            .calls_while_down
            .saturating_sub(shared.calls_while_down),
        alone.calls_while_down
    );
    if shared.calls_while_down >= alone.calls_while_down {
        return Err("shared state did not reduce the backend calls during the outage".into());
    }
    Ok(())
}
