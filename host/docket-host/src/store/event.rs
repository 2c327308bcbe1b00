//! The journal event schema: what a case's journal records. **Boundary**:
//! these are persisted as JSON and read back by every later version of
//! docket, so a change here is an API change. Add variants and optional
//! fields; never rename or remove. [`SCHEMA_VERSION`] is stored with every
//! event. Numbers are integers or inside a `serde_json::Value`: the ledger
//! hashes an event straight from these types
//! ([`crate::ledger::event_content`]), and an `f32` field would be hashed
//! as its `f64` reading but written as the shorter `f32` text.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The version of this schema, stored with every event.
pub const SCHEMA_VERSION: u32 = 1;

/// Milliseconds since the Unix epoch, UTC: the engine's clock reading.
pub type Millis = i64;

/// One event in a case's journal, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recorded {
    /// Position in the case's journal, from 1, without gaps.
    pub seq: u64,
    /// The engine's clock when the event happened.
    pub at: Millis,
    /// What happened.
    pub event: Event,
}

/// How a case, a branch or a child case ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ending {
    /// It reached its end.
    Completed,
    /// Somebody or some step rejected it.
    Rejected,
    /// It could not be carried out.
    Failed,
}

impl Ending {
    /// The ending's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Completed => "completed",
            Ending::Rejected => "rejected",
            Ending::Failed => "failed",
        }
    }
}

/// A decision on an approval task, in the words approvers use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Approve.
    Approve,
    /// Reject the application.
    Reject,
    /// Return it to the applicant for changes.
    Return,
}

impl Verdict {
    /// The verdict's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
            Verdict::Return => "return",
        }
    }
}

/// One problem a step found with the case data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProblem {
    /// JSON Pointer into the case data.
    pub pointer: String,
    /// Machine-readable code.
    pub code: String,
    /// For the person who has to fix it.
    pub message: String,
}

impl From<&crate::plugin::Problem> for StoredProblem {
    fn from(problem: &crate::plugin::Problem) -> StoredProblem {
        StoredProblem {
            pointer: problem.pointer.clone(),
            code: problem.code.clone(),
            message: problem.message.clone(),
        }
    }
}

/// What happened to a case. Step paths (`step`) name a step by its ids from
/// the top of the workflow: `reviews/fire/fire-check` is the step
/// `fire-check` in branch `fire` of the parallel step `reviews`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The case was accepted.
    CaseStarted {
        /// The workflow's name.
        workflow: String,
        /// The version the case runs on, to its end.
        version: u32,
        /// The business key (an application number), unique per workflow.
        key: Option<String>,
        /// The code the applicant tracks the case with.
        tracking_code: String,
        /// Who applied, if known.
        applicant: Option<String>,
        /// The case's input.
        input: Value,
        /// The parent case and step, for a child case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parent: Option<ParentRef>,
    },
    /// A step began: a plugin execution is due, a task opened, a wait began.
    StepScheduled {
        /// The step's path.
        step: String,
        /// 1 for the first execution, 2 for the first retry, and so on.
        attempt: u32,
        /// For approvals: the role the task is assigned to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        role: Option<String>,
        /// When the step's next deadline or timer falls due.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<Millis>,
    },
    /// A plugin step produced an outcome.
    StepFinished {
        /// The step's path.
        step: String,
        /// Which execution.
        attempt: u32,
        /// `continue`, `route` or `reject`.
        outcome: String,
        /// The routes the plugin chose (for `route`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        routes: Vec<String>,
        /// The case data after the step (for `continue` and `route`);
        /// absent when the step handed on the data it was given, which the
        /// case then keeps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
        /// The problems (for `reject`).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        problems: Vec<StoredProblem>,
        /// sha256 of the component that decided.
        plugin: String,
        /// How many notifications went to the outbox with this event.
        #[serde(default, skip_serializing_if = "is_zero")]
        notifications: u32,
        /// The clock reading the plugin saw, to replay it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ran_at: Option<Millis>,
        /// sha256 of the input's canonical JSON (RFC 8785): a replay shows
        /// it ran on the same input.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input_sha256: Option<String>,
    },
    /// A plugin step failed.
    StepFailed {
        /// The step's path.
        step: String,
        /// Which execution.
        attempt: u32,
        /// What went wrong, in one line.
        error: String,
        /// Whether a retry may help.
        transient: bool,
        /// When the next attempt runs, if there is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_at: Option<Millis>,
    },
    /// A person decided on an approval task.
    ApprovalDecided {
        /// The approval step's path.
        step: String,
        /// What they decided.
        verdict: Verdict,
        /// Who.
        by: String,
        /// In which role.
        role: String,
        /// Why, in their words.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        comment: Option<String>,
    },
    /// A waiting step's deadline passed.
    DeadlinePassed {
        /// The step's path.
        step: String,
        /// Which of the step's escalations (from 0).
        escalation: u32,
    },
    /// An approval task was handed to another role.
    Reassigned {
        /// The step's path.
        step: String,
        /// The role that now holds the task.
        role: String,
        /// When the next escalation falls due, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        due: Option<Millis>,
    },
    /// A wait step's timer fired.
    TimerFired {
        /// The step's path.
        step: String,
    },
    /// A named signal arrived.
    SignalReceived {
        /// The signal's name.
        name: String,
        /// Its data.
        data: Value,
    },
    /// A parallel step started its branches.
    BranchesStarted {
        /// The parallel step's path.
        step: String,
    },
    /// A branch of a parallel step ended.
    BranchEnded {
        /// The parallel step's path.
        step: String,
        /// The branch's name.
        branch: String,
        /// How it ended.
        ending: Ending,
    },
    /// A parallel step's join was decided; unfinished branches are cancelled.
    Joined {
        /// The parallel step's path.
        step: String,
        /// `completed` if the join was met, `rejected` or `failed` if it can no longer be.
        ending: Ending,
    },
    /// A subflow step started a child case.
    ChildStarted {
        /// The subflow step's path.
        step: String,
        /// The child case's id.
        child: String,
    },
    /// A child case ended.
    ChildEnded {
        /// The subflow step's path.
        step: String,
        /// The child case's id.
        child: String,
        /// How it ended.
        ending: Ending,
        /// The child's final case data.
        data: Value,
    },
    /// The case moved to a step other than the next one (a route, a
    /// handler, an escalation).
    Moved {
        /// The step the case left.
        from: String,
        /// The step it goes to, or `end`.
        to: String,
        /// Why: the route name, `on_reject`, `on_error`, `escalation`.
        reason: String,
    },
    /// An approver returned the case to the applicant for changes.
    Returned {
        /// The approval step's path.
        step: String,
    },
    /// The applicant resubmitted a returned case.
    Resubmitted {
        /// The new case data, merged over the old.
        data: Value,
    },
    /// The case ended.
    CaseEnded {
        /// How.
        ending: Ending,
        /// The final case data.
        data: Value,
        /// The step that decided the ending, if one did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        step: Option<String>,
        /// Why, for a rejected or failed case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A child case's parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParentRef {
    /// The parent case's id.
    pub case: String,
    /// The parent's subflow step path.
    pub step: String,
}

/// What replaces purged free text.
pub const PURGED: &str = "[purged]";

impl Event {
    /// The event as retention keeps it once the case's personal data is
    /// purged: what happened, where, when and in which role stays (so
    /// KPIs, exports and tracking still work); what the applicant entered
    /// and free text that may quote it goes. Purged: the applicant and
    /// input of `CaseStarted`; case data of `StepFinished`, `SignalReceived`,
    /// `ChildEnded`, `Resubmitted` and `CaseEnded`; problem messages, error
    /// messages, decision comments and an ending's reason. Kept: the staff
    /// who decided (`ApprovalDecided::by`), since an official act stays
    /// attributable for as long as its record is kept, and the business key
    /// on the case. Purging twice changes nothing.
    pub fn redacted(&self) -> Event {
        let mut event = self.clone();
        let text = |text: &mut String| {
            if !text.is_empty() {
                *text = PURGED.to_owned();
            }
        };
        match &mut event {
            Event::CaseStarted {
                applicant, input, ..
            } => {
                *applicant = None;
                *input = Value::Null;
            }
            Event::StepFinished { data, problems, .. } => {
                if data.is_some() {
                    *data = Some(Value::Null);
                }
                for problem in problems {
                    text(&mut problem.message);
                }
            }
            Event::StepFailed { error, .. } => text(error),
            Event::ApprovalDecided { comment, .. } => {
                if comment.is_some() {
                    *comment = Some(PURGED.to_owned());
                }
            }
            Event::SignalReceived { data, .. }
            | Event::ChildEnded { data, .. }
            | Event::Resubmitted { data } => *data = Value::Null,
            Event::CaseEnded { data, reason, .. } => {
                *data = Value::Null;
                if let Some(reason) = reason {
                    text(reason);
                }
            }
            Event::StepScheduled { .. }
            | Event::DeadlinePassed { .. }
            | Event::Reassigned { .. }
            | Event::TimerFired { .. }
            | Event::BranchesStarted { .. }
            | Event::BranchEnded { .. }
            | Event::Joined { .. }
            | Event::ChildStarted { .. }
            | Event::Moved { .. }
            | Event::Returned { .. } => {}
        }
        event
    }
}
