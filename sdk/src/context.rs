//! The context of one execution.

use std::time::{Duration, SystemTime};

/// Where and when a step runs.
///
/// The clock reading is the engine's, taken when the execution was
/// scheduled: a step uses it instead of a clock of its own, so that a replay
/// of a recorded execution reaches the same outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    pub(crate) case_id: String,
    pub(crate) workflow: String,
    pub(crate) workflow_version: u32,
    pub(crate) step_id: String,
    pub(crate) attempt: u32,
    pub(crate) actor: Option<String>,
    pub(crate) now: SystemTime,
}

impl Context {
    /// The case this execution belongs to.
    pub fn case_id(&self) -> &str {
        &self.case_id
    }

    /// The workflow definition's name.
    pub fn workflow(&self) -> &str {
        &self.workflow
    }

    /// The version of the workflow definition the case runs on.
    pub fn workflow_version(&self) -> u32 {
        self.workflow_version
    }

    /// The step's id within the workflow.
    pub fn step_id(&self) -> &str {
        &self.step_id
    }

    /// 1 for the first execution of this step in this case, 2 for the first
    /// retry, and so on.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The person on whose behalf the step runs, if any.
    pub fn actor(&self) -> Option<&str> {
        self.actor.as_deref()
    }

    /// The engine's clock reading for this execution.
    pub fn now(&self) -> SystemTime {
        self.now
    }

    /// [`Context::now`] in whole milliseconds since the Unix epoch.
    pub fn now_unix_millis(&self) -> i64 {
        match self.now.duration_since(SystemTime::UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX),
        }
    }

    pub(crate) fn from_unix(seconds: i64, nanoseconds: u32) -> SystemTime {
        let offset = Duration::new(seconds.unsigned_abs(), 0);
        let base = if seconds >= 0 {
            SystemTime::UNIX_EPOCH + offset
        } else {
            SystemTime::UNIX_EPOCH - offset
        };
        base + Duration::from_nanos(u64::from(nanoseconds))
    }
}

impl Default for Context {
    /// A context for tests: case `case-1` of workflow `test` version 1, step
    /// `step`, first attempt, no actor, at 2026-01-01T00:00:00Z.
    fn default() -> Self {
        Context {
            case_id: "case-1".to_owned(),
            workflow: "test".to_owned(),
            workflow_version: 1,
            step_id: "step".to_owned(),
            attempt: 1,
            actor: None,
            now: Context::from_unix(1_767_225_600, 0),
        }
    }
}
