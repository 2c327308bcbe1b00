//! The surface syntax of a workflow definition: the YAML a department
//! writes, as serde and schemars types. Every value keeps its position
//! ([`Sp`]); nothing is checked here beyond the shape, which is what the
//! committed JSON Schema (`schema/workflow.schema.json`) describes.
//!
//! Fields are plain `Option`s rather than enums: the "exactly one of"
//! rules (a step's kind, a wait's condition) are checked by
//! [`super::check`], which can then say which fields collide and where.

use super::node::{Lenient, Pairs, Sp};
use schemars::JsonSchema;
use serde::Deserialize;

/// A sequence of steps; a step that does not deserialize is reported and
/// skipped, so that the others are still checked.
pub type Sequence = Sp<Vec<Lenient<StepDef>>>;

/// A workflow definition.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[serde(
    expecting = "a workflow definition: a mapping with `workflow`, `version`, `owner` and `steps`"
)]
#[schemars(title = "docket workflow")]
pub struct Document {
    /// The workflow's name: lowercase letters, digits and `-`, for example `building-permit`.
    #[schemars(regex(pattern = r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"))]
    pub workflow: Sp<String>,
    /// The definition's version, from 1; a case runs to its end on the version it started with.
    #[schemars(range(min = 1))]
    pub version: Sp<i64>,
    /// The department that owns the process.
    pub owner: Sp<String>,
    /// What the process is for.
    #[serde(default)]
    pub description: Option<String>,
    /// JSON Schema (draft 2020-12) the input of a new case must satisfy.
    #[serde(default)]
    pub input: Option<Sp<serde_json::Value>>,
    /// Input fields the public view of a case (by tracking code) may show:
    /// names of properties the input schema declares. Everything else the
    /// applicant entered stays out of it.
    #[serde(default)]
    pub public: Option<Sp<Vec<Sp<String>>>>,
    /// How long an ended case keeps its personal data; after that,
    /// `docket retention` archives its full record and purges it.
    #[serde(default)]
    pub retention: Option<Sp<RetentionDef>>,
    /// The top-level sequence of steps; a case starts at the first one.
    pub steps: Sequence,
}

/// One step: an `id` and exactly one of `uses`, `parallel`, `approval`, `wait`, `subflow`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a step: a mapping with an `id` and one of `uses`, `parallel`, `approval`, `wait`, `subflow`"
)]
#[schemars(rename = "Step")]
pub struct StepDef {
    /// Unique within its sequence; not `end`, `reject` or `fail`.
    pub id: Sp<String>,
    /// The stage's name in plain words, as applicants and clerks read it
    /// (`Fire safety review`); default: the id, spelled out.
    #[serde(default)]
    pub title: Option<Sp<String>>,
    /// The department responsible for the stage; default: the workflow's owner.
    #[serde(default)]
    pub department: Option<Sp<String>>,

    /// Run a plugin: its name, optionally `@` and a semver requirement (`validate-schema@0.1`).
    #[serde(default)]
    pub uses: Option<Sp<String>>,
    /// Run branches concurrently and join them.
    #[serde(default)]
    pub parallel: Option<Sp<ParallelDef>>,
    /// A decision by people holding a role.
    #[serde(default)]
    pub approval: Option<Sp<ApprovalDef>>,
    /// Wait for a signal, a duration or a point in time.
    #[serde(default)]
    pub wait: Option<Sp<WaitDef>>,
    /// Start another workflow as a child case and wait for its end.
    #[serde(default)]
    pub subflow: Option<Sp<SubflowDef>>,

    /// The plugin's config (`uses` steps only).
    #[serde(default)]
    pub with: Option<Sp<serde_json::Value>>,
    /// Capabilities the plugin gets: `log`, `notify`, `settings`, `secrets` (`uses` steps only).
    #[serde(default)]
    #[schemars(with = "Option<Vec<CapabilityName>>")]
    pub grant: Option<Sp<Vec<Sp<String>>>>,
    /// Settings the plugin may read (`uses` steps only).
    #[serde(default)]
    pub settings: Option<Sp<Pairs<Sp<String>, Sp<String>>>>,
    /// Wall-time limit of one plugin execution, for example `500ms` (`uses` steps only).
    #[serde(default)]
    pub timeout: Option<Sp<String>>,
    /// How to retry transient failures (`uses` steps only).
    #[serde(default)]
    pub retry: Option<Sp<RetryDef>>,
    /// Route name -> target: exclusive branching on the route the plugin returns (`uses` steps only).
    #[serde(default)]
    pub routes: Option<Sp<Pairs<Sp<String>, Sp<String>>>>,
    /// Target when no route matches; default: `next` (`uses` steps only).
    #[serde(default)]
    pub default: Option<Sp<String>>,

    /// Where the case goes when the step finishes; default: the following step, or `end` after the last.
    #[serde(default)]
    pub next: Option<Sp<String>>,
    /// Where the case goes when the step rejects it; default `reject`.
    #[serde(default)]
    pub on_reject: Option<Sp<String>>,
    /// Where the case goes when the step fails for good; default `fail`.
    #[serde(default)]
    pub on_error: Option<Sp<String>>,
    /// What happens when a waiting step (approval, wait, subflow) waits too long.
    #[serde(default)]
    pub escalate: Option<Sp<Vec<Sp<EscalationDef>>>>,
}

/// Concurrent branches and when they are done.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a parallel step: a mapping with `branches` and optionally `join`"
)]
#[schemars(rename = "Parallel")]
pub struct ParallelDef {
    /// When the parallel step is done; default `all`.
    #[serde(default)]
    pub join: Option<Sp<JoinDef>>,
    /// Branch name -> the branch's sequence of steps.
    #[serde(default)]
    pub branches: Option<Sp<Pairs<Sp<String>, Sequence>>>,
}

/// When a parallel step is done.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(rename = "Join")]
pub enum JoinDef {
    /// Every branch completed.
    All,
    /// One branch completed; the others are cancelled.
    Any,
    /// This many branches completed; the others are cancelled.
    AtLeast(#[schemars(range(min = 1))] Sp<i64>),
}

/// A human task.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an approval: a mapping with a `role`"
)]
#[schemars(rename = "Approval")]
pub struct ApprovalDef {
    /// The role whose members may decide.
    #[serde(default)]
    pub role: Option<Sp<String>>,
    /// How many distinct people must approve; default 1.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub required: Option<Sp<i64>>,
    /// Who may not approve; by default neither the applicant nor earlier approvers.
    #[serde(default)]
    pub four_eyes: Option<FourEyesDef>,
    /// A top-level step to resume at once the applicant resubmits a returned case; default: the first step.
    #[serde(default)]
    pub on_return: Option<Sp<String>>,
}

/// Four-eyes rules.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "four-eyes rules: a mapping with `applicant` and `previous_approvers`"
)]
#[schemars(rename = "FourEyes")]
pub struct FourEyesDef {
    /// The case's applicant may not approve; default true.
    #[serde(default)]
    pub applicant: Option<bool>,
    /// Whoever approved an earlier step of the case may not approve; default true.
    #[serde(default)]
    pub previous_approvers: Option<bool>,
}

/// What a wait step waits for: exactly one of `signal`, `for`, `until`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a wait: a mapping with one of `signal`, `for`, `until`"
)]
#[schemars(rename = "Wait")]
pub struct WaitDef {
    /// A signal's name; its data is merged into the case data.
    #[serde(default)]
    pub signal: Option<Sp<String>>,
    /// A duration after the step starts, for example `3d`.
    #[serde(default, rename = "for")]
    pub for_: Option<Sp<String>>,
    /// An RFC 3339 timestamp, for example `2026-01-31T12:00:00Z`.
    #[serde(default)]
    pub until: Option<Sp<String>>,
}

/// A retention policy.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a retention policy: a mapping with `keep`"
)]
#[schemars(rename = "Retention")]
pub struct RetentionDef {
    /// How long after its end a case is kept whole, for example `365d`.
    pub keep: Sp<String>,
}

/// A child case.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a subflow: a mapping with `workflow` and optionally `version`"
)]
#[schemars(rename = "Subflow")]
pub struct SubflowDef {
    /// The child workflow's name.
    pub workflow: Sp<String>,
    /// Its version; default: the latest deployed when the child starts.
    #[serde(default)]
    pub version: Option<Sp<i64>>,
}

/// Retrying transient failures.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a retry policy: a mapping with `attempts`, `backoff`, `max_backoff`"
)]
#[schemars(rename = "Retry")]
pub struct RetryDef {
    /// Executions in all, the first included; at least 1.
    #[schemars(range(min = 1))]
    pub attempts: Sp<i64>,
    /// Delay before the first retry, doubled for each later one; default `1s`.
    #[serde(default)]
    pub backoff: Option<Sp<String>>,
    /// The longest delay between two attempts; default `5m`.
    #[serde(default)]
    pub max_backoff: Option<Sp<String>>,
}

/// What happens when a waiting step has waited `after`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "an escalation: a mapping with `after` and `reassign`, `notify` or `goto`"
)]
#[schemars(rename = "Escalation")]
pub struct EscalationDef {
    /// How long since the step started waiting, for example `10d`.
    pub after: Sp<String>,
    /// Hand the task to another role (approvals only).
    #[serde(default)]
    pub reassign: Option<Sp<String>>,
    /// Tell someone.
    #[serde(default)]
    pub notify: Option<Sp<NoticeDef>>,
    /// Leave the step for this target.
    #[serde(default)]
    pub goto: Option<Sp<String>>,
}

/// A message sent when a deadline passes.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    deny_unknown_fields,
    expecting = "a notice: a mapping with `channel`, `subject`, `body` and optionally `to`"
)]
#[schemars(rename = "EscalationNotice")]
pub struct NoticeDef {
    /// Delivery channel, for example `email`.
    pub channel: String,
    /// Recipient, if any.
    #[serde(default)]
    pub to: Option<String>,
    /// Subject line.
    pub subject: String,
    /// Body.
    pub body: String,
}

// For the schema only: the checker reads plain strings, so that an unknown
// capability gets its own diagnostic.
/// A capability a step can be granted.
#[derive(JsonSchema)]
#[schemars(rename = "Capability")]
#[serde(rename_all = "snake_case")]
#[expect(dead_code, reason = "only its schema is used")]
enum CapabilityName {
    /// Write to the host's log.
    Log,
    /// Ask the host to deliver a message.
    Notify,
    /// Read deployment settings.
    Settings,
    /// Read secrets.
    Secrets,
}
