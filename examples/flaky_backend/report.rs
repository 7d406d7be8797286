//! The flaky-backend report: per-phase statistics of each stack and the text tables.

use std::fmt::Write as _;
use std::time::Duration;

use tower_circuit_breaker::State;

use crate::driver::{Outcome, Phase, Record, Scenario, Schedule, TIMEOUT};

/// One scenario's run.
#[derive(Debug)]
pub struct Run {
    pub scenario: Scenario,
    pub records: Vec<Record>,
    /// Backend hits per phase.
    pub hits: [u64; 4],
}

/// The whole experiment: the same load through the three stacks, at the same time.
#[derive(Debug)]
pub struct Report {
    pub schedule: Schedule,
    pub rps: u32,
    pub runs: Vec<Run>,
    /// The breaker of stack (c): each state it entered, and when.
    pub transitions: Vec<(Duration, State)>,
}

/// What one stack saw during one phase.
#[derive(Debug, Clone, Copy, Default)]
pub struct PhaseStats {
    pub requests: usize,
    pub successes: usize,
    pub fast_fails: usize,
    pub timeouts: usize,
    pub errors: usize,
    pub mean: Duration,
    pub p99: Duration,
    pub backend_calls: u64,
}

impl PhaseStats {
    /// `count` as a percentage of the phase's requests.
    pub fn percent(&self, count: usize) -> f64 {
        100.0 * count as f64 / self.requests.max(1) as f64
    }
}

impl Report {
    pub fn run(&self, scenario: Scenario) -> &Run {
        &self.runs[scenario.index()]
    }

    /// The statistics of the requests `scenario` sent during `phase`.
    pub fn stats(&self, scenario: Scenario, phase: Phase) -> PhaseStats {
        let run = self.run(scenario);
        let mut latencies: Vec<Duration> = Vec::new();
        let mut stats = PhaseStats {
            backend_calls: run.hits[phase.index()],
            ..PhaseStats::default()
        };
        for record in &run.records {
            if self.schedule.phase_at(record.sent_at) != phase {
                continue;
            }
            latencies.push(record.latency);
            match record.outcome {
                Outcome::Success => stats.successes += 1,
                Outcome::FastFail => stats.fast_fails += 1,
                Outcome::Timeout => stats.timeouts += 1,
                Outcome::Error => stats.errors += 1,
            }
        }
        stats.requests = latencies.len();
        if !latencies.is_empty() {
            stats.mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
            latencies.sort_unstable();
            let rank = (latencies.len() * 99).div_ceil(100);
            stats.p99 = latencies[rank.max(1) - 1];
        }
        stats
    }

    /// The breaker transitions of stack (c) that happened during `phase`.
    pub fn transitions_in(
        &self,
        phase: Phase,
    ) -> impl Iterator<Item = (Duration, State, State)> + '_ {
        self.transitions
            .windows(2)
            .map(|pair| (pair[1].0, pair[0].1, pair[1].1))
            .filter(move |(at, _, _)| self.schedule.phase_at(*at) == phase)
    }

    /// The report as text tables, one per phase.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} requests/s through each stack for {:.1} s; per-attempt timeout {} ms (b, c); \
             `backend` = calls that reached the backend; breaker state sampled every 5 ms.",
            self.rps,
            self.schedule.total().as_secs_f64(),
            TIMEOUT.as_millis()
        );
        for phase in Phase::ALL {
            let from = self.schedule.phase_start(phase).as_secs_f64();
            let to = from + self.schedule.total().as_secs_f64() / 4.0;
            let _ = writeln!(
                out,
                "\n== {} ({from:.1} s - {to:.1} s): {} ==",
                phase.name(),
                phase.description()
            );
            let _ = writeln!(
                out,
                "{:<18} {:>8} {:>8} {:>9} {:>8} {:>7} {:>9} {:>9} {:>8}",
                "stack",
                "requests",
                "success",
                "fast-fail",
                "timeout",
                "error",
                "mean ms",
                "p99 ms",
                "backend"
            );
            for scenario in Scenario::ALL {
                let s = self.stats(scenario, phase);
                let _ = writeln!(
                    out,
                    "{:<18} {:>8} {:>7.1}% {:>8.1}% {:>7.1}% {:>6.1}% {:>9.1} {:>9.1} {:>8}",
                    scenario.label(),
                    s.requests,
                    s.percent(s.successes),
                    s.percent(s.fast_fails),
                    s.percent(s.timeouts),
                    s.percent(s.errors),
                    s.mean.as_secs_f64() * 1e3,
                    s.p99.as_secs_f64() * 1e3,
                    s.backend_calls
                );
            }
            let transitions: Vec<String> = self
                .transitions_in(phase)
                .map(|(at, from, to)| format!("{:.2} s {from} -> {to}", at.as_secs_f64()))
                .collect();
            if transitions.is_empty() {
                let _ = writeln!(out, "breaker (c): no transition");
            }
            // Wrap long transition lists at about 90 columns.
            for (i, line) in transitions.chunks(4).enumerate() {
                let prefix = if i == 0 {
                    "breaker (c): "
                } else {
                    "             "
                };
                let _ = writeln!(out, "{prefix}{}", line.join(", "));
            }
        }
        out
    }
}
