//! The validated workflow the engine runs: every reference resolved, every
//! default filled in, no source positions. Built only by
//! [`super::compile`] from a definition that linted clean.

use crate::Json;
use crate::plugin::Capability;
use std::time::{Duration, SystemTime};

/// A deployed workflow definition, ready to run.
#[derive(Clone, Debug, PartialEq)]
pub struct Workflow {
    /// The workflow's name, unique in a store, for example `building-permit`.
    pub name: String,
    /// The definition's version; a case runs to its end on the version it started with.
    pub version: u32,
    /// The department that owns the process.
    pub owner: String,
    /// What the process is for.
    pub description: String,
    /// JSON Schema the input of a new case must satisfy, if any.
    pub input_schema: Option<serde_json::Value>,
    /// Input fields the public view of a case may show (top-level property
    /// names the input schema declares).
    pub public: Vec<String>,
    /// How long an ended case keeps its personal data, if it is ever purged.
    pub retention: Option<Duration>,
    /// The top-level sequence; a case starts at its first step.
    pub steps: Vec<Step>,
}

impl Workflow {
    /// The step at `path` (`"reviews/fire/fire-check"`: step ids, with the
    /// branch name after each parallel step).
    pub fn step(&self, path: &str) -> Option<&Step> {
        let mut parts = path.split('/');
        let first = parts.next()?;
        let mut step = self.steps.iter().find(|s| s.id == first)?;
        while let Some(branch) = parts.next() {
            let StepKind::Parallel { branches, .. } = &step.kind else {
                return None;
            };
            let branch = branches.iter().find(|b| b.name == branch)?;
            let id = parts.next()?;
            step = branch.steps.iter().find(|s| s.id == id)?;
        }
        Some(step)
    }
}

/// A step id spelled out as a title: `fire-safety` -> `Fire safety`; the
/// title of a step whose definition gives none.
pub fn spelled_out(id: &str) -> String {
    let words = id.replace(['-', '_'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => words,
    }
}

/// One step of a workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct Step {
    /// Unique within its sequence.
    pub id: String,
    /// The stage's name in plain words (`Fire safety review`).
    pub title: String,
    /// The department responsible for it.
    pub department: String,
    /// What the step does.
    pub kind: StepKind,
    /// Where the case goes when the step finishes normally: the next step
    /// of the sequence unless the definition says otherwise.
    pub next: Target,
    /// Where the case goes when the step rejects it (a plugin's `reject`,
    /// an approval's rejection, a parallel step whose join can no longer
    /// be met). Default: [`Target::Reject`].
    pub on_reject: Target,
    /// Where the case goes when the step fails for good (retries used up,
    /// a permanent error, a child case that failed). Default: [`Target::Fail`].
    pub on_error: Target,
    /// How to retry transient failures. Default: no retry.
    pub retry: RetryPolicy,
    /// Wall-time limit of one plugin execution. Default: the runtime's.
    pub timeout: Option<Duration>,
    /// What happens when the step waits too long, in order of `after`.
    /// Only waiting steps (approval, wait, subflow) have escalations.
    pub escalations: Vec<Escalation>,
}

/// Where a case goes next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// The step with this id in the same sequence.
    Step(String),
    /// The end of the sequence: the case (or the parallel branch) completes.
    Complete,
    /// The case ends as rejected.
    Reject,
    /// The case ends as failed.
    Fail,
}

/// What a step does.
#[derive(Clone, Debug, PartialEq)]
pub enum StepKind {
    /// Run a plugin.
    Plugin(PluginStep),
    /// Run branches concurrently and join them.
    Parallel {
        /// The branches, in the order the definition names them.
        branches: Vec<Branch>,
        /// When the parallel step is done.
        join: Join,
    },
    /// A decision by people holding a role.
    Approval(Approval),
    /// Wait for a time or a signal.
    Wait(Wait),
    /// Start another workflow as a child case and wait for its end.
    Subflow {
        /// The child workflow's name.
        workflow: String,
        /// The version; the latest deployed when the child starts if `None`.
        version: Option<u32>,
    },
}

/// A step that runs a plugin.
#[derive(Clone, Debug, PartialEq)]
pub struct PluginStep {
    /// The plugin's name, as its `describe` gives it.
    pub plugin: String,
    /// The plugin version the definition asks for (semver requirement, `*` for any).
    pub version: String,
    /// The plugin's config.
    pub config: Json,
    /// The capabilities the plugin gets, besides `log`, which every plugin
    /// gets (the SDK reports panics through it).
    pub grant: Vec<Capability>,
    /// Settings the plugin may read with the `settings` capability.
    pub settings: Vec<(String, String)>,
    /// Exclusive branching on the routes the plugin returns: the first
    /// route the plugin named that is in this list decides; if none is,
    /// `default_route` (or `next` when there is none).
    pub routes: Vec<(String, Target)>,
    /// Where to go when no route matches.
    pub default_route: Option<Target>,
}

/// A parallel branch: a sequence of its own.
#[derive(Clone, Debug, PartialEq)]
pub struct Branch {
    /// Unique within the parallel step.
    pub name: String,
    /// The branch's steps; it completes when it reaches its end.
    pub steps: Vec<Step>,
}

/// When a parallel step is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Join {
    /// Every branch completed.
    All,
    /// One branch completed; the others are cancelled.
    Any,
    /// `n` branches completed; the others are cancelled.
    AtLeast(u32),
}

/// A human task.
#[derive(Clone, Debug, PartialEq)]
pub struct Approval {
    /// The role whose members may decide.
    pub role: String,
    /// How many distinct people must approve (n of m); one rejection rejects.
    pub required: u32,
    /// Who may not approve.
    pub four_eyes: FourEyes,
    /// Where the case goes after the applicant resubmits it, once an
    /// approver returned it for changes. Default: the workflow's first step.
    pub on_return: Target,
}

/// Four-eyes rules of an approval.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FourEyes {
    /// The case's applicant may not approve. Default: true.
    pub not_applicant: bool,
    /// Whoever approved an earlier step of the case may not approve. Default: true.
    pub not_previous_approvers: bool,
}

/// What a wait step waits for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// This long after the step starts.
    For(Duration),
    /// Until this time.
    Until(SystemTime),
    /// A signal with this name; its data is merged into the case data.
    Signal(String),
}

/// Retrying transient failures.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    /// Executions in all, the first included; 1 means no retry.
    pub attempts: u32,
    /// Delay before the first retry; doubled for each later one.
    pub backoff: Duration,
    /// The longest delay between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt + 1`, after attempt `attempt` failed.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.backoff
            .saturating_mul(1u32 << doublings)
            .min(self.max_backoff)
    }
}

/// What happens when a waiting step has waited `after`.
#[derive(Clone, Debug, PartialEq)]
pub struct Escalation {
    /// Since the step started waiting.
    pub after: Duration,
    /// Hand the task to another role (approvals only).
    pub reassign: Option<String>,
    /// Tell someone.
    pub notify: Option<EscalationNotice>,
    /// Leave the step for another one (stops the wait).
    pub goto: Option<Target>,
}

/// A message the engine sends when a deadline passes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EscalationNotice {
    /// Delivery channel, for example `email`.
    pub channel: String,
    /// Recipient, if any.
    pub to: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
}
