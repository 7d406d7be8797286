//! Reading one value: numbers, durations, windows, backoff and slow-call tables; key
//! paths and the errors naming them.

use std::time::Duration;

use toml::{Table, Value};

use crate::config::{AdaptiveFailureRate, Backoff, Window};
use crate::error::ConfigError;

pub(super) fn parse_window(value: &Value, at: &str) -> Result<Window, ConfigError> {
    let table = expect_table(value, at)?;
    check_keys(table, at, &["calls", "time", "buckets"])?;
    match (table.get("calls"), table.get("time")) {
        (Some(calls), None) => {
            if table.contains_key("buckets") {
                return Err(file_error(
                    &join(at, "buckets"),
                    "only a time window has buckets",
                ));
            }
            Ok(Window::count(expect_u32(calls, &join(at, "calls"))?))
        }
        (None, Some(time)) => {
            let window = Window::time(expect_duration(time, &join(at, "time"))?);
            match table.get("buckets") {
                Some(buckets) => Ok(window.buckets(expect_u32(buckets, &join(at, "buckets"))?)),
                None => Ok(window),
            }
        }
        _ => Err(file_error(
            at,
            "expected `{ calls = N }` or `{ time = \"60s\", buckets = N }`",
        )),
    }
}

/// `{ multiplier, linear, max, jitter, reset_after }`. A growing backoff (`multiplier`
/// above 1.0, or `linear = true`) needs its cap and a cap needs a growing backoff:
/// either alone would silently do nothing; `linear` with a `multiplier` is ambiguous.
pub(super) fn parse_backoff(value: &Value, at: &str) -> Result<Backoff, ConfigError> {
    let table = expect_table(value, at)?;
    check_keys(
        table,
        at,
        &["multiplier", "linear", "max", "jitter", "reset_after"],
    )?;
    let multiplier = match table.get("multiplier") {
        Some(value) => expect_f64(value, &join(at, "multiplier"))?,
        None => 1.0,
    };
    let linear = match table.get("linear") {
        Some(value) => expect_bool(value, &join(at, "linear"))?,
        None => false,
    };
    if linear && table.contains_key("multiplier") {
        return Err(file_error(
            &join(at, "linear"),
            "cannot be combined with `multiplier`: a linear backoff grows by `open_duration` \
             per trip, an exponential one by `multiplier`; keep one",
        ));
    }
    let max = match table.get("max") {
        Some(value) => Some(expect_duration(value, &join(at, "max"))?),
        None => None,
    };
    let jitter = match table.get("jitter") {
        Some(value) => expect_f64(value, &join(at, "jitter"))?,
        None => 0.0,
    };
    // An invalid multiplier is left to `ConfigBuilder::build`, which names it.
    if multiplier.is_finite() && multiplier >= 1.0 {
        let grows = multiplier > 1.0 || linear;
        if grows && max.is_none() {
            let why = if linear {
                "`linear = true`"
            } else {
                "`multiplier` above 1.0"
            };
            return Err(file_error(
                &join(at, "max"),
                format!(
                    "missing: with {why} the open duration grows, and `max` is the cap it \
                     grows to, e.g. `max = \"5m\"` (without it, it would never grow)"
                ),
            ));
        }
        if !grows && max.is_some() {
            return Err(file_error(
                &join(at, "max"),
                "has no effect without `multiplier` above 1.0 or `linear = true`: the open \
                 duration stays at `open_duration` and never reaches a cap",
            ));
        }
    }
    let reset_after = match table.get("reset_after") {
        Some(value) => Some(expect_duration(value, &join(at, "reset_after"))?),
        None => None,
    };
    Ok(Backoff {
        multiplier,
        max,
        jitter,
        reset_after,
        linear,
    })
}

/// `{ margin, tolerance, floor, cap, horizon, warm_up, streak_probability }`, each
/// optional (the rule's default when left out; `{}` is the rule with its defaults).
pub(super) fn parse_adaptive(value: &Value, at: &str) -> Result<AdaptiveFailureRate, ConfigError> {
    let table = expect_table(value, at)?;
    check_keys(
        table,
        at,
        &[
            "margin",
            "tolerance",
            "floor",
            "cap",
            "horizon",
            "warm_up",
            "streak_probability",
        ],
    )?;
    let mut rule = AdaptiveFailureRate::new();
    let rates = [
        ("margin", &mut rule.margin),
        ("tolerance", &mut rule.tolerance),
        ("floor", &mut rule.floor),
        ("cap", &mut rule.cap),
        ("streak_probability", &mut rule.streak_probability),
    ];
    for (key, setting) in rates {
        if let Some(value) = table.get(key) {
            *setting = expect_f64(value, &join(at, key))?;
        }
    }
    for (key, setting) in [
        ("horizon", &mut rule.horizon),
        ("warm_up", &mut rule.warm_up),
    ] {
        if let Some(value) = table.get(key) {
            *setting = expect_u32(value, &join(at, key))?;
        }
    }
    Ok(rule)
}

/// `{ threshold, rate }`, both required.
pub(super) fn parse_slow_call(value: &Value, at: &str) -> Result<(Duration, f64), ConfigError> {
    let slow = expect_table(value, at)?;
    check_keys(slow, at, &["threshold", "rate"])?;
    let threshold = required(slow, at, "threshold", expect_duration)?;
    let rate = required(slow, at, "rate", expect_f64)?;
    Ok((threshold, rate))
}

fn check_keys(table: &Table, at: &str, known: &[&str]) -> Result<(), ConfigError> {
    match table.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(file_error(
            &join(at, key),
            format!("unknown key (expected one of `{}`)", known.join("`, `")),
        )),
        None => Ok(()),
    }
}

fn required<T>(
    table: &Table,
    at: &str,
    key: &str,
    parse: impl FnOnce(&Value, &str) -> Result<T, ConfigError>,
) -> Result<T, ConfigError> {
    let at = join(at, key);
    match table.get(key) {
        Some(value) => parse(value, &at),
        None => Err(file_error(&at, "missing")),
    }
}

pub(super) fn expect_table<'a>(value: &'a Value, at: &str) -> Result<&'a Table, ConfigError> {
    value
        .as_table()
        .ok_or_else(|| type_error(at, "a table", value))
}

pub(super) fn expect_str<'a>(value: &'a Value, at: &str) -> Result<&'a str, ConfigError> {
    value
        .as_str()
        .ok_or_else(|| type_error(at, "a string", value))
}

pub(super) fn expect_bool(value: &Value, at: &str) -> Result<bool, ConfigError> {
    value
        .as_bool()
        .ok_or_else(|| type_error(at, "true or false", value))
}

pub(super) fn expect_u32(value: &Value, at: &str) -> Result<u32, ConfigError> {
    let n = value
        .as_integer()
        .ok_or_else(|| type_error(at, "an integer", value))?;
    u32::try_from(n).map_err(|_| file_error(at, format!("{n} is not in 0..=4294967295")))
}

pub(super) fn expect_f64(value: &Value, at: &str) -> Result<f64, ConfigError> {
    match value {
        Value::Float(x) => Ok(*x),
        Value::Integer(n) => Ok(*n as f64),
        other => Err(type_error(at, "a number", other)),
    }
}

/// A duration: a string such as `"1m30s"`, or a number of seconds.
pub(super) fn expect_duration(value: &Value, at: &str) -> Result<Duration, ConfigError> {
    let seconds = match value {
        Value::String(text) => {
            return parse_duration(text)
                .map_err(|rule| file_error(at, format!("{text:?} is not a duration: {rule}")))
        }
        Value::Integer(n) => *n as f64,
        Value::Float(x) => *x,
        other => {
            return Err(type_error(
                at,
                "a duration such as \"30s\" or a number of seconds",
                other,
            ))
        }
    };
    Duration::try_from_secs_f64(seconds)
        .map_err(|_| file_error(at, format!("{seconds} is not a number of seconds >= 0")))
}

/// Parses `"30s"`, `"1m30s"`, `"1.5h"`, `"250 ms"`: numbers, each followed by a unit.
fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty");
    }
    let mut total = 0.0f64;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if number_len == 0 {
            return Err("expected a number");
        }
        let number: f64 = rest[..number_len].parse().map_err(|_| "malformed number")?;
        rest = rest[number_len..].trim_start();
        let unit_len = rest
            .find(|c: char| !c.is_alphabetic())
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" | "nsec" => 1e-9,
            "us" | "µs" | "usec" => 1e-6,
            "ms" | "msec" => 1e-3,
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hr" | "hrs" | "hour" | "hours" => 3_600.0,
            "d" | "day" | "days" => 86_400.0,
            "" => return Err("missing unit (ns, us, ms, s, m, h, d)"),
            _ => return Err("unknown unit (expected ns, us, ms, s, m, h or d)"),
        };
        total += number * unit;
        rest = rest[unit_len..].trim_start();
    }
    Duration::try_from_secs_f64(total).map_err(|_| "too long")
}

/// Parses TOML text; a syntax error names its line.
pub(super) fn parse_table(text: &str) -> Result<Table, ConfigError> {
    text.parse().map_err(|error: toml::de::Error| {
        let line = error
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
        match line {
            Some(line) => file_error(
                "",
                format!("TOML syntax error on line {line}: {}", error.message()),
            ),
            None => file_error("", format!("TOML syntax error: {}", error.message())),
        }
    })
}

/// `path.key`, with `key` quoted as TOML would need it (`breakers."api.v2"`).
pub(super) fn join(path: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_owned()
    } else {
        format!("{key:?}")
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

fn type_error(at: &str, expected: &str, found: &Value) -> ConfigError {
    file_error(
        at,
        format!("expected {expected}, found {}", found.type_str()),
    )
}

pub(super) fn file_error(path: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::File {
        path: path.to_owned(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_humantime_style() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1m 30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(ms(250)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d"), Ok(Duration::from_secs(172_800)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration(" 5 min "), Ok(Duration::from_secs(300)));
        assert!(parse_duration("").is_err());
        assert!(
            parse_duration("30").is_err(),
            "a unit is required in a string"
        );
        assert!(parse_duration("30 parsecs").is_err());
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("1..5s").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_duration("1e400s").is_err());
    }

    #[test]
    fn key_paths_quote_what_toml_would() {
        assert_eq!(join("", "breakers"), "breakers");
        assert_eq!(join("breakers", "payments-v2"), "breakers.payments-v2");
        assert_eq!(join("breakers", "api.v2"), "breakers.\"api.v2\"");
        assert_eq!(join("breakers", ""), "breakers.\"\"");
    }
}
