//! A case's state, derived from its journal and from nothing else.
//!
//! [`CaseState::apply`] is the only function that changes a case's state,
//! and it looks only at the event and the workflow version the case runs
//! on. The engine applies each event as it emits it, and recovery applies
//! the stored journal: both arrive at the same state.

use super::clock::duration_millis;
use crate::store::{CaseStatus, CaseUpdate, Ending, Event, Millis, ParentRef, Recorded, Verdict};
use crate::workflow::{StepKind, Wait, Workflow};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// A case as the engine sees it.
#[derive(Clone, Debug)]
pub(crate) struct CaseState {
    pub id: String,
    pub workflow: Arc<Workflow>,
    pub applicant: Option<String>,
    pub parent: Option<ParentRef>,
    /// Events so far: the next event's seq is `seq + 1`.
    pub seq: u64,
    /// The top-level sequence's case data.
    pub data: Value,
    pub ending: Option<Ending>,
    /// Steps in progress, by path.
    pub active: BTreeMap<String, Active>,
    /// Parallel steps in progress, by path.
    pub parallels: BTreeMap<String, Parallel>,
    /// Everyone who approved an approval step that has finished.
    pub approvers: BTreeSet<String>,
    /// Signals that arrived before a step waited for them.
    pub signals: Vec<(String, Value)>,
    /// The approval step that returned the case to the applicant.
    pub returned: Option<String>,
}

/// A step in progress.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Active {
    pub attempt: u32,
    /// The journal position of the event that began this attempt: what an
    /// execution answers to, since a step that was cancelled and entered
    /// again begins the same attempt number anew.
    pub scheduled: u64,
    /// When the step (its current attempt) began.
    pub since: Millis,
    /// When something is due: a retry, a timer, the next escalation.
    pub due: Option<Millis>,
    /// Escalations applied so far.
    pub escalations: u32,
    /// For approvals, the role holding the task.
    pub role: Option<String>,
    /// For approvals, who approved so far.
    pub approved_by: Vec<String>,
    /// For subflows, the child case.
    pub child: Option<String>,
    /// For plugins, whether an execution is due or running (false while
    /// waiting for a retry).
    pub runnable: bool,
}

/// A parallel step in progress.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Parallel {
    /// Each branch's case data.
    pub data: BTreeMap<String, Value>,
    /// The branches that ended, and how.
    pub ended: BTreeMap<String, Ending>,
}

/// The sequence a step path belongs to: `""` for the top level,
/// `"reviews/fire"` for a step of branch `fire` of parallel step `reviews`.
pub(crate) fn scope_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(idx) => &path[..idx],
        None => "",
    }
}

/// The path of step `id` in `scope`.
pub(crate) fn path_in(scope: &str, id: &str) -> String {
    if scope.is_empty() {
        id.to_owned()
    } else {
        format!("{scope}/{id}")
    }
}

/// A branch scope's parallel step path and branch name.
pub(crate) fn split_branch(scope: &str) -> Option<(&str, &str)> {
    let idx = scope.rfind('/')?;
    Some((&scope[..idx], &scope[idx + 1..]))
}

impl CaseState {
    /// The state after a case's first event, which must be `CaseStarted`.
    pub fn new(id: String, workflow: Arc<Workflow>, first: &Recorded) -> Option<CaseState> {
        let Event::CaseStarted {
            applicant,
            input,
            parent,
            ..
        } = &first.event
        else {
            return None;
        };
        Some(CaseState {
            id,
            workflow,
            applicant: applicant.clone(),
            parent: parent.clone(),
            seq: first.seq,
            data: input.clone(),
            ending: None,
            active: BTreeMap::new(),
            parallels: BTreeMap::new(),
            approvers: BTreeSet::new(),
            signals: Vec::new(),
            returned: None,
        })
    }

    /// The case data of the sequence `scope`.
    pub fn data_of(&self, scope: &str) -> &Value {
        match split_branch(scope) {
            None => &self.data,
            Some((parallel, branch)) => self
                .parallels
                .get(parallel)
                .and_then(|p| p.data.get(branch))
                .unwrap_or(&Value::Null),
        }
    }

    fn data_of_mut(&mut self, scope: &str) -> Option<&mut Value> {
        match split_branch(scope) {
            None => Some(&mut self.data),
            Some((parallel, branch)) => self.parallels.get_mut(parallel)?.data.get_mut(branch),
        }
    }

    fn set_data(&mut self, scope: &str, data: Value) {
        if let Some(slot) = self.data_of_mut(scope) {
            *slot = data;
        }
    }

    /// The attempt of plugin step `path` that the event at `scheduled`
    /// began, if it is still the one to run: an execution for any other
    /// (cancelled meanwhile, perhaps begun again since) answers nothing.
    pub fn attempt_to_run(&self, path: &str, scheduled: u64) -> Option<u32> {
        self.active
            .get(path)
            .filter(|active| active.scheduled == scheduled && active.runnable)
            .map(|active| active.attempt)
    }

    /// Where the case is.
    pub fn status(&self) -> CaseStatus {
        if let Some(ending) = self.ending {
            return CaseStatus::Ended(ending);
        }
        if self.active.values().any(|a| a.runnable) {
            CaseStatus::Running
        } else {
            CaseStatus::Waiting
        }
    }

    /// The store's index fields for the case as it is now.
    pub fn update(&self) -> CaseUpdate {
        let mut roles: Vec<String> = self
            .active
            .values()
            .filter_map(|a| a.role.clone())
            .collect();
        roles.sort();
        roles.dedup();
        CaseUpdate {
            status: self.status(),
            waiting_roles: roles,
            next_due: self.next_due(),
        }
    }

    /// The earliest time something of this case is due.
    pub fn next_due(&self) -> Option<Millis> {
        self.active.values().filter_map(|a| a.due).min()
    }

    /// The steps in progress, in path order.
    pub fn open_steps(&self) -> Vec<super::OpenStep> {
        self.active
            .iter()
            .map(|(path, active)| {
                let kind = match self.workflow.step(path).map(|s| &s.kind) {
                    Some(StepKind::Plugin(_)) => "plugin",
                    Some(StepKind::Approval(_)) => "approval",
                    Some(StepKind::Wait(_)) => "wait",
                    Some(StepKind::Subflow { .. }) => "subflow",
                    Some(StepKind::Parallel { .. }) | None => "parallel",
                };
                super::OpenStep {
                    step: path.clone(),
                    kind,
                    role: active.role.clone(),
                    since: active.since,
                    due: active.due,
                    escalations: active.escalations,
                    approved: u32::try_from(active.approved_by.len()).unwrap_or(u32::MAX),
                    child: active.child.clone(),
                    retrying: kind == "plugin" && !active.runnable,
                }
            })
            .collect()
    }

    /// Changes the state by one event.
    pub fn apply(&mut self, recorded: &Recorded) {
        self.seq = recorded.seq;
        let at = recorded.at;
        match &recorded.event {
            Event::CaseStarted { .. } => {}
            Event::StepScheduled {
                step,
                attempt,
                role,
                due,
            } => {
                let kind = self.workflow.step(step).map(|s| &s.kind);
                let runnable = matches!(kind, Some(StepKind::Plugin(_)));
                self.active.insert(
                    step.clone(),
                    Active {
                        attempt: *attempt,
                        scheduled: recorded.seq,
                        since: at,
                        due: *due,
                        escalations: 0,
                        role: role.clone(),
                        approved_by: Vec::new(),
                        child: None,
                        runnable,
                    },
                );
                if let Some(StepKind::Wait(Wait::Signal(name))) = kind
                    && let Some(idx) = self.signals.iter().position(|(n, _)| n == name)
                {
                    let (_, data) = self.signals.remove(idx);
                    self.consume_signal(step, data);
                }
            }
            Event::StepFinished { step, data, .. } => {
                self.active.remove(step);
                if let Some(data) = data {
                    self.set_data(scope_of(step), data.clone());
                }
            }
            Event::StepFailed { step, retry_at, .. } => match retry_at {
                Some(retry_at) => {
                    if let Some(active) = self.active.get_mut(step) {
                        active.due = Some(*retry_at);
                        active.runnable = false;
                    }
                }
                None => {
                    self.active.remove(step);
                }
            },
            Event::ApprovalDecided {
                step, verdict, by, ..
            } => {
                let required = match self.workflow.step(step).map(|s| &s.kind) {
                    Some(StepKind::Approval(approval)) => approval.required as usize,
                    _ => 1,
                };
                match verdict {
                    Verdict::Approve => {
                        let done = match self.active.get_mut(step) {
                            Some(active) => {
                                active.approved_by.push(by.clone());
                                active.approved_by.len() >= required
                            }
                            None => false,
                        };
                        if done && let Some(active) = self.active.remove(step) {
                            self.approvers.extend(active.approved_by);
                        }
                    }
                    Verdict::Reject => {
                        self.active.remove(step);
                    }
                    Verdict::Return => {}
                }
            }
            Event::DeadlinePassed { step, escalation } => {
                let leaves = self
                    .workflow
                    .step(step)
                    .and_then(|s| s.escalations.get(*escalation as usize))
                    .is_some_and(|e| e.goto.is_some());
                if leaves {
                    self.cancel(step);
                } else if let Some(active) = self.active.get_mut(step) {
                    active.escalations = escalation + 1;
                    active.due = self.workflow.step(step).and_then(|s| {
                        let next = s.escalations.get(active.escalations as usize)?;
                        Some(active.since + duration_millis(next.after))
                    });
                    if let Some(StepKind::Wait(_)) = self.workflow.step(step).map(|s| &s.kind) {
                        // A timer still pending keeps its own due time.
                        active.due = timer_due(&self.workflow, step, active.since)
                            .into_iter()
                            .chain(active.due)
                            .min();
                    }
                }
            }
            Event::Reassigned { step, role, .. } => {
                if let Some(active) = self.active.get_mut(step) {
                    active.role = Some(role.clone());
                }
            }
            Event::TimerFired { step } => {
                self.active.remove(step);
            }
            Event::SignalReceived { name, data } => {
                let waiting = self.active.keys().find(|path| {
                    matches!(
                        self.workflow.step(path).map(|s| &s.kind),
                        Some(StepKind::Wait(Wait::Signal(n))) if n == name
                    )
                });
                match waiting.cloned() {
                    Some(path) => self.consume_signal(&path, data.clone()),
                    None => self.signals.push((name.clone(), data.clone())),
                }
            }
            Event::BranchesStarted { step } => {
                let data = self.data_of(scope_of(step));
                let branches = match self.workflow.step(step).map(|s| &s.kind) {
                    Some(StepKind::Parallel { branches, .. }) => branches
                        .iter()
                        .map(|b| (b.name.clone(), data.clone()))
                        .collect(),
                    _ => BTreeMap::new(),
                };
                self.active.insert(
                    step.clone(),
                    Active {
                        attempt: 1,
                        scheduled: recorded.seq,
                        since: at,
                        due: None,
                        escalations: 0,
                        role: None,
                        approved_by: Vec::new(),
                        child: None,
                        runnable: false,
                    },
                );
                self.parallels.insert(
                    step.clone(),
                    Parallel {
                        data: branches,
                        ended: BTreeMap::new(),
                    },
                );
            }
            Event::BranchEnded {
                step,
                branch,
                ending,
            } => {
                let prefix = format!("{step}/{branch}/");
                self.active.retain(|path, _| !path.starts_with(&prefix));
                self.parallels.retain(|path, _| !path.starts_with(&prefix));
                if let Some(parallel) = self.parallels.get_mut(step) {
                    parallel.ended.insert(branch.clone(), *ending);
                }
            }
            Event::Joined { step, ending } => {
                let parallel = self.parallels.remove(step);
                self.cancel(step);
                let workflow = self.workflow.clone();
                if *ending == Ending::Completed
                    && let Some(mut parallel) = parallel
                    && let Some(StepKind::Parallel { branches, .. }) =
                        workflow.step(step).map(|s| &s.kind)
                    && let Some(merged) = self.data_of_mut(scope_of(step))
                {
                    // Branch data is merged over the data the branches
                    // started from, in the order the definition names the
                    // branches; only branches that completed count.
                    for branch in branches {
                        if parallel.ended.get(&branch.name) == Some(&Ending::Completed)
                            && let Some(data) = parallel.data.remove(&branch.name)
                        {
                            merge_owned(merged, data);
                        }
                    }
                }
            }
            Event::ChildStarted { step, child } => {
                if let Some(active) = self.active.get_mut(step) {
                    active.child = Some(child.clone());
                }
            }
            Event::ChildEnded {
                step, ending, data, ..
            } => {
                self.active.remove(step);
                if *ending == Ending::Completed {
                    self.set_data(scope_of(step), data.clone());
                }
            }
            Event::Moved { .. } => {}
            Event::Returned { step } => {
                self.active.clear();
                self.parallels.clear();
                self.returned = Some(step.clone());
            }
            Event::Resubmitted { data } => {
                let mut merged = self.data.clone();
                merge_into(&mut merged, data);
                self.data = merged;
                self.returned = None;
            }
            Event::CaseEnded { ending, data, .. } => {
                self.ending = Some(*ending);
                // The ending records the data the case has: comparing
                // spares a copy of it, and freeing the one it replaces.
                if self.data != *data {
                    self.data = data.clone();
                }
                self.active.clear();
                self.parallels.clear();
            }
        }
    }

    /// Removes a step and, for a parallel step, everything inside it.
    fn cancel(&mut self, step: &str) {
        let prefix = format!("{step}/");
        self.active
            .retain(|path, _| path != step && !path.starts_with(&prefix));
        self.parallels
            .retain(|path, _| path != step && !path.starts_with(&prefix));
    }

    fn consume_signal(&mut self, step: &str, data: Value) {
        self.active.remove(step);
        let scope = scope_of(step).to_owned();
        let mut merged = self.data_of(&scope).clone();
        merge_into(&mut merged, &data);
        self.set_data(&scope, merged);
    }
}

/// When a wait step's own timer falls due, for a step that began at `since`.
pub(crate) fn timer_due(workflow: &Workflow, step: &str, since: Millis) -> Option<Millis> {
    match workflow.step(step).map(|s| &s.kind) {
        Some(StepKind::Wait(Wait::For(duration))) => Some(since + duration_millis(*duration)),
        Some(StepKind::Wait(Wait::Until(time))) => Some(super::clock::to_millis(*time)),
        _ => None,
    }
}

/// Merges `patch` into `base`: the top-level fields of two objects, or
/// `patch` itself when either is not an object.
pub(crate) fn merge_into(base: &mut Value, patch: &Value) {
    merge_owned(base, patch.clone());
}

/// [`merge_into`], moving `patch` instead of copying it.
fn merge_owned(base: &mut Value, patch: Value) {
    match (base.as_object_mut(), patch) {
        (Some(base), Value::Object(patch)) => base.extend(patch),
        (_, patch) => *base = patch,
    }
}
