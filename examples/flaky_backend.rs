//! Why you want a circuit breaker, in one command:
//!
//! ```sh
//! cargo run --release --example flaky_backend
//! ```
//!
//! Starts an HTTP backend on 127.0.0.1 (a random free port) that goes through four
//! phases: healthy, 30% errors, a full outage where every call hangs 500 ms, and recovery.
//! The same open-loop load is driven, at the same time, through three client stacks:
//!
//! - (a) no protection;
//! - (b) a 100 ms timeout only;
//! - (c) the full stack `Retry( CircuitBreaker( Timeout( ConcurrencyLimit + LoadShed(
//!   backend ))))`.
//!
//! For each phase it prints requests, success / fast-fail / timeout / error rates, mean
//! and p99 latency, the calls that reached the backend, and the breaker's transitions.
//!
//! Flags: `--duration SECS` (default 24, at most 55), `--rps N` (default 100),
//! `--seed N` (default 1), `--svg PATH` (write a timeline chart).

#[path = "flaky_backend/cli.rs"]
mod cli;
#[path = "flaky_backend/driver.rs"]
mod driver;
#[path = "flaky_backend/http.rs"]
mod http;
#[path = "flaky_backend/report.rs"]
mod report;
#[path = "flaky_backend/svg.rs"]
mod svg;

use std::process::ExitCode;

use cli::{parse_args, USAGE};
use driver::Schedule;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if !message.is_empty() {
                eprintln!("error: {message}\n");
            }
            eprintln!("{USAGE}");
            return if message.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            };
        }
    };

    let schedule = Schedule::new(args.duration);
    let announce = |addr| {
        println!(
            "flaky backend on http://{addr}; phases of {:.1} s: healthy -> 30% errors -> outage (500 ms hangs) -> recovery",
            schedule.total().as_secs_f64() / 4.0
        );
        println!("running for {:.1} s ...\n", schedule.total().as_secs_f64());
    };
    let report = match http::run(schedule, args.rps, args.seed, announce).await {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: cannot start the backend on 127.0.0.1: {e}");
            return ExitCode::FAILURE;
        }
    };

    print!("{}", report.render());
    if let Some(path) = &args.svg {
        match std::fs::write(path, svg::render(&report)) {
            Ok(()) => println!("\ntimeline chart written to {path}"),
            Err(e) => {
                eprintln!("error: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
