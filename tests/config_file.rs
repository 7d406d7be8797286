//! Configuration files (feature `serde`): defaults, per-name overrides, the seed's
//! `[resilience]` table, and errors naming the key path.
#![cfg(feature = "serde")]

use std::time::Duration;

use tower_circuit_breaker::{Config, ConfigError, Registry, RegistryConfig, State, Window};

const SAMPLE: &str = include_str!("../examples/config_file.toml");

#[test]
fn the_sample_file_layers_resilience_defaults_and_overrides() {
    let file = RegistryConfig::from_toml(SAMPLE).unwrap();
    assert!(file.enabled());
    assert_eq!(
        file.names().collect::<Vec<_>>(),
        ["inventory", "payments", "search"]
    );

    let defaults = file.defaults();
    assert_eq!(
        defaults.consecutive_failures(),
        Some(5),
        "from [resilience]"
    );
    assert_eq!(defaults.half_open_permits(), 3, "from [resilience]");
    assert_eq!(
        defaults.open_duration(),
        Duration::from_secs(30),
        "[defaults] wins"
    );
    assert_eq!(defaults.half_open_max_wait(), Duration::from_secs(60));

    let payments = file.config_for("payments");
    assert_eq!(payments.name(), "payments");
    assert_eq!(payments.failure_rate(), Some(0.5));
    assert_eq!(
        payments.sliding_window(),
        Some(Window::time(Duration::from_secs(60)).buckets(20))
    );
    assert_eq!(payments.minimum_calls(), 20);
    assert_eq!(payments.slow_call(), Some((Duration::from_secs(2), 0.8)));
    assert_eq!(payments.half_open_successes(), 2);
    assert_eq!(payments.consecutive_failures(), Some(5), "inherited");
    assert_eq!(
        payments.open_duration(),
        Duration::from_secs(30),
        "inherited"
    );

    let inventory = file.config_for("inventory");
    assert_eq!(inventory.consecutive_failures(), Some(3));
    assert!(inventory.backpressure());
    assert_eq!(inventory.failure_rate(), None);

    let search = file.config_for("search");
    assert_eq!(search.sliding_window(), Some(Window::count(50)));

    let unlisted = file.config_for("unlisted");
    assert_eq!(unlisted.name(), "unlisted");
    assert_eq!(unlisted.open_duration(), Duration::from_secs(30));

    let registry = Registry::from_toml(SAMPLE).unwrap();
    assert_eq!(registry.len(), 3);
    let inventory = registry.get("inventory").unwrap();
    assert_eq!(inventory.config().consecutive_failures(), Some(3));
    assert_eq!(inventory.state(), State::Closed);
}

#[test]
fn the_seed_resilience_table_alone_and_its_aliases() {
    let file = RegistryConfig::from_toml(
        r#"
        [resilience]
        circuit_breaker_enabled = false
        circuit_breaker_threshold = 4
        circuit_breaker_timeout = 60
        circuit_breaker_half_open_calls = 2

        [breakers.legacy]
        failure_threshold = 7
        timeout_seconds = 90
        half_open_max_calls = 1
        "#,
    )
    .unwrap();
    assert!(!file.enabled());
    assert_eq!(file.defaults().consecutive_failures(), Some(4));
    assert_eq!(file.defaults().open_duration(), Duration::from_secs(60));
    assert_eq!(file.defaults().half_open_permits(), 2);
    let legacy = file.config_for("legacy");
    assert_eq!(legacy.consecutive_failures(), Some(7));
    assert_eq!(legacy.open_duration(), Duration::from_secs(90));
    assert_eq!(legacy.half_open_permits(), 1);
    let registry = file.registry();
    assert_eq!(registry.get("legacy").unwrap().state(), State::Disabled);
}

fn error_of(text: &str) -> (String, String) {
    match RegistryConfig::from_toml(text).unwrap_err() {
        ConfigError::File { path, message } => (path, message),
        other => panic!("expected a file error, got {other:?}"),
    }
}

#[test]
fn invalid_files_name_the_key_path() {
    let cases = [
        (
            "[breakers.payments]\nopne_duration = \"30s\"",
            "breakers.payments.opne_duration",
            "unknown key",
        ),
        (
            "[breakers.payments]\nopen_duration = \"30 parsecs\"",
            "breakers.payments.open_duration",
            "not a duration",
        ),
        (
            "[breakers.payments]\nopen_duration = true",
            "breakers.payments.open_duration",
            "found boolean",
        ),
        (
            "[breakers.payments]\nfailure_rate = 1.5",
            "breakers.payments.failure_rate",
            "(0.0, 1.0]",
        ),
        (
            "[breakers.payments]\nconsecutive_failures = -1",
            "breakers.payments.consecutive_failures",
            "not in 0..=",
        ),
        (
            "[breakers.payments]\nconsecutive_failures = 0",
            "breakers.payments.consecutive_failures",
            "at least 1",
        ),
        (
            "[breakers.payments]\nslow_call = { threshold = \"2s\" }",
            "breakers.payments.slow_call.rate",
            "missing",
        ),
        (
            "[breakers.payments]\nsliding_window = { calls = 10, buckets = 2 }",
            "breakers.payments.sliding_window.buckets",
            "only a time window",
        ),
        (
            "[breakers.payments]\nsliding_window = { time = \"0s\" }",
            "breakers.payments.sliding_window",
            "longer than zero",
        ),
        (
            "[breakers.payments]\nopen_backoff = { multiplier = 0.5 }",
            "breakers.payments.open_backoff.multiplier",
            ">= 1.0",
        ),
        (
            "[breakers.payments]\nname = \"other\"",
            "breakers.payments.name",
            "table's key",
        ),
        (
            "[defaults]\nhalf_open_permits = 0",
            "defaults.half_open_permits",
            "1..=65535",
        ),
        (
            "[resilience]\ncircuit_breaker_treshold = 5",
            "resilience.circuit_breaker_treshold",
            "unknown",
        ),
        (
            "[resilience]\ncircuit_breaker_timeout = -3",
            "resilience.circuit_breaker_timeout",
            "seconds >= 0",
        ),
        (
            "[breaker.payments]\nfailure_rate = 0.5",
            "breaker",
            "unknown key",
        ),
        ("breakers = 3", "breakers", "expected a table"),
        ("[breakers.payments]\nfailure_rate = ", "", "line 2"),
    ];
    for (text, path, message) in cases {
        let (got_path, got_message) = error_of(text);
        assert_eq!(got_path, path, "{text}");
        assert!(
            got_message.contains(message),
            "{text}: {got_message:?} lacks {message:?}"
        );
    }
    let error = RegistryConfig::from_toml("[breakers.db]\nfailure_rate = 2").unwrap_err();
    assert_eq!(error.field(), "breakers.db.failure_rate");
    assert_eq!(
        error.to_string(),
        "invalid configuration at `breakers.db.failure_rate`: invalid `failure_rate` = 2.0: must be in (0.0, 1.0]"
    );
}

#[test]
fn config_deserializes_from_toml_and_json_and_validates() {
    let config: Config = toml::from_str("name = \"db\"\nopen_duration = \"1m30s\"").unwrap();
    assert_eq!(
        (config.name(), config.open_duration()),
        ("db", Duration::from_secs(90))
    );

    let config: Config = serde_json::from_str(
        r#"{"failure_rate": 0.5, "sliding_window": {"time": "30s", "buckets": 10}, "open_duration": 2.5}"#,
    )
    .unwrap();
    assert_eq!(config.failure_rate(), Some(0.5));
    assert_eq!(
        config.sliding_window(),
        Some(Window::time(Duration::from_secs(30)).buckets(10))
    );
    assert_eq!(config.open_duration(), Duration::from_millis(2_500));

    let error = serde_json::from_str::<Config>(r#"{"half_open_successes": 0}"#).unwrap_err();
    assert!(
        error.to_string().contains("`half_open_successes`"),
        "{error}"
    );
    let error = serde_json::from_str::<Config>("[1, 2]").unwrap_err();
    assert!(error.to_string().contains("expected a table"), "{error}");

    assert_eq!(
        Config::from_toml("open_backoff = { multiplier = 2.0, max = \"1s\" }")
            .unwrap_err()
            .field(),
        "open_backoff.max"
    );
}
