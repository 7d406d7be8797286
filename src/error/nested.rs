//! Finding a breaker's rejection inside a typed error that generic code cannot name.
//!
//! Two breakers stacked without a boxing layer between them fail with
//! `Error<Error<E>>`: the inner breaker's rejection is `Error::Inner(Error::Open(_))`.
//! Code that is generic over the error (the default classifier of the outer breaker,
//! the retry policy) only knows `Error<E2>: 'static` for some `E2` it cannot name, and an
//! [`Any`] downcast needs the concrete type. So every breaker future that hands out a
//! rejection as `Error<E>` registers, once per error type, a function that downcasts to
//! exactly `Error<E>`; [`find`] looks the type up here.
//!
//! A type is registered before the first value of it that carries a rejection exists
//! (the future registers it, then builds the error), so a lookup never misses a
//! rejection. Registrations are never removed: there is one per error type, a handful
//! per program.
//!
//! [`find`] runs for every failed call (the default classifier asks whether the error
//! is another breaker's rejection), so each thread remembers its last lookup, valid
//! until the next registration: a failing call reads a thread-local and one shared
//! word that only registrations write, instead of taking the list's lock (whose
//! reader count every failing thread would otherwise write).

use std::any::{Any, TypeId};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::RwLock;

use crate::error::{BoxError, CircuitOpen, Error};
use crate::lock::unpoisoned;

/// Downcasts to one `Error<E>` and searches it.
type Finder = for<'a> fn(&'a dyn Any) -> Option<&'a CircuitOpen>;

/// Every registered `Error<E>`, by type. A list: there are a handful, and lookups only
/// happen for errors (never on a success path).
static FINDERS: RwLock<Vec<(TypeId, Finder)>> = RwLock::new(Vec::new());

/// How many types were registered: bumped after each one joins [`FINDERS`], so a
/// lookup remembered at an earlier count may have missed it.
static REGISTRATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The type this thread registered last: a rejection path registering the same type
    /// again reads one thread-local instead of the shared lock.
    static LAST_REGISTERED: Cell<Option<TypeId>> = const { Cell::new(None) };

    /// This thread's last lookup in [`FINDERS`]: the type, [`REGISTRATIONS`] when it
    /// was looked up, and what was found (`None`: not registered then).
    static LAST_LOOKUP: Cell<Option<(TypeId, u64, Option<Finder>)>> = const { Cell::new(None) };
}

/// Makes rejections inside `Error<E>` findable by [`find`].
#[inline]
pub(crate) fn register<E: 'static>() {
    let id = TypeId::of::<Error<E>>();
    if LAST_REGISTERED.with(Cell::get) == Some(id) {
        return;
    }
    register_slow(id, find_in_typed::<E>);
    LAST_REGISTERED.with(|last| last.set(Some(id)));
}

#[cold]
#[inline(never)]
fn register_slow(id: TypeId, finder: Finder) {
    let known = |finders: &[(TypeId, Finder)]| finders.iter().any(|(known, _)| *known == id);
    // The list holds plain pairs that are valid after any panic: a poisoned lock is fine.
    if known(&unpoisoned(FINDERS.read())) {
        return;
    }
    let mut finders = unpoisoned(FINDERS.write());
    if !known(&finders) {
        finders.push((id, finder));
        // Release, after the push: a lookup that reads the new count finds the type.
        REGISTRATIONS.fetch_add(1, Release);
    }
}

/// The finder registered for `id`, if any.
fn finder_for(id: TypeId) -> Option<Finder> {
    // Acquire: the count is read before the list, so an answer remembered under it
    // holds every type registered up to it. A type registered later bumps the count
    // and makes the remembered answer stale; and a value of a type carrying a
    // rejection only exists once its type is registered, so a lookup for such a value
    // reads the bumped count.
    let registrations = REGISTRATIONS.load(Acquire);
    let remembered = LAST_LOOKUP
        .try_with(Cell::get)
        .ok()
        .flatten()
        .filter(|&(known, at, _)| known == id && at == registrations);
    if let Some((_, _, finder)) = remembered {
        return finder;
    }
    let finder = unpoisoned(FINDERS.read())
        .iter()
        .find(|(known, _)| *known == id)
        .map(|(_, finder)| *finder);
    let _ = LAST_LOOKUP.try_with(|last| last.set(Some((id, registrations, finder))));
    finder
}

fn find_in_typed<E: 'static>(error: &dyn Any) -> Option<&CircuitOpen> {
    match error.downcast_ref::<Error<E>>()? {
        Error::Open(open) => Some(open),
        Error::Inner(inner) => find(inner),
    }
}

/// The [`CircuitOpen`] that `error` is or carries: the rejection itself, a boxed error
/// whose [`source`](std::error::Error::source) chain holds one, or a registered
/// `Error<E>` holding one at any depth.
pub(crate) fn find(error: &dyn Any) -> Option<&CircuitOpen> {
    if let Some(open) = error.downcast_ref::<CircuitOpen>() {
        return Some(open);
    }
    if let Some(boxed) = error.downcast_ref::<BoxError>() {
        return CircuitOpen::find(&**boxed);
    }
    if let Some(boxed) = error.downcast_ref::<Box<dyn std::error::Error + Send>>() {
        return CircuitOpen::find(&**boxed);
    }
    if let Some(boxed) = error.downcast_ref::<Box<dyn std::error::Error>>() {
        return CircuitOpen::find(&**boxed);
    }
    finder_for(error.type_id())?(error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::State;

    fn open() -> CircuitOpen {
        CircuitOpen {
            name: "inner".into(),
            state: State::Open,
            retry_after: None,
        }
    }

    #[test]
    fn finds_a_rejection_at_any_depth_of_registered_types() {
        register::<std::io::Error>();
        register::<Error<std::io::Error>>();
        register::<Error<Error<std::io::Error>>>();
        let nested: Error<Error<Error<std::io::Error>>> =
            Error::Inner(Error::Inner(Error::Open(open())));
        assert_eq!(find(&nested).map(|found| &*found.name), Some("inner"));
        let io: Error<Error<std::io::Error>> =
            Error::Inner(Error::Inner(std::io::ErrorKind::Other.into()));
        assert!(find(&io).is_none());
    }

    #[test]
    fn a_lookup_made_before_a_registration_is_not_remembered_past_it() {
        /// A type no other test registers.
        #[derive(Debug)]
        struct Unseen;
        let nested: Error<Error<Unseen>> = Error::Inner(Error::Open(open()));
        // Looked up (and remembered) while `Error<Unseen>` is unknown: nothing to find.
        assert!(find(&nested).is_none());
        assert!(find(&nested).is_none());
        register::<Unseen>();
        register::<Error<Unseen>>();
        assert_eq!(find(&nested).map(|found| &*found.name), Some("inner"));
    }

    #[test]
    fn finds_rejections_in_boxes_without_registration() {
        let boxed: BoxError = Box::new(open());
        assert!(find(&boxed).is_some());
        assert!(find(&open()).is_some());
        assert!(find(&"not a rejection").is_none());
    }
}
