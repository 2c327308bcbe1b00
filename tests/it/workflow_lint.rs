//! The workflow language as users meet it: the committed JSON Schema, and
//! `docket lint` on the fixtures in `tests/fixtures/workflows/lint` (each
//! `<name>.yaml` beside `<name>.expected`, the exact stderr) and on the
//! examples' workflows.
//!
//! `BLESS=1 cargo test -p docket-tests --test it workflow_lint` rewrites the
//! `.expected` files from what `docket lint` prints; review the diff.

use crate::support::{docket, root, target};
use std::path::Path;
use std::process::Output;

/// Every diagnostic code; each must appear in some fixture's expected output.
/// (The two that need a catalogue, `refused-plugin` and
/// `plugin-unavailable`, are asserted in `catalog_deploy.rs`.)
const CODES: &[&str] = &[
    "syntax",
    "schema",
    "step-kind",
    "field-not-allowed",
    "bad-name",
    "bad-version",
    "bad-owner",
    "bad-id",
    "no-steps",
    "duplicate-step",
    "reserved-id",
    "unknown-step",
    "on-return-scope",
    "bad-version-requirement",
    "unknown-plugin",
    "unknown-plugin-version",
    "bad-plugin-config",
    "unknown-route",
    "unknown-capability",
    "bad-duration",
    "bad-timestamp",
    "missing-role",
    "bad-required",
    "escalate-not-waiting",
    "reassign-not-approval",
    "empty-escalation",
    "impossible-join",
    "no-branches",
    "empty-branch",
    "unreachable-step",
    "no-exit",
    "bad-retry",
    "bad-input-schema",
    "wait-kind",
    "unknown-public-field",
    "empty-title",
];

/// Runs `docket lint <file>` in `dir`, against the built first-party plugins.
fn lint(dir: &Path, file: &str) -> Output {
    let output = docket()
        .current_dir(dir)
        .args(["lint", file, "--plugins"])
        .arg(target().join("plugins"))
        .env("DOCKET_CACHE_DIR", target().join("test-cache"))
        .env_remove("DOCKET_PLUGINS")
        .output()
        .unwrap();
    assert!(output.status.code().is_some(), "killed by a signal");
    output
}

#[test]
fn the_committed_schema_is_fresh() {
    let path = root().join("schema/workflow.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == docket_host::workflow::json_schema(),
        "`schema/workflow.schema.json` is stale: regenerate it with \
         `cargo run -p docket -- schema > schema/workflow.schema.json`"
    );
}

#[test]
fn lint_output_matches_the_fixtures() {
    let dir = root().join("tests/fixtures/workflows/lint");
    let bless = std::env::var_os("BLESS").is_some();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name()?.to_str()?.strip_suffix(".yaml")?;
            Some(name.to_owned())
        })
        .collect();
    names.sort();
    assert!(
        names.len() > CODES.len(),
        "fixtures are missing in {}",
        dir.display()
    );

    let mut failures = Vec::new();
    let mut all_expected = String::new();
    for name in &names {
        let file = format!("{name}.yaml");
        let output = lint(&dir, &file);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let expected_path = dir.join(format!("{name}.expected"));
        if bless {
            std::fs::write(&expected_path, &stderr).unwrap();
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let clean = expected.starts_with(&format!("{file}: ok"));
        let code = if clean { 0 } else { 1 };
        if stderr != expected || output.status.code() != Some(code) {
            failures.push(format!(
                "{name}: exit {:?} (expected {code})\n--- expected\n{expected}--- got\n{stderr}",
                output.status.code()
            ));
        }
        all_expected.push_str(&expected);
    }
    assert!(
        failures.is_empty(),
        "`docket lint` output differs for {} fixture(s) (rerun with BLESS=1 to accept):\n\n{}",
        failures.len(),
        failures.join("\n")
    );

    // One fixture per check, and the multi-problem one shows them all.
    let missing: Vec<&&str> = CODES
        .iter()
        .filter(|code| {
            !all_expected.contains(&format!("\n{code}\n"))
                && !all_expected.starts_with(&format!("{code}\n"))
        })
        .collect();
    assert!(missing.is_empty(), "no fixture shows {missing:?}");
    let many = std::fs::read_to_string(dir.join("many-problems.expected")).unwrap();
    assert!(
        many.ends_with("many-problems.yaml: 10 problems\n"),
        "{many}"
    );
    assert!(
        std::fs::read_to_string(dir.join("clean.expected"))
            .unwrap()
            .starts_with("clean.yaml: ok")
    );
}

#[test]
fn the_examples_lint_clean() {
    let Ok(entries) = std::fs::read_dir(root().join("examples")) else {
        return;
    };
    for entry in entries {
        let dir = entry.unwrap().path();
        if !dir.join("workflow.yaml").exists() {
            continue;
        }
        let output = lint(&dir, "workflow.yaml");
        assert_eq!(
            output.status.code(),
            Some(0),
            "{}/workflow.yaml does not lint clean:\n{}",
            dir.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn graph_draws_a_clean_workflow_and_refuses_a_broken_one() {
    let dir = root().join("tests/fixtures/workflows/lint");
    let graph = |file: &str, format: &str| {
        docket()
            .current_dir(&dir)
            .args(["graph", file, "--format", format, "--plugins"])
            .arg(target().join("plugins"))
            .env("DOCKET_CACHE_DIR", target().join("test-cache"))
            .output()
            .unwrap()
    };
    let mermaid = graph("clean.yaml", "mermaid");
    assert_eq!(mermaid.status.code(), Some(0));
    let text = String::from_utf8(mermaid.stdout).unwrap();
    assert!(text.starts_with("flowchart TD\n"), "{text}");
    for part in [
        "start --> n1",
        "n2 -->|simple| n4",
        "subgraph c1[\"fire\"]",
        "n3_join -->",
        "-. after 15d .-> t_reject",
    ] {
        assert!(text.contains(part), "no `{part}` in:\n{text}");
    }
    let dot = graph("clean.yaml", "dot");
    let text = String::from_utf8(dot.stdout).unwrap();
    assert!(text.starts_with("digraph \"building-permit\" {"), "{text}");
    assert!(text.contains("subgraph cluster_0 {"), "{text}");

    let broken = graph("unknown-step.yaml", "mermaid");
    assert_eq!(broken.status.code(), Some(1));
    assert!(broken.stdout.is_empty());
}

#[test]
fn a_plugin_directory_loads_a_plugin_when_it_is_first_asked_for() {
    use docket_host::plugin::{Directory, DirectoryError, Runtime, RuntimeConfig, RuntimeStats};
    use docket_host::workflow::PluginProblem;

    let plugins = tempfile::tempdir().unwrap();
    for name in ["route-rules", "notify-template"] {
        let file = format!("{name}.wasm");
        std::fs::copy(
            target().join("plugins").join(&file),
            plugins.path().join(&file),
        )
        .unwrap();
    }
    let cache = tempfile::tempdir().unwrap();
    let runtime = || {
        Runtime::new(RuntimeConfig {
            max_concurrent_executions: 8,
            cache_dir: Some(cache.path().to_owned()),
            ..RuntimeConfig::default()
        })
        .unwrap()
    };

    // The first time, opening loads each file to learn its name and version.
    let first = runtime();
    Directory::open(&first, plugins.path()).unwrap();
    assert_eq!(first.stats().compiled, 2);

    // Then the disk cache knows them: nothing is loaded until asked for.
    let second = runtime();
    let directory = Directory::open(&second, plugins.path()).unwrap();
    assert_eq!(second.stats(), RuntimeStats::default());
    assert_eq!(directory.versions("notify-template").len(), 1);
    let plugin = directory.find("route-rules", "*").unwrap();
    assert_eq!(plugin.info().name, "route-rules");
    assert_eq!(
        directory.find("route-rules", "*").unwrap().digest(),
        plugin.digest()
    );
    assert_eq!(
        second.stats(),
        RuntimeStats {
            from_disk_cache: 1,
            ..RuntimeStats::default()
        }
    );

    // A file changed behind the directory's back is not run.
    std::fs::copy(
        plugins.path().join("route-rules.wasm"),
        plugins.path().join("notify-template.wasm"),
    )
    .unwrap();
    match directory.resolve("notify-template", "*") {
        Err(PluginProblem::Unavailable(reason)) => {
            assert!(
                reason.contains("changed since the plugin directory was opened"),
                "{reason}"
            )
        }
        other => panic!(
            "expected unavailable, got {:?}",
            other.map(|p| p.info().name.clone())
        ),
    }
    assert!(directory.bytes("notify-template", "*").is_none());

    // A broken file is still refused when the directory is opened.
    std::fs::write(plugins.path().join("broken.wasm"), b"#!/bin/sh\n").unwrap();
    match Directory::open(&runtime(), plugins.path()) {
        Err(err @ DirectoryError::Load { .. }) => {
            let source = std::error::Error::source(&err).map(ToString::to_string);
            let message = format!("{err}: {}", source.unwrap_or_default());
            assert!(message.contains("broken.wasm"), "{message}");
            assert!(message.contains("not WebAssembly"), "{message}");
        }
        other => panic!("expected a load error, got {:?}", other.map(|_| ())),
    }
}

#[test]
fn a_plugin_directory_finds_the_highest_matching_version() {
    use docket_host::plugin::Directory;
    use docket_host::workflow::{PluginFacts, PluginProblem};

    let runtime = crate::support::runtime();
    let directory = Directory::open(&runtime, target().join("plugins")).unwrap();
    let plugin = directory
        .find("route-rules", "*")
        .expect("route-rules is built");
    let version = plugin.info().version.clone();
    let major = version.split('.').next().unwrap();
    assert_eq!(
        directory.find("route-rules", major).unwrap().info().version,
        version
    );
    assert!(directory.find("route-rules", "=0.0.1").is_none());
    assert!(directory.find("no-such-plugin", "*").is_none());
    assert!(
        directory
            .bytes("validate-schema", "*")
            .unwrap()
            .starts_with(b"\0asm")
    );

    let config = r#"{"rules": [{"route": "a"}], "default": "b"}"#.parse().unwrap();
    assert_eq!(
        directory.routes("route-rules", "*", &config),
        Ok(vec!["a".to_owned(), "b".to_owned()])
    );
    let config = "{}".parse().unwrap();
    assert!(matches!(
        directory.routes("validate-schema", "*", &config),
        Err(PluginProblem::BadConfig(_))
    ));
    assert!(matches!(
        directory.routes("route-rules", "=0.0.1", &config),
        Err(PluginProblem::UnknownVersion(_))
    ));
    assert!(matches!(
        directory.routes("no-such-plugin", "*", &config),
        Err(PluginProblem::Unknown(_))
    ));
}
