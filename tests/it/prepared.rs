//! Prepared steps: a plugin snapshotted after `check-config` for one config
//! runs exactly like the component itself, and a plugin that does not opt
//! in, or cannot be prepared, runs as before.

use crate::support::{self, ctx, load, permit_schema};
use docket_host::Json;
use docket_host::plugin::{
    Capability, Execution, Grants, Limits, Plugin, PrepareError, Runtime, RuntimeConfig,
    StepContext,
};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Inputs that continue, reject with one or several problems, and do not
/// deserialize.
fn inputs() -> Vec<Value> {
    vec![
        json!({"applicant": {"name": "Ada", "email": "ada@example.org"}, "parcel": "1234-567", "floors": 2}),
        json!({"applicant": {"name": "", "email": "not-an-email"}, "parcel": "12", "floors": 99}),
        json!({"applicant": {"name": "Ada"}}),
        json!([1, 2, 3]),
        json!("just text"),
    ]
}

/// A runtime that never prepares by itself.
fn runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_concurrent_executions: 8,
        cache_dir: Some(support::target().join("test-cache")),
        prepare_after: None,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

/// An execution without its timing, for comparison.
fn observed(execution: &Execution) -> String {
    format!(
        "{:?}\n{:?}\n{:?}",
        execution.result, execution.notifications, execution.logs
    )
}

#[track_caller]
fn assert_same_runs(
    original: &Plugin,
    prepared: &Plugin,
    config: &Value,
    contexts: &[StepContext],
) {
    let config = Json::from(config.clone());
    for ctx in contexts {
        for input in inputs() {
            let input = Json::from(input);
            let limits = Limits::default();
            assert_eq!(
                observed(&prepared.run(ctx, &config, &input, &limits)),
                observed(&original.run(ctx, &config, &input, &limits)),
                "config {config:?}, input {input:?}"
            );
        }
    }
}

fn contexts() -> Vec<StepContext> {
    let mut other = ctx();
    other.case_id = "BP-2026-0002".to_owned();
    other.attempt = 3;
    other.actor = None;
    vec![ctx(), other]
}

#[test]
fn a_prepared_step_runs_exactly_like_its_component() {
    let runtime = runtime();
    let original = load(
        &runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let config = json!({"schema": permit_schema()});
    let prepared = original
        .prepare(&Json::from(config.clone()))
        .unwrap_or_else(|err| panic!("{err}"));
    assert!(prepared.is_prepared() && !original.is_prepared());
    assert_eq!(
        prepared.digest(),
        original.digest(),
        "the digest stays the component's"
    );
    assert_eq!(prepared.info(), original.info());
    assert_same_runs(&original, &prepared, &config, &contexts());

    // Another config on the prepared plugin computes its own schema.
    for other in [
        json!({"schema": {"type": "string", "format": "email"}, "validate_formats": false}),
        json!({"schema": permit_schema(), "validate_formats": false}),
        json!({"schema": {"type": 12}}),
        json!({}),
    ] {
        assert_same_runs(&original, &prepared, &other, &contexts());
    }
}

#[test]
fn a_prepared_notification_step_sends_exactly_what_its_component_sends() {
    let runtime = runtime();
    let original = load(
        &runtime,
        &support::plugin("notify-template"),
        Grants::default().grant(Capability::Notify),
    );
    let letter = json!({
        "channel": "email",
        "to": "{{ applicant.email }}",
        "subject": "Application {{ docket.case_id }} received",
        "body": "Dear {{ applicant.name }}, we received your application for parcel {{ parcel }}."
    });
    let prepared = original
        .prepare(&Json::from(letter.clone()))
        .unwrap_or_else(|err| panic!("{err}"));
    let contexts = contexts();
    assert_same_runs(&original, &prepared, &letter, &contexts);
    let sent = prepared.run(
        &contexts[1],
        &Json::from(letter),
        &Json::from(inputs()[0].clone()),
        &Limits::default(),
    );
    assert_eq!(sent.notifications.len(), 1, "{sent:?}");
    assert_eq!(
        sent.notifications[0].subject,
        "Application BP-2026-0002 received"
    );
    let other = json!({"channel": "sms", "subject": "{{ parcel }}", "body": "{% if x %}"});
    assert_same_runs(&original, &prepared, &other, &contexts);
}

#[test]
fn plugins_that_do_not_opt_in_are_not_prepared() {
    let runtime = runtime();
    for name in ["route-rules", "validate-documents", "transform-fee"] {
        let plugin = load(&runtime, &support::plugin(name), Grants::default());
        let err = plugin
            .prepare(&Json::from(json!({})))
            .err()
            .expect("not prepared");
        assert!(
            matches!(err, PrepareError::NotSupported { .. }),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_marker_this_host_does_not_know_is_refused() {
    let mut bytes = support::plugin("validate-schema");
    // A component-level custom section that says version 9.
    let name = b"docket:prepared-config";
    let mut section = vec![u8::try_from(name.len()).unwrap()];
    section.extend_from_slice(name);
    section.push(b'9');
    bytes.push(0);
    bytes.push(u8::try_from(section.len()).unwrap());
    bytes.extend_from_slice(&section);
    let runtime = runtime();
    let plugin = load(&runtime, &bytes, Grants::default());
    let err = plugin
        .prepare(&Json::from(json!({"schema": {}})))
        .err()
        .expect("not prepared");
    assert!(
        matches!(&err, PrepareError::BadMarker { reason, .. } if reason.contains("`9`")),
        "{err}"
    );
}

#[test]
fn a_config_the_plugin_refuses_or_a_hostile_check_config_is_not_prepared() {
    let runtime = runtime();
    let schema = load(
        &runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let err = schema
        .prepare(&Json::from(json!({"schema": {"type": 12}})))
        .err()
        .expect("not prepared");
    assert!(matches!(err, PrepareError::InvalidConfig(_)), "{err}");

    let grants = Grants::default()
        .grant(Capability::Notify)
        .grant(Capability::Settings)
        .grant(Capability::Secrets);
    let misbehave = load(&runtime, &support::guest("misbehave"), grants);
    for (mode, expected) in [("check-loop", "deadline"), ("check-panic", "panic")] {
        let err = misbehave
            .prepare(&Json::from(json!({"mode": mode})))
            .err()
            .expect("not prepared");
        assert!(
            matches!(err, PrepareError::CheckConfig(_)) && err.to_string().contains(expected),
            "{mode}: {err}"
        );
    }
    // The same runtime still runs a good plugin.
    let execution = schema.run(
        &ctx(),
        &Json::from(json!({"schema": permit_schema()})),
        &Json::from(inputs()[0].clone()),
        &Limits::default(),
    );
    assert_eq!(support::summary(&execution), "continue");
}

#[test]
fn a_busy_step_is_prepared_in_the_background_and_runs_the_same() {
    let runtime = Runtime::new(RuntimeConfig {
        max_concurrent_executions: 8,
        cache_dir: Some(support::target().join("test-cache")),
        prepare_after: Some(3),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let original = load(
        &runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let step = original.with_grants(Grants::default()).unwrap();
    let config = json!({"schema": permit_schema()});
    let json_config = Json::from(config.clone());
    let input = Json::from(inputs()[1].clone());
    for _ in 0..3 {
        step.run(&ctx(), &json_config, &input, &Limits::default());
    }
    // Preparing takes two compilations, or a disk-cache read.
    let started = Instant::now();
    while !step.is_prepared() {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the step was not prepared"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!original.is_prepared(), "each step has its own tier");
    assert_same_runs(&original, &step, &config, &contexts());
}
