//! What the tests against a real Redis share: a synced breaker, and bounded polling in
//! real time.

use std::time::{Duration, Instant};

use tower_circuit_breaker::fleet::{Fleet, FleetSync, RedisStore};
use tower_circuit_breaker::{CircuitBreaker, Config};

/// A breaker named `name` (3 failures in a row, open 5 s) synced through `store` as
/// instance `id`, polling every 20 ms.
pub fn synced(store: &RedisStore, name: &str, id: usize) -> (CircuitBreaker, FleetSync) {
    let breaker = CircuitBreaker::new(
        Config::builder()
            .name(name.to_owned())
            .consecutive_failures(3)
            .open_duration(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    let sync = Fleet::new(store.clone())
        .poll_interval(Duration::from_millis(20))
        .instance_id(&format!("instance-{id}"))
        .sync(&breaker)
        .unwrap();
    (breaker, sync)
}

/// Polls `condition` every 5 ms; panics if it does not hold within `within`. Returns
/// how long it took.
pub async fn eventually(within: Duration, what: &str, condition: impl Fn() -> bool) -> Duration {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    started.elapsed()
}
