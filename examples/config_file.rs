//! Breakers configured inside an application's own TOML file (feature `serde`).
//!
//! `cargo run --example config_file --features serde [-- path/to/file.toml]` loads
//! `examples/config_file.toml` (or the given file) into the application's config struct,
//! whose `#[serde(flatten)]` [`RegistryConfig`] field takes `[resilience]`, `[defaults]`
//! and `[breakers.NAME]` while `server` takes `[server]`. It prints each breaker's
//! settings and fetches the configured breakers by name from the registry. An invalid
//! file prints the offending key path as the file wrote it, e.g.
//! `invalid configuration at `breakers.payments.circuit_breaker_timeout``.

use serde::Deserialize;
use tower_circuit_breaker::{RegistryConfig, State};

const SAMPLE: &str = include_str!("config_file.toml");

/// The application's configuration.
#[derive(Debug, Deserialize)]
struct AppConfig {
    server: Server,
    /// `[resilience]`, `[defaults]` and `[breakers.NAME]`, from the top level.
    #[serde(flatten)]
    breakers: RegistryConfig,
}

#[derive(Debug, Deserialize)]
struct Server {
    listen: String,
    workers: u32,
}

fn main() {
    let text = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path).unwrap_or_else(|error| {
            eprintln!("cannot read {path}: {error}");
            std::process::exit(2)
        }),
        None => SAMPLE.to_owned(),
    };
    let app: AppConfig = match toml::from_str(&text) {
        Ok(app) => app,
        Err(error) => {
            eprintln!("{error}"); // names the key path, e.g. `breakers.payments.open_duration`
            std::process::exit(1)
        }
    };
    println!(
        "server on {} with {} workers",
        app.server.listen, app.server.workers
    );
    let file = &app.breakers;
    for name in file.names() {
        let config = file.config_for(name);
        println!(
            "{name}: consecutive_failures={:?} failure_rate={:?} window={:?} open_duration={:?} backoff={:?}",
            config.consecutive_failures(),
            config.failure_rate(),
            config.sliding_window(),
            config.open_duration(),
            config.open_backoff(),
        );
    }

    // Every listed breaker is in the registry, built; fetch them by name.
    let registry = file.registry();
    println!("{} breakers registered", registry.len());
    for breaker in &registry {
        let note = match breaker.state() {
            State::Disabled => " (disabled in the file)",
            _ => "",
        };
        println!("  {} is {}{note}", breaker.name(), breaker.state());
    }
    // A name the file does not list gets the defaults, and the file's on/off switch.
    let other = file.breaker_in(&registry, "recommendations");
    println!(
        "unlisted `{}`: open_duration={:?}",
        other.name(),
        other.config().open_duration()
    );
}
