//! State a step derives from its config alone, kept for the config it was
//! derived from: see [`prepared`].

use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::sync::{Arc, Mutex};

/// The contents of the `docket:prepared-config` custom section that
/// `export!(MyStep, prepared)` writes: the version of the promise it makes.
#[doc(hidden)]
pub const MARKER_VERSION: &[u8; 1] = b"1";

/// The value `make` returns, computed once per config text: the config of
/// the [`crate::Step::routes`] or [`crate::Step::run`] call in progress.
///
/// Use it for work that depends on the config alone (compiling a schema,
/// parsing rules or templates), from both `routes` and `run`:
///
/// ```
/// # use std::collections::HashSet;
/// # struct Config { words: Vec<String> }
/// fn words(config: &Config) -> std::sync::Arc<HashSet<String>> {
///     docket_sdk::prepared(|| config.words.iter().cloned().collect::<HashSet<String>>())
/// }
/// ```
///
/// `make` must depend on nothing but the config (no context, no input, no
/// capability call). The value is keyed by its type and by the exact config
/// text, so a `run` with a config that differs in any byte computes its own.
/// Outside a `routes` or `run` call, `make` runs every time.
///
/// Why: the host runs every execution in a fresh instance. A plugin
/// exported with `export!(MyStep, prepared)` lets the host call
/// `check-config` once for a step's config, keep a snapshot of the instance
/// after it, and start that step's executions from the snapshot, where the
/// value is already made. Without the host doing so, `prepared` costs what
/// `make` costs.
pub fn prepared<T: Any + Send + Sync>(make: impl FnOnce() -> T) -> Arc<T> {
    let Some(config) = CURRENT.with(|current| current.borrow().clone()) else {
        return Arc::new(make());
    };
    let key = TypeId::of::<T>();
    let found = lock()
        .iter()
        .find(|(ty, text, _)| *ty == key && **text == *config)
        .map(|(_, _, value)| value.clone());
    if let Some(value) = found.and_then(|value| value.downcast::<T>().ok()) {
        return value;
    }
    // Made without the lock, so `make` may itself use `prepared`.
    let value = Arc::new(make());
    lock().push((key, config, value.clone()));
    value
}

type Entry = (TypeId, Arc<str>, Arc<dyn Any + Send + Sync>);

/// Every value made so far: one instance serves one `check-config` or one
/// `run` (and a snapshot's one `check-config` before it), so this holds one
/// or two entries per type; natively, one per config a test process uses.
static PREPARED: Mutex<Vec<Entry>> = Mutex::new(Vec::new());

fn lock() -> std::sync::MutexGuard<'static, Vec<Entry>> {
    PREPARED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

thread_local! {
    /// The config text of the call in progress on this thread.
    static CURRENT: RefCell<Option<Arc<str>>> = const { RefCell::new(None) };
}

/// Runs `f` with `config` as the current config text of [`prepared`].
pub(crate) fn with_config<R>(config: &str, f: impl FnOnce() -> R) -> R {
    struct Reset(Option<Arc<str>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }
    let previous = CURRENT.with(|current| current.borrow_mut().replace(Arc::from(config)));
    let _reset = Reset(previous);
    f()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_value_per_config_text() {
        let make = |n: u32| move || (n, std::thread::current().id());
        let a = with_config("{\"a\":1}", || prepared(make(1)));
        let again = with_config("{\"a\":1}", || prepared(make(2)));
        assert_eq!(a.0, 1);
        assert!(
            Arc::ptr_eq(&a, &again),
            "the same config text reuses the value"
        );
        let other = with_config("{\"a\": 1}", || prepared(make(3)));
        assert_eq!(
            other.0, 3,
            "another text, even an equal JSON value, makes its own"
        );
        assert_eq!(prepared(make(4)).0, 4, "outside a call, always made afresh");
    }
}
