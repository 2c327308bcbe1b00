//! The first-party plugins, built into components and run through the host
//! exactly as the engine will run them.

use crate::support::{self, ctx, data, load, permit_schema, summary};
use docket_host::Json;
use docket_host::plugin::{Capability, Execution, Grants, Limits, Notification};
use serde_json::{Value, json};

fn run(plugin: &str, grants: Grants, config: Value, input: Value) -> Execution {
    let runtime = support::runtime();
    let plugin = load(&runtime, &support::plugin(plugin), grants);
    plugin.run(
        &ctx(),
        &Json::from(config),
        &Json::from(input),
        &Limits::default(),
    )
}

#[track_caller]
fn check(plugin: &str, grants: Grants, config: Value, input: Value, expected: &str) -> Execution {
    let execution = run(plugin, grants, config, input);
    assert_eq!(summary(&execution), expected);
    execution
}

fn application() -> Value {
    json!({"applicant": {"name": "Ada Lovelace", "email": "ada@example.org"}, "parcel": "1234-567", "floors": 2, "fee": 1200, "kind": "commercial"})
}

#[test]
fn validate_schema_lets_a_valid_application_through_unchanged() {
    let execution = check(
        "validate-schema",
        Grants::default(),
        json!({"schema": permit_schema()}),
        application(),
        "continue",
    );
    assert_eq!(data(&execution), application());
}

#[test]
fn validate_schema_rejects_each_violation_with_its_pointer() {
    let cases = [
        (
            json!({"applicant": {"name": "Ada"}, "parcel": "1234-567"}),
            "reject /applicant/email required",
        ),
        (
            json!({"applicant": {"name": "", "email": "x"}, "parcel": "12"}),
            "reject /applicant/email format; /applicant/name minLength; /parcel pattern",
        ),
        (
            json!({"applicant": {"name": "Ada", "email": "a@b.org"}, "parcel": "1234-567", "floors": "two"}),
            "reject /floors type",
        ),
        (json!([]), "reject  type"),
    ];
    for (input, expected) in cases {
        check(
            "validate-schema",
            Grants::default(),
            json!({"schema": permit_schema()}),
            input,
            expected,
        );
    }
}

#[test]
fn validate_schema_without_a_schema_is_a_permanent_error() {
    check(
        "validate-schema",
        Grants::default(),
        json!({}),
        application(),
        "permanent: invalid config at ``: missing field `schema` at line 1 column 2",
    );
    let execution = run(
        "validate-schema",
        Grants::default(),
        json!({"schema": {"type": "nonsense"}}),
        application(),
    );
    assert_eq!(
        summary(&execution),
        "permanent: invalid schema at `/type`: value must be one of 'array', 'boolean', 'integer', \
         'null', 'number', 'object', 'string'"
    );
}

fn fee_table() -> Value {
    json!({
        "hit_policy": "collect",
        "rules": [
            {"when": {"/fee": {"gte": 1000}, "/kind": {"in": ["commercial", "industrial"]}}, "route": "senior-review"},
            {"when": {"/floors": {"gt": 5}}, "route": "fire-safety"},
            {"when": {"/applicant/email": {"matches": "@example\\.org$"}}, "route": "notify-by-email"}
        ],
        "default": "standard"
    })
}

#[test]
fn route_rules_collects_every_matching_route_with_the_data() {
    let execution = check(
        "route-rules",
        Grants::default(),
        fee_table(),
        application(),
        "route senior-review, notify-by-email",
    );
    assert_eq!(data(&execution), application());
    check(
        "route-rules",
        Grants::default(),
        fee_table(),
        json!({"fee": 10, "floors": 9}),
        "route fire-safety",
    );
    check(
        "route-rules",
        Grants::default(),
        fee_table(),
        json!({}),
        "route standard",
    );
}

#[test]
fn route_rules_refuses_bad_tables_and_ambiguity() {
    let mut unique = fee_table();
    unique["hit_policy"] = json!("unique");
    check(
        "route-rules",
        Grants::default(),
        unique,
        application(),
        "permanent: hit policy `unique`, but rules 1, 3 all match",
    );
    check(
        "route-rules",
        Grants::default(),
        json!({"rules": [{"when": {"fee": {"gt": 1}}, "route": "x"}]}),
        application(),
        "permanent: rule 1: field `fee` is not a JSON Pointer (write `/fee`)",
    );
    check(
        "route-rules",
        Grants::default(),
        json!({"hit_policy": "first"}),
        application(),
        "permanent: invalid config at ``: missing field `rules` at line 1 column 22",
    );
}

#[test]
fn route_rules_declares_the_routes_of_its_table() {
    let runtime = support::runtime();
    let plugin = load(&runtime, &support::plugin("route-rules"), Grants::default());
    let routes = plugin
        .check_config(&Json::from(fee_table()), &Limits::default())
        .unwrap();
    assert_eq!(
        routes,
        [
            "senior-review",
            "fire-safety",
            "notify-by-email",
            "standard"
        ]
    );
    let err = plugin.check_config(
        &Json::from(json!({"rules": [{"when": {"/a": {"matches": "("}}, "route": "x"}]})),
        &Limits::default(),
    );
    assert!(
        err.unwrap_err()
            .to_string()
            .starts_with("invalid config: rule 1: field `/a`")
    );
}

fn letter() -> Value {
    json!({
        "channel": "email",
        "to": "{{ applicant.email }}",
        "subject": "Application {{ docket.case_id }} received",
        "body": "Dear {{ applicant.name }}, we received your application for parcel {{ parcel }}."
    })
}

#[test]
fn notify_template_renders_and_records_one_notification() {
    let execution = check(
        "notify-template",
        Grants::default().grant(Capability::Notify),
        letter(),
        application(),
        "continue",
    );
    assert_eq!(
        execution.notifications,
        [Notification {
            channel: "email".to_owned(),
            to: Some("ada@example.org".to_owned()),
            subject: "Application BP-2026-0001 received".to_owned(),
            body: "Dear Ada Lovelace, we received your application for parcel 1234-567.".to_owned(),
        }]
    );
}

#[test]
fn notify_template_rejects_missing_fields_and_sends_nothing() {
    let execution = check(
        "notify-template",
        Grants::default().grant(Capability::Notify),
        letter(),
        json!({"applicant": {"name": "Ada"}}),
        "reject /parcel required; /applicant/email required",
    );
    assert!(execution.notifications.is_empty());
}

#[test]
fn notify_template_without_config_is_a_permanent_error() {
    check(
        "notify-template",
        Grants::default().grant(Capability::Notify),
        json!({"channel": "email"}),
        application(),
        "permanent: invalid config at ``: missing field `subject` at line 1 column 19",
    );
}

#[test]
fn sdk_plugins_import_only_the_capabilities_they_use() {
    let runtime = support::runtime();
    for (name, expected) in [
        ("validate-schema", vec![Capability::Log]),
        ("route-rules", vec![Capability::Log]),
        ("notify-template", vec![Capability::Log, Capability::Notify]),
    ] {
        let inspection = runtime.inspect(&support::plugin(name)).unwrap();
        assert_eq!(inspection.imports.capabilities, expected, "{name}");
        assert!(
            inspection.imports.wasi.is_empty(),
            "{name} imports WASI: {:?}",
            inspection.imports.wasi
        );
        assert!(inspection.imports.forbidden.is_empty(), "{name}");
        assert_eq!(inspection.info.name, name);
    }
}

#[test]
fn a_plain_wasip2_build_loads_and_decides_like_the_lean_one() {
    let runtime = support::runtime();
    let lean = load(
        &runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let plain = load(
        &runtime,
        &support::plugin_wasip2("validate-schema"),
        Grants::default(),
    );
    assert!(
        !plain.imports().wasi.is_empty(),
        "a std wasip2 build imports WASI"
    );
    assert_eq!(plain.imports().capabilities, [Capability::Log]);
    let config = Json::from(json!({"schema": permit_schema()}));
    for input in [application(), json!({"parcel": "x"})] {
        let input = Json::from(input);
        let a = lean.run(&ctx(), &config, &input, &Limits::default());
        let b = plain.run(&ctx(), &config, &input, &Limits::default());
        assert_eq!(a.result, b.result);
    }
}

/// The names every core module inside `component` exports.
fn core_exports(component: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(component) {
        if let wasmparser::Payload::ExportSection(exports) = payload.unwrap() {
            names.extend(
                exports
                    .into_iter()
                    .map(|export| export.unwrap().name.to_owned()),
            );
        }
    }
    names
}

#[test]
fn sdk_plugins_are_pre_initialized_at_build_time() {
    for name in ["validate-schema", "route-rules", "notify-template"] {
        let exports = core_exports(&support::plugin(name));
        assert!(
            exports
                .iter()
                .any(|e| e.starts_with("docket:step/step@0.1.0#")),
            "{name}: {exports:?}"
        );
        assert!(
            !exports.iter().any(|e| e == "docket-init"),
            "{name} still exports `docket-init`: `docket plugin build` did not pre-initialize it"
        );
    }
}
