//! The scenario harness of `examples/targets.rs`: one breaker config driven through
//! one scenario at one call rate, in paused Tokio time, with a seeded random backend.
//! Nothing here reads a real clock or opens a socket, so a cell's numbers are exact
//! and the same on every machine (tests/examples/targets.rs asserts on them).
//!
//! A scenario is a timeline of backend behaviours. Calls arrive open-loop, one every
//! `1 / rate` seconds, each through `CircuitBreaker( Timeout( backend ))`, so a hanging
//! backend fails by timeout, inside the breaker, as in a real stack.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use tokio::time::Instant;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_circuit_breaker::{AdaptiveFailureRate, CircuitBreakerLayer, Config, Error, State};

/// A healthy backend's own failure rate in the scenarios that are not about noise.
pub const BASELINE_NOISE: f64 = 0.005;
/// How long a healthy (or failing) backend call takes.
pub const CALL_LATENCY: Duration = Duration::from_millis(1);
/// The per-call timeout inside the breaker; a hanging backend fails after it.
pub const TIMEOUT: Duration = Duration::from_millis(100);
/// How long the backend is healthy before an outage starts.
pub const WARM_UP: Duration = Duration::from_secs(20);
/// How long an outage lasts.
pub const OUTAGE: Duration = Duration::from_secs(20);
/// How long a healthy-with-noise scenario runs, and the healed phase of a recovery.
pub const HEALTHY: Duration = Duration::from_secs(60);
/// The call rates every scenario runs at.
pub const RATES: [u32; 3] = [10, 100, 1_000];
/// The probe interval of the table's last rule.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// The ramp-up of the table's last rule.
pub const RAMP_UP: Duration = Duration::from_secs(1);
/// The noise levels of the healthy scenarios.
pub const NOISE_LEVELS: [f64; 4] = [0.005, 0.02, 0.10, 0.20];

/// What the backend does with a call.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Behaviour {
    /// Answers after [`CALL_LATENCY`]; fails with this probability.
    Noisy(f64),
    /// Never answers (the timeout inside the breaker fails the call).
    Hangs,
}

/// What happens to the backend.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scenario {
    /// Healthy throughout, failing with its normal `noise` rate.
    Healthy { noise: f64 },
    /// Healthy, then every call fails at once.
    HardOutage,
    /// Healthy, then every call hangs.
    HangingOutage,
    /// Healthy, then a share `errors` of the calls fail.
    PartialOutage { errors: f64 },
    /// Healthy, a hard outage, then healthy again.
    Recovery,
}

impl Scenario {
    /// Every scenario of the table, in its order.
    pub fn all() -> Vec<Scenario> {
        let mut all: Vec<Scenario> = NOISE_LEVELS
            .iter()
            .map(|&noise| Scenario::Healthy { noise })
            .collect();
        all.extend([
            Scenario::HardOutage,
            Scenario::HangingOutage,
            Scenario::PartialOutage { errors: 0.4 },
            Scenario::Recovery,
        ]);
        all
    }

    pub fn name(&self) -> String {
        match self {
            Scenario::Healthy { noise } => format!("healthy, {} noise", percent(*noise)),
            Scenario::HardOutage => "hard outage".to_owned(),
            Scenario::HangingOutage => "hanging outage".to_owned(),
            Scenario::PartialOutage { errors } => format!("partial outage, {}", percent(*errors)),
            Scenario::Recovery => "recovery".to_owned(),
        }
    }

    /// The backend's phases: (behaviour, how long).
    fn phases(&self) -> Vec<(Behaviour, Duration)> {
        let healthy = Behaviour::Noisy(BASELINE_NOISE);
        match *self {
            Scenario::Healthy { noise } => vec![(Behaviour::Noisy(noise), HEALTHY)],
            Scenario::HardOutage => vec![(healthy, WARM_UP), (Behaviour::Noisy(1.0), OUTAGE)],
            Scenario::HangingOutage => vec![(healthy, WARM_UP), (Behaviour::Hangs, OUTAGE)],
            Scenario::PartialOutage { errors } => {
                vec![(healthy, WARM_UP), (Behaviour::Noisy(errors), OUTAGE)]
            }
            Scenario::Recovery => vec![
                (healthy, WARM_UP),
                (Behaviour::Noisy(1.0), OUTAGE),
                (healthy, HEALTHY),
            ],
        }
    }

    /// When the backend turns sick, if it does.
    fn sick_from(&self) -> Option<Duration> {
        match self {
            Scenario::Healthy { .. } => None,
            _ => Some(WARM_UP),
        }
    }

    /// When the backend heals, if it does.
    fn healed_from(&self) -> Option<Duration> {
        match self {
            Scenario::Recovery => Some(WARM_UP + OUTAGE),
            _ => None,
        }
    }
}

/// A breaker config under test, with the name the table gives it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: &'static str,
    pub config: Config,
}

/// What one scenario at one rate measured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// Calls made.
    pub calls: u64,
    /// Calls rejected by the breaker.
    pub rejected: u64,
    /// Outage start -> the breaker open (`None`: never opened while sick).
    pub detection: Option<Duration>,
    /// Calls that reached the sick backend before the breaker opened (all of the sick
    /// phase's calls when it never opened).
    pub calls_before_open: u64,
    /// Calls per second that reached the sick backend after the breaker first opened,
    /// until the sick phase ended: the probe load.
    pub probe_load: Option<f64>,
    /// Backend healed -> the breaker closed (`None`: not closed by the end).
    pub recovery: Option<Duration>,
    /// Calls rejected after the backend healed.
    pub rejected_after_healing: u64,
    /// Calls made after the backend healed.
    pub calls_after_healing: u64,
    /// Rejected share of the calls made while the backend was only at its normal noise
    /// (the healthy scenarios, and the warm-up of the others): false positives.
    pub false_positive_rate: f64,
}

impl Cell {
    /// Rejected share of the calls after the backend healed.
    pub fn fast_fail_after_healing(&self) -> Option<f64> {
        (self.calls_after_healing > 0)
            .then(|| self.rejected_after_healing as f64 / self.calls_after_healing as f64)
    }
}

/// Runs `scenario` at `rate` calls per second against a breaker built from `rule`.
/// Must run on a current-thread runtime with paused time (see [`runtime`]).
pub async fn run(rule: &Rule, scenario: Scenario, rate: u32, seed: u64) -> Cell {
    let start = Instant::now();
    let phases = scenario.phases();
    let end: Duration = phases.iter().map(|(_, length)| *length).sum();
    let layer = CircuitBreakerLayer::new(rule.config.clone());
    let breaker = layer.breaker().clone();
    let backend_calls = Rc::new(BackendCalls::default());
    let backend = {
        let backend_calls = Rc::clone(&backend_calls);
        let random = Rc::new(RefCell::new(SplitMix64(seed)));
        service_fn(move |()| {
            let at = start.elapsed();
            let behaviour = behaviour_at(&phases, at);
            backend_calls.count(at);
            let fails = match behaviour {
                Behaviour::Noisy(rate) => random.borrow_mut().unit() < rate,
                Behaviour::Hangs => false,
            };
            async move {
                match behaviour {
                    Behaviour::Hangs => std::future::pending::<()>().await,
                    Behaviour::Noisy(_) => tokio::time::sleep(CALL_LATENCY).await,
                }
                if fails {
                    Err(std::io::Error::other("backend error"))
                } else {
                    Ok(())
                }
            }
        })
    };
    let service = ServiceBuilder::new()
        .layer(layer)
        .timeout(TIMEOUT)
        .service(backend);

    let tally = Rc::new(RefCell::new(Tally::default()));
    let interval = Duration::from_secs(1) / rate;
    let tasks = tokio::task::LocalSet::new();
    let mut next = Duration::ZERO;
    tasks
        .run_until(async {
            while next < end {
                tokio::time::sleep_until(start + next).await;
                let issued = next;
                let service = service.clone();
                let tally = Rc::clone(&tally);
                let breaker = breaker.clone();
                tokio::task::spawn_local(async move {
                    let result = service.oneshot(()).await;
                    let rejected = matches!(result, Err(ref error) if is_rejection(error));
                    let done = start.elapsed();
                    tally
                        .borrow_mut()
                        .note(scenario, issued, done, rejected, breaker.state());
                });
                next += interval;
            }
        })
        .await;
    // Let the calls still in flight finish (a hanging one times out).
    tasks.await;

    let tally = tally.borrow();
    let sick_from = scenario.sick_from();
    let sick_to = sick_from.map(|from| from + OUTAGE);
    let detection = tally.opened_at.zip(sick_from).map(|(at, from)| at - from);
    let calls_before_open = match (sick_from, tally.opened_at) {
        (Some(from), Some(opened)) => backend_calls.between(from, opened),
        (Some(from), None) => backend_calls.between(from, sick_to.unwrap_or(end)),
        (None, _) => 0,
    };
    let probe_load = tally.opened_at.zip(sick_to).map(|(opened, to)| {
        let calls = backend_calls.between(opened, to);
        calls as f64 / (to - opened).as_secs_f64()
    });
    let healed_from = scenario.healed_from();
    Cell {
        calls: tally.calls,
        rejected: tally.rejected,
        detection,
        calls_before_open,
        probe_load,
        recovery: tally
            .closed_after_healing_at
            .zip(healed_from)
            .map(|(at, from)| at - from),
        rejected_after_healing: tally.rejected_after_healing,
        calls_after_healing: tally.calls_after_healing,
        false_positive_rate: ratio(tally.rejected_while_normal, tally.calls_while_normal),
    }
}

/// The runtime [`run`] needs: current-thread, paused time, so that virtual time only
/// moves when every task waits, and the order of events is the same in every run.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime with paused time")
}

fn is_rejection(error: &Error<tower::BoxError>) -> bool {
    matches!(error, Error::Open(_))
}

fn behaviour_at(phases: &[(Behaviour, Duration)], at: Duration) -> Behaviour {
    let mut end = Duration::ZERO;
    for (behaviour, length) in phases {
        end += *length;
        if at < end {
            return *behaviour;
        }
    }
    phases
        .last()
        .map(|(behaviour, _)| *behaviour)
        .expect("a phase")
}

/// What the calls saw, noted as each call finishes.
#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    rejected: u64,
    calls_while_normal: u64,
    rejected_while_normal: u64,
    calls_after_healing: u64,
    rejected_after_healing: u64,
    /// When a call first found the breaker open after the backend turned sick.
    opened_at: Option<Duration>,
    /// When a call first found the breaker closed after the backend healed.
    closed_after_healing_at: Option<Duration>,
}

impl Tally {
    /// A call issued at `issued` finished at `done`, after which the breaker was in
    /// `state`. Transitions happen only as calls are admitted or finish, so the first
    /// call to see a new state notes the moment it was entered.
    fn note(
        &mut self,
        scenario: Scenario,
        issued: Duration,
        done: Duration,
        rejected: bool,
        state: State,
    ) {
        self.calls += 1;
        self.rejected += u64::from(rejected);
        let sick = scenario.sick_from().is_some_and(|from| issued >= from);
        let healed = scenario.healed_from().is_some_and(|from| issued >= from);
        if !sick {
            self.calls_while_normal += 1;
            self.rejected_while_normal += u64::from(rejected);
        }
        if healed {
            self.calls_after_healing += 1;
            self.rejected_after_healing += u64::from(rejected);
        }
        let sick_now = scenario.sick_from().is_some_and(|from| done >= from);
        if sick_now && self.opened_at.is_none() && state == State::Open {
            self.opened_at = Some(done.max(scenario.sick_from().unwrap_or_default()));
        }
        let healed_now = scenario.healed_from().is_some_and(|from| done >= from);
        if healed_now && self.closed_after_healing_at.is_none() && state == State::Closed {
            self.closed_after_healing_at = Some(done);
        }
    }
}

/// Backend calls per millisecond of the run, for counting them between two moments.
#[derive(Debug, Default)]
struct BackendCalls {
    per_ms: RefCell<Vec<u64>>,
}

impl BackendCalls {
    fn count(&self, at: Duration) {
        let ms = at.as_millis() as usize;
        let mut per_ms = self.per_ms.borrow_mut();
        if per_ms.len() <= ms {
            per_ms.resize(ms + 1, 0);
        }
        per_ms[ms] += 1;
    }

    /// Calls that reached the backend in `[from, to)`, at millisecond resolution.
    fn between(&self, from: Duration, to: Duration) -> u64 {
        let (from, to) = (from.as_millis() as usize, to.as_millis() as usize);
        self.per_ms.borrow().iter().take(to).skip(from).sum()
    }
}

/// A small seeded generator: the same backend failures in every run of a cell.
struct SplitMix64(u64);

impl SplitMix64 {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// `0.005` as `0.5 %`, `0.4` as `40 %`.
pub fn percent(share: f64) -> String {
    let value = share * 100.0;
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0} %")
    } else {
        format!("{value:.1} %")
    }
}

/// The configs the table compares: the crate's default rule, a fixed failure-rate rule
/// and the adaptive failure-rate rule, each with the crate's other defaults, and the
/// adaptive rule probing every [`PROBE_INTERVAL`] while open and ramping up over
/// [`RAMP_UP`] after a recovery.
pub fn rules() -> Vec<Rule> {
    vec![
        Rule {
            name: "default rule (5 consecutive failures)",
            config: Config::default(),
        },
        Rule {
            name: "rate rule (50 % of the last 100 calls)",
            config: Config::builder()
                .failure_rate(0.5)
                .build()
                .expect("a valid config"),
        },
        Rule {
            name: "adaptive rule (defaults, last 100 calls)",
            config: Config::builder()
                .failure_rate_adaptive(AdaptiveFailureRate::new())
                .build()
                .expect("a valid config"),
        },
        Rule {
            name: "adaptive rule, probing every 50 ms while open, 1 s ramp-up",
            config: Config::builder()
                .failure_rate_adaptive(AdaptiveFailureRate::new())
                .probe_interval(PROBE_INTERVAL)
                .ramp_up(RAMP_UP)
                .build()
                .expect("a valid config"),
        },
    ]
}
