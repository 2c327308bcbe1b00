//! Case tracking: what a clerk and an applicant see of one case.
//!
//! [`Status`] is the clerk's view: the stages in plain words with their
//! departments and roles, what happened so far and who decided, what each
//! pending stage waits for, its deadline, and an expected completion date.
//! [`PublicStatus`] is the applicant's view, found by tracking code: stages,
//! dates and outcomes only, plus the input fields the definition lists
//! under `public:`. It is built from a `Status` by copying what may be
//! shown, field by field, so nothing reaches it by default: no names, no
//! comments, no case id or business key, no other input.
//!
//! Both are pure functions of the case's journal, its workflow definition,
//! the measured step durations ([`Durations`]) and the time of asking.

mod estimate;

pub use estimate::Durations;

use crate::engine::{CaseView, OpenStep};
use crate::insight::{self, CaseJournal, StepKind as VisitKind, VisitOutcome};
use crate::store::{CaseStatus, Ending, Event, Millis};
use crate::workflow::{StepKind, Wait, Workflow, spelled_out};
use estimate::Estimator;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Where a case is, in one word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Being worked on or waiting for a stage.
    InProgress,
    /// Returned to the applicant for changes; it goes on when they resubmit.
    Returned,
    /// Ended normally.
    Completed,
    /// Ended with a refusal.
    Rejected,
    /// Ended because a step failed for good.
    Failed,
}

impl Phase {
    /// The phase in plain words.
    pub fn describe(self) -> &'static str {
        match self {
            Phase::InProgress => "in progress",
            Phase::Returned => "returned to the applicant for changes",
            Phase::Completed => "completed",
            Phase::Rejected => "rejected",
            Phase::Failed => "failed",
        }
    }
}

/// What a pending stage waits for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "for", rename_all = "snake_case")]
pub enum Waiting {
    /// An automated step runs.
    Processing,
    /// An automated step failed transiently and runs again at `at`.
    Retry {
        /// When it runs again.
        #[serde(serialize_with = "ser::at")]
        at: Millis,
    },
    /// People holding `role` decide; `required` of them must approve.
    Decision {
        /// The role holding the task.
        role: String,
        /// Approvals so far.
        approved: u32,
        /// Approvals needed.
        required: u32,
    },
    /// A named signal from another system.
    Signal {
        /// The signal's name.
        name: String,
    },
    /// A point in time.
    Timer {
        /// When the timer fires.
        #[serde(serialize_with = "ser::at_opt")]
        until: Option<Millis>,
    },
    /// A child case of another workflow.
    ChildCase {
        /// The child's workflow.
        workflow: String,
        /// The child case, once started.
        case: Option<String>,
    },
}

impl Waiting {
    /// What is awaited, in plain words, for a clerk.
    pub fn describe(&self) -> String {
        match self {
            Waiting::Processing => "automatic processing".to_owned(),
            Waiting::Retry { at } => format!("an automatic retry at {}", clock_text(*at)),
            Waiting::Decision {
                role,
                approved,
                required: 1,
            } if *approved == 0 => format!("a decision by role `{role}`"),
            Waiting::Decision {
                role,
                approved,
                required,
            } => format!("a decision by role `{role}` ({approved} of {required} approvals so far)"),
            Waiting::Signal { name } => format!("signal `{name}`"),
            Waiting::Timer { until: Some(at) } => format!("a timer, until {}", clock_text(*at)),
            Waiting::Timer { until: None } => "a timer".to_owned(),
            Waiting::ChildCase {
                workflow,
                case: Some(case),
            } => format!("child case {case} of `{workflow}`"),
            Waiting::ChildCase {
                workflow,
                case: None,
            } => format!("a child case of `{workflow}`"),
        }
    }

    /// What is awaited, in plain words, for the applicant: no roles, no
    /// case ids.
    fn describe_publicly(&self, department: &str) -> String {
        match self {
            Waiting::Processing | Waiting::Retry { .. } => "automatic processing".to_owned(),
            Waiting::Decision { .. } => format!("a decision by {department}"),
            Waiting::Signal { name } => format!("`{name}`"),
            Waiting::Timer { .. } => "a set date".to_owned(),
            Waiting::ChildCase { .. } => "a related procedure".to_owned(),
        }
    }
}

/// A stage the case is at.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Pending {
    /// The step's path (`reviews/fire/fire-safety`), as decisions name it.
    pub step: String,
    /// The stage in plain words.
    pub title: String,
    /// The department responsible.
    pub department: String,
    /// What it waits for.
    pub waiting: Waiting,
    /// Since when.
    #[serde(serialize_with = "ser::at")]
    pub since: Millis,
    /// Its first deadline, if it has one.
    #[serde(serialize_with = "ser::at_opt")]
    pub deadline: Option<Millis>,
    /// Whether a deadline has passed.
    pub overdue: bool,
    /// Deadlines that passed and escalated.
    pub escalations: u32,
    /// When the stage is expected to be done.
    #[serde(serialize_with = "ser::at")]
    pub expected_by: Millis,
}

/// A stage the case went through.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Stage {
    /// The step's path.
    pub step: String,
    /// The stage in plain words.
    pub title: String,
    /// The department responsible.
    pub department: String,
    /// When the case reached it.
    #[serde(serialize_with = "ser::at")]
    pub began: Millis,
    /// When the case left it.
    #[serde(serialize_with = "ser::at")]
    pub ended: Millis,
    /// How it ended.
    pub outcome: VisitOutcome,
    /// Who decided, for a decision by people.
    pub decided_by: Vec<String>,
    /// Whether it ended after its deadline.
    pub late: bool,
}

impl Stage {
    /// The outcome in plain words (`approved`, `done`, `not needed`...).
    pub fn describe(&self) -> &'static str {
        describe_outcome(self.outcome, !self.decided_by.is_empty())
    }
}

fn describe_outcome(outcome: VisitOutcome, decision: bool) -> &'static str {
    match outcome {
        VisitOutcome::Passed if decision => "approved",
        VisitOutcome::Passed => "done",
        VisitOutcome::Rejected => "rejected",
        VisitOutcome::Returned => "returned for changes",
        VisitOutcome::Failed => "failed",
        VisitOutcome::Escalated => "escalated",
        VisitOutcome::Cancelled => "not needed",
    }
}

/// A case as a clerk follows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Status {
    /// The case id.
    pub case: String,
    /// The applicant's tracking code.
    pub tracking_code: String,
    /// The workflow.
    pub workflow: String,
    /// The version the case runs on.
    pub version: u32,
    /// What the process is, in plain words (the definition's description).
    pub process: String,
    /// The department that owns the process.
    pub owner: String,
    /// The business key.
    pub key: Option<String>,
    /// Where the case is.
    pub phase: Phase,
    /// When it started.
    #[serde(serialize_with = "ser::at")]
    pub started: Millis,
    /// When it ended.
    #[serde(serialize_with = "ser::at_opt")]
    pub ended: Option<Millis>,
    /// For a returned case, the stage that returned it.
    pub returned_by: Option<String>,
    /// The stages it is at.
    pub pending: Vec<Pending>,
    /// The stages it went through, in the order it reached them.
    pub history: Vec<Stage>,
    /// When it is expected to end: the pending stages' remaining time and
    /// the stages after them, each by its measured median duration, or by
    /// its deadline where none was measured, along the slowest route.
    #[serde(serialize_with = "ser::at_opt")]
    pub expected_completion: Option<Millis>,
    /// How many recent cases the durations were measured on.
    pub measured_cases: usize,
    /// The time of asking.
    #[serde(serialize_with = "ser::at")]
    pub as_of: Millis,
    /// The input fields the definition marks public, as last submitted.
    pub public_fields: BTreeMap<String, Value>,
}

/// A case as its applicant follows it by tracking code: no personal data.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PublicStatus {
    /// The tracking code.
    pub tracking_code: String,
    /// What the process is.
    pub process: String,
    /// The department that owns it.
    pub department: String,
    /// Where the case is.
    pub phase: Phase,
    /// When it was submitted.
    #[serde(serialize_with = "ser::at")]
    pub submitted: Millis,
    /// When it ended.
    #[serde(serialize_with = "ser::at_opt")]
    pub ended: Option<Millis>,
    /// When it is expected to end.
    #[serde(serialize_with = "ser::at_opt")]
    pub expected_completion: Option<Millis>,
    /// The stages it is at.
    pub current: Vec<PublicStage>,
    /// The stages it went through.
    pub history: Vec<PublicStep>,
    /// The input fields the definition marks public.
    pub fields: BTreeMap<String, Value>,
}

/// A pending stage, publicly.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PublicStage {
    /// The stage.
    pub title: String,
    /// The department responsible.
    pub department: String,
    /// What it waits for, in plain words.
    pub waiting_for: String,
    /// Since when.
    #[serde(serialize_with = "ser::at")]
    pub since: Millis,
    /// Its deadline.
    #[serde(serialize_with = "ser::at_opt")]
    pub deadline: Option<Millis>,
    /// When it is expected to be done.
    #[serde(serialize_with = "ser::at")]
    pub expected_by: Millis,
}

/// A finished stage, publicly.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PublicStep {
    /// The stage.
    pub title: String,
    /// The department responsible.
    pub department: String,
    /// When the case reached it.
    #[serde(serialize_with = "ser::at")]
    pub began: Millis,
    /// When the case left it.
    #[serde(serialize_with = "ser::at")]
    pub ended: Millis,
    /// How it ended, in plain words.
    pub outcome: String,
}

impl Status {
    /// The applicant's view: what may be shown, copied field by field.
    pub fn public(&self) -> PublicStatus {
        PublicStatus {
            tracking_code: self.tracking_code.clone(),
            process: self.process.clone(),
            department: self.owner.clone(),
            phase: self.phase,
            submitted: self.started,
            ended: self.ended,
            expected_completion: self.expected_completion,
            current: self
                .pending
                .iter()
                .map(|p| PublicStage {
                    title: p.title.clone(),
                    department: p.department.clone(),
                    waiting_for: p.waiting.describe_publicly(&p.department),
                    since: p.since,
                    deadline: p.deadline,
                    expected_by: p.expected_by,
                })
                .collect(),
            history: self
                .history
                .iter()
                .map(|s| PublicStep {
                    title: s.title.clone(),
                    department: s.department.clone(),
                    began: s.began,
                    ended: s.ended,
                    outcome: s.describe().to_owned(),
                })
                .collect(),
            fields: self.public_fields.clone(),
        }
    }
}

/// The status of the case `view` shows, at `now`. `workflow` is the
/// definition the case runs on; without it (its plugins are gone) stages
/// are named after their ids and no field is public.
pub fn status(
    view: &CaseView,
    workflow: Option<&Workflow>,
    durations: &Durations,
    now: Millis,
) -> Status {
    let row = &view.row;
    let mut input = Value::Null;
    let mut returned_by = None;
    for recorded in &view.journal {
        match &recorded.event {
            Event::CaseStarted { input: first, .. } => input = first.clone(),
            Event::Resubmitted { data } => {
                crate::engine::merge_into(&mut input, data);
                returned_by = None;
            }
            Event::Returned { step } => returned_by = Some(step.clone()),
            _ => {}
        }
    }
    let phase = match row.status {
        CaseStatus::Ended(Ending::Completed) => Phase::Completed,
        CaseStatus::Ended(Ending::Rejected) => Phase::Rejected,
        CaseStatus::Ended(Ending::Failed) => Phase::Failed,
        _ if returned_by.is_some() => Phase::Returned,
        _ => Phase::InProgress,
    };
    let owner = workflow.map(|w| w.owner.clone()).unwrap_or_default();
    let names = Names {
        workflow,
        owner: &owner,
    };
    let visits = insight::visits(&CaseJournal {
        id: row.id.clone(),
        events: view.journal.clone(),
    });
    let visits = visits.map(|v| v.visits).unwrap_or_default();

    let history = visits
        .iter()
        .filter_map(|visit| {
            let ended = visit.ended?;
            let decided_by = if visit.kind == Some(VisitKind::Approval) {
                visit.resources.clone()
            } else {
                Vec::new()
            };
            Some(Stage {
                step: visit.step.clone(),
                title: names.title(&visit.step),
                department: names.department(&visit.step),
                began: visit.started,
                ended,
                outcome: visit.outcome.unwrap_or(VisitOutcome::Cancelled),
                decided_by,
                late: visit.breached(),
            })
        })
        .collect();

    let mut estimator = workflow.map(|w| Estimator::new(w, durations, &view.open, now));
    let pending = view
        .open
        .iter()
        .filter(|open| open.kind != "parallel")
        .map(|open| {
            let step = workflow.and_then(|w| w.step(&open.step));
            let waiting = waiting(open, step.map(|s| &s.kind));
            let first_deadline = visits
                .iter()
                .rev()
                .find(|v| v.step == open.step && v.ended.is_none())
                .and_then(|v| v.deadline);
            let deadline = match waiting {
                Waiting::Processing | Waiting::Retry { .. } | Waiting::Timer { .. } => None,
                _ => first_deadline.or(open.due),
            };
            let remaining = match (&mut estimator, step) {
                (Some(estimator), Some(step)) => estimator.stage(step, &open.step),
                _ => 0,
            };
            Pending {
                step: open.step.clone(),
                title: names.title(&open.step),
                department: names.department(&open.step),
                waiting,
                since: open.since,
                deadline,
                overdue: open.escalations > 0 || deadline.is_some_and(|d| d <= now),
                escalations: open.escalations,
                expected_by: now + remaining,
            }
        })
        .collect();
    let expected_completion = match (phase, estimator) {
        (Phase::InProgress, Some(mut estimator)) => estimator.remaining().map(|r| now + r),
        _ => None,
    };

    let public_fields = workflow
        .map(|w| {
            w.public
                .iter()
                .filter_map(|field| Some((field.clone(), input.get(field)?.clone())))
                .collect()
        })
        .unwrap_or_default();

    Status {
        case: row.id.clone(),
        tracking_code: row.tracking_code.clone(),
        workflow: row.workflow.clone(),
        version: row.version,
        process: workflow
            .map(|w| w.description.clone())
            .filter(|d| !d.is_empty())
            .unwrap_or_else(|| row.workflow.clone()),
        owner,
        key: row.key.clone(),
        phase,
        started: row.created_at,
        ended: row.status.is_ended().then_some(row.updated_at),
        returned_by: if phase == Phase::Returned {
            returned_by
        } else {
            None
        },
        pending,
        history,
        expected_completion,
        measured_cases: durations.cases(),
        as_of: now,
        public_fields,
    }
}

/// What an open step waits for.
fn waiting(open: &OpenStep, kind: Option<&StepKind>) -> Waiting {
    match kind {
        Some(StepKind::Approval(approval)) => Waiting::Decision {
            role: open.role.clone().unwrap_or_else(|| approval.role.clone()),
            approved: open.approved,
            required: approval.required,
        },
        Some(StepKind::Wait(Wait::Signal(name))) => Waiting::Signal { name: name.clone() },
        Some(StepKind::Wait(_)) => Waiting::Timer { until: open.due },
        Some(StepKind::Subflow { workflow, .. }) => Waiting::ChildCase {
            workflow: workflow.clone(),
            case: open.child.clone(),
        },
        _ if open.retrying => Waiting::Retry {
            at: open.due.unwrap_or(open.since),
        },
        _ => Waiting::Processing,
    }
}

/// Stage titles and departments from the definition.
struct Names<'a> {
    workflow: Option<&'a Workflow>,
    owner: &'a str,
}

impl Names<'_> {
    fn title(&self, path: &str) -> String {
        match self.workflow.and_then(|w| w.step(path)) {
            Some(step) => step.title.clone(),
            None => spelled_out(path.rsplit('/').next().unwrap_or(path)),
        }
    }

    fn department(&self, path: &str) -> String {
        match self.workflow.and_then(|w| w.step(path)) {
            Some(step) => step.department.clone(),
            None => self.owner.to_owned(),
        }
    }
}

/// An instant to the minute, UTC, for text: `2026-03-05 14:00 UTC`.
pub fn clock_text(at: Millis) -> String {
    let text = crate::engine::rfc3339(at);
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// An instant's calendar day, UTC: `2026-03-05`.
pub fn date_text(at: Millis) -> String {
    crate::engine::rfc3339(at)[..10].to_owned()
}

/// Instants as RFC 3339 in the views' JSON.
mod ser {
    use crate::store::Millis;
    use serde::Serializer;

    pub fn at<S: Serializer>(at: &Millis, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&crate::engine::rfc3339(*at))
    }

    #[expect(clippy::ref_option, reason = "serde's serialize_with signature")]
    pub fn at_opt<S: Serializer>(at: &Option<Millis>, s: S) -> Result<S::Ok, S::Error> {
        match at {
            Some(at) => s.serialize_str(&crate::engine::rfc3339(*at)),
            None => s.serialize_none(),
        }
    }
}
