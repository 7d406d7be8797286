//! Per-endpoint breakers behind `tower::balance::p2c` (`tower_circuit_breaker::balance`),
//! in paused time: an open endpoint is routed around, the ejection cap keeps endpoints in
//! rotation, a removed endpoint frees its slot, and a group whose endpoints are all out
//! fails fast, wakes a caller waiting in the balancer, and recovers through `Buffer`.

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use tokio::time::Instant;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::{Change, ServiceList};
use tower::load::{CompleteOnResponse, PendingRequestsDiscover};
use tower::{service_fn, BoxError, Service, ServiceExt};
use tower_circuit_breaker::balance::EndpointBreakers;
use tower_circuit_breaker::{CircuitOpen, Config, ConfigError, Event, Registry, State};

const OPEN_FOR: Duration = Duration::from_secs(10);
const TRIP_AFTER: u32 = 3;

fn config() -> Config {
    Config::builder()
        .name("replicas")
        .consecutive_failures(TRIP_AFTER)
        .open_duration(OPEN_FOR)
        .build()
        .unwrap()
}

fn group(max_ejection_percent: u32) -> EndpointBreakers<usize> {
    EndpointBreakers::builder(config())
        .max_ejection_percent(max_ejection_percent)
        .build()
        .unwrap()
}

/// One simulated replica: answers with its index while healthy, fails while sick, and
/// counts the calls that reached it.
#[derive(Default)]
struct Replica {
    sick: AtomicBool,
    hits: AtomicUsize,
}

fn replicas(count: usize) -> Vec<Arc<Replica>> {
    (0..count).map(|_| Arc::default()).collect()
}

fn hits(replicas: &[Arc<Replica>]) -> Vec<usize> {
    replicas.iter().map(|r| r.hits.load(SeqCst)).collect()
}

fn replica_service(
    index: usize,
    replica: Arc<Replica>,
) -> impl Service<(), Response = usize, Error = io::Error, Future: Send> + Clone + Send {
    service_fn(move |()| {
        let replica = Arc::clone(&replica);
        async move {
            replica.hits.fetch_add(1, SeqCst);
            if replica.sick.load(SeqCst) {
                Err(io::Error::other(format!("replica {index} is sick")))
            } else {
                Ok(index)
            }
        }
    })
}

/// `group`'s breakers around `replicas`, behind p2c, behind the group's fail-fast.
fn balanced(
    group: &EndpointBreakers<usize>,
    replicas: &[Arc<Replica>],
) -> impl Service<(), Response = usize, Error = BoxError, Future: Send> + Send {
    let services: Vec<_> = replicas
        .iter()
        .enumerate()
        .map(|(index, replica)| replica_service(index, Arc::clone(replica)))
        .collect();
    let discover = PendingRequestsDiscover::new(
        group.discover(ServiceList::new(services)),
        CompleteOnResponse::default(),
    );
    group.fail_fast(Balance::new(discover))
}

async fn call(
    client: &mut (impl Service<(), Response = usize, Error = BoxError> + Send),
) -> Result<usize, BoxError> {
    client.ready().await?.call(()).await
}

fn trip(group: &EndpointBreakers<usize>, key: usize) {
    let breaker = group.get(&key).expect("a member");
    for _ in 0..TRIP_AFTER {
        breaker.try_acquire().expect("closed").failure();
    }
}

#[tokio::test(start_paused = true)]
async fn an_open_endpoint_is_routed_around_and_probed_when_its_period_ends() {
    let group = group(100);
    let replicas = replicas(3);
    replicas[0].sick.store(true, SeqCst);
    let mut client = balanced(&group, &replicas);
    let mut failures = 0;
    for _ in 0..300 {
        if call(&mut client).await.is_err() {
            failures += 1;
        }
    }
    // The sick replica failed exactly the calls that tripped its breaker; after that
    // the balancer sent every call elsewhere and none failed.
    assert_eq!(failures, TRIP_AFTER);
    assert_eq!(replicas[0].hits.load(SeqCst), TRIP_AFTER as usize);
    assert_eq!(group.get(&0).unwrap().state(), State::Open);
    assert_eq!((group.len(), group.ejected(), group.rejected()), (3, 1, 0));

    // Healed; once the open period ends, the balancer lets a probe through and the
    // replica is back in rotation.
    replicas[0].sick.store(false, SeqCst);
    tokio::time::advance(OPEN_FOR).await;
    for _ in 0..300 {
        call(&mut client).await.expect("every replica is healthy");
    }
    assert_eq!(group.get(&0).unwrap().state(), State::Closed);
    assert_eq!(group.ejected(), 0);
    assert!(replicas[0].hits.load(SeqCst) > 50, "{:?}", hits(&replicas));
}

#[tokio::test(start_paused = true)]
async fn a_group_whose_endpoints_are_all_out_fails_fast_until_the_earliest_probe() {
    let group = group(100);
    let replicas = replicas(3);
    for replica in &replicas {
        replica.sick.store(true, SeqCst);
    }
    let mut client = balanced(&group, &replicas);
    client.ready().await.unwrap(); // the balancer discovers the replicas
                                   // Each replica trips on its own failures, 1 s apart.
    for (key, _) in replicas.iter().enumerate() {
        trip(&group, key);
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    let started = Instant::now();
    for _ in 0..100 {
        let error = call(&mut client).await.unwrap_err();
        let open = CircuitOpen::find(&*error).expect("a fast rejection");
        assert_eq!((&*open.name, open.state), ("replicas", State::Open));
        // The first replica tripped 3 s ago: its probe is due in 7 s.
        assert_eq!(open.retry_after, Some(OPEN_FOR - Duration::from_secs(3)));
    }
    assert_eq!(Instant::now(), started, "no caller waited");
    assert_eq!(hits(&replicas), [0, 0, 0], "no call reached a replica");
    assert_eq!(group.rejected(), 100);

    // When the first replica's period ends its probe goes through the balancer (and
    // fails: it is still sick); the group is all out again at once.
    tokio::time::advance(Duration::from_secs(7)).await;
    assert!(group.all_out().is_none(), "a probe may go");
    assert!(call(&mut client).await.is_err());
    assert_eq!(hits(&replicas), [1, 0, 0]);
    let open = group.all_out().expect("the probe failed: all out again");
    assert_eq!(
        open.retry_after,
        Some(Duration::from_secs(1)),
        "the second replica's"
    );
}

/// A replica that never becomes ready (e.g. a saturated connection pool).
#[derive(Clone)]
struct NeverReady;

impl Service<()> for NeverReady {
    type Response = usize;
    type Error = io::Error;
    type Future = std::future::Ready<Result<usize, io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        Poll::Pending
    }

    fn call(&mut self, (): ()) -> Self::Future {
        unreachable!("never ready")
    }
}

#[tokio::test(start_paused = true)]
async fn a_caller_waiting_in_the_balancer_is_woken_when_the_last_endpoint_goes_out() {
    let group = group(100);
    let endpoints = ServiceList::new(vec![NeverReady, NeverReady]);
    let discover =
        PendingRequestsDiscover::new(group.discover(endpoints), CompleteOnResponse::default());
    let mut client = group.fail_fast(Balance::new(discover));
    let started = Instant::now();
    let waiting =
        tokio::spawn(async move { client.ready().await.map(|_| ()).map_err(|e| e.to_string()) });
    tokio::task::yield_now().await;
    assert!(
        !waiting.is_finished(),
        "no replica is ready: the caller waits"
    );
    trip(&group, 0);
    tokio::task::yield_now().await;
    assert!(!waiting.is_finished(), "one replica is still in rotation");
    // Nothing wakes the balancer here: only the group does.
    trip(&group, 1);
    tokio::time::timeout(Duration::from_millis(1), waiting)
        .await
        .expect("woken without waiting for any open period")
        .unwrap()
        .expect("ready: the call will be the rejection");
    assert!(Instant::now() - started < Duration::from_millis(1));
}

#[tokio::test(start_paused = true)]
async fn the_ejection_cap_keeps_endpoints_in_rotation_and_says_so() {
    let group = group(50);
    let replicas = replicas(4);
    let mut client = balanced(&group, &replicas);
    call(&mut client).await.unwrap(); // the balancer discovers the replicas
    assert_eq!(group.len(), 4);
    let mut events = group.get(&2).unwrap().subscribe();
    trip(&group, 0);
    trip(&group, 1);
    assert_eq!(group.ejected(), 2, "50 % of 4");
    trip(&group, 2);
    let capped = group.get(&2).unwrap();
    assert_eq!(
        capped.state(),
        State::Closed,
        "refused: it stays in rotation"
    );
    assert_eq!(
        capped.metrics().consecutive_failures,
        0,
        "its rules start over"
    );
    assert_eq!((group.ejected(), group.capped_trips()), (2, 1));
    let mut saw = None;
    while let Ok(event) = events.try_recv() {
        if let Event::TripCapped {
            name,
            ejected,
            max_ejected,
            ..
        } = event
        {
            saw = Some((name.to_string(), ejected, max_ejected));
        }
    }
    assert_eq!(saw, Some(("replicas/2".to_owned(), 2, 2)));

    // One endpoint back in rotation frees a slot: the next firing opens it.
    group.get(&0).unwrap().reset();
    assert_eq!(group.ejected(), 1);
    trip(&group, 2);
    assert_eq!(capped.state(), State::Open);
    assert_eq!((group.ejected(), group.capped_trips()), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn one_endpoint_may_always_be_ejected_and_an_operators_force_counts() {
    let group = group(10); // 10 % of 4 rounds down to 0: one may still go
    let replicas = replicas(4);
    let mut client = balanced(&group, &replicas);
    call(&mut client).await.unwrap();
    trip(&group, 0);
    assert_eq!(group.get(&0).unwrap().state(), State::Open);
    trip(&group, 1);
    assert_eq!(group.get(&1).unwrap().state(), State::Closed);
    // An operator may force any endpoint out; it counts toward the cap.
    group.get(&0).unwrap().reset();
    group.get(&3).unwrap().force_open();
    assert_eq!(group.ejected(), 1);
    trip(&group, 1);
    assert_eq!(group.get(&1).unwrap().state(), State::Closed);
    assert_eq!(group.capped_trips(), 2);
    // The forced-open endpoint is routed around, not called (the first call above may
    // have gone to it: p2c picks at random).
    let before = replicas[3].hits.load(SeqCst);
    for _ in 0..100 {
        assert_ne!(call(&mut client).await.unwrap(), 3);
    }
    assert_eq!(replicas[3].hits.load(SeqCst), before);
}

/// What a balancer does with the changes of a discover stream: keeps each inserted
/// service until its key is removed or replaced.
async fn apply<D, S>(discover: &mut D, held: &mut std::collections::HashMap<usize, S>)
where
    D: futures::Stream<Item = Result<Change<usize, S>, Infallible>> + Unpin,
{
    match discover.next().await.expect("a change").unwrap() {
        Change::Insert(key, service) => {
            held.insert(key, service);
        }
        Change::Remove(key) => {
            held.remove(&key);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_removed_endpoint_leaves_the_group_and_its_registry_and_frees_its_slot() {
    let registry = Registry::new();
    let group = EndpointBreakers::builder(config())
        .registry(&registry)
        .build()
        .unwrap();
    let (changes, discovered) = futures::channel::mpsc::unbounded();
    let mut discover = group.discover(discovered.map(Ok::<_, Infallible>));
    let mut held = std::collections::HashMap::new();
    for key in 0..3 {
        changes
            .unbounded_send(Change::Insert(key, replica_service(key, Arc::default())))
            .unwrap();
        apply(&mut discover, &mut held).await;
    }
    let names: Vec<String> = registry
        .breakers()
        .iter()
        .map(|b| b.name().to_owned())
        .collect();
    assert_eq!(names, ["replicas/0", "replicas/1", "replicas/2"]);
    trip(&group, 0);
    trip(&group, 1);
    assert_eq!((group.len(), group.ejected()), (3, 2));
    assert_eq!(registry.health().health, tower_circuit_breaker::Health::Red);
    changes.unbounded_send(Change::Remove(0)).unwrap();
    apply(&mut discover, &mut held).await;
    assert_eq!((group.len(), group.ejected()), (2, 1));
    assert!(group.get(&0).is_none());
    assert!(!registry.contains("replicas/0") && registry.contains("replicas/1"));
    // Replaced under its key while its service is alive, an endpoint keeps its
    // breaker; removed and inserted again, it starts over.
    let before = group.get(&1).unwrap();
    changes
        .unbounded_send(Change::Insert(1, replica_service(1, Arc::default())))
        .unwrap();
    apply(&mut discover, &mut held).await;
    assert_eq!(group.get(&1).unwrap().state(), State::Open);
    assert_eq!(group.len(), 2);
    assert_eq!(before.name(), "replicas/1");
    changes.unbounded_send(Change::Remove(1)).unwrap();
    apply(&mut discover, &mut held).await;
    changes
        .unbounded_send(Change::Insert(1, replica_service(1, Arc::default())))
        .unwrap();
    apply(&mut discover, &mut held).await;
    assert_eq!(group.get(&1).unwrap().state(), State::Closed);
    assert_eq!((group.len(), group.ejected()), (2, 0));
}

#[tokio::test(start_paused = true)]
async fn two_discover_streams_share_an_endpoint_until_both_drop_it() {
    let group = group(100);
    let (first_changes, first) = futures::channel::mpsc::unbounded();
    let (second_changes, second) = futures::channel::mpsc::unbounded();
    let mut first = group.discover(first.map(Ok::<_, Infallible>));
    let mut second = group.discover(second.map(Ok::<_, Infallible>));
    let (mut first_held, mut second_held) = Default::default();
    for (changes, discover, held) in [
        (&first_changes, &mut first, &mut first_held),
        (&second_changes, &mut second, &mut second_held),
    ] {
        changes
            .unbounded_send(Change::Insert(7, replica_service(7, Arc::default())))
            .unwrap();
        apply(discover, held).await;
    }
    assert_eq!(group.len(), 1, "one endpoint, one member");
    trip(&group, 7);
    first_changes.unbounded_send(Change::Remove(7)).unwrap();
    apply(&mut first, &mut first_held).await;
    assert_eq!(
        (group.len(), group.ejected()),
        (1, 1),
        "the second still holds it"
    );
    second_changes.unbounded_send(Change::Remove(7)).unwrap();
    apply(&mut second, &mut second_held).await;
    assert_eq!((group.len(), group.ejected()), (0, 0));
}

/// `group`'s breakers behind p2c behind the group's fail-fast, over the endpoints sent
/// on the returned channel.
fn balanced_over_channel<S>(
    group: &EndpointBreakers<usize>,
) -> (
    futures::channel::mpsc::UnboundedSender<Change<usize, S>>,
    impl Service<(), Response = usize, Error = BoxError>,
)
where
    S: Service<(), Response = usize, Error = io::Error> + Send + 'static,
    S::Future: Send,
{
    let (changes, discovered) = futures::channel::mpsc::unbounded();
    let discover = PendingRequestsDiscover::new(
        group.discover(discovered.map(Ok::<_, Infallible>)),
        CompleteOnResponse::default(),
    );
    (changes, group.fail_fast(Balance::new(discover)))
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_added_while_every_other_is_out_is_found_and_called() {
    let group = group(100);
    let (changes, mut client) = balanced_over_channel(&group);
    changes
        .unbounded_send(Change::Insert(0, replica_service(0, Arc::default())))
        .unwrap();
    assert_eq!(call(&mut client).await.unwrap(), 0);
    group.get(&0).unwrap().force_open();
    let error = call(&mut client).await.unwrap_err();
    assert!(CircuitOpen::find(&*error).is_some(), "{error}");
    // A healthy endpoint arrives while the only one is out: the balancer, polled
    // before every fast failure, discovers it and the next call reaches it.
    changes
        .unbounded_send(Change::Insert(1, replica_service(1, Arc::default())))
        .unwrap();
    assert_eq!(call(&mut client).await.unwrap(), 1);
    assert_eq!(group.len(), 2);
}

/// A replica whose `poll_ready` fails once (e.g. a reconnecting client), then never
/// becomes ready: the balancer drops it, as tower's balancers do.
struct FailsReadiness {
    failed: bool,
}

impl Service<()> for FailsReadiness {
    type Response = usize;
    type Error = io::Error;
    type Future = std::future::Ready<Result<usize, io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), io::Error>> {
        if self.failed {
            return Poll::Pending;
        }
        self.failed = true;
        Poll::Ready(Err(io::Error::other("connection refused")))
    }

    fn call(&mut self, (): ()) -> Self::Future {
        unreachable!("never ready")
    }
}

#[tokio::test(start_paused = true)]
async fn an_endpoint_the_balancer_drops_leaves_the_group() {
    let group = group(100);
    let (changes, mut client) = balanced_over_channel(&group);
    changes
        .unbounded_send(Change::Insert(
            0,
            tower::util::Either::Left(FailsReadiness { failed: false }),
        ))
        .unwrap();
    let replica = Arc::new(Replica::default());
    replica.sick.store(true, SeqCst);
    changes
        .unbounded_send(Change::Insert(
            1,
            tower::util::Either::Right(replica_service(1, Arc::clone(&replica))),
        ))
        .unwrap();
    // Endpoint 0 fails its readiness check and is dropped by p2c; endpoint 1 trips.
    for _ in 0..TRIP_AFTER {
        assert!(call(&mut client).await.is_err());
    }
    assert_eq!(group.len(), 1, "the dropped endpoint left the group");
    assert!(group.get(&0).is_none());
    let started = Instant::now();
    let error = call(&mut client).await.unwrap_err();
    assert!(CircuitOpen::find(&*error).is_some(), "{error}");
    assert_eq!(
        Instant::now(),
        started,
        "failed fast, not after the open period"
    );
}

#[test]
fn ramp_up_is_refused_for_endpoint_breakers() {
    let config = Config::builder()
        .ramp_up(Duration::from_secs(1))
        .build()
        .unwrap();
    let error = EndpointBreakers::<usize>::new(config).unwrap_err();
    assert_eq!(error.field(), "ramp_up");
    assert!(
        error
            .to_string()
            .contains("not supported by endpoint breakers"),
        "{error}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_buffered_group_keeps_working_through_an_outage_of_every_endpoint() {
    let group = group(100);
    let replicas = replicas(2);
    for replica in &replicas {
        replica.sick.store(true, SeqCst);
    }
    let client = Buffer::new(balanced(&group, &replicas), 16);
    let mut failed = 0;
    for _ in 0..20 {
        let error = client.clone().oneshot(()).await.unwrap_err();
        if CircuitOpen::find(&*error).is_none() {
            failed += 1;
        }
    }
    assert_eq!(failed, 2 * TRIP_AFTER, "then every call failed fast");
    for replica in &replicas {
        replica.sick.store(false, SeqCst);
    }
    tokio::time::advance(OPEN_FOR).await;
    for _ in 0..20 {
        client
            .clone()
            .oneshot(())
            .await
            .expect("the buffer was not poisoned");
    }
    assert_eq!(group.ejected(), 0);
}

#[test]
fn a_cap_over_100_percent_is_an_error_naming_it() {
    let error = EndpointBreakers::<usize>::builder(config())
        .max_ejection_percent(150)
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "max_ejection_percent");
    assert_eq!(
        error.to_string(),
        "invalid `max_ejection_percent` = 150: must be at most 100"
    );
    assert!(matches!(error, ConfigError::Invalid { .. }));
    let group = EndpointBreakers::<usize>::new(config()).unwrap();
    assert_eq!(group.max_ejection_percent(), 100);
    assert!(
        group.config().backpressure(),
        "the members' readiness implies it"
    );
}
