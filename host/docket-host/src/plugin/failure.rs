//! `StepError` and `StepFailure`: why an execution reached no outcome, and
//! the one function that turns a wasmtime error into a `StepFailure`.

use std::time::Duration;

/// Why an execution reached no outcome.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepError {
    /// The step reported that something outside it failed; a retry may help.
    #[error("the step reported a transient error: {0}")]
    Transient(String),
    /// The step reported an error that a retry will not fix.
    #[error("the step reported a permanent error: {0}")]
    Permanent(String),
    /// The host stopped the execution.
    #[error(transparent)]
    Failed(#[from] StepFailure),
}

impl StepError {
    /// Whether running the step again, unchanged, may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            StepError::Transient(_) => true,
            StepError::Permanent(_) => false,
            StepError::Failed(failure) => failure.is_transient(),
        }
    }
}

/// How the host stopped an execution. Every misbehaviour of a plugin ends
/// here, never in a panic or a hang of the host.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StepFailure {
    /// The step trapped: a panic, an `unreachable`, a stack overflow, an
    /// out-of-bounds access, a call to `exit`.
    #[error("the step {}", match panic { Some(panic) => format!("panicked: {panic}"), None => format!("trapped: {trap}") })]
    Trap {
        /// What the runtime saw, for example "wasm `unreachable` instruction executed".
        trap: String,
        /// The guest's panic message, when it reported one before trapping.
        panic: Option<String>,
    },
    /// The step ran past its wall-clock deadline and was stopped.
    #[error("the step ran past its deadline of {} ms and was stopped", limit.as_millis())]
    Deadline {
        /// The deadline.
        limit: Duration,
    },
    /// The step needed more linear memory than its limit.
    #[error("the step needed more than its memory limit of {}", bytes(*limit))]
    MemoryLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The step returned, or handed the host in one call, more data than its
    /// output limit.
    #[error("the step returned more than its output limit of {limit} bytes")]
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The step returned an outcome that breaks the contract, such as data
    /// that is not valid JSON.
    #[error("the step returned malformed {what}: {reason}")]
    BadOutput {
        /// Which part of the outcome was bad, for example "`continue` data".
        what: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The step asked for more notifications than its limit.
    #[error("the step sent more than its limit of {limit} notifications")]
    TooManyNotifications {
        /// The limit.
        limit: u32,
    },
    /// The host could not create an instance of the step, for example
    /// because every slot of the instance pool was in use.
    #[error("the step could not be instantiated: {reason}")]
    Instantiate {
        /// The runtime's explanation.
        reason: String,
    },
}

impl StepFailure {
    /// Whether running the step again, unchanged, may succeed: yes for a
    /// deadline (the machine may have been busy) and for instantiation
    /// (the pool may have been full); no for anything the step's code
    /// decides by itself.
    pub fn is_transient(&self) -> bool {
        match self {
            StepFailure::Deadline { .. } | StepFailure::Instantiate { .. } => true,
            StepFailure::Trap { .. }
            | StepFailure::MemoryLimit { .. }
            | StepFailure::OutputTooLarge { .. }
            | StepFailure::BadOutput { .. }
            | StepFailure::TooManyNotifications { .. } => false,
        }
    }
}

/// A size for a message: in MiB when it is a whole number of them.
fn bytes(n: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// What the execution's state knew when wasmtime returned an error.
pub(crate) struct Evidence {
    pub deadline: Duration,
    pub memory_limit: u64,
    pub memory_limit_hit: bool,
    pub notify_limit: u32,
    pub notify_limit_hit: bool,
    pub output_limit: usize,
    pub output_limit_hit: bool,
    /// The guest's panic message, if it reported one.
    pub panic: Option<String>,
}

/// Where in an execution an error arose.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Instantiate,
    Call,
}

/// wasmtime's message when a guest hands the host more data in one call than
/// the store's hostcall fuel allows; the error type itself is private.
const HOSTCALL_FUEL_EXHAUSTED: &str = "fuel allocated for hostcalls has been exhausted";

/// The one place a wasmtime error becomes a `StepFailure`.
pub(crate) fn classify(err: &wasmtime::Error, phase: Phase, evidence: Evidence) -> StepFailure {
    if evidence.notify_limit_hit {
        return StepFailure::TooManyNotifications {
            limit: evidence.notify_limit,
        };
    }
    if evidence.output_limit_hit || format!("{err:#}").contains(HOSTCALL_FUEL_EXHAUSTED) {
        return StepFailure::OutputTooLarge {
            limit: evidence.output_limit,
        };
    }
    if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return StepFailure::Deadline {
            limit: evidence.deadline,
        };
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return StepFailure::Trap {
            trap: format!("the step called exit({})", exit.0),
            panic: evidence.panic,
        };
    }
    // A guest whose allocation failed aborts with a trap of its own, without
    // a panic message; the limiter saw the refused growth first, and that is
    // the real cause. A panic message means the step handled the refusal and
    // failed for a reason of its own.
    if evidence.memory_limit_hit && evidence.panic.is_none() {
        return StepFailure::MemoryLimit {
            limit: evidence.memory_limit,
        };
    }
    match (err.downcast_ref::<wasmtime::Trap>(), phase) {
        (Some(trap), _) => StepFailure::Trap {
            trap: trap.to_string(),
            panic: evidence.panic,
        },
        (None, Phase::Instantiate) => StepFailure::Instantiate {
            reason: format!("{err:#}"),
        },
        (None, Phase::Call) => StepFailure::Trap {
            trap: format!("{err:#}"),
            panic: evidence.panic,
        },
    }
}
