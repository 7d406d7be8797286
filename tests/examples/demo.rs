//! The flaky-backend demo run as a process (`cargo run --example flaky_backend --
//! --json ...`), its JSON output read back into the shapes the tests assert on: each
//! stack's statistics per phase as the demo computed them, the breaker's transitions,
//! every request, and the tables as printed.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use tower_circuit_breaker::State;

use crate::support::example;

/// A demo run that has not ended by then is stuck.
const LIMIT: Duration = Duration::from_secs(120);

/// The backend's phases, as the demo names them in its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
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
}

/// The three client stacks, as the demo names them in its JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Scenario {
    NoProtection,
    TimeoutOnly,
    FullStack,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Scenario::NoProtection,
        Scenario::TimeoutOnly,
        Scenario::FullStack,
    ];
}

/// How a request ended, as the caller saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Outcome {
    Success,
    FastFail,
    Timeout,
    Error,
}

/// What one stack saw during one phase.
#[derive(Debug, Clone, Copy)]
pub struct PhaseStats {
    pub requests: usize,
    pub successes: usize,
    pub fast_fails: usize,
    pub timeouts: usize,
    pub errors: usize,
    pub mean: Duration,
    pub backend_calls: u64,
}

/// One request as the caller saw it.
#[derive(Debug, Clone, Copy)]
pub struct Record {
    pub sent_at: Duration,
    pub outcome: Outcome,
}

/// One stack's requests.
#[derive(Debug)]
pub struct Run {
    pub records: Vec<Record>,
}

/// The demo's settings, as it parsed its flags.
#[derive(Debug)]
pub struct Settings {
    pub duration: Duration,
    pub rps: u32,
    pub seed: u64,
    pub svg: Option<String>,
}

/// One demo run.
#[derive(Debug)]
pub struct Report {
    pub settings: Settings,
    /// The HTTP backend's address (none in paused runs).
    pub backend: Option<SocketAddr>,
    /// The breaker of stack (c): each state it entered, and when.
    pub transitions: Vec<(Duration, State)>,
    text: String,
    stats: HashMap<(Scenario, Phase), PhaseStats>,
    transitions_by_phase: Vec<(Duration, Phase, State, State)>,
    runs: HashMap<Scenario, Run>,
    phase_names: HashMap<Phase, String>,
    scenario_labels: HashMap<Scenario, String>,
}

impl Report {
    /// The statistics of the requests `scenario` sent during `phase`.
    pub fn stats(&self, scenario: Scenario, phase: Phase) -> PhaseStats {
        self.stats[&(scenario, phase)]
    }

    /// The breaker transitions of stack (c) that happened during `phase`.
    pub fn transitions_in(
        &self,
        phase: Phase,
    ) -> impl Iterator<Item = (Duration, State, State)> + '_ {
        self.transitions_by_phase
            .iter()
            .filter(move |t| t.1 == phase)
            .map(|&(at, _, from, to)| (at, from, to))
    }

    pub fn run(&self, scenario: Scenario) -> &Run {
        &self.runs[&scenario]
    }

    /// The report as the demo prints it: text tables, one per phase.
    pub fn render(&self) -> String {
        self.text.clone()
    }

    /// The phase's name in the tables.
    pub fn phase_name(&self, phase: Phase) -> &str {
        &self.phase_names[&phase]
    }

    /// The stack's label in the tables.
    pub fn scenario_label(&self, scenario: Scenario) -> &str {
        &self.scenario_labels[&scenario]
    }
}

/// Runs the demo with `--json` and `args` to its end.
pub fn run(args: &[&str]) -> Report {
    let mut all = vec!["--json"];
    all.extend_from_slice(args);
    let output = example::run("flaky_backend", &all, LIMIT);
    assert!(
        output.status.success(),
        "flaky_backend {all:?}: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    parse(&output.stdout)
}

/// Runs the demo with `args` (`--paused --json` first) to its end: its settings, or the
/// problem with its flags as it reported it (empty for `--help`).
pub fn parse_flags(args: &[&str]) -> Result<Settings, String> {
    let mut all = vec!["--paused", "--json"];
    all.extend_from_slice(args);
    let output = example::run("flaky_backend", &all, LIMIT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    match output.status.code() {
        Some(0) if output.stdout.is_empty() => Err(String::new()), // --help: usage only
        Some(0) => Ok(parse(&output.stdout).settings),
        Some(2) => Err(stderr
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("error: "))
            .unwrap_or_else(|| panic!("no error line in {stderr}"))
            .to_owned()),
        _ => panic!("flaky_backend {all:?}: {}\n{stderr}", output.status),
    }
}

/// The demo's usage text (`--help`).
pub fn usage() -> String {
    let output = example::run("flaky_backend", &["--help"], LIMIT);
    assert!(output.status.success(), "{}", output.status);
    String::from_utf8(output.stderr).expect("UTF-8")
}

fn state(name: &str) -> State {
    State::ALL
        .into_iter()
        .find(|state| state.as_str() == name)
        .unwrap_or_else(|| panic!("not a state: {name}"))
}

#[derive(Deserialize)]
struct Json {
    settings: JsonSettings,
    backend: Option<SocketAddr>,
    phases: Vec<JsonPhase>,
    scenarios: Vec<JsonScenario>,
    report: String,
    stats: Vec<JsonStats>,
    transitions: Vec<JsonTransition>,
    states: Vec<JsonState>,
    runs: Vec<JsonRun>,
}

#[derive(Deserialize)]
struct JsonSettings {
    duration_ns: u64,
    rps: u32,
    seed: u64,
    svg: Option<String>,
}

#[derive(Deserialize)]
struct JsonPhase {
    phase: Phase,
    name: String,
}

#[derive(Deserialize)]
struct JsonScenario {
    scenario: Scenario,
    label: String,
}

#[derive(Deserialize)]
struct JsonStats {
    scenario: Scenario,
    phase: Phase,
    requests: usize,
    successes: usize,
    fast_fails: usize,
    timeouts: usize,
    errors: usize,
    mean_ns: u64,
    backend_calls: u64,
}

#[derive(Deserialize)]
struct JsonTransition {
    at_ns: u64,
    phase: Phase,
    from: String,
    to: String,
}

#[derive(Deserialize)]
struct JsonState {
    at_ns: u64,
    state: String,
}

#[derive(Deserialize)]
struct JsonRun {
    scenario: Scenario,
    /// `[sent_at_ns, latency_ns, outcome]` per request.
    records: Vec<(u64, u64, Outcome)>,
}

/// Reads the demo's `--json` output.
pub fn parse(stdout: &[u8]) -> Report {
    let json: Json = serde_json::from_slice(stdout).unwrap_or_else(|e| {
        panic!(
            "not the demo's JSON ({e}): {}",
            String::from_utf8_lossy(stdout)
        )
    });
    let nanos = Duration::from_nanos;
    Report {
        settings: Settings {
            duration: nanos(json.settings.duration_ns),
            rps: json.settings.rps,
            seed: json.settings.seed,
            svg: json.settings.svg,
        },
        backend: json.backend,
        transitions: json
            .states
            .iter()
            .map(|s| (nanos(s.at_ns), state(&s.state)))
            .collect(),
        text: json.report,
        stats: json
            .stats
            .into_iter()
            .map(|s| {
                let stats = PhaseStats {
                    requests: s.requests,
                    successes: s.successes,
                    fast_fails: s.fast_fails,
                    timeouts: s.timeouts,
                    errors: s.errors,
                    mean: nanos(s.mean_ns),
                    backend_calls: s.backend_calls,
                };
                ((s.scenario, s.phase), stats)
            })
            .collect(),
        transitions_by_phase: json
            .transitions
            .iter()
            .map(|t| (nanos(t.at_ns), t.phase, state(&t.from), state(&t.to)))
            .collect(),
        runs: json
            .runs
            .into_iter()
            .map(|run| {
                let records = run
                    .records
                    .into_iter()
                    .map(|(sent_at, _latency, outcome)| Record {
                        sent_at: nanos(sent_at),
                        outcome,
                    })
                    .collect();
                (run.scenario, Run { records })
            })
            .collect(),
        phase_names: json.phases.into_iter().map(|p| (p.phase, p.name)).collect(),
        scenario_labels: json
            .scenarios
            .into_iter()
            .map(|s| (s.scenario, s.label))
            .collect(),
    }
}
