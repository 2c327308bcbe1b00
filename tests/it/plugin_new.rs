//! `docket plugin new`: every template, as generated, passes its own tests,
//! builds into a component, and runs through the host as its README says.

use crate::support::{docket, target};
use serde_json::Value;
use std::path::Path;
use std::process::Output;

fn run(dir: &Path, args: &[&str]) -> Output {
    docket()
        .current_dir(dir)
        .args(args)
        .env("DOCKET_CACHE_DIR", target().join("test-cache"))
        // One target directory for every generated crate: their
        // dependencies build once, and again only when they change.
        .env("CARGO_TARGET_DIR", target().join("scaffold"))
        .output()
        .unwrap()
}

#[track_caller]
fn ok(dir: &Path, args: &[&str]) -> String {
    let output = run(dir, args);
    assert!(
        output.status.code().is_some_and(|c| c <= 1),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

fn step_run(dir: &Path, wasm: &Path, config: &str, input: &str, grant: &[&str]) -> Value {
    let mut args = vec![
        "step",
        "run",
        wasm.to_str().unwrap(),
        "--config",
        config,
        "--input",
        input,
    ];
    args.extend(grant);
    serde_json::from_str(&ok(dir, &args)).unwrap()
}

#[test]
fn each_rust_kind_passes_its_tests_builds_and_runs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let cases = [
        (
            "validate",
            r#"{"required": ["name"]}"#,
            r#"{"age": 3}"#,
            "reject",
        ),
        (
            "route",
            r#"{"field": "amount", "threshold": 1000}"#,
            r#"{"amount": 1500}"#,
            "route",
        ),
        (
            "notify",
            r#"{"channel": "email", "to_field": "email", "subject": "News"}"#,
            r#"{"email": "ada@example.org"}"#,
            "continue",
        ),
        (
            "transform",
            r#"{"cents_per_unit": 250}"#,
            r#"{"units": 4}"#,
            "continue",
        ),
    ];
    for (kind, config, input, outcome) in cases {
        let name = format!("my-{kind}");
        let created = ok(dir.path(), &["plugin", "new", &name, "--kind", kind]);
        assert_eq!(
            created,
            format!("created {kind} plugin `{name}` in {name}\n")
        );
        let crate_dir = dir.path().join(&name);

        let tests = std::process::Command::new(std::env::var("CARGO").unwrap_or("cargo".into()))
            .current_dir(&crate_dir)
            .args(["test", "--quiet"])
            .env("CARGO_TARGET_DIR", target().join("scaffold"))
            .output()
            .unwrap();
        assert!(
            tests.status.success(),
            "{kind}: cargo test failed:\n{}{}",
            String::from_utf8_lossy(&tests.stdout),
            String::from_utf8_lossy(&tests.stderr)
        );

        ok(
            &crate_dir,
            &["plugin", "build", "--out-dir", out.to_str().unwrap()],
        );
        let wasm = out.join(format!("{name}.wasm"));
        let grant: &[&str] = if kind == "notify" {
            &["--grant", "notify"]
        } else {
            &[]
        };
        let result = step_run(dir.path(), &wasm, config, input, grant);
        assert_eq!(result["outcome"], outcome, "{kind}: {result}");
        match kind {
            "route" => assert_eq!(result["routes"], serde_json::json!(["high"])),
            "transform" => assert_eq!(result["data"]["fee_cents"], 1000),
            "validate" => assert_eq!(result["problems"][0]["pointer"], "/name"),
            _ => {}
        }
        let inspected = ok(
            dir.path(),
            &["plugin", "inspect", wasm.to_str().unwrap(), "--json"],
        );
        let inspected: Value = serde_json::from_str(&inspected).unwrap();
        assert_eq!(inspected["kind"], kind);

        // Packed straight from the crate: the same component.
        let pkg = dir.path().join(format!("{name}.pkg"));
        ok(
            &crate_dir,
            &[
                "plugin",
                "pack",
                ".",
                "--out",
                pkg.to_str().unwrap(),
                "--team",
                "permits",
                "--license",
                "EUPL-1.2",
            ],
        );
        assert_eq!(
            std::fs::read(pkg.join("component.wasm")).unwrap(),
            std::fs::read(&wasm).unwrap(),
            "{kind}"
        );
    }
}

#[test]
fn python_and_javascript_templates_build_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let lang = target().join("lang");
    for (language, name) in [("python", "age-check-py"), ("js", "age-check-js")] {
        ok(dir.path(), &["plugin", "new", name, "--lang", language]);
        let plugin = dir.path().join(name);
        let wasm = dir.path().join(format!("{name}.wasm"));
        let world = format!("docket-plugins:{name}/{name}");
        let built = if language == "python" {
            std::process::Command::new(lang.join("venv/bin/componentize-py"))
                .current_dir(&plugin)
                .args([
                    "-d",
                    "wit",
                    "-w",
                    &world,
                    "componentize",
                    "--stub-wasi",
                    "app",
                    "-o",
                ])
                .arg(&wasm)
                .output()
        } else {
            std::process::Command::new(lang.join("node/node_modules/.bin/componentize-js"))
                .current_dir(&plugin)
                .args([
                    "app.js",
                    "--wit",
                    "wit",
                    "--world-name",
                    &world,
                    "--disable",
                ])
                .args(["stdio", "random", "clocks", "http", "fetch-event", "--out"])
                .arg(&wasm)
                .output()
        }
        .expect("the language toolchains are installed by `cargo xtask plugins`");
        assert!(
            built.status.success(),
            "{language}: {}",
            String::from_utf8_lossy(&built.stderr)
        );
        let young = step_run(
            dir.path(),
            &wasm,
            r#"{"minimum": 18}"#,
            r#"{"age": 17}"#,
            &[],
        );
        assert_eq!(young["outcome"], "reject", "{language}: {young}");
        let old = step_run(
            dir.path(),
            &wasm,
            r#"{"minimum": 18}"#,
            r#"{"age": 19}"#,
            &[],
        );
        assert_eq!(old["outcome"], "continue", "{language}: {old}");
    }
}

#[test]
fn what_cannot_be_created_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let refused = |args: &[&str], message: &str| {
        let output = run(dir.path(), args);
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&output.stderr).trim(), message);
    };
    refused(
        &["plugin", "new", "Fire_Check"],
        "error: `Fire_Check` is not a plugin name: start with a letter, use lowercase letters, digits and single `-`",
    );
    refused(
        &["plugin", "new", "fire-check", "--kind", "decide"],
        "error: unknown kind `decide` (expected validate, route, notify or transform)",
    );
    refused(
        &[
            "plugin",
            "new",
            "fire-check",
            "--lang",
            "python",
            "--kind",
            "route",
        ],
        "error: the python template is a validate step; write other kinds from it, or use --lang rust",
    );
    refused(
        &["plugin", "new", "fire-check", "--lang", "cobol"],
        "error: unknown language `cobol` (expected rust, python or js)",
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing was written"
    );
    std::fs::create_dir(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/keep.txt"), "mine").unwrap();
    refused(
        &["plugin", "new", "fire-check", "--dir", "taken"],
        "error: `taken` exists and is not empty; choose another --dir",
    );
    assert_eq!(
        std::fs::read_dir(dir.path().join("taken")).unwrap().count(),
        1
    );
}
