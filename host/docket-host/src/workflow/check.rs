//! The checks the schema cannot express, and the lowering of the surface
//! syntax into the [`model`](super::model): targets resolved, defaults
//! filled in, durations parsed.
//!
//! Diagnostic codes, one per check:
//!
//! | code | problem |
//! |---|---|
//! | `syntax` | the YAML does not parse (reported by `compile`) |
//! | `schema` | unknown field, wrong type, missing field (reported by `compile`) |
//! | `step-kind` | a step with none or several of `uses`, `parallel`, `approval`, `wait`, `subflow` |
//! | `field-not-allowed` | a plugin-only field (`with`, `grant`, `routes`, ...) on another kind of step |
//! | `bad-name` | a workflow name that is not lowercase letters, digits and `-` |
//! | `bad-version` | a workflow or subflow version under 1 |
//! | `bad-owner` | an empty owner |
//! | `bad-id` | an empty step id or branch name, or one with `/` or whitespace |
//! | `no-steps` | a workflow without steps |
//! | `duplicate-step` | two steps with one id in a sequence, or two branches with one name |
//! | `reserved-id` | a step named `end`, `reject` or `fail` |
//! | `unknown-step` | a target that names no step of its sequence |
//! | `on-return-scope` | an `on_return` that names a step of a branch, not a top-level one |
//! | `bad-version-requirement` | `uses: name@req` with an invalid semver requirement |
//! | `unknown-plugin` | no plugin with that name |
//! | `unknown-plugin-version` | no version of the plugin matches the requirement |
//! | `bad-plugin-config` | the plugin rejects its `with` |
//! | `unknown-route` | a route in `routes` the plugin does not declare |
//! | `unknown-capability` | a `grant` that is not `log`, `notify`, `settings` or `secrets` |
//! | `bad-duration` | a duration humantime cannot read |
//! | `bad-timestamp` | an `until` that is not an RFC 3339 timestamp |
//! | `missing-role` | an approval without a role, or with an empty one |
//! | `bad-required` | an approval's `required` under 1 |
//! | `escalate-not-waiting` | `escalate` on a step that does not wait (a plugin or a parallel step) |
//! | `reassign-not-approval` | an escalation's `reassign` outside an approval |
//! | `empty-escalation` | an escalation that neither reassigns, notifies nor leaves |
//! | `impossible-join` | `at_least: n` with n under 1 or over the number of branches |
//! | `no-branches` | a parallel step without branches |
//! | `empty-branch` | a branch without steps |
//! | `unreachable-step` | a step no path from the sequence's first step leads to |
//! | `no-exit` | reachable steps from which normal flow never reaches `end`, `reject` or `fail` |
//! | `bad-retry` | retry `attempts` under 1, or `max_backoff` under `backoff` |
//! | `bad-input-schema` | an `input` that is not a valid JSON Schema |
//! | `wait-kind` | a wait with none or several of `signal`, `for`, `until` |
//! | `unknown-public-field` | a `public` field the input schema does not declare as a property |
//! | `empty-title` | a step `title` or `department` that is empty |
//! | `refused-plugin` | a catalogue's plugin the host refuses: unsigned, a bad or untrusted signature, changed bytes, yanked, a manifest that misstates it |
//! | `plugin-unavailable` | the catalogue cannot be reached and the cache lacks the plugin |

use super::model::{RetryPolicy, Step, StepKind, Target, Wait, Workflow};
use super::node::{Lenient, Sp};
use super::source::{Document, StepDef};
use super::{Diagnostic, PluginFacts, Span};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

const RESERVED: [&str; 3] = ["end", "reject", "fail"];
const KINDS: [&str; 5] = ["uses", "parallel", "approval", "wait", "subflow"];

/// Checks `document` and lowers it. The workflow is meaningful only when
/// no diagnostic was added.
pub(super) fn check(
    document: &Document,
    plugins: &dyn PluginFacts,
    diagnostics: &mut Vec<Diagnostic>,
) -> Workflow {
    let mut cx = Checker {
        plugins,
        diagnostics,
        top_ids: Vec::new(),
        owner: document.owner.value.clone(),
    };
    cx.check_name(&document.workflow, "workflow name");
    let version = cx.check_version(&document.version, "workflow version");
    if document.owner.trim().is_empty() {
        cx.report(
            "bad-owner",
            document.owner.span,
            "the owner is empty: name the department that owns the process".to_owned(),
        );
    }
    let input_schema = document.input.as_ref().map(|input| {
        if let Err(reason) = check_json_schema(&input.value) {
            cx.report(
                "bad-input-schema",
                input.span,
                format!("`input` is not a valid JSON Schema: {reason}"),
            );
        }
        input.value.clone()
    });
    let public = cx.public_fields(document);
    let retention = document
        .retention
        .as_ref()
        .map(|policy| cx.duration(&policy.keep, "`retention.keep`"));
    if document.steps.is_empty() {
        cx.report(
            "no-steps",
            document.steps.span,
            "the workflow has no steps".to_owned(),
        );
    }
    cx.top_ids = ids_of(&document.steps);
    let steps = cx.sequence(&document.steps, &Scope::Top);
    Workflow {
        name: document.workflow.value.clone(),
        version,
        owner: document.owner.value.clone(),
        description: document.description.clone().unwrap_or_default(),
        input_schema,
        public,
        retention,
        steps,
    }
}

/// Which sequence a step is in.
pub(super) enum Scope<'a> {
    Top,
    Branch { parallel: &'a str, branch: &'a str },
}

impl Scope<'_> {
    pub(super) fn describe(&self) -> String {
        match self {
            Scope::Top => "the top-level sequence".to_owned(),
            Scope::Branch { parallel, branch } => {
                format!("branch `{branch}` of step `{parallel}`")
            }
        }
    }
}

/// The ids a sequence defines, those of steps that failed to deserialize included.
fn ids_of(steps: &[Lenient<StepDef>]) -> Vec<String> {
    steps
        .iter()
        .filter_map(|step| match step {
            Lenient::Ok(def) => Some(def.id.value.clone()),
            Lenient::Failed(id) => id.as_ref().map(|id| id.value.clone()),
        })
        .collect()
}

pub(super) struct Checker<'a> {
    pub(super) plugins: &'a dyn PluginFacts,
    diagnostics: &'a mut Vec<Diagnostic>,
    /// The ids of the top-level sequence, which `on_return` names.
    pub(super) top_ids: Vec<String>,
    /// The workflow's owner: the department of a step that names none.
    owner: String,
}

/// What a sequence knows while its steps are lowered.
pub(super) struct Seq<'a> {
    pub(super) ids: Vec<String>,
    pub(super) scope: &'a Scope<'a>,
    /// A target did not resolve, or a step did not deserialize: the graph
    /// checks would only repeat the problem.
    pub(super) incomplete: bool,
}

impl Checker<'_> {
    pub(super) fn report(&mut self, code: &'static str, span: Span, message: String) {
        self.diagnostics.push(Diagnostic {
            code,
            message,
            span: Some(span),
            help: None,
        });
    }

    pub(super) fn report_help(
        &mut self,
        code: &'static str,
        span: Span,
        message: String,
        help: String,
    ) {
        self.diagnostics.push(Diagnostic {
            code,
            message,
            span: Some(span),
            help: Some(help),
        });
    }

    pub(super) fn check_name(&mut self, name: &Sp<String>, what: &str) {
        if !valid_name(name) {
            self.report_help(
                "bad-name",
                name.span,
                format!("the {what} `{}` is not a valid name", name.value),
                "use lowercase letters, digits and `-`, for example `building-permit`".to_owned(),
            );
        }
    }

    pub(super) fn check_version(&mut self, version: &Sp<i64>, what: &str) -> u32 {
        match u32::try_from(version.value) {
            Ok(v) if v >= 1 => v,
            _ => {
                self.report(
                    "bad-version",
                    version.span,
                    format!(
                        "the {what} is `{}`, but versions start at 1 (and end at {})",
                        version.value,
                        u32::MAX
                    ),
                );
                1
            }
        }
    }

    /// The `public` fields, each checked against the input schema's
    /// properties: a field the schema does not declare is a typo or a field
    /// nobody reviewed for personal data.
    fn public_fields(&mut self, document: &Document) -> Vec<String> {
        let Some(list) = &document.public else {
            return Vec::new();
        };
        let declared = document
            .input
            .as_ref()
            .and_then(|input| input.value.get("properties"))
            .and_then(|properties| properties.as_object());
        let mut fields = Vec::new();
        for field in &list.value {
            if declared.is_some_and(|properties| properties.contains_key(&field.value)) {
                fields.push(field.value.clone());
                continue;
            }
            let help = match declared {
                Some(properties) if !properties.is_empty() => format!(
                    "the input schema declares {}",
                    properties
                        .keys()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                _ => "declare the field under `input: properties:` first".to_owned(),
            };
            self.report_help(
                "unknown-public-field",
                field.span,
                format!(
                    "public field `{}` is not a property of the input schema",
                    field.value
                ),
                help,
            );
        }
        fields
    }

    /// A step's title, or its id spelled out (`fire-safety` -> `Fire safety`).
    fn title(&mut self, def: &StepDef) -> String {
        self.non_empty(def.title.as_ref(), "title", &def.id.value)
            .unwrap_or_else(|| super::model::spelled_out(&def.id.value))
    }

    fn department(&mut self, def: &StepDef) -> String {
        self.non_empty(def.department.as_ref(), "department", &def.id.value)
            .unwrap_or_else(|| self.owner.clone())
    }

    fn non_empty(&mut self, text: Option<&Sp<String>>, field: &str, id: &str) -> Option<String> {
        let text = text?;
        if text.trim().is_empty() {
            self.report(
                "empty-title",
                text.span,
                format!("step `{id}` has an empty `{field}`; leave it out for the default"),
            );
            return None;
        }
        Some(text.trim().to_owned())
    }

    pub(super) fn duration(&mut self, text: &Sp<String>, what: &str) -> Duration {
        match humantime::parse_duration(text.trim()) {
            Ok(duration) => duration,
            Err(err) => {
                self.report_help(
                    "bad-duration",
                    text.span,
                    format!("{what} `{}` is not a duration: {err}", text.value),
                    "write a duration like `500ms`, `30s`, `10d` or `1h 30m`".to_owned(),
                );
                Duration::ZERO
            }
        }
    }

    /// Lowers a sequence of steps and checks its graph.
    pub(super) fn sequence(&mut self, steps: &[Lenient<StepDef>], scope: &Scope<'_>) -> Vec<Step> {
        let ids = ids_of(steps);
        let mut seq = Seq {
            ids,
            scope,
            incomplete: false,
        };
        let mut seen: HashMap<&str, Span> = HashMap::new();
        let mut id_spans = Vec::new();
        for step in steps {
            let id = match step {
                Lenient::Ok(def) => &def.id,
                Lenient::Failed(id) => {
                    seq.incomplete = true;
                    match id {
                        Some(id) => id,
                        None => continue,
                    }
                }
            };
            self.check_id(id, "step id");
            if RESERVED.contains(&id.as_str()) {
                self.report(
                    "reserved-id",
                    id.span,
                    format!(
                        "`{}` is a reserved word and cannot be a step id (targets use `end`, `reject` and `fail`)",
                        id.value
                    ),
                );
            }
            if let Some(first) = seen.get(id.as_str()) {
                self.report(
                    "duplicate-step",
                    id.span,
                    format!(
                        "step id `{}` is used twice in {}; the first is on line {}",
                        id.value,
                        scope.describe(),
                        first.line
                    ),
                );
            } else {
                seen.insert(id.as_str(), id.span);
            }
        }

        let mut lowered = Vec::new();
        for (idx, step) in steps.iter().enumerate() {
            let Lenient::Ok(def) = step else { continue };
            let following = steps.get(idx + 1).map(|s| match s {
                Lenient::Ok(def) => Some(def.id.value.clone()),
                Lenient::Failed(id) => id.as_ref().map(|id| id.value.clone()),
            });
            let default_next = match following {
                Some(Some(id)) => Target::Step(id),
                Some(None) | None => Target::Complete,
            };
            lowered.push(self.step(def, default_next, &mut seq));
            id_spans.push(def.id.span);
        }

        let duplicate = seen.len() != steps.len();
        if !seq.incomplete && !duplicate && !lowered.is_empty() {
            self.check_graph(&lowered, &id_spans, scope);
        }
        lowered
    }

    pub(super) fn check_id(&mut self, id: &Sp<String>, what: &str) {
        if id.is_empty() || id.contains('/') || id.chars().any(char::is_whitespace) {
            self.report(
                "bad-id",
                id.span,
                format!(
                    "the {what} `{}` must be non-empty, without `/` or whitespace",
                    id.value
                ),
            );
        }
    }

    pub(super) fn target(
        &mut self,
        text: &Sp<String>,
        field: &str,
        step: &str,
        seq: &mut Seq<'_>,
    ) -> Target {
        match text.as_str() {
            "end" => Target::Complete,
            "reject" => Target::Reject,
            "fail" => Target::Fail,
            id if seq.ids.iter().any(|s| s == id) => Target::Step(id.to_owned()),
            id => {
                seq.incomplete = true;
                let elsewhere = matches!(seq.scope, Scope::Branch { .. })
                    && self.top_ids.iter().any(|s| s == id);
                let help = if elsewhere {
                    "a step in a branch can only go to steps of the same branch, or to `end` to complete the branch".to_owned()
                } else {
                    format!(
                        "name a step of {} ({}), or `end`, `reject`, `fail`",
                        seq.scope.describe(),
                        list(&seq.ids)
                    )
                };
                self.report_help(
                    "unknown-step",
                    text.span,
                    format!(
                        "step `{step}`: `{field}` names `{id}`, which is not a step of {}",
                        seq.scope.describe()
                    ),
                    help,
                );
                Target::Fail
            }
        }
    }

    fn step(&mut self, def: &StepDef, default_next: Target, seq: &mut Seq<'_>) -> Step {
        let id = def.id.value.as_str();
        let mut present: Vec<(&str, Span)> = [
            def.uses.as_ref().map(|s| s.span),
            def.parallel.as_ref().map(|s| s.span),
            def.approval.as_ref().map(|s| s.span),
            def.wait.as_ref().map(|s| s.span),
            def.subflow.as_ref().map(|s| s.span),
        ]
        .into_iter()
        .zip(KINDS)
        .filter_map(|(span, kind)| span.map(|span| (kind, span)))
        .collect();
        present.sort_by_key(|(_, span)| span.offset);
        match present.as_slice() {
            [] => self.report_help(
                "step-kind",
                def.id.span,
                format!("step `{id}` does nothing"),
                "give it exactly one of `uses`, `parallel`, `approval`, `wait`, `subflow`"
                    .to_owned(),
            ),
            [_] => {}
            [(first, _), (second, span), ..] => self.report(
                "step-kind",
                *span,
                format!(
                    "step `{id}` has both `{first}` and `{second}`; a step does exactly one thing"
                ),
            ),
        }
        let kind_name = present.first().map_or("uses", |(kind, _)| *kind);
        if kind_name != "uses" {
            self.plugin_only_fields(def, kind_name);
        }

        let next = match &def.next {
            Some(text) => self.target(text, "next", id, seq),
            None => default_next,
        };
        let on_reject = match &def.on_reject {
            Some(text) => self.target(text, "on_reject", id, seq),
            None => Target::Reject,
        };
        let on_error = match &def.on_error {
            Some(text) => self.target(text, "on_error", id, seq),
            None => Target::Fail,
        };

        let mut retry = RetryPolicy::default();
        let mut timeout = None;
        let kind = if let Some(uses) = &def.uses {
            if let Some(policy) = &def.retry {
                retry = self.retry(policy, id);
            }
            timeout = def
                .timeout
                .as_ref()
                .map(|text| self.duration(text, "`timeout`"));
            StepKind::Plugin(self.plugin(def, uses, seq))
        } else if let Some(parallel) = &def.parallel {
            self.parallel(id, parallel)
        } else if let Some(approval) = &def.approval {
            StepKind::Approval(self.approval(id, approval, seq))
        } else if let Some(wait) = &def.wait {
            StepKind::Wait(self.wait(id, wait))
        } else if let Some(subflow) = &def.subflow {
            self.subflow(subflow)
        } else {
            StepKind::Wait(Wait::Signal(String::new()))
        };

        let escalations = match &def.escalate {
            Some(list) => self.escalations(id, list, kind_name, seq),
            None => Vec::new(),
        };
        Step {
            id: id.to_owned(),
            title: self.title(def),
            department: self.department(def),
            kind,
            next,
            on_reject,
            on_error,
            retry,
            timeout,
            escalations,
        }
    }

    fn plugin_only_fields(&mut self, def: &StepDef, kind: &str) {
        let fields = [
            ("with", def.with.as_ref().map(|f| f.span)),
            ("grant", def.grant.as_ref().map(|f| f.span)),
            ("settings", def.settings.as_ref().map(|f| f.span)),
            ("timeout", def.timeout.as_ref().map(|f| f.span)),
            ("retry", def.retry.as_ref().map(|f| f.span)),
            ("routes", def.routes.as_ref().map(|f| f.span)),
            ("default", def.default.as_ref().map(|f| f.span)),
        ];
        for (field, span) in fields {
            if let Some(span) = span {
                self.report(
                    "field-not-allowed",
                    span,
                    format!(
                        "step `{}` is {}, but `{field}` applies only to steps with `uses`",
                        def.id.value,
                        kind_noun(kind)
                    ),
                );
            }
        }
    }
}

/// "an approval", "a plugin step", ... for a step whose kind is `kind`.
pub(super) fn kind_noun(kind: &str) -> &'static str {
    match kind {
        "uses" => "a plugin step",
        "parallel" => "a parallel step",
        "approval" => "an approval",
        "wait" => "a wait",
        _ => "a subflow",
    }
}

/// `a`, `b`, `c`.
pub(super) fn list(items: &[String]) -> String {
    if items.is_empty() {
        return "none".to_owned();
    }
    let unique: BTreeSet<&String> = items.iter().collect();
    let mut seen = BTreeSet::new();
    let ordered: Vec<String> = items
        .iter()
        .filter(|i| unique.contains(i) && seen.insert(*i))
        .map(|i| format!("`{i}`"))
        .collect();
    ordered.join(", ")
}

fn valid_name(name: &str) -> bool {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ok_chars && !name.is_empty() && !name.starts_with('-') && !name.ends_with('-')
}

/// Compiles `schema` with boon (draft 2020-12 by default), without
/// loading anything: a remote `$ref` is an error.
fn check_json_schema(schema: &serde_json::Value) -> Result<(), String> {
    struct NoLoader;
    impl boon::UrlLoader for NoLoader {
        fn load(&self, url: &str) -> Result<serde_json::Value, Box<dyn std::error::Error>> {
            Err(format!("`{url}` is not loaded: an input schema must be self-contained").into())
        }
    }
    const URL: &str = "urn:docket:input";
    let mut compiler = boon::Compiler::new();
    compiler.set_default_draft(boon::Draft::V2020_12);
    compiler.use_loader(Box::new(NoLoader));
    let invalid = |err: boon::CompileError| match &err {
        boon::CompileError::ValidationError { src, .. } => {
            let mut leaf = src;
            while let Some(cause) = leaf.causes.first() {
                leaf = cause;
            }
            format!("at `{}`: {}", leaf.instance_location, leaf.kind)
        }
        _ => format!("{err:#}").replace('\n', " "),
    };
    compiler
        .add_resource(URL, schema.clone())
        .map_err(invalid)?;
    let mut schemas = boon::Schemas::new();
    compiler.compile(URL, &mut schemas).map_err(invalid)?;
    Ok(())
}
