//! The flaky-backend demo over real HTTP on 127.0.0.1: a short run (4 s of wall time,
//! the shortest the demo allows) of `cargo run --release --example flaky_backend`,
//! checked with generous bounds (real time on a shared machine is noisy; the exact
//! properties are checked in paused time by `flaky_backend.rs`).

use std::time::Duration;

use crate::demo::{self, Phase, Scenario};

#[test]
fn a_short_real_run_shows_the_breaker_cutting_the_outage_short() {
    // Phases of 1 s at 30 requests/s: 30 requests per stack and phase.
    let report = demo::run(&["--duration", "4", "--rps", "30", "--seed", "1"]);
    let text = report.render();
    let addr = report.backend.expect("the server announced its address");
    assert!(addr.ip().is_loopback());

    // The HTTP path works: the healthy phase mostly succeeds through every stack.
    for scenario in Scenario::ALL {
        let healthy = report.stats(scenario, Phase::Healthy);
        assert_eq!(healthy.requests, 30, "{text}");
        assert!(healthy.successes >= 27, "{scenario:?}\n{text}");
        assert_eq!(healthy.backend_calls as usize, healthy.requests, "{text}");
    }
    // The outage: (a) waits out the 500 ms hangs, (c) fails fast and spares the backend.
    let unprotected = report.stats(Scenario::NoProtection, Phase::Outage);
    let full = report.stats(Scenario::FullStack, Phase::Outage);
    assert!(unprotected.mean >= Duration::from_millis(450), "{text}");
    assert!(unprotected.mean >= full.mean * 3, "{text}");
    assert!(full.timeouts * 10 <= full.requests, "{text}");
    assert!(full.backend_calls < unprotected.backend_calls, "{text}");
    assert!(text.contains("closed -> open"), "{text}");

    // The server was shut down at the end of the run.
    let refused = std::net::TcpStream::connect(addr);
    assert!(refused.is_err(), "the backend still accepts connections");
}
