//! The `docket` binary, run as a user runs it.

use crate::support::{self, docket, target};
use serde_json::{Value, json};
use std::process::Output;

fn plugin_path(name: &str) -> String {
    target()
        .join("plugins")
        .join(format!("{name}.wasm"))
        .display()
        .to_string()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[track_caller]
fn step_run(args: &[&str], cache: &std::path::Path) -> Output {
    let output = docket()
        .args(["step", "run"])
        .args(args)
        .env("DOCKET_CACHE_DIR", cache)
        .output()
        .unwrap();
    assert!(output.status.code().is_some(), "killed by a signal");
    output
}

#[test]
fn step_run_exit_codes_follow_the_outcome() {
    let cache = tempfile::tempdir().unwrap();
    let schema = r#"{"schema": {"type": "object", "required": ["parcel"]}}"#;
    let plugin = plugin_path("validate-schema");

    let ok = step_run(
        &[
            &plugin,
            "--config",
            schema,
            "--input",
            r#"{"parcel": "1234-567"}"#,
        ],
        cache.path(),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let printed: Value = serde_json::from_str(&stdout(&ok)).unwrap();
    assert_eq!(
        printed,
        json!({"outcome": "continue", "data": {"parcel": "1234-567"}})
    );

    let rejected = step_run(
        &[&plugin, "--config", schema, "--input", "{}"],
        cache.path(),
    );
    assert_eq!(rejected.status.code(), Some(1));
    let printed: Value = serde_json::from_str(&stdout(&rejected)).unwrap();
    assert_eq!(printed["outcome"], "reject");
    assert_eq!(printed["problems"][0]["pointer"], "/parcel");

    let failed = step_run(&[&plugin, "--config", "{}", "--input", "{}"], cache.path());
    assert_eq!(failed.status.code(), Some(2));
    assert!(stdout(&failed).is_empty());
    assert_eq!(
        stderr(&failed).trim(),
        "error: the step reported a permanent error: invalid config at ``: missing field `schema` at line 1 column 2"
    );
}

#[test]
fn step_run_explains_a_failure_in_one_line() {
    let cache = tempfile::tempdir().unwrap();
    let misbehave = target()
        .join("fixtures/misbehave.wasm")
        .display()
        .to_string();
    let output = step_run(
        &[
            &misbehave,
            "--grant",
            "notify,settings,secrets",
            "--config",
            r#"{"mode": "loop"}"#,
            "--timeout-ms",
            "100",
        ],
        cache.path(),
    );
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim(),
        "error: the step ran past its deadline of 100 ms and was stopped (a retry may help)"
    );
    let output = step_run(
        &[
            &misbehave,
            "--grant",
            "notify,settings,secrets",
            "--config",
            r#"{"mode": "grow"}"#,
            "--memory-mb",
            "8",
        ],
        cache.path(),
    );
    assert_eq!(
        stderr(&output).trim(),
        "error: the step needed more than its memory limit of 8 MiB"
    );
}

#[test]
fn step_run_prints_notifications_and_logs_on_stderr() {
    let cache = tempfile::tempdir().unwrap();
    let config = r#"{"channel": "email", "to": "{{ email }}", "subject": "Hello {{ name }}", "body": "Case {{ docket.case_id }}"}"#;
    let output = step_run(
        &[
            &plugin_path("notify-template"),
            "--grant",
            "notify",
            "--config",
            config,
            "--input",
            r#"{"name": "Ada", "email": "ada@example.org"}"#,
        ],
        cache.path(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(
        stderr(&output),
        "notify email to ada@example.org: Hello Ada\nCase cli\n"
    );

    let refused = step_run(
        &[&plugin_path("notify-template"), "--config", config],
        cache.path(),
    );
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("does not grant (grant `notify` to allow it)"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn step_run_reads_files_and_refuses_bad_json() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.json");
    std::fs::write(&config, r#"{"schema": true}"#).unwrap();
    let at_config = format!("@{}", config.display());
    let ok = step_run(
        &[
            &plugin_path("validate-schema"),
            "--config",
            &at_config,
            "--input",
            "[1]",
        ],
        dir.path(),
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));

    let bad = step_run(
        &[
            &plugin_path("validate-schema"),
            "--config",
            &at_config,
            "--input",
            "{oops",
        ],
        dir.path(),
    );
    assert_eq!(bad.status.code(), Some(2));
    assert_eq!(
        stderr(&bad).trim(),
        "error: the input from the command line is not JSON: invalid JSON at line 1, column 2: key must be a string"
    );
    let missing = step_run(
        &[
            &plugin_path("validate-schema"),
            "--config",
            "@/nonexistent.json",
        ],
        dir.path(),
    );
    assert!(
        stderr(&missing).starts_with("error: failed to read the config from `/nonexistent.json`"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn plugin_inspect_shows_the_permission_request() {
    let output = docket()
        .args(["plugin", "inspect", &plugin_path("notify-template")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("notify-template 1.0.0 (notify)\n"),
        "{text}"
    );
    assert!(text.contains("\ncapabilities  log, notify\n"), "{text}");
    assert!(text.contains("\nwasi          none\n"), "{text}");

    let output = docket()
        .args([
            "plugin",
            "inspect",
            "--json",
            &plugin_path("validate-schema"),
        ])
        .output()
        .unwrap();
    let inspected: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(inspected["name"], "validate-schema");
    assert_eq!(inspected["capabilities"], json!(["log"]));
    assert_eq!(inspected["size"], support::plugin("validate-schema").len());
    assert_eq!(inspected["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(inspected["config_schema"]["required"], json!(["schema"]));
}

#[test]
fn plugin_inspect_separates_wasi_from_capabilities() {
    let probe = target()
        .join("fixtures/net-probe.wasm")
        .display()
        .to_string();
    let output = docket()
        .args(["plugin", "inspect", "--json", &probe])
        .output()
        .unwrap();
    let inspected: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(inspected["capabilities"], json!(["log"]));
    assert!(
        inspected["wasi"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i.as_str().unwrap().starts_with("wasi:cli/"))
    );
    assert!(
        inspected["forbidden"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i.as_str().unwrap().starts_with("wasi:sockets/"))
    );
}

#[test]
fn a_second_process_start_loads_the_plugin_from_the_cache() {
    let cache = tempfile::tempdir().unwrap();
    let inspect = || {
        docket()
            .args(["plugin", "inspect", "-v", &plugin_path("route-rules")])
            .env("DOCKET_CACHE_DIR", cache.path())
            .env_remove("DOCKET_LOG")
            .output()
            .unwrap()
    };
    let first = stderr(&inspect());
    assert!(first.contains("plugin compiled"), "{first}");
    let second = stderr(&inspect());
    assert!(
        second.contains("plugin loaded from the compiled cache"),
        "{second}"
    );
    assert!(!second.contains("plugin compiled"), "{second}");
}

#[test]
fn loading_a_broken_file_says_what_is_wrong() {
    let output = docket()
        .args(["plugin", "inspect", "Cargo.toml"])
        .current_dir(support::root())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        stderr(&output).trim(),
        "error: failed to inspect `Cargo.toml`: not WebAssembly: the bytes do not start with `\\0asm`"
    );
}
