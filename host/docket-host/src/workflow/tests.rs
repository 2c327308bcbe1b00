//! Unit tests of the workflow language, through `compile` and a fake
//! `PluginFacts`.

use super::*;
use crate::Json;
use std::time::Duration;

/// Plugins `route-rules` 0.1.0 (routes from `config.routes`, an array of
/// strings), `validate-schema` 0.1.0 (no routes; a config without `schema`
/// is rejected) and `notify-template` 0.1.0 (no routes).
struct Fake;

impl PluginFacts for Fake {
    fn routes(
        &self,
        name: &str,
        version: &str,
        config: &Json,
    ) -> Result<Vec<String>, PluginProblem> {
        let known = ["route-rules", "validate-schema", "notify-template"];
        if !known.contains(&name) {
            return Err(PluginProblem::Unknown(
                "there is no plugin of that name".to_owned(),
            ));
        }
        let req = semver::VersionReq::parse(if version == "*" { "*" } else { version }).unwrap();
        if !req.matches(&semver::Version::new(0, 1, 0)) {
            return Err(PluginProblem::UnknownVersion(format!(
                "no version of plugin `{name}` matches `{version}` (there is `0.1.0`)"
            )));
        }
        let config = config.to_value();
        match name {
            "route-rules" => Ok(config["routes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r.as_str().map(str::to_owned))
                .collect()),
            "validate-schema" if config.get("schema").is_none() => Err(PluginProblem::BadConfig(
                "missing field `schema`".to_owned(),
            )),
            _ => Ok(Vec::new()),
        }
    }
}

/// The diagnostics of `source`, one `line:col: code: message` each.
#[track_caller]
fn check(source: &str, expected: &[&str]) {
    let found = match compile(source, &Fake) {
        Ok(_) => Vec::new(),
        Err(diagnostics) => diagnostics.iter().map(ToString::to_string).collect(),
    };
    assert_eq!(found, expected, "\n{}", found.join("\n"));
}

#[track_caller]
fn ok(source: &str) -> Workflow {
    compile(source, &Fake).unwrap_or_else(|diagnostics| {
        let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
        panic!("expected no problems:\n{}", lines.join("\n"))
    })
}

const HEAD: &str = "workflow: permit\nversion: 1\nowner: planning\n";

fn doc(steps: &str) -> String {
    format!("{HEAD}steps:\n{steps}")
}

#[test]
fn a_full_workflow_compiles_with_defaults_filled_in() {
    let workflow = ok(&doc(r#"
  - id: intake
    uses: validate-schema@0.1
    with: { schema: { type: object } }
    grant: [log, notify]
    settings: { sender: permits@city.example }
    timeout: 500ms
    retry: { attempts: 3, backoff: 1s, max_backoff: 1m }
  - id: triage
    uses: route-rules
    with: { routes: [simple, complex] }
    routes: { simple: decide, complex: reviews }
    default: reviews
  - id: reviews
    parallel:
      join: { at_least: 1 }
      branches:
        fire:
          - id: fire-check
            approval: { role: fire-safety }
        zoning:
          - id: zoning-check
            approval: { role: zoning, on_return: triage }
  - id: decide
    approval:
      role: permit-officer
      required: 2
      four_eyes: { applicant: false }
    escalate:
      - after: 15d
        goto: reject
      - after: 10d
        reassign: head-of-permits
        notify: { channel: email, subject: late, body: "please decide" }
  - id: await-payment
    wait: { until: "2026-01-31T12:00:00+01:00" }
  - id: inspection
    subflow: { workflow: fire-inspection, version: 2 }
"#));
    assert_eq!(workflow.name, "permit");
    assert_eq!(workflow.steps.len(), 6);
    let intake = &workflow.steps[0];
    assert_eq!(intake.next, Target::Step("triage".into()));
    assert_eq!(intake.on_reject, Target::Reject);
    assert_eq!(intake.on_error, Target::Fail);
    assert_eq!(intake.timeout, Some(Duration::from_millis(500)));
    assert_eq!(intake.retry.attempts, 3);
    assert_eq!(intake.retry.max_backoff, Duration::from_secs(60));
    let StepKind::Plugin(plugin) = &intake.kind else {
        panic!("{:?}", intake.kind)
    };
    assert_eq!(plugin.plugin, "validate-schema");
    assert_eq!(plugin.version, "0.1");
    assert_eq!(
        plugin.settings,
        vec![("sender".to_owned(), "permits@city.example".to_owned())]
    );
    let StepKind::Plugin(triage) = &workflow.steps[1].kind else {
        panic!()
    };
    assert_eq!(triage.version, "*");
    assert_eq!(
        triage.routes,
        vec![
            ("simple".to_owned(), Target::Step("decide".into())),
            ("complex".to_owned(), Target::Step("reviews".into()))
        ]
    );
    let fire = workflow.step("reviews/fire/fire-check").unwrap();
    assert_eq!(fire.next, Target::Complete);
    let StepKind::Approval(approval) = &fire.kind else {
        panic!()
    };
    assert_eq!(approval.on_return, Target::Step("intake".into()));
    assert_eq!(approval.required, 1);
    let decide = &workflow.steps[3];
    assert_eq!(decide.escalations[0].after, Duration::from_secs(10 * 86400));
    assert_eq!(decide.escalations[1].goto, Some(Target::Reject));
    let StepKind::Approval(approval) = &decide.kind else {
        panic!()
    };
    assert!(!approval.four_eyes.not_applicant);
    assert!(approval.four_eyes.not_previous_approvers);
    let StepKind::Wait(Wait::Until(until)) = &workflow.steps[4].kind else {
        panic!()
    };
    assert_eq!(
        *until,
        humantime::parse_rfc3339("2026-01-31T11:00:00Z").unwrap()
    );
    assert_eq!(workflow.steps[5].next, Target::Complete);
}

#[test]
fn syntax_errors_have_a_position() {
    check(
        &format!("{HEAD}steps: [\n"),
        &["4:8: syntax: unclosed bracket '['"],
    );
}

#[test]
fn every_schema_error_is_reported() {
    check(
        &doc(r#"
  - id: a
    uses: validate-schema
    with: { schema: {} }
    colour: blue
  - id: b
    approval: { role: [7] }
  - id: c
    wait: { signal: go }
"#),
        &[
            "9:5: schema: unknown field `colour`",
            "11:23: schema: invalid type: sequence, expected a string",
        ],
    );
}

#[test]
fn a_bad_top_level_reports_one_schema_error() {
    check(
        "workflow: permit\nversion: one\nowner: x\nsteps: []\n",
        &["2:10: schema: invalid type: string \"one\", expected an integer"],
    );
    check(
        "workflow: permit\nowner: x\nsteps: []\n",
        &["1:1: schema: missing field `version`"],
    );
    check("", &["1:1: schema: the definition is empty"]);
}

#[test]
fn step_kinds() {
    check(
        &doc(r#"
  - id: none
  - id: two
    uses: validate-schema
    with: { schema: {} }
    wait: { signal: x }
  - id: misplaced
    approval: { role: clerk }
    with: { a: 1 }
    retry: { attempts: 2 }
"#),
        &[
            "6:9: step-kind: step `none` does nothing",
            "10:11: step-kind: step `two` has both `uses` and `wait`; a step does exactly one thing",
            "13:11: field-not-allowed: step `misplaced` is an approval, but `with` applies only to steps with `uses`",
            "14:12: field-not-allowed: step `misplaced` is an approval, but `retry` applies only to steps with `uses`",
        ],
    );
}

#[test]
fn names_versions_and_ids() {
    check(
        r#"workflow: Permit
version: 0
owner: " "
steps:
  - id: end
    wait: { for: 1d }
  - id: a/b
    wait: { for: 1d }
  - id: x
    wait: { for: 1d }
  - id: x
    wait: { for: 1d }
  - id: sub
    subflow: { workflow: Fire_Check, version: 0 }
"#,
        &[
            "1:11: bad-name: the workflow name `Permit` is not a valid name",
            "2:10: bad-version: the workflow version is `0`, but versions start at 1 (and end at 4294967295)",
            "3:8: bad-owner: the owner is empty: name the department that owns the process",
            "5:9: reserved-id: `end` is a reserved word and cannot be a step id (targets use `end`, `reject` and `fail`)",
            "7:9: bad-id: the step id `a/b` must be non-empty, without `/` or whitespace",
            "11:9: duplicate-step: step id `x` is used twice in the top-level sequence; the first is on line 9",
            "14:26: bad-name: the subflow's workflow name `Fire_Check` is not a valid name",
            "14:47: bad-version: the subflow's version is `0`, but versions start at 1 (and end at 4294967295)",
        ],
    );
    check(
        &format!("{HEAD}steps: []\n"),
        &["4:8: no-steps: the workflow has no steps"],
    );
}

#[test]
fn targets_resolve_in_their_own_sequence() {
    check(
        &doc(r#"
  - id: a
    wait: { signal: go }
    next: nowhere
    on_reject: b
  - id: b
    parallel:
      branches:
        one:
          - id: c
            approval: { role: clerk, on_return: d }
            next: a
          - id: d
            approval: { role: clerk, on_return: nope }
"#),
        &[
            "8:11: unknown-step: step `a`: `next` names `nowhere`, which is not a step of the top-level sequence",
            "15:49: on-return-scope: approval `c`: `on_return` names `d`, a step of branch `one` of step `b`, but a returned case resumes in the top-level sequence",
            "16:19: unknown-step: step `c`: `next` names `a`, which is not a step of branch `one` of step `b`",
            "18:49: unknown-step: approval `d`: `on_return` names `nope`, which is not a top-level step",
        ],
    );
}

#[test]
fn plugins_are_checked_through_plugin_facts() {
    check(
        &doc(r#"
  - id: a
    uses: nothing-here
  - id: b
    uses: validate-schema@^2
  - id: c
    uses: validate-schema@not-a-version
  - id: d
    uses: validate-schema
    with: { scheme: {} }
  - id: e
    uses: route-rules@0.1
    with: { routes: [simple, complex] }
    routes: { simple: end, urgent: end }
  - id: f
    uses: notify-template
    grant: [log, email]
    routes: { sent: end }
"#),
        &[
            "7:11: unknown-plugin: step `a` uses plugin `nothing-here`: there is no plugin of that name",
            "9:11: unknown-plugin-version: step `b` uses `validate-schema@^2`: no version of plugin `validate-schema` matches `^2` (there is `0.1.0`)",
            "11:11: bad-version-requirement: step `c`: `not-a-version` is not a version requirement: unexpected character 'n' while parsing major version number",
            "14:11: bad-plugin-config: step `d`: plugin `validate-schema` rejects its config: missing field `schema`",
            "18:28: unknown-route: step `e` routes `urgent`, but plugin `route-rules` declares only `simple`, `complex`",
            "21:18: unknown-capability: step `f` grants `email`, which is not a capability",
            "22:15: unknown-route: step `f` routes `sent`, but plugin `notify-template` declares no routes",
        ],
    );
}

#[test]
fn durations_timestamps_and_retries() {
    check(
        &doc(r#"
  - id: a
    uses: notify-template
    timeout: 5 parsecs
    retry: { attempts: 0, backoff: 10s, max_backoff: 1s }
  - id: b
    wait: { until: "tomorrow" }
  - id: c
    wait: { for: 3d, signal: go }
  - id: d
    wait: {}
"#),
        &[
            "8:14: bad-duration: `timeout` `5 parsecs` is not a duration: unknown time unit \"parsecs\", supported units: ns, us/µs, ms, sec, min, hours, days, weeks, months, years (and few variations)",
            "9:24: bad-retry: step `a` retries with `attempts: 0`, but a step runs at least once: use 1 for no retry",
            "9:54: bad-retry: step `a`: `max_backoff` (1s) is shorter than `backoff` (10s)",
            "11:20: bad-timestamp: `until` `tomorrow` is not a timestamp: timestamp format is invalid",
            "13:18: wait-kind: wait `c` has both `signal` and `for`; a wait waits for exactly one thing",
            "15:11: wait-kind: wait `d` waits for nothing",
        ],
    );
}

#[test]
fn approvals_and_escalations() {
    check(
        &doc(r#"
  - id: a
    approval: { required: 0 }
  - id: b
    approval: { role: "" }
    escalate:
      - after: 1d
  - id: c
    uses: notify-template
    escalate:
      - after: 1d
        goto: end
  - id: d
    wait: { signal: go }
    escalate:
      - after: 1d
        reassign: boss
"#),
        &[
            "7:15: missing-role: approval `a` has no `role`: name the role whose members decide",
            "7:27: bad-required: approval `a` requires `0` approvers; it needs at least 1",
            "9:23: missing-role: approval `b` has an empty role: name the role whose members decide",
            "11:9: empty-escalation: an escalation of step `b` does nothing",
            "15:7: escalate-not-waiting: step `c` is a plugin step, which does not wait, so it cannot escalate",
            "21:19: reassign-not-approval: step `d` reassigns to `boss`, but only approvals have a role to reassign",
        ],
    );
}

#[test]
fn joins_that_can_never_complete() {
    check(
        &doc(r#"
  - id: a
    parallel:
      join: { at_least: 3 }
      branches:
        one:
          - id: x
            wait: { signal: go }
        two: []
  - id: b
    parallel: { join: any }
"#),
        &[
            "8:25: impossible-join: parallel step `a` joins `at_least: 3` of 2 branches, which can never happen",
            "13:14: empty-branch: branch `two` of parallel step `a` has no steps",
            "15:15: no-branches: parallel step `b` has no branches, so it can never complete",
        ],
    );
}

#[test]
fn unreachable_steps_and_loops_without_exit() {
    check(
        &doc(r#"
  - id: a
    wait: { signal: go }
    next: b
    on_error: d
  - id: b
    wait: { signal: again }
    next: c
  - id: c
    approval: { role: clerk }
    next: b
    on_reject: b
    on_error: end
  - id: d
    wait: { signal: x }
    next: end
  - id: lost
    wait: { signal: y }
"#),
        &[
            "6:9: no-exit: steps `a`, `b`, `c` are caught in a loop with no way out: normal flow from them never reaches `end`, `reject` or `fail`",
            "21:9: unreachable-step: step `lost` is unreachable: no path from `a`, the first step of the top-level sequence, leads to it",
        ],
    );
    // An escalation leaves the loop.
    ok(&doc(r#"
  - id: a
    wait: { signal: go }
    next: a
    escalate:
      - { after: 30d, goto: end }
"#));
}

#[test]
fn input_must_be_a_json_schema() {
    check(
        &format!("{HEAD}input: {{ type: objekt }}\nsteps:\n  - id: a\n    wait: {{ for: 1d }}\n"),
        &[
            "4:8: bad-input-schema: `input` is not a valid JSON Schema: at `/type`: value must be one of 'array', 'boolean', 'integer', 'null', 'number', 'object', 'string'",
        ],
    );
}

#[test]
fn diagnostics_are_sorted_and_displayed_on_one_line() {
    let diagnostics = compile("workflow: x\nversion: 0\nowner: o\nsteps: []\n", &Fake).unwrap_err();
    let codes: Vec<&str> = diagnostics.iter().map(|d| d.code).collect();
    assert_eq!(codes, ["bad-version", "no-steps"]);
    assert_eq!(
        diagnostics[0].span,
        Some(Span {
            offset: 21,
            len: 1,
            line: 2,
            column: 10
        })
    );
}

#[test]
fn the_schema_describes_the_surface_syntax() {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert_eq!(
        schema["required"],
        serde_json::json!(["workflow", "version", "owner", "steps"])
    );
    let step = &schema["$defs"]["Step"];
    assert_eq!(step["additionalProperties"], false);
    assert!(step["properties"]["uses"].is_object());
}

#[test]
fn scalars_follow_yaml_1_2_and_string_fields_take_them_as_written() {
    let workflow = ok(&doc(r#"
  - id: 2026
    wait: { signal: y }
    next: no
  - id: no
    wait: { signal: 0755 }
"#));
    assert_eq!(workflow.steps[0].id, "2026");
    assert_eq!(
        workflow.steps[0].kind,
        StepKind::Wait(Wait::Signal("y".into()))
    );
    assert_eq!(workflow.steps[0].next, Target::Step("no".into()));
    assert_eq!(
        workflow.steps[1].kind,
        StepKind::Wait(Wait::Signal("0755".into()))
    );
}

#[test]
fn a_step_with_a_schema_error_still_answers_to_its_id() {
    // `b` does not deserialize, but `a` may name it, and nothing else is
    // reported about the sequence.
    check(
        &doc(r#"
  - id: a
    wait: { signal: go }
    next: b
  - id: b
    wait: { signal: go }
    colour: blue
  - id: b
    wait: { signal: again }
"#),
        &[
            "11:5: schema: unknown field `colour`",
            "12:9: duplicate-step: step id `b` is used twice in the top-level sequence; the first is on line 9",
        ],
    );
}

#[test]
fn plugin_config_is_any_yaml_as_json() {
    let workflow = ok(&doc(r#"
  - id: a
    uses: route-rules
    with:
      routes: [x]
      nested: { list: [1, 2.5, true, null, "s"], "key with space": ~ }
    routes: { x: end }
"#));
    let StepKind::Plugin(plugin) = &workflow.steps[0].kind else {
        panic!()
    };
    assert_eq!(
        plugin.config.to_value(),
        serde_json::json!({"routes": ["x"], "nested": {"list": [1, 2.5, true, null, "s"], "key with space": null}})
    );
}

#[test]
fn titles_departments_and_public_fields_have_defaults_and_are_checked() {
    let workflow = ok(&format!(
        "{HEAD}input: {{ type: object, properties: {{ project: {{}}, applicant: {{}} }} }}\n\
         public: [project]\nsteps:\n{}",
        r#"
  - id: fire_safety-review
    approval: { role: fire }
  - id: decide
    title: Permit decision
    department: permits-office
    approval: { role: officer }
"#
    ));
    assert_eq!(workflow.public, ["project"]);
    let titles: Vec<(&str, &str)> = workflow
        .steps
        .iter()
        .map(|s| (s.title.as_str(), s.department.as_str()))
        .collect();
    assert_eq!(
        titles,
        [
            ("Fire safety review", "planning"),
            ("Permit decision", "permits-office")
        ]
    );

    check(
        &format!(
            "{HEAD}public: [parcel]\nsteps:\n  - id: a\n    title: ' '\n    wait: {{ signal: go }}\n"
        ),
        &[
            "4:10: unknown-public-field: public field `parcel` is not a property of the input schema",
            "7:12: empty-title: step `a` has an empty `title`; leave it out for the default",
        ],
    );
}

#[test]
fn the_plugins_a_definition_uses_are_read_from_its_syntax() {
    let source = doc(r#"
  - id: intake
    uses: validate-schema@0.1
    with: { schema: { type: object } }
  - id: reviews
    parallel:
      branches:
        a: [{ id: notify, uses: notify-template, with: {} }]
        b: [{ id: again, uses: validate-schema@^0, with: {} }]
"#);
    assert_eq!(
        plugins_used(&source),
        ["notify-template", "validate-schema"]
    );
    assert!(plugins_used("steps: [").is_empty());
}
