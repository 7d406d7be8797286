//! The design notes' four targets, measured: failure detection < 50 ms, recovery
//! < 100 ms, false positives < 5 %, for each breaker rule, scenario and call rate.
//!
//! ```sh
//! cargo run --release --example targets
//! ```
//!
//! Every scenario runs in paused Tokio time against a simulated backend with seeded
//! failures (see `targets/harness.rs`), so the table is exact and the same on every
//! machine; it takes a few seconds. Flags: `--seed N` (default 1), `--rate N` (only
//! this call rate: 10, 100 or 1000).

#[path = "targets/harness.rs"]
mod harness;

use std::process::ExitCode;
use std::time::Duration;

use harness::{percent, Cell, Rule, Scenario, RATES};

const USAGE: &str = "usage: targets [--seed N] [--rate 10|100|1000]";

fn main() -> ExitCode {
    let (seed, rates) = match parse_args(std::env::args().skip(1)) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = harness::runtime();
    for rule in harness::rules() {
        print_table(&rule, &runtime, &rates, seed);
    }
    ExitCode::SUCCESS
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<(u64, Vec<u32>), String> {
    let (mut seed, mut rates) = (1, RATES.to_vec());
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--seed" => {
                let text = value()?;
                seed = text
                    .parse()
                    .map_err(|_| format!("--seed {text}: not a whole number"))?;
            }
            "--rate" => {
                let text = value()?;
                let rate = text.parse().ok().filter(|rate| RATES.contains(rate));
                rates = vec![rate.ok_or(format!("--rate {text}: must be 10, 100 or 1000"))?];
            }
            other => return Err(format!("unknown flag {other}")),
        }
    }
    Ok((seed, rates))
}

fn print_table(rule: &Rule, runtime: &tokio::runtime::Runtime, rates: &[u32], seed: u64) {
    println!("\n### {}\n", rule.name);
    println!(
        "| scenario | calls/s | detection | calls to the sick backend before open | probe load while open (calls/s) | recovery | fast-failed after healing | false positives |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for scenario in Scenario::all() {
        for &rate in rates {
            let cell = runtime.block_on(harness::run(rule, scenario, rate, seed));
            println!(
                "| {} | {rate} | {} |",
                scenario.name(),
                row(scenario, &cell)
            );
        }
    }
}

/// The cells of one row; "-" where the scenario does not measure it.
fn row(scenario: Scenario, cell: &Cell) -> String {
    let sick = !matches!(scenario, Scenario::Healthy { .. });
    let detection = match (sick, cell.detection) {
        (false, _) => "-".to_owned(),
        (true, Some(latency)) => millis(latency),
        (true, None) => "never".to_owned(),
    };
    let before_open = if sick {
        cell.calls_before_open.to_string()
    } else {
        "-".to_owned()
    };
    let probe_load = cell
        .probe_load
        .map_or("-".to_owned(), |load| format!("{load:.1}"));
    let (recovery, fast_failed) = match scenario {
        Scenario::Recovery => (
            cell.recovery.map_or("not closed".to_owned(), millis),
            cell.fast_fail_after_healing()
                .map_or("-".to_owned(), percent),
        ),
        _ => ("-".to_owned(), "-".to_owned()),
    };
    let false_positives = percent(cell.false_positive_rate);
    format!("{detection} | {before_open} | {probe_load} | {recovery} | {fast_failed} | {false_positives}")
}

fn millis(duration: Duration) -> String {
    let ms = duration.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else {
        format!("{ms:.0} ms")
    }
}
