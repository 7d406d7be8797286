//! [`HealthReport`]: the health of many breakers at once, for health endpoints.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use crate::breaker::CircuitBreaker;

use crate::state::{Health, State};

/// One breaker's line in a [`HealthReport`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BreakerHealth {
    /// The breaker's name.
    pub name: Arc<str>,
    /// Its state.
    pub state: State,
    /// The traffic light of that state (yellow while closed but ramping up after a
    /// recovery).
    pub health: Health,
    /// Failure rate in `0.0..=1.0` (see [`Metrics::failure_rate`](crate::Metrics::failure_rate)).
    pub failure_rate: f64,
    /// Slow-call rate in `0.0..=1.0`.
    pub slow_call_rate: f64,
    /// Every call the breaker saw, rejected ones included.
    pub calls: u64,
    /// Calls rejected without reaching the downstream.
    pub rejected: u64,
    /// While open: time left until probing may begin; `None` once it may (the state
    /// then reads `half_open`, yellow, even before a call arrives).
    pub retry_after: Option<Duration>,
}

impl BreakerHealth {
    /// The current health of `breaker`.
    pub fn of(breaker: &CircuitBreaker) -> BreakerHealth {
        let metrics = breaker.metrics();
        BreakerHealth {
            name: Arc::from(breaker.name()),
            state: metrics.state,
            // A breaker ramping up after a recovery still sheds calls: yellow.
            health: match metrics.ramp_up_share {
                Some(_) => Health::Yellow,
                None => metrics.state.health(),
            },
            failure_rate: metrics.failure_rate,
            slow_call_rate: metrics.slow_call_rate,
            calls: metrics.calls,
            rejected: metrics.rejected,
            retry_after: metrics.retry_after,
        }
    }
}

/// The health of a set of breakers, e.g. every breaker of a
/// [`Registry`](crate::Registry) (see [`Registry::health`](crate::Registry::health)).
///
/// [`health`](HealthReport::health) is the worst of them: one open breaker makes the
/// report red. [`to_json`](HealthReport::to_json) renders it for an HTTP endpoint
/// without needing `serde`.
///
/// ```
/// use tower_circuit_breaker::{Config, Health, Registry};
///
/// let registry = Registry::new();
/// registry.get_or_insert("users", Config::default());
/// registry.get_or_insert("orders", Config::default()).force_open();
///
/// let report = registry.health();
/// assert_eq!(report.health, Health::Red);
/// assert_eq!(report.breakers[0].name.as_ref(), "orders"); // sorted by name
/// assert_eq!(
///     report.to_json(),
///     r#"{"health":"red","breakers":[{"name":"orders","state":"forced_open","health":"red","failure_rate":0,"slow_call_rate":0,"calls":0,"rejected":0,"retry_after":null},{"name":"users","state":"closed","health":"green","failure_rate":0,"slow_call_rate":0,"calls":0,"rejected":0,"retry_after":null}]}"#
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HealthReport {
    /// The worst health of all breakers; green when there are none.
    pub health: Health,
    /// One line per breaker, in the order given.
    pub breakers: Vec<BreakerHealth>,
}

impl HealthReport {
    /// The report on `breakers`, in the order given.
    pub fn of<'a>(breakers: impl IntoIterator<Item = &'a CircuitBreaker>) -> HealthReport {
        let breakers: Vec<BreakerHealth> = breakers.into_iter().map(BreakerHealth::of).collect();
        let health = breakers
            .iter()
            .map(|breaker| breaker.health)
            .max()
            .unwrap_or(Health::Green);
        HealthReport { health, breakers }
    }

    /// The report as a JSON object:
    /// `{"health": "green"|"yellow"|"red", "breakers": [{"name", "state", "health",
    /// "failure_rate", "slow_call_rate", "calls", "rejected", "retry_after"}]}`, where
    /// `state` is [`State::as_str`], rates are numbers in `0..=1` and `retry_after` is
    /// in seconds (a number) or `null`.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(64 + 192 * self.breakers.len());
        out.push_str("{\"health\":\"");
        out.push_str(health_str(self.health));
        out.push_str("\",\"breakers\":[");
        for (i, breaker) in self.breakers.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str("{\"name\":");
            push_json_string(&mut out, &breaker.name);
            let _ = write!(
                out,
                ",\"state\":\"{}\",\"health\":\"{}\",\"failure_rate\":{},\"slow_call_rate\":{},\
                 \"calls\":{},\"rejected\":{},\"retry_after\":",
                breaker.state.as_str(),
                health_str(breaker.health),
                JsonNumber(breaker.failure_rate),
                JsonNumber(breaker.slow_call_rate),
                breaker.calls,
                breaker.rejected,
            );
            match breaker.retry_after {
                Some(after) => {
                    let _ = write!(out, "{}", JsonNumber(after.as_secs_f64()));
                }
                None => out.push_str("null"),
            }
            out.push('}');
        }
        out.push_str("]}");
        out
    }
}

fn health_str(health: Health) -> &'static str {
    match health {
        Health::Green => "green",
        Health::Yellow => "yellow",
        Health::Red => "red",
    }
}

/// A JSON number: finite floats as Rust prints them (valid JSON), anything else `null`.
struct JsonNumber(f64);

impl std::fmt::Display for JsonNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_finite() {
            write!(f, "{}", self.0)
        } else {
            f.write_str("null")
        }
    }
}

/// Appends `text` as a quoted JSON string.
fn push_json_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_and_numbers_are_valid_json() {
        let mut out = String::new();
        push_json_string(&mut out, "a\"b\\c\nd\u{1}é");
        assert_eq!(out, r#""a\"b\\c\nd\u0001é""#);
        assert_eq!(JsonNumber(0.25).to_string(), "0.25");
        assert_eq!(JsonNumber(1.0).to_string(), "1");
        assert_eq!(JsonNumber(f64::NAN).to_string(), "null");
    }
}
