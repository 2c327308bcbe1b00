//! Lowering each kind of step, with the checks that belong to it: plugin
//! steps (through [`PluginFacts`](super::PluginFacts)), retries, parallel
//! steps and their joins, approvals, waits, subflows and escalations.

use super::PluginProblem;
use super::check::{Checker, Scope, Seq, kind_noun, list};
use super::model::{
    Approval, Branch, Escalation, EscalationNotice, FourEyes, Join, PluginStep, RetryPolicy,
    StepKind, Target, Wait,
};
use super::node::Sp;
use super::source::{
    ApprovalDef, EscalationDef, JoinDef, ParallelDef, RetryDef, StepDef, SubflowDef, WaitDef,
};
use crate::Json;
use crate::plugin::Capability;
use std::time::{Duration, SystemTime};

impl Checker<'_> {
    pub(super) fn retry(&mut self, policy: &Sp<RetryDef>, id: &str) -> RetryPolicy {
        let mut retry = RetryPolicy::default();
        match u32::try_from(policy.attempts.value) {
            Ok(n) if n >= 1 => retry.attempts = n,
            _ => self.report(
                "bad-retry",
                policy.attempts.span,
                format!(
                    "step `{id}` retries with `attempts: {}`, but a step runs at least once: use 1 for no retry",
                    policy.attempts.value
                ),
            ),
        }
        if let Some(text) = &policy.backoff {
            retry.backoff = self.duration(text, "`backoff`");
        }
        if let Some(text) = &policy.max_backoff {
            retry.max_backoff = self.duration(text, "`max_backoff`");
            if retry.max_backoff < retry.backoff {
                self.report(
                    "bad-retry",
                    text.span,
                    format!(
                        "step `{id}`: `max_backoff` ({}) is shorter than `backoff` ({})",
                        humantime::format_duration(retry.max_backoff),
                        humantime::format_duration(retry.backoff)
                    ),
                );
            }
        } else if retry.max_backoff < retry.backoff {
            retry.max_backoff = retry.backoff;
        }
        retry
    }

    pub(super) fn plugin(
        &mut self,
        def: &StepDef,
        uses: &Sp<String>,
        seq: &mut Seq<'_>,
    ) -> PluginStep {
        let id = def.id.value.as_str();
        let (name, requirement) = match uses.split_once('@') {
            Some((name, req)) => (name.trim(), Some(req.trim())),
            None => (uses.trim(), None),
        };
        let version = match requirement {
            None => Some("*".to_owned()),
            Some(req) => match semver::VersionReq::parse(req) {
                Ok(_) => Some(req.to_owned()),
                Err(err) => {
                    self.report_help(
                        "bad-version-requirement",
                        uses.span,
                        format!("step `{id}`: `{req}` is not a version requirement: {err}"),
                        "write a semver requirement such as `0.1`, `^1.2` or `>=1, <2`".to_owned(),
                    );
                    None
                }
            },
        };
        if name.is_empty() {
            self.report(
                "unknown-plugin",
                uses.span,
                format!("step `{id}`: `uses` names no plugin"),
            );
        }

        let config_value = def
            .with
            .as_ref()
            .map_or_else(|| serde_json::json!({}), |with| with.value.clone());
        let config = Json::from_value(&config_value);
        let mut declared = None;
        if let (Some(version), false) = (&version, name.is_empty()) {
            match self.plugins.routes(name, version, &config) {
                Ok(routes) => declared = Some(routes),
                Err(PluginProblem::Unknown(reason)) => self.report(
                    "unknown-plugin",
                    uses.span,
                    format!("step `{id}` uses plugin `{name}`: {reason}"),
                ),
                Err(PluginProblem::UnknownVersion(reason)) => self.report(
                    "unknown-plugin-version",
                    uses.span,
                    format!("step `{id}` uses `{}`: {reason}", uses.value.trim()),
                ),
                Err(PluginProblem::BadConfig(reason)) => self.report(
                    "bad-plugin-config",
                    def.with.as_ref().map_or(uses.span, |with| with.span),
                    format!("step `{id}`: plugin `{name}` rejects its config: {reason}"),
                ),
                Err(PluginProblem::Refused(reason)) => self.report(
                    "refused-plugin",
                    uses.span,
                    format!(
                        "step `{id}` uses `{}`, which this host refuses: {reason}",
                        uses.value.trim()
                    ),
                ),
                Err(PluginProblem::Unavailable(reason)) => self.report(
                    "plugin-unavailable",
                    uses.span,
                    format!(
                        "step `{id}` uses `{}`, which cannot be had: {reason}",
                        uses.value.trim()
                    ),
                ),
            }
        }

        let mut grant = Vec::new();
        for capability in def.grant.iter().flat_map(|g| g.value.iter()) {
            match capability.parse::<Capability>() {
                Ok(c) if !grant.contains(&c) => grant.push(c),
                Ok(_) => {}
                Err(_) => self.report_help(
                    "unknown-capability",
                    capability.span,
                    format!(
                        "step `{id}` grants `{}`, which is not a capability",
                        capability.value
                    ),
                    "the capabilities are `log`, `notify`, `settings` and `secrets`".to_owned(),
                ),
            }
        }
        let settings = def
            .settings
            .iter()
            .flat_map(|s| s.value.0.iter())
            .map(|(k, v)| (k.value.clone(), v.value.clone()))
            .collect();

        let mut routes = Vec::new();
        for (route, target) in def.routes.iter().flat_map(|r| r.value.0.iter()) {
            if let Some(declared) = &declared
                && !declared.contains(&route.value)
            {
                let message = if declared.is_empty() {
                    format!(
                        "step `{id}` routes `{}`, but plugin `{name}` declares no routes",
                        route.value
                    )
                } else {
                    format!(
                        "step `{id}` routes `{}`, but plugin `{name}` declares only {}",
                        route.value,
                        list(declared)
                    )
                };
                self.report("unknown-route", route.span, message);
            }
            let target = self.target(target, &format!("routes.{}", route.value), id, seq);
            routes.push((route.value.clone(), target));
        }
        let default_route = def
            .default
            .as_ref()
            .map(|text| self.target(text, "default", id, seq));
        PluginStep {
            plugin: name.to_owned(),
            version: version.unwrap_or_else(|| "*".to_owned()),
            config,
            grant,
            settings,
            routes,
            default_route,
        }
    }

    pub(super) fn parallel(&mut self, id: &str, parallel: &Sp<ParallelDef>) -> StepKind {
        let empty = Vec::new();
        let defs = parallel.branches.as_ref().map_or(&empty, |b| &b.value.0);
        if defs.is_empty() {
            self.report(
                "no-branches",
                parallel.branches.as_ref().map_or(parallel.span, |b| b.span),
                format!("parallel step `{id}` has no branches, so it can never complete"),
            );
        }
        let mut branches: Vec<Branch> = Vec::new();
        for (name, steps) in defs {
            self.check_id(name, "branch name");
            if branches.iter().any(|b| b.name == name.value) {
                self.report(
                    "duplicate-step",
                    name.span,
                    format!(
                        "parallel step `{id}` has two branches named `{}`",
                        name.value
                    ),
                );
            }
            if steps.is_empty() {
                self.report(
                    "empty-branch",
                    steps.span,
                    format!(
                        "branch `{}` of parallel step `{id}` has no steps",
                        name.value
                    ),
                );
            }
            let scope = Scope::Branch {
                parallel: id,
                branch: &name.value,
            };
            let steps = self.sequence(steps, &scope);
            branches.push(Branch {
                name: name.value.clone(),
                steps,
            });
        }
        let join = match parallel.join.as_ref().map(|j| &j.value) {
            None | Some(JoinDef::All) => Join::All,
            Some(JoinDef::Any) => Join::Any,
            Some(JoinDef::AtLeast(n)) => match u32::try_from(n.value) {
                Ok(k) if k >= 1 && (k as usize) <= defs.len() => Join::AtLeast(k),
                _ => {
                    self.report(
                        "impossible-join",
                        n.span,
                        format!(
                            "parallel step `{id}` joins `at_least: {}` of {} branch{}, which can never happen",
                            n.value,
                            defs.len(),
                            if defs.len() == 1 { "" } else { "es" }
                        ),
                    );
                    Join::All
                }
            },
        };
        StepKind::Parallel { branches, join }
    }

    pub(super) fn approval(
        &mut self,
        id: &str,
        approval: &Sp<ApprovalDef>,
        seq: &mut Seq<'_>,
    ) -> Approval {
        let role = match &approval.role {
            Some(role) if !role.trim().is_empty() => role.value.clone(),
            Some(role) => {
                self.report(
                    "missing-role",
                    role.span,
                    format!(
                        "approval `{id}` has an empty role: name the role whose members decide"
                    ),
                );
                String::new()
            }
            None => {
                self.report(
                    "missing-role",
                    approval.span,
                    format!("approval `{id}` has no `role`: name the role whose members decide"),
                );
                String::new()
            }
        };
        let required = match &approval.required {
            None => 1,
            Some(n) => match u32::try_from(n.value) {
                Ok(k) if k >= 1 => k,
                _ => {
                    self.report(
                        "bad-required",
                        n.span,
                        format!(
                            "approval `{id}` requires `{}` approvers; it needs at least 1",
                            n.value
                        ),
                    );
                    1
                }
            },
        };
        let four_eyes = FourEyes {
            not_applicant: approval
                .four_eyes
                .as_ref()
                .and_then(|f| f.applicant)
                .unwrap_or(true),
            not_previous_approvers: approval
                .four_eyes
                .as_ref()
                .and_then(|f| f.previous_approvers)
                .unwrap_or(true),
        };
        let on_return = match &approval.on_return {
            Some(text) => self.on_return(id, text, seq),
            None => self
                .top_ids
                .first()
                .map_or(Target::Complete, |first| Target::Step(first.clone())),
        };
        Approval {
            role,
            required,
            four_eyes,
            on_return,
        }
    }

    pub(super) fn on_return(&mut self, id: &str, text: &Sp<String>, seq: &mut Seq<'_>) -> Target {
        match text.as_str() {
            "end" => return Target::Complete,
            "reject" => return Target::Reject,
            "fail" => return Target::Fail,
            step if self.top_ids.iter().any(|s| s == step) => {
                return Target::Step(step.to_owned());
            }
            _ => {}
        }
        seq.incomplete = true;
        if seq.ids.contains(&text.value) {
            self.report_help(
                "on-return-scope",
                text.span,
                format!(
                    "approval `{id}`: `on_return` names `{}`, a step of {}, but a returned case resumes in the top-level sequence",
                    text.value,
                    seq.scope.describe()
                ),
                format!("name a top-level step: {}", list(&self.top_ids)),
            );
        } else {
            self.report_help(
                "unknown-step",
                text.span,
                format!(
                    "approval `{id}`: `on_return` names `{}`, which is not a top-level step",
                    text.value
                ),
                format!("name a top-level step: {}", list(&self.top_ids)),
            );
        }
        Target::Fail
    }

    pub(super) fn wait(&mut self, id: &str, wait: &Sp<WaitDef>) -> Wait {
        let given: Vec<(&str, &Sp<String>)> = [
            ("signal", wait.signal.as_ref()),
            ("for", wait.for_.as_ref()),
            ("until", wait.until.as_ref()),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect();
        match given.as_slice() {
            [] => {
                self.report_help(
                    "wait-kind",
                    wait.span,
                    format!("wait `{id}` waits for nothing"),
                    "give exactly one of `signal: NAME`, `for: DURATION`, `until: TIMESTAMP`"
                        .to_owned(),
                );
                Wait::Signal(String::new())
            }
            [(kind, value)] => match *kind {
                "signal" => {
                    if value.trim().is_empty() {
                        self.report(
                            "wait-kind",
                            value.span,
                            format!("wait `{id}` waits for a signal without a name"),
                        );
                    }
                    Wait::Signal(value.value.clone())
                }
                "for" => Wait::For(self.duration(value, "`for`")),
                _ => match parse_timestamp(value.trim()) {
                    Ok(time) => Wait::Until(time),
                    Err(reason) => {
                        self.report_help(
                            "bad-timestamp",
                            value.span,
                            format!("`until` `{}` is not a timestamp: {reason}", value.value),
                            "write an RFC 3339 timestamp, for example `2026-01-31T12:00:00Z`"
                                .to_owned(),
                        );
                        Wait::Until(SystemTime::UNIX_EPOCH)
                    }
                },
            },
            [(first, _), (second, value), ..] => {
                self.report(
                    "wait-kind",
                    value.span,
                    format!(
                        "wait `{id}` has both `{first}` and `{second}`; a wait waits for exactly one thing"
                    ),
                );
                Wait::Signal(String::new())
            }
        }
    }

    pub(super) fn subflow(&mut self, subflow: &Sp<SubflowDef>) -> StepKind {
        self.check_name(&subflow.workflow, "subflow's workflow name");
        let version = subflow
            .version
            .as_ref()
            .map(|v| self.check_version(v, "subflow's version"));
        StepKind::Subflow {
            workflow: subflow.workflow.value.clone(),
            version,
        }
    }

    pub(super) fn escalations(
        &mut self,
        id: &str,
        list: &Sp<Vec<Sp<EscalationDef>>>,
        kind: &str,
        seq: &mut Seq<'_>,
    ) -> Vec<Escalation> {
        if !matches!(kind, "approval" | "wait" | "subflow") {
            self.report_help(
                "escalate-not-waiting",
                list.span,
                format!(
                    "step `{id}` is {}, which does not wait, so it cannot escalate",
                    kind_noun(kind)
                ),
                "only approval, wait and subflow steps escalate; a plugin step has a `timeout`"
                    .to_owned(),
            );
        }
        let mut escalations = Vec::new();
        for def in &list.value {
            let after = self.duration(&def.after, "`after`");
            if let Some(role) = &def.reassign
                && kind != "approval"
            {
                self.report(
                    "reassign-not-approval",
                    role.span,
                    format!(
                        "step `{id}` reassigns to `{}`, but only approvals have a role to reassign",
                        role.value
                    ),
                );
            }
            if def.reassign.is_none() && def.notify.is_none() && def.goto.is_none() {
                self.report_help(
                    "empty-escalation",
                    def.span,
                    format!("an escalation of step `{id}` does nothing"),
                    "give it `reassign`, `notify` or `goto`".to_owned(),
                );
            }
            let goto = def
                .goto
                .as_ref()
                .map(|text| self.target(text, "goto", id, seq));
            escalations.push(Escalation {
                after,
                reassign: def.reassign.as_ref().map(|r| r.value.clone()),
                notify: def.notify.as_ref().map(|n| EscalationNotice {
                    channel: n.channel.clone(),
                    to: n.to.clone(),
                    subject: n.subject.clone(),
                    body: n.body.clone(),
                }),
                goto,
            });
        }
        escalations.sort_by_key(|e| e.after);
        escalations
    }
}

/// An RFC 3339 timestamp, with `Z` or a numeric offset.
fn parse_timestamp(text: &str) -> Result<SystemTime, String> {
    let bytes = text.as_bytes();
    let n = bytes.len();
    let has_offset = n > 6
        && matches!(bytes[n - 6], b'+' | b'-')
        && bytes[n - 3] == b':'
        && text.is_char_boundary(n - 6)
        && text[..n - 6].contains(['T', 't', ' ']);
    if !has_offset {
        return humantime::parse_rfc3339_weak(text).map_err(|err| err.to_string());
    }
    let (base, offset) = text.split_at(n - 6);
    let hours: u64 = offset[1..3]
        .parse()
        .map_err(|_| "a bad offset".to_owned())?;
    let minutes: u64 = offset[4..6]
        .parse()
        .map_err(|_| "a bad offset".to_owned())?;
    if hours > 23 || minutes > 59 {
        return Err(format!("the offset `{offset}` is out of range"));
    }
    let local =
        humantime::parse_rfc3339_weak(&format!("{base}Z")).map_err(|err| err.to_string())?;
    let shift = Duration::from_secs(hours * 3600 + minutes * 60);
    // Local time = UTC + offset, so UTC = local - offset.
    let utc = if offset.starts_with('+') {
        local.checked_sub(shift)
    } else {
        local.checked_add(shift)
    };
    utc.ok_or_else(|| "out of range".to_owned())
}
