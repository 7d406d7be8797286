//! A breaker in front of a backend that fails for a while and then recovers.
//!
//! `cargo run --example quick_start` prints each call's fate and the breaker's state,
//! and exits after about a second.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::{CircuitBreakerLayer, Config, Error};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config::builder()
        .name("flaky")
        .consecutive_failures(3)
        .open_duration(Duration::from_millis(200))
        .half_open_permits(1)
        .half_open_successes(2)
        .build()?;
    let layer = CircuitBreakerLayer::new(config);
    let breaker = layer.breaker().clone();

    // Calls 0..6 fail, later ones succeed.
    let hits = Arc::new(AtomicU32::new(0));
    let backend = {
        let hits = hits.clone();
        service_fn(move |n: u32| {
            hits.fetch_add(1, Ordering::Relaxed);
            async move {
                if n < 6 {
                    Err(std::io::Error::other("backend down"))
                } else {
                    Ok(n)
                }
            }
        })
    };
    let svc = ServiceBuilder::new().layer(layer).service(backend);

    for n in 0..16u32 {
        let fate = match svc.clone().oneshot(n).await {
            Ok(v) => format!("ok({v})"),
            Err(Error::Open(open)) => format!("rejected fast, retry after {:?}", open.retry_after),
            Err(Error::Inner(e)) => format!("failed: {e}"),
        };
        println!("call {n:2}: {fate:<40} state = {}", breaker.state());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let m = breaker.metrics();
    println!(
        "\n{} calls, {} reached the backend, {} rejected fast, {} state changes",
        m.calls,
        hits.load(Ordering::Relaxed),
        m.rejected,
        m.state_changes
    );
    Ok(())
}
