//! The flaky-backend demo's acceptance properties, on a shortened run in paused Tokio
//! time: the demo itself (`cargo run --release --example flaky_backend`), run with
//! `--paused` so that its backend is simulated in-process instead of served over HTTP,
//! and `--json` so that the test reads its results.

use std::time::Duration;

use tower_circuit_breaker::State;

use crate::demo::{self, Outcome, Phase, Report, Scenario};

/// 8 s at 100 requests/s per stack, the backend simulated on a paused clock.
fn shortened_run(seed: u64) -> Report {
    demo::run(&["--paused", "--duration", "8", "--seed", &seed.to_string()])
}

#[test]
fn during_the_outage_the_full_stack_has_no_timeouts_and_is_5x_faster() {
    for seed in 1..=5 {
        let report = shortened_run(seed);
        let unprotected = report.stats(Scenario::NoProtection, Phase::Outage);
        let timeout_only = report.stats(Scenario::TimeoutOnly, Phase::Outage);
        let full = report.stats(Scenario::FullStack, Phase::Outage);
        let text = report.render();

        assert_eq!(full.requests, 200, "{text}");
        assert_eq!(
            full.timeouts, 0,
            "seed {seed}: full stack timed out\n{text}"
        );
        assert!(
            unprotected.mean >= full.mean * 5,
            "seed {seed}: (a) {:?} vs (c) {:?}\n{text}",
            unprotected.mean,
            full.mean
        );
        // The comparison stacks really suffered: (a) waits out every hang, (b) times out.
        assert!(unprotected.mean >= Duration::from_millis(500), "{text}");
        assert_eq!(unprotected.errors, unprotected.requests, "{text}");
        assert_eq!(timeout_only.timeouts, timeout_only.requests, "{text}");
        // The breaker spared the backend most of the outage's calls.
        assert!(full.backend_calls * 4 < unprotected.backend_calls, "{text}");
        assert!(full.fast_fails > full.requests / 2, "{text}");
    }
}

#[test]
fn the_breaker_opens_in_the_outage_and_closes_in_the_recovery() {
    let report = shortened_run(1);
    let opened: Vec<_> = report
        .transitions_in(Phase::Outage)
        .filter(|(_, from, to)| *from == State::Closed && *to == State::Open)
        .collect();
    assert_eq!(opened.len(), 1, "{}", report.render());
    let closed = report
        .transitions_in(Phase::Recovery)
        .filter(|(_, _, to)| *to == State::Closed)
        .count();
    assert_eq!(closed, 1, "{}", report.render());
    assert_eq!(report.transitions.last().map(|t| t.1), Some(State::Closed));
    for phase in [Phase::Healthy, Phase::Errors] {
        assert_eq!(
            report.transitions_in(phase).count(),
            0,
            "{}",
            report.render()
        );
    }

    // Healthy: every stack succeeds. Errors: the retries of (c) hide most failures.
    for scenario in Scenario::ALL {
        let healthy = report.stats(scenario, Phase::Healthy);
        assert_eq!(healthy.successes, healthy.requests, "{}", report.render());
    }
    let errors_a = report.stats(Scenario::NoProtection, Phase::Errors);
    let errors_c = report.stats(Scenario::FullStack, Phase::Errors);
    assert!(
        errors_a.successes < errors_a.requests * 85 / 100,
        "{}",
        report.render()
    );
    assert!(
        errors_c.successes > errors_c.requests * 9 / 10,
        "{}",
        report.render()
    );

    // Recovery: the full stack is back to (nearly) all successes by the end of the run.
    let late: Vec<_> = report
        .run(Scenario::FullStack)
        .records
        .iter()
        .filter(|r| r.sent_at >= Duration::from_secs(7))
        .collect();
    assert!(!late.is_empty());
    assert!(
        late.iter().all(|r| r.outcome == Outcome::Success),
        "{}",
        report.render()
    );
}

/// The breaker probes every 50 ms while open (`probe_interval`), so a healed backend is
/// back within a few calls: under 5 % of the recovery phase fails fast, even when that
/// phase is only 2 s long.
#[test]
fn the_recovery_phase_fails_fast_under_five_percent() {
    for seed in 1..=5 {
        let report = shortened_run(seed);
        let recovery = report.stats(Scenario::FullStack, Phase::Recovery);
        assert_eq!(recovery.requests, 200, "{}", report.render());
        assert!(
            recovery.fast_fails * 20 < recovery.requests,
            "seed {seed}: {} of {} fast-failed\n{}",
            recovery.fast_fails,
            recovery.requests,
            report.render()
        );
    }
}

#[test]
fn the_report_has_a_table_per_phase() {
    let report = shortened_run(1);
    let text = report.render();
    for phase in Phase::ALL {
        assert!(
            text.contains(&format!("== {} (", report.phase_name(phase))),
            "{text}"
        );
    }
    for scenario in Scenario::ALL {
        assert_eq!(
            text.matches(report.scenario_label(scenario)).count(),
            4,
            "{text}"
        );
    }
    assert!(text.contains("closed -> open"), "{text}");
}

/// The demo's flags as it parses them: each call runs it (`--paused --json` first, so a
/// run takes no time and reports its settings).
fn parse(args: &[&str]) -> Result<demo::Settings, String> {
    demo::parse_flags(args)
}

#[test]
fn the_demo_flags_parse_and_bad_values_are_named() {
    let defaults = parse(&[]).unwrap();
    assert_eq!(
        (defaults.duration, defaults.rps, defaults.seed),
        (Duration::from_secs(24), 100, 1)
    );
    assert!(defaults.svg.is_none());
    // A chart file the run really writes, so not in the working directory.
    let svg = std::env::temp_dir().join(format!("flaky_backend-{}.svg", std::process::id()));
    let svg = svg.to_str().expect("a UTF-8 temp path");
    let set = parse(&[
        "--duration",
        "8",
        "--rps",
        "50",
        "--seed",
        "9",
        "--svg",
        svg,
    ])
    .unwrap();
    let _ = std::fs::remove_file(svg);
    assert_eq!(
        (set.duration, set.rps, set.seed, set.svg.as_deref()),
        (Duration::from_secs(8), 50, 9, Some(svg))
    );

    assert_eq!(parse(&["--help"]).unwrap_err(), "");
    let too_long = parse(&["--duration", "90"]).unwrap_err();
    assert_eq!(
        too_long,
        "invalid `--duration` = \"90\": must be between 4 and 55 seconds"
    );
    assert!(parse(&["--rps", "0"])
        .unwrap_err()
        .contains("`--rps` = \"0\""));
    assert!(parse(&["--rps", "fast"])
        .unwrap_err()
        .contains("not a whole number"));
    assert!(parse(&["--seed", "-1"]).unwrap_err().contains("`--seed`"));
    assert!(parse(&["--duration", "NaN"])
        .unwrap_err()
        .contains("`--duration`"));
    assert_eq!(parse(&["--rps"]).unwrap_err(), "`--rps` needs a value");
    assert_eq!(parse(&["--fast"]).unwrap_err(), "unknown flag `--fast`");
    let usage = demo::usage();
    for flag in ["--duration", "--rps", "--seed", "--svg"] {
        assert!(usage.contains(flag), "usage lists {flag}");
    }
}
