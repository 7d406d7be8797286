//! The balanced-endpoints example (`cargo run --example balanced --features http`): a
//! short real run (phases of 300 ms, four axum servers on 127.0.0.1), checked with
//! generous bounds (real time on a shared machine is noisy; the exact properties are
//! checked by `tests/http/balanced.rs` and, in paused time, `tests/rules/balance.rs`).
#![cfg(feature = "http")]

use std::time::Duration;

use crate::support::example;

/// One row of the example's table: calls, failed, fast-failed.
fn row(text: &str, phase: &str, breakers: &str) -> (usize, usize, usize) {
    let line = text
        .lines()
        .find(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            cells.len() == 7 && cells[0] == phase && cells[1] == breakers
        })
        .unwrap_or_else(|| panic!("no row {phase:?} / {breakers:?} in\n{text}"));
    let cells: Vec<usize> = line
        .split('|')
        .skip(2)
        .take(3)
        .map(|cell| cell.trim().parse().unwrap())
        .collect();
    (cells[0], cells[1], cells[2])
}

#[test]
fn the_breakers_cut_the_failures_and_fail_fast_when_every_replica_is_sick() {
    let output = example::run("balanced", &["--phase-ms", "300"], Duration::from_secs(60));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );

    let (_, without_failed, without_fast) = row(&text, "one replica sick", "without");
    let (_, with_failed, _) = row(&text, "one replica sick", "per replica");
    assert_eq!(without_fast, 0, "{text}");
    assert!(with_failed < without_failed, "{text}");

    // A call counts in the phase it started in: one in flight per caller (8) when the
    // replicas heal may still meet them healed.
    let (calls, failed, fast) = row(&text, "all replicas sick", "without");
    assert_eq!(fast, 0, "{text}");
    assert!(failed + 8 >= calls, "{text}");
    let (_, failed, fast) = row(&text, "all replicas sick", "per replica");
    assert!(fast > failed, "{text}");

    let (calls, failed, _) = row(&text, "all healed", "without");
    assert!(calls > 0 && failed == 0, "{text}");
    let (calls, failed, _) = row(&text, "all healed", "per replica");
    assert!(calls > 0 && failed == 0, "{text}");
}

#[test]
fn a_bad_phase_length_is_named() {
    let output = example::run("balanced", &["--phase-ms", "soon"], Duration::from_secs(30));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"--phase-ms "soon""#), "{stderr}");
}
