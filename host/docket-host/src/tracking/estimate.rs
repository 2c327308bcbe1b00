//! The expected completion of a case: what its pending stages still need
//! and what the stages after them take, walked along the definition.
//!
//! A stage takes its measured median duration ([`Durations`], from recent
//! cases of the same workflow version); a stage nobody has measured yet
//! takes its deadline (the first escalation's `after`, a wait's duration or
//! date), and an automated step that has no measurement takes no time. A
//! pending stage needs what remains of that. Where a plugin routes, the
//! estimate follows the slowest route, so the date is one the department
//! can keep; a loop back (a return for changes) counts each stage once;
//! parallel branches combine by their join (all: the slowest, any: the
//! fastest, n of m: the n-th fastest).

use crate::engine::{OpenStep, duration_millis, to_millis};
use crate::insight::{self, CaseJournal, CaseVisits, Selection};
use crate::store::{self, Backend, CaseFilter, Millis};
use crate::workflow::{Join, Step, StepKind, Target, Wait, Workflow};
use std::collections::{BTreeMap, HashMap};

/// The median lead time of each step of one workflow version, measured on
/// its recent cases.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Durations {
    medians: BTreeMap<String, Millis>,
    cases: usize,
}

impl Durations {
    /// The medians over `cases` (of one workflow version): each step's
    /// visits that the step decided, as the KPI report counts them.
    pub fn from_cases(cases: &[CaseVisits]) -> Durations {
        let report = insight::report(cases, &Selection::default());
        let medians = report
            .workflows
            .iter()
            .flat_map(|version| &version.steps)
            .filter_map(|step| Some((step.step.clone(), step.lead_time?.p50)))
            .collect();
        Durations {
            medians,
            cases: cases.len(),
        }
    }

    /// The medians over the newest `recent` cases of `workflow` at `version`.
    ///
    /// # Errors
    ///
    /// If the store cannot be read.
    pub fn measure(
        store: &dyn Backend,
        workflow: &str,
        version: u32,
        recent: usize,
    ) -> Result<Durations, store::Error> {
        let rows = store.cases(&CaseFilter {
            workflow: Some(workflow.to_owned()),
            limit: Some(recent),
            ..CaseFilter::default()
        })?;
        let mut cases = Vec::new();
        for row in rows.into_iter().filter(|row| row.version == version) {
            let journal = CaseJournal {
                events: store.journal(&row.id)?,
                id: row.id,
            };
            cases.extend(insight::visits(&journal));
        }
        Ok(Durations::from_cases(&cases))
    }

    /// The median lead time of the step at `path`, if any visit was decided.
    pub fn median(&self, path: &str) -> Option<Millis> {
        self.medians.get(path).copied()
    }

    /// How many cases the medians come from.
    pub fn cases(&self) -> usize {
        self.cases
    }
}

/// Walks a workflow from where a case is.
pub(super) struct Estimator<'a> {
    workflow: &'a Workflow,
    durations: &'a Durations,
    open: BTreeMap<&'a str, &'a OpenStep>,
    now: Millis,
    /// Time from entering a step to the end of its sequence, by path;
    /// `None` while being computed (a loop back reaches it again).
    memo: HashMap<String, Option<Millis>>,
}

impl<'a> Estimator<'a> {
    pub(super) fn new(
        workflow: &'a Workflow,
        durations: &'a Durations,
        open: &'a [OpenStep],
        now: Millis,
    ) -> Estimator<'a> {
        Estimator {
            workflow,
            durations,
            open: open.iter().map(|o| (o.step.as_str(), o)).collect(),
            now,
            memo: HashMap::new(),
        }
    }

    /// Time until the case ends; `None` if it is at no top-level step (it
    /// ended, or waits for the applicant's resubmission).
    pub(super) fn remaining(&mut self) -> Option<Millis> {
        let at = self.open.keys().copied().find(|path| !path.contains('/'))?;
        let steps = &self.workflow.steps;
        Some(self.through(steps, "", at))
    }

    /// Time from entering step `id` of a sequence until the sequence ends:
    /// through that step and the ones after it.
    fn through(&mut self, steps: &'a [Step], scope: &str, id: &str) -> Millis {
        let path = if scope.is_empty() {
            id.to_owned()
        } else {
            format!("{scope}/{id}")
        };
        if let Some(known) = self.memo.get(&path) {
            return known.unwrap_or(0);
        }
        let Some(step) = steps.iter().find(|s| s.id == id) else {
            return 0;
        };
        self.memo.insert(path.clone(), None);
        let here = self.stage(step, &path);
        let mut after = 0;
        for target in successors(step) {
            if let Target::Step(next) = target {
                after = after.max(self.through(steps, scope, next));
            }
        }
        let total = here.saturating_add(after);
        self.memo.insert(path, Some(total));
        total
    }

    /// What a step still needs if the case is at it, or takes if not.
    pub(super) fn stage(&mut self, step: &'a Step, path: &str) -> Millis {
        let open = self.open.get(path).copied();
        let StepKind::Parallel { branches, join } = &step.kind else {
            let expected = self.expected(step, path);
            return match (open, &step.kind) {
                (None, _) => expected,
                (Some(_), StepKind::Wait(Wait::Until(at))) => (to_millis(*at) - self.now).max(0),
                (Some(open), _) => (expected - (self.now - open.since)).max(0),
            };
        };
        if open.is_none()
            && let Some(measured) = self.durations.median(path)
        {
            return measured;
        }
        let mut times = Vec::with_capacity(branches.len());
        for branch in branches {
            let scope = format!("{path}/{}", branch.name);
            let at = match open {
                // Not started: every branch from its first step.
                None => branch.steps.first().map(|s| s.id.as_str()),
                // Started: where the branch is; nowhere once it ended.
                Some(_) => {
                    let prefix = format!("{scope}/");
                    self.open
                        .keys()
                        .copied()
                        .filter_map(|p| p.strip_prefix(prefix.as_str()))
                        .find(|rest| !rest.contains('/'))
                }
            };
            times.push(at.map_or(0, |id| self.through(&branch.steps, &scope, id)));
        }
        times.sort_unstable();
        let needed = match join {
            Join::All => times.len(),
            Join::Any => 1,
            Join::AtLeast(n) => *n as usize,
        };
        times
            .get(needed.clamp(1, times.len().max(1)) - 1)
            .copied()
            .unwrap_or(0)
    }

    /// A step's whole duration: measured, else from its definition.
    fn expected(&self, step: &Step, path: &str) -> Millis {
        if let Some(measured) = self.durations.median(path) {
            return measured;
        }
        match &step.kind {
            StepKind::Wait(Wait::For(duration)) => duration_millis(*duration),
            StepKind::Wait(Wait::Until(at)) => (to_millis(*at) - self.now).max(0),
            StepKind::Plugin(_) | StepKind::Parallel { .. } => 0,
            StepKind::Approval(_) | StepKind::Wait(Wait::Signal(_)) | StepKind::Subflow { .. } => {
                step.escalations
                    .first()
                    .map_or(0, |escalation| duration_millis(escalation.after))
            }
        }
    }
}

/// Where a step's normal flow can go: its `next`, and a plugin's routes.
fn successors(step: &Step) -> Vec<&Target> {
    let mut targets = vec![&step.next];
    if let StepKind::Plugin(plugin) = &step.kind {
        targets.extend(plugin.routes.iter().map(|(_, target)| target));
        targets.extend(plugin.default_route.as_ref());
    }
    targets
}
