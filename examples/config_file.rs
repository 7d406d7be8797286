//! Breakers configured from a TOML file (feature `serde`).
//!
//! `cargo run --example config_file --features serde [-- path/to/file.toml]` loads
//! `examples/config_file.toml` (or the given file), prints each breaker's settings, and
//! builds the registry. An invalid file prints the offending key path.

use tower_circuit_breaker::RegistryConfig;

const SAMPLE: &str = include_str!("config_file.toml");

fn main() {
    let text = match std::env::args().nth(1) {
        Some(path) => std::fs::read_to_string(&path).unwrap_or_else(|error| {
            eprintln!("cannot read {path}: {error}");
            std::process::exit(2)
        }),
        None => SAMPLE.to_owned(),
    };
    let file = match RegistryConfig::from_toml(&text) {
        Ok(file) => file,
        Err(error) => {
            eprintln!("{error}"); // e.g. invalid configuration at `breakers.payments.open_duration`: ...
            std::process::exit(1)
        }
    };
    for name in file.names() {
        let config = file.config_for(name);
        println!(
            "{name}: consecutive_failures={:?} failure_rate={:?} window={:?} open_duration={:?}",
            config.consecutive_failures(),
            config.failure_rate(),
            config.sliding_window(),
            config.open_duration(),
        );
    }
    let registry = file.registry();
    println!("{} breakers registered", registry.len());
}
