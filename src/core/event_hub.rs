//! The fan-out of [`Event`]s to subscribers, free when nobody listens.
//!
//! The broadcast channel is created on the first subscription (a breaker nobody
//! watches never allocates its buffer) and a `listening` flag gates every emission:
//! without a receiver the hot paths do one relaxed load and build nothing. The flag is
//! cleared lazily, by the first emission that finds every receiver gone, so dropping a
//! receiver needs no hook. Subscribing and clearing are serialized by a mutex so a new
//! subscriber can never be switched off by a concurrent clear. A lagging receiver never
//! blocks the breaker: the channel overwrites its oldest events and the receiver sees
//! [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};

use tokio::sync::broadcast;

use crate::event::Event;

/// Events buffered per receiver before the oldest are overwritten.
pub(crate) const EVENT_CAPACITY: usize = 1024;

/// One breaker's event sender.
#[derive(Debug, Default)]
#[repr(C)] // `listening` first: the hot paths read it with the state word
pub(crate) struct EventHub {
    listening: AtomicBool,
    sender: OnceLock<broadcast::Sender<Event>>,
    subscriptions: Mutex<()>,
}

impl EventHub {
    /// Whether anyone may be listening: one relaxed load.
    #[inline]
    pub(crate) fn is_listening(&self) -> bool {
        self.listening.load(Relaxed)
    }

    /// A new receiver of every event sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        let _serialized = self.lock();
        let receiver = self
            .sender
            .get_or_init(|| broadcast::channel(EVENT_CAPACITY).0)
            .subscribe();
        self.listening.store(true, Relaxed);
        receiver
    }

    /// Sends the event built by `event` if anyone listens. Callers check
    /// [`is_listening`](Self::is_listening) first so `event` is not even captured on
    /// the fast path; this re-checks.
    #[cold]
    #[inline(never)]
    pub(crate) fn emit(&self, event: impl FnOnce() -> Event) {
        if !self.is_listening() {
            return;
        }
        let Some(sender) = self.sender.get() else {
            return;
        };
        if sender.send(event()).is_err() {
            // Every receiver is gone: stop building events until the next subscription.
            let _serialized = self.lock();
            if sender.receiver_count() == 0 {
                self.listening.store(false, Relaxed);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The mutex guards no data, so a poisoned lock is as good as any.
        crate::lock::unpoisoned(self.subscriptions.lock())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::State;

    fn rejected() -> Event {
        Event::Rejected {
            name: "test".into(),
            state: State::Open,
        }
    }

    #[test]
    fn listening_follows_the_receivers() {
        let hub = EventHub::default();
        assert!(!hub.is_listening());
        assert!(
            hub.sender.get().is_none(),
            "no channel until someone subscribes"
        );
        let mut built = false;
        hub.emit(|| {
            built = true;
            rejected()
        });
        assert!(!built, "nothing is built without a receiver");

        let mut receiver = hub.subscribe();
        assert!(hub.is_listening());
        hub.emit(rejected);
        assert_eq!(receiver.try_recv().unwrap(), rejected());

        drop(receiver);
        assert!(hub.is_listening(), "cleared lazily, by the next emission");
        hub.emit(rejected);
        assert!(!hub.is_listening());

        let mut again = hub.subscribe();
        assert!(hub.is_listening());
        hub.emit(rejected);
        assert_eq!(again.try_recv().unwrap(), rejected());
    }
}
