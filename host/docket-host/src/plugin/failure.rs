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
    #[error("the step needed more than its memory limit of {} MiB", limit / (1024 * 1024))]
    MemoryLimit {
        /// The limit in bytes.
        limit: u64,
    },
    /// The step returned more data than its output limit.
    #[error("the step returned {size} bytes, more than the output limit of {limit}")]
    OutputTooLarge {
        /// What the step returned, in bytes.
        size: usize,
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

/// What the execution's state knew when wasmtime returned an error.
pub(crate) struct Evidence {
    pub deadline: Duration,
    pub memory_limit: u64,
    pub memory_limit_hit: bool,
    pub notify_limit: u32,
    pub notify_limit_hit: bool,
    /// The guest's panic message, if it reported one.
    pub panic: Option<String>,
}

/// Where in an execution an error arose.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    Instantiate,
    Call,
}

/// The one place a wasmtime error becomes a `StepFailure`.
pub(crate) fn classify(err: &wasmtime::Error, phase: Phase, evidence: Evidence) -> StepFailure {
    if evidence.notify_limit_hit {
        return StepFailure::TooManyNotifications {
            limit: evidence.notify_limit,
        };
    }
    if err.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::Interrupt) {
        return StepFailure::Deadline {
            limit: evidence.deadline,
        };
    }
    // A guest whose allocation failed aborts with a trap of its own; the
    // limiter saw the refused growth first, and that is the real cause.
    if evidence.memory_limit_hit {
        return StepFailure::MemoryLimit {
            limit: evidence.memory_limit,
        };
    }
    if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return StepFailure::Trap {
            trap: format!("the step called exit({})", exit.0),
            panic: evidence.panic,
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
