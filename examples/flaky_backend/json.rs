//! The demo's results as one JSON object (`--json`), for scripts and for the tests
//! (tests/examples/flaky_backend.rs): the settings, the rendered tables, each stack's
//! statistics per phase, the breaker's transitions, and every request.
//!
//! Durations are whole nanoseconds; scenarios, phases and outcomes are named as in
//! `driver.rs` (`NoProtection`, `Outage`, `FastFail`, ...); states as `State` displays
//! them (`closed`, `half_open`, ...).

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::Args;
use crate::driver::{Phase, Scenario};
use crate::report::Report;

fn nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `report` of a run with `args`; `backend` is the HTTP backend's address (none when
/// `--paused`).
pub fn render(args: &Args, backend: Option<SocketAddr>, report: &Report) -> String {
    let mut stats = Vec::new();
    for scenario in Scenario::ALL {
        for phase in Phase::ALL {
            let s = report.stats(scenario, phase);
            stats.push(json!({
                "scenario": format!("{scenario:?}"),
                "phase": format!("{phase:?}"),
                "requests": s.requests,
                "successes": s.successes,
                "fast_fails": s.fast_fails,
                "timeouts": s.timeouts,
                "errors": s.errors,
                "mean_ns": nanos(s.mean),
                "p99_ns": nanos(s.p99),
                "backend_calls": s.backend_calls,
            }));
        }
    }
    let transitions: Vec<Value> = Phase::ALL
        .into_iter()
        .flat_map(|phase| {
            report.transitions_in(phase).map(move |(at, from, to)| {
                json!({
                    "at_ns": nanos(at),
                    "phase": format!("{phase:?}"),
                    "from": from.to_string(),
                    "to": to.to_string(),
                })
            })
        })
        .collect();
    let states: Vec<Value> = report
        .transitions
        .iter()
        .map(|(at, state)| json!({ "at_ns": nanos(*at), "state": state.to_string() }))
        .collect();
    let runs: Vec<Value> = report
        .runs
        .iter()
        .map(|run| {
            let records: Vec<Value> = run
                .records
                .iter()
                .map(|r| {
                    json!([
                        nanos(r.sent_at),
                        nanos(r.latency),
                        format!("{:?}", r.outcome)
                    ])
                })
                .collect();
            json!({ "scenario": format!("{:?}", run.scenario), "records": records })
        })
        .collect();
    let value = json!({
        "settings": {
            "duration_ns": nanos(args.duration),
            "rps": args.rps,
            "seed": args.seed,
            "svg": args.svg,
            "paused": args.paused,
        },
        "backend": backend.map(|addr| addr.to_string()),
        "phases": Phase::ALL.map(|phase| json!({ "phase": format!("{phase:?}"), "name": phase.name() })),
        "scenarios": Scenario::ALL.map(|scenario| json!({ "scenario": format!("{scenario:?}"), "label": scenario.label() })),
        "report": report.render(),
        "stats": stats,
        "transitions": transitions,
        "states": states,
        "runs": runs,
    });
    value.to_string()
}
