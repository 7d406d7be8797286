//! Breaker configuration inside the application's own configuration (feature `serde`):
//! a whole application TOML file, `RegistryConfig` as a field of the application's
//! `#[derive(Deserialize)]` struct in TOML, JSON and YAML, and `#[serde(flatten)]`.
#![cfg(feature = "serde")]

use std::time::Duration;

use serde::Deserialize;
use tower_circuit_breaker::{Config, RegistryConfig, State, Window};

/// A real application's file: its own tables next to the breakers'.
const APP_TOML: &str = r#"
[server]
listen = "127.0.0.1:8080"
workers = 4

[database]
url = "postgres://localhost/app"
pool = { max = 10 }

[resilience]
circuit_breaker_threshold = 4
circuit_breaker_timeout = "45s"
retry_max_attempts = 3          # another component's key

[defaults]
half_open_max_wait = "20s"

[breakers.payments]
failure_rate = 0.5
sliding_window = { calls = 50 }
circuit_breaker_half_open_calls = 1

[breakers.inventory]
"#;

#[derive(Debug, Deserialize)]
struct Server {
    listen: String,
    workers: u32,
}

/// Asserts the breakers every format below describes.
fn assert_app_breakers(file: &RegistryConfig) {
    assert_eq!(file.names().collect::<Vec<_>>(), ["inventory", "payments"]);
    let payments = file.config_for("payments");
    assert_eq!(payments.consecutive_failures(), Some(4));
    assert_eq!(payments.open_duration(), Duration::from_secs(45));
    assert_eq!(payments.half_open_max_wait(), Duration::from_secs(20));
    assert_eq!(payments.failure_rate(), Some(0.5));
    assert_eq!(payments.sliding_window(), Some(Window::count(50)));
    assert_eq!(payments.half_open_permits(), 1);
    let inventory = file.config_for("inventory");
    assert_eq!(inventory.consecutive_failures(), Some(4));
    assert_eq!(inventory.failure_rate(), None);
    let registry = file.registry();
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.get("payments").unwrap().state(), State::Closed);
}

#[test]
fn an_app_toml_with_server_and_resilience_is_read_whole() {
    let file = RegistryConfig::from_app_toml(APP_TOML).unwrap();
    assert_app_breakers(&file);

    // The strict reader is for files of breakers only.
    let error = RegistryConfig::from_toml(APP_TOML).unwrap_err();
    assert_eq!(error.field(), "database");

    // Inside the breakers' tables, unknown keys are still errors.
    let typo = APP_TOML.replace("failure_rate = 0.5", "failure_rat = 0.5");
    let error = RegistryConfig::from_app_toml(&typo).unwrap_err();
    assert_eq!(error.field(), "breakers.payments.failure_rat");
    assert!(
        error.to_string().contains("did you mean `failure_rate`?"),
        "{error}"
    );
}

#[derive(Debug, Deserialize)]
struct FlatApp {
    server: Server,
    database: toml::Table,
    #[serde(flatten)]
    breakers: RegistryConfig,
}

#[test]
fn flattened_into_the_app_struct_it_takes_the_top_level_breaker_tables() {
    let app: FlatApp = toml::from_str(APP_TOML).unwrap();
    assert_eq!(app.server.listen, "127.0.0.1:8080");
    assert_eq!(app.server.workers, 4);
    assert!(app.database.contains_key("url"));
    assert_app_breakers(&app.breakers);

    let typo = APP_TOML.replace(
        "circuit_breaker_half_open_calls",
        "circuit_breaker_half_open_cals",
    );
    let error = toml::from_str::<FlatApp>(&typo).unwrap_err().to_string();
    assert!(
        error.contains("`breakers.payments.circuit_breaker_half_open_cals`"),
        "{error}"
    );
}

#[derive(Debug, Deserialize)]
struct App {
    server: Server,
    circuit_breakers: RegistryConfig,
}

const EMBEDDED_TOML: &str = r#"
[server]
listen = "127.0.0.1:8080"
workers = 4

[circuit_breakers.resilience]
circuit_breaker_threshold = 4
circuit_breaker_timeout = "45s"
retry_max_attempts = 3

[circuit_breakers.defaults]
half_open_max_wait = "20s"

[circuit_breakers.breakers.payments]
failure_rate = 0.5
sliding_window = { calls = 50 }
circuit_breaker_half_open_calls = 1

[circuit_breakers.breakers.inventory]
"#;

const EMBEDDED_JSON: &str = r#"{
  "server": {"listen": "127.0.0.1:8080", "workers": 4},
  "circuit_breakers": {
    "resilience": {
      "circuit_breaker_threshold": 4,
      "circuit_breaker_timeout": "45s",
      "retry_max_attempts": 3
    },
    "defaults": {"half_open_max_wait": "20s"},
    "breakers": {
      "payments": {
        "failure_rate": 0.5,
        "sliding_window": {"calls": 50},
        "circuit_breaker_half_open_calls": 1
      },
      "inventory": {}
    }
  }
}"#;

const EMBEDDED_YAML: &str = r#"
server:
  listen: 127.0.0.1:8080
  workers: 4
circuit_breakers:
  resilience:
    circuit_breaker_threshold: 4
    circuit_breaker_timeout: 45s
    retry_max_attempts: 3
  defaults:
    half_open_max_wait: 20s
  breakers:
    payments:
      failure_rate: 0.5
      sliding_window: { calls: 50 }
      circuit_breaker_half_open_calls: 1
    inventory: {}
"#;

#[test]
fn registry_config_as_a_field_of_the_app_struct_in_toml() {
    let app: App = toml::from_str(EMBEDDED_TOML).unwrap();
    assert_eq!(app.server.workers, 4);
    assert_app_breakers(&app.circuit_breakers);
}

#[test]
fn registry_config_as_a_field_of_the_app_struct_in_json() {
    let app: App = serde_json::from_str(EMBEDDED_JSON).unwrap();
    assert_eq!(app.server.listen, "127.0.0.1:8080");
    assert_app_breakers(&app.circuit_breakers);
}

#[test]
fn registry_config_as_a_field_of_the_app_struct_in_yaml() {
    let app: App = serde_norway::from_str(EMBEDDED_YAML).unwrap();
    assert_eq!(app.server.listen, "127.0.0.1:8080");
    assert_app_breakers(&app.circuit_breakers);
}

#[test]
fn embedded_errors_name_the_alias_as_written_in_every_format() {
    let toml_error = toml::from_str::<App>(&EMBEDDED_TOML.replace(
        "circuit_breaker_timeout = \"45s\"",
        "circuit_breaker_timeout = \"45 parsecs\"",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        toml_error.contains("`resilience.circuit_breaker_timeout`"),
        "{toml_error}"
    );

    let json_error = serde_json::from_str::<App>(&EMBEDDED_JSON.replace(
        "\"circuit_breaker_half_open_calls\": 1",
        "\"circuit_breaker_half_open_calls\": 0",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        json_error.contains("`breakers.payments.circuit_breaker_half_open_calls`"),
        "{json_error}"
    );

    let yaml_error = serde_norway::from_str::<App>(&EMBEDDED_YAML.replace(
        "circuit_breaker_threshold: 4",
        "circuit_breaker_threshold: 0",
    ))
    .unwrap_err()
    .to_string();
    assert!(
        yaml_error.contains("`resilience.circuit_breaker_threshold`"),
        "{yaml_error}"
    );

    // Unflattened, a RegistryConfig has exactly three keys: a typo is caught.
    let typo = serde_json::from_str::<App>(
        r#"{"server": {"listen": "x", "workers": 1}, "circuit_breakers": {"breaker": {}}}"#,
    )
    .unwrap_err()
    .to_string();
    assert!(typo.contains("`breaker`: unknown key"), "{typo}");

    // A null (YAML `~`, JSON `null`) and an integer beyond i64 are errors at their key.
    let null = serde_norway::from_str::<App>(
        "server: {listen: x, workers: 1}\ncircuit_breakers:\n  defaults:\n    open_duration: ~\n",
    )
    .unwrap_err()
    .to_string();
    assert!(null.contains("`defaults.open_duration`: is null"), "{null}");
    let null = serde_json::from_str::<Config>(r#"{"open_duration": null}"#)
        .unwrap_err()
        .to_string();
    assert!(null.contains("`open_duration`: is null"), "{null}");
    let huge = serde_json::from_str::<Config>(r#"{"failure_threshold": 18446744073709551615}"#)
        .unwrap_err()
        .to_string();
    assert!(
        huge.contains("`failure_threshold`: 18446744073709551615 is out of range"),
        "{huge}"
    );
}

#[test]
fn a_lone_config_embedded_in_yaml_and_json_takes_the_same_aliases() {
    #[derive(Deserialize)]
    struct Client {
        breaker: Config,
    }
    let yaml: Client =
        serde_norway::from_str("breaker:\n  circuit_breaker_threshold: 2\n  timeout_seconds: 5\n")
            .unwrap();
    let json: Client = serde_json::from_str(
        r#"{"breaker": {"circuit_breaker_threshold": 2, "timeout_seconds": 5}}"#,
    )
    .unwrap();
    for config in [yaml.breaker, json.breaker] {
        assert_eq!(config.consecutive_failures(), Some(2));
        assert_eq!(config.open_duration(), Duration::from_secs(5));
    }
}
