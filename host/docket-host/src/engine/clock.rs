//! The engine's only source of time. Timers, deadlines, retries and the
//! `now` a plugin sees all come from a [`Clock`], so tests drive time with
//! a [`ManualClock`] and never sleep.

use crate::store::Millis;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the engine reads the time.
pub trait Clock: Send + Sync {
    /// Now, in milliseconds since the Unix epoch.
    fn now(&self) -> Millis;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(
        clippy::disallowed_methods,
        reason = "this is the one place the engine reads the wall clock"
    )]
    fn now(&self) -> Millis {
        to_millis(SystemTime::now())
    }
}

/// A clock that moves only when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: AtomicI64,
}

impl ManualClock {
    /// A clock reading `start`.
    pub fn new(start: SystemTime) -> ManualClock {
        ManualClock {
            now: AtomicI64::new(to_millis(start)),
        }
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(duration_millis(by), Ordering::SeqCst);
    }

    /// Sets the clock to `to`.
    pub fn set(&self, to: SystemTime) {
        self.now.store(to_millis(to), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.now.load(Ordering::SeqCst)
    }
}

/// `time` in milliseconds since the Unix epoch (negative before it).
pub fn to_millis(time: SystemTime) -> Millis {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => duration_millis(after),
        Err(before) => -duration_millis(before.duration()),
    }
}

/// `millis` as a time.
pub fn from_millis(millis: Millis) -> SystemTime {
    let magnitude = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// `duration` in whole milliseconds, saturating.
pub fn duration_millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}

/// An instant as RFC 3339 with milliseconds, UTC: how instants appear in
/// published formats (exports, views).
pub fn rfc3339(at: Millis) -> String {
    humantime::format_rfc3339_millis(from_millis(at)).to_string()
}
