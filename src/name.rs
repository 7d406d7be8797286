//! [`BreakerName`]: a breaker's name as its rejections carry it.

use std::borrow::Borrow;
use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;
use std::sync::Arc;

/// A breaker's name, as [`CircuitOpen`](crate::CircuitOpen) carries it: a string that
/// is cheap to clone. A name given as a `&'static str` (a string literal, as in
/// `Config::builder().name("payments")`) is kept as that reference, and cloning it into
/// every rejection touches no reference count; any other name (a `String`, a keyed
/// breaker's `"{group}/{key}"`, a name from a configuration file) is shared behind a
/// reference count. Either way it reads as a `str`: it derefs to one, prints as one,
/// and compares, orders and hashes by its text alone.
///
/// ```
/// use tower_circuit_breaker::BreakerName;
///
/// let literal = BreakerName::from("payments");
/// let owned = BreakerName::from(String::from("payments"));
/// assert_eq!(literal, owned);
/// assert_eq!(literal, "payments");
/// assert_eq!(owned.len(), 8);
/// assert_eq!(format!("{literal} / {owned:?}"), r#"payments / "payments""#);
/// ```
#[derive(Clone)]
pub struct BreakerName(Repr);

/// Two words either way: a reference to the static text, or one thin pointer to the
/// shared `String` (an `Arc<str>` would take two words and leave the enum no room for
/// its tag).
#[derive(Clone)]
enum Repr {
    Static(&'static str),
    Shared(Arc<String>),
}

// A rejection moves its name with it: two words, as `Arc<str>` was.
const _: () = assert!(std::mem::size_of::<BreakerName>() == 16);

impl BreakerName {
    /// The name's text.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Static(name) => name,
            Repr::Shared(name) => name,
        }
    }

    /// The same name, shared with no reference count with this one (a static name is
    /// kept as it is): for a copy that lives on another thread's cache lines.
    pub(crate) fn unshared(&self) -> BreakerName {
        match &self.0 {
            Repr::Static(_) => self.clone(),
            Repr::Shared(name) => BreakerName(Repr::Shared(Arc::new(String::clone(name)))),
        }
    }
}

impl From<&'static str> for BreakerName {
    fn from(name: &'static str) -> Self {
        BreakerName(Repr::Static(name))
    }
}

impl From<String> for BreakerName {
    fn from(name: String) -> Self {
        BreakerName(Repr::Shared(Arc::new(name)))
    }
}

impl From<&String> for BreakerName {
    fn from(name: &String) -> Self {
        BreakerName::from(name.clone())
    }
}

impl From<Arc<str>> for BreakerName {
    fn from(name: Arc<str>) -> Self {
        BreakerName::from(String::from(&*name))
    }
}

impl Deref for BreakerName {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl AsRef<str> for BreakerName {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl Borrow<str> for BreakerName {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl fmt::Display for BreakerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl fmt::Debug for BreakerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl PartialEq for BreakerName {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for BreakerName {}

impl PartialEq<str> for BreakerName {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for BreakerName {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<BreakerName> for str {
    fn eq(&self, other: &BreakerName) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<BreakerName> for &str {
    fn eq(&self, other: &BreakerName) -> bool {
        *self == other.as_str()
    }
}

impl PartialOrd for BreakerName {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BreakerName {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

/// As `str` hashes, so that `Borrow<str>` lookups find it.
impl Hash for BreakerName {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn static_and_shared_names_are_one_name() {
        let names: HashSet<BreakerName> = [
            BreakerName::from("db"),
            BreakerName::from(String::from("db")),
            BreakerName::from(Arc::<str>::from("db")),
        ]
        .into_iter()
        .collect();
        assert_eq!(names.len(), 1);
        assert!(names.contains("db"));
        let (a, b) = (BreakerName::from("a"), BreakerName::from(String::from("b")));
        assert!(a < b);
    }

    #[test]
    fn an_unshared_copy_has_its_own_count() {
        let name = BreakerName::from(String::from("db"));
        let copy = name.unshared();
        assert_eq!(copy, name);
        match (&name.0, &copy.0) {
            (Repr::Shared(a), Repr::Shared(b)) => assert!(!Arc::ptr_eq(a, b)),
            _ => panic!("a shared name stays shared"),
        }
        assert!(matches!(
            BreakerName::from("db").unshared().0,
            Repr::Static("db")
        ));
    }
}
