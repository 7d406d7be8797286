//! An in-memory [`StateStore`] on Tokio's clock, so the sync logic can be tested with
//! paused time. It can be switched "down" (every call fails) to simulate an outage.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tower_circuit_breaker::fleet::{FleetState, Record, StateStore, StoreError, StoreFuture};

#[derive(Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    down: AtomicBool,
    publications: AtomicUsize,
    state: Mutex<HashMap<String, Entry>>,
}

#[derive(Default)]
struct Entry {
    /// The record and, for an open, its deadline.
    record: Option<(Record, Option<Instant>)>,
    lease: Option<(String, Instant)>,
}

impl MemoryStore {
    pub fn set_down(&self, down: bool) {
        self.shared.down.store(down, SeqCst);
    }

    pub fn publications(&self) -> usize {
        self.shared.publications.load(SeqCst)
    }

    /// The current lease holder of `name`, if any.
    pub fn lease_holder(&self, name: &str) -> Option<String> {
        let state = self.shared.state.lock().unwrap();
        let (holder, until) = state.get(name)?.lease.clone()?;
        (Instant::now() < until).then_some(holder)
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.shared.down.load(SeqCst) {
            Err(StoreError::Unavailable("memory store switched off".into()))
        } else {
            Ok(())
        }
    }
}

impl StateStore for MemoryStore {
    fn publish<'a>(&'a self, name: &'a str, record: &'a Record) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.shared.publications.fetch_add(1, SeqCst);
            let mut state = self.shared.state.lock().unwrap();
            let entry = state.entry(name.to_owned()).or_default();
            let deadline = match &record.state {
                FleetState::Open { open_for, .. } => Some(Instant::now() + *open_for),
                _ => {
                    entry.lease = None;
                    None
                }
            };
            entry.record = Some((record.clone(), deadline));
            Ok(())
        })
    }

    fn load<'a>(&'a self, name: &'a str) -> StoreFuture<'a, Option<Record>> {
        Box::pin(async move {
            self.check()?;
            let state = self.shared.state.lock().unwrap();
            let Some((record, deadline)) = state.get(name).and_then(|e| e.record.clone()) else {
                return Ok(None);
            };
            let mut record = record;
            if let (FleetState::Open { open_for, .. }, Some(deadline)) =
                (&mut record.state, deadline)
            {
                *open_for = deadline.saturating_duration_since(Instant::now());
            }
            Ok(Some(record))
        })
    }

    fn acquire_probe_lease<'a>(
        &'a self,
        name: &'a str,
        holder: &'a str,
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check()?;
            let now = Instant::now();
            let mut state = self.shared.state.lock().unwrap();
            let entry = state.entry(name.to_owned()).or_default();
            match &entry.lease {
                Some((current, until)) if now < *until => Ok(current == holder),
                _ => {
                    entry.lease = Some((holder.to_owned(), now + ttl));
                    Ok(true)
                }
            }
        })
    }
}
