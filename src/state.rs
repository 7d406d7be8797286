//! The breaker's states and the coarse health derived from them.

use std::fmt;

/// The state of a circuit breaker.
///
/// `Closed`, `Open` and `HalfOpen` are driven by the trip rules; the other four are set
/// by an operator through [`CircuitBreaker`](crate::CircuitBreaker) and stay until
/// [`reset`](crate::CircuitBreaker::reset) or another manual control changes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum State {
    /// Calls flow; outcomes are recorded and the trip rules are evaluated.
    Closed = 0,
    /// Calls are rejected until the open duration has elapsed.
    Open = 1,
    /// A bounded number of probe calls test whether the downstream has recovered.
    HalfOpen = 2,
    /// Every call is rejected until an operator changes the state.
    ForcedOpen = 3,
    /// Every call flows and is counted in the metrics; the breaker never trips.
    ForcedClosed = 4,
    /// Every call flows; nothing is recorded.
    Disabled = 5,
    /// Every call flows; outcomes are recorded and the rules evaluated, but a rule that
    /// fires only logs that the breaker *would* have opened.
    MetricsOnly = 6,
}

impl State {
    /// Every state, in declaration order: e.g. to label a one-hot state gauge, or to
    /// parse a state from its [`as_str`](Self::as_str) name.
    ///
    /// ```
    /// use tower_circuit_breaker::State;
    ///
    /// let parsed = State::ALL.into_iter().find(|state| state.as_str() == "half_open");
    /// assert_eq!(parsed, Some(State::HalfOpen));
    /// ```
    pub const ALL: [State; 7] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::ForcedOpen,
        State::ForcedClosed,
        State::Disabled,
        State::MetricsOnly,
    ];

    #[inline]
    pub(crate) fn from_bits(bits: u8) -> State {
        // Only values written by `State as u8` are ever stored.
        match bits {
            1 => State::Open,
            2 => State::HalfOpen,
            3 => State::ForcedOpen,
            4 => State::ForcedClosed,
            5 => State::Disabled,
            6 => State::MetricsOnly,
            _ => State::Closed,
        }
    }

    /// A stable lower-case name, e.g. `"half_open"`, for logs and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half_open",
            State::ForcedOpen => "forced_open",
            State::ForcedClosed => "forced_closed",
            State::Disabled => "disabled",
            State::MetricsOnly => "metrics_only",
        }
    }

    /// Whether calls are currently rejected outright in this state.
    pub fn rejects_calls(self) -> bool {
        matches!(self, State::Open | State::ForcedOpen)
    }

    /// The coarse health this state stands for.
    pub fn health(self) -> Health {
        match self {
            State::Open | State::ForcedOpen => Health::Red,
            State::HalfOpen => Health::Yellow,
            State::Closed | State::ForcedClosed | State::Disabled | State::MetricsOnly => {
                Health::Green
            }
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A traffic-light summary of a breaker, for health endpoints and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Health {
    /// Calls flow (closed, or a manual state that lets calls through).
    Green,
    /// Recovery is being probed (half-open).
    Yellow,
    /// Calls are rejected (open or forced open).
    Red,
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Health::Green => "green",
            Health::Yellow => "yellow",
            Health::Red => "red",
        })
    }
}
