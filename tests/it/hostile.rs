//! Hostile and broken components, one test each. Every test ends by running
//! a good plugin on the same runtime: a misbehaving plugin never takes the
//! host down with it.

use crate::support::{self, ctx, data, load, summary};
use docket_host::Json;
use docket_host::plugin::{
    Capability, Execution, Grants, Limits, LoadError, Plugin, Runtime, StepError, StepFailure,
};
use serde_json::json;
use std::time::{Duration, Instant};

fn all_grants() -> Grants {
    Grants::default()
        .grant(Capability::Notify)
        .grant(Capability::Settings)
        .grant(Capability::Secrets)
        .setting("greeting", "hello")
        .secret("token", "s3cret")
}

fn misbehave(runtime: &Runtime) -> Plugin {
    load(runtime, &support::guest("misbehave"), all_grants())
}

fn run_mode(plugin: &Plugin, mode: &str, limits: &Limits) -> Execution {
    plugin.run(
        &ctx(),
        &Json::from(json!({"mode": mode})),
        &Json::from(json!({"a": 1})),
        limits,
    )
}

#[track_caller]
fn failure(execution: &Execution) -> &StepFailure {
    match &execution.result {
        Err(StepError::Failed(failure)) => failure,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The same runtime still loads and runs a good plugin.
#[track_caller]
fn assert_host_still_works(runtime: &Runtime) {
    let plugin = load(
        runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let config = Json::from(json!({"schema": {"type": "object", "required": ["a"]}}));
    let execution = plugin.run(
        &ctx(),
        &config,
        &Json::from(json!({"a": 1})),
        &Limits::default(),
    );
    assert_eq!(summary(&execution), "continue");
}

#[test]
fn an_infinite_loop_is_stopped_at_the_deadline() {
    let runtime = support::runtime();
    for plugin in [
        misbehave(&runtime),
        load(&runtime, &support::guest("wasi-probe"), Grants::default()),
    ] {
        let limits = Limits {
            deadline: Duration::from_millis(200),
            ..Limits::default()
        };
        let started = Instant::now();
        let execution = run_mode(&plugin, "loop", &limits);
        let took = started.elapsed();
        assert_eq!(
            failure(&execution),
            &StepFailure::Deadline {
                limit: Duration::from_millis(200)
            }
        );
        assert!(
            took < Duration::from_millis(600),
            "stopped after {took:?}, more than 3x the deadline"
        );
        assert!(execution.result.unwrap_err().is_transient());
    }
    assert_host_still_works(&runtime);
}

#[test]
fn unbounded_memory_growth_hits_the_memory_limit() {
    let runtime = support::runtime();
    let limits = Limits {
        memory: 16 * 1024 * 1024,
        ..Limits::default()
    };
    let execution = run_mode(&misbehave(&runtime), "grow", &limits);
    assert_eq!(
        failure(&execution),
        &StepFailure::MemoryLimit {
            limit: 16 * 1024 * 1024
        }
    );
    assert_eq!(
        summary(&execution),
        "the step needed more than its memory limit of 16 MiB"
    );
    assert!(!execution.result.unwrap_err().is_transient());
    assert_host_still_works(&runtime);
}

#[test]
fn a_panic_returns_the_guests_message() {
    let runtime = support::runtime();
    let execution = run_mode(&misbehave(&runtime), "panic", &Limits::default());
    let StepFailure::Trap {
        panic: Some(panic), ..
    } = failure(&execution)
    else {
        panic!(
            "expected a trap with the panic message, got {:?}",
            execution.result
        )
    };
    assert!(
        panic.contains("the misbehaving step panics on purpose"),
        "{panic}"
    );
    assert!(panic.starts_with("panicked at "), "{panic}");
    assert_host_still_works(&runtime);
}

#[test]
fn a_panic_on_stderr_is_reported_too() {
    let runtime = support::runtime();
    let plugin = load(&runtime, &support::guest("wasi-probe"), Grants::default());
    let execution = run_mode(&plugin, "stderr-panic", &Limits::default());
    let StepFailure::Trap {
        panic: Some(panic), ..
    } = failure(&execution)
    else {
        panic!(
            "expected a trap with the panic message, got {:?}",
            execution.result
        )
    };
    assert!(panic.contains("a panic reported on stderr"), "{panic}");
    assert_host_still_works(&runtime);
}

#[test]
fn a_stack_overflow_is_a_trap() {
    let runtime = support::runtime();
    let execution = run_mode(&misbehave(&runtime), "recurse", &Limits::default());
    let StepFailure::Trap { trap, .. } = failure(&execution) else {
        panic!("{:?}", execution.result)
    };
    assert!(trap.contains("call stack exhausted"), "{trap}");
    assert_host_still_works(&runtime);
}

#[test]
fn oversized_output_is_refused_before_the_host_copies_it() {
    let runtime = support::runtime();
    let plugin = misbehave(&runtime);
    for mode in ["huge-output", "many-problems", "big-notifications"] {
        let execution = run_mode(&plugin, mode, &Limits::default());
        assert_eq!(
            failure(&execution),
            &StepFailure::OutputTooLarge { limit: 1_048_576 },
            "{mode}"
        );
        assert_eq!(
            summary(&execution),
            "the step returned more than its output limit of 1048576 bytes"
        );
        assert!(execution.notifications.is_empty(), "{mode}");
    }
    assert_host_still_works(&runtime);
}

#[test]
fn malformed_outcomes_are_refused() {
    let runtime = support::runtime();
    let plugin = load(&runtime, &support::guest("raw-output"), Grants::none());
    assert!(
        plugin.imports().capabilities.is_empty(),
        "written without the SDK, it imports nothing"
    );
    for (mode, expected) in [
        (
            "bad-json",
            "the step returned malformed `continue` data: invalid JSON at line 1, column 17: EOF while parsing a value",
        ),
        (
            "bad-route-json",
            "the step returned malformed `route` data: invalid JSON at line 1, column 2: expected ident",
        ),
        (
            "no-route",
            "the step returned malformed `route` outcome: it names no route",
        ),
    ] {
        let execution = plugin.run(
            &ctx(),
            &Json::from(json!(mode)),
            &Json::from(json!({})),
            &Limits::default(),
        );
        assert_eq!(summary(&execution), expected);
        assert!(matches!(failure(&execution), StepFailure::BadOutput { .. }));
    }
    assert_host_still_works(&runtime);
}

#[test]
fn a_notification_flood_hits_the_cap_and_sends_nothing() {
    let runtime = support::runtime();
    let execution = run_mode(&misbehave(&runtime), "notify-spam", &Limits::default());
    assert_eq!(
        failure(&execution),
        &StepFailure::TooManyNotifications { limit: 16 }
    );
    assert!(
        execution.notifications.is_empty(),
        "a failed step's notifications are never delivered"
    );
    assert_host_still_works(&runtime);
}

#[test]
fn a_log_flood_is_truncated_not_fatal() {
    let runtime = support::runtime();
    let limits = Limits {
        log: 10 * 1024,
        ..Limits::default()
    };
    let execution = run_mode(&misbehave(&runtime), "log-spam", &limits);
    assert_eq!(summary(&execution), "continue");
    assert_eq!(
        execution.logs.len(),
        10,
        "nine lines of 1 KiB and their overhead fit, then the notice"
    );
    assert_eq!(
        execution.logs.last().unwrap().message,
        "log truncated: the step wrote more than 10240 bytes"
    );

    // Empty lines cost their overhead too: a million of them keep a bounded log.
    let execution = run_mode(&misbehave(&runtime), "empty-log-spam", &limits);
    assert_eq!(summary(&execution), "continue");
    assert!(
        execution.logs.len() <= 10 * 1024 / 64 + 1,
        "{} lines kept",
        execution.logs.len()
    );
}

#[test]
fn an_ungranted_capability_is_refused_at_load() {
    let runtime = support::runtime();
    let err = runtime
        .load(&support::plugin("notify-template"), Grants::default())
        .err()
        .expect("refused");
    assert!(matches!(
        err,
        LoadError::NotGranted {
            capability: Capability::Notify,
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        "plugin `notify-template` imports `docket:step/notify@0.1.0`, which this deployment does not grant \
         (grant `notify` to allow it)"
    );
    let err = runtime
        .load(
            &support::guest("misbehave"),
            Grants::default().grant(Capability::Notify),
        )
        .err()
        .unwrap();
    assert!(
        err.to_string().contains("`docket:step/settings@0.1.0`"),
        "{err}"
    );
    assert_host_still_works(&runtime);
}

#[test]
fn a_network_import_is_refused_at_load() {
    let runtime = support::runtime();
    let inspection = runtime.inspect(&support::guest("net-probe")).unwrap();
    assert!(
        inspection
            .imports
            .forbidden
            .iter()
            .all(|i| i.starts_with("wasi:sockets/")),
        "{:?}",
        inspection.imports
    );
    let err = runtime
        .load(&support::guest("net-probe"), all_grants())
        .err()
        .expect("refused");
    let LoadError::Forbidden { plugin, import } = &err else {
        panic!("{err}")
    };
    assert_eq!(plugin, "net-probe");
    assert!(import.starts_with("wasi:sockets/"), "{import}");
    assert!(
        err.to_string().contains("which docket never grants"),
        "{err}"
    );
    assert_host_still_works(&runtime);
}

#[test]
fn the_filesystem_is_linked_with_no_directories() {
    let runtime = support::runtime();
    let plugin = load(&runtime, &support::guest("wasi-probe"), Grants::default());
    assert!(
        plugin
            .imports()
            .wasi
            .iter()
            .any(|i| i.starts_with("wasi:filesystem/")),
        "{:?}",
        plugin.imports()
    );
    let files = data(&run_mode(&plugin, "files", &Limits::default()));
    for probe in ["read_passwd", "list_root", "list_cwd", "write_tmp"] {
        assert!(files[probe].is_string(), "{probe} must fail, got {files}");
    }
    let env = data(&run_mode(&plugin, "env", &Limits::default()));
    assert_eq!(
        (env["vars"].as_u64(), env["args"].as_u64()),
        (Some(0), Some(0)),
        "{env}"
    );
    assert_host_still_works(&runtime);
}

#[test]
fn wasi_clocks_and_randomness_are_deterministic() {
    let runtime = support::runtime();
    let plugin = load(&runtime, &support::guest("wasi-probe"), Grants::default());
    let time = data(&run_mode(&plugin, "time", &Limits::default()));
    assert_eq!(
        time["wall_clock_millis"], time["context_millis"],
        "the wall clock reads the engine's clock"
    );

    let random = |case_id: &str| {
        let ctx = docket_host::plugin::StepContext {
            case_id: case_id.to_owned(),
            ..ctx()
        };
        data(&plugin.run(
            &ctx,
            &Json::from(json!({"mode": "random"})),
            &Json::from(json!({})),
            &Limits::default(),
        ))
    };
    assert_eq!(
        random("A"),
        random("A"),
        "a replay sees the same randomness"
    );
    assert_ne!(
        random("A"),
        random("B"),
        "another case sees other randomness"
    );
}

#[test]
fn sleeping_never_blocks_the_host() {
    let runtime = support::runtime();
    let plugin = load(&runtime, &support::guest("wasi-probe"), Grants::default());
    // A regression would block for an hour; fail instead of hanging the suite.
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || sender.send(run_mode(&plugin, "sleep", &Limits::default())));
    let execution = receiver
        .recv_timeout(Duration::from_secs(60))
        .expect("a sleeping step blocked the host");
    assert_eq!(
        data(&execution),
        json!({"slept": true}),
        "the virtual clock lets the hour pass at once"
    );
    assert_host_still_works(&runtime);
}

#[test]
fn each_execution_gets_a_fresh_instance() {
    let runtime = support::runtime();
    let plugin = misbehave(&runtime);
    for _ in 0..3 {
        assert_eq!(
            data(&run_mode(&plugin, "counter", &Limits::default())),
            json!({"count": 1})
        );
    }
}

#[test]
fn a_misbehaving_execution_does_not_slow_down_another() {
    let runtime = support::runtime();
    let good = load(
        &runtime,
        &support::plugin("validate-schema"),
        Grants::default(),
    );
    let looping = misbehave(&runtime);
    let spinner = std::thread::spawn(move || {
        run_mode(
            &looping,
            "loop",
            &Limits {
                deadline: Duration::from_secs(5),
                ..Limits::default()
            },
        )
    });
    std::thread::sleep(Duration::from_millis(100));
    let config = Json::from(json!({"schema": {"type": "object"}}));
    let execution = good.run(&ctx(), &config, &Json::from(json!({})), &Limits::default());
    assert_eq!(summary(&execution), "continue");
    assert!(
        !spinner.is_finished(),
        "the good step finished while the loop was still running"
    );
    assert!(matches!(
        failure(&spinner.join().unwrap()),
        StepFailure::Deadline { .. }
    ));
}

#[test]
fn step_errors_keep_their_kind() {
    let runtime = support::runtime();
    let plugin = misbehave(&runtime);
    let transient = run_mode(&plugin, "transient", &Limits::default());
    assert_eq!(summary(&transient), "transient: the registry is down");
    assert!(transient.result.unwrap_err().is_transient());
    let permanent = run_mode(&plugin, "permanent", &Limits::default());
    assert_eq!(summary(&permanent), "permanent: this can never work");
    assert!(!permanent.result.unwrap_err().is_transient());
}

#[test]
fn settings_and_secrets_come_from_the_grant() {
    let runtime = support::runtime();
    let execution = run_mode(&misbehave(&runtime), "settings", &Limits::default());
    assert_eq!(
        data(&execution),
        json!({"setting": "hello", "secret": "s3cret"})
    );
    let debug = format!("{:?}", all_grants());
    assert!(
        debug.contains("token") && !debug.contains("s3cret"),
        "secrets never show in Debug: {debug}"
    );
}

#[test]
fn broken_files_are_refused_with_a_clear_error() {
    let runtime = support::runtime();
    let good = support::plugin("validate-schema");
    let cases: [(&str, Vec<u8>, &str); 5] = [
        (
            "not wasm",
            b"#!/bin/sh\necho hi\n".to_vec(),
            "not WebAssembly: the bytes do not start with `\\0asm`",
        ),
        (
            "core module",
            support::wat("core-module"),
            "a core WebAssembly module, not a component",
        ),
        (
            "truncated",
            good[..good.len() / 2].to_vec(),
            "invalid component: ",
        ),
        (
            "no step export",
            support::wat("no-step-export"),
            "the component does not export `docket:step/step@0.1.0`; it exports `hello`",
        ),
        (
            "future contract",
            support::wat("future-contract"),
            "the component exports `docket:step/step@0.2.0`, but this host runs `docket:step/step@0.1.0`",
        ),
    ];
    for (what, bytes, expected) in cases {
        let err = runtime
            .load(&bytes, Grants::default())
            .err()
            .unwrap_or_else(|| panic!("{what} loaded"));
        assert!(err.to_string().starts_with(expected), "{what}: {err}");
    }
    assert_host_still_works(&runtime);
}
