//! `Limits`: what one execution may use.

use std::time::Duration;

/// What one execution may use. A step over a limit is stopped and the
/// execution ends in a [`crate::plugin::StepFailure`]; the host and other
/// executions are not affected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time from instantiation to the returned outcome.
    pub deadline: Duration,
    /// Linear memory, in bytes. Capped by [`crate::plugin::RuntimeConfig::max_memory`].
    pub memory: u64,
    /// The data a step returns (case data, problems, messages), in bytes.
    pub output: usize,
    /// Notifications per execution.
    pub notifications: u32,
    /// Log text kept per execution, in bytes; the rest is dropped and the
    /// last line says so.
    pub log: usize,
}

impl Default for Limits {
    /// 10 s, 64 MiB of memory, 1 MiB of output, 16 notifications, 64 KiB of log.
    fn default() -> Limits {
        Limits {
            deadline: Duration::from_secs(10),
            memory: 64 * 1024 * 1024,
            output: 1024 * 1024,
            notifications: 16,
            log: 64 * 1024,
        }
    }
}
