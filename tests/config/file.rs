//! Configuration files (feature `serde`): defaults, per-name overrides, the seed's
//! `[resilience]` table, and errors naming the key path.
#![cfg(feature = "serde")]

use std::time::Duration;

use tower_circuit_breaker::{
    AdaptiveFailureRate, Backoff, Config, ConfigError, Registry, RegistryConfig, State, Window,
};

const SAMPLE: &str = include_str!("../../examples/config_file.toml");

#[test]
fn the_sample_app_file_layers_resilience_defaults_and_overrides() {
    let file = RegistryConfig::from_app_toml(SAMPLE).unwrap();
    assert!(file.enabled());
    assert_eq!(
        file.names().collect::<Vec<_>>(),
        ["inventory", "legacy", "payments", "search"]
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
        Duration::from_secs(60),
        "from [resilience]"
    );
    assert_eq!(
        defaults.half_open_max_wait(),
        Duration::from_secs(60),
        "from [defaults]"
    );

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
    assert_eq!(
        payments.open_backoff(),
        Backoff::exponential(2.0, Duration::from_secs(300)).jitter(0.1)
    );
    assert_eq!(payments.consecutive_failures(), Some(5), "inherited");
    assert_eq!(
        payments.open_duration(),
        Duration::from_secs(30),
        "its own circuit_breaker_timeout"
    );

    let inventory = file.config_for("inventory");
    assert_eq!(inventory.consecutive_failures(), Some(3));
    assert!(inventory.backpressure());
    assert_eq!(inventory.failure_rate(), None);

    let search = file.config_for("search");
    assert_eq!(search.sliding_window(), Some(Window::count(50)));

    let unlisted = file.config_for("unlisted");
    assert_eq!(unlisted.name(), "unlisted");
    assert_eq!(unlisted.open_duration(), Duration::from_secs(60));

    let registry = file.registry();
    assert_eq!(registry.len(), 4);
    let inventory = registry.get("inventory").unwrap();
    assert_eq!(inventory.config().consecutive_failures(), Some(3));
    assert_eq!(inventory.state(), State::Closed);
    assert_eq!(registry.get("legacy").unwrap().state(), State::Disabled);

    // A file of breakers only: the strict readers refuse the application's [server].
    let error = RegistryConfig::from_toml(SAMPLE).unwrap_err();
    assert_eq!(error.field(), "server");
    assert!(error.to_string().contains("from_app_toml"), "{error}");
    assert_eq!(Registry::from_toml(SAMPLE).unwrap_err().field(), "server");
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
            "[breakers.payments]\nfailure_rate_adaptive = { margin = 2.0 }",
            "breakers.payments.failure_rate_adaptive.margin",
            "(0.0, 1.0)",
        ),
        (
            "[breakers.payments]\nfailure_rate_adaptive = { margn = 0.2 }",
            "breakers.payments.failure_rate_adaptive.margn",
            "unknown",
        ),
        (
            "[breakers.payments]\nfailure_rate = 0.5\nfailure_rate_adaptive = {}",
            "breakers.payments.failure_rate",
            "not both",
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

#[test]
fn the_adaptive_rule_is_a_table_of_optional_settings() {
    let config = Config::from_toml(
        "failure_rate_adaptive = { margin = 0.2, warm_up = 500, streak_probability = 0.0 }",
    )
    .unwrap();
    let rule = config.failure_rate_adaptive().expect("set");
    assert_eq!(
        (rule.margin, rule.warm_up, rule.streak_probability),
        (0.2, 500, 0.0)
    );
    assert_eq!(rule.cap, AdaptiveFailureRate::DEFAULT_CAP);
    let defaults = Config::from_toml("failure_rate_adaptive = {}").unwrap();
    assert_eq!(
        defaults.failure_rate_adaptive(),
        Some(AdaptiveFailureRate::new())
    );

    let scouting = Config::from_toml("probe_interval = \"250ms\"\nramp_up = \"2s\"").unwrap();
    assert_eq!(scouting.probe_interval(), Some(Duration::from_millis(250)));
    assert_eq!(scouting.ramp_up(), Some(Duration::from_secs(2)));
    let remembering = Config::from_toml(
        "open_backoff = { multiplier = 2.0, max = \"1m\", reset_after = \"10m\" }",
    )
    .unwrap();
    assert_eq!(
        remembering.open_backoff(),
        Backoff::exponential(2.0, Duration::from_secs(60)).reset_after(Duration::from_secs(600))
    );

    let linear = Config::from_toml("open_backoff = { linear = true, max = \"5m\" }").unwrap();
    assert_eq!(
        linear.open_backoff(),
        Backoff::linear(Duration::from_secs(300))
    );

    // A breaker's own failure-rate rule, fixed or adaptive, replaces the inherited one.
    let file = RegistryConfig::from_toml(
        "[defaults]\nfailure_rate = 0.5\n[breakers.adaptive]\nfailure_rate_adaptive = {}\n\
         [breakers.fixed]\n",
    )
    .unwrap();
    let adaptive = file.config_for("adaptive");
    assert_eq!(adaptive.failure_rate(), None);
    assert!(adaptive.failure_rate_adaptive().is_some());
    let fixed = file.config_for("fixed");
    assert_eq!(fixed.failure_rate(), Some(0.5));
    assert_eq!(fixed.failure_rate_adaptive(), None);
}

// ---- The same keys at every level ----

#[test]
fn seed_keys_work_inside_defaults_and_breaker_tables() {
    let file = RegistryConfig::from_toml(
        r#"
        [defaults]
        circuit_breaker_threshold = 4
        circuit_breaker_timeout = "45s"
        circuit_breaker_half_open_calls = 2

        [breakers.payments]
        circuit_breaker_threshold = 7
        circuit_breaker_timeout = 90
        circuit_breaker_half_open_calls = 1
        circuit_breaker_enabled = false

        [breakers.search]
        failure_threshold = 9
        timeout_seconds = 15
        half_open_max_calls = 4
        circuit_breaker_failure_rate = 0.5
        circuit_breaker_sliding_window = { calls = 20 }
        "#,
    )
    .unwrap();
    let defaults = file.defaults();
    assert_eq!(defaults.consecutive_failures(), Some(4));
    assert_eq!(defaults.open_duration(), Duration::from_secs(45));
    assert_eq!(defaults.half_open_permits(), 2);

    let payments = file.config_for("payments");
    assert_eq!(payments.consecutive_failures(), Some(7));
    assert_eq!(payments.open_duration(), Duration::from_secs(90));
    assert_eq!(payments.half_open_permits(), 1);

    let search = file.config_for("search");
    assert_eq!(search.consecutive_failures(), Some(9));
    assert_eq!(search.open_duration(), Duration::from_secs(15));
    assert_eq!(search.half_open_permits(), 4);
    assert_eq!(search.failure_rate(), Some(0.5));
    assert_eq!(search.sliding_window(), Some(Window::count(20)));

    let registry = file.registry();
    assert_eq!(registry.get("payments").unwrap().state(), State::Disabled);
    assert_eq!(registry.get("search").unwrap().state(), State::Closed);
}

#[test]
fn every_breaker_key_works_prefixed_in_resilience_and_bare_in_a_lone_config() {
    let file = RegistryConfig::from_toml(
        r#"
        [resilience]
        circuit_breaker_failure_rate = 0.4
        circuit_breaker_sliding_window = { time = "30s", buckets = 10 }
        circuit_breaker_minimum_calls = 5
        circuit_breaker_open_duration = "20s"
        circuit_breaker_open_backoff = { multiplier = 3.0, max = "10m" }
        circuit_breaker_half_open_successes = 2
        circuit_breaker_half_open_max_wait = "15s"
        circuit_breaker_backpressure = true
        "#,
    )
    .unwrap();
    let defaults = file.defaults();
    assert_eq!(defaults.failure_rate(), Some(0.4));
    assert_eq!(
        defaults.sliding_window(),
        Some(Window::time(Duration::from_secs(30)).buckets(10))
    );
    assert_eq!(defaults.minimum_calls(), 5);
    assert_eq!(defaults.open_duration(), Duration::from_secs(20));
    assert_eq!(
        defaults.open_backoff(),
        Backoff::exponential(3.0, Duration::from_secs(600))
    );
    assert_eq!(defaults.half_open_successes(), 2);
    assert_eq!(defaults.half_open_max_wait(), Duration::from_secs(15));
    assert!(defaults.backpressure());

    let config = Config::from_toml(
        "circuit_breaker_threshold = 2\ncircuit_breaker_timeout = \"5s\"\ncircuit_breaker_half_open_calls = 1",
    )
    .unwrap();
    assert_eq!(config.consecutive_failures(), Some(2));
    assert_eq!(config.open_duration(), Duration::from_secs(5));
    assert_eq!(config.half_open_permits(), 1);
}

// ---- Registries hold every configured breaker; fetch them by name ----

#[test]
fn a_registry_from_a_file_of_breaker_tables_contains_every_breaker() {
    let registry = Registry::from_toml(
        r#"
        [breakers.payments]
        failure_rate = 0.5
        [breakers.inventory]
        [breakers.search]
        consecutive_failures = 2
        "#,
    )
    .unwrap();
    assert_eq!(registry.len(), 3);
    let names: Vec<String> = registry
        .breakers()
        .iter()
        .map(|b| b.name().to_owned())
        .collect();
    assert_eq!(names, ["inventory", "payments", "search"]);
    assert_eq!(
        registry
            .get("inventory")
            .unwrap()
            .config()
            .consecutive_failures(),
        Some(Config::DEFAULT_CONSECUTIVE_FAILURES),
        "an empty table lists the breaker with the defaults"
    );

    let inline = Registry::from_toml("breakers = { a = {}, b = { failure_rate = 0.5 } }").unwrap();
    assert_eq!(inline.len(), 2);
    assert!(inline.contains("a") && inline.contains("b"));
}

#[test]
fn a_configured_breaker_is_fetched_by_name_without_repeating_its_config() {
    let file = RegistryConfig::from_toml(
        r#"
        [defaults]
        open_duration = "45s"
        [breakers.payments]
        consecutive_failures = 1
        "#,
    )
    .unwrap();
    let registry = file.registry();

    // The pre-built breaker, shared: a trip seen through one handle shows in the other.
    let payments = registry.get("payments").expect("listed in the file");
    assert_eq!(payments.config().consecutive_failures(), Some(1));
    let again = file.breaker_in(&registry, "payments");
    payments.try_acquire().unwrap().failure();
    assert_eq!(again.state(), State::Open);

    // A name the file does not list: built once from the defaults, then shared.
    assert!(registry.get("search").is_none());
    let search = file.breaker_in(&registry, "search");
    assert_eq!(search.name(), "search");
    assert_eq!(search.config().open_duration(), Duration::from_secs(45));
    assert_eq!(registry.len(), 2);
    search.force_open();
    assert_eq!(
        file.breaker_in(&registry, "search").state(),
        State::ForcedOpen
    );
}

#[test]
fn enabled_false_reaches_listed_and_unlisted_breakers() {
    let file = RegistryConfig::from_toml(
        r#"
        [resilience]
        circuit_breaker_enabled = false
        [breakers.payments]
        enabled = true
        [breakers.legacy]
        "#,
    )
    .unwrap();
    assert!(!file.enabled());
    let registry = file.registry();
    assert_eq!(registry.get("payments").unwrap().state(), State::Closed);
    assert_eq!(registry.get("legacy").unwrap().state(), State::Disabled);
    assert_eq!(
        file.breaker_in(&registry, "unlisted").state(),
        State::Disabled,
        "the file's switch holds for names it does not list"
    );

    let file = RegistryConfig::from_toml("[defaults]\ncircuit_breaker_enabled = false").unwrap();
    assert!(!file.enabled());
}

// ---- Errors name what the user wrote ----

#[test]
fn validation_errors_name_the_alias_and_table_as_written() {
    let cases = [
        (
            "[resilience]\ncircuit_breaker_threshold = 0",
            "resilience.circuit_breaker_threshold",
            "invalid `circuit_breaker_threshold` = 0: must be at least 1",
        ),
        (
            "[resilience]\ncircuit_breaker_half_open_calls = 70000",
            "resilience.circuit_breaker_half_open_calls",
            "1..=65535",
        ),
        (
            "[resilience]\ncircuit_breaker_failure_rate = 1.5",
            "resilience.circuit_breaker_failure_rate",
            "(0.0, 1.0]",
        ),
        (
            "[breakers.payments]\ncircuit_breaker_timeout = 0",
            "breakers.payments.circuit_breaker_timeout",
            "invalid `circuit_breaker_timeout` = 0ns: must be longer than zero",
        ),
        (
            "[breakers.payments]\ntimeout_seconds = \"0s\"",
            "breakers.payments.timeout_seconds",
            "longer than zero",
        ),
        (
            "[breakers.payments]\nfailure_threshold = 0",
            "breakers.payments.failure_threshold",
            "at least 1",
        ),
        (
            "[defaults]\nhalf_open_max_calls = 0",
            "defaults.half_open_max_calls",
            "1..=65535",
        ),
        (
            "[breakers.\"api.v2\"]\nfailure_rate = 2",
            "breakers.\"api.v2\".failure_rate",
            "(0.0, 1.0]",
        ),
        (
            "[breakers.payments]\ncircuit_breaker_open_backoff = { multiplier = 2.0, max = \"1s\" }",
            "breakers.payments.circuit_breaker_open_backoff.max",
            "invalid `circuit_breaker_open_backoff.max` = 1s: must not be shorter than open_duration; open_duration is the default, 30s",
        ),
        (
            "[breakers.payments]\nslow_call = { threshold = \"0s\", rate = 0.5 }",
            "breakers.payments.slow_call.threshold",
            "longer than zero",
        ),
    ];
    for (text, path, message) in cases {
        let (got_path, got_message) = error_of(text);
        assert_eq!(got_path, path, "{text}");
        assert!(
            got_message.contains(message),
            "{text}: {got_message:?} lacks {message:?}"
        );
    }
    assert_eq!(
        RegistryConfig::from_toml("[resilience]\ncircuit_breaker_threshold = 0")
            .unwrap_err()
            .to_string(),
        "invalid configuration at `resilience.circuit_breaker_threshold`: invalid \
         `circuit_breaker_threshold` = 0: must be at least 1 (leave it unset and set a rate \
         rule to turn it off)"
    );
    assert_eq!(
        Config::from_toml("failure_threshold = 0")
            .unwrap_err()
            .field(),
        "failure_threshold"
    );
}

#[test]
fn an_inherited_value_is_reported_where_it_was_written() {
    // The window is the breaker's, the minimum the defaults': the error names the key
    // that holds the rejected value, which breaker inherits it, and the other key.
    let (path, message) = error_of(
        r#"
        [defaults]
        minimum_calls = 20
        [breakers.search]
        sliding_window = { calls = 10 }
        failure_rate = 0.5
        "#,
    );
    assert_eq!(path, "defaults.minimum_calls");
    assert!(
        message.contains("exceeds the count window's size"),
        "{message}"
    );
    assert!(
        message.contains("sliding_window is `breakers.search.sliding_window`"),
        "{message}"
    );
    assert!(
        message.contains("inherited by `breakers.search`"),
        "{message}"
    );

    let (path, message) = error_of(
        r#"
        [resilience]
        circuit_breaker_timeout = "10m"
        [breakers.payments]
        open_backoff = { multiplier = 2.0, max = "1m" }
        "#,
    );
    assert_eq!(path, "breakers.payments.open_backoff.max");
    assert!(
        message.contains("open_duration is `resilience.circuit_breaker_timeout`"),
        "{message}"
    );
    assert!(!message.contains("inherited"), "{message}");
}

#[test]
fn an_unknown_key_gets_the_nearest_known_spelling() {
    let (path, message) = error_of("[breakers.payments]\ncircuit_breaker_treshold = 3");
    assert_eq!(path, "breakers.payments.circuit_breaker_treshold");
    assert!(
        message.contains("did you mean `circuit_breaker_threshold`?"),
        "{message}"
    );
    let (_, message) = error_of("[resilience]\ncircuit_breaker_timout = 3");
    assert!(
        message.contains("did you mean `circuit_breaker_timeout`?"),
        "{message}"
    );
    let (path, message) =
        error_of("[breakers.payments]\nopen_backoff = { multiplier = 2.0, maximum = \"5m\" }");
    assert_eq!(path, "breakers.payments.open_backoff.maximum");
    assert!(
        message.contains("`multiplier`, `linear`, `max`, `jitter`"),
        "{message}"
    );
}

// ---- No silently inert setting ----

#[test]
fn open_backoff_multiplier_without_max_is_rejected() {
    // It used to be accepted and never grew: the missing cap capped at the base.
    let (path, message) = error_of("[breakers.payments]\nopen_backoff = { multiplier = 2.0 }");
    assert_eq!(path, "breakers.payments.open_backoff.max");
    assert!(message.contains("missing"), "{message}");
    assert_eq!(
        error_of("[defaults]\nopen_backoff = { multiplier = 1.5, jitter = 0.1 }").0,
        "defaults.open_backoff.max"
    );
    assert_eq!(
        Config::from_toml("open_backoff = { multiplier = 2.0 }")
            .unwrap_err()
            .field(),
        "open_backoff.max"
    );
    // With its cap it grows.
    let config = Config::from_toml("open_backoff = { multiplier = 2.0, max = \"5m\" }").unwrap();
    assert_eq!(
        config.open_backoff(),
        Backoff::exponential(2.0, Duration::from_secs(300))
    );
}

#[test]
fn a_linear_open_backoff_needs_its_cap_and_no_multiplier() {
    let (path, message) = error_of("[breakers.payments]\nopen_backoff = { linear = true }");
    assert_eq!(path, "breakers.payments.open_backoff.max");
    assert!(message.contains("with `linear = true`"), "{message}");
    let (path, message) = error_of(
        "[breakers.payments]\nopen_backoff = { linear = true, multiplier = 2.0, max = \"5m\" }",
    );
    assert_eq!(path, "breakers.payments.open_backoff.linear");
    assert!(
        message.contains("cannot be combined with `multiplier`"),
        "{message}"
    );
    let (path, _) =
        error_of("[breakers.payments]\nopen_backoff = { linear = \"yes\", max = \"5m\" }");
    assert_eq!(path, "breakers.payments.open_backoff.linear");
    let (path, message) = error_of(
        "[breakers.payments]\nopen_duration = \"5m\"\nopen_backoff = { linear = true, max = \"5m\" }",
    );
    assert_eq!(path, "breakers.payments.open_backoff.max");
    assert!(message.contains("can never grow"), "{message}");
}

#[test]
fn open_backoff_max_without_a_multiplier_is_rejected() {
    let (path, message) = error_of("[breakers.payments]\nopen_backoff = { max = \"5m\" }");
    assert_eq!(path, "breakers.payments.open_backoff.max");
    assert!(message.contains("no effect"), "{message}");
    assert_eq!(
        error_of(
            "[breakers.payments]\nopen_backoff = { multiplier = 1.0, max = \"5m\", jitter = 0.2 }"
        )
        .0,
        "breakers.payments.open_backoff.max"
    );
    // A constant backoff with jitter alone does something: it is accepted.
    let config = Config::from_toml("open_backoff = { jitter = 0.2 }").unwrap();
    assert_eq!(config.open_backoff(), Backoff::constant().jitter(0.2));
}

#[test]
fn open_backoff_max_equal_to_open_duration_is_rejected() {
    let (path, message) = error_of(
        "[breakers.payments]\nopen_duration = \"1m\"\nopen_backoff = { multiplier = 2.0, max = \"1m\" }",
    );
    assert_eq!(path, "breakers.payments.open_backoff.max");
    assert!(message.contains("can never grow"), "{message}");

    // Inherited: the defaults' backoff is inert for the one breaker whose own
    // open_duration reaches its cap.
    let (path, message) = error_of(
        r#"
        [defaults]
        open_backoff = { multiplier = 2.0, max = "1m" }
        [breakers.slow]
        circuit_breaker_timeout = "1m"
        "#,
    );
    assert_eq!(path, "defaults.open_backoff.max");
    assert!(
        message.contains("inherited by `breakers.slow`"),
        "{message}"
    );
    assert!(
        message.contains("open_duration is `breakers.slow.circuit_breaker_timeout`"),
        "{message}"
    );
}

#[test]
fn minimum_calls_without_a_rate_rule_is_rejected() {
    let (path, message) =
        error_of("[breakers.payments]\nconsecutive_failures = 3\nminimum_calls = 20");
    assert_eq!(path, "breakers.payments.minimum_calls");
    assert!(message.contains("has no effect"), "{message}");
    assert!(
        message.ends_with(
            "(`failure_rate`, `failure_rate_adaptive` or `slow_call`), and breaker `payments` has none"
        ),
        "{message}"
    );

    let (path, message) =
        error_of("[defaults]\nminimum_calls = 20\n[breakers.payments]\nconsecutive_failures = 3");
    assert_eq!(path, "defaults.minimum_calls");
    assert!(
        message.ends_with("and neither the defaults nor any breaker inheriting it has one"),
        "{message}"
    );

    // A breaker that overrides it does not count as a taker of the default.
    assert_eq!(
        error_of(
            "[defaults]\nminimum_calls = 20\n[breakers.search]\nfailure_rate = 0.5\nminimum_calls = 5"
        )
        .0,
        "defaults.minimum_calls"
    );
    // One inheriting breaker with a rate rule is enough.
    let file = RegistryConfig::from_toml(
        "[defaults]\nminimum_calls = 20\n[breakers.search]\nfailure_rate = 0.5\n[breakers.db]",
    )
    .unwrap();
    assert_eq!(file.config_for("search").minimum_calls(), 20);

    assert_eq!(
        Config::from_toml("minimum_calls = 20").unwrap_err().field(),
        "minimum_calls"
    );
    assert!(Config::from_toml(
        "minimum_calls = 20\nslow_call = { threshold = \"1s\", rate = 0.5 }"
    )
    .is_ok());
}

#[test]
fn one_setting_under_two_spellings_is_rejected() {
    let (path, message) =
        error_of("[breakers.payments]\nconsecutive_failures = 5\nfailure_threshold = 3");
    assert_eq!(path, "breakers.payments.failure_threshold");
    assert!(
        message.contains("same setting as `breakers.payments.consecutive_failures`"),
        "{message}"
    );
    assert_eq!(
        error_of("[resilience]\ncircuit_breaker_timeout = 5\ncircuit_breaker_open_duration = 6").0,
        "resilience.circuit_breaker_timeout"
    );
    assert_eq!(
        Config::from_toml("half_open_permits = 2\nhalf_open_max_calls = 2")
            .unwrap_err()
            .field(),
        "half_open_permits"
    );
}

#[test]
fn a_resilience_setting_overridden_by_defaults_is_rejected() {
    let (path, message) =
        error_of("[resilience]\ncircuit_breaker_timeout = 60\n[defaults]\nopen_duration = \"30s\"");
    assert_eq!(path, "resilience.circuit_breaker_timeout");
    assert!(
        message.contains("`defaults.open_duration` overrides it for every breaker"),
        "{message}"
    );
    assert_eq!(
        error_of("[resilience]\ncircuit_breaker_enabled = false\n[defaults]\nenabled = true").0,
        "resilience.circuit_breaker_enabled"
    );
    // A breaker overriding a default is layering, not inert: unlisted names still take it.
    let file = RegistryConfig::from_toml(
        "[defaults]\nopen_duration = \"30s\"\n[breakers.payments]\nopen_duration = \"10s\"",
    )
    .unwrap();
    assert_eq!(
        file.config_for("other").open_duration(),
        Duration::from_secs(30)
    );
}

#[test]
fn a_default_name_is_rejected() {
    let (path, message) = error_of("[defaults]\nname = \"payments\"");
    assert_eq!(path, "defaults.name");
    assert!(
        message.contains("named by its `[breakers.NAME]` table"),
        "{message}"
    );
    assert_eq!(
        error_of("[resilience]\ncircuit_breaker_name = \"payments\"").0,
        "resilience.circuit_breaker_name"
    );
    assert_eq!(
        error_of("[breakers.payments]\ncircuit_breaker_name = \"other\"").0,
        "breakers.payments.circuit_breaker_name"
    );
}

#[test]
fn an_unprefixed_breaker_key_in_resilience_is_rejected() {
    let (path, message) = error_of("[resilience]\nopen_duration = \"10s\"");
    assert_eq!(path, "resilience.open_duration");
    assert!(
        message.contains("`circuit_breaker_open_duration`"),
        "{message}"
    );
    assert_eq!(
        error_of("[resilience]\nhalf_open_max_calls = 2").0,
        "resilience.half_open_max_calls"
    );
    // Generic names belong to the application's other components and are left alone.
    let file = RegistryConfig::from_toml(
        "[resilience]\ntimeout_seconds = 10\nenabled = false\nbackpressure = true\nretry_max_attempts = 3",
    )
    .unwrap();
    assert!(file.enabled());
    assert_eq!(
        file.defaults().open_duration(),
        Config::DEFAULT_OPEN_DURATION
    );
    assert!(!file.defaults().backpressure());
}

#[test]
fn a_circuit_breaker_table_inside_resilience_is_rejected() {
    // It used to be ignored (no `circuit_breaker_` prefix), so its settings did nothing.
    let (path, message) = error_of("[resilience.circuit_breaker]\nthreshold = 5");
    assert_eq!(path, "resilience.circuit_breaker");
    assert!(message.contains("unknown circuit breaker key"), "{message}");
}

#[test]
fn enabled_in_a_lone_config_is_rejected() {
    let error = Config::from_toml("enabled = false").unwrap_err();
    assert_eq!(error.field(), "enabled");
    assert!(error.to_string().contains("no on/off switch"), "{error}");
    assert_eq!(
        Config::from_toml("circuit_breaker_enabled = true")
            .unwrap_err()
            .field(),
        "circuit_breaker_enabled"
    );
}

#[test]
fn a_sliding_window_without_a_rate_rule_still_sets_the_metrics_window() {
    // Not inert: it is the window the breaker's metrics report rates over.
    let breaker = tower_circuit_breaker::CircuitBreaker::new(
        Config::from_toml("sliding_window = { calls = 10 }").unwrap(),
    );
    breaker.try_acquire().unwrap().failure();
    breaker.try_acquire().unwrap().success();
    let metrics = breaker.metrics();
    assert_eq!(metrics.window_calls, 2);
    assert_eq!(metrics.failure_rate, 0.5);
    let without = tower_circuit_breaker::CircuitBreaker::new(Config::default());
    without.try_acquire().unwrap().success();
    assert_eq!(without.metrics().window_calls, 0);
}
