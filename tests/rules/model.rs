//! Property test: random sequences of calls, outcomes, drops, time advances and manual
//! controls, run against the breaker and against a small reference model written
//! straight from the documented semantics, compared after every step.
//!
//! The model is deliberately naive (a `VecDeque` window, plain fields, no atomics);
//! any disagreement with the lock-free implementation fails the test with the
//! shrunk sequence of steps.

use std::collections::VecDeque;
use std::time::Duration;

use proptest::prelude::*;
use tower_circuit_breaker::{
    AdaptiveFailureRate, Backoff, CircuitBreaker, Config, Outcome, Permit, State, Window,
};

const MS: u64 = 1_000_000;

/// The knobs a case runs with.
#[derive(Debug, Clone)]
struct Knobs {
    consecutive: Option<u32>,
    rate: Option<(f64, u32, u32)>, // threshold, window size, minimum calls
    /// With a rate rule: make it adaptive, its cap the rate's threshold.
    adaptive: Option<Adaptive>,
    open_ms: u64,
    /// The backoff: 0 linear, 1 constant, above 1 exponential by that factor.
    multiplier: u32,
    max_ms: u64,
    permits: u32,
    successes: u32,
    max_wait_ms: u64,
    /// The probe interval, shorter than the longest open period.
    probe_interval_ms: Option<u64>,
    /// How long a recovery ramps calls back up.
    ramp_ms: Option<u64>,
    /// With a growing backoff: how long the breaker must stay closed to forget trips.
    reset_after_ms: Option<u64>,
}

/// The adaptive rule's knobs; horizon and warm-up in windows.
#[derive(Debug, Clone, Copy)]
struct Adaptive {
    margin: f64,
    tolerance: f64,
    floor: f64,
    horizon_windows: u32,
    warm_up_windows: u32,
    streak_probability: f64,
}

impl Knobs {
    fn config(&self) -> Config {
        let mut builder = Config::builder()
            .name("model")
            .open_duration(Duration::from_millis(self.open_ms))
            .half_open_permits(self.permits)
            .half_open_successes(self.successes)
            .half_open_max_wait(Duration::from_millis(self.max_wait_ms));
        if let Some(interval) = self.probe_interval_ms {
            builder = builder.probe_interval(Duration::from_millis(interval));
        }
        if let Some(ramp) = self.ramp_ms {
            builder = builder.ramp_up(Duration::from_millis(ramp));
        }
        if self.multiplier != 1 {
            let max = Duration::from_millis(self.max_ms);
            let mut backoff = match self.multiplier {
                0 => Backoff::linear(max),
                factor => Backoff::exponential(f64::from(factor), max),
            };
            if let Some(after) = self.reset_after_ms {
                backoff = backoff.reset_after(Duration::from_millis(after));
            }
            builder = builder.open_backoff(backoff);
        }
        if let Some(n) = self.consecutive {
            builder = builder.consecutive_failures(n);
        }
        if let Some((rate, size, min)) = self.rate {
            builder = builder
                .sliding_window(Window::count(size))
                .minimum_calls(min);
            builder = match self.adaptive {
                None => builder.failure_rate(rate),
                Some(adaptive) => builder.failure_rate_adaptive(
                    AdaptiveFailureRate::new()
                        .margin(adaptive.margin)
                        .tolerance(adaptive.tolerance)
                        .floor(adaptive.floor)
                        .cap(rate)
                        .horizon(size * adaptive.horizon_windows)
                        .warm_up(size * adaptive.warm_up_windows)
                        .streak_probability(adaptive.streak_probability),
                ),
            };
        }
        builder.build().expect("generated configs are valid")
    }
}

fn knobs() -> impl Strategy<Value = Knobs> {
    (
        prop::option::of(1u32..5),
        prop::option::of((prop::sample::select(vec![0.25, 0.5, 1.0]), 1u32..8, 1u32..8)),
        1u64..50,
        0u32..4,
        0u64..200,
        1u32..4,
        1u32..4,
        1u64..100,
        prop::option::of((
            prop::sample::select(vec![0.05, 0.2, 0.5]),
            prop::sample::select(vec![0.0, 1.0, 4.0]),
            prop::sample::select(vec![0.1, 0.25]),
            1u32..4,
            1u32..4,
            prop::sample::select(vec![0.0, 1e-8, 0.01, 0.3]),
        )),
        prop::option::of(1u64..1_000),
        prop::option::of(1u64..60),
        prop::option::of(1u64..100),
    )
        .prop_map(
            |(
                consecutive,
                rate,
                open_ms,
                multiplier,
                extra_ms,
                permits,
                successes,
                max_wait_ms,
                adaptive,
                probe_interval,
                ramp_ms,
                reset_after,
            )| {
                // Shorter than the first open period (so it fires in it), hence than
                // the longest, as `build` requires.
                let max_ms = open_ms + extra_ms;
                let probe_interval_ms = probe_interval
                    .filter(|_| open_ms > 1)
                    .map(|p| 1 + p % (open_ms - 1));
                let rate = rate.map(|(r, size, min)| (r, size, min.min(size)));
                // At least one rule; `None` for both means the default streak of 5.
                Knobs {
                    consecutive: if consecutive.is_none() && rate.is_none() {
                        Some(5)
                    } else {
                        consecutive
                    },
                    rate,
                    adaptive: adaptive.map(
                        |(margin, tolerance, floor, horizon, warm_up, streak_probability)| {
                            Adaptive {
                                margin,
                                tolerance,
                                floor,
                                horizon_windows: horizon,
                                warm_up_windows: warm_up,
                                streak_probability,
                            }
                        },
                    ),
                    open_ms,
                    multiplier,
                    max_ms,
                    permits,
                    successes,
                    max_wait_ms,
                    probe_interval_ms,
                    ramp_ms,
                    reset_after_ms: reset_after.filter(|_| multiplier != 1),
                }
            },
        )
}

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Step {
    /// Ask for a permit and keep it.
    Acquire,
    /// Report the outcome of the held permit at this index (modulo their number).
    Finish(usize, Outcome),
    /// Drop the held permit at this index unreported.
    Drop(usize),
    /// Let time pass.
    Advance(u64),
    Reset,
    ForceOpen,
    ForceClosed,
    Disable,
    MetricsOnly,
}

fn step() -> impl Strategy<Value = Step> {
    let outcome = prop_oneof![
        3 => Just(Outcome::Failure),
        3 => Just(Outcome::Success),
        2 => Just(Outcome::Ignored),
    ];
    prop_oneof![
        8 => Just(Step::Acquire),
        8 => (any::<usize>(), outcome).prop_map(|(i, o)| Step::Finish(i, o)),
        2 => any::<usize>().prop_map(Step::Drop),
        4 => (0u64..80).prop_map(Step::Advance),
        1 => Just(Step::Reset),
        1 => Just(Step::ForceOpen),
        1 => Just(Step::ForceClosed),
        1 => Just(Step::Disable),
        1 => Just(Step::MetricsOnly),
    ]
}

/// Steps without manual controls and with short waits: calls that land inside open
/// periods, where a probe interval acts.
fn step_inside_open_periods() -> impl Strategy<Value = Step> {
    let outcome = prop_oneof![
        4 => Just(Outcome::Failure),
        3 => Just(Outcome::Success),
        1 => Just(Outcome::Ignored),
    ];
    prop_oneof![
        8 => Just(Step::Acquire),
        8 => (any::<usize>(), outcome).prop_map(|(i, o)| Step::Finish(i, o)),
        1 => any::<usize>().prop_map(Step::Drop),
        6 => (0u64..6).prop_map(Step::Advance),
    ]
}

/// Knobs with a probe interval, shorter than the first open period.
fn knobs_with_probe_interval() -> impl Strategy<Value = Knobs> {
    (knobs(), 1u64..1_000)
        .prop_filter(
            "an open period long enough to hold a probe interval",
            |(knobs, _)| knobs.open_ms > 2,
        )
        .prop_map(|(knobs, p)| Knobs {
            probe_interval_ms: Some(1 + p % (knobs.open_ms - 1)),
            ..knobs
        })
}

/// What a permit was admitted as, in the model.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Closed,
    Probe,
    MetricsOnly,
    Passthrough,
}

#[derive(Debug, Clone, Copy)]
struct ModelPermit {
    kind: Kind,
    generation: u64,
}

/// The documented semantics, written as plainly as possible.
#[derive(Debug)]
struct Model {
    knobs: Knobs,
    now: u64,
    state: State,
    generation: u64,
    streak: u32,
    window: VecDeque<bool>,
    /// Outcomes recorded in the window since it was last cleared.
    recorded: u64,
    /// The adaptive rule's average (as the breaker stores it, an `f32`) and the windows
    /// folded into it.
    baseline: (f32, u32),
    trips: u32,
    open_until: u64,
    in_flight: u32,
    probe_successes: u32,
    probe_progress_at: u64,
    /// The open duration a timeout of the current half-open period starts (the
    /// backoff's next one, fixed when the period began).
    timeout_open_for: u64,
    /// When the current state was entered.
    entered_at: u64,
    /// In a half-open period entered because the probe interval elapsed: the end of
    /// the open period it cut short; 0 otherwise.
    scout_until: u64,
    /// While ramping up after a recovery: when the ramp ends; 0 otherwise.
    ramp_until: u64,
    /// Calls offered since the ramp began.
    ramp_offered: u64,
    /// With `reset_after`: when the breaker last closed, while closed.
    closed_at: Option<u64>,
    rejected: u64,
    state_changes: u64,
    /// Metrics-only: whether the current would-be trip episode was counted already.
    would_trip_announced: bool,
    would_be_trips: u64,
}

/// What a pure read of the breaker reports.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Reading {
    state: State,
    probes_in_flight: u32,
    entered_at: u64,
    retry_after: Option<u64>,
}

impl Model {
    fn new(knobs: Knobs) -> Model {
        Model {
            knobs,
            now: 0,
            state: State::Closed,
            generation: 0,
            streak: 0,
            window: VecDeque::new(),
            recorded: 0,
            baseline: (0.0, 0),
            trips: 0,
            open_until: 0,
            in_flight: 0,
            probe_successes: 0,
            probe_progress_at: 0,
            timeout_open_for: 0,
            scout_until: 0,
            ramp_until: 0,
            ramp_offered: 0,
            closed_at: None,
            entered_at: 0,
            rejected: 0,
            state_changes: 0,
            would_trip_announced: false,
            would_be_trips: 0,
        }
    }

    /// The open duration of the next trip: the backoff's (no jitter here).
    fn next_open_for(&self) -> u64 {
        let base = self.knobs.open_ms * MS;
        let factor = match self.knobs.multiplier {
            0 => u64::from(self.trips) + 1,
            1 => return base,
            factor => u64::from(factor).saturating_pow(self.trips),
        };
        base.saturating_mul(factor).min(self.knobs.max_ms * MS)
    }

    fn enter(&mut self, to: State) {
        self.entered_at = self.now;
        match to {
            State::Open => {
                // Trips are forgotten once the breaker stayed closed `reset_after`.
                if let Some(closed_at) = self.closed_at.take() {
                    if self
                        .knobs
                        .reset_after_ms
                        .is_some_and(|after| self.now - closed_at >= after * MS)
                    {
                        self.trips = 0;
                    }
                }
                self.open_until = self.now + self.next_open_for();
                self.trips += 1;
            }
            State::Closed => {
                if self.knobs.reset_after_ms.is_some() {
                    self.closed_at = Some(self.now);
                } else {
                    self.trips = 0;
                }
                self.restart_rules();
                self.ramp_until = 0;
            }
            State::HalfOpen => {
                self.probe_progress_at = self.now;
                self.timeout_open_for = self.next_open_for();
            }
            _ => {}
        }
        self.transitioned(to);
    }

    /// Half-open gave up on its probes: open from now, for the duration fixed when
    /// half-open began.
    fn time_out(&mut self) {
        self.entered_at = self.now;
        if self.scout_until > self.now {
            // A hung scout returns to the period it cut short: no trip.
            self.open_until = self.scout_until;
            self.transitioned(State::Open);
            return;
        }
        self.open_until = self.now + self.timeout_open_for;
        self.trips += 1;
        self.transitioned(State::Open);
    }

    fn transitioned(&mut self, to: State) {
        self.would_trip_announced = false;
        self.state = to;
        self.generation += 1;
        self.in_flight = 0;
        self.probe_successes = 0;
        self.state_changes += 1;
    }

    fn restart_rules(&mut self) {
        self.streak = 0;
        self.window.clear();
        self.recorded = 0;
    }

    /// The adaptive rule's learned rate, once warmed up.
    fn baseline(&self) -> Option<f64> {
        let adaptive = self.knobs.adaptive.filter(|_| self.knobs.rate.is_some())?;
        let (average, windows) = self.baseline;
        // The warm-up is a whole number of windows here.
        (windows >= adaptive.warm_up_windows).then_some(f64::from(average))
    }

    /// The run of failures that opens: the fixed rule's, or the adaptive rule's shortest
    /// run rarer than its probability for a healthy backend (at least 3), the shorter.
    fn streak_limit(&self) -> Option<u32> {
        let adaptive = self.knobs.adaptive.and_then(|adaptive| {
            let baseline = self.baseline()?;
            if adaptive.streak_probability == 0.0 || baseline >= 1.0 {
                return None;
            }
            let run = (adaptive.streak_probability.ln() / baseline.ln()).ceil() as u32;
            Some(run.max(3))
        });
        match (self.knobs.consecutive, adaptive) {
            (Some(fixed), Some(adaptive)) => Some(fixed.min(adaptive)),
            (fixed, adaptive) => fixed.or(adaptive),
        }
    }

    /// The adaptive threshold for a window of `calls` calls, as documented.
    fn adaptive_threshold(&self, calls: u64) -> f64 {
        let (adaptive, (cap, _, _)) = self.knobs.adaptive.zip(self.knobs.rate).expect("adaptive");
        let Some(baseline) = self.baseline() else {
            return cap;
        };
        let spread = adaptive.tolerance * (baseline * (1.0 - baseline) / calls as f64).sqrt();
        (baseline + adaptive.margin.max(spread)).clamp(adaptive.floor, cap)
    }

    /// One full window's failure rate into the average: the mean of the windows so far,
    /// and from `horizon / size` windows on a moving average weighing `size / horizon`.
    fn fold(&mut self, window_rate: f64) {
        let (adaptive, (_, size, _)) = self.knobs.adaptive.zip(self.knobs.rate).expect("adaptive");
        let (average, windows) = self.baseline;
        let steady = f64::from(size) / f64::from(size * adaptive.horizon_windows);
        let weight = (1.0 / (f64::from(windows) + 1.0)).max(steady);
        let average = f64::from(average) + weight * (window_rate - f64::from(average));
        self.baseline = (average as f32, windows + 1);
    }

    /// `Ok(kind)` if admitted, `Err(retry_after)` if rejected.
    fn acquire(&mut self) -> Result<ModelPermit, Option<u64>> {
        loop {
            let kind = match self.state {
                State::Closed => {
                    if let Some(share) = self.ramp_share() {
                        self.ramp_offered += 1;
                        let k = self.ramp_offered as f64;
                        if (k * share).floor() <= ((k - 1.0) * share).floor() {
                            self.rejected += 1;
                            return Err(None);
                        }
                    }
                    Kind::Closed
                }
                State::MetricsOnly => Kind::MetricsOnly,
                State::ForcedClosed | State::Disabled => Kind::Passthrough,
                State::ForcedOpen => {
                    self.rejected += 1;
                    return Err(None);
                }
                State::Open => {
                    let due = self.probe_due();
                    if self.now < due {
                        self.rejected += 1;
                        return Err(Some(due - self.now));
                    }
                    // Early, by the probe interval: a scout period of one permit.
                    let scout = self.now < self.open_until;
                    self.enter(State::HalfOpen);
                    self.scout_until = if scout { self.open_until } else { 0 };
                    continue;
                }
                State::HalfOpen => {
                    // The deadline first, whatever the free permits.
                    let deadline = self.probe_deadline();
                    if self.now >= deadline {
                        self.time_out();
                        continue;
                    }
                    if self.in_flight < self.probe_permits() {
                        self.in_flight += 1;
                        Kind::Probe
                    } else {
                        self.rejected += 1;
                        return Err(Some(self.next_probe_permit_at(deadline) - self.now));
                    }
                }
            };
            return Ok(ModelPermit {
                kind,
                generation: self.generation,
            });
        }
    }

    /// The half-open permits now: the configured ones; in a scout period one, and one
    /// more per probe interval it has lasted, up to them.
    fn probe_permits(&self) -> u32 {
        match self
            .knobs
            .probe_interval_ms
            .filter(|_| self.scout_until != 0)
        {
            Some(interval) => {
                let intervals = (self.now - self.entered_at) / (interval * MS);
                (intervals as u32 + 1).min(self.knobs.permits)
            }
            None => self.knobs.permits,
        }
    }

    /// When a call turned away by taken permits may come back: a scout period's next
    /// interval if it brings a permit, at the latest the deadline.
    fn next_probe_permit_at(&self, deadline: u64) -> u64 {
        match self
            .knobs
            .probe_interval_ms
            .filter(|_| self.scout_until != 0)
        {
            Some(interval) if self.probe_permits() < self.knobs.permits => {
                let step = interval * MS;
                let next = self.entered_at + ((self.now - self.entered_at) / step + 1) * step;
                next.min(deadline)
            }
            _ => deadline,
        }
    }

    /// While ramping up: the share of calls admitted now, from 10 % linearly to all of
    /// them at the ramp's end (which ends the ramp).
    fn ramp_share(&self) -> Option<f64> {
        let ramp = self.knobs.ramp_ms? * MS;
        if self.state != State::Closed || self.ramp_until == 0 || self.now >= self.ramp_until {
            return None;
        }
        let elapsed = ramp.saturating_sub(self.ramp_until - self.now);
        Some((0.1 + 0.9 * (elapsed as f64 / ramp as f64)).min(1.0))
    }

    /// While open: when a call is next admitted as a probe, the end of the open period
    /// or a probe interval after the breaker (re)opened, whichever comes first.
    fn probe_due(&self) -> u64 {
        match self.knobs.probe_interval_ms {
            Some(interval) => self.open_until.min(self.entered_at + interval * MS),
            None => self.open_until,
        }
    }

    /// A probe failed: a scout period goes back to the open period it cut short, for
    /// what is left of it, and counts no trip; any other half-open period trips.
    fn reopen(&mut self) {
        if self.scout_until > self.now {
            self.entered_at = self.now;
            self.open_until = self.scout_until;
            self.transitioned(State::Open);
        } else {
            self.enter(State::Open);
        }
    }

    fn probe_deadline(&self) -> u64 {
        self.probe_progress_at + self.knobs.max_wait_ms * MS
    }

    /// The state as a pure read reports it, that is as the next call would find it: an
    /// open period that has ended reads half-open (ready to probe), since its end; a
    /// half-open period past its deadline reads open (the next call reopens it), since
    /// the deadline, with the open duration that call will start.
    fn read(&self) -> Reading {
        match self.state {
            State::Open if self.now < self.probe_due() => Reading {
                state: State::Open,
                probes_in_flight: 0,
                entered_at: self.entered_at,
                retry_after: Some(self.probe_due() - self.now),
            },
            State::Open => Reading {
                state: State::HalfOpen,
                probes_in_flight: 0,
                entered_at: self.probe_due(),
                retry_after: None,
            },
            State::HalfOpen if self.now >= self.probe_deadline() => Reading {
                state: State::Open,
                probes_in_flight: 0,
                entered_at: self.probe_deadline(),
                retry_after: Some({
                    // What the call that times it out starts: the rest of a scout's
                    // period or the backoff's next one; a probe interval comes sooner.
                    let reopen_for = if self.scout_until > self.now {
                        self.scout_until - self.now
                    } else {
                        self.timeout_open_for
                    };
                    match self.knobs.probe_interval_ms {
                        Some(interval) => reopen_for.min(interval * MS),
                        None => reopen_for,
                    }
                }),
            },
            _ => Reading {
                state: self.state,
                probes_in_flight: if self.state == State::HalfOpen {
                    self.in_flight
                } else {
                    0
                },
                entered_at: self.entered_at,
                retry_after: None,
            },
        }
    }

    fn finish(&mut self, permit: ModelPermit, outcome: Outcome) {
        if permit.generation != self.generation {
            return; // an earlier period: stale
        }
        match permit.kind {
            Kind::Passthrough => {}
            Kind::Closed | Kind::MetricsOnly => {
                if outcome == Outcome::Ignored {
                    return;
                }
                let failed = outcome == Outcome::Failure;
                let mut trip = false;
                if self.knobs.consecutive.is_some() || self.knobs.adaptive.is_some() {
                    self.streak = if failed { self.streak + 1 } else { 0 };
                    trip |= failed
                        && self
                            .streak_limit()
                            .is_some_and(|limit| self.streak >= limit);
                }
                if let Some((rate, size, min)) = self.knobs.rate {
                    self.window.push_back(failed);
                    if self.window.len() > size as usize {
                        self.window.pop_front();
                    }
                    let calls = self.window.len() as u32;
                    let failures = self.window.iter().filter(|f| **f).count() as f64;
                    let window_rate = failures / f64::from(calls);
                    if self.knobs.adaptive.is_none() {
                        trip |= calls >= min && window_rate >= rate;
                    } else {
                        trip |= calls >= min
                            && failures > 0.0
                            && window_rate >= self.adaptive_threshold(u64::from(calls));
                        // A window that fires a rule teaches the baseline nothing.
                        self.recorded += 1;
                        if self.recorded % u64::from(size) == 0 && !trip {
                            self.fold(window_rate);
                        }
                    }
                }
                if permit.kind == Kind::MetricsOnly {
                    // Counted once per episode of outcomes that fire a rule; an outcome
                    // that fires none ends the episode. The rules keep their memory.
                    if trip && !self.would_trip_announced {
                        self.would_be_trips += 1;
                    }
                    self.would_trip_announced = trip;
                } else if trip {
                    self.enter(State::Open);
                }
            }
            Kind::Probe => match outcome {
                Outcome::Failure => self.reopen(),
                Outcome::Ignored | Outcome::Success => {
                    self.probe_progress_at = self.now;
                    self.in_flight -= 1;
                    if outcome == Outcome::Success {
                        self.probe_successes += 1;
                        if self.probe_successes >= self.knobs.successes {
                            self.enter(State::Closed);
                            // A recovery ramps up.
                            if let Some(ramp) = self.knobs.ramp_ms {
                                self.ramp_until = self.now + ramp * MS;
                                self.ramp_offered = 0;
                            }
                        }
                    }
                }
            },
        }
    }

    fn force(&mut self, to: State, always: bool) {
        if self.state != to || always {
            self.enter(to);
            if to == State::Closed {
                // An operator's reset forgets the trips, `reset_after` or not.
                self.trips = 0;
                self.closed_at = None;
            }
        }
    }
}

/// Runs one scenario, returning a description of the first disagreement.
fn run(knobs: Knobs, steps: Vec<Step>) -> Result<(), String> {
    run_against(knobs.clone(), knobs, steps)
}

/// Runs the breaker configured by `real` against a model configured by `expected`.
fn run_against(real: Knobs, expected: Knobs, steps: Vec<Step>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    runtime.block_on(async move {
        let breaker = CircuitBreaker::new(real.config());
        let mut model = Model::new(expected);
        let mut held: Vec<(Permit, ModelPermit)> = Vec::new();
        for (n, step) in steps.iter().enumerate() {
            macro_rules! context {
                ($($what:tt)*) => {
                    format!("step {n} {step:?}: {}\nmodel: {model:?}", format!($($what)*))
                };
            }
            match step {
                Step::Acquire => match (breaker.try_acquire(), model.acquire()) {
                    (Ok(permit), Ok(expected)) => {
                        if permit.is_probe() != (expected.kind == Kind::Probe) {
                            return Err(context!(
                                "probe {} vs model {expected:?}",
                                permit.is_probe()
                            ));
                        }
                        held.push((permit, expected));
                    }
                    (Err(open), Err(retry)) => {
                        let got = open.retry_after.map(|d| d.as_nanos() as u64);
                        if got != retry {
                            return Err(context!("retry_after {got:?} vs model {retry:?}"));
                        }
                    }
                    (real, expected) => {
                        return Err(context!(
                            "admission {:?} vs model {expected:?}",
                            real.map(|p| p.is_probe())
                        ))
                    }
                },
                Step::Finish(i, outcome) if !held.is_empty() => {
                    let (permit, expected) = held.remove(i % held.len());
                    permit.record(*outcome);
                    model.finish(expected, *outcome);
                }
                Step::Drop(i) if !held.is_empty() => {
                    let (permit, expected) = held.remove(i % held.len());
                    drop(permit);
                    model.finish(expected, Outcome::Ignored);
                }
                Step::Finish(..) | Step::Drop(_) => {}
                Step::Advance(ms) => {
                    tokio::time::advance(Duration::from_millis(*ms)).await;
                    model.now += ms * MS;
                }
                Step::Reset => {
                    breaker.reset();
                    model.force(State::Closed, true);
                }
                Step::ForceOpen => {
                    breaker.force_open();
                    model.force(State::ForcedOpen, false);
                }
                Step::ForceClosed => {
                    breaker.force_closed();
                    model.force(State::ForcedClosed, false);
                }
                Step::Disable => {
                    breaker.disable();
                    model.force(State::Disabled, false);
                }
                Step::MetricsOnly => {
                    breaker.metrics_only();
                    model.force(State::MetricsOnly, false);
                }
            }
            let metrics = breaker.metrics();
            let observed = (
                Reading {
                    state: metrics.state,
                    probes_in_flight: metrics.probes_in_flight,
                    entered_at: model.now - metrics.time_in_state.as_nanos() as u64,
                    retry_after: metrics.retry_after.map(|d| d.as_nanos() as u64),
                },
                metrics.consecutive_failures,
                metrics.rejected,
                metrics.state_changes,
                metrics.would_be_trips,
            );
            let streak = if model.knobs.consecutive.is_some() || model.knobs.adaptive.is_some() {
                model.streak
            } else {
                0
            };
            // A pure read reports time-driven transitions as due before any call makes
            // them (see `Model::read`).
            let expected = (
                model.read(),
                streak,
                model.rejected,
                model.state_changes,
                model.would_be_trips,
            );
            if observed != expected {
                return Err(context!(
                    "(reading, streak, rejected, changes, would-be trips) {observed:?} vs model {expected:?}"
                ));
            }
            if breaker.state() != expected.0.state {
                return Err(context!(
                    "state() {:?} vs metrics().state {:?}",
                    breaker.state(),
                    expected.0.state
                ));
            }
            if model.knobs.rate.is_some() && matches!(model.state, State::Closed | State::MetricsOnly)
            {
                // The window's rates, those that fired included (metrics-only keeps them).
                let calls = model.window.len() as u64;
                let failures = model.window.iter().filter(|f| **f).count() as u64;
                let rate = if calls == 0 {
                    0.0
                } else {
                    failures as f64 / calls as f64
                };
                if metrics.ramp_up_share != model.ramp_share() {
                    return Err(context!(
                        "ramp-up share {:?} vs model {:?}",
                        metrics.ramp_up_share,
                        model.ramp_share()
                    ));
                }
                if metrics.failure_rate_baseline != model.baseline() {
                    return Err(context!(
                        "adaptive baseline {:?} vs model {:?}",
                        metrics.failure_rate_baseline,
                        model.baseline()
                    ));
                }
                if (metrics.window_calls, metrics.failure_rate) != (calls, rate) {
                    return Err(context!(
                        "window (calls, failure rate) {:?} vs model {:?}",
                        (metrics.window_calls, metrics.failure_rate),
                        (calls, rate)
                    ));
                }
            }
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_reference_model(
        knobs in knobs(),
        steps in prop::collection::vec(step(), 1..120),
    ) {
        if let Err(disagreement) = run(knobs, steps) {
            prop_assert!(false, "{}", disagreement);
        }
    }

    #[test]
    fn breaker_matches_the_reference_model_with_a_probe_interval(
        knobs in knobs_with_probe_interval(),
        steps in prop::collection::vec(step_inside_open_periods(), 1..120),
    ) {
        if let Err(disagreement) = run(knobs, steps) {
            prop_assert!(false, "{}", disagreement);
        }
    }
}

/// The harness does catch a disagreement: a model with a different rule than the
/// breaker must fail, so the property above cannot pass vacuously.
#[test]
fn the_harness_reports_a_disagreement() {
    let knobs = Knobs {
        consecutive: Some(2),
        rate: None,
        adaptive: None,
        open_ms: 10,
        multiplier: 1,
        max_ms: 10,
        permits: 1,
        successes: 1,
        max_wait_ms: 10,
        probe_interval_ms: None,
        ramp_ms: None,
        reset_after_ms: None,
    };
    let steps = vec![
        Step::Acquire,
        Step::Finish(0, Outcome::Failure),
        Step::Acquire,
        Step::Finish(0, Outcome::Failure),
        Step::Acquire,
    ];
    assert_eq!(run(knobs.clone(), steps.clone()), Ok(()));
    let wrong = Knobs {
        consecutive: Some(3),
        ..knobs.clone()
    };
    let error = run_against(knobs, wrong, steps).unwrap_err();
    assert!(error.contains("step 3"), "{error}");
}
