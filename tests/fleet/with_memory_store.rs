//! The fleet sync's logic with paused Tokio time, against an in-memory store: how fast
//! the fleet learns, who probes, what happens when the store or a prober goes away.
//! The same logic against a real Redis is in `with_redis.rs`.
#![cfg(feature = "redis")]

use std::time::Duration;

use crate::memory_store::MemoryStore;
use crate::support::log_capture;
use tower_circuit_breaker::fleet::{Fleet, FleetSync};
use tower_circuit_breaker::{CircuitBreaker, Config, Event, State, TransitionReason};

const POLL: Duration = Duration::from_millis(100);
const OPEN: Duration = Duration::from_secs(1);
const LEASE: Duration = Duration::from_millis(500);

struct Instance {
    id: String,
    breaker: CircuitBreaker,
    sync: Option<FleetSync>,
}

fn config() -> tower_circuit_breaker::ConfigBuilder {
    Config::builder()
        .name("db")
        .consecutive_failures(2)
        .open_duration(OPEN)
        .half_open_permits(1)
        .half_open_successes(1)
}

fn instance(store: &MemoryStore, id: usize) -> Instance {
    instance_with(store, id, config().build().unwrap())
}

fn instance_with(store: &MemoryStore, id: usize, config: Config) -> Instance {
    let breaker = CircuitBreaker::new(config);
    let id = format!("instance-{id}");
    let sync = Fleet::new(store.clone())
        .poll_interval(POLL)
        .probe_lease(LEASE)
        .instance_id(&id)
        .sync(&breaker)
        .unwrap();
    Instance {
        id,
        breaker,
        sync: Some(sync),
    }
}

async fn fleet(store: &MemoryStore, n: usize) -> Vec<Instance> {
    let fleet = (0..n).map(|i| instance(store, i)).collect();
    run_tasks().await;
    fleet
}

/// Lets the sync tasks run what is ready, without moving the clock.
async fn run_tasks() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

/// Moves the clock by `by`, letting the tasks run on the way.
async fn after(by: Duration) {
    tokio::time::sleep(by).await;
    run_tasks().await;
}

fn trip(breaker: &CircuitBreaker) {
    for _ in 0..2 {
        breaker.try_acquire().expect("closed").failure();
    }
    assert_eq!(breaker.state(), State::Open);
}

/// Lets the open period end, then offers a call to every instance (all rejected: the
/// gate waits for a lease) so they ask for the lease at the next poll.
async fn period_ends_with_demand(fleet: &[Instance]) {
    after(OPEN).await;
    assert!(
        offer(fleet, true).is_empty(),
        "nobody probes before holding the lease"
    );
    after(POLL).await;
}

fn states(fleet: &[Instance]) -> Vec<State> {
    fleet.iter().map(|i| i.breaker.state()).collect()
}

/// Offers one call to each instance; returns the indexes that admitted it, reporting
/// `success` for each.
fn offer(fleet: &[Instance], success: bool) -> Vec<usize> {
    let mut admitted = Vec::new();
    for (i, instance) in fleet.iter().enumerate() {
        if let Ok(permit) = instance.breaker.try_acquire() {
            admitted.push(i);
            if success {
                permit.success();
            } else {
                permit.failure();
            }
        }
    }
    admitted
}

#[tokio::test(start_paused = true)]
async fn a_trip_reaches_the_fleet_within_one_poll_interval_with_the_same_deadline() {
    let store = MemoryStore::default();
    let fleet = fleet(&store, 3).await;
    let mut events = fleet[1].breaker.subscribe();
    trip(&fleet[0].breaker);
    run_tasks().await;
    assert_eq!(
        store.publications(),
        1,
        "published at once, not at the next poll"
    );
    assert_eq!(states(&fleet), [State::Open, State::Closed, State::Closed]);

    after(POLL).await;
    assert_eq!(states(&fleet), [State::Open; 3]);
    let retry = |i: usize| fleet[i].breaker.try_acquire().unwrap_err().retry_after;
    assert_eq!(retry(0), Some(OPEN - POLL));
    assert_eq!(retry(1), retry(0), "one deadline for the whole fleet");
    assert_eq!(retry(2), retry(0));
    let transition = loop {
        if let Event::StateTransition { to, reason, .. } = events.try_recv().unwrap() {
            break (to, reason);
        }
    };
    assert_eq!(transition, (State::Open, TransitionReason::Remote));
    // The remote opens are not echoed back to the store.
    after(POLL * 3).await;
    assert_eq!(store.publications(), 1);
}

#[tokio::test(start_paused = true)]
async fn only_the_lease_holder_probes_and_its_close_closes_the_fleet() {
    let store = MemoryStore::default();
    let fleet = fleet(&store, 4).await;
    trip(&fleet[0].breaker);
    after(POLL).await;

    // The open period ends: one instance takes the lease and probes; its probe fails.
    period_ends_with_demand(&fleet).await;
    let probers = offer(&fleet, false);
    assert_eq!(probers.len(), 1, "one probe for the fleet, got {probers:?}");
    let holder = probers[0];
    assert_eq!(store.lease_holder("db"), Some(fleet[holder].id.clone()));
    assert!(
        offer(&fleet, false).is_empty(),
        "nobody else probes meanwhile"
    );

    // The failed probe re-opened the holder and, through the store, the fleet.
    after(POLL).await;
    for instance in &fleet {
        let retry = instance
            .breaker
            .try_acquire()
            .unwrap_err()
            .retry_after
            .unwrap();
        assert!(retry > OPEN - POLL * 2, "{retry:?}");
    }

    // Next period: the same holder probes (its lease still runs), succeeds, and the
    // whole fleet closes within a poll interval.
    period_ends_with_demand(&fleet).await;
    assert_eq!(offer(&fleet, true), [holder]);
    assert_eq!(fleet[holder].breaker.state(), State::Closed);
    after(POLL).await;
    assert_eq!(states(&fleet), [State::Closed; 4]);
    assert_eq!(store.lease_holder("db"), None, "a close releases the lease");
}

#[tokio::test(start_paused = true)]
async fn a_prober_that_dies_is_replaced_when_its_lease_expires() {
    let store = MemoryStore::default();
    let mut fleet = fleet(&store, 3).await;
    trip(&fleet[0].breaker);
    after(POLL).await;
    period_ends_with_demand(&fleet).await;
    let holder = store.lease_holder("db").expect("someone holds the lease");
    let dead = fleet.iter().position(|i| i.id == holder).unwrap();
    // The holder dies before probing: no more calls, no more sync.
    let dead = fleet.remove(dead);
    drop(dead);

    assert!(
        offer(&fleet, true).is_empty(),
        "the others wait for the holder"
    );
    after(LEASE).await;
    assert!(offer(&fleet, true).is_empty(), "taken at the next poll");
    after(POLL).await;
    let probers = offer(&fleet, true);
    assert_eq!(probers.len(), 1, "{probers:?}");
    after(POLL).await;
    assert_eq!(states(&fleet), [State::Closed; 2]);
}

#[tokio::test(start_paused = true)]
async fn with_the_store_down_each_instance_runs_alone_logs_once_and_resyncs() {
    let logs = log_capture::capture("fleet");
    let store = MemoryStore::default();
    let fleet = fleet(&store, 2).await;
    assert!(fleet
        .iter()
        .all(|i| i.sync.as_ref().unwrap().is_connected()));

    store.set_down(true);
    after(POLL * 10).await;
    assert!(fleet
        .iter()
        .all(|i| !i.sync.as_ref().unwrap().is_connected()));
    assert_eq!(logs.count("unreachable"), 2, "one warning per instance");

    // Local rules still work, and the open instance probes on its own.
    trip(&fleet[0].breaker);
    after(POLL * 3).await;
    assert_eq!(states(&fleet), [State::Open, State::Closed]);
    after(OPEN).await;
    assert_eq!(
        offer(&fleet, false),
        [0, 1],
        "a local probe, and a closed call"
    );
    assert_eq!(states(&fleet), [State::Open, State::Closed]);
    assert_eq!(
        logs.count("unreachable"),
        2,
        "still one warning per instance"
    );

    // The store returns: instance 0's open reaches instance 1.
    store.set_down(false);
    after(POLL).await;
    assert_eq!(states(&fleet), [State::Open; 2]);
    assert_eq!(logs.count("reachable again"), 2);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_sync_lets_the_breaker_probe_on_its_own() {
    let store = MemoryStore::default();
    let mut fleet = fleet(&store, 2).await;
    trip(&fleet[0].breaker);
    after(POLL).await;
    period_ends_with_demand(&fleet).await;
    let holder = store.lease_holder("db").expect("someone holds the lease");
    let waiting = fleet.iter().position(|i| i.id != holder).unwrap();
    assert!(fleet[waiting].breaker.try_acquire().is_err());

    drop(fleet[waiting].sync.take());
    run_tasks().await;
    assert!(
        fleet[waiting].breaker.try_acquire().is_ok(),
        "without a sync the breaker probes by its own rules"
    );
}

#[tokio::test(start_paused = true)]
async fn a_new_instance_waits_behind_a_pending_fleet_probe() {
    let store = MemoryStore::default();
    let fleet = fleet(&store, 1).await;
    trip(&fleet[0].breaker);
    period_ends_with_demand(&fleet).await;
    assert_eq!(store.lease_holder("db"), Some(fleet[0].id.clone()));

    // A restarted instance finds the fleet open with the period over and a probe due.
    let late = instance(&store, 1);
    run_tasks().await;
    assert_eq!(late.breaker.state(), State::Open);
    assert!(
        late.breaker.try_acquire().is_err(),
        "instance-0 probes, not us"
    );

    assert_eq!(offer(&fleet, true), [0]);
    after(POLL).await;
    assert_eq!(late.breaker.state(), State::Closed);
}

#[tokio::test(start_paused = true)]
async fn operator_overrides_stay_local_and_win_over_the_fleet() {
    let store = MemoryStore::default();
    let fleet = fleet(&store, 2).await;
    fleet[1].breaker.force_closed();
    fleet[0].breaker.force_open();
    after(POLL * 2).await;
    assert_eq!(store.publications(), 0, "forced states are not published");

    fleet[0].breaker.reset();
    trip(&fleet[0].breaker);
    after(POLL * 2).await;
    assert!(store.publications() >= 1, "the trip is published");
    assert_eq!(fleet[1].breaker.state(), State::ForcedClosed);
}

#[tokio::test(start_paused = true)]
async fn a_restarted_instance_with_a_stable_id_learns_its_own_open() {
    let store = MemoryStore::default();
    let first = instance(&store, 0);
    run_tasks().await;
    trip(&first.breaker);
    run_tasks().await;
    drop(first); // the process restarts

    let restarted = instance(&store, 0); // same instance id
    run_tasks().await;
    let retry = restarted.breaker.try_acquire().unwrap_err().retry_after;
    assert_eq!(
        retry,
        Some(OPEN),
        "open for the rest of the published period"
    );
}

#[tokio::test(start_paused = true)]
async fn an_instance_without_traffic_leaves_the_lease_to_one_with_traffic() {
    let store = MemoryStore::default();
    let fleet = fleet(&store, 3).await;
    trip(&fleet[0].breaker);
    after(POLL).await;
    after(OPEN).await;
    // Only instance 2 gets calls after the open period.
    assert!(fleet[2].breaker.try_acquire().is_err());
    after(POLL).await;
    assert_eq!(store.lease_holder("db"), Some(fleet[2].id.clone()));
    assert!(fleet[2].breaker.try_acquire().is_ok(), "instance 2 probes");
}

/// With a probe interval, the fleet's scouts go through the lease as well: one
/// instance probes a second into a ten-second open period, and its success closes the
/// fleet long before the period would have ended.
#[tokio::test(start_paused = true)]
async fn a_probe_interval_scout_takes_the_lease_and_closes_the_fleet_early() {
    let store = MemoryStore::default();
    let scouting = || {
        config()
            .open_duration(10 * OPEN)
            .probe_interval(OPEN)
            .build()
            .unwrap()
    };
    let fleet: Vec<Instance> = (0..3)
        .map(|i| instance_with(&store, i, scouting()))
        .collect();
    run_tasks().await;
    trip(&fleet[0].breaker);
    after(POLL).await;
    assert_eq!(states(&fleet), [State::Open; 3]);

    // A second in, a scout is due: calls wait for the lease, then one instance scouts.
    period_ends_with_demand(&fleet).await;
    let scouts = offer(&fleet, true);
    assert_eq!(scouts.len(), 1, "one scout for the fleet, got {scouts:?}");
    after(POLL).await;
    assert_eq!(states(&fleet), [State::Closed; 3]);
}
