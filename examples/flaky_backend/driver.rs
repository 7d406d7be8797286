//! The flaky-backend scenario of `examples/flaky_backend.rs`, against a real HTTP backend
//! on 127.0.0.1 or (`--paused`) the same backend simulated in paused Tokio time: the
//! backend's phases, the three client stacks, the load generator, and the report's raw
//! data (see `report.rs` for the tables).

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tower::load_shed::error::Overloaded;
use tower::timeout::error::Elapsed;
use tower::util::BoxCloneService;
use tower::{service_fn, BoxError, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::retry::RetryPolicy;
use tower_circuit_breaker::{Backoff, CircuitBreaker, CircuitOpen, Config, State};

use crate::report::{Report, Run};

/// Latency of a healthy backend call.
pub const HEALTHY_LATENCY: Duration = Duration::from_millis(5);
/// Share of calls that fail during the error phase.
pub const ERROR_RATE: f64 = 0.3;
/// How long each call hangs during the outage before it fails.
pub const OUTAGE_HANG: Duration = Duration::from_millis(500);
/// The per-attempt timeout of stacks (b) and (c).
pub const TIMEOUT: Duration = Duration::from_millis(100);
/// The bulkhead of stack (c): at most this many calls in flight, the rest are shed.
pub const CONCURRENCY: usize = 64;

/// The backend's phases, in order, each a quarter of the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Healthy,
    Errors,
    Outage,
    Recovery,
}

impl Phase {
    pub const ALL: [Phase; 4] = [
        Phase::Healthy,
        Phase::Errors,
        Phase::Outage,
        Phase::Recovery,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Errors => "30% errors",
            Phase::Outage => "outage",
            Phase::Recovery => "recovery",
        }
    }

    pub fn description(self) -> &'static str {
        match self {
            Phase::Healthy => "every call answers 200 after 5 ms",
            Phase::Errors => "30% of calls answer 500 after 5 ms",
            Phase::Outage => "every call hangs 500 ms, then answers 503",
            Phase::Recovery => "healthy again",
        }
    }
}

/// The three ways the client calls the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// (a) no protection: plain calls.
    NoProtection,
    /// (b) a 100 ms timeout per call.
    TimeoutOnly,
    /// (c) `Retry( CircuitBreaker( Timeout( ConcurrencyLimit + LoadShed( backend ))))`.
    FullStack,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Scenario::NoProtection,
        Scenario::TimeoutOnly,
        Scenario::FullStack,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    /// The backend path of this scenario's calls, so the backend counts them apart.
    pub fn path(self) -> &'static str {
        match self {
            Scenario::NoProtection => "/a",
            Scenario::TimeoutOnly => "/b",
            Scenario::FullStack => "/c",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Scenario::NoProtection => "(a) no protection",
            Scenario::TimeoutOnly => "(b) timeout only",
            Scenario::FullStack => "(c) full stack",
        }
    }
}

/// When each phase runs: the run is cut into four equal phases.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    phase_length: Duration,
}

impl Schedule {
    pub fn new(total: Duration) -> Self {
        Schedule {
            phase_length: total / 4,
        }
    }

    pub fn total(&self) -> Duration {
        self.phase_length * 4
    }

    pub fn phase_start(&self, phase: Phase) -> Duration {
        self.phase_length * phase.index() as u32
    }

    /// The phase at `elapsed` since the start (recovery after the end).
    pub fn phase_at(&self, elapsed: Duration) -> Phase {
        let index = (elapsed.as_nanos() / self.phase_length.as_nanos().max(1)) as usize;
        Phase::ALL[index.min(3)]
    }
}

/// How the backend answers one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// How long the backend takes.
    pub delay: Duration,
    /// The HTTP status it answers with.
    pub status: u16,
}

/// The backend's shared state: its schedule, its dice, and its hit counters.
#[derive(Debug, Clone)]
pub struct Backend {
    schedule: Schedule,
    start: Instant,
    seed: u64,
    /// Calls received, per scenario, then per phase.
    hits: Arc<[[AtomicU64; 4]; 3]>,
}

impl Backend {
    pub fn new(schedule: Schedule, start: Instant, seed: u64) -> Self {
        Backend {
            schedule,
            start,
            seed,
            hits: Arc::default(),
        }
    }

    /// Counts a call from `scenario` and decides its answer from the current phase.
    pub fn answer(&self, scenario: Scenario) -> Answer {
        let phase = self.schedule.phase_at(self.start.elapsed());
        let counters = &self.hits[scenario.index()];
        let n = counters.iter().map(|c| c.load(Relaxed)).sum::<u64>();
        counters[phase.index()].fetch_add(1, Relaxed);
        match phase {
            Phase::Healthy | Phase::Recovery => Answer {
                delay: HEALTHY_LATENCY,
                status: 200,
            },
            Phase::Errors => {
                let roll = unit(mix(self.seed) ^ ((scenario.index() as u64) << 56) ^ n);
                Answer {
                    delay: HEALTHY_LATENCY,
                    status: if roll < ERROR_RATE { 500 } else { 200 },
                }
            }
            Phase::Outage => Answer {
                delay: OUTAGE_HANG,
                status: 503,
            },
        }
    }

    /// Calls from `scenario` that reached the backend during `phase`.
    pub fn hits(&self, scenario: Scenario, phase: Phase) -> u64 {
        self.hits[scenario.index()][phase.index()].load(Relaxed)
    }
}

/// One SplitMix64 step: scrambles `input` into 64 well-mixed bits.
fn mix(input: u64) -> u64 {
    let mut z = input.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A uniform sample in `[0, 1)` from a 64-bit input.
fn unit(input: u64) -> f64 {
    (mix(input) >> 11) as f64 / (1u64 << 53) as f64
}

/// The backend answered with a server error.
#[derive(Debug)]
pub struct ServerError(pub u16);

impl fmt::Display for ServerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "backend answered {}", self.0)
    }
}

impl std::error::Error for ServerError {}

/// A client's view of the backend: one request, no response body worth keeping.
pub type Client = BoxCloneService<(), (), BoxError>;

/// The backend simulated in-process (Tokio sleeps, so paused time drives it).
pub fn simulated(backend: &Backend, scenario: Scenario) -> Client {
    let backend = backend.clone();
    BoxCloneService::new(service_fn(move |()| {
        let answer = backend.answer(scenario);
        async move {
            tokio::time::sleep(answer.delay).await;
            match answer.status {
                200..=499 => Ok(()),
                status => Err(BoxError::from(ServerError(status))),
            }
        }
    }))
}

/// The breaker of stack (c): trips on 8 consecutive failures (timeouts included), stays
/// open 500 ms (1 s while the backend stays down) but lets one probe through every
/// 50 ms meanwhile, and closes after 2 successful probes.
pub fn breaker_config() -> Config {
    Config::builder()
        .name("backend")
        .consecutive_failures(8)
        .open_duration(Duration::from_millis(500))
        .open_backoff(Backoff::exponential(2.0, Duration::from_secs(1)))
        .probe_interval(Duration::from_millis(50))
        .half_open_permits(2)
        .half_open_successes(2)
        .build()
        .expect("valid breaker config")
}

/// The retry policy of stack (c): 3 attempts, 50 ms base backoff with jitter, a budget of
/// 50% extra load, and never into an open breaker.
pub fn retry_policy(seed: u64) -> RetryPolicy {
    RetryPolicy::builder()
        .base_delay(Duration::from_millis(50))
        .max_delay(Duration::from_millis(500))
        .max_attempts(3)
        .budget(Duration::from_secs(10), 10, 0.5)
        .seed(seed)
        .build()
        .expect("valid retry policy")
}

/// Wraps `backend` the way `scenario` says.
pub fn stack(scenario: Scenario, backend: Client, breaker: &CircuitBreaker, seed: u64) -> Client {
    match scenario {
        Scenario::NoProtection => backend,
        Scenario::TimeoutOnly => ServiceBuilder::new()
            .timeout(TIMEOUT)
            .service(backend)
            .boxed_clone(),
        Scenario::FullStack => ServiceBuilder::new()
            .layer(retry_policy(seed).into_layer())
            .layer(breaker.layer().box_errors())
            .timeout(TIMEOUT)
            .load_shed()
            .concurrency_limit(CONCURRENCY)
            .service(backend)
            .boxed_clone(),
    }
}

/// How a request ended, as the caller sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Rejected at once by the breaker or the bulkhead.
    FastFail,
    /// The timeout fired.
    Timeout,
    /// The backend's error reached the caller.
    Error,
}

impl Outcome {
    pub fn of(result: &Result<(), BoxError>) -> Outcome {
        match result {
            Ok(()) => Outcome::Success,
            Err(e) if CircuitOpen::find(&**e).is_some() || e.is::<Overloaded>() => {
                Outcome::FastFail
            }
            Err(e) if e.is::<Elapsed>() => Outcome::Timeout,
            Err(_) => Outcome::Error,
        }
    }
}

/// One request as the caller saw it.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    /// When it was sent, since the start of the run.
    pub sent_at: Duration,
    pub latency: Duration,
    pub outcome: Outcome,
}

/// Sends `rps` requests per second through `client` for the whole schedule, each from
/// its own task (an open-loop load: slow answers do not slow the sender down).
pub async fn drive(client: Client, start: Instant, schedule: Schedule, rps: u32) -> Vec<Record> {
    let interval = Duration::from_secs(1) / rps.max(1);
    let count = (schedule.total().as_nanos() / interval.as_nanos()) as u32;
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        tokio::time::sleep_until(start + interval * i).await;
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let sent = Instant::now();
            let result = client.oneshot(()).await;
            Record {
                sent_at: sent - start,
                latency: sent.elapsed(),
                outcome: Outcome::of(&result),
            }
        }));
    }
    let mut records = Vec::with_capacity(tasks.len());
    for task in tasks {
        records.push(task.await.expect("request task panicked"));
    }
    records
}

/// Samples the breaker's state every 5 ms until `until`, keeping each change (a state
/// that lasts less than one sample can be missed; `state()` is a pure read, so sampling
/// does not disturb the breaker).
pub async fn watch(
    breaker: CircuitBreaker,
    start: Instant,
    until: Duration,
) -> Vec<(Duration, State)> {
    let mut last = breaker.state();
    let mut changes = vec![(Duration::ZERO, last)];
    let mut tick = tokio::time::interval(Duration::from_millis(5));
    while start.elapsed() < until {
        tick.tick().await;
        let state = breaker.state();
        if state != last {
            changes.push((start.elapsed(), state));
            last = state;
        }
    }
    changes
}

/// Runs the three scenarios side by side against `backend`, reached through
/// `connect(scenario)` (a simulated or a real HTTP backend).
pub async fn run<F>(
    backend: &Backend,
    start: Instant,
    rps: u32,
    seed: u64,
    mut connect: F,
) -> Report
where
    F: FnMut(Scenario) -> Client,
{
    let schedule = backend.schedule;
    let breaker = CircuitBreaker::new(breaker_config());
    let watcher = tokio::spawn(watch(breaker.clone(), start, schedule.total()));
    let drivers: Vec<_> = Scenario::ALL
        .into_iter()
        .map(|scenario| {
            let client = stack(scenario, connect(scenario), &breaker, seed);
            tokio::spawn(drive(client, start, schedule, rps))
        })
        .collect();
    let mut runs = Vec::new();
    for (scenario, driver) in Scenario::ALL.into_iter().zip(drivers) {
        let records = driver.await.expect("driver panicked");
        let hits = Phase::ALL.map(|phase| backend.hits(scenario, phase));
        runs.push(Run {
            scenario,
            records,
            hits,
        });
    }
    let transitions = watcher.await.expect("watcher panicked");
    Report {
        schedule,
        rps,
        runs,
        transitions,
    }
}
