//! The demo's command line, parsed by hand (no argument-parsing dependency).

use std::time::Duration;

/// The demo's settings, from the command line.
#[derive(Debug)]
pub struct Args {
    pub duration: Duration,
    pub rps: u32,
    pub seed: u64,
    pub svg: Option<String>,
    /// Simulate the backend in-process on a paused Tokio clock instead of serving it.
    pub paused: bool,
    /// Print the results as one JSON object instead of the tables.
    pub json: bool,
}

pub const USAGE: &str =
    "usage: flaky_backend [--duration SECS] [--rps N] [--seed N] [--svg PATH] [--paused] [--json]
  --duration SECS  length of the run, 4 to 55 seconds (default 24)
  --rps N          requests per second through each stack, 1 to 2000 (default 100)
  --seed N         seed of the backend's errors and the retry jitter (default 1)
  --svg PATH       also write a timeline chart (latency and breaker state) as SVG
  --paused         simulate the backend in-process on a paused Tokio clock: no HTTP,
                   no waiting, the same results for the same seed
  --json           print the settings, the statistics, the transitions and every
                   request as one JSON object instead of the tables";

/// Parses the flags (without the program name). `Err` holds the problem, or is empty
/// when `--help` was asked for.
pub fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut parsed = Args {
        duration: Duration::from_secs(24),
        rps: 100,
        seed: 1,
        svg: None,
        paused: false,
        json: false,
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--help" | "-h" => return Err(String::new()),
            "--paused" => {
                parsed.paused = true;
                continue;
            }
            "--json" => {
                parsed.json = true;
                continue;
            }
            "--duration" | "--rps" | "--seed" | "--svg" => {}
            _ => return Err(format!("unknown flag `{flag}`")),
        }
        let value = args
            .next()
            .ok_or_else(|| format!("`{flag}` needs a value"))?;
        let bad = |rule: &str| format!("invalid `{flag}` = {value:?}: {rule}");
        match flag.as_str() {
            "--duration" => {
                let secs: f64 = value.parse().map_err(|_| bad("not a number"))?;
                if !(4.0..=55.0).contains(&secs) {
                    return Err(bad("must be between 4 and 55 seconds"));
                }
                parsed.duration = Duration::from_secs_f64(secs);
            }
            "--rps" => {
                parsed.rps = value.parse().map_err(|_| bad("not a whole number"))?;
                if !(1..=2000).contains(&parsed.rps) {
                    return Err(bad("must be between 1 and 2000"));
                }
            }
            "--seed" => parsed.seed = value.parse().map_err(|_| bad("not a whole number"))?,
            "--svg" => parsed.svg = Some(value),
            _ => return Err(format!("unknown flag `{flag}`")),
        }
    }
    Ok(parsed)
}
