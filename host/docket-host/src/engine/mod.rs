//! The durable engine: advances each case from its journal.
//!
//! - [`Host`] is the embedder's handle: deploy, start, decide, signal, query.
//! - `state` derives a case's state from its journal; `advance` decides
//!   what happens next, as events, without any I/O.
//! - [`Clock`] is the engine's only source of time; [`Deliver`] is where
//!   outbox messages go.
//!
//! **Invariant:** every state change is an appended journal event;
//! replaying the journal repeats no completed step. **Invariant:** time
//! comes from the injected clock.

mod advance;
mod clock;
mod explain;
mod host;
mod outbox;
mod plugins;
mod state;
mod timeline;

pub use clock::{
    Clock, ManualClock, SystemClock, duration_millis, from_millis, rfc3339, to_millis,
};
pub use explain::{Decided, Explanation, Replay};
pub use host::{CommitStats, Host, HostConfig};
pub use outbox::{Deliver, LogOnly, Mailbox};
pub use plugins::PluginSource;
pub use timeline::{format_offset, timeline};

pub(crate) use state::merge_into;

use crate::store::{self, CaseRow, CaseStatus, Recorded, Verdict};
use crate::workflow::Diagnostic;
use serde_json::Value;

/// A new case.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StartCase {
    /// The case's input, checked against the workflow's input schema.
    pub input: Value,
    /// The business key (an application number), unique per workflow.
    pub key: Option<String>,
    /// Who applied; four-eyes rules keep them from approving their own case.
    pub applicant: Option<String>,
}

/// A case that was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// The case id.
    pub id: String,
    /// The code the applicant tracks it with.
    pub tracking_code: String,
    /// Where it is right after its start.
    pub status: CaseStatus,
}

/// A person's decision on an approval task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The approval step's path, for example `decide` or `reviews/fire/fire-check`.
    pub step: String,
    /// Approve, reject or return for changes.
    pub verdict: Verdict,
    /// Who decides.
    pub person: String,
    /// The role they act in.
    pub role: String,
    /// Why.
    pub comment: Option<String>,
}

/// A case as a reader sees it: its index row, its journal, and the steps
/// it is at.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseView {
    /// The index row.
    pub row: CaseRow,
    /// Every event, in order.
    pub journal: Vec<Recorded>,
    /// The steps in progress: tasks waiting for a role, waits, running steps.
    pub open: Vec<OpenStep>,
}

/// A step a case is at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenStep {
    /// The step's path, as decisions name it (`reviews/fire/fire-safety`).
    pub step: String,
    /// `plugin`, `approval`, `wait`, `subflow` or `parallel`.
    pub kind: &'static str,
    /// For an approval, the role holding the task.
    pub role: Option<String>,
    /// When the step began.
    pub since: store::Millis,
    /// When its next deadline, timer or retry falls due.
    pub due: Option<store::Millis>,
    /// Deadlines that passed so far.
    pub escalations: u32,
    /// For an approval, how many people approved so far (n of m).
    pub approved: u32,
    /// For a subflow, the child case.
    pub child: Option<String>,
    /// For a plugin, whether it waits for a retry rather than running.
    pub retrying: bool,
}

impl CaseView {
    /// The case's journal as a compact text timeline, one line per event,
    /// times relative to the case's start.
    pub fn timeline(&self) -> String {
        timeline(&self.journal)
    }

    /// The final (or current) case data, from the journal.
    pub fn data(&self) -> Option<&Value> {
        self.journal.iter().rev().find_map(|r| match &r.event {
            store::Event::CaseEnded { data, .. } => Some(data),
            _ => None,
        })
    }
}

/// One case that retention archived and purged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retained {
    /// The workflow.
    pub workflow: String,
    /// The version whose policy applied.
    pub version: u32,
    /// When the case ended.
    pub ended: store::Millis,
    /// Where its full record is.
    pub archive: std::path::PathBuf,
    /// The archive's sha256, as the ledger's purge entry records it.
    pub archive_sha256: String,
    /// What the purge changed.
    pub purged: store::Purged,
}

/// Why an engine call failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No deployed workflow by that name (and version).
    #[error("no workflow `{name}`{} is deployed", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    UnknownWorkflow {
        /// The name asked for.
        name: String,
        /// The version asked for, if any.
        version: Option<u32>,
    },
    /// The input does not satisfy the workflow's input schema.
    #[error("the input does not match workflow `{workflow}`'s input schema: {}", problems.join("; "))]
    InvalidInput {
        /// The workflow.
        workflow: String,
        /// Every problem, as `pointer: message`.
        problems: Vec<String>,
    },
    /// Data nested deeper than a case's data may be
    /// ([`crate::json::MAX_DEPTH`]). Nothing was written.
    #[error(
        "{what} is nested more than {} levels deep, deeper than a case's data may be",
        crate::json::MAX_DEPTH
    )]
    TooDeep {
        /// Which data: the input, a signal's data...
        what: String,
    },
    /// No case with that id or tracking code.
    #[error("no case `{0}`")]
    NoSuchCase(String),
    /// The request is not allowed.
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// A deployed workflow no longer compiles (a plugin it names is gone).
    #[error("deployed workflow `{name}` version {version} cannot be loaded: {}", problems.join("; "))]
    Redeploy {
        /// The workflow.
        name: String,
        /// Its version.
        version: u32,
        /// What is wrong.
        problems: Vec<String>,
    },
    /// The store failed, or refused a write (a duplicate case key).
    #[error(transparent)]
    Store(#[from] store::Error),
    /// There is no automated decision to explain there.
    #[error("{0}")]
    NotExplainable(String),
    /// Retention could not archive a case, so it was not purged.
    #[error("cannot archive case `{case}`: {reason}")]
    Archive {
        /// The case.
        case: String,
        /// Why.
        reason: String,
    },
    /// The host is shutting down.
    #[error("the host stopped")]
    Stopped,
    /// A bug in docket.
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a decision, a signal or a resubmission was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Refusal {
    /// The step is not an approval waiting for a decision.
    #[error("step `{step}` is not waiting for a decision")]
    NotWaiting {
        /// The step named.
        step: String,
    },
    /// The person acts in a role the task is not assigned to.
    #[error("step `{step}` is assigned to role `{expected}`, not `{role}`")]
    WrongRole {
        /// The step.
        step: String,
        /// The role given.
        role: String,
        /// The role holding the task.
        expected: String,
    },
    /// Four-eyes: the applicant may not approve their own case.
    #[error("{person} applied for this case and may not approve it (four-eyes rule)")]
    Applicant {
        /// The person.
        person: String,
    },
    /// Four-eyes: whoever approved an earlier step may not approve this one.
    #[error(
        "{person} approved an earlier step of this case and may not approve this one (four-eyes rule)"
    )]
    PreviousApprover {
        /// The person.
        person: String,
    },
    /// The person already decided on this task.
    #[error("{person} already decided on step `{step}`")]
    AlreadyDecided {
        /// The person.
        person: String,
        /// The step.
        step: String,
    },
    /// The case has ended.
    #[error("case `{case}` has ended")]
    CaseEnded {
        /// The case.
        case: String,
    },
    /// The case was not returned for changes.
    #[error("case `{case}` is not waiting for a resubmission")]
    NotReturned {
        /// The case.
        case: String,
    },
}

/// Why a deployment failed. Nothing was written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// The definition has problems; all of them.
    #[error("the workflow has {} problem{}:\n{}", .0.len(), if .0.len() == 1 { "" } else { "s" }, .0.iter().map(|d| format!("  {d}")).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<Diagnostic>),
    /// A subflow names a workflow that is not deployed.
    #[error("step `{step}` starts workflow `{name}`{}, which is not deployed; deploy it first", version.map(|v| format!(" version {v}")).unwrap_or_default())]
    UnknownWorkflow {
        /// The subflow step.
        step: String,
        /// The workflow it names.
        name: String,
        /// The version it names.
        version: Option<u32>,
    },
    /// A step's plugin cannot be loaded with the step's grants.
    #[error("step `{step}`: {message}")]
    Plugin {
        /// The step's path.
        step: String,
        /// Why.
        message: String,
    },
    /// The input schema does not compile.
    #[error("the input schema is invalid: {0}")]
    InputSchema(String),
    /// The store refused the deployment.
    #[error(transparent)]
    Store(store::Error),
    /// The same source is deployed already, but that deployment no longer
    /// loads (its pinned plugins cannot be had).
    #[error(transparent)]
    Deployed(Box<Error>),
}
