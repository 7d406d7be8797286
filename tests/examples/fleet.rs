//! The fleet example (`cargo run --example fleet --features redis`) pointed at an
//! address that accepts connections and never answers (a listener nobody accepts on:
//! the kernel completes the handshake, no reply ever comes). It must not wait forever
//! before its shared phase: it says that Redis did not answer, and the instances' calls
//! flow on their local state. Runs on a machine without Redis: the listener stands in.
#![cfg(feature = "redis")]

use std::time::{Duration, Instant};

use crate::support::example;

#[test]
fn a_redis_that_never_answers_is_reported_and_calls_keep_flowing() {
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("redis://{}/", black_hole.local_addr().unwrap());
    let started = Instant::now();
    let output = example::run_with_env(
        "fleet",
        &[],
        &[("REDIS_URL", &url)],
        Duration::from_secs(60),
    );
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains(&format!("Redis at {url} did not answer within 2 s")),
        "{stdout}"
    );
    // The phase ran on local state: the breakers tripped and rejected calls fast.
    let line = stdout
        .lines()
        .find(|line| line.starts_with("Redis unreachable:"))
        .unwrap_or_else(|| panic!("no report of the unshared phase in\n{stdout}"));
    let rejected: u64 = line
        .split(',')
        .nth(1)
        .and_then(|part| part.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no rejection count in {line:?}"));
    assert!(rejected > 100, "{line}");
    // Two phases of 3.3 s and the 2 s wait, not forever.
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
}
