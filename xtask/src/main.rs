//! `cargo xtask`: the project's one entry point, so that a fresh machine
//! needs nothing but Rust and these commands.
//!
//! - `cargo xtask test`: everything CI checks: installs the wasm targets and
//!   the OCI registry the catalogue tests run, builds the plugins, checks
//!   formatting and clippy, runs every test.
//! - `cargo xtask demo`: builds the plugins and runs the building-permit demo.
//! - `cargo xtask bench`: builds the plugins and runs the benchmarks.
//! - `cargo xtask plugins`: builds every plugin and test guest into a component,
//!   the Python and JavaScript ones too (see `lang`).

#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a command-line tool"
)]

mod lang;

use anyhow::{Context as _, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    if let Err(err) = dispatch() {
        eprintln!("error: {err:#}");
        std::process::exit(1);
    }
}

fn dispatch() -> anyhow::Result<()> {
    let task = std::env::args().nth(1).unwrap_or_default();
    let root = workspace_root();
    std::env::set_current_dir(&root)?;
    match task.as_str() {
        "test" => test(&root),
        "demo" => demo(&root),
        "bench" => bench(&root),
        "plugins" => plugins(&root),
        _ => {
            eprintln!("usage: cargo xtask <test | demo | bench | plugins>");
            std::process::exit(2);
        }
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Runs a command, echoing it first, and fails if it fails.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    eprintln!("$ {}", render(cmd));
    let status = cmd
        .status()
        .with_context(|| format!("failed to start `{}`", render(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", render(cmd));
    }
    Ok(())
}

fn render(cmd: &Command) -> String {
    std::iter::once(cmd.get_program())
        .chain(cmd.get_args())
        .map(|arg| arg.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// Crate names of the directories under `dir`.
fn crates_in(dir: &Path) -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in
        std::fs::read_dir(dir).with_context(|| format!("failed to list `{}`", dir.display()))?
    {
        let path = entry?.path();
        if path.join("Cargo.toml").exists() {
            names.push(
                path.file_name()
                    .expect("a directory has a name")
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    names.sort();
    Ok(names)
}

/// Adds what the toolchain needs and may lack on a fresh machine: the wasm
/// targets for plugins, rustfmt and clippy for the checks.
fn ensure_toolchain() -> anyhow::Result<()> {
    let installed = |what: &str| -> Option<String> {
        let output = Command::new("rustup")
            .args([what, "list", "--installed"])
            .output()
            .ok()?;
        output
            .status
            .success()
            .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
    };
    // Without rustup, the toolchain must already have all of it.
    let (Some(targets), Some(components)) = (installed("target"), installed("component")) else {
        return Ok(());
    };
    for target in ["wasm32-unknown-unknown", "wasm32-wasip2"] {
        if !targets.lines().any(|line| line.trim() == target) {
            run(Command::new("rustup").args(["target", "add", target]))?;
        }
    }
    for component in ["rustfmt", "clippy"] {
        if !components.lines().any(|line| line.starts_with(component)) {
            run(Command::new("rustup").args(["component", "add", component]))?;
        }
    }
    Ok(())
}

/// Test guests built like plugins, with `docket plugin build`.
const LEAN_GUESTS: [&str; 2] = ["misbehave", "raw-output"];
/// Test guests built with plain `cargo build --target wasm32-wasip2`.
const WASIP2_GUESTS: [&str; 2] = ["wasi-probe", "net-probe"];

/// Builds every plugin into target/plugins, the test guests into
/// target/fixtures, and the plugins once more with plain
/// `cargo build --target wasm32-wasip2` into target/plugins-wasip2.
fn plugins(root: &Path) -> anyhow::Result<()> {
    ensure_toolchain()?;
    build_plugins(root)
}

fn build_plugins(root: &Path) -> anyhow::Result<()> {
    let target = target_dir(root);
    run(cargo().args(["build", "--package", "docket"]))?;
    let docket = target.join("debug").join("docket");

    let plugins = crates_in(&root.join("plugins"))?;
    let mut build = Command::new(&docket);
    build
        .args(["plugin", "build", "--out-dir"])
        .arg(target.join("plugins"));
    for name in &plugins {
        build.args(["--package", name]);
    }
    run(&mut build)?;

    let mut build = Command::new(&docket);
    build
        .args(["plugin", "build", "--out-dir"])
        .arg(target.join("fixtures"));
    for name in LEAN_GUESTS {
        build.args(["--package", name]);
    }
    run(&mut build)?;

    let mut build = cargo();
    build.args(["build", "--release", "--target", "wasm32-wasip2"]);
    for name in plugins.iter().map(String::as_str).chain(WASIP2_GUESTS) {
        build.args(["--package", name]);
    }
    run(&mut build)?;
    let built = target.join("wasm32-wasip2").join("release");
    for (names, dir) in [
        (
            plugins.iter().map(String::as_str).collect::<Vec<_>>(),
            "plugins-wasip2",
        ),
        (WASIP2_GUESTS.to_vec(), "fixtures"),
    ] {
        let out = target.join(dir);
        std::fs::create_dir_all(&out)?;
        for name in names {
            let from = built.join(format!("{}.wasm", name.replace('-', "_")));
            std::fs::copy(&from, out.join(format!("{name}.wasm")))
                .with_context(|| format!("failed to copy `{}`", from.display()))?;
        }
    }
    build_lang_plugins(root, &target)
}

/// Builds the Python and JavaScript plugins into target/plugins and their
/// test guests into target/fixtures, installing the toolchains first.
fn build_lang_plugins(root: &Path, target: &Path) -> anyhow::Result<()> {
    let tools = lang::toolchains(root, target)?;
    for (lang, dir) in [(lang::Lang::Python, "python"), (lang::Lang::Js, "js")] {
        for (sources, out) in [
            (root.join("plugins").join(dir), "plugins"),
            (root.join("tests/fixtures/lang").join(dir), "fixtures"),
        ] {
            for plugin in lang::plugins_in(&sources, lang)? {
                lang::build(&tools, lang, root, target, &plugin, &target.join(out))?;
            }
        }
    }
    Ok(())
}

fn test(root: &Path) -> anyhow::Result<()> {
    ensure_toolchain()?;
    // The catalogue tests publish to a real OCI registry: Debian's
    // Distribution, which the harness starts on a free port per test.
    if !Path::new("/usr/bin/docker-registry").exists() {
        lang::apt_install(&["docker-registry"])?;
    }
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    build_plugins(root)?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    // The demo is an example too: it must tell its story to the end. It is
    // built with every workspace target, so that it shares the tests'
    // features and artifacts: `cargo run --package building-permit` alone
    // resolves other features (tokio, tracing, smallvec...) and rebuilds
    // wasmtime, about eight minutes on a fresh machine.
    run(cargo().args(["build", "--workspace", "--all-targets"]))?;
    run(&mut Command::new(
        target_dir(root).join("debug").join("building-permit"),
    ))?;
    eprintln!("all checks passed");
    Ok(())
}

/// The building-permit story: the engine embedded as a library, a batch of
/// applications, clerks acting over a simulated month (see
/// examples/building-permit).
fn demo(root: &Path) -> anyhow::Result<()> {
    plugins(root)?;
    run(cargo().args(["run", "--quiet", "--package", "building-permit"]))
}

fn bench(root: &Path) -> anyhow::Result<()> {
    plugins(root)?;
    run(cargo().args(["bench", "--package", "docket-host", "--bench", "step"]))?;
    run(cargo().args(["bench", "--package", "docket-host", "--bench", "engine"]))
}
