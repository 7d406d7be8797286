//! [`Fleet`] and [`FleetSync`]: the background task that keeps one breaker in step
//! with a [`StateStore`].

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use super::store::{FleetState, Record, StateStore, StoreError};
use crate::breaker::{CircuitBreaker, TransitionReason};
use crate::error::ConfigError;
use crate::state::State;

/// Shares breakers' state through a [`StateStore`]: the options, and
/// [`sync`](Fleet::sync) to start syncing a breaker. See the [module docs](super) for
/// the design and the consistency model.
///
/// ```
/// use std::time::Duration;
/// use tower_circuit_breaker::fleet::{Fleet, FleetError, RedisStore};
/// use tower_circuit_breaker::{CircuitBreaker, Config};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let fleet = Fleet::new(RedisStore::open("redis://127.0.0.1:1/", "checkout")?)
///     .poll_interval(Duration::from_millis(50))
///     .probe_lease(Duration::from_secs(2))
///     .instance_id("checkout-7f9c");
/// let breaker = CircuitBreaker::new(Config::builder().name("payments").build()?);
/// // No Redis on port 1: the sync keeps retrying and the breaker works on its own.
/// let sync = fleet.sync(&breaker)?;
/// assert!(breaker.try_acquire().is_ok());
/// assert_eq!(sync.instance_id(), "checkout-7f9c");
///
/// let bad = fleet.clone().poll_interval(Duration::ZERO).sync(&breaker).unwrap_err();
/// assert!(matches!(bad, FleetError::Invalid(ref e) if e.field() == "poll_interval"));
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Fleet<S> {
    store: Arc<S>,
    poll_interval: Duration,
    probe_lease: Option<Duration>,
    instance: Arc<str>,
}

impl<S> Clone for Fleet<S> {
    fn clone(&self) -> Self {
        Fleet {
            store: Arc::clone(&self.store),
            poll_interval: self.poll_interval,
            probe_lease: self.probe_lease,
            instance: Arc::clone(&self.instance),
        }
    }
}

/// Why a fleet could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// An option is out of range; the error names it and its value.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
    /// The Redis URL could not be parsed.
    #[error("invalid Redis URL {url:?}")]
    Url {
        /// The URL as given.
        url: String,
        /// Why it was rejected.
        #[source]
        source: redis::RedisError,
    },
    /// The URL asks for TLS (`rediss://`), which this build cannot speak: it needs the
    /// crate's `rustls` feature.
    #[error(
        "Redis URL {url:?} asks for TLS (`rediss://`): enable the `rustls` feature of \
         tower-circuit-breaker"
    )]
    TlsNotEnabled {
        /// The URL as given.
        url: String,
    },
    /// The TLS root certificate given to
    /// [`RedisStore::root_certificate`](crate::fleet::RedisStore::root_certificate) could
    /// not be used (not PEM, or the store's URL is not `rediss://`).
    #[error("the Redis TLS root certificate could not be used")]
    Certificate {
        /// Why it was rejected.
        #[source]
        source: redis::RedisError,
    },
    /// [`Fleet::sync`] was called outside a Tokio runtime, where it cannot start its
    /// task.
    #[error("`Fleet::sync` needs a Tokio runtime: call it from within one")]
    NoRuntime,
}

impl<S: StateStore> Fleet<S> {
    /// Default interval at which each synced breaker reads the fleet's state.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(100);

    /// Fleet syncing through `store`, with a random instance id.
    pub fn new(store: S) -> Fleet<S> {
        let random = random_u64();
        Fleet {
            store: Arc::new(store),
            poll_interval: Self::DEFAULT_POLL_INTERVAL,
            probe_lease: None,
            instance: format!("{}-{random:016x}", std::process::id()).into(),
        }
    }

    /// How often each synced breaker reads the fleet's state (default 100 ms): the
    /// bound, plus one store round trip, on how stale an instance's view of the fleet
    /// is. Local transitions are published at once, not at the next tick.
    pub fn poll_interval(mut self, interval: Duration) -> Fleet<S> {
        self.poll_interval = interval;
        self
    }

    /// How long the probe lease lasts (default: the breaker's `half_open_max_wait`).
    /// One instance probes per lease; if it dies or hangs, another takes over after at
    /// most this long.
    pub fn probe_lease(mut self, ttl: Duration) -> Fleet<S> {
        self.probe_lease = Some(ttl);
        self
    }

    /// This instance's name in the store (default: process id and a random suffix).
    /// Must be unique in the fleet.
    pub fn instance_id(mut self, id: &str) -> Fleet<S> {
        self.instance = id.into();
        self
    }

    /// Starts syncing `breaker` with the fleet in a background task, until the
    /// returned handle is dropped. Calls through the breaker never wait for the task
    /// or the store. Must be called within a Tokio runtime.
    ///
    /// Sync each breaker once: two syncs of one breaker would both steer its probe
    /// gate. Breakers are matched across instances by [`name`](crate::ConfigBuilder::name),
    /// so give each downstream's breaker the same name on every instance and different
    /// names to different downstreams. Each synced breaker costs one store read per
    /// poll interval, plus a write per local transition.
    pub fn sync(&self, breaker: &CircuitBreaker) -> Result<FleetSync, FleetError> {
        if self.poll_interval.is_zero() {
            let rule = "must be longer than zero";
            return Err(ConfigError::invalid("poll_interval", self.poll_interval, rule).into());
        }
        let lease = self
            .probe_lease
            .unwrap_or(breaker.config().half_open_max_wait);
        if lease < Duration::from_millis(1) {
            let rule = "must be at least one millisecond";
            return Err(ConfigError::invalid("probe_lease", lease, rule).into());
        }
        if self.instance.is_empty() || self.instance.contains('\n') {
            let rule = "must be non-empty and on one line";
            return Err(ConfigError::invalid("instance_id", &*self.instance, rule).into());
        }
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        let connected = Arc::new(AtomicBool::new(false));
        let syncer = Syncer {
            store: Arc::clone(&self.store),
            breaker: breaker.clone(),
            rejected_seen: 0,
            name: breaker.name().to_owned(),
            instance: Arc::clone(&self.instance),
            lease,
            connected: None,
            shared_connected: Arc::clone(&connected),
            seen_generation: None,
            pending: None,
            last_seen: None,
            resync: false,
            lease_generation: None,
            // Random, so a restarted instance with a stable id never reuses the id
            // of a record the others have already seen.
            next_id: random_u64(),
        };
        let task = runtime.spawn(syncer.run(self.poll_interval));
        Ok(FleetSync {
            task,
            connected,
            instance: Arc::clone(&self.instance),
        })
    }
}

/// The handle of one breaker's sync with its fleet. Dropping it stops the sync; the
/// breaker then runs on its local state alone.
#[derive(Debug)]
pub struct FleetSync {
    task: JoinHandle<()>,
    connected: Arc<AtomicBool>,
    instance: Arc<str>,
}

impl FleetSync {
    /// Whether the last store call succeeded. While `false` the breaker runs on its
    /// local state alone.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Relaxed)
    }

    /// The instance id this sync publishes under.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }
}

impl Drop for FleetSync {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The sync task's state.
struct Syncer<S> {
    store: Arc<S>,
    /// The breaker synced, steered through its fleet hooks; its rejection count is the
    /// demand for a probe.
    breaker: CircuitBreaker,
    /// The rejection count at the last poll.
    rejected_seen: u64,
    name: String,
    instance: Arc<str>,
    lease: Duration,
    /// `None` until the first store call.
    connected: Option<bool>,
    shared_connected: Arc<AtomicBool>,
    /// The generation of the breaker's state last looked at.
    seen_generation: Option<u32>,
    /// A local transition not yet published: why it happened.
    pending: Option<TransitionReason>,
    /// The `(origin, id)` of the last record applied or written.
    last_seen: Option<(String, u64)>,
    /// The store just became reachable: re-publish a local open it lost.
    resync: bool,
    /// The open period (generation) for which this instance holds the probe lease.
    lease_generation: Option<u32>,
    next_id: u64,
}

/// Opens the probe gate when the task ends (its handle dropped, or the runtime shut
/// down): without a sync, the breaker probes on its own again.
struct OpenGateOnDrop(CircuitBreaker);

impl Drop for OpenGateOnDrop {
    fn drop(&mut self) {
        self.0.set_probe_gate(false);
    }
}

impl<S: StateStore> Syncer<S> {
    async fn run(mut self, poll_interval: Duration) {
        let _gate = OpenGateOnDrop(self.breaker.clone());
        let mut tick = tokio::time::interval(poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut poll = true;
        loop {
            // Registered before looking, so a transition during the step is not missed.
            let notified = self.breaker.changed();
            tokio::pin!(notified);
            notified.as_mut().enable();
            self.step(poll).await;
            let tick = std::pin::pin!(tick.tick());
            let woken = futures::future::select(notified.as_mut(), tick).await;
            poll = matches!(woken, futures::future::Either::Right(_));
        }
    }

    /// Publishes local changes; with `poll`, also learns the fleet's state and takes
    /// the probe lease when due.
    async fn step(&mut self, poll: bool) {
        self.observe_local();
        if self.pending.is_some() && !self.publish_pending().await {
            return;
        }
        if poll {
            match self.store.load(&self.name).await {
                Ok(record) => {
                    self.reachable();
                    self.learn(record);
                }
                Err(error) => return self.unreachable(&error),
            }
            if self.pending.is_some() && !self.publish_pending().await {
                return;
            }
            self.observe_local();
            self.try_lease().await;
        }
        self.update_gate();
    }

    /// Notes a local transition that the fleet should hear about.
    fn observe_local(&mut self) {
        let (state, generation, reason) = self.breaker.last_transition();
        if self.seen_generation == Some(generation) {
            return;
        }
        let first = self.seen_generation.is_none();
        self.seen_generation = Some(generation);
        match (state, reason) {
            (_, None | Some(TransitionReason::Remote)) => {}
            (State::Open, Some(reason)) => self.pending = Some(reason),
            // A close long before the sync started is no news to the fleet.
            (State::Closed, Some(reason)) if !first => self.pending = Some(reason),
            _ => {}
        }
    }

    /// Publishes the breaker's current open or closed state. Returns whether the store
    /// was reachable.
    async fn publish_pending(&mut self) -> bool {
        let Some(reason) = self.pending else {
            return true;
        };
        let state = match self.breaker.open_remaining() {
            Some(open_for) => FleetState::Open {
                open_for,
                reason: reason.to_string(),
            },
            None if self.breaker.stored_state() == State::Closed => FleetState::Closed,
            None => {
                // Half-open or an operator override: nothing the fleet shares.
                self.pending = None;
                return true;
            }
        };
        self.next_id = self.next_id.wrapping_add(1);
        let record = Record {
            state,
            origin: self.instance.to_string(),
            id: self.next_id,
        };
        match self.store.publish(&self.name, &record).await {
            Ok(()) => {
                self.reachable();
                tracing::debug!(breaker = %self.name, state = ?record.state, "published to the fleet");
                self.last_seen = Some((record.origin, record.id));
                self.pending = None;
                true
            }
            Err(error) => {
                self.unreachable(&error);
                false
            }
        }
    }

    /// Applies a record from another instance, once.
    fn learn(&mut self, record: Option<Record>) {
        let resync = std::mem::take(&mut self.resync);
        let Some(record) = record else {
            if resync && self.breaker.stored_state() == State::Open && self.pending.is_none() {
                // The store lost the fleet's open (e.g. Redis restarted): restore it.
                let (_, _, reason) = self.breaker.last_transition();
                self.pending = Some(reason.unwrap_or(TransitionReason::Remote));
            }
            return;
        };
        // Our own publications are in `last_seen` already; a record of this instance
        // id from before a restart is applied like any other.
        let key = (record.origin, record.id);
        if self.last_seen.as_ref() == Some(&key) {
            return;
        }
        self.last_seen = Some(key);
        match record.state {
            FleetState::Open { open_for, reason } => {
                if self.breaker.open_remote(open_for) {
                    tracing::info!(breaker = %self.name, %reason, ?open_for, "opened by the fleet");
                }
            }
            FleetState::Closed => {
                if self.breaker.close_remote() {
                    tracing::info!(breaker = %self.name, "closed by the fleet");
                }
            }
        }
    }

    /// Once a probe is due (the open period has elapsed, or a probe-interval scout is
    /// due), asks for the probe lease if calls are waiting for it: an instance without traffic to this downstream would hold the
    /// lease without probing, and the fleet would wait for the lease to expire.
    async fn try_lease(&mut self) {
        let rejected = self.breaker.metrics().rejected;
        let demand = rejected > self.rejected_seen;
        self.rejected_seen = rejected;
        let (state, generation, _) = self.breaker.last_transition();
        let due = demand
            && state == State::Open
            && self.breaker.probe_due_in() == Some(Duration::ZERO)
            && self.lease_generation != Some(generation);
        if !due || self.connected != Some(true) {
            return;
        }
        match self
            .store
            .acquire_probe_lease(&self.name, &self.instance, self.lease)
            .await
        {
            Ok(true) => {
                tracing::debug!(breaker = %self.name, "holds the fleet's probe lease");
                self.lease_generation = Some(generation);
            }
            Ok(false) => {}
            Err(error) => self.unreachable(&error),
        }
    }

    /// Shuts the probe gate while the fleet decides who probes: the breaker is open,
    /// the store reachable, and this instance does not hold the lease for this period.
    fn update_gate(&self) {
        let (state, generation, _) = self.breaker.last_transition();
        let shut = self.connected == Some(true)
            && state == State::Open
            && self.lease_generation != Some(generation);
        if self.breaker.probe_gate_shut() != shut {
            self.breaker.set_probe_gate(shut);
        }
    }

    fn reachable(&mut self) {
        if self.connected != Some(true) {
            if self.connected == Some(false) {
                tracing::info!(breaker = %self.name, "fleet state store reachable again; resyncing");
            }
            self.resync = true;
            self.connected = Some(true);
            self.shared_connected.store(true, Relaxed);
        }
    }

    fn unreachable(&mut self, error: &StoreError) {
        if self.connected != Some(false) {
            tracing::warn!(
                breaker = %self.name,
                %error,
                "fleet state store unreachable; running on local state until it answers"
            );
            self.connected = Some(false);
            self.shared_connected.store(false, Relaxed);
        }
        self.update_gate();
    }
}

/// A random `u64` from std's per-process hasher keys.
fn random_u64() -> u64 {
    std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish()
}
