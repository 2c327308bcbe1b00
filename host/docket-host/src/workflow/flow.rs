//! The checks on a sequence's flow: every step reachable from the first,
//! and no set of steps from which normal flow never ends.

use super::Span;
use super::check::{Checker, Scope, list};
use super::model::{Step, StepKind, Target};
use std::collections::HashMap;

impl Checker<'_> {
    /// Reachability from the first step, and steps from which normal flow
    /// never ends.
    pub(super) fn check_graph(&mut self, steps: &[Step], spans: &[Span], scope: &Scope<'_>) {
        let index: HashMap<&str, usize> = steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.as_str(), i))
            .collect();
        let step_of = |target: &Target| match target {
            Target::Step(id) => index.get(id.as_str()).copied(),
            _ => None,
        };

        let mut reachable = vec![false; steps.len()];
        let mut stack = vec![0];
        reachable[0] = true;
        while let Some(i) = stack.pop() {
            let mut targets = normal_edges(&steps[i]);
            targets.push(&steps[i].on_error);
            let returns = if matches!(scope, Scope::Top) {
                on_returns(&steps[i])
            } else {
                Vec::new()
            };
            for j in targets
                .into_iter()
                .filter_map(step_of)
                .chain(returns.iter().filter_map(step_of))
            {
                if !reachable[j] {
                    reachable[j] = true;
                    stack.push(j);
                }
            }
        }
        for (i, step) in steps.iter().enumerate() {
            if !reachable[i] {
                self.report(
                    "unreachable-step",
                    spans[i],
                    format!(
                        "step `{}` is unreachable: no path from `{}`, the first step of {}, leads to it",
                        step.id,
                        steps[0].id,
                        scope.describe()
                    ),
                );
            }
        }

        // Steps that can reach a terminal through normal flow.
        let mut exits = vec![false; steps.len()];
        loop {
            let mut changed = false;
            for (i, step) in steps.iter().enumerate() {
                if exits[i] {
                    continue;
                }
                let out = normal_edges(step).into_iter().any(|t| match step_of(t) {
                    Some(j) => exits[j],
                    None => true,
                });
                if out {
                    exits[i] = true;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let stuck: Vec<usize> = (0..steps.len())
            .filter(|&i| reachable[i] && !exits[i])
            .collect();
        // One diagnostic per group of stuck steps connected by normal flow.
        let mut group_of: Vec<Option<usize>> = vec![None; steps.len()];
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for &start in &stuck {
            if group_of[start].is_some() {
                continue;
            }
            let g = groups.len();
            let mut members = vec![start];
            group_of[start] = Some(g);
            let mut k = 0;
            while k < members.len() {
                let i = members[k];
                k += 1;
                for &j in &stuck {
                    if group_of[j].is_some() {
                        continue;
                    }
                    let linked = normal_edges(&steps[i])
                        .into_iter()
                        .any(|t| step_of(t) == Some(j))
                        || normal_edges(&steps[j])
                            .into_iter()
                            .any(|t| step_of(t) == Some(i));
                    if linked {
                        group_of[j] = Some(g);
                        members.push(j);
                    }
                }
            }
            members.sort_unstable();
            groups.push(members);
        }
        for members in groups {
            let names: Vec<String> = members.iter().map(|&i| steps[i].id.clone()).collect();
            let message = if names.len() == 1 {
                format!(
                    "step `{}` loops with no way out: normal flow from it never reaches `end`, `reject` or `fail`",
                    names[0]
                )
            } else {
                format!(
                    "steps {} are caught in a loop with no way out: normal flow from them never reaches `end`, `reject` or `fail`",
                    list(&names)
                )
            };
            self.report_help(
                "no-exit",
                spans[members[0]],
                message,
                "give one of them a `next`, route or `on_reject` that leaves the loop (`on_error` does not count)".to_owned(),
            );
        }
    }
}

/// The targets of normal flow: next, routes, default, on_reject (of the
/// steps that can reject: not a wait), escalation goto.
fn normal_edges(step: &Step) -> Vec<&Target> {
    let mut targets = vec![&step.next];
    if !matches!(step.kind, StepKind::Wait(_)) {
        targets.push(&step.on_reject);
    }
    if let StepKind::Plugin(plugin) = &step.kind {
        targets.extend(plugin.routes.iter().map(|(_, t)| t));
        targets.extend(plugin.default_route.iter());
    }
    targets.extend(step.escalations.iter().filter_map(|e| e.goto.as_ref()));
    targets
}

/// The `on_return` targets of the approvals in `step`, branches included:
/// all of them name top-level steps.
fn on_returns(step: &Step) -> Vec<Target> {
    match &step.kind {
        StepKind::Approval(approval) => vec![approval.on_return.clone()],
        StepKind::Parallel { branches, .. } => branches
            .iter()
            .flat_map(|b| b.steps.iter().flat_map(on_returns))
            .collect(),
        _ => Vec::new(),
    }
}
