//! Plugins written in Python (componentize-py) and JavaScript
//! (componentize-js), run through the host exactly like the Rust ones: the
//! two first-party steps, their hostile twins under the deadline and the
//! memory limit, and the `lang-mix` example workflow that uses them beside
//! Rust plugins.

use crate::engine::{self, Env};
use crate::support::{self, ctx, data, load, summary};
use docket_host::Json;
use docket_host::engine::ManualClock;
use docket_host::plugin::{
    Capability, ConfigError, Execution, Grants, Limits, LoadError, Plugin, Runtime, StepError,
    StepFailure,
};
use docket_host::store::{CaseStatus, Ending, Verdict};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn run(plugin: &Plugin, config: Value, input: Value) -> Execution {
    plugin.run(
        &ctx(),
        &Json::from(config),
        &Json::from(input),
        &Limits::default(),
    )
}

#[track_caller]
fn check(plugin: &Plugin, config: Value, input: Value, expected: &str) -> Execution {
    let execution = run(plugin, config, input);
    assert_eq!(summary(&execution), expected, "{:?}", execution.result);
    execution
}

#[track_caller]
fn failure(execution: &Execution) -> &StepFailure {
    match &execution.result {
        Err(StepError::Failed(failure)) => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[track_caller]
fn messages(execution: &Execution) -> Vec<String> {
    match &execution.result {
        Ok(docket_host::plugin::Outcome::Reject(problems)) => {
            problems.iter().map(|p| p.message.clone()).collect()
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

// validate-documents (Python)

fn documents(runtime: &Runtime) -> Plugin {
    load(
        runtime,
        &support::plugin("validate-documents"),
        Grants::default(),
    )
}

fn required() -> Value {
    json!({"required": {
        "new-building": ["site-plan", "floor-plan", "structural-report"],
        "demolition": ["site-plan"]
    }})
}

fn with_attachments(kind: &str, types: &[&str]) -> Value {
    let attachments: Vec<Value> = types
        .iter()
        .map(|t| json!({"type": t, "name": format!("{t}.pdf")}))
        .collect();
    json!({"applicant": "Ada Lovelace", "kind": kind, "attachments": attachments})
}

#[test]
fn validate_documents_describes_itself_and_asks_only_for_log() {
    let runtime = support::runtime();
    let plugin = documents(&runtime);
    let info = plugin.info();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("validate-documents", "1.0.0")
    );
    assert_eq!(plugin.imports().capabilities, [Capability::Log]);
    assert!(
        plugin.imports().wasi.is_empty() && plugin.imports().forbidden.is_empty(),
        "built with --stub-wasi, it imports no WASI: {:?}",
        plugin.imports()
    );
    let refused = runtime
        .load(&support::plugin("validate-documents"), Grants::none())
        .err();
    assert!(
        matches!(
            refused,
            Some(LoadError::NotGranted {
                capability: Capability::Log,
                ..
            })
        ),
        "{refused:?}"
    );
}

#[test]
fn validate_documents_lets_a_complete_application_through_unchanged() {
    let runtime = support::runtime();
    let input = with_attachments(
        "new-building",
        &["floor-plan", "site-plan", "structural-report"],
    );
    let execution = check(&documents(&runtime), required(), input.clone(), "continue");
    assert_eq!(data(&execution), input);
    assert_eq!(
        execution.logs.last().map(|l| l.message.as_str()),
        Some("all 3 required attachments present for `new-building`")
    );
}

#[test]
fn validate_documents_names_every_missing_attachment() {
    let runtime = support::runtime();
    let execution = check(
        &documents(&runtime),
        required(),
        with_attachments("new-building", &["site-plan"]),
        "reject /attachments missing-attachment; /attachments missing-attachment",
    );
    assert_eq!(
        messages(&execution),
        [
            "the `new-building` application needs a `floor-plan` attachment",
            "the `new-building` application needs a `structural-report` attachment",
        ]
    );
}

#[test]
fn validate_documents_rejects_unknown_kinds_and_malformed_applications() {
    let runtime = support::runtime();
    let plugin = documents(&runtime);
    for (input, expected) in [
        (
            with_attachments("pergola", &[]),
            "reject /kind unknown-kind",
        ),
        (
            json!({"kind": "demolition", "attachments": "site-plan.pdf"}),
            "reject /attachments invalid-input",
        ),
        (
            json!({"kind": "demolition", "attachments": [{"type": "site-plan"}, {"name": "x.pdf"}]}),
            "reject /attachments/1 invalid-input",
        ),
        (json!(["demolition"]), "reject  invalid-input"),
    ] {
        check(&plugin, required(), input, expected);
    }
    // A kind the table leaves out can be let through, when the office says so.
    let lenient = json!({"required": {}, "unknown_kind": "continue"});
    check(
        &plugin,
        lenient,
        with_attachments("pergola", &[]),
        "continue",
    );
}

#[test]
fn validate_documents_refuses_a_bad_config_with_its_pointer() {
    let runtime = support::runtime();
    let plugin = documents(&runtime);
    let input = with_attachments("demolition", &["site-plan"]);
    for (config, expected) in [
        (
            json!({"required": {"demolition": ["site-plan", ""]}}),
            "permanent: invalid config at `/required/demolition/1`: expected a non-empty string",
        ),
        (
            json!({"required": ["site-plan"]}),
            "permanent: invalid config at `/required`: expected an object mapping application kinds to attachment types",
        ),
        (
            json!({"required": {}, "strict": true}),
            "permanent: invalid config at `/strict`: unknown field, expected `required` or `unknown_kind`",
        ),
    ] {
        let execution = check(&plugin, config.clone(), input.clone(), expected);
        assert!(!execution.result.unwrap_err().is_transient());
        let checked = plugin.check_config(&Json::from(config), &Limits::default());
        assert_eq!(
            checked.map_err(|err| err.to_string()),
            Err(expected.replace("permanent: ", "invalid config: "))
        );
    }
    assert_eq!(
        plugin.check_config(&Json::from(required()), &Limits::default()),
        Ok(Vec::new())
    );
}

// transform-fee (JavaScript)

fn fees(runtime: &Runtime) -> Plugin {
    load(
        runtime,
        &support::plugin("transform-fee"),
        Grants::default(),
    )
}

fn fee_table() -> Value {
    json!({
        "currency": "EUR",
        "kinds": {
            "new-building": {"base": 800, "per_m2": 4.5, "minimum": 1000},
            "extension": {"base": 300, "per_m2": 3},
            "demolition": {"base": 450}
        },
        "surcharges": [{"flag": "heritage", "percent": 25}, {"flag": "express", "amount": 150}]
    })
}

#[test]
fn transform_fee_computes_the_fee_line_by_line() {
    let runtime = support::runtime();
    let plugin = fees(&runtime);
    assert_eq!(plugin.imports().capabilities, [Capability::Log]);
    assert!(plugin.imports().wasi.is_empty(), "{:?}", plugin.imports());

    let input = json!({"kind": "new-building", "area_m2": 120.5, "flags": ["heritage", "express"], "parcel": "1234-567"});
    let execution = check(&plugin, fee_table(), input, "continue");
    assert_eq!(
        data(&execution),
        json!({
            "kind": "new-building", "area_m2": 120.5, "flags": ["heritage", "express"], "parcel": "1234-567",
            "fee": {"currency": "EUR", "total": 1827.81, "lines": [
                {"item": "base fee (new-building)", "amount": 800},
                {"item": "120.5 m² at 4.5 per m²", "amount": 542.25},
                // 25 % of 1342.25 is 335.5625: rounded to the cent.
                {"item": "surcharge: heritage (25%)", "amount": 335.56},
                {"item": "surcharge: express", "amount": 150}
            ]}
        })
    );
    assert_eq!(
        execution.logs.last().map(|l| l.message.as_str()),
        Some("fee for BP-2026-0001: 1827.81 EUR in 4 lines")
    );

    // A small new building pays the minimum; cents add up exactly.
    let small = check(
        &plugin,
        fee_table(),
        json!({"kind": "new-building", "area_m2": 10}),
        "continue",
    );
    assert_eq!(data(&small)["fee"]["total"], json!(1000));
    let cents = check(
        &plugin,
        fee_table(),
        json!({"kind": "extension", "area_m2": 0.1, "flags": ["other"]}),
        "continue",
    );
    assert_eq!(data(&cents)["fee"]["total"], json!(300.3));
}

#[test]
fn transform_fee_rejects_what_the_table_cannot_price() {
    let runtime = support::runtime();
    let plugin = fees(&runtime);
    for (input, expected) in [
        (
            json!({"kind": "pergola", "area_m2": 9}),
            "reject /kind unknown-kind",
        ),
        (
            json!({"kind": "extension"}),
            "reject /area_m2 invalid-input",
        ),
        (
            json!({"kind": "extension", "area_m2": -4}),
            "reject /area_m2 invalid-input",
        ),
        (
            json!({"kind": "extension", "area_m2": 4, "flags": "express"}),
            "reject /flags invalid-input",
        ),
        (json!("extension"), "reject  invalid-input"),
    ] {
        check(&plugin, fee_table(), input, expected);
    }
}

#[test]
fn transform_fee_refuses_a_bad_fee_table_with_its_pointer() {
    let runtime = support::runtime();
    let plugin = fees(&runtime);
    let input = json!({"kind": "extension", "area_m2": 10});
    let mut negative = fee_table();
    negative["kinds"]["extension"]["per_m2"] = json!(-3);
    let mut both = fee_table();
    both["surcharges"][1]["percent"] = json!(5);
    for (config, expected) in [
        (
            negative,
            "permanent: invalid config at `/kinds/extension/per_m2`: expected an amount of at least 0",
        ),
        (
            both,
            "permanent: invalid config at `/surcharges/1`: expected exactly one of `amount` and `percent`",
        ),
        (
            json!({"currency": "euro", "kinds": {}}),
            "permanent: invalid config at `/currency`: expected a three-letter currency code such as `EUR`",
        ),
    ] {
        let execution = check(&plugin, config.clone(), input.clone(), expected);
        assert!(!execution.result.unwrap_err().is_transient());
        let checked = plugin.check_config(&Json::from(config), &Limits::default());
        assert!(
            matches!(&checked, Err(ConfigError::Invalid(reason)) if expected.ends_with(reason.as_str())),
            "{checked:?}"
        );
    }
}

// Hostile guests: tests/fixtures/lang/{python/misbehave-py, js/misbehave-js}.

const HOSTILE: [&str; 2] = ["misbehave-py", "misbehave-js"];

fn hostile(runtime: &Runtime, name: &str) -> Plugin {
    load(runtime, &support::guest(name), Grants::none())
}

fn run_mode(plugin: &Plugin, mode: &str, limits: &Limits) -> Execution {
    plugin.run(
        &ctx(),
        &Json::from(json!({"mode": mode})),
        &Json::from(json!({"a": 1})),
        limits,
    )
}

/// The same runtime still runs the well-behaved mode of `plugin`, and a
/// Rust plugin: a misbehaving interpreter never takes the host down.
#[track_caller]
fn assert_host_still_works(runtime: &Runtime, plugin: &Plugin) {
    assert_eq!(
        summary(&run_mode(plugin, "ok", &Limits::default())),
        "continue"
    );
    let rust = load(
        runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let execution = run(
        &rust,
        json!({"schema": {"type": "object"}}),
        json!({"a": 1}),
    );
    assert_eq!(summary(&execution), "continue");
}

#[test]
fn an_interpreters_infinite_loop_is_stopped_at_the_deadline() {
    let runtime = support::runtime();
    for name in HOSTILE {
        let plugin = hostile(&runtime, name);
        let limits = Limits {
            deadline: Duration::from_millis(300),
            ..Limits::default()
        };
        let started = Instant::now();
        let execution = run_mode(&plugin, "loop", &limits);
        let took = started.elapsed();
        assert_eq!(
            failure(&execution),
            &StepFailure::Deadline {
                limit: Duration::from_millis(300)
            },
            "{name}"
        );
        assert!(
            took < Duration::from_millis(900),
            "{name} stopped after {took:?}, more than 3x the deadline"
        );
        assert_host_still_works(&runtime, &plugin);
    }
}

#[test]
fn an_interpreters_memory_growth_hits_the_memory_limit() {
    let runtime = support::runtime();
    for name in HOSTILE {
        let plugin = hostile(&runtime, name);
        let limits = Limits {
            memory: 48 * 1024 * 1024,
            ..Limits::default()
        };
        let execution = run_mode(&plugin, "grow", &limits);
        assert_eq!(
            failure(&execution),
            &StepFailure::MemoryLimit {
                limit: 48 * 1024 * 1024
            },
            "{name}"
        );
        assert!(!execution.result.unwrap_err().is_transient());
        assert_host_still_works(&runtime, &plugin);
    }
}

#[test]
fn an_uncaught_exception_is_a_trap() {
    let runtime = support::runtime();
    for (name, mode) in [("misbehave-py", "raise"), ("misbehave-js", "throw")] {
        let plugin = hostile(&runtime, name);
        let execution = run_mode(&plugin, mode, &Limits::default());
        assert!(
            matches!(failure(&execution), StepFailure::Trap { .. }),
            "{name}: {:?}",
            execution.result
        );
        assert_host_still_works(&runtime, &plugin);
    }
}

// The lang-mix example: Rust, Python and JavaScript steps in one workflow.

fn lang_mix_env() -> Env {
    let dir = tempfile::tempdir().expect("tempdir");
    let plugins = engine::plugin_dir(dir.path());
    for name in ["validate-documents", "transform-fee"] {
        std::fs::write(plugins.join(format!("{name}.wasm")), support::plugin(name)).expect("copy");
    }
    let clock = Arc::new(ManualClock::new(
        humantime::parse_rfc3339("2026-11-23T09:00:00Z").expect("time"),
    ));
    let mailbox = dir.path().join("mailbox.jsonl");
    let host = engine::open(dir.path(), &plugins, clock.clone(), &mailbox, 11);
    let env = Env {
        host,
        clock,
        mailbox,
        dir,
    };
    let source = std::fs::read_to_string(support::root().join("examples/lang-mix/workflow.yaml"))
        .expect("example workflow");
    env.deploy(&source);
    env
}

fn permit(kind: &str, attachments: &[&str]) -> Value {
    let attachments: Vec<Value> = attachments.iter().map(|t| json!({"type": t})).collect();
    json!({
        "applicant": {"name": "Ada Lovelace", "email": "ada@example.org"},
        "kind": kind,
        "area_m2": 42,
        "flags": ["express"],
        "attachments": attachments
    })
}

#[test]
fn lang_mix_runs_rust_python_and_javascript_steps_to_the_end() {
    let env = lang_mix_env();
    let complete = env.start(
        "lang-mix",
        permit("extension", &["site-plan", "floor-plan"]),
        "LM-1",
    );
    assert_eq!(env.case(&complete).row.waiting_roles, ["permit-officer"]);
    env.decide(
        &complete,
        "review",
        Verdict::Approve,
        "olga",
        "permit-officer",
    );
    assert_eq!(env.status(&complete), CaseStatus::Ended(Ending::Completed));
    let mail = env.mail();
    assert_eq!(mail.len(), 1, "{mail:?}");
    // 300 base + 42 m² at 3 + 150 express.
    assert_eq!(
        mail[0]["body"],
        "Dear Ada Lovelace, your permit is granted. The fee is 576 EUR."
    );

    let incomplete = env.start("lang-mix", permit("demolition", &["site-plan"]), "LM-2");
    assert_eq!(env.status(&incomplete), CaseStatus::Ended(Ending::Rejected));
    let timeline = env.case(&incomplete).timeline();
    assert!(
        timeline.contains("documents") && timeline.contains("missing-attachment"),
        "{timeline}"
    );
    assert_eq!(env.mail().len(), 1, "no mail for a rejected application");
}
