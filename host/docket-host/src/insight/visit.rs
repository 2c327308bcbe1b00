//! A case's journal read as step visits: when each step began, when the
//! case left it, what it decided, how long a plugin worked, who acted.
//! Everything the KPIs, the XES and the OCEL exports need comes from here,
//! so the three agree on what a step's duration is.
//!
//! A visit begins at the step's first `StepScheduled` (or a parallel step's
//! `BranchesStarted`) and ends at the event that concludes it: a plugin's
//! final `StepFinished` or `StepFailed`, a rejecting or returning decision,
//! a timer, a child case's end, a join, an escalation that moves the case
//! on. Some steps end without an event of their own (a wait consumed by a
//! signal, the last approval of an n-of-m task, a branch cancelled by a
//! join): they end when the case leaves their sequence, which the journal
//! shows as the next step scheduled in the same sequence, the end of their
//! branch, or the end of the case.

use crate::store::{Ending, Event, Millis, Recorded, Verdict};
use serde::Serialize;

/// A case's journal with its id (the journal itself does not name its case).
#[derive(Clone, Debug, PartialEq)]
pub struct CaseJournal {
    /// The case id.
    pub id: String,
    /// Every event, in order.
    pub events: Vec<Recorded>,
}

/// What a step is, as far as its journal shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Ran a plugin.
    Plugin,
    /// A task for people in a role.
    Approval,
    /// Waited for a timer or a signal.
    Wait,
    /// Ran a child case.
    Subflow,
    /// Ran branches and joined them; its time is its branches' time.
    Parallel,
}

impl StepKind {
    /// The kind's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Plugin => "plugin",
            StepKind::Approval => "approval",
            StepKind::Wait => "wait",
            StepKind::Subflow => "subflow",
            StepKind::Parallel => "parallel",
        }
    }
}

/// How a visit ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VisitOutcome {
    /// The case went on normally (continue, route, approve, timer, signal, join met).
    Passed,
    /// The step rejected the case.
    Rejected,
    /// An approver returned the case to the applicant.
    Returned,
    /// The step failed for good.
    Failed,
    /// An escalation moved the case elsewhere.
    Escalated,
    /// The case left without the step deciding (a join decided, the case ended).
    Cancelled,
}

impl VisitOutcome {
    /// The outcome's name.
    pub fn as_str(self) -> &'static str {
        match self {
            VisitOutcome::Passed => "passed",
            VisitOutcome::Rejected => "rejected",
            VisitOutcome::Returned => "returned",
            VisitOutcome::Failed => "failed",
            VisitOutcome::Escalated => "escalated",
            VisitOutcome::Cancelled => "cancelled",
        }
    }

    fn from_ending(ending: Ending) -> VisitOutcome {
        match ending {
            Ending::Completed => VisitOutcome::Passed,
            Ending::Rejected => VisitOutcome::Rejected,
            Ending::Failed => VisitOutcome::Failed,
        }
    }
}

/// One stay of a case at one step.
#[derive(Clone, Debug, PartialEq)]
pub struct Visit {
    /// The step's path.
    pub step: String,
    /// What the step is; `None` when the journal does not tell (a wait for
    /// a signal, a plugin step cancelled before it ran).
    pub kind: Option<StepKind>,
    /// When it began.
    pub started: Millis,
    /// When the case left it; `None` while the case is still there.
    pub ended: Option<Millis>,
    /// How it ended; `None` while open.
    pub outcome: Option<VisitOutcome>,
    /// Time a plugin spent executing, from each attempt's scheduling to its
    /// outcome. The rest of the visit is waiting: for people, a timer, a
    /// signal, a child case or a retry's back-off (a parallel step neither
    /// works nor waits: its branches do).
    pub working: Millis,
    /// Executions, the first included (1 for steps that run no plugin).
    pub attempts: u32,
    /// Deadlines that passed while the case was here.
    pub escalations: u32,
    /// The first deadline, for approvals and subflows.
    pub deadline: Option<Millis>,
    /// The role that held the task last, for approvals.
    pub role: Option<String>,
    /// Who decided: the people who decided an approval, or `plugin:<digest>`.
    pub resources: Vec<String>,
    /// The plugin's outcome or the verdict, in the journal's words
    /// (`continue`, `route`, `reject`, `approve`...), for exports.
    pub detail: Option<String>,
    attempt_started: Millis,
}

impl Visit {
    /// How long the visit lasted, up to `as_of` while it is open.
    pub fn duration(&self, as_of: Millis) -> Millis {
        (self.ended.unwrap_or(as_of) - self.started).max(0)
    }

    /// The part of [`Visit::duration`] that was waiting, not working.
    pub fn waiting(&self, as_of: Millis) -> Millis {
        if self.kind == Some(StepKind::Parallel) {
            return 0; // its branches account for the time
        }
        (self.duration(as_of) - self.working).max(0)
    }

    /// Whether the visit's deadline passed: an escalation was recorded, or
    /// the step concluded after its deadline (a decision taken late while
    /// no worker fired the deadline).
    pub fn breached(&self) -> bool {
        self.escalations > 0
            || matches!((self.deadline, self.ended), (Some(due), Some(end)) if end > due)
    }
}

/// A case read as visits.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseVisits {
    /// The case id.
    pub id: String,
    /// The workflow's name.
    pub workflow: String,
    /// The version the case runs on.
    pub version: u32,
    /// The business key.
    pub key: Option<String>,
    /// When it started.
    pub started: Millis,
    /// When and how it ended, if it has.
    pub ended: Option<(Millis, Ending)>,
    /// Its last event's time.
    pub last_event: Millis,
    /// Every step visit, in the order they began.
    pub visits: Vec<Visit>,
}

impl CaseVisits {
    /// How long the case ran, up to `as_of` while it is open.
    pub fn duration(&self, as_of: Millis) -> Millis {
        (self.ended.map_or(as_of, |(at, _)| at) - self.started).max(0)
    }
}

/// The sequence a step belongs to: its path without its own id.
fn scope_of(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(scope, _)| scope)
}

/// Reads a journal as visits; `None` if it does not begin with `CaseStarted`.
pub fn visits(journal: &CaseJournal) -> Option<CaseVisits> {
    let first = journal.events.first()?;
    let Event::CaseStarted {
        workflow,
        version,
        key,
        ..
    } = &first.event
    else {
        return None;
    };
    let mut case = CaseVisits {
        id: journal.id.clone(),
        workflow: workflow.clone(),
        version: *version,
        key: key.clone(),
        started: first.at,
        ended: None,
        last_event: journal.events.last().map_or(first.at, |r| r.at),
        visits: Vec::new(),
    };
    let mut reader = Reader {
        visits: &mut case.visits,
    };
    for recorded in &journal.events[1..] {
        let at = recorded.at;
        match &recorded.event {
            Event::CaseStarted { .. } | Event::Returned { .. } | Event::Resubmitted { .. } => {}
            Event::SignalReceived { .. } => {}
            Event::StepScheduled {
                step,
                attempt,
                role,
                due,
            } => match reader.open(step) {
                // A retry: the same visit goes on; the back-off was waiting.
                Some(visit) if *attempt > 1 => {
                    visit.attempts = *attempt;
                    visit.attempt_started = at;
                }
                _ => {
                    reader.close_where(at, VisitOutcome::Passed, |path| {
                        path == step || scope_of(path) == scope_of(step)
                    });
                    reader.visits.push(Visit {
                        step: step.clone(),
                        kind: role.as_ref().map(|_| StepKind::Approval),
                        started: at,
                        ended: None,
                        outcome: None,
                        working: 0,
                        attempts: *attempt,
                        escalations: 0,
                        deadline: role.as_ref().and(*due),
                        role: role.clone(),
                        resources: Vec::new(),
                        detail: None,
                        attempt_started: at,
                    });
                }
            },
            Event::BranchesStarted { step } => {
                reader.close_where(at, VisitOutcome::Passed, |path| {
                    path == step || scope_of(path) == scope_of(step)
                });
                reader.visits.push(Visit {
                    step: step.clone(),
                    kind: Some(StepKind::Parallel),
                    started: at,
                    ended: None,
                    outcome: None,
                    working: 0,
                    attempts: 1,
                    escalations: 0,
                    deadline: None,
                    role: None,
                    resources: Vec::new(),
                    detail: None,
                    attempt_started: at,
                });
            }
            Event::StepFinished {
                step,
                outcome,
                plugin,
                ..
            } => {
                if let Some(visit) = reader.open(step) {
                    visit.kind = Some(StepKind::Plugin);
                    visit.working += (at - visit.attempt_started).max(0);
                    visit.resources = vec![format!("plugin:{}", short_digest(plugin))];
                    visit.detail = Some(outcome.clone());
                    let result = if outcome == "reject" {
                        VisitOutcome::Rejected
                    } else {
                        VisitOutcome::Passed
                    };
                    close(visit, at, result);
                }
            }
            Event::StepFailed { step, retry_at, .. } => {
                if let Some(visit) = reader.open(step) {
                    visit.kind = Some(StepKind::Plugin);
                    visit.working += (at - visit.attempt_started).max(0);
                    visit.detail = Some("error".into());
                    if retry_at.is_none() {
                        close(visit, at, VisitOutcome::Failed);
                    }
                }
            }
            Event::ApprovalDecided {
                step, verdict, by, ..
            } => {
                if let Some(visit) = reader.open(step) {
                    visit.resources.push(by.clone());
                    visit.detail = Some(verdict.as_str().to_owned());
                    match verdict {
                        // An n-of-m task may need more approvals; the visit
                        // ends when the case leaves the step.
                        Verdict::Approve => visit.outcome = Some(VisitOutcome::Passed),
                        Verdict::Reject => close(visit, at, VisitOutcome::Rejected),
                        Verdict::Return => close(visit, at, VisitOutcome::Returned),
                    }
                }
            }
            Event::DeadlinePassed { step, .. } => {
                if let Some(visit) = reader.open(step) {
                    visit.escalations += 1;
                }
            }
            Event::Reassigned { step, role, .. } => {
                if let Some(visit) = reader.open(step) {
                    visit.role = Some(role.clone());
                }
            }
            Event::TimerFired { step } => {
                if let Some(visit) = reader.open(step) {
                    visit.kind = Some(StepKind::Wait);
                    visit.detail = Some("timer".into());
                    close(visit, at, VisitOutcome::Passed);
                }
            }
            Event::ChildStarted { step, .. } => {
                if let Some(visit) = reader.open(step) {
                    visit.kind = Some(StepKind::Subflow);
                }
            }
            Event::ChildEnded { step, ending, .. } => {
                if let Some(visit) = reader.open(step) {
                    visit.detail = Some(ending.as_str().to_owned());
                    close(visit, at, VisitOutcome::from_ending(*ending));
                }
            }
            Event::BranchEnded { step, branch, .. } => {
                let scope = format!("{step}/{branch}");
                reader.close_where(at, VisitOutcome::Passed, |path| scope_of(path) == scope);
            }
            Event::Joined { step, ending } => {
                let inside = format!("{step}/");
                reader.close_where(at, VisitOutcome::Cancelled, |path| {
                    path.starts_with(&inside)
                });
                if let Some(visit) = reader.open(step) {
                    visit.detail = Some(ending.as_str().to_owned());
                    close(visit, at, VisitOutcome::from_ending(*ending));
                }
            }
            Event::Moved { from, reason, .. } => {
                if let Some(visit) = reader.open(from) {
                    let outcome = match visit.outcome {
                        Some(outcome) => outcome,
                        None if reason == "deadline" => VisitOutcome::Escalated,
                        None => VisitOutcome::Cancelled,
                    };
                    close(visit, at, outcome);
                }
            }
            Event::CaseEnded { ending, .. } => {
                let left = match ending {
                    Ending::Completed => VisitOutcome::Passed,
                    Ending::Rejected | Ending::Failed => VisitOutcome::Cancelled,
                };
                reader.close_where(at, left, |_| true);
                case.ended = Some((at, *ending));
            }
        }
    }
    Some(case)
}

struct Reader<'a> {
    visits: &'a mut Vec<Visit>,
}

impl Reader<'_> {
    /// The open visit of `step`.
    fn open(&mut self, step: &str) -> Option<&mut Visit> {
        self.visits
            .iter_mut()
            .rev()
            .find(|v| v.step == step && v.ended.is_none())
    }

    /// Closes every open visit whose path matches: the case left them
    /// without an event of their own, the way `left` says unless a decision
    /// was already recorded. A visit of unknown kind that the case left by
    /// going on was a wait for a signal: plugin steps, approvals and
    /// subflows all record what they are.
    fn close_where(&mut self, at: Millis, left: VisitOutcome, matches: impl Fn(&str) -> bool) {
        for visit in self.visits.iter_mut() {
            if visit.ended.is_none() && matches(&visit.step) {
                let outcome = visit.outcome.unwrap_or(left);
                if visit.kind.is_none() && outcome == VisitOutcome::Passed {
                    visit.kind = Some(StepKind::Wait);
                }
                close(visit, at, outcome);
            }
        }
    }
}

fn close(visit: &mut Visit, at: Millis, outcome: VisitOutcome) {
    visit.ended = Some(at);
    visit.outcome = Some(outcome);
}

/// The first 12 hex digits of a plugin digest: enough to tell builds apart.
fn short_digest(digest: &str) -> &str {
    digest.get(..12).unwrap_or(digest)
}
