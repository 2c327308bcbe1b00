//! The engine's decisions: what happens next when something happened to a
//! case. Sans-IO: a [`Tx`] reads the case state, emits events (applying
//! each one to the state at once) and collects [`Effect`]s for the host to
//! carry out after the events are committed. Nothing here reads a clock,
//! touches the store or runs a plugin.

use super::clock::duration_millis;
use super::explain::{Decided, decided};
use super::state::{CaseState, path_in, scope_of, split_branch, timer_due};
use crate::Json;
use crate::plugin::{Execution, Outcome, PluginDigest};
use crate::store::{Ending, Event, Millis, OutboxEntry, ParentRef, Recorded, Verdict};
use crate::workflow::{Join, Step, StepKind, Target, Wait, Workflow};
use serde_json::Value;
use std::sync::Arc;

/// What the host does once a transaction's events are committed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Effect {
    /// Execute a plugin step: the attempt begun by event `scheduled`.
    Run { path: String, scheduled: u64 },
    /// Create a child case.
    StartChild {
        child: String,
        workflow: String,
        version: Option<u32>,
        input: Value,
        parent: ParentRef,
    },
    /// Tell the parent case that this child ended.
    ChildEnded {
        parent: ParentRef,
        child: String,
        ending: Ending,
        data: Value,
    },
    /// Deliver messages.
    Deliver(Vec<OutboxEntry>),
}

/// What a plugin execution ran on, recorded with its outcome so that it
/// can be replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PluginRun {
    /// The component's sha256.
    pub digest: PluginDigest,
    /// The clock reading the plugin saw.
    pub ran_at: Millis,
    /// sha256 of the input's canonical JSON, hex.
    pub input_sha256: String,
    /// The input as the plugin was given it.
    pub input: Json,
}

/// One change to one case: the events it emits and what follows from them.
pub(crate) struct Tx<'a> {
    pub state: &'a mut CaseState,
    pub now: Millis,
    pub events: Vec<Recorded>,
    pub effects: Vec<Effect>,
    /// Generates ids for child cases.
    pub new_id: &'a mut dyn FnMut() -> String,
}

impl<'a> Tx<'a> {
    pub fn new(
        state: &'a mut CaseState,
        now: Millis,
        new_id: &'a mut dyn FnMut() -> String,
    ) -> Tx<'a> {
        Tx {
            state,
            now,
            events: Vec::new(),
            effects: Vec::new(),
            new_id,
        }
    }

    /// Records an event and applies it.
    pub fn emit(&mut self, event: Event) -> u64 {
        let recorded = Recorded {
            seq: self.state.seq + 1,
            at: self.now,
            event,
        };
        self.state.apply(&recorded);
        let seq = recorded.seq;
        self.events.push(recorded);
        seq
    }

    /// The case's workflow, shared: a step borrowed from it (see
    /// [`step_at`]) leaves `self` free to change, without copying the step.
    fn workflow(&self) -> Arc<Workflow> {
        self.state.workflow.clone()
    }

    fn ended(&self) -> bool {
        self.state.ending.is_some()
    }

    /// A new case: begin its first step.
    pub fn start(&mut self) {
        let first = self.state.workflow.steps.first().map(|s| s.id.clone());
        match first {
            Some(first) => self.enter("", &Target::Step(first)),
            None => self.enter("", &Target::Complete),
        }
    }

    /// Goes to `target` in the sequence `scope`.
    fn enter(&mut self, scope: &str, target: &Target) {
        if self.ended() {
            return;
        }
        match target {
            Target::Step(id) => self.begin(&path_in(scope, id), 1),
            Target::Complete => self.end_scope(scope, Ending::Completed, None, None),
            Target::Reject => self.end_scope(scope, Ending::Rejected, None, None),
            Target::Fail => self.end_scope(scope, Ending::Failed, None, None),
        }
    }

    /// Leaves `from` for `target`, saying why when it is not the plain next step.
    fn leave(
        &mut self,
        from: &str,
        target: &Target,
        reason: Option<String>,
        decided: Option<String>,
    ) {
        let scope = scope_of(from).to_owned();
        if let Some(reason) = &reason {
            self.emit(Event::Moved {
                from: from.to_owned(),
                to: target_name(target),
                reason: reason.clone(),
            });
        }
        match target {
            Target::Step(_) | Target::Complete => self.enter(&scope, target),
            Target::Reject => {
                self.end_scope(&scope, Ending::Rejected, Some(from.to_owned()), decided)
            }
            Target::Fail => self.end_scope(&scope, Ending::Failed, Some(from.to_owned()), decided),
        }
    }

    /// Leaves `path` the way `ending` says: to its `next`, or through its
    /// `on_reject` or `on_error` handler, saying `why`.
    fn leave_as(
        &mut self,
        path: &str,
        step: &Step,
        ending: Ending,
        why: impl FnOnce(Ending) -> String,
    ) {
        match ending {
            Ending::Completed => self.leave(path, &step.next, None, None),
            Ending::Rejected => self.leave(
                path,
                &step.on_reject,
                Some("on_reject".into()),
                Some(why(ending)),
            ),
            Ending::Failed => self.leave(
                path,
                &step.on_error,
                Some("on_error".into()),
                Some(why(ending)),
            ),
        }
    }

    /// The sequence `scope` reached an end.
    fn end_scope(
        &mut self,
        scope: &str,
        ending: Ending,
        step: Option<String>,
        reason: Option<String>,
    ) {
        match split_branch(scope) {
            None => {
                let data = self.state.data.clone();
                if let Some(parent) = self.state.parent.clone() {
                    self.effects.push(Effect::ChildEnded {
                        parent,
                        child: self.state.id.clone(),
                        ending,
                        data: data.clone(),
                    });
                }
                self.emit(Event::CaseEnded {
                    ending,
                    data,
                    step,
                    reason,
                });
            }
            Some((parallel, branch)) => {
                let (parallel, branch) = (parallel.to_owned(), branch.to_owned());
                self.emit(Event::BranchEnded {
                    step: parallel.clone(),
                    branch,
                    ending,
                });
                self.check_join(&parallel);
            }
        }
    }

    fn check_join(&mut self, path: &str) {
        let workflow = self.workflow();
        let step = step_at(&workflow, path);
        let StepKind::Parallel { branches, join } = &step.kind else {
            return;
        };
        let Some(parallel) = self.state.parallels.get(path) else {
            return;
        };
        let total = branches.len();
        let count = |e: Ending| parallel.ended.values().filter(|x| **x == e).count();
        let (completed, rejected, failed) = (
            count(Ending::Completed),
            count(Ending::Rejected),
            count(Ending::Failed),
        );
        let needed = match join {
            Join::All => total,
            Join::Any => 1,
            Join::AtLeast(n) => *n as usize,
        };
        let ending = if completed >= needed {
            Ending::Completed
        } else if failed > 0 {
            Ending::Failed
        } else if total - rejected < needed {
            Ending::Rejected
        } else {
            return;
        };
        self.emit(Event::Joined {
            step: path.to_owned(),
            ending,
        });
        self.leave_as(path, step, ending, |ending| match ending {
            Ending::Failed => "a branch failed".into(),
            _ => format!("{rejected} of {total} branches rejected"),
        });
    }

    /// Begins the step at `path`.
    fn begin(&mut self, path: &str, attempt: u32) {
        let workflow = self.workflow();
        let step = step_at(&workflow, path);
        let escalation_due = step
            .escalations
            .first()
            .map(|e| self.now + duration_millis(e.after));
        match &step.kind {
            StepKind::Plugin(_) => {
                let scheduled = self.emit(Event::StepScheduled {
                    step: path.to_owned(),
                    attempt,
                    role: None,
                    due: None,
                });
                self.effects.push(Effect::Run {
                    path: path.to_owned(),
                    scheduled,
                });
            }
            StepKind::Approval(approval) => {
                self.emit(Event::StepScheduled {
                    step: path.to_owned(),
                    attempt,
                    role: Some(approval.role.clone()),
                    due: escalation_due,
                });
            }
            StepKind::Wait(wait) => {
                let timer = timer_due(&self.state.workflow, path, self.now);
                let due = timer.into_iter().chain(escalation_due).min();
                self.emit(Event::StepScheduled {
                    step: path.to_owned(),
                    attempt,
                    role: None,
                    due,
                });
                // A signal that arrived early is consumed as the wait begins.
                if matches!(wait, Wait::Signal(_)) && !self.state.active.contains_key(path) {
                    self.leave(path, &step.next, None, None);
                }
            }
            StepKind::Parallel { branches, .. } => {
                self.emit(Event::BranchesStarted {
                    step: path.to_owned(),
                });
                for branch in branches {
                    let scope = format!("{path}/{}", branch.name);
                    let target = match branch.steps.first() {
                        Some(first) => Target::Step(first.id.clone()),
                        None => Target::Complete,
                    };
                    if !self.state.active.contains_key(path) {
                        break; // the join was already decided
                    }
                    self.enter(&scope, &target);
                }
            }
            StepKind::Subflow { workflow, version } => {
                self.emit(Event::StepScheduled {
                    step: path.to_owned(),
                    attempt,
                    role: None,
                    due: escalation_due,
                });
                let child = (self.new_id)();
                self.emit(Event::ChildStarted {
                    step: path.to_owned(),
                    child: child.clone(),
                });
                self.effects.push(Effect::StartChild {
                    child,
                    workflow: workflow.clone(),
                    version: *version,
                    input: self.state.data_of(scope_of(path)).clone(),
                    parent: ParentRef {
                        case: self.state.id.clone(),
                        step: path.to_owned(),
                    },
                });
            }
        }
    }

    /// A plugin execution of `path`, for the attempt begun by event
    /// `scheduled`, finished.
    pub fn plugin_finished(
        &mut self,
        path: &str,
        scheduled: u64,
        run: PluginRun,
        execution: Execution,
    ) {
        let Some(attempt) = self.state.attempt_to_run(path, scheduled) else {
            return; // cancelled meanwhile (a join or an escalation moved on)
        };
        let workflow = self.workflow();
        let step = step_at(&workflow, path);
        match execution.result {
            Ok(outcome) => {
                let Decided {
                    outcome: name,
                    routes,
                    data,
                    problems,
                    notifications,
                } = decided(
                    &outcome,
                    u32::try_from(execution.notifications.len()).unwrap_or(u32::MAX),
                    self.state.data_of(scope_of(path)),
                    &run.input,
                );
                let seq = self.emit(Event::StepFinished {
                    step: path.to_owned(),
                    attempt,
                    outcome: name,
                    routes: routes.clone(),
                    data,
                    problems: problems.clone(),
                    plugin: run.digest.to_hex(),
                    notifications,
                    ran_at: Some(run.ran_at),
                    input_sha256: Some(run.input_sha256),
                });
                let entries: Vec<OutboxEntry> = execution
                    .notifications
                    .into_iter()
                    .enumerate()
                    .map(|(index, n)| OutboxEntry {
                        key: format!("{}/{seq}/{index}", self.state.id),
                        case: self.state.id.clone(),
                        channel: n.channel,
                        to: n.to,
                        subject: n.subject,
                        body: n.body,
                    })
                    .collect();
                if !entries.is_empty() {
                    self.effects.push(Effect::Deliver(entries));
                }
                match outcome {
                    Outcome::Continue(_) => self.leave(path, &step.next, None, None),
                    Outcome::Route { .. } => {
                        let StepKind::Plugin(plugin) = &step.kind else {
                            unreachable!("only plugin steps run plugins")
                        };
                        let chosen = routes
                            .iter()
                            .find_map(|r| plugin.routes.iter().find(|(name, _)| name == r));
                        match (chosen, &plugin.default_route) {
                            (Some((name, target)), _) => {
                                self.leave(path, target, Some(format!("route {name}")), None);
                            }
                            (None, Some(default)) => {
                                self.leave(path, default, Some("default route".into()), None);
                            }
                            (None, None) => self.leave(path, &step.next, None, None),
                        }
                    }
                    Outcome::Reject(_) => {
                        let reason = problems
                            .iter()
                            .map(|p| format!("{} {}", display_pointer(&p.pointer), p.message))
                            .collect::<Vec<_>>()
                            .join("; ");
                        self.leave(
                            path,
                            &step.on_reject,
                            Some("on_reject".into()),
                            Some(reason),
                        );
                    }
                }
            }
            Err(error) => {
                let retry_at = (error.is_transient() && attempt < step.retry.attempts)
                    .then(|| self.now + duration_millis(step.retry.delay_after(attempt)));
                let message = error.to_string();
                self.emit(Event::StepFailed {
                    step: path.to_owned(),
                    attempt,
                    error: message.clone(),
                    transient: error.is_transient(),
                    retry_at,
                });
                if retry_at.is_none() {
                    self.leave(path, &step.on_error, Some("on_error".into()), Some(message));
                }
            }
        }
    }

    /// Fires everything due at or before `now`: retries, timers, deadlines.
    pub fn tick(&mut self) {
        loop {
            if self.ended() {
                return;
            }
            let due = self
                .state
                .active
                .iter()
                .filter(|(_, a)| a.due.is_some_and(|d| d <= self.now))
                .min_by_key(|(path, a)| (a.due, (*path).clone()))
                .map(|(path, a)| (path.clone(), a.clone()));
            let Some((path, active)) = due else {
                return;
            };
            let workflow = self.workflow();
            let step = step_at(&workflow, &path);
            if let StepKind::Plugin(_) = step.kind {
                self.begin(&path, active.attempt + 1);
                continue;
            }
            let timer = timer_due(&self.state.workflow, &path, active.since);
            let escalation = step.escalations.get(active.escalations as usize);
            let escalation_due = escalation.map(|e| active.since + duration_millis(e.after));
            match (timer, escalation_due) {
                (Some(timer), escalation_due)
                    if timer <= self.now && escalation_due.is_none_or(|e| timer <= e) =>
                {
                    self.emit(Event::TimerFired { step: path.clone() });
                    self.leave(&path, &step.next, None, None);
                }
                (_, Some(_)) => {
                    let escalation = escalation.cloned().expect("due escalation exists");
                    self.emit(Event::DeadlinePassed {
                        step: path.clone(),
                        escalation: active.escalations,
                    });
                    if let Some(role) = &escalation.reassign {
                        let due = self.state.active.get(&path).and_then(|a| a.due);
                        self.emit(Event::Reassigned {
                            step: path.clone(),
                            role: role.clone(),
                            due,
                        });
                    }
                    if let Some(notice) = &escalation.notify {
                        let key = format!("{}/{}/0", self.state.id, self.state.seq);
                        self.effects.push(Effect::Deliver(vec![OutboxEntry {
                            key,
                            case: self.state.id.clone(),
                            channel: notice.channel.clone(),
                            to: notice.to.clone(),
                            subject: notice.subject.clone(),
                            body: notice.body.clone(),
                        }]));
                    }
                    if let Some(target) = &escalation.goto {
                        self.leave(
                            &path,
                            target,
                            Some("deadline".into()),
                            Some("the deadline passed".into()),
                        );
                    }
                }
                _ => unreachable!("a due step has a timer or an escalation"),
            }
        }
    }

    /// A person decided on the approval at `path`. The caller checked that
    /// they may.
    pub fn decide(
        &mut self,
        path: &str,
        verdict: Verdict,
        by: &str,
        role: &str,
        comment: Option<String>,
    ) {
        let workflow = self.workflow();
        let step = step_at(&workflow, path);
        self.emit(Event::ApprovalDecided {
            step: path.to_owned(),
            verdict,
            by: by.to_owned(),
            role: role.to_owned(),
            comment: comment.clone(),
        });
        match verdict {
            Verdict::Approve => {
                if !self.state.active.contains_key(path) {
                    self.leave(path, &step.next, None, None);
                }
            }
            Verdict::Reject => {
                let reason = match &comment {
                    Some(comment) => format!("rejected by {by} ({role}): {comment}"),
                    None => format!("rejected by {by} ({role})"),
                };
                self.leave(
                    path,
                    &step.on_reject,
                    Some("on_reject".into()),
                    Some(reason),
                );
            }
            Verdict::Return => {
                self.emit(Event::Returned {
                    step: path.to_owned(),
                });
            }
        }
    }

    /// The applicant resubmitted a returned case.
    pub fn resubmit(&mut self, data: Value) {
        let Some(returned) = self.state.returned.clone() else {
            return;
        };
        let target = match self.state.workflow.step(&returned).map(|s| &s.kind) {
            Some(StepKind::Approval(approval)) => approval.on_return.clone(),
            _ => Target::Complete,
        };
        self.emit(Event::Resubmitted { data });
        self.enter("", &target);
    }

    /// A signal arrived.
    pub fn signal(&mut self, name: &str, data: Value) {
        let before: Vec<String> = self.state.active.keys().cloned().collect();
        self.emit(Event::SignalReceived {
            name: name.to_owned(),
            data,
        });
        let consumed = before
            .into_iter()
            .find(|p| !self.state.active.contains_key(p));
        if let Some(path) = consumed {
            let workflow = self.workflow();
            self.leave(&path, &step_at(&workflow, &path).next, None, None);
        }
    }

    /// A child case ended.
    pub fn child_ended(&mut self, path: &str, child: &str, ending: Ending, data: Value) {
        if self.state.active.get(path).and_then(|a| a.child.as_deref()) != Some(child) {
            return;
        }
        let workflow = self.workflow();
        let step = step_at(&workflow, path);
        self.emit(Event::ChildEnded {
            step: path.to_owned(),
            child: child.to_owned(),
            ending,
            data,
        });
        self.leave_as(path, step, ending, |ending| {
            format!("child case {child} {}", ending.as_str())
        });
    }
}

/// A target's name in the journal.
pub(crate) fn target_name(target: &Target) -> String {
    match target {
        Target::Step(id) => id.clone(),
        Target::Complete => "end".into(),
        Target::Reject => "reject".into(),
        Target::Fail => "fail".into(),
    }
}

fn display_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "(input)"
    } else {
        pointer
    }
}

/// The step at `path` of `workflow`, which a case's journal only names if
/// its workflow has it.
fn step_at<'w>(workflow: &'w Workflow, path: &str) -> &'w Step {
    workflow
        .step(path)
        .unwrap_or_else(|| unreachable!("a journal names a step `{path}` its workflow lacks"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::{PluginFacts, PluginProblem};
    use std::time::Duration;

    /// Every plugin exists; a config's `routes` are the routes it takes.
    struct Facts;

    impl PluginFacts for Facts {
        fn routes(&self, _: &str, _: &str, config: &Json) -> Result<Vec<String>, PluginProblem> {
            let config = config.to_value();
            Ok(config["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect())
        }
    }

    /// Two branches, the first to finish wins; then a step that may send
    /// the case round again.
    const ROUND_AGAIN: &str = r"
workflow: rounds
version: 1
owner: test
steps:
  - id: checks
    parallel:
      join: any
      branches:
        quick: [{ id: quick, uses: step }]
        slow: [{ id: slow, uses: step }]
  - id: again
    uses: route
    with: { routes: [again, done] }
    routes: { again: checks, done: end }
";

    struct Case {
        state: CaseState,
        now: Millis,
    }

    impl Case {
        fn start() -> (Case, Vec<Effect>) {
            let workflow = crate::workflow::compile(ROUND_AGAIN, &Facts).expect("compiles");
            let first = Recorded {
                seq: 1,
                at: 0,
                event: Event::CaseStarted {
                    workflow: "rounds".into(),
                    version: 1,
                    key: None,
                    tracking_code: "T".into(),
                    applicant: None,
                    input: serde_json::json!({"round": 1}),
                    parent: None,
                },
            };
            let state = CaseState::new("c".into(), Arc::new(workflow), &first).expect("a start");
            let mut case = Case { state, now: 0 };
            let (_, effects) = case.act(|tx| tx.start());
            (case, effects)
        }

        fn act(&mut self, action: impl FnOnce(&mut Tx<'_>)) -> (Vec<Recorded>, Vec<Effect>) {
            self.now += 1;
            let mut ids = || "child".to_owned();
            let mut tx = Tx::new(&mut self.state, self.now, &mut ids);
            action(&mut tx);
            (tx.events, tx.effects)
        }

        /// The execution of `run` finishes with `outcome`.
        fn finish(&mut self, run: &Run, outcome: Outcome) -> (Vec<Recorded>, Vec<Effect>) {
            let plugin_run = PluginRun {
                digest: PluginDigest::of(b"step"),
                ran_at: self.now,
                input_sha256: String::new(),
                input: Json::from_value(&serde_json::json!({})),
            };
            let execution = Execution {
                result: Ok(outcome),
                notifications: Vec::new(),
                logs: Vec::new(),
                elapsed: Duration::ZERO,
            };
            self.act(|tx| tx.plugin_finished(&run.path, run.scheduled, plugin_run, execution))
        }
    }

    #[derive(Debug)]
    struct Run {
        path: String,
        scheduled: u64,
    }

    fn runs(effects: Vec<Effect>) -> Vec<Run> {
        effects
            .into_iter()
            .filter_map(|effect| match effect {
                Effect::Run { path, scheduled } => Some(Run { path, scheduled }),
                _ => None,
            })
            .collect()
    }

    fn data(round: u32) -> Json {
        Json::from_value(&serde_json::json!({ "round": round }))
    }

    #[test]
    fn an_execution_of_a_cancelled_step_is_not_taken_for_the_same_step_begun_again() {
        let (mut case, effects) = Case::start();
        let first = runs(effects);
        let [quick, slow] = &first[..] else {
            panic!("both branches run: {first:?}")
        };
        assert!(slow.path.ends_with("slow"), "{slow:?}");

        // The quick branch wins the join; the case goes round again while
        // the slow branch's first execution is still running.
        let (_, effects) = case.finish(quick, Outcome::Continue(data(1)));
        let [again] = &runs(effects)[..] else {
            panic!("the step after the join runs")
        };
        let (_, effects) = case.finish(
            again,
            Outcome::Route {
                routes: vec!["again".into()],
                data: data(2),
            },
        );
        let second = runs(effects);
        let slow_again = second
            .iter()
            .find(|run| run.path == slow.path)
            .expect("the slow branch begins again");
        assert_eq!(
            case.state.active[&slow.path].attempt, 1,
            "the same attempt number"
        );

        // The first round's execution, on the first round's data, answers
        // nothing now; the second round's is the one taken.
        let (events, effects) = case.finish(slow, Outcome::Continue(data(1)));
        assert!(events.is_empty() && effects.is_empty(), "{events:?}");
        assert!(case.state.active[&slow.path].runnable);
        let (events, _) = case.finish(slow_again, Outcome::Continue(data(2)));
        assert!(
            matches!(&events[0].event, Event::StepFinished { step, .. } if *step == slow.path),
            "{events:?}"
        );
    }
}
