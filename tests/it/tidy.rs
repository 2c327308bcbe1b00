//! The project's invariants, as tests: what a reviewer would otherwise
//! have to remember.

use crate::support::root;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name == "target") {
                continue;
            }
            rust_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_rust_file_says_what_it_owns() {
    let mut files = Vec::new();
    for dir in ["host", "sdk", "plugins", "xtask", "tests"] {
        rust_files(&root().join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    let missing: Vec<String> = files
        .iter()
        .filter(|path| !std::fs::read_to_string(path).unwrap().starts_with("//!"))
        .map(|path| path.strip_prefix(root()).unwrap().display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "these files do not start with a `//!` doc comment: {missing:?}"
    );
}

#[test]
fn every_plugin_is_exercised_by_the_integration_suite() {
    let mut suite = String::new();
    let mut files = Vec::new();
    rust_files(&root().join("tests/it"), &mut files);
    for file in files {
        suite += &std::fs::read_to_string(file).unwrap();
    }
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("plugins")).unwrap() {
        let path = entry.unwrap().path();
        // plugins/python and plugins/js hold one plugin per directory.
        if path.join("Cargo.toml").exists() {
            names.push(path.file_name().unwrap().to_string_lossy().into_owned());
        } else if path.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    names.push(path.file_name().unwrap().to_string_lossy().into_owned());
                }
            }
        }
    }
    assert!(names.len() >= 5, "found only {names:?}");
    for name in names {
        assert!(
            suite.contains(&format!("plugin(\"{name}\")"))
                || suite.contains(&format!("\"{name}\",")),
            "plugin `{name}` is not exercised by tests/it"
        );
    }
}

#[test]
fn docket_host_embeds_without_cli_http_or_postgres_crates() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = std::process::Command::new(cargo)
        .args([
            "tree",
            "--package",
            "docket-host",
            "--edges",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(root())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let tree = String::from_utf8_lossy(&output.stdout);
    assert!(tree.contains("wasmtime "), "the tree looks wrong: {tree}");
    for forbidden in [
        "clap ",
        "axum ",
        "hyper ",
        "sqlx ",
        "postgres ",
        "tokio-postgres ",
        "miette ",
    ] {
        assert!(
            !tree.lines().any(|line| line.starts_with(forbidden)),
            "docket-host depends on `{forbidden}`"
        );
    }
}
