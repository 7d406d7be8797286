//! The keys a breaker table takes, their aliases, and which table may hold which.

use crate::ConfigError;

use super::values::file_error;

/// The prefix of the breaker's keys in `[resilience]`, a table other components share.
pub(super) const PREFIX: &str = "circuit_breaker_";

/// One breaker setting, whichever key spelled it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Field {
    Name,
    ConsecutiveFailures,
    FailureRate,
    SlidingWindow,
    MinimumCalls,
    SlowCall,
    OpenDuration,
    OpenBackoff,
    HalfOpenPermits,
    HalfOpenSuccesses,
    HalfOpenMaxWait,
    Backpressure,
    Enabled,
}

impl Field {
    const ALL: [Field; 13] = [
        Field::Name,
        Field::ConsecutiveFailures,
        Field::FailureRate,
        Field::SlidingWindow,
        Field::MinimumCalls,
        Field::SlowCall,
        Field::OpenDuration,
        Field::OpenBackoff,
        Field::HalfOpenPermits,
        Field::HalfOpenSuccesses,
        Field::HalfOpenMaxWait,
        Field::Backpressure,
        Field::Enabled,
    ];

    /// The key named after [`ConfigBuilder`](crate::ConfigBuilder)'s setter; also the
    /// field name a [`ConfigError::Invalid`] carries.
    pub(super) fn key(self) -> &'static str {
        match self {
            Field::Name => "name",
            Field::ConsecutiveFailures => "consecutive_failures",
            Field::FailureRate => "failure_rate",
            Field::SlidingWindow => "sliding_window",
            Field::MinimumCalls => "minimum_calls",
            Field::SlowCall => "slow_call",
            Field::OpenDuration => "open_duration",
            Field::OpenBackoff => "open_backoff",
            Field::HalfOpenPermits => "half_open_permits",
            Field::HalfOpenSuccesses => "half_open_successes",
            Field::HalfOpenMaxWait => "half_open_max_wait",
            Field::Backpressure => "backpressure",
            Field::Enabled => "enabled",
        }
    }

    /// The seed documents' spellings of the same setting.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::ConsecutiveFailures => &["failure_threshold", "circuit_breaker_threshold"],
            Field::OpenDuration => &["timeout_seconds", "circuit_breaker_timeout"],
            Field::HalfOpenPermits => &["half_open_max_calls", "circuit_breaker_half_open_calls"],
            Field::Enabled => &["circuit_breaker_enabled"],
            _ => &[],
        }
    }

    /// The setting `key` names: a setting's key or alias, or either behind [`PREFIX`].
    fn of_key(key: &str) -> Option<Field> {
        let exact = |key: &str| {
            Field::ALL
                .into_iter()
                .find(|field| field.key() == key || field.aliases().contains(&key))
        };
        exact(key).or_else(|| {
            key.strip_prefix(PREFIX)
                .filter(|rest| !rest.starts_with(PREFIX))
                .and_then(exact)
        })
    }

    /// The setting a builder field name such as `"open_backoff.max"` belongs to, and
    /// the rest of that name (`"max"`, or `""`).
    pub(super) fn of_builder_field(field: &str) -> Option<(Field, &str)> {
        let (top, rest) = field.split_once('.').unwrap_or((field, ""));
        Field::ALL
            .into_iter()
            .find(|candidate| candidate.key() == top)
            .map(|found| (found, rest))
    }

    /// Whether the setting can change anything for a breaker configured as `config`:
    /// `minimum_calls` only gates the rate rules.
    pub(super) fn used_by(self, config: &crate::Config) -> bool {
        match self {
            Field::MinimumCalls => config.failure_rate().is_some() || config.slow_call().is_some(),
            _ => true,
        }
    }

    /// Why the setting can be without effect (see [`Field::used_by`]).
    pub(super) fn needs(self) -> &'static str {
        match self {
            Field::MinimumCalls => "a rate rule (`failure_rate` or `slow_call`)",
            _ => "nothing",
        }
    }
}

/// The kind of table a key sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    /// The application's `[resilience]` table, shared with other components: only the
    /// keys starting with `circuit_breaker` are the breaker's.
    Resilience,
    /// `[defaults]`: settings every breaker inherits.
    Defaults,
    /// `[breakers.NAME]`: one breaker's own settings.
    Breaker,
    /// A lone [`Config`](crate::Config) (`Config::from_toml`, `Config`'s `Deserialize`).
    Single,
}

/// Breaker settings that, written in `[resilience]` without the prefix, would sit
/// there unread; no other component plausibly means them. Generic names (`name`,
/// `enabled`, `backpressure`, `failure_threshold`, `timeout_seconds`) are left to the
/// application's other components.
const RESERVED_IN_RESILIENCE: [&str; 11] = [
    "consecutive_failures",
    "failure_rate",
    "sliding_window",
    "minimum_calls",
    "slow_call",
    "open_duration",
    "open_backoff",
    "half_open_permits",
    "half_open_successes",
    "half_open_max_wait",
    "half_open_max_calls",
];

/// What `key`, found at path `at` in a table at `level`, sets: `Ok(None)` for a key
/// of another component (only in `[resilience]`), an error for a key that is unknown
/// or has no place at this level.
pub(super) fn resolve(level: Level, key: &str, at: &str) -> Result<Option<Field>, ConfigError> {
    if level == Level::Resilience && !key.starts_with("circuit_breaker") {
        if RESERVED_IN_RESILIENCE.contains(&key) {
            return Err(file_error(
                at,
                format!(
                    "a circuit breaker setting without the `{PREFIX}` prefix, which \
                     `[resilience]` (shared with other components) requires: write \
                     `{PREFIX}{key}`, or move it to `[defaults]`"
                ),
            ));
        }
        return Ok(None);
    }
    let Some(field) = Field::of_key(key) else {
        let what = match level {
            Level::Resilience => "unknown circuit breaker key",
            _ => "unknown key",
        };
        return Err(file_error(
            at,
            match suggestion(level, key) {
                Some(known) => format!("{what}; did you mean `{known}`?"),
                None => what.to_owned(),
            },
        ));
    };
    match (level, field) {
        (Level::Resilience | Level::Defaults, Field::Name) => Err(file_error(
            at,
            "not allowed here: each breaker is named by its `[breakers.NAME]` table \
             (or by the name passed to `config_for`), so a default name would name none",
        )),
        (Level::Single, Field::Enabled) => Err(file_error(
            at,
            "a single `Config` has no on/off switch: call `CircuitBreaker::disable`, or set \
             it in a registry's `[defaults]` or `[breakers.NAME]`",
        )),
        _ => Ok(Some(field)),
    }
}

/// The known key closest to a misspelled one, if it is close.
fn suggestion(level: Level, key: &str) -> Option<String> {
    let mut known: Vec<String> = Vec::new();
    for field in Field::ALL {
        for spelling in std::iter::once(field.key()).chain(field.aliases().iter().copied()) {
            match level {
                Level::Resilience if spelling.starts_with(PREFIX) => known.push(spelling.into()),
                Level::Resilience => known.push(format!("{PREFIX}{spelling}")),
                _ => known.push(spelling.into()),
            }
        }
    }
    let limit = (key.chars().count() / 4).clamp(1, 3);
    known
        .into_iter()
        .map(|candidate| (edit_distance(key, &candidate), candidate))
        .filter(|(distance, _)| *distance <= limit)
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_at_every_level() {
        for key in [
            "consecutive_failures",
            "failure_threshold",
            "circuit_breaker_threshold",
            "circuit_breaker_consecutive_failures",
        ] {
            for level in [Level::Defaults, Level::Breaker, Level::Single] {
                let found = resolve(level, key, key).unwrap();
                assert_eq!(
                    found,
                    Some(Field::ConsecutiveFailures),
                    "{key} in {level:?}"
                );
            }
        }
        // In [resilience], prefixed keys are the breaker's, generic ones another
        // component's, and the breaker's own vocabulary unprefixed is a mistake.
        let resilience = |key| resolve(Level::Resilience, key, key);
        assert_eq!(
            resilience("circuit_breaker_threshold").unwrap(),
            Some(Field::ConsecutiveFailures)
        );
        assert_eq!(
            resilience("circuit_breaker_consecutive_failures").unwrap(),
            Some(Field::ConsecutiveFailures)
        );
        assert_eq!(resilience("failure_threshold").unwrap(), None);
        assert_eq!(resilience("retry_max_attempts").unwrap(), None);
        assert!(resilience("consecutive_failures").is_err());
        assert!(resilience("circuit_breaker_nonsense").is_err());
        assert_eq!(
            Field::of_key("circuit_breaker_timeout"),
            Some(Field::OpenDuration)
        );
        assert_eq!(
            Field::of_key("circuit_breaker_circuit_breaker_timeout"),
            None
        );
        assert_eq!(
            Field::of_builder_field("open_backoff.max"),
            Some((Field::OpenBackoff, "max"))
        );
    }

    #[test]
    fn misspellings_get_a_suggestion() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(
            suggestion(Level::Breaker, "opne_duration").as_deref(),
            Some("open_duration")
        );
        assert_eq!(
            suggestion(Level::Resilience, "circuit_breaker_treshold").as_deref(),
            Some("circuit_breaker_threshold")
        );
        assert_eq!(suggestion(Level::Breaker, "colour"), None);
    }
}
