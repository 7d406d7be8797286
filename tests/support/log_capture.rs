//! Captures the crate's log messages from one module, to check that something is
//! logged once (a fleet outage, a runtime without timers).

use std::fmt;
use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};

/// The messages logged while the guard lives by the modules whose path contains the
/// captured part (on this thread: the tests run on a current-thread runtime).
pub struct Captured {
    messages: Arc<Mutex<Vec<String>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Captured {
    /// How many captured messages contain `needle`.
    pub fn count(&self, needle: &str) -> usize {
        let messages = self.messages.lock().unwrap();
        messages.iter().filter(|m| m.contains(needle)).count()
    }
}

/// Captures the messages of `tower_circuit_breaker`'s modules whose path contains
/// `module` (e.g. `"fleet"`).
pub fn capture(module: &'static str) -> Captured {
    let messages = Arc::new(Mutex::new(Vec::new()));
    let subscriber = Collector {
        module,
        messages: Arc::clone(&messages),
    };
    Captured {
        messages,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}

struct Collector {
    module: &'static str,
    messages: Arc<Mutex<Vec<String>>>,
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Collector {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let target = event.metadata().target();
        if target.starts_with("tower_circuit_breaker") && target.contains(self.module) {
            let mut message = Message(String::new());
            event.record(&mut message);
            self.messages.lock().unwrap().push(message.0);
        }
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
