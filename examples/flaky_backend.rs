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
//! `--seed N` (default 1), `--svg PATH` (write a timeline chart), `--paused` (simulate
//! the backend in-process on a paused Tokio clock: no HTTP, no waiting), `--json` (the
//! results as one JSON object; tests/examples/flaky_backend.rs reads it).

#[path = "flaky_backend/cli.rs"]
mod cli;
#[path = "flaky_backend/driver.rs"]
mod driver;
#[path = "flaky_backend/http.rs"]
mod http;
#[path = "flaky_backend/json.rs"]
mod json;
#[path = "flaky_backend/report.rs"]
mod report;
#[path = "flaky_backend/svg.rs"]
mod svg;

use std::net::SocketAddr;
use std::process::ExitCode;

use cli::{parse_args, Args, USAGE};
use driver::{Backend, Schedule};
use report::Report;
use tokio::time::Instant;

fn main() -> ExitCode {
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
    let runtime = if args.paused {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    match runtime {
        Ok(runtime) => runtime.block_on(run(args)),
        Err(e) => {
            eprintln!("error: cannot start the Tokio runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> ExitCode {
    let schedule = Schedule::new(args.duration);
    let phases = format!(
        "phases of {:.1} s: healthy -> 30% errors -> outage (500 ms hangs) -> recovery",
        schedule.total().as_secs_f64() / 4.0
    );
    let running = format!("running for {:.1} s ...\n", schedule.total().as_secs_f64());
    let mut backend_addr = None;
    let report = if args.paused {
        if !args.json {
            println!("flaky backend simulated in-process on a paused clock; {phases}");
            println!("{running}");
        }
        simulated(schedule, args.rps, args.seed).await
    } else {
        let announce = |addr: SocketAddr| {
            backend_addr = Some(addr);
            if !args.json {
                println!("flaky backend on http://{addr}; {phases}");
                println!("{running}");
            }
        };
        match http::run(schedule, args.rps, args.seed, announce).await {
            Ok(report) => report,
            Err(e) => {
                eprintln!("error: cannot start the backend on 127.0.0.1: {e}");
                return ExitCode::FAILURE;
            }
        }
    };

    if args.json {
        println!("{}", json::render(&args, backend_addr, &report));
    } else {
        print!("{}", report.render());
    }
    if let Some(path) = &args.svg {
        match std::fs::write(path, svg::render(&report)) {
            Ok(()) if !args.json => println!("\ntimeline chart written to {path}"),
            Ok(()) => {}
            Err(e) => {
                eprintln!("error: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// The experiment against the backend simulated in-process; on a paused clock, the run
/// takes no time.
async fn simulated(schedule: Schedule, rps: u32, seed: u64) -> Report {
    let start = Instant::now();
    let backend = Backend::new(schedule, start, seed);
    driver::run(&backend, start, rps, seed, |scenario| {
        driver::simulated(&backend, scenario)
    })
    .await
}
