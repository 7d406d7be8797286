//! The hook through which transitions reach a watcher of every breaker (the `metrics`
//! export, `src/export.rs`), so that the state machine announces without knowing
//! who listens. Called on transitions only, never on admission or recording.

use std::sync::OnceLock;

use crate::state::State;

/// Told of every transition of every breaker as it happens (after the transition lock
/// is released): the breaker's name, the state left and the state entered.
pub(crate) type TransitionObserver = fn(name: &str, from: State, to: State);

static OBSERVER: OnceLock<TransitionObserver> = OnceLock::new();

/// Installs `observer` for every breaker. The first installation wins; later ones
/// (every breaker built installs the same observer again) change nothing.
// Only the `metrics` export installs an observer.
#[cfg_attr(not(feature = "metrics"), allow(dead_code))]
pub(crate) fn install(observer: TransitionObserver) {
    let _ = OBSERVER.set(observer);
}

/// Tells the installed observer, if any, of a transition from `from` to `to`.
pub(crate) fn notify(name: &str, from: State, to: State) {
    if let Some(observer) = OBSERVER.get() {
        observer(name, from, to);
    }
}
