//! The seed's targets table (`examples/targets.rs`): its key cells, computed in-process
//! by the example's own harness in paused Tokio time, so they are exact.

use std::time::Duration;

#[path = "../../examples/targets/harness.rs"]
#[allow(dead_code)]
mod harness;

use harness::{Cell, Rule, Scenario};

const SEED: u64 = 1;

fn rule(prefix: &str) -> Rule {
    harness::rules()
        .into_iter()
        .find(|rule| rule.name.starts_with(prefix))
        .expect("a rule of the table")
}

fn cell(rule: &Rule, scenario: Scenario, rate: u32) -> Cell {
    harness::runtime().block_on(harness::run(rule, scenario, rate, SEED))
}

const FIFTY_MS: Duration = Duration::from_millis(50);

#[test]
fn adaptive_rule_keeps_false_positives_below_five_percent_at_every_noise_level() {
    let adaptive = rule("adaptive");
    for noise in harness::NOISE_LEVELS {
        for rate in [100, 1_000] {
            let cell = cell(&adaptive, Scenario::Healthy { noise }, rate);
            assert!(
                cell.false_positive_rate < 0.05,
                "noise {noise} at {rate}/s: {} rejected of {}",
                cell.rejected,
                cell.calls
            );
        }
    }
}

#[test]
fn adaptive_rule_detects_outages_within_fifty_ms_from_100_calls_per_second() {
    let adaptive = rule("adaptive");
    for scenario in [
        Scenario::HardOutage,
        Scenario::PartialOutage { errors: 0.4 },
    ] {
        for rate in [100, 1_000] {
            let cell = cell(&adaptive, scenario, rate);
            let detection = cell.detection.expect("detected");
            let bound = match (scenario, rate) {
                (Scenario::HardOutage, _) | (_, 1_000) => FIFTY_MS,
                // 40 % errors over a 0.5 % baseline: about 11 failures, 28 calls.
                _ => Duration::from_millis(300),
            };
            assert!(detection < bound, "{scenario:?} at {rate}/s: {detection:?}");
        }
    }
}

#[test]
fn fixed_rules_as_the_table_reports_them() {
    let default = rule("default");
    let rate_rule = rule("rate");
    // Five consecutive failures at 100 calls/s: the fifth failing call, 40 ms in.
    let hard = cell(&default, Scenario::HardOutage, 100);
    assert_eq!(hard.detection, Some(Duration::from_millis(41)));
    assert_eq!(hard.calls_before_open, 5);
    // A fixed 50 % rule sees a 40 % partial outage only when chance pushes a window to
    // 50 %: after a second at 1 000 calls/s (the adaptive rule: under 50 ms).
    let partial = cell(&rate_rule, Scenario::PartialOutage { errors: 0.4 }, 1_000);
    assert!(partial.detection.expect("by chance") > Duration::from_secs(1));
    let partial = cell(&rate_rule, Scenario::PartialOutage { errors: 0.4 }, 10);
    assert_eq!(partial.detection, None);
    // Five failures in a row come up on a backend failing 20 % of calls.
    let noisy = cell(&default, Scenario::Healthy { noise: 0.2 }, 1_000);
    assert!(noisy.false_positive_rate > 0.05, "{noisy:?}");
}

#[test]
fn probing_every_fifty_ms_recovers_within_a_hundred_ms_from_100_calls_per_second() {
    let probing = rule("adaptive rule, probing");
    for rate in [100, 1_000] {
        let cell = cell(&probing, Scenario::Recovery, rate);
        let recovery = cell.recovery.expect("closed after healing");
        assert!(
            recovery < Duration::from_millis(100),
            "{rate}/s: {recovery:?}"
        );
        let fast_failed = cell.fast_fail_after_healing().unwrap();
        assert!(fast_failed < 0.05, "{rate}/s: {fast_failed}");
        // One probe per 50 ms at most reaches the dead backend while open.
        let load = cell.probe_load.expect("opened");
        assert!(load > 0.0 && load <= 20.0, "{rate}/s: {load} calls/s");
    }
    // Without it, recovery waits out the open duration.
    let fixed = cell(&rule("adaptive rule (defaults"), Scenario::Recovery, 100);
    assert!(fixed.recovery.expect("closed") > Duration::from_secs(5));
}
